"""What one snapshot of the CNN example costs inside its training loop, and against another checkout's code.

    python benchmarks/watch_snapshot_cost.py [--epochs 40] [--every 8] [--probe 16]
    python benchmarks/watch_snapshot_cost.py --compare ../other-checkout      # A/B in one process
    python benchmarks/watch_snapshot_cost.py --one-thread     # torch's threads against one, alternately

Trains ``examples/watch_cnn_digits.py``'s model on its data (Adam, batch 32) and, every ``--every`` steps,
right after ``opt.step()`` and ``loss.item()`` where ``watcher.step()`` runs them, times what the watcher
does for a snapshot: the gradient norms and ``take_snapshot`` on the probe (publishing is left out). In
the loop the caches are cold after the training step, and every part costs more than timed alone (a
snapshot of 1.4 ms alone took 1.9-2.0 ms here).

``--compare DIR`` loads ``explorer/core/watch/snapshot.py``, ``gradients.py`` and ``discover.py`` from
another checkout and alternates the two codes' snapshots in the same loop, so that both see the same machine at the same
moments (figures of separate runs on this shared machine move by more than small changes do). It
prints the median and quartiles of each, in microseconds. ``--one-thread`` alternates this checkout's
snapshot on torch's threads with the same on one thread (as the watcher takes a CPU model's snapshots).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import watch_cnn_digits as example  # noqa: E402

from explorer.core.watch import gradients, snapshot  # noqa: E402
from explorer.core.watch.discover import LayerLookup, describe_model  # noqa: E402


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--every", type=int, default=8, help="a snapshot every this many training steps")
    ap.add_argument("--probe", type=int, default=16, help="probe digits (the example's 16)")
    ap.add_argument("--compare", metavar="DIR", help="another checkout whose snapshot code to alternate with")
    ap.add_argument("--one-thread", action="store_true", help="alternate with this code's snapshot on one thread")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = example.load_digits()
    model = example.DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    probe, target = x_test[:args.probe], y_test[:args.probe]
    description = describe_model(model, probe)
    grad_layers = description["grad_layers"]
    lookup = LayerLookup(model)

    def this_code() -> None:
        modules = lookup.modules()
        gradients.grad_norms(model, grad_layers, modules)
        snapshot.take_snapshot(model, probe, description, target=target, modules=modules)

    codes = {"this checkout": this_code}
    if args.one_thread:
        threads = torch.get_num_threads()

        def on_one_thread() -> None:
            torch.set_num_threads(1)
            try:
                this_code()
            finally:
                torch.set_num_threads(threads)

        codes["this checkout, on one thread"] = on_one_thread
    if args.compare:
        other = os.path.abspath(args.compare)
        # its snapshot and gradients modules bound to its own discover module (the probe's eval mode, the
        # layer lookup), which stands in for this checkout's while they are loaded
        ours = sys.modules["explorer.core.watch.discover"]
        sys.modules["explorer.core.watch.discover"] = _load("other_discover",
                                                            os.path.join(other, "explorer/core/watch/discover.py"))
        try:
            other_snapshot = _load("other_snapshot", os.path.join(other, "explorer/core/watch/snapshot.py"))
            other_gradients = _load("other_gradients", os.path.join(other, "explorer/core/watch/gradients.py"))
        finally:
            sys.modules["explorer.core.watch.discover"] = ours

        def other_code() -> None:
            other_gradients.grad_norms(model, grad_layers)
            other_snapshot.take_snapshot(model, probe, description, target=target)

        codes[other] = other_code
    names = list(codes)
    spent: dict[str, list[float]] = {name: [] for name in names}
    step = 0
    for _ in range(args.epochs):
        for batch in torch.randperm(len(x_train)).split(32):
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            step += 1
            if step % args.every == 0:
                name = names[(step // args.every) % len(names)]
                start = time.perf_counter()
                codes[name]()
                spent[name].append(time.perf_counter() - start)
    print(f"{step} training steps, a snapshot (gradient norms + take_snapshot, probe of {args.probe}) "
          f"every {args.every}, torch threads {torch.get_num_threads()}")
    for name in names:
        us = 1e6 * np.asarray(spent[name][2:])  # (the first ones warm the code up)
        q1, median, q3 = np.percentile(us, [25, 50, 75])
        print(f"  {name}: median {median:,.0f} us (quartiles {q1:,.0f}-{q3:,.0f}), {len(us)} snapshots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
