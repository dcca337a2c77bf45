"""What would training in a child process gain while a real panel draws? An upper bound, measured.

The window's drawing holds Python's global lock (see ``gil_contention.py``, ``qt_gil.py``), and the
training thread of the same process waits for it. This script shows the family's real panel in the
real main window and replays snapshots and curve points into it at the rate the paced window draws:
``--views-per-s`` snapshots (default 5) and 4 curve updates a second. Both were recorded from a short
run of the same family just before. Meanwhile the family's bare PyTorch loop (``run.py``'s) trains:

- on a plain thread of this process, as the engine trains today;
- in a child process, which has its own interpreter and lock, as a process-based engine would.

Each runs with the replay and without it, interleaved round after round. Each figure is the median of
its ratio to "thread, no replay" in the same round. The two "replay" rows bound what a visible panel
costs training on each side of the lock. The bare loop has no snapshots and no evaluations to take.

    python benchmarks/process_headroom.py --family mlp --data-dir ~/data/mnist
    python benchmarks/process_headroom.py --family rbm --threads 1 --rounds 6
"""

from __future__ import annotations

import os as _os
import sys as _sys

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads
_os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="mlp", help="rbm, dae, mlp, cnn, fcn or lstm (default mlp)")
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (else data of the same shape)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the bare loop (default 2)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="about how long each variant trains per round")
    ap.add_argument("--views-per-s", type=float, default=5.0, help="snapshots drawn a second (paced: about 5)")
    args = ap.parse_args(argv)

    import run
    import torch
    from PySide6 import QtCore

    case = run.CASES[args.family](False, args.data_dir, "cpu")
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=run.serve_bare, args=(child_end, args.family, args.data_dir, args.threads), daemon=True)
    child.start()

    _app, win = run.open_window(case)
    panel = win.panel

    def pump(seconds: float) -> None:
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    # record: train a few seconds in the window, keeping every snapshot it draws
    snaps = []
    shown = panel.show_snapshot

    def keep(snap) -> None:
        snaps.append(snap)
        shown(snap)

    panel.show_snapshot = keep
    win.toggle_play()
    pump(4.0)
    win.toggle_play()
    win.session.wait(30)
    pump(0.5)
    panel.show_snapshot = shown
    rows = [dict(r) for r in win.session.metrics.steps]
    if not snaps or not rows:
        print("recording failed: no snapshots or metrics", file=_sys.stderr)
        return 1
    print(f"{case.label}: recorded {len(snaps)} snapshots and {len(rows)} metric rows", flush=True)

    # replay: snapshots at views-per-s, curve points 4 times a second, on the GUI thread
    state = {"i": 0, "row": 0, "step": rows[-1]["step"]}
    per_tick = max(1, len(rows) // 16)

    def draw_view() -> None:
        panel.show_snapshot(snaps[state["i"] % len(snaps)])
        state["i"] += 1

    def draw_curves() -> None:
        chunk = []
        for _ in range(per_tick):
            r = dict(rows[state["row"] % len(rows)])
            state["row"] += 1
            state["step"] += 1
            r["step"] = state["step"]
            chunk.append(r)
        panel.add_metrics(chunk, [])

    view_timer, curve_timer = QtCore.QTimer(), QtCore.QTimer()
    view_timer.setInterval(int(1000 / args.views_per_s))
    curve_timer.setInterval(250)
    view_timer.timeout.connect(draw_view)
    curve_timer.timeout.connect(draw_curves)

    def bare_thread(steps: int) -> float:
        box: list[float] = []

        def work() -> None:
            torch.set_num_threads(args.threads)
            box.append(case.bare(steps))

        t = threading.Thread(target=work, name="bare-loop")
        t.start()
        while t.is_alive():
            pump(0.02)
        return box[0]

    def bare_process(steps: int) -> float:
        parent_end.send(steps)
        while not parent_end.poll():
            pump(0.02)
        return parent_end.recv()

    assert parent_end.recv() == "ready"
    rate = bare_thread(10)
    steps = int(max(10, args.seconds * rate / case.batch))
    variants = [("thread, no replay", bare_thread, False), ("thread, panel replaying", bare_thread, True),
                ("process, no replay", bare_process, False), ("process, panel replaying", bare_process, True)]
    rates: dict[str, list[float]] = {v[0]: [] for v in variants}
    cpu: dict[str, list[float]] = {v[0]: [] for v in variants}
    for _ in range(args.rounds):
        for name, fn, replay in variants:
            if replay:
                view_timer.start()
                curve_timer.start()
            pump(0.1)
            w0, c0 = time.perf_counter(), time.thread_time()
            rates[name].append(fn(steps))
            cpu[name].append((time.thread_time() - c0) / (time.perf_counter() - w0))
            view_timer.stop()
            curve_timer.stop()
    parent_end.send(None)
    child.join(timeout=10)
    win.close()
    base = rates[variants[0][0]]
    print(f"{case.label}, bare loop with {args.threads} torch thread(s), {args.rounds} rounds of {steps} steps; "
          f"replay: {args.views_per_s:g} snapshots/s + 4 curve updates/s (median ratio to 'thread, no replay'):")
    for name, *_ in variants:
        rel = statistics.median(r / b for r, b in zip(rates[name], base))
        print(f"  {name:26s} {statistics.median(rates[name]):9,.0f} samples/s   {rel:.3f}   "
              f"GUI thread CPU {statistics.median(cpu[name]):.0%} of a core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
