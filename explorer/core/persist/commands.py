"""Work the window asks of the training side, as named functions with plain arguments.

Each runs on the training thread between two steps, through ``session.run_command(fn, *args,
on_done=...)``: ``fn(session, *args)``. Being module-level functions of plain values, they cross to a
training process as they are (``ProcessSession`` sends the function by its name, see process/codec.py), so the window asks for
the same thing the same way whichever kind of session it holds. The result goes back to ``on_done``.

A command that fails says so itself, as a notice (the window shows every notice), and raises: the
caller's ``on_done`` only learns that it failed, and never reports it a second time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from explorer.core.engine.session import TrainingSession

log = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    """An expected fault (a file, a refused value) in its own words; anything else with its type."""
    return str(exc) if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {exc}"


def save_run_to(session: TrainingSession, chosen: str, extra: dict | None = None) -> str:
    """File > Save run: the run goes into ``chosen`` (or a new sub-folder of it), whole or not at all.

    The outcome is also a notice, as the window shows every notice."""
    from explorer.core.persist.autosave import save_whole
    from explorer.core.persist.runfolder import save_target

    target: Any = chosen
    try:
        target = save_target(chosen)
        save_whole(session, target, extra=extra)
    except Exception as exc:
        log.error("could not save the run to %s", target, exc_info=True)
        session.add_notices([f"could not save run to {target}: {_describe(exc)}"])
        raise
    session.add_notices([f"saved run to {target}"])
    return str(target)


def autosave_to(session: TrainingSession, folder: str) -> int:
    """Save the whole session into the autosave folder; returns the step saved."""
    from explorer.core.persist.autosave import save_whole

    step = int(session.trainer.step)
    try:
        save_whole(session, folder)
    except Exception as exc:
        log.error("autosave to %s failed", folder, exc_info=True)
        session.add_notices([f"autosave failed: {_describe(exc)}"])
        raise
    return step


def export_model(session: TrainingSession, kind: str, path: str) -> tuple[str, str, int]:
    """Export the model as ``kind`` ("onnx" | "safetensors"); returns (file, family, step)."""
    from explorer.core.persist.export import EXPORTERS

    trainer = session.trainer
    out = EXPORTERS[kind](trainer, Path(path))
    return str(out), trainer.family, int(trainer.step)


def run_files(session: TrainingSession, extra: dict | None = None) -> dict:
    """The run's files as save_run_to would write them (name -> bytes as a uint8 array), written nowhere.

    Why: a window whose training runs on a server saves the run in its own folder from these (a server
    never writes a path a client chose), and a model moves between machines as these."""
    from explorer.core.persist.runfolder import run_folder_files

    return run_folder_files(session, extra)


def export_file(session: TrainingSession, kind: str) -> tuple[Any, str, int]:
    """The model exported as ``kind`` ("onnx" | "safetensors"), as the file's bytes (a uint8 array), with
    the family and the step: export_model for a window whose training runs on a server."""
    import tempfile

    import numpy as np

    from explorer.core.persist.export import EXPORTERS

    trainer = session.trainer
    with tempfile.TemporaryDirectory(prefix="explorer-export-") as tmp:
        out = EXPORTERS[kind](trainer, Path(tmp) / f"model.{kind}")
        data = np.frombuffer(Path(out).read_bytes(), dtype=np.uint8).copy()
    return data, trainer.family, int(trainer.step)


def call_trainer(session: TrainingSession, method: str, *args: Any, **kwargs: Any) -> Any:
    """``session.trainer.<method>(*args, **kwargs)``: a probe, a unit choice, a stage switch, a walkthrough.

    A refused value (``ValueError``) is a notice in its own words; another fault names the method."""
    try:
        return getattr(session.trainer, method)(*args, **kwargs)
    except ValueError as exc:
        session.add_notices([str(exc)])
        raise
    except Exception as exc:
        session.add_notices([f"{method} failed: {_describe(exc)}"])
        raise


def ask_trainer(session: TrainingSession, method: str, *args: Any, **kwargs: Any) -> Any:
    """``session.trainer.<method>(*args, **kwargs)``, its errors left to the caller, no notice (the CD-1
    walkthrough's dialog shows them itself)."""
    return getattr(session.trainer, method)(*args, **kwargs)


def unit_view(session: TrainingSession, unit: Any) -> Any:
    """The receptive field of a CNN unit for the probe on show (``CNNTrainer.unit_view``), the trainer's own
    selection untouched: the one question a window that follows a run read-only may ask of it."""
    view = getattr(session.trainer, "unit_view", None)
    if view is None:
        raise ValueError("this model has no units with a receptive field")
    return view(unit)


VIEWER_QUERIES = frozenset({unit_view})  # what a read-only follower may ask a run (see docs/remote.md)


def evaluate_now(session: TrainingSession) -> None:
    """A row of held-out metrics at the current step (the curves then end where training is)."""
    session.evaluate_now()
