"""What recording the vanishing-gradient statistics costs per fine-tuning step.

    python benchmarks/grad_stats_cost.py [--steps 1500] [--repeats 3]

The deep sigmoid MLP (64 x 6 hidden, digits, batch 32) fine-tunes with statistics recorded every
step (``stats_every=1``: per-layer gradient norms, mean |delta|, saturation) and, interleaved, with
them recorded every 1000 steps; prints ms/step of each (median of repeats) and the overhead.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer  # noqa: E402


def ms_per_step(stats_every: int, steps: int) -> float:
    tr = MLPTrainer(MLPConfig(dataset="digits", init="relu-he", lr=0.05, stats_every=stats_every, device="cpu"))
    for _ in range(50):
        tr.train_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    return (time.perf_counter() - t0) / steps * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    every, rare = [], []
    for _ in range(args.repeats):
        every.append(ms_per_step(1, args.steps))
        rare.append(ms_per_step(1000, args.steps))
    a, b = statistics.median(every), statistics.median(rare)
    print(f"statistics every step: {a:.3f} ms/step; every 1000 steps: {b:.3f} ms/step; "
          f"overhead of recording every step: {100 * (a / b - 1):+.1f}% (default stats_every=10: about a tenth)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
