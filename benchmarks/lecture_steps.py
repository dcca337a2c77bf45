"""How long the window stands still at each step of the bundled lecture (its GUI thread is busy).

The real main window at 1366x768 (Qt offscreen, training in a separate process, as the app runs by
default, with throw-away settings), idle for ``--idle`` seconds after it is shown (a teacher's pause: the
training processes' warm-up runs then, see ``explorer/core/process/warmup.py``); then
Ctrl+L's ``open_lecture()`` and each later step's ``go(i)``, with ``--pause`` seconds of the event loop
between steps. Printed: the seconds each call held the GUI thread, their largest and their sum; and for
each step the longest stall of a 10 ms timer from the step's call to the next step's (it also catches
work the step left to the event loop: a layout, a paint, a reply of the training process).

    python benchmarks/lecture_steps.py
    python benchmarks/lecture_steps.py --pause 2 --size 1600x1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=4.0, help="seconds the window stands idle before Ctrl+L")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between two steps")
    ap.add_argument("--size", default="1366x768", help="the window's size, WxH")
    args = ap.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"lecture_steps.py: error: --size: {args.size!r} is not WxH", file=sys.stderr)
        return 2
    if not (args.idle >= 0 and args.pause >= 0):
        print("lecture_steps.py: error: --idle and --pause must be 0 or more", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.mkdtemp(prefix="explorer-bench-")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(scratch, "config")  # no saved layout, no autosave offered
    os.environ["NETWORK_EXPLORER_CACHE"] = os.path.join(scratch, "cache")

    from PySide6 import QtCore

    from explorer.gui.app import make_app
    from explorer.gui.main_window import MainWindow

    app = make_app()
    win = MainWindow()
    win.resize(width, height)
    win.show()
    ticks: list[float] = []
    probe = QtCore.QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start()

    def run_events(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
            time.sleep(0.002)

    def held(call) -> float:
        t0 = time.perf_counter()
        call()
        app.processEvents()
        return time.perf_counter() - t0

    def longest_stall(since: float, first_tick: int) -> float:
        """The longest time without a timer tick from ``since`` to now."""
        marks = [since, *ticks[first_tick:], time.perf_counter()]
        return max(b - a for a, b in zip(marks, marks[1:]))

    run_events(args.idle)
    times, stalls = [], []
    step = 0
    while True:
        t0, n0 = time.perf_counter(), len(ticks)
        times.append(held(win.open_lecture if step == 0 else (lambda s=step: win.lecture.go(s))))
        run_events(args.pause)
        stalls.append(longest_stall(t0, n0))
        step += 1
        if step >= len(win.lecture.steps):
            break
    probe.stop()
    print(f"lecture steps at {width}x{height}, the GUI thread held (s): " + " ".join(f"{t:.2f}" for t in times))
    print("  the longest stall around each (s):    " + " ".join(f"{t:.2f}" for t in stalls))
    print(f"largest {max(times):.2f} s (step {times.index(max(times)) + 1}), all {len(times)} steps {sum(times):.1f} s;"
          f" longest stall {max(stalls):.2f} s (step {stalls.index(max(stalls)) + 1})")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
