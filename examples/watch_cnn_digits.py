"""Watch a small CNN learn the handwritten digits, from your own training loop.

A plain PyTorch script: two convolutions with pooling and a linear classifier, trained with Adam on
the 1,797 8x8 digits the app ships (upsampled to 16x16 so the feature maps have something to show),
80% for training, 20% held out. It prints the held-out accuracy after every epoch (about 98% after
fifteen epochs, in a few seconds on a laptop's CPU).

The one line that matters is ``explorer.watch(...)``: while the script runs, open the window with

    python -m explorer attach 127.0.0.1:PORT        (the port the script prints on its first line)

to see the feature maps, filters and gradient norms of the probe digits live. ``--control`` lets the
window pause the loop and change the learning rate; ``--logdir runs/digits`` also writes what is
watched to a folder (``python -m explorer attach runs/digits`` opens it, during or after the run);
``--no-watch`` runs the bare loop, to measure what watching costs.

    python examples/watch_cnn_digits.py --listen 127.0.0.1:7000 --control
"""

from __future__ import annotations

import argparse
import time
from importlib.resources import files

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from example_options import folder, host_port, int_range, positive_float, usable_device  # (beside this file)

import explorer


def load_digits(size: int = 16, test_share: float = 0.2, seed: int = 0):
    """The app's bundled digits as (x_train, y_train, x_test, y_test): images (N, 1, size, size) in [0, 1]."""
    with (files("explorer.core.data") / "bundled" / "digits.npz").open("rb") as f:
        data = np.load(f)
        images, labels = data["images"], data["labels"]
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(labels, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(x) * test_share)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


class DigitsCNN(nn.Module):
    """conv 3x3 (16) - ReLU - max pool - conv 3x3 (32) - ReLU - max pool - linear (10 classes)."""

    def __init__(self, size: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = (model(x).argmax(1) == y).sum().item()
    model.train()
    return correct / len(y)


class NoWatch:
    """Stands in for the watcher with --no-watch: the bare loop, for timing."""

    def step(self, **scalars):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int_range(1), default=15)
    p.add_argument("--steps", type=int_range(0), default=0, help="stop after this many steps (0: run all the epochs)")
    p.add_argument("--batch-size", type=int_range(1), default=32)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    p.add_argument("--device", type=usable_device, default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--listen", type=host_port, default="127.0.0.1:0",
                   help="HOST:PORT the window attaches to (port 0: a free one)")
    p.add_argument("--logdir", type=folder, default=None, help="also write what is watched to this folder")
    p.add_argument("--control", action="store_true", help="let the window pause the loop and set the learning rate")
    p.add_argument("--no-watch", action="store_true", help="train without watching (the bare loop's speed)")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = (t.to(args.device) for t in load_digits())
    model = DigitsCNN().to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    probe, probe_target = x_test[:16], y_test[:16]  # the same 16 held-out digits at every snapshot

    watcher = NoWatch() if args.no_watch else explorer.watch(
        model, probe=probe, target=probe_target, optimizer=opt, control=args.control,
        listen=args.listen, logdir=args.logdir, name="digits CNN")
    step, train_time = 0, 0.0
    with watcher:
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            for batch in torch.randperm(len(x_train), device=args.device).split(args.batch_size):
                x, y = x_train[batch], y_train[batch]
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                watcher.step(loss=loss.item(), epoch=epoch)
                step += 1
                if step == args.steps:
                    break
            train_time += time.perf_counter() - start
            acc = accuracy(model, x_test, y_test)
            print(f"epoch {epoch}: step {step}, loss {loss.item():.3f}, test accuracy {acc:.1%}", flush=True)
            if step == args.steps:
                break
    print(f"test accuracy {acc:.1%} after {step} steps; {step / train_time:.1f} steps/s "
          f"({train_time:.1f} s training{', not watched' if args.no_watch else ''})", flush=True)


if __name__ == "__main__":
    main()
