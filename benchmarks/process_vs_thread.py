"""Training in a separate process against training on a thread of the window's process, in the real window.

    python benchmarks/process_vs_thread.py --families mlp,rbm --rounds 4 --data-dir ~/data/mnist

For each family: rounds of the suite's visible run (``run.visible_run``: the family's panel shown at
1600x1000, refreshing at 20/s), one per variant, in an interleaved order, each between two runs of the
family's bare loop (the ratio divides by the bare speed of that moment). Variants: training on a thread
with the views paced (the app before training processes), in a process with the views paced (the app's
default), and in a process unpaced (every snapshot drawn, up to 20/s). Prints the median ratio and views
drawn a second of each variant, and the median of the per-round differences from the thread's ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (the suite: cases, bare loops, the visible run)

VARIANTS = {"thread": dict(paced=True, process=False), "process": dict(paced=True, process=True),
            "process-unpaced": dict(paced=False, process=True)}


def measure(family: str, rounds: int, seconds: float, data_dir: str | None, quick: bool) -> dict:
    case = run.CASES[family](quick, data_dir, "cpu")
    steps = run._steps_for(case, quick)
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    views: dict[str, list[float]] = {v: [] for v in VARIANTS}
    names = list(VARIANTS)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # each variant first in turn
        for name in order:
            before = run.on_plain_thread(case.bare, steps)
            vis = run.visible_run(case, seconds, **VARIANTS[name])
            bare = (before + run.on_plain_thread(case.bare, steps)) / 2
            ratios[name].append(vis["samples_per_s"] / bare)
            views[name].append(vis["snapshots_drawn_per_s"])
        print(f"  {family} round {r + 1}: " + ", ".join(f"{n} {ratios[n][-1]:.3f} ({views[n][-1]:.1f} views/s)"
                                                       for n in names), flush=True)
    out = {"family": family, "rounds": rounds}
    for n in names:
        out[n] = statistics.median(ratios[n])
        out[f"{n}_views_per_s"] = statistics.median(views[n])
        if n != "thread":
            out[f"{n}_minus_thread"] = statistics.median(a - b for a, b in zip(ratios[n], ratios["thread"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="rbm,mlp", help=f"of {','.join(run.CASES)}")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds per visible run (after 2 s of warm-up)")
    ap.add_argument("--data-dir", help="folder with the MNIST IDX files (else data of the same shape)")
    ap.add_argument("--quick", action="store_true", help="the suite's quick sizes")
    args = ap.parse_args(argv)
    rows = [measure(f.strip(), args.rounds, args.seconds, args.data_dir, args.quick)
            for f in args.families.split(",") if f.strip()]
    print()
    print(f"{'family':<8} {'thread':>8} {'process':>8} {'diff':>7} {'unpaced':>8} {'diff':>7} | views/s: "
          f"{'thread':>6} {'process':>7} {'unpaced':>7}")
    for r in rows:
        print(f"{r['family']:<8} {r['thread']:>8.3f} {r['process']:>8.3f} {r['process_minus_thread']:>+7.3f} "
              f"{r['process-unpaced']:>8.3f} {r['process-unpaced_minus_thread']:>+7.3f} |          "
              f"{r['thread_views_per_s']:>6.1f} {r['process_views_per_s']:>7.1f} {r['process-unpaced_views_per_s']:>7.1f}")
    print("ratio: samples/s in the window / the bare loop's around it (medians over rounds); diff: median of the "
          "per-round differences from training on a thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
