"""What giving a step's matrix products the training thread's threads, and everything else one, gains.

The RBM 784-500's CD-1 step (batch 100, ``run.py``'s RBM row) through ``RBMTrainer.train_step``, timed
in one process in three ways, in interleaved rounds (the order reversed every other round):

* ``one``    one intra-op thread throughout;
* ``all``    every operation on all threads (the step without a :class:`ProductTeam`: what it was
             before, and what a bare loop does);
* ``team``   the products on all threads, the draws, sigmoids and sums between them on one (the
             trainer's step as it is: ``ProductTeam`` in ``explorer/core/engine/threads.py``).

The three train the same model one after the other (each round continues the training), so they see
the same weights' sparsity; medians of the rounds' samples/s and the ratios of medians are printed.
Run as the app does, with OpenMP's passive wait (set here before torch loads).

    python benchmarks/product_team.py --data-dir ~/data/mnist --rounds 6
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs, before torch loads

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rbm_speed  # noqa: E402

from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="folder with MNIST IDX files (else random data)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=300, help="steps per variant per round")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the team's size (default: cores)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.steps < 1 or args.threads < 2:
        print("product_team.py: error: --rounds and --steps must be positive, --threads at least 2", file=sys.stderr)
        return 2
    ds, desc, used = rbm_speed.load_data(args.data_dir)
    cfg = RBMConfig(dataset="mnist" if used else "random", data_dir=used, hidden=500, batch_size=100, k=1,
                    lr=rbm_speed.LR, seed=rbm_speed.SEED, device="cpu")
    trainer = RBMTrainer(cfg, dataset=ds)

    def without_team() -> None:  # the step as it was: every operation on the thread count set
        trainer.cd.step(trainer.next_batch())
        trainer.step += 1

    variants = {"one": (1, without_team), "all": (args.threads, without_team), "team": (args.threads, trainer.train_step)}
    rates: dict[str, list[float]] = {name: [] for name in variants}

    def timed(name: str, steps: int) -> float:
        threads, step = variants[name]
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * cfg.batch_size / (time.perf_counter() - t0)

    for name in variants:
        timed(name, 30)  # warm-up
    print(f"RBM 784-500 CD-1, batch 100, {desc}; {args.steps} steps a variant a round, team of {args.threads}")
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            rates[name].append(timed(name, args.steps))
        print(f"  round {r + 1}: " + "  ".join(f"{n} {rates[n][-1]:,.0f}" for n in variants), flush=True)
    med = {n: statistics.median(v) for n, v in rates.items()}
    print("medians (samples/s): " + ", ".join(f"{n} {med[n]:,.0f}" for n in variants))
    print(f"team / all {med['team'] / med['all']:.3f}   team / one {med['team'] / med['one']:.3f}   "
          f"all / one {med['all'] / med['one']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
