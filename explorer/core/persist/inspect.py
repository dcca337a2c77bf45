"""``explorer inspect PATH``: what a run folder, a weights file or a network file holds, as text.

Nothing is executed from the file: weights are read with safetensors only (a pickle payload, such
as a ``torch.save`` file, is refused unread), JSON with the standard parser. Any fault is a
one-line :class:`InspectError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from explorer.core.persist.runfolder import RUN_FORMAT, RunFolderError, load_run, read_weights_header, restore_trainer
from explorer.core.safe_read import UnsafeFileError, escape_text, read_json


class InspectError(ValueError):
    """The file is missing, corrupt, truncated or foreign; one line naming the file and the fault."""


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape_text(v)


def read_safetensors_header(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors' names, dtypes and shapes and the metadata of a safetensors file, checked against its
    size, without loading any tensor (and never unpickling anything)."""
    try:
        return read_weights_header(path)
    except RunFolderError as exc:
        raise InspectError(str(exc)) from None
    except OSError as exc:
        raise InspectError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _tensor_lines(tensors: dict[str, Any]) -> list[str]:
    lines, total = [], 0
    for name, t in tensors.items():
        shape = [int(s) for s in t["shape"]]
        count = 1
        for s in shape:
            count *= s
        total += count
        lines.append(f"  {escape_text(name):<28} {t['dtype']:<5} {'x'.join(map(str, shape)) or 'scalar'}")
    lines.append(f"  {len(tensors)} tensors, {total:,} numbers")
    return lines


def inspect_run(path: Path) -> str:
    try:
        run = load_run(path)
    except RunFolderError as exc:
        raise InspectError(str(exc)) from None
    info = run.info
    lines = [f"run folder {escape_text(path)}", f"family: {run.family}", f"step {run.step}, epoch {run.epoch}",
             f"saved {_num(info.get('saved_at', '?'))} on {_num(info.get('device', '?'))} "
             f"by version {_num(info.get('explorer_version', '?'))}"]
    ds = info.get("dataset")
    if isinstance(ds, dict):
        shape = "x".join(map(str, ds.get("image_shape", [])))
        lines.append(f"data: {_num(ds.get('name'))} ({shape}), {ds.get('n_train')} train / {ds.get('n_test')} held-out")
    lines.append("settings: " + ", ".join(f"{escape_text(k)}={_num(v)}" for k, v in run.config.items()
                                           if not isinstance(v, (dict, list)) or len(str(v)) < 60))
    lines.append(f"metrics: {len(run.steps)} step rows, {len(run.evals)} evaluations")
    if run.evals:
        last = run.evals[-1]
        lines.append("last evaluation: " + ", ".join(f"{escape_text(k)} {_num(v)}" for k, v in last.items()))
    tensors, _ = read_safetensors_header(path / "weights.safetensors")
    lines.append(f"weights (weights.safetensors){_fit_note(run)}:")
    lines += _tensor_lines(tensors)
    return "\n".join(lines)


BUNDLED_DATA = ("digits", "bars")  # loaded in milliseconds: the model is built to check the weights against it


def _fit_note(run) -> str:
    """The weights checked against the model the run's settings make, where that is cheap (bundled data):
    InspectError when they do not fit; otherwise a note that they were not checked."""
    if run.config.get("dataset") not in BUNDLED_DATA:
        return " (not checked against the model: its data is not bundled; export checks it)"
    try:
        restore_trainer(run, device="cpu")
    except RunFolderError as exc:
        raise InspectError(str(exc)) from None
    except ValueError:  # the data could not be made (a DataError): the table is shown as stored
        return " (not checked against the model: its data could not be loaded)"
    return ""


def inspect_weights(path: Path) -> str:
    tensors, meta = read_safetensors_header(path)
    lines = [f"weights file {escape_text(path)}"]
    if meta:
        lines.append("metadata: " + ", ".join(f"{escape_text(k)}={escape_text(v)}" for k, v in meta.items()))
    return "\n".join(lines + _tensor_lines(tensors))


def inspect_spec(path: Path) -> str:
    from explorer.core.spec.network import SpecError, load_spec, summary_table, validate

    try:
        spec = load_spec(path)
        validate(spec)  # what ``spec check`` refuses, inspect refuses too
        return f"network file {escape_text(path)}\n" + summary_table(spec)
    except SpecError as exc:
        text = str(exc).splitlines()[0]
        raise InspectError(text if text.startswith(str(path)) else f"{path}: {text}") from None


def inspect_path(path: str | Path) -> str:
    """A text summary of ``path``: a run folder, a ``.safetensors`` weights file, or a network (spec) file."""
    p = Path(path)
    if not p.exists():
        raise InspectError(f"{p}: no such file or folder")
    if p.is_dir():
        return inspect_run(p)
    if p.name == "run.json":
        return inspect_run(p.parent)
    if p.suffix == ".json":
        try:
            head = read_json(p)
        except UnsafeFileError as exc:
            raise InspectError(str(exc).splitlines()[0]) from None
        if isinstance(head, dict) and head.get("format") == RUN_FORMAT:
            return inspect_run(p.parent)
        return inspect_spec(p)
    return inspect_weights(p)
