"""How often the views may take a new snapshot, so that watching costs training little.

Drawing runs on the GUI thread, and pyqtgraph paints in Python: while it paints it holds Python's
global lock, and the training thread waits for that lock between two tensor operations. On a
machine with few cores that costs training more than the drawing's own CPU time (on 2 cores, two
runs of the benchmark suite: LeNet-5 trained at 0.74 and 0.71 of a bare loop with its views drawing
13-14 snapshots a second, at 0.81 and 1.05 with 5 a second; docs/performance.md). So the window
keeps the GUI thread's CPU time under a share of one core while training runs: when the drawing
takes more, the views take new snapshots less often (never fewer than 5 a second); when it takes
less, more often, up to the refresh rate. Curves, the stats line and controls are not paced. A
paused session is drawn at once (every click shows its effect).

With training in a separate process (the default), the drawing no longer holds training up: what
the views cost training is then the time the training process spends taking the snapshots they draw
(measured there: ``session.snapshot_seconds``). The same controller then keeps that under a share of
the training time instead (``PROCESS_SNAPSHOT_SHARE``): light panels draw up to the refresh rate,
heavy ones (a deep network's gradient statistics) fewer. In the suite's interleaved comparison, every
snapshot drawn at 16 a second cost a process-trained MLP 0.08 of its speed against 5 a second, and
the DAE, CNN and FCN nothing measurable (docs/performance.md).

Qt-free: the window feeds it a clock of the views' cost at each tick (the GUI thread's CPU clock,
``time.thread_time``, or the training process's snapshot seconds).
"""

from __future__ import annotations

from collections import deque

VIEW_SHARE = 0.15        # the GUI thread's CPU time while training runs, as a share of one core
PROCESS_SNAPSHOT_SHARE = 0.05  # training in a process: its time spent taking snapshots, as a share of all
ADAPT_EVERY_S = 0.5      # how often the pace is reconsidered
MAX_INTERVAL_S = 0.2     # the views never wait longer than this for a new snapshot (at least 5 a second)
TICK_SLACK = 0.25        # a refresh tick this share of its period early for the interval is on time
AIM = 0.9                # under this share of the budget the views speed up, in proportion to the room left
SMOOTH_PERIODS = 4       # the share is measured over the last this many periods (2 s)


class ViewPacer:
    """A feedback controller on the GUI thread's CPU share: it sets the least time between two
    snapshot draws (``interval``) so that the share stays under ``share``."""

    def __init__(self, share: float = VIEW_SHARE, min_interval: float = 0.05):
        self.share = float(share)
        self.enabled = True                  # off: the views take every snapshot, up to the refresh rate
        self.min_interval = float(min_interval)
        self.interval = self.min_interval
        self.measured: float | None = None   # the views' share over the last SMOOTH_PERIODS periods
        self._mark: tuple[float, float] | None = None   # (wall, cpu) at the start of the period
        self._periods: deque[tuple[float, float]] = deque(maxlen=SMOOTH_PERIODS)  # (seconds, cost) of each
        self._last_draw = -1e9
        self._draws = 0
        self.draw_rate = 0.0                 # snapshot draws per second over the last period

    def set_rate(self, hz: float) -> None:
        """The refresh rate asked for: the fastest the views may go."""
        self.min_interval = 1.0 / max(0.1, float(hz))
        self.interval = max(self.interval, self.min_interval)

    def reset(self) -> None:
        """Training paused or restarted: measure afresh (the pace it had is kept as a start)."""
        self._mark = None
        self._periods.clear()

    def update(self, wall: float, cpu: float) -> None:
        """Called at every tick while training runs, with ``time.monotonic()`` and the cost clock
        (``time.thread_time()``, or the training process's snapshot seconds)."""
        if self._mark is None:
            self._mark = (wall, cpu)
            self._draws = 0
            return
        dt = wall - self._mark[0]
        if dt < ADAPT_EVERY_S:
            return
        # the share over the last few periods: one period's reading swings (LeNet-5's snapshots, 4.5% of the
        # training time on average, read 2-7% over half-second periods), and each swing over the budget
        # held the views at 10 a second for the next period
        self._periods.append((dt, max(0.0, cpu - self._mark[1])))
        share = sum(c for _t, c in self._periods) / sum(t for t, _c in self._periods)
        self.measured = share
        self.draw_rate = self._draws / dt
        if share > self.share:
            # slower in proportion to the excess (drawing is most of what the GUI thread does)
            self.interval = min(MAX_INTERVAL_S, max(self.interval * min(2.0, share / self.share), self.interval + 0.01))
        elif share < AIM * self.share:
            # faster in proportion to the room left, toward AIM of the share (at most 15% a period: the
            # readings are noisy). A fixed step below 75% of the share left a panel that would fit the
            # refresh rate at 90% settled under it (LeNet-5's views at 18 a second and 4.1% of 5%).
            self.interval = max(self.min_interval, self.interval * max(0.85, share / (AIM * self.share)))
        self._mark = (wall, cpu)
        self._draws = 0

    def allow(self, wall: float) -> bool:
        """May the views take a new snapshot now? Asked at the refresh timer's ticks, which come every
        ``min_interval`` give or take a few milliseconds: a tick a little early for the interval counts
        as on time (``TICK_SLACK``). Without it, an interval a little over the tick's period (51 ms
        at 20 ticks a second, once the pace had risen for a moment) passed over every other tick: 10
        snapshots a second drawn where 19 were allowed (and at the rate itself, any tick more than
        1 ms early)."""
        return not self.enabled or wall - self._last_draw >= self.interval - TICK_SLACK * self.min_interval

    @property
    def pacing(self) -> bool:
        """Whether the views are held below the refresh rate now."""
        return self.enabled and self.interval > self.min_interval * 1.05

    def drew(self, wall: float) -> None:
        self._last_draw = wall
        self._draws += 1
