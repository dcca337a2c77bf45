"""Run folders: a finished or interrupted run, saved so it can be reopened.

    run.json             family, configuration, step/epoch, data set summary, versions
    weights.safetensors  model weights and optimiser state (never pickle)
    metrics.csv          one row per recorded training step
    evals.csv            one row per evaluation (held-out metrics; epoch ends flagged)

The folder is written whole or not at all (``explorer.core.atomic.atomic_write_folder``): the new run is
written and fsynced in a hidden sibling folder, then swapped in, so a kill or a full disk mid-save leaves
the previous run as it was, never a mixture of two.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from explorer import __version__
from explorer.core.atomic import atomic_write_folder, recover_folder, write_file_synced
from explorer.core.engine.session import MetricsLog, TrainingSession

RUN_FORMAT = "network-explorer-run"
RUN_VERSION = 1


class RunFolderError(ValueError):
    """A run folder is missing, corrupt or foreign; the message names the file and the fault."""


@dataclass
class RunFolder:
    path: Path
    family: str
    config: dict[str, Any]
    step: int
    epoch: int
    info: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    steps: list[dict[str, float]]
    evals: list[dict[str, float]]


def _rows_to_csv(rows: list[dict[str, float]]) -> str:
    names: list[str] = []
    for r in rows:
        for k in r:
            if k not in names:
                names.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names or ["step"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: repr(float(v)) if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def _csv_to_rows(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(fh)]
    except (ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path}: not a valid metrics CSV ({exc})") from None


RUN_FILES = {"run.json", "weights.safetensors", "metrics.csv", "evals.csv"}  # what save_run writes


def cpu_state_tensors(trainer) -> dict[str, torch.Tensor]:
    """CPU copies of the trainer's ``state_tensors()``, contiguous and detached: what a weights file holds.

    Copies, so a file written from them on another thread never sees a half-updated weight."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in trainer.state_tensors().items()}


def save_run(session: TrainingSession, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save the session's trainer state and metrics, whole or not at all. Call it from the training thread
    or while paused.

    ``extra``: JSON-able things the app keeps with the run (the window's panel layout), under "gui".
    An OSError (a full disk, a folder that cannot be written) names ``out_dir`` and leaves it as it was.
    ``out_dir`` is new, empty or a run folder: the save replaces it whole, so a folder of other files is
    refused (:func:`save_target` picks a new sub-folder of it instead).
    """
    out = Path(out_dir)
    if out.exists():
        others = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
        if others is None or not set(others) <= RUN_FILES:
            what = "not a folder" if others is None else f"holds other files ({', '.join(others[:3])})"
            raise RunFolderError(f"{out}: {what}; a run is saved into a new or empty folder, or over a run")
    return atomic_write_folder(out, lambda tmp: write_run_files(session, tmp, extra))


def write_run_files(session: TrainingSession, out: Path, extra: dict[str, Any] | None = None) -> None:
    """Write the run's files into the new folder ``out`` (a hidden one that :func:`save_run` swaps in)."""
    out.mkdir(parents=True, exist_ok=True)
    tr = session.trainer
    tensors = cpu_state_tensors(tr)
    ds = getattr(tr, "dataset", None)
    info = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "explorer_version": __version__,
        "family": tr.family,
        "config": tr.config_dict(),
        "step": int(tr.step),
        "epoch": int(tr.epoch),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": str(tr.device),
    }
    if extra:
        info["gui"] = extra
    if ds is not None:
        info["dataset"] = {"name": ds.name, "image_shape": list(ds.image_shape),
                           "n_train": int(ds.train_x.shape[0]), "n_test": int(ds.test_x.shape[0])}
    write_file_synced(out / "weights.safetensors",
                      safetensors_bytes(tensors, metadata={"family": tr.family, "format": RUN_FORMAT}))
    write_file_synced(out / "metrics.csv", _rows_to_csv(list(session.metrics.steps)).encode("utf-8"))
    write_file_synced(out / "evals.csv", _rows_to_csv(list(session.metrics.evals)).encode("utf-8"))
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    write_file_synced(out / "run.json", text.encode("utf-8"))


def save_target(chosen: str | Path) -> Path:
    """Where "Save run" into the folder ``chosen`` writes, so that a save never mixes with other files.

    A new or empty folder, or one that holds a run and nothing else, is replaced whole by the new run.
    Any other folder (the user's home, a folder of images) is left alone and the run goes into a new
    dated sub-folder of it.
    """
    chosen = Path(chosen)
    if not chosen.exists() or (chosen.is_dir() and {p.name for p in chosen.iterdir()} <= RUN_FILES):
        return chosen
    if not chosen.is_dir():
        raise RunFolderError(f"{chosen}: not a folder")
    stem = "network-explorer-run-" + time.strftime("%Y%m%d-%H%M%S")
    target, n = chosen / stem, 1
    while target.exists():
        n += 1
        target = chosen / f"{stem}-{n}"
    return target


def load_run(path: str | Path) -> RunFolder:
    """Read a run folder, checking every part; raises :class:`RunFolderError` on any fault."""
    path = Path(path)
    recover_folder(path)  # a save a crash interrupted: its folder put back whole, its leftovers removed
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a folder")
    meta = path / "run.json"
    if not meta.exists():
        raise RunFolderError(f"{path}: no run.json, so this is not a Network Explorer run folder")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{meta}: corrupt JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        raise RunFolderError(f"{meta}: not a Network Explorer run (format field missing or foreign)")
    if int(info.get("version", 0)) > RUN_VERSION:
        raise RunFolderError(f"{meta}: run format version {info.get('version')} is newer than this app supports")
    for key in ("family", "config", "step", "epoch"):
        if key not in info:
            raise RunFolderError(f"{meta}: missing field {key!r}")
    weights = path / "weights.safetensors"
    if not weights.exists():
        raise RunFolderError(f"{weights}: missing")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RunFolderError(f"{weights}: corrupt or truncated safetensors file ({exc})") from None
    return RunFolder(path, str(info["family"]), dict(info["config"]), int(info["step"]), int(info["epoch"]),
                     info, tensors, _csv_to_rows(path / "metrics.csv"), _csv_to_rows(path / "evals.csv"))


def restore_trainer(run: RunFolder, **overrides: Any):
    """Build the run's trainer with its weights, step and epoch (data is loaded again from its source)."""
    from explorer.core.families.registry import make_trainer

    config = dict(run.config)
    config.update(overrides)
    trainer = make_trainer(run.family, config)
    try:
        trainer.load_state_tensors(run.tensors)
    except ValueError as exc:
        raise RunFolderError(f"{run.path / 'weights.safetensors'}: {exc}") from None
    trainer.step = run.step
    trainer.epoch = run.epoch
    return trainer


def restore_session(run: RunFolder, **session_kwargs: Any) -> TrainingSession:
    metrics = MetricsLog()
    metrics.add_steps(run.steps)
    for row in run.evals:
        metrics.add_eval(row)
    session = TrainingSession(restore_trainer(run), metrics=metrics, **session_kwargs)
    session.run_info = run.info
    session.request_snapshot()
    return session
