"""Run folders: a finished or interrupted run, saved so it can be reopened.

    run.json             family, configuration, step/epoch, data set summary, versions
    weights.safetensors  model weights and optimiser state (never pickle)
    metrics.csv          one row per recorded training step (a long run's: per window of steps, their means)
    evals.csv            one row per evaluation (held-out metrics; epoch ends flagged)

The folder is written whole or not at all (``explorer.core.atomic.atomic_write_folder``): the new run is
written and fsynced in a hidden sibling folder, then swapped in, so a kill or a full disk mid-save leaves
the previous run as it was, never a mixture of two.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from explorer import __version__
from explorer.core.atomic import atomic_write_folder, write_file_synced
from explorer.core.engine.session import MetricsLog, TrainingSession
from explorer.core.persist.schema import (
    RUN_FORMAT,
    RUN_VERSION,
    SchemaError,
    check_tensor_table,
    check_weights_family,
    parse_metrics_csv,
    read_run_info,
)
from explorer.core.safe_read import (
    UnsafeFileError,
    escape_text,
    one_line,
    parse_json,
    read_bytes,
    read_prefix,
    read_text,
)

MAX_WEIGHTS_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
MAX_METRICS_BYTES = 512 * 1024 * 1024   # a million rows of a dozen metrics is ~150 MB


class RunFolderError(SchemaError):
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
    if not path.exists() and not path.is_symlink():
        return []
    try:
        return parse_metrics_csv(read_text(path, MAX_METRICS_BYTES), path)
    except (SchemaError, UnsafeFileError) as exc:
        raise RunFolderError(str(exc)) from None


def read_weights_header(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The tensor table and metadata of a safetensors file, checked against its size before any tensor is
    read (and never unpickling anything): RunFolderError naming the file and the fault."""
    try:
        size = path.stat().st_size
        head = read_prefix(path, 8)
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnsafeFileError as exc:
        raise RunFolderError(str(exc)) from None
    n = int.from_bytes(head.ljust(8, b"\0"), "little")
    fits = len(head) == 8 and 1 < n <= MAX_WEIGHTS_HEADER and n + 8 <= size
    if not (fits and read_prefix(path, 9)[8:] == b"{") and (head[:2] == b"PK" or head[:1] == b"\x80"):
        raise RunFolderError(f"{path}: a pickle/torch.save file, not safetensors: refused, never unpickled")
    if len(head) < 8:
        raise RunFolderError(f"{path}: truncated (only {len(head)} bytes): not a safetensors file")
    if not fits:
        raise RunFolderError(f"{path}: corrupt or truncated safetensors file (header length {n} does not fit a "
                             f"{size}-byte file)")
    try:
        raw = read_prefix(path, 8 + n)[8:]
        header = parse_json(raw, str(path), invalid="not a safetensors file: its header is not JSON")
        return check_tensor_table(header, size - 8 - n, path)
    except (SchemaError, UnsafeFileError) as exc:
        raise RunFolderError(str(exc)) from None


RUN_FILES = {"run.json", "weights.safetensors", "metrics.csv", "evals.csv"}  # what save_run writes
REQUIRED_RUN_FILES = {"run.json", "weights.safetensors"}
MAX_RUN_FILE_BYTES = 4 << 30  # a run's file read whole to send it to a training server


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
    out = _replaceable(out_dir)
    return atomic_write_folder(out, lambda tmp: write_run_files(session, tmp, extra))


def _replaceable(out_dir: str | Path) -> Path:
    """``out_dir`` if a run may be saved there (new, empty, or a run folder); RunFolderError otherwise."""
    out = Path(out_dir)
    if out.exists():
        others = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
        if others is None or not set(others) <= RUN_FILES:
            what = "not a folder" if others is None else f"holds other files ({', '.join(others[:3])})"
            raise RunFolderError(f"{out}: {what}; a run is saved into a new or empty folder, or over a run")
    return out


