"""How fast does the engine train the deep sigmoid MLP (with its gradient statistics), against a bare loop?

    python benchmarks/mlp_speed.py [--data-dir DIR] [--steps N] [--repeats 3]

The deep network of the vanishing-gradient panel: 784-128x5-10 on MNIST when ``--data-dir`` has it
(else 64-128x5-10 on the digits), sigmoid units, small random weights, batch 64, SGD, cross-entropy.
``engine``: MLPTrainer in a TrainingSession (headless), recording per-layer gradient norms, mean
|delta| and saturation every 10 steps as the panel does; ``bare``: the same network and optimiser in
a plain loop, no statistics. The ratio therefore includes what watching the gradient costs.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import ShuffledBatches, loop_rate, warm_up_engine  # noqa: E402

from explorer.core.data.datasets import Dataset, find_idx_files, load_dataset  # noqa: E402
from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer  # noqa: E402

HIDDEN, BATCH, LR = (128,) * 5, 64, 0.5


def config_and_data(data_dir: str | None, device: str = "cpu") -> tuple[MLPConfig, Dataset, str]:
    if data_dir and find_idx_files("mnist", data_dir):
        cfg = MLPConfig(dataset="mnist", data_dir=data_dir, hidden=HIDDEN, init="random", lr=LR, batch_size=BATCH,
                        device=device)
        return cfg, load_dataset("mnist", data_dir), f"MNIST from {data_dir}"
    cfg = MLPConfig(dataset="digits", hidden=HIDDEN, init="random", lr=LR, batch_size=BATCH, device=device)
    return cfg, load_dataset("digits"), "the 8x8 digits"


def describe(cfg: MLPConfig, ds: Dataset) -> str:
    return f"{ds.n_visible}-{'-'.join(map(str, cfg.hidden))}-10, batch {cfg.batch_size}, stats every {cfg.stats_every}"


def bare_rate(cfg: MLPConfig, ds: Dataset, steps: int) -> float:
    dev = torch.device("cuda" if cfg.device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")
    sizes = [ds.n_visible, *cfg.hidden, 10]
    g = torch.Generator().manual_seed(cfg.seed)
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    with torch.no_grad():
        for lin in layers:
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.01)
            lin.bias.zero_()
    model = torch.nn.Sequential(*[m for lin in layers[:-1] for m in (lin, torch.nn.Sigmoid())], layers[-1]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    x_all = torch.from_numpy(ds.train_x).to(dev)
    y_all = torch.from_numpy(ds.train_y.astype("int64")).to(dev)
    n = x_all.shape[0]
    batches, losses = ShuffledBatches(n, cfg.batch_size, dev), []

    def one() -> None:
        idx = batches.next()
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        losses.append((logits.detach().argmax(1) == y).float().mean())  # the engine reports accuracy too

    rate = loop_rate(one, steps, cfg.batch_size, dev, warmup=10)
    torch.stack(losses).cpu()
    return rate


def engine_rate(cfg: MLPConfig, ds: Dataset, steps: int) -> float:
    tr = MLPTrainer(cfg, dataset=ds)
    s = TrainingSession(tr)
    try:
        warm_up_engine(s, 10)
        t0 = time.perf_counter()
        s.step(steps)
        while not s.wait(timeout=0.002):
            pass
        return steps * cfg.batch_size / (time.perf_counter() - t0)
    finally:
        s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg, ds, source = config_and_data(args.data_dir)
    eng, bare = [], []
    for r in range(args.repeats):
        eng.append(engine_rate(cfg, ds, args.steps))
        bare.append(bare_rate(cfg, ds, args.steps))
        print(f"  repeat {r + 1}/{args.repeats}: engine {eng[-1]:,.0f}  bare {bare[-1]:,.0f} samples/s", flush=True)
    e, b = statistics.median(eng), statistics.median(bare)
    print(f"deep MLP {describe(cfg, ds)}, {source}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"engine {e:,.0f} samples/s (median), bare {b:,.0f}: engine/bare = {e / b:.3f} (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
