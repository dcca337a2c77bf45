"""What every command of the command line shares: the one-line usage error, option types and option groups,
the headless training runner with its progress bar, the JSON/text report and the snapshot renderer.

The command modules (``rbm``, ``cnn``, ``spec``, ...) import from here; this module imports none of them, so
the command line has no import cycle. Torch, the core and Qt are imported inside the functions that need them:
building the parser stays cheap and Qt-free.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from explorer.core.persist.schema import MAX_SEED
from explorer.core.safe_read import one_line  # noqa: F401 - the commands' one-line errors

DATASETS = ("digits", "bars", "mnist", "fashion-mnist")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class TrainingFailed(ValueError):
    """Training stopped on an error (a diverging or failing step): one line, exit status 2."""


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


def whole_number(text: str) -> int:
    """An argparse type: any whole number; its range is checked with the setting it goes into, so that every value
    out of that range gets the same message."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def int_between(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` to ``maximum``."""

    def parse(text: str) -> int:
        v = int_at_least(minimum)(text)
        if v > maximum:
            raise argparse.ArgumentTypeError(f"expected a number from {minimum} to {maximum}, got {v}")
        return v

    return parse


def finite_float(text: str) -> float:
    """An argparse type: a finite number (nan and inf refused: no setting means them)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return v


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    v = finite_float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def device_name(text: str) -> str:
    """An argparse type: a device name, not empty (which one exists is checked when the model is built)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected cpu, cuda, cuda:N, mps or auto, got an empty name")
    return text.strip()


MAX_UPSCALE = 4
upscale_factor = int_between(1, MAX_UPSCALE)
seed_number = int_between(0, MAX_SEED)


OPTIONS_OF_SETTINGS = {"n_train": ("scenes",), "n_test": ("test_scenes",), "data_dir": ("mask_folder",)}
"""Settings that a command sets from an option not named after them (the FCN's ``--scenes`` is its ``n_train``),
by setting: the options' names as argparse keeps them."""


def option_for(args: argparse.Namespace | None, setting: str | None) -> str | None:
    """The option of the command ``args`` that sets ``setting`` (``n_train`` -> ``--n-train``, or ``--scenes`` on
    a command that has that instead), if it has one."""
    if args is None or setting is None:
        return None
    for dest in (setting, *OPTIONS_OF_SETTINGS.get(setting, ())):
        if hasattr(args, dest):
            return "--" + dest.replace("_", "-")
    return None


def check_option_values(cfg, args: argparse.Namespace) -> None:
    """Each setting of ``cfg`` that an option of ``args`` sets within its own range; UsageError naming the
    option (``--scenes must be ...``). Called on the options' settings before a spec file or preset adds its
    own, so that a fault there is not blamed on the file, nor one of the file's on an option."""
    from explorer.core.engine.settings import rules

    for name, rule in rules(cfg).items():
        option = option_for(args, name)
        value = getattr(cfg, name)
        if option is not None and not rule.allows(value):
            raise UsageError(f"{option} must be {rule.requirement()}, got {value!r}")


def validate_options(cfg, args: argparse.Namespace) -> None:
    """``cfg.validate()``, a setting out of its range named by its option (``--n-train must be ...``)."""
    check_option_values(cfg, args)
    cfg.validate()


# -- output paths ----------------------------------------------------------------------------------------------

FOLDER_OUTPUTS = {"train": ("out",)}
"""The options that name a folder to write, by command; the other output options name a file."""
FILE_OUTPUTS = ("out", "samples_out", "onnx", "safetensors")
PNG_OUTPUTS = {"snapshot": ("out",), "train": ("samples_out",)}
"""The options that name a PNG picture to write, by command: another extension would hold PNG data unsaid."""


def check_out_options(args: argparse.Namespace) -> None:
    """UsageError naming the option when an output path of the command is empty or cannot be written:
    checked before the work starts, not after an hour of training."""
    folders = FOLDER_OUTPUTS.get(getattr(args, "command", None) or "", ())
    for dest in FILE_OUTPUTS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        option = "--" + dest.replace("_", "-")
        check_writable(option, value, folder=dest in folders)
        if dest in PNG_OUTPUTS.get(getattr(args, "command", None) or "", ()) and Path(value).suffix.lower() != ".png":
            raise UsageError(f"{option} {value}: the picture is written as PNG; name a .png file")


