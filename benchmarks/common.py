"""What the benchmarks share: waiting for the device, the engine's warm-up, a bare loop's batches and
clock, and the rates of a shown window that trains.

Imported as ``common`` by the scripts in this folder (their folder is on ``sys.path`` when they run or
when ``run.py`` imports them). No Qt at import: ``gpu_check.py`` runs where Qt is blocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Wait until the device has done its queued work (a GPU runs behind the Python loop): a clock read
    after this measures the work, not the queueing. Nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ShuffledBatches:
    """Indices of mini-batches of ``batch`` examples out of ``n``, in a shuffled order on ``device`` that
    is drawn again at each epoch end: the bare loops' order, as the trainers' ``_next_indices`` make it."""

    def __init__(self, n: int, batch: int, device: torch.device):
        self.n, self.batch, self.device = n, batch, device
        self.order = torch.randperm(n, device=device)
        self.pos = 0

    def next(self) -> torch.Tensor:
        idx = self.order[self.pos:self.pos + self.batch]
        self.pos += self.batch
        if self.pos >= self.n:
            self.order, self.pos = torch.randperm(self.n, device=self.device), 0
        return idx


def loop_rate(step: Callable[[], Any], steps: int, batch: int, device: torch.device, warmup: int) -> float:
    """Samples per second of ``steps`` calls of ``step()`` (one mini-batch of ``batch`` each), after
    ``warmup`` untimed calls; the device's queue is waited for at both ends of the clock."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def warm_up_engine(session, steps: int) -> None:
    """Run a session's first ``steps`` steps, and on while the engine times its thread counts (it times
    its first steps at 1 and at all threads, once a session), so a clock started after runs steadily."""
    session.step(steps)
    session.wait()
    while session.choosing_threads:
        session.step(10)
        session.wait()


def engine_steps_rate(session, steps: int, batch: int, warmup: int) -> float:
    """Samples per second of ``steps`` steps through ``session`` (nobody subscribed: no snapshots), after
    :func:`warm_up_engine`."""
    warm_up_engine(session, warmup)
    device = session.trainer.device
    sync(device)
    t0 = time.perf_counter()
    session.step(steps)
    session.wait()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def running_rate(session, seconds: float, batch: int, settle: float) -> float:
    """Samples per second of a session left running (started here) over ``seconds`` s, after ``settle`` s."""
    session.start()
    time.sleep(settle)
    s0, t0 = session.trainer.step, time.perf_counter()
    time.sleep(seconds)
    return (session.trainer.step - s0) * batch / (time.perf_counter() - t0)


def window_rates(app, win, seconds: float, batch: int, play_at: float, begin_at: float,
                 counters: dict[str, Callable[[], int]] | None = None) -> dict[str, float]:
    """Rates of a shown main window that trains: Play at ``play_at`` s, the clock from ``begin_at`` s for
    ``seconds`` s, then ``app.quit()``. Returns ``samples_per_s``, ``redraws_per_s`` and ``<name>_per_s``
    for each of ``counters`` (name -> a count that grows, e.g. a view's updates)."""
    from PySide6 import QtCore

    counters = dict(counters or {})
    counters["redraws"] = lambda: win.redraws
    start: dict[str, float] = {}
    res: dict[str, float] = {}

    def begin() -> None:
        start.update({name: count() for name, count in counters.items()},
                     step=win.session.trainer.step, t0=time.perf_counter())

    def end() -> None:
        dt = time.perf_counter() - start["t0"]
        res["samples_per_s"] = (win.session.trainer.step - start["step"]) * batch / dt
        for name, count in counters.items():
            res[f"{name}_per_s"] = (count() - start[name]) / dt
        app.quit()

    QtCore.QTimer.singleShot(int(play_at * 1000), win.toggle_play)
    QtCore.QTimer.singleShot(int(begin_at * 1000), begin)
    QtCore.QTimer.singleShot(int((begin_at + seconds) * 1000), end)
    app.exec()
    return res
