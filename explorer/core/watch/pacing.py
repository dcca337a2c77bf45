"""How often a watched script may look at its model: the watcher's work held to a share of the loop's time.

Why: ``watcher.step()`` is called from the user's own training loop, and the point of watching is to see
the run, not to slow it. Everything the watcher does (snapshots, gradient norms, encoding, writing) is
timed, and the time the user's loop takes between ``step()`` calls is the rest. While heavy work is paced
the watcher charges its work in CPU time (the loop thread's, or the process's during a snapshot, when
torch's worker threads do part of it), plus what it waits for the disk or an accelerator: time the thread
spent waiting for a core that another process had (a window starting on the same machine) is not the
watcher's work, and charging it stopped the views for seconds (``Watcher._step``, which says where wall
time is charged instead). Heavy work is due only
while the watcher's share of the elapsed time stays within ``budget`` (3% by default), whatever the
model's size: a snapshot that takes 30 ms is followed by at least a second of training before the next.

The rule is a leaky bucket in seconds: each piece of work of ``s`` seconds adds ``s / budget`` of *debt*,
the clock pays it back second for second, and new work is due when the debt is paid (it never goes
below zero: idle time is not saved up for a burst). Each kind of work also has a highest rate (30
snapshots and 10 gradient rows a second), for a model so small that the budget alone would allow more.
Qt-free and torch-free; the clock is passed in, so the tests drive it by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

DEFAULT_BUDGET = 0.03
SNAPSHOT = "snapshot"
GRAD = "grad"
DEFAULT_MAX_HZ = {SNAPSHOT: 30.0, GRAD: 10.0}
URGENT_SLACK_S = 0.25   # a snapshot the window asked for may come this much sooner than the budget says


class Pacer:
    """When the watcher's heavy work is due (see the module's docstring).

    ``charge(seconds)`` records work done; ``due(kind)`` says whether work of that kind may be done now,
    ``done(kind)`` that it was. ``clock`` gives seconds (``time.perf_counter`` by default)."""

    def __init__(self, budget: float = DEFAULT_BUDGET, *, max_hz: dict[str, float] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        budget = float(budget)
        if not 0.0 < budget <= 1.0:
            raise ValueError(f"the budget is a share of the loop's time, above 0 and at most 1, not {budget!r}")
        self.budget = budget
        self.clock = clock
        self.min_interval = {kind: 1.0 / hz for kind, hz in (max_hz or DEFAULT_MAX_HZ).items()}
        self.started = clock()
        self.spent = 0.0                       # all work charged, in seconds
        self._debt = 0.0                       # seconds of loop time still owed for work done
        self._debt_at = self.started
        self._last: dict[str, float] = {}      # kind -> when it was last done

    def _settle(self, now: float) -> None:
        if now > self._debt_at:
            self._debt = max(0.0, self._debt - (now - self._debt_at))
            self._debt_at = now

    @property
    def debt(self) -> float:
        """Seconds of the loop's time still owed before heavy work is due again."""
        self._settle(self.clock())
        return self._debt

    def charge(self, seconds: float, now: float | None = None) -> None:
        """Record ``seconds`` of the watcher's work, ending at ``now``."""
        if seconds <= 0.0:
            return
        now = self.clock() if now is None else now
        self._settle(now)
        self.spent += seconds
        self._debt += seconds / self.budget

    def set_debt(self, owed: float, now: float | None = None) -> None:
        """Owe ``owed`` seconds from ``now`` on, whatever was owed before (what was spent stays in :attr:`spent`)."""
        self._debt, self._debt_at = max(0.0, owed), self.clock() if now is None else now

    def due(self, kind: str, now: float | None = None, *, min_interval: float | None = None,
            urgent: bool = False) -> bool:
        """Whether work of ``kind`` may be done now: the budget allows it (``urgent``: a request from the
        window, allowed a little sooner) and its highest rate too (``min_interval`` overrides the rate)."""
        now = self.clock() if now is None else now
        self._settle(now)
        if self._debt > (URGENT_SLACK_S if urgent else 0.0):
            return False
        interval = self.min_interval.get(kind, 0.0) if min_interval is None else min_interval
        last = self._last.get(kind)
        return last is None or now - last >= interval

    def next_due(self, intervals: dict[str, float], now: float | None = None) -> float:
        """The earliest time at which work of one of these kinds (kind -> its least interval between two)
        may be due, if no more work is charged meanwhile: before it :meth:`due` says no to each, and the
        watcher does not ask (on a loop of 400 steps a second, asking cost 2 ms a second)."""
        now = self.clock() if now is None else now
        self._settle(now)
        paid = now + self._debt
        return min((max(paid, self._last.get(kind, -math.inf) + interval) for kind, interval in intervals.items()),
                   default=math.inf)

    def done(self, kind: str, now: float | None = None) -> None:
        """Work of ``kind`` was done at ``now`` (its rate counts from here)."""
        self._last[kind] = self.clock() if now is None else now

    def share(self, now: float | None = None) -> float:
        """The watcher's share of the time since the pacer started (for tests and the log)."""
        now = self.clock() if now is None else now
        elapsed = now - self.started
        return self.spent / elapsed if elapsed > 0 else 0.0


__all__ = ["DEFAULT_BUDGET", "DEFAULT_MAX_HZ", "GRAD", "SNAPSHOT", "URGENT_SLACK_S", "Pacer"]