def check_writable(option: str, value: str, folder: bool) -> None:
    """UsageError unless ``value`` is a path where a file (or, ``folder``, a folder) can be written."""
    if not value.strip():
        raise UsageError(f"{option} must name a {'folder' if folder else 'file'}, got an empty path")
    path = Path(value).expanduser()
    if path.exists():
        if folder and not path.is_dir():
            raise UsageError(f"{option} {value}: not a folder")
        if not folder and path.is_dir():
            raise UsageError(f"{option} {value}: is a folder, expected a file name")
        if not folder and not path.is_file():  # a device, a FIFO, a socket: never replaced by a file
            raise UsageError(f"{option} {value}: not a regular file (a device, pipe or socket), refused")
    probe = path.parent
    if folder and path.is_dir():  # a run goes over a run (swapped in beside it) or into a new sub-folder
        from explorer.core.persist.runfolder import save_target

        probe = save_target(path).parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{option} {value}: cannot be written ({probe} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {value}: cannot be written ({exc.strerror or exc})") from None


# -- option groups ---------------------------------------------------------------------------------------------

def add_data_options(p: argparse.ArgumentParser) -> None:
    """The image data set, device and seed of the fully connected families (RBM, autoencoder, MLP, DBN)."""
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="training data (default: digits)")
    p.add_argument("--data-dir", help="folder with MNIST/Fashion-MNIST IDX files (.gz or raw)")
    p.add_argument("--download", action="store_true", help="download MNIST/Fashion-MNIST into the user cache if missing")
    p.add_argument("--upscale", type=upscale_factor, default=1, help="enlarge images by this factor (1-4)")
    p.add_argument("--device", type=device_name, default="auto", help="cpu, cuda, mps or auto (default auto)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0)")


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
    p.add_argument("--json", action="store_true", help="print one JSON object (what was written) on stdout")


# -- Ctrl+C ----------------------------------------------------------------------------------------------------

class Work:
    """How far the running command got, for the one line a Ctrl+C prints (``explorer.cli.main``): the step its
    model reached and whether its run folder was written. A run folder is written whole or not at all, so
    "written" is known exactly: the write is not cut short by a Ctrl+C (:func:`ctrl_c_held`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, args: argparse.Namespace | None = None) -> None:
        """A new command, ``args`` once parsed (None: not yet): ``train`` speaks of steps and of its ``--out``."""
        self.started = args is not None  # False: the command line is still starting (nothing done, whatever it is)
        self.training = getattr(args, "command", None) == "train"
        out = getattr(args, "out", None)
        self.out: Path | None = Path(out) if self.training and out else None
        self.trainer: Any = None  # the model, once built (its step); None: training has not started
        self.data_parallel = False  # ranks in processes of their own train it: this process knows no step
        self.written = False

    def interrupted(self) -> str:
        """What a Ctrl+C now says: "interrupted at step 120; run folder runs/a was not written"."""
        if not self.started:
            return "interrupted while starting; nothing was written"
        if not self.training:
            return "interrupted"
        if self.data_parallel:
            line = "interrupted during data-parallel training"
        elif self.trainer is not None:
            line = f"interrupted at step {self.trainer.step}"
        else:
            line = "interrupted before training started"
        if self.out is not None:
            line += f"; run folder {self.out} was {'written' if self.written else 'not written'}"
            if not self.written and (self.out / "run.json").exists():  # a save replaces a run whole, or not at all
                line += " (the run already there is as it was)"
        return line


WORK = Work()
"""The running command's: ``explorer.cli.main`` resets it, ``run_training`` keeps it up to date."""


