"""Why a visible panel costs training more than the drawing's own CPU time: Python's global lock.

The window draws on the GUI thread, in Python (pyqtgraph), while training runs on a thread of the
same process. A torch operation lets go of the global lock while it computes and takes it back when
it returns; while the GUI thread runs Python, the training thread waits for it at every return, up
to Python's switch interval (5 ms by default). This script measures that on bare PyTorch loops (no
window, no Qt), with a stand-in for the GUI thread that is busy for a share (``duty``) of every 50 ms:

- ``thread``: training on a thread of the loaded process (as the app trains today);
- ``py`` load: pure Python, holding the lock (like pyqtgraph); ``c`` load: hashing, which lets go of
  it (the same CPU time, no lock), so the difference between the two is what the lock costs;
- ``switch``: the same, with a shorter switch interval (``sys.setswitchinterval``);
- ``process``: training in a child process (its own interpreter and lock), the load in this one.

Every variant runs in short slices, interleaved round after round, and each is reported as the median
of its ratio to the unloaded thread in the same round (this machine's speed drifts within a minute).

    python benchmarks/gil_contention.py --model rbm --rounds 10
    python benchmarks/gil_contention.py --model mlp --duty 0.3
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/__init__.py), before torch loads

import argparse  # noqa: E402
import hashlib  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

MODELS = ("rbm", "mlp", "cnn")


def make_step(model: str, threads: int) -> tuple[Callable[[int], None], int]:
    """One training step of a bare PyTorch model (the suite's shapes) and its batch size."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model == "rbm":  # RBM 784-500, CD-1, batch 100
        W, b, c, B = torch.randn(784, 500) * 0.01, torch.zeros(784), torch.zeros(500), 100
        data = (torch.rand(2000, 784) > 0.5).float()

        def step(i: int) -> None:
            s = (i * B) % 2000
            v0 = data[s:s + B]
            ph0 = torch.sigmoid(v0 @ W + c)
            h0 = torch.bernoulli(ph0)
            v1 = torch.bernoulli(torch.sigmoid(h0 @ W.t() + b))
            ph1 = torch.sigmoid(v1 @ W + c)
            W.add_(0.01 / B * (v0.t() @ ph0 - v1.t() @ ph1))
            b.add_(0.01 * (v0 - v1).mean(0))
            c.add_(0.01 * (ph0 - ph1).mean(0))
        return step, B
    if model == "mlp":  # sigmoid 784-128x5-10, batch 64
        layers: list[nn.Module] = []
        d = 784
        for _ in range(5):
            layers += [nn.Linear(d, 128), nn.Sigmoid()]
            d = 128
        net, B, n = nn.Sequential(*layers, nn.Linear(128, 10)), 64, 2048
        x = torch.rand(n, 784)
    else:  # LeNet-5, batch 64
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        B, n = 64, 1024
        x = torch.rand(n, 1, 28, 28)
    y = torch.randint(0, 10, (n,))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

    def step(i: int) -> None:
        s = (i * B) % n
        opt.zero_grad()
        F.cross_entropy(net(x[s:s + B]), y[s:s + B]).backward()
        opt.step()
    return step, B


def trainer_loop(conn, model: str, threads: int) -> None:
    """Train on request: receives a number of seconds, answers samples/s; None ends it."""
    step, B = make_step(model, threads)
    i = 0
    for _ in range(20):  # warm-up
        step(i)
        i += 1
    while True:
        seconds = conn.recv()
        if seconds is None:
            return
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            step(i)
            i += 1
            n += 1
        conn.send(n * B / (time.perf_counter() - t0))


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
    ap.add_argument("--model", choices=MODELS, default="rbm")
    ap.add_argument("--duty", type=float, default=0.15, help="the load's busy share of one core (default 0.15)")
    ap.add_argument("--switch-ms", type=float, default=0.5, help="the short switch interval tried (default 0.5)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--slice", type=float, default=0.8, help="seconds per variant per round")
    args = ap.parse_args(argv)

    default_switch = sys.getswitchinterval()
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=trainer_loop, args=(child_end, args.model, args.threads), daemon=True)
    child.start()
    thread_end, thread_far = mp.Pipe()
    threading.Thread(target=trainer_loop, args=(thread_far, args.model, args.threads), daemon=True).start()
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
            sys.setswitchinterval(switch)
            time.sleep(0.05)
            conn = thread_end if where == "thread" else parent_end
            conn.send(args.slice)
            rates[name].append(conn.recv())
    sys.setswitchinterval(default_switch)
    load.stopped = True
    parent_end.send(None)
    thread_end.send(None)
    child.join(timeout=10)
    base = rates[variants[0][0]]
    print(f"{args.model}, {args.threads} torch threads, {args.rounds} rounds of {args.slice:g} s "
          f"(median of each round's ratio to 'thread, no load'):")
    for name, *_ in variants:
        rel = statistics.median(r / b for r, b in zip(rates[name], base))
        print(f"  {name:40s} {statistics.median(rates[name]):9,.0f} samples/s   {rel:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
