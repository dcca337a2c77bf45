"""``train cnn|fcn --gpus N``: one model trained by N local processes with torch's DistributedDataParallel.

Every rank parses the same options and builds the same trainer from the same seed; rank 0 evaluates at
each epoch's end, prints and writes ``--out`` (the plain model's weights, as any run folder). The
plumbing (the backend, the launch, the wrapper, the shards) is :mod:`explorer.core.engine.distributed`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from explorer.cli.common import WORK, Progress, UsageError, count_samples, ignore_further_ctrl_c, report

if TYPE_CHECKING:  # torch loads in the ranks, never when the command line is built (the app's start stays fast)
    import torch


def add_gpus_options(p: argparse.ArgumentParser) -> None:
    """``--gpus N`` and ``--steps N`` on a family's ``train`` parser (the families that support it)."""
    p.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="train one model with DistributedDataParallel over N local processes: NCCL, one GPU "
                        "each, when there are N GPUs; gloo on the CPU otherwise")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="with --gpus: stop after N steps of the global batch (default: --epochs epochs)")


SUPPORTED = ("cnn", "fcn")  # explorer.core.engine.distributed.FAMILIES (not imported here: it loads torch)


def check_gpus(args: argparse.Namespace, family: str) -> Any:
    """The run's plan, or UsageError naming ``--gpus``/``--steps`` (exit 2)."""
    from explorer.core.engine.distributed import plan

    if family not in SUPPORTED:
        raise UsageError(f"--gpus: the {family} family does not train data-parallel (cnn and fcn do)")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps: {args.steps} is not a number of steps (1 or more)")
    try:
        the_plan = plan(args.gpus, args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if the_plan.world > 1 and (args.batch_size or 0) and args.batch_size < the_plan.world:
        raise UsageError(f"--gpus: {the_plan.world} ranks need a batch of at least {the_plan.world}")
    return the_plan


def run_data_parallel(args: argparse.Namespace, family: str, build: Callable[[argparse.Namespace], Any]) -> int:
    """Check the options, launch the ranks, wait for them; one line and exit 1 when a rank fails.
    ``build``: a module-level function making the family's trainer from the options (each rank calls it)."""
    from explorer.core.atomic import recover_folder
    from explorer.core.engine.distributed import RankFailed, launch
    from explorer.core.persist.runfolder import save_target

    if args.steps is not None and args.gpus is None:
        raise UsageError("--steps: only with --gpus (a single-process run trains --epochs epochs)")
    the_plan = check_gpus(args, family)
    if not args.quiet:
        sys.stderr.write(f"data-parallel training: {the_plan.describe()}\n")
    options = {k: v for k, v in vars(args).items() if k != "func"}
    # the folder rank 0 writes, chosen here (a folder of other files gets a new run folder in it), so that
    # this process can tell after a Ctrl+C whether it was written
    out = save_target(args.out) if args.out else None
    if out is not None:
        options["out"] = str(out)
    before = _identity(out)
    WORK.out, WORK.data_parallel = out, True
    try:
        launch(the_plan, train_rank, {"family": family, "build": build, "options": options})
    except RankFailed as exc:
        sys.stderr.write(f"train {family} --gpus {args.gpus}: {exc}\n")
        return 1
    except KeyboardInterrupt:  # the ranks have ended: the folder is the one before or rank 0's new one, whole
        ignore_further_ctrl_c()  # (a second Ctrl+C: the folder is looked at and the line said anyway)
        if not args.quiet:
            sys.stderr.write("\n")  # (rank 0's progress bar, ended mid-line)
        if out is not None:
            recover_folder(out)  # (a swap cut between its two renames is completed or undone)
            WORK.written = _identity(out) not in (None, before)
        raise
    return 0


def _identity(folder) -> tuple[int, int] | None:
    """Which folder stands at ``folder`` (None: none): a run written there is a new folder swapped in."""
    try:
        st = os.stat(folder) if folder is not None else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st is not None else None


def train_rank(rank: int, world: int, device: torch.device, payload: dict[str, Any]) -> None:
    """One rank: the trainer from the options on its device, wrapped; every rank steps, rank 0 reports."""
    import torch.distributed

    from explorer.core.engine.distributed import is_main, wrap
    from explorer.core.engine.session import TrainingSession
    from explorer.core.engine.trainer import samples_trained
    from explorer.core.persist.runfolder import save_run, save_target

    args = argparse.Namespace(**payload["options"])
    args.device = str(device)
    main = is_main(rank)
    trainer = payload["build"](args)
    wrap(trainer, rank, world, device)
    total = args.steps if args.steps is not None else trainer.steps_per_epoch * args.epochs
    out = save_target(args.out) if (main and args.out) else None
    session = TrainingSession(trainer, epochs=args.epochs, eval_fraction=None)  # rank 0's run, for the folder
    bar = Progress(total, enabled=main and not args.quiet)
    t0 = epoch_t0 = time.perf_counter()
    epoch_step0 = 0
    try:
        for i in range(total):
            epoch = trainer.epoch
            trainer.train_step()
            if main and (trainer.epoch != epoch or i == total - 1):
                dt = time.perf_counter() - epoch_t0
                samples = samples_trained(trainer, trainer.step) - samples_trained(trainer, epoch_step0)
                row: dict[str, float] = {"step": float(trainer.step), "epoch": float(trainer.epoch),
                                         "epoch_end": 1.0, "seconds": dt, "samples_per_s": samples / dt}
                row.update(trainer.evaluate())
                session.metrics.add_eval(row)
                epoch_t0, epoch_step0 = time.perf_counter(), trainer.step
            bar.update(trainer.step, f"step {trainer.step}/{total}")
    finally:
        bar.close()
    if not main:
        return
    history = session.history()
    samples, rate = count_samples(trainer, history)  # the global batches': every rank's share together
    last = history[-1] if history else {}
    result: dict[str, Any] = {
        "family": trainer.family, "device": str(trainer.device), "ranks": world,
        "backend": torch.distributed.get_backend(), "dataset": trainer.dataset.name,
        "batch_size": trainer.config.batch_size, "epochs": trainer.epoch, "steps": trainer.step,
        "samples": samples, "samples_per_s": rate,
        "wall_seconds": time.perf_counter() - t0, "history": history, "last_eval": last,
    }
    if out is not None:
        result["out"] = str(save_run(session, out))
    metric = "heldout_accuracy" if "heldout_accuracy" in last else next(
        (k for k in last if "accuracy" in k), "")
    value = last.get(metric, float("nan")) if metric else float("nan")
    report(result, args, f"trained {trainer.describe()} for {trainer.step} steps on {world} ranks "
                         f"({result['backend']}, {result['device']}): {metric or 'metric'} {value:.3f}, "
                         f"{result['samples_per_s'] or 0:.0f} samples/s")