def ignore_further_ctrl_c() -> None:
    """Once a Ctrl+C is being handled, ignore the next (a quick double press is common): a second
    KeyboardInterrupt raised in the first one's handling printed a traceback and ended the process by SIGINT.
    The process ends soon after. (Only the main thread may set a signal's handler.)"""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Run the block whole, a Ctrl+C during it raised (KeyboardInterrupt) once it is done: for writing a run
    folder, after which the line of the interrupt can say it was written. Only where a Ctrl+C raises
    KeyboardInterrupt (Python's handler, on the main thread); elsewhere the block just runs."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


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


def count_samples(trainer, history: list[dict[str, Any]]) -> tuple[int, float | None]:
    """The samples the run trained on and the rate over its epochs' training time; each epoch row's
    ``samples_per_s`` is set to the samples of its own steps (as the engine's row counts them)."""
    from explorer.core.engine.trainer import samples_trained

    seconds, before = 0.0, 0
    for row in history:
        step = int(row.get("step", before))
        dt = float(row.get("seconds", 0.0))
        if dt > 0:
            row["samples_per_s"] = (samples_trained(trainer, step) - samples_trained(trainer, before)) / dt
            seconds += dt
        before = step
    samples = samples_trained(trainer, trainer.step)
    return samples, (samples / seconds if seconds > 0 else None)


def run_training(trainer, args: argparse.Namespace, progress_metric: tuple[str, str]) -> tuple[int, dict[str, Any]]:
    """Train ``args.epochs`` epochs on the engine's thread with a progress bar; the common JSON fields."""
    from explorer.core.engine.session import TrainingSession
    from explorer.core.persist.runfolder import save_run, save_target

    out = save_target(args.out) if args.out else None  # a folder of other files gets a new run folder in it
    WORK.out, WORK.trainer = out, trainer
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
    if session.error:  # one line, exit 2 (and JSON with --json), as every error of the command line
        raise TrainingFailed(f"training failed: {session.error}")
    history = session.history()
    samples, rate = count_samples(trainer, history)
    result: dict[str, Any] = {
        "family": trainer.family,
        "device": str(trainer.device),
        "dataset": trainer.dataset.name,
        "n_visible": trainer.dataset.n_visible,
        "hidden": getattr(trainer.config, "hidden", None),
        "batch_size": trainer.config.batch_size,
        "epochs": trainer.epoch,
        "steps": trainer.step,
        "samples": samples,
        "samples_per_s": rate,
        "wall_seconds": time.perf_counter() - t0,
        "history": history,
    }
    if out is not None:
        with ctrl_c_held():  # whole: a Ctrl+C meanwhile stops the command once the folder is written
            result["out"] = str(save_run(session, out))
            WORK.written = True
    return 0, result


def load_spec_file(path: str):
    """The network of a ``--spec`` file, checked whole (shapes, sizes, the memory it needs) before anything
    is built from it; SpecError naming the file."""
    import explorer.core.families.registry  # noqa: F401 - it tells the spec checker the families
    from explorer.core.spec.network import SpecError, load_spec, validate

    spec = load_spec(path)
    try:
        validate(spec)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    return spec


def spec_from_args(args: argparse.Namespace):
    """The network of ``--spec FILE`` or ``--preset NAME``; None when neither was given."""
    import explorer.core.families.registry  # noqa: F401 - it tells the spec checker the families
    from explorer.core.spec.network import load_preset

    if args.spec:
        return load_spec_file(args.spec)
    if args.preset:
        return load_preset(args.preset)
    return None


def config_from_spec_file(config_from_spec, spec, base, args: argparse.Namespace):
    """``config_from_spec(spec, base)``, a refused setting of the spec's (its hparams, its sizes) named with
    the spec's file: "net.json: learning rate must be a positive number, got 'x'". The options' own values in
    ``base`` are checked first (:func:`check_option_values`): a fault left is the spec's."""
    check_option_values(base, args)
    try:
        return config_from_spec(spec, base)
    except ValueError as exc:
        where = getattr(args, "spec", None) or f"preset {getattr(args, 'preset', None) or spec.name}"
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
        print(text + (f"; saved to {result.get('out', args.out)}" if args.out else ""))


# -- snapshots -------------------------------------------------------------------------------------------------

MIN_SNAPSHOT_SIDE = 100


def snapshot_size(text: str) -> tuple[int, int]:
    """``--size WxH`` as (W, H); UsageError unless each side is a whole number of pixels within bounds."""
    from explorer.core.limits import MAX_SNAPSHOT_SIDE

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1600x1000, got {text!r}") from None
    if not (MIN_SNAPSHOT_SIDE <= w <= MAX_SNAPSHOT_SIDE and MIN_SNAPSHOT_SIDE <= h <= MAX_SNAPSHOT_SIDE):
        raise UsageError(f"--size must be from {MIN_SNAPSHOT_SIDE} to {MAX_SNAPSHOT_SIDE} pixels each way, "
                         f"got {text!r}")
    return w, h


def render_snapshot_png(args: argparse.Namespace, make_config: Callable[[argparse.Namespace], Any]) -> int:
    """Train ``args.steps`` steps of the settings ``make_config(args)`` gives and write the panel to ``args.out``
    as a PNG, offscreen. Qt is imported only here, so the rest of the command line runs without it."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    w, h = snapshot_size(args.size)
    from explorer.gui.snapshot import render_snapshot

    path = render_snapshot(make_config(args), steps=args.steps, out=args.out, size=(w, h))
    if getattr(args, "json", False):
        print(json.dumps({"wrote": str(path), "steps": args.steps, "size": [w, h]}))
    else:
        print(f"wrote {path}")
    return 0
