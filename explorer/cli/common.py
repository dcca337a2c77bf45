"""What every command of the command line shares: the one-line usage error, option types and option groups,
the headless training runner with its progress bar, the JSON/text report and the snapshot renderer.

The command modules (``rbm``, ``cnn``, ``spec``, ...) import from here; this module imports none of them, so
the command line has no import cycle. Torch, the core and Qt are imported inside the functions that need them:
building the parser stays cheap and Qt-free.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

DATASETS = ("digits", "bars", "mnist", "fashion-mnist")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def one_line(exc: BaseException) -> str:
    """An error's message as one line for the terminal: its first line, control characters escaped (a name
    read from a file cannot send escape sequences to the user's terminal)."""
    from explorer.core.safe_read import escape_text

    text = str(exc).strip()
    return escape_text(text.splitlines()[0] if text else type(exc).__name__)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are a ``UsageError`` (one line, exit 2), not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# -- option types ----------------------------------------------------------------------------------------------

def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {v}")
        return v

    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


# -- option groups ---------------------------------------------------------------------------------------------

def add_data_options(p: argparse.ArgumentParser) -> None:
    """The image data set, device and seed of the fully connected families (RBM, autoencoder, MLP, DBN)."""
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="training data (default: digits)")
    p.add_argument("--data-dir", help="folder with MNIST/Fashion-MNIST IDX files (.gz or raw)")
    p.add_argument("--download", action="store_true", help="download MNIST/Fashion-MNIST into the user cache if missing")
    p.add_argument("--upscale", type=positive_int, default=1, help="enlarge images by this factor (1-4)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default auto)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """What every ``train`` sub-command takes: epochs, the run folder, JSON output, quiet."""
    p.add_argument("--epochs", type=positive_int, default=10, help="passes over the training set (default 10)")
    p.add_argument("--out", help="write a run folder here (settings JSON, safetensors weights, metrics CSV)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_spec_source(p: argparse.ArgumentParser) -> None:
    """``--spec FILE`` or ``--preset NAME``, not both."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--spec", help="a network file from the builder (its layer sizes, data size and "
                                    "hyper-parameters override the options above)")
    src.add_argument("--preset", help="a preset network by name (see: explorer spec presets)")


def add_snapshot_options(p: argparse.ArgumentParser) -> None:
    """What every ``snapshot`` sub-command takes after its family's options: steps, the PNG, the window size."""
    p.add_argument("--steps", type=nonneg_int, default=300, help="training steps before the picture (default 300)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")


# -- training --------------------------------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self._last = total, enabled, 0.0

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        frac = min(1.0, done / self.total) if self.total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {done}/{self.total} steps {extra}  ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def load_data(cfg, quiet: bool):
    """Load the configured data set; a download shows its progress on stderr."""
    from explorer.core.data.datasets import load_dataset

    def progress(done: int, total: int) -> None:
        if not quiet:
            size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            sys.stderr.write(f"\rdownloading {cfg.dataset}: {size}   ")
            sys.stderr.flush()

    return load_dataset(cfg.dataset, cfg.data_dir, upscale=cfg.upscale, bars_size=cfg.bars_size,
                        seed=cfg.seed, download=cfg.download, progress=progress)


def run_training(trainer, args: argparse.Namespace, progress_metric: tuple[str, str]) -> tuple[int, dict[str, Any]]:
    """Train ``args.epochs`` epochs on the engine's thread with a progress bar; the common JSON fields."""
    from explorer.core.engine.session import TrainingSession
    from explorer.core.persist.runfolder import save_run

    session = TrainingSession(trainer, epochs=args.epochs, eval_fraction=None)  # every epoch is evaluated
    bar = Progress(trainer.steps_per_epoch * args.epochs, enabled=not args.quiet)
    key, label = progress_metric
    t0 = time.perf_counter()
    session.start()
    try:
        while not session.wait(timeout=0.1):
            ev = session.metrics.evals
            extra = f"epoch {trainer.epoch}/{args.epochs}"
            if ev:
                extra += f"  {label} {ev[-1].get(key, float('nan')):.4f}"
            bar.update(trainer.step, extra)
        bar.update(trainer.step, f"epoch {trainer.epoch}/{args.epochs}", force=True)
    finally:
        bar.close()
        session.stop()
    if session.error:
        print(f"explorer: training failed: {session.error}", file=sys.stderr)
        return 1, {}
    history = session.history()
    train_seconds = sum(h.get("seconds", 0.0) for h in history)
    result: dict[str, Any] = {
        "family": trainer.family,
        "device": str(trainer.device),
        "dataset": trainer.dataset.name,
        "n_visible": trainer.dataset.n_visible,
        "hidden": getattr(trainer.config, "hidden", None),
        "batch_size": trainer.config.batch_size,
        "epochs": trainer.epoch,
        "steps": trainer.step,
        "samples_per_s": trainer.step * trainer.batch_size / train_seconds if train_seconds > 0 else None,
        "wall_seconds": time.perf_counter() - t0,
        "history": history,
    }
    if args.out:
        result["out"] = str(save_run(session, args.out))
    return 0, result


def spec_from_args(args: argparse.Namespace):
    """The network of ``--spec FILE`` or ``--preset NAME``; None when neither was given."""
    from explorer.core.spec.network import load_preset, load_spec

    if args.spec:
        return load_spec(args.spec)
    if args.preset:
        return load_preset(args.preset)
    return None


def config_from_spec_file(config_from_spec, spec, base, args: argparse.Namespace):
    """``config_from_spec(spec, base)``, a refused setting of the spec's (its hparams, its sizes) named with
    the spec's file: "net.json: learning rate must be a positive number, got 'x'"."""
    try:
        return config_from_spec(spec, base)
    except ValueError as exc:
        where = getattr(args, "spec", None) or f"preset {getattr(args, 'preset', None)}"
        raise ValueError(f"{where}: {one_line(exc)}") from None


def trainer_from_args(args: argparse.Namespace, make_config, trainer_cls, config_from_spec):
    """The family's settings from the options, overridden by ``--spec``/``--preset``; data loaded with progress."""
    cfg = make_config(args)
    spec = spec_from_args(args)
    if spec is not None:
        cfg = config_from_spec_file(config_from_spec, spec, cfg, args)
    return trainer_cls(cfg, dataset=load_data(cfg, quiet=args.quiet))


def report(result: dict[str, Any], args: argparse.Namespace, text: str) -> None:
    """The result as one JSON object (``--json``) or as one sentence, on stdout."""
    if args.json:
        print(json.dumps(result))
    else:
        print(text + (f"; saved to {args.out}" if args.out else ""))


# -- snapshots -------------------------------------------------------------------------------------------------

def render_snapshot_png(args: argparse.Namespace, make_config: Callable[[argparse.Namespace], Any]) -> int:
    """Train ``args.steps`` steps of the settings ``make_config(args)`` gives and write the panel to ``args.out``
    as a PNG, offscreen. Qt is imported only here, so the rest of the command line runs without it."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1600x1000, got {args.size!r}") from None
    from explorer.gui.snapshot import render_snapshot

    path = render_snapshot(make_config(args), steps=args.steps, out=args.out, size=(w, h))
    print(f"wrote {path}")
    return 0
