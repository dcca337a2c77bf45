"""How fast does the engine train a denoising autoencoder, compared with a bare PyTorch loop?

    python benchmarks/dae_speed.py [--data-dir DIR] [--steps N] [--repeats 3] [--device cpu]

DAE 784-256-784 (sigmoid encoder and decoder, untied), batch 128, gaussian noise 0.3, SGD with
momentum 0.9, loss = sum of squared errors against the clean input. Variants, interleaved, median
of the repeats: ``engine`` (AutoencoderTrainer in a TrainingSession on its thread, headless) and
``bare`` (the same maths in a plain loop in the main thread, written independently, same noise
generator: numpy's PCG64 on the CPU). MNIST from ``--data-dir`` when it has it, else random data
of the same shape.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import os
import statistics
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import ShuffledBatches, engine_steps_rate, loop_rate  # noqa: E402

from explorer.core.data.datasets import Dataset, load_dataset  # noqa: E402
from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.autoencoder.trainer import AutoencoderConfig, AutoencoderTrainer  # noqa: E402

HIDDEN, BATCH, NOISE, LR, MOMENTUM = 256, 128, 0.3, 0.1, 0.9


def data(data_dir: str | None) -> tuple[Dataset, str]:
    if data_dir:
        try:
            return load_dataset("mnist", data_dir), f"MNIST from {data_dir}"
        except ValueError as exc:
            print(f"note: {exc}", file=sys.stderr)
    x = np.random.default_rng(0).random((10000, 784), dtype=np.float32)
    return Dataset("random", x[:8000], None, x[8000:], None, (28, 28)), "random data of MNIST's shape"


def engine_rate(ds: Dataset, device: str, steps: int) -> float:
    tr = AutoencoderTrainer(AutoencoderConfig(hidden=HIDDEN, batch_size=BATCH, noise="gaussian", noise_level=NOISE,
                                              lr=LR, momentum=MOMENTUM, device=device), dataset=ds)
    s = TrainingSession(tr)
    try:
        return engine_steps_rate(s, steps, BATCH, warmup=20)
    finally:
        s.close()


def bare_rate(ds: Dataset, device: str, steps: int) -> float:
    dev = torch.device("cuda" if device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(1)
    x_all = torch.from_numpy(ds.train_x).to(dev)
    n, v = x_all.shape
    bound = 4 * (6 / (v + HIDDEN)) ** 0.5
    W = ((torch.rand(HIDDEN, v, generator=g) * 2 - 1) * bound).to(dev).requires_grad_()
    W2 = ((torch.rand(v, HIDDEN, generator=g) * 2 - 1) * bound).to(dev).requires_grad_()
    b = torch.zeros(HIDDEN, device=dev, requires_grad=True)
    d = torch.zeros(v, device=dev, requires_grad=True)
    opt = torch.optim.SGD([W, b, W2, d], lr=LR, momentum=MOMENTUM)
    batches, losses = ShuffledBatches(n, BATCH, dev), []

    def one() -> None:
        x = x_all.index_select(0, batches.next())
        if dev.type == "cpu":
            z = torch.from_numpy(rng.standard_normal(tuple(x.shape), dtype=np.float32))
        else:
            z = torch.randn(x.shape, device=dev)
        h = torch.sigmoid((x + NOISE * z) @ W.t() + b)        # encoder on the corrupted input
        recon = torch.sigmoid(h @ W2.t() + d)
        loss = ((recon - x) ** 2).sum(1).mean()               # against the clean input
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    rate = loop_rate(one, steps, BATCH, dev, warmup=20)
    torch.stack(losses).cpu()
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    ds, source = data(args.data_dir)
    eng, bare = [], []
    for r in range(args.repeats):
        eng.append(engine_rate(ds, args.device, args.steps))
        bare.append(bare_rate(ds, args.device, args.steps))
        print(f"  repeat {r + 1}/{args.repeats}: engine {eng[-1]:,.0f}  bare {bare[-1]:,.0f} samples/s", flush=True)
    e, b = statistics.median(eng), statistics.median(bare)
    print(f"DAE 784-{HIDDEN}-784, batch {BATCH}, gaussian {NOISE}, {source}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"engine {e:,.0f} samples/s (median), bare {b:,.0f}: engine/bare = {e / b:.3f} (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