# -- a run as plain values: what crosses a wire (the window saving a run trained on a server, a model moved) --
def run_folder_files(session: TrainingSession, extra: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The run's files as :func:`save_run` writes them, name -> its bytes (a uint8 array). Call between steps.

    Why: a run trained elsewhere is saved where the window is, from these; and a model moves between the
    window's machine and a server as these, so it goes on from the same weights and curves."""
    with tempfile.TemporaryDirectory(prefix="explorer-run-") as tmp:
        out = Path(tmp) / "run"
        write_run_files(session, out, extra)
        return {p.name: np.frombuffer(p.read_bytes(), dtype=np.uint8).copy() for p in sorted(out.iterdir())}


def _checked_files(files: Any, where: str) -> dict[str, bytes]:
    """``files`` as name -> bytes if they are exactly a run's files; RunFolderError naming ``where`` otherwise."""
    if not isinstance(files, dict) or not REQUIRED_RUN_FILES <= set(files) <= RUN_FILES:
        names = sorted(map(str, files)) if isinstance(files, dict) else type(files).__name__
        raise RunFolderError(f"{where}: not a run's files (expected {', '.join(sorted(RUN_FILES))}; got {names})")
    out: dict[str, bytes] = {}
    for name, data in files.items():
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
            raise RunFolderError(f"{where}: {name} is not a file's bytes")
        out[name] = data.tobytes()
    return out


def read_run_folder_files(path: str | Path) -> dict[str, np.ndarray]:
    """A saved run's files as :func:`run_folder_files` gives a session's, after reading the folder as
    :func:`load_run` does (a run opened in a window that trains on a server goes there as these)."""
    load_run(path)
    folder = Path(path)
    return {name: np.frombuffer(read_bytes(folder / name, MAX_RUN_FILE_BYTES), dtype=np.uint8).copy()
            for name in sorted(RUN_FILES) if (folder / name).exists()}


def _write_checked(files: dict[str, bytes], out: Path, where: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_file_synced(out / name, data)
    try:
        load_run(out)  # read back as any run folder is, before it takes the place of anything
    except RunFolderError as exc:
        raise RunFolderError(f"{where}: {str(exc).replace(str(out), 'the run')}") from None


def save_run_files(files: Any, out_dir: str | Path, where: str = "the run received") -> Path:
    """Write a run received as :func:`run_folder_files` into ``out_dir``, whole or not at all (as save_run).

    Every file is checked as a saved run's are (load_run) before the folder takes ``out_dir``'s place."""
    checked = _checked_files(files, where)
    out = _replaceable(out_dir)
    return atomic_write_folder(out, lambda tmp: _write_checked(checked, tmp, where))


def load_run_files(files: Any, where: str = "the run received") -> RunFolder:
    """A run received as :func:`run_folder_files`, read and checked as :func:`load_run` reads a folder."""
    checked = _checked_files(files, where)
    with tempfile.TemporaryDirectory(prefix="explorer-run-") as tmp:
        out = Path(tmp) / "run"
        _write_checked(checked, out, where)
        return load_run(out)


def dataset_summary(ds: Any) -> dict[str, Any]:
    """What run.json keeps of the run's data set: its name and size, and what the model's shapes depend on, so
    that ``inspect`` can check the weights without loading the data: the image shape (a sequence task's:
    steps x inputs per step) and, for images, the channels and the number of classes (labels or mask values);
    for a sequence task, its outputs per step."""
    out: dict[str, Any] = {"name": ds.name, "image_shape": [int(s) for s in ds.image_shape],
                           "n_train": int(ds.train_x.shape[0]), "n_test": int(ds.test_x.shape[0])}
    if hasattr(ds, "n_out"):  # a SequenceData
        out["n_outputs"] = int(ds.n_out)
        return out
    pixels = int(ds.image_shape[0]) * int(ds.image_shape[1])
    row = int(ds.train_x.shape[1]) if ds.train_x.ndim == 2 else 0
    if pixels and row and row % pixels == 0:
        out["channels"] = row // pixels  # rows are C*H*W (or H*W*C) pixels
    labels = [y for y in (ds.train_y, ds.test_y) if y is not None and len(y)]
    if labels:
        out["n_classes"] = max(int(y.max()) for y in labels) + 1
    return out


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
        info["dataset"] = dataset_summary(ds)
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
    try:
        info = read_run_info(path)  # the folder put back whole if a save was interrupted, run.json checked
    except SchemaError as exc:
        raise RunFolderError(str(exc)) from None
    weights = path / "weights.safetensors"
    if not weights.exists():
        raise RunFolderError(f"{weights}: missing")
    _, weights_meta = read_weights_header(weights)  # the table checked before any tensor is read
    try:
        check_weights_family(weights_meta, info["family"], weights)
    except SchemaError as exc:
        raise RunFolderError(str(exc)) from None
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RunFolderError(f"{weights}: corrupt or truncated safetensors file ({exc})") from None
    return RunFolder(path, info["family"], dict(info["config"]), info["step"], info["epoch"],
                     info, tensors, _csv_to_rows(path / "metrics.csv"), _csv_to_rows(path / "evals.csv"))


def restore_trainer(run: RunFolder, **overrides: Any):
    """Build the run's trainer with its weights, step and epoch (data is loaded again from its source)."""
    from explorer.core.families.registry import make_trainer

    config = dict(run.config)
    config.update(overrides)
    trainer = make_trainer(run.family, config)
    weights = run.path / "weights.safetensors"
    try:
        trainer.load_state_tensors(run.tensors)
    except (ValueError, IndexError, KeyError, TypeError, RuntimeError) as exc:
        # a tensor missing, of another shape, or of a form the family cannot take (a 0-d for a vector)
        text = one_line(exc)
        raise RunFolderError(f"{weights}: does not fit the run's {run.family} model: {escape_text(text)}") from None
    trainer.step = run.step
    trainer.epoch = run.epoch
    return trainer


def restore_session(run: RunFolder, session_type: Callable[..., TrainingSession] = TrainingSession,
                    **session_kwargs: Any) -> TrainingSession:
    """``run``'s model in a new session (``session_type(trainer, **kwargs)``: a data-parallel one, say)."""
    metrics = MetricsLog()
    metrics.add_steps(run.steps)
    for row in run.evals:
        metrics.add_eval(row)
    session = session_type(restore_trainer(run), metrics=metrics, **session_kwargs)
    session.run_info = run.info
    session.request_snapshot()
    return session
