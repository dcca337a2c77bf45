"""Why a visible panel costs training more than the drawing's own CPU time: Python's global lock.

The window draws on the GUI thread, in Python (pyqtgraph), while training runs on a thread of the
same process. A torch operation lets go of the global lock while it computes and takes it back when
it returns; while the GUI thread runs Python, the training thread waits for it at every return, up
to Python's switch interval (5 ms by default). This script measures that on bare PyTorch loops (no
window, no Qt; the suite's own bare loops from ``run.py``), with a stand-in for the GUI thread that
is busy for a share (``duty``) of every 50 ms:

- ``thread``: training on a thread of the loaded process (as the app trains today);
- ``py`` load: pure Python, holding the lock (like pyqtgraph); ``c`` load: hashing, which lets go of
  it (the same CPU time, no lock), so the difference between the two is what the lock costs;
- ``switch``: the same, with a shorter switch interval (``sys.setswitchinterval``);
- ``process``: training in a child process (its own interpreter and lock), the load in this one.

Every variant runs in short slices, interleaved round after round, and each is reported as the median
of its ratio to the unloaded thread in the same round (this machine's speed drifts within a minute).

    python benchmarks/gil_contention.py --family rbm --rounds 10 --data-dir ~/data/mnist
    python benchmarks/gil_contention.py --family mlp --duty 0.3
"""

from __future__ import annotations

import os as _os
import sys as _sys

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads
_sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


class Load:
    """A stand-in for the GUI thread: busy for ``duty`` of every 50 ms, in Python or in C."""

    BUFFER = bytes(200_000)

    def __init__(self) -> None:
        self.duty, self.kind, self.stopped = 0.0, "py", False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stopped:
            t0, duty, kind = time.perf_counter(), self.duty, self.kind
            while time.perf_counter() - t0 < duty * 0.05:
                if kind == "py":
                    sum(i * i for i in range(200))       # holds the lock
                else:
                    hashlib.sha256(self.BUFFER).digest()  # lets go of it (buffers over 2 kB)
            rest = 0.05 - (time.perf_counter() - t0)
            if rest > 0:
                time.sleep(rest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="rbm", help="a run.py family: rbm, dae, mlp, cnn, fcn, lstm (default rbm)")
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (else data of the same shape)")
    ap.add_argument("--duty", type=float, default=0.15, help="the load's busy share of one core (default 0.15)")
    ap.add_argument("--switch-ms", type=float, default=0.5, help="the short switch interval tried (default 0.5)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--slice", type=float, default=0.8, help="about how many seconds per variant per round")
    args = ap.parse_args(argv)

    import run

    default_switch = _sys.getswitchinterval()
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=run.serve_bare, args=(child_end, args.family, args.data_dir, args.threads),
                        daemon=True)
    child.start()
    thread_end, thread_far = mp.Pipe()
    threading.Thread(target=run.serve_bare, args=(thread_far, args.family, args.data_dir, args.threads),
                     daemon=True).start()
    assert parent_end.recv() == "ready" and thread_end.recv() == "ready"
    thread_end.send(10)
    batch = run.CASES[args.family](False, args.data_dir, "cpu").batch
    steps = int(max(5, args.slice * thread_end.recv() / batch))
    load = Load()
    d = args.duty
    variants = [  # (name, where training runs, load kind, duty, switch interval in s)
        ("thread, no load", "thread", "py", 0.0, default_switch),
        (f"thread, Python load {d:.0%}", "thread", "py", d, default_switch),
        (f"thread, C load {d:.0%} (no lock)", "thread", "c", d, default_switch),
        (f"thread, Python load, switch {args.switch_ms:g} ms", "thread", "py", d, args.switch_ms / 1000),
        ("process, no load", "process", "py", 0.0, default_switch),
        (f"process, Python load {d:.0%}", "process", "py", d, default_switch),
    ]
    rates: dict[str, list[float]] = {v[0]: [] for v in variants}
    for _ in range(args.rounds):
        for name, where, kind, duty, switch in variants:
            load.kind, load.duty = kind, duty
            _sys.setswitchinterval(switch)
            time.sleep(0.05)
            conn = thread_end if where == "thread" else parent_end
            conn.send(steps)
            rates[name].append(conn.recv())
    _sys.setswitchinterval(default_switch)
    load.stopped = True
    parent_end.send(None)
    thread_end.send(None)
    child.join(timeout=10)
    base = rates[variants[0][0]]
    print(f"{args.family}, {args.threads} torch thread(s), {args.rounds} rounds of {steps} steps "
          f"(median of each round's ratio to 'thread, no load'):")
    for name, *_ in variants:
        rel = statistics.median(r / b for r, b in zip(rates[name], base))
        print(f"  {name:40s} {statistics.median(rates[name]):9,.0f} samples/s   {rel:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
