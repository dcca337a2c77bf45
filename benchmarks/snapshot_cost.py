"""What one snapshot of each family's panel costs its training thread, right after a training step.

Training in its own process (the app's default), the window draws a snapshot only as often as taking it
stays under 5% of the training time (``explorer/gui/pacing.py``; never fewer than 5 a second): at 20
snapshots a second, one may cost 2.5 ms. This times ``trainer.snapshot()`` on one thread (the window keeps
the other core), each right after a ``train_step()``, for the suite's models (``run.py``'s cases), and
prints the median and the rate 5% allows. (The LSTM's trainer recomputes its views on a budget of its
own and hands out the last ones between: its figure is mostly that.)::

    python benchmarks/snapshot_cost.py --data-dir ../shared/data/mnist
    python ../other-checkout/benchmarks/snapshot_cost.py ...   # another version: a copy of this file there

(``run.py`` puts the checkout it lies in first on the path, so a copy of this file measures its own checkout.)

Compare versions alternately in one sitting: the machine's speed drifts by 10-30% in a minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402
import torch  # noqa: E402

SHARE = 0.05  # explorer.gui.pacing.PROCESS_SNAPSHOT_SHARE (not imported: that module is the window's)


def snapshot_seconds(family: str, data_dir: str | None, count: int, warmup: int = 50) -> list[float]:
    """``count`` snapshots' seconds, each taken right after a training step."""
    trainer = run._trainer(run.CASES[family](False, data_dir, "cpu"))
    for _ in range(warmup):
        trainer.train_step()
    trainer.snapshot()  # (a view's first computation pays for one-off warm-up)
    times = []
    for _ in range(count):
        trainer.train_step()
        t0 = time.perf_counter()
        trainer.snapshot()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (else data of the same shape)")
    ap.add_argument("--families", default="rbm,dae,mlp,cnn,fcn,lstm", help="which (default all)")
    ap.add_argument("--count", type=int, default=200, help="snapshots timed per family (default 200)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    wanted = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(wanted) - set(run.CASES)
    if unknown or args.count < 2:
        print(f"snapshot_cost.py: unknown families {sorted(unknown)} (known: {', '.join(run.CASES)})" if unknown
              else "snapshot_cost.py: --count must be at least 2 (a median and quartiles)", file=sys.stderr)
        return 2
    print(f"one snapshot after a training step, one thread, median of {args.count}:")
    for family in wanted:
        times = snapshot_seconds(family, args.data_dir, args.count)
        q1, med, q3 = statistics.quantiles(times, n=4)
        print(f"  {family:5s} {med * 1e3:6.2f} ms  (quartiles {q1 * 1e3:.2f}-{q3 * 1e3:.2f}); {SHARE:.0%} of the "
              f"training time allows {SHARE / med:.0f} a second", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
