"""Where watching's time goes in the CNN example's loop, with one viewer attached in another process.

    python benchmarks/watch_parts.py [--steps 3000]

Times the watcher's parts (the per-step row, the metric ticks, snapshots, gradient norms; within a
snapshot, taking it and publishing it: ``publish`` counts every frame, notices and states too) over the steps
of ``examples/watch_cnn_digits.py``'s model and data, and prints each as a share of the loop's time, with
the pacer's own account (its budget is 3%). The timing wrappers add about a microsecond a call.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import watch_cnn_digits as example  # noqa: E402

import explorer  # noqa: E402
from explorer.core.watch import watcher as watcher_module  # noqa: E402

PARTS = ("_step", "_row", "_tick", "_look", "_snapshot", "_grad_row")
INNER = ("take_snapshot", "publish")  # inside _snapshot: the snapshot itself, and encoding + queueing it
VIEWER = """
import sys
sys.path.insert(0, {root!r})
from explorer.core.wire.client import FrameClient
client = FrameClient({host!r}, {port}, token={token!r}, role="viewer")
client.connect()
while True:
    frame = client.frames(timeout=2.0)
    if frame is None:
        if client.closed:
            break
    elif frame.kind == "bye":
        break
"""


def timed(spent: dict[str, list[float]], name: str, method=None):
    method = method or getattr(watcher_module.Watcher, name)

    def wrapper(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            entry = spent.setdefault(name, [0.0, 0])
            entry[0] += time.perf_counter() - t
            entry[1] += 1

    return wrapper


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--probe", type=int, default=16, help="probe digits (the example's 16)")
    args = ap.parse_args(argv)
    spent: dict[str, list[float]] = {}
    for name in PARTS:
        setattr(watcher_module.Watcher, name, timed(spent, name))
    watcher_module.take_snapshot = timed(spent, "take_snapshot", watcher_module.take_snapshot)
    watcher_module.FrameServer.publish = timed(spent, "publish", watcher_module.FrameServer.publish)
    x_train, y_train, x_test, y_test = example.load_digits()
    torch.manual_seed(0)
    model = example.DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    w = explorer.watch(model, probe=x_test[:args.probe], target=y_test[:args.probe], optimizer=opt, quiet=True)
    assert w.address is not None
    code = VIEWER.format(root=ROOT, host=w.address[0], port=w.address[1], token=w.viewer_token or w.token)
    viewer = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(2.0)  # the viewer attached
    step, t0 = 0, time.perf_counter()
    while step < args.steps:
        for batch in torch.randperm(len(x_train)).split(32):
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss.item(), epoch=1)
            step += 1
            if step == args.steps:
                break
    elapsed = time.perf_counter() - t0
    print(f"{step / elapsed:.0f} steps/s; the pacer's account: {100 * w._pacer.share():.2f}% of the loop "
          f"({w._pacer.spent * 1e3:.0f} ms of {elapsed * 1e3:.0f})")
    for name in (*PARTS, *INNER):
        seconds, calls = spent.get(name, [0.0, 0])
        each = f"{1e3 * seconds / calls:6.3f} ms each" if calls else ""
        print(f"  {name:13s} {seconds * 1e3:8.1f} ms over {calls:5d} calls ({100 * seconds / elapsed:.2f}%) {each}")
    w.close()
    viewer.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
