"""``explorer inspect PATH``: what a run folder, a weights file or a network file holds, as text.

Nothing is executed from the file: weights are read with safetensors only (a pickle payload, such
as a ``torch.save`` file, is refused unread), JSON with the standard parser. Any fault is a
one-line :class:`InspectError` naming the file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from explorer.core.persist.runfolder import RUN_FORMAT, RunFolderError, load_run

MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class InspectError(ValueError):
    """The file is missing, corrupt, truncated or foreign; one line naming the file and the fault."""


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def read_safetensors_header(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors' names, dtypes and shapes and the metadata of a safetensors file, checked against its
    size, without loading any tensor (and never unpickling anything)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise InspectError(f"{path}: truncated (only {len(head)} bytes): not a safetensors file")
            if head[:2] == b"PK" or head[:1] == b"\x80":
                raise InspectError(f"{path}: a pickle/torch.save file, not safetensors: refused, never unpickled")
            (n,) = struct.unpack("<Q", head)
            if n <= 1 or n > MAX_HEADER or n + 8 > size:
                raise InspectError(f"{path}: not a safetensors file (header length {n} does not fit a "
                                   f"{size}-byte file)")
            raw = f.read(n)
    except OSError as exc:
        raise InspectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InspectError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise InspectError(f"{path}: not a safetensors file (its header is not a JSON object)")
    meta = header.pop("__metadata__", {}) or {}
    data_len = size - 8 - n
    tensors: dict[str, Any] = {}
    for name, t in header.items():
        if not isinstance(t, dict) or not {"dtype", "shape", "data_offsets"} <= set(t):
            raise InspectError(f"{path}: corrupt safetensors header (entry {name!r})")
        start, end = t["data_offsets"]
        if not (0 <= start <= end <= data_len):
            raise InspectError(f"{path}: truncated: tensor {name!r} lies beyond the end of the file")
        tensors[name] = t
    return tensors, {str(k): str(v) for k, v in meta.items()}


def _tensor_lines(tensors: dict[str, Any]) -> list[str]:
    lines, total = [], 0
    for name, t in tensors.items():
        shape = [int(s) for s in t["shape"]]
        count = 1
        for s in shape:
            count *= s
        total += count
        lines.append(f"  {name:<28} {t['dtype']:<5} {'x'.join(map(str, shape)) or 'scalar'}")
    lines.append(f"  {len(tensors)} tensors, {total:,} numbers")
    return lines


def inspect_run(path: Path) -> str:
    try:
        run = load_run(path)
    except RunFolderError as exc:
        raise InspectError(str(exc)) from None
    info = run.info
    lines = [f"run folder {path}", f"family: {run.family}", f"step {run.step}, epoch {run.epoch}",
             f"saved {info.get('saved_at', '?')} on {info.get('device', '?')} by version {info.get('explorer_version', '?')}"]
    ds = info.get("dataset")
    if isinstance(ds, dict):
        shape = "x".join(map(str, ds.get("image_shape", [])))
        lines.append(f"data: {ds.get('name')} ({shape}), {ds.get('n_train')} train / {ds.get('n_test')} held-out")
    lines.append("settings: " + ", ".join(f"{k}={_num(v)}" for k, v in run.config.items()
                                           if not isinstance(v, (dict, list)) or len(str(v)) < 60))
    lines.append(f"metrics: {len(run.steps)} step rows, {len(run.evals)} evaluations")
    if run.evals:
        last = run.evals[-1]
        lines.append("last evaluation: " + ", ".join(f"{k} {_num(v)}" for k, v in last.items()))
    tensors, _ = read_safetensors_header(path / "weights.safetensors")
    lines.append("weights (weights.safetensors):")
    lines += _tensor_lines(tensors)
    return "\n".join(lines)


def inspect_weights(path: Path) -> str:
    tensors, meta = read_safetensors_header(path)
    lines = [f"weights file {path}"]
    if meta:
        lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in meta.items()))
    return "\n".join(lines + _tensor_lines(tensors))


def inspect_spec(path: Path) -> str:
    from explorer.core.spec.network import SpecError, load_spec, summary_table

    try:
        spec = load_spec(path)
        return f"network file {path}\n" + summary_table(spec)
    except SpecError as exc:
        raise InspectError(str(exc).splitlines()[0]) from None


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
            head = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise InspectError(f"{p}: not valid JSON ({str(exc).splitlines()[0]})") from None
        if isinstance(head, dict) and head.get("format") == RUN_FORMAT:
            return inspect_run(p.parent)
        return inspect_spec(p)
    return inspect_weights(p)
