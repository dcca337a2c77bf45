"""``explorer inspect PATH``: what a run folder, a weights file or a network file holds, as text
(:func:`inspect_path`) or as plain values for ``--json`` (:func:`inspect_path_values`).

Nothing is executed from the file: weights are read with safetensors only (a pickle payload, such
as a ``torch.save`` file, is refused unread), JSON with the standard parser. Any fault is a
one-line :class:`InspectError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.core.limits import check_memory
from explorer.core.persist.runfolder import RUN_FORMAT, RunFolderError, load_run, read_weights_header, restore_trainer
from explorer.core.safe_read import UnsafeFileError, escape_text, one_line, read_json


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
    lines.append(f"weights (weights.safetensors){_fit_note(run, tensors)}:")
    lines += _tensor_lines(tensors)
    return "\n".join(lines)


BUNDLED_DATA = ("digits", "bars")  # loaded in milliseconds: the model is built to check the weights against it
CLASSES_SIZE_THE_MODEL = ("mlp", "compare")  # one output unit per class: the number of classes is needed
SEGMENTATION = ("fcn", "fcn-compare")        # labels are masks; the classes come from the network
SEQUENCE_TASKS = ("lstm", "rnn")
NOT_CHECKED = " (not checked against the model: its data is not bundled; export checks it)"


def _fit_note(run, tensors: dict[str, Any]) -> str:
    """The weights checked against the model the run's settings make: InspectError when they do not fit.

    The model is built on a stand-in of the data shape run.json records, and the file's tensor table is checked
    against its parameter shapes (:func:`weights_unchecked`): no data is loaded. Bundled data is loaded too and
    the run restored, as opening it would. An older run.json that does not record the data's shape leaves the
    weights of other data (MNIST, an image folder, a text file, generated scenes or sequences) unchecked, and
    says so."""
    unchecked = weights_unchecked(run, tensors)
    if run.config.get("dataset") in BUNDLED_DATA:
        try:
            restore_trainer(run, device="cpu")
        except RunFolderError as exc:
            raise InspectError(str(exc)) from None
        except ValueError:  # the data could not be made (a DataError): the table is shown as stored
            return " (not checked against the model: its data could not be loaded)"
        return ""
    if unchecked is None:
        return " (shapes checked against the model; its data was not loaded)"
    return NOT_CHECKED if unchecked == UNRECORDED else f" (not checked against the model: {unchecked})"


UNRECORDED = "run.json does not record the shape of its data"


def weights_unchecked(run, tensors: dict[str, Any] | None = None) -> str | None:
    """Check the run's weights (``tensors``: the table of its weights file, read when not given) against the model
    its run.json describes, built on a stand-in of the data shape run.json records, without reading any data.
    InspectError naming the tensor, and the data shape the model was built for, when one does not fit (a
    run.json edited, or another run's); None when they fit; why they could not be checked, otherwise.

    Why: a run folder whose run.json and weights disagree was shown by ``inspect`` and exported, with the shape
    of its data said wrong."""
    weights = run.path / "weights.safetensors"
    if tensors is None:
        tensors, _ = read_safetensors_header(weights)
    expected = expected_parameter_shapes(run)
    if expected is None:
        return UNRECORDED
    if isinstance(expected, str):
        return f"it cannot be built from run.json: {expected}"
    shape = "x".join(str(s) for s in run.info["dataset"]["image_shape"])
    built_for = f" (for data of shape {shape}, run.json's dataset.image_shape)"
    for name, want in expected.items():
        entry = tensors.get(name)
        if entry is None:
            raise InspectError(f"{weights}: no tensor {escape_text(repr(name))}; the run's {run.family} model needs "
                               f"one of shape {_shape_text(want)}")
        found = tuple(int(s) for s in entry["shape"])
        if found != want:
            raise InspectError(f"{weights}: tensor {escape_text(repr(name))} has shape {_shape_text(found)}; the run's "
                               f"{run.family} model needs {_shape_text(want)}{built_for}")
        if entry["dtype"] not in FLOAT_DTYPES:
            raise InspectError(f"{weights}: tensor {escape_text(repr(name))} holds {entry['dtype']}; the run's "
                               f"{run.family} model needs floating-point numbers")
    return None


FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})  # safetensors' names of floating-point dtypes


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def expected_parameter_shapes(run) -> dict[str, tuple[int, ...]] | str | None:
    """The shape of every parameter the run's model has, by its name in the weights file, derived from the run's
    settings and the data shape in run.json without loading any data; None when run.json does not record that
    shape (a run saved before it did), or the fault (one line) when the model cannot be built from them."""
    from explorer.core.families.registry import FAMILIES

    family = FAMILIES[run.family]
    try:
        stand_in = _stand_in_data(run.family, run.info.get("dataset"))
        if stand_in is None:
            return None
        trainer = family.trainer_cls(family.config_cls.from_dict({**run.config, "device": "cpu"}), dataset=stand_in)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        return one_line(exc)
    return trainer.parameter_shapes()


def _stand_in_data(family: str, ds: Any):
    """A data set of zeros with the shape run.json records for the run's data (a handful of examples, every class
    once), for building the run's model; None when run.json does not record what that model's shapes need."""
    if not isinstance(ds, dict):
        return None
    shape = ds.get("image_shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(s, int) and s >= 1 for s in shape):
        return None
    h, w = shape
    name = str(ds.get("name", ""))
    if family in SEQUENCE_TASKS:  # (steps, inputs per step) and the outputs per step
        n_out = ds.get("n_outputs")
        if not isinstance(n_out, int):
            return None
        check_memory(f"a stand-in for sequences of {h}x{w}", 4 * 4 * h * w)
        from explorer.core.data.sequences import SequenceData

        steps = torch.zeros(2, h, w)
        return SequenceData(name, "regression", False, w, n_out, h, steps, torch.zeros(2, n_out), steps.clone(),
                            torch.zeros(2, n_out), 0.0, source="a stand-in for the run's data")
    n_classes = ds.get("n_classes")
    if family in CLASSES_SIZE_THE_MODEL and not isinstance(n_classes, int):
        return None
    from explorer.core.data.datasets import Dataset

    k = max(2, n_classes if isinstance(n_classes, int) else 2)
    check_memory(f"a stand-in for {k} images of {h}x{w}", 2 * 4 * k * h * w)
    x = np.zeros((k, h * w), np.float32)  # grey: a colour network takes grey images, repeated to its channels
    if family in SEGMENTATION:
        y = np.zeros((k, h * w), np.int64)
    else:
        y = np.arange(k, dtype=np.int64) % (n_classes if isinstance(n_classes, int) else k)
    return Dataset(name, x, y, x.copy(), y.copy(), (h, w), note="a stand-in for the run's data")


def inspect_weights(path: Path) -> str:
    tensors, meta = read_safetensors_header(path)
    lines = [f"weights file {escape_text(path)}"]
    if meta:
        lines.append("metadata: " + ", ".join(f"{escape_text(k)}={escape_text(v)}" for k, v in meta.items()))
    return "\n".join(lines + _tensor_lines(tensors))


def inspect_spec(path: Path) -> str:
    from explorer.core.families.registry import check_trainable  # (and it tells the spec checker the families)
    from explorer.core.spec.network import SpecError, load_spec, summary_table, validate

    try:
        spec = load_spec(path)
        validate(spec)  # what ``spec check`` refuses, inspect refuses too
        check_trainable(spec)
        return f"network file {escape_text(path)}\n" + summary_table(spec)
    except (SpecError, ValueError) as exc:
        text = str(exc).splitlines()[0]
        raise InspectError(text if text.startswith(str(path)) else f"{path}: {text}") from None


READS = "a run folder, a .safetensors weights file or a network .json file"  # what inspect reads


def inspect_path(path: str | Path) -> str:
    """A text summary of ``path``: a run folder, a ``.safetensors`` weights file, or a network (spec) file."""
    if isinstance(path, str) and not path.strip():  # Path("") is the current folder: "." was blamed
        raise InspectError(f"the path is empty: name {READS}")
    p = Path(path)
    if not p.exists():
        raise InspectError(f"{p}: no such file or folder")
    if p.is_file() and p.suffix.lower() == ".onnx":  # read as weights, its bytes were "a header length" of 10^18
        raise InspectError(f"{p}: an ONNX graph (what export --onnx writes), which inspect does not read; it reads "
                           f"{READS}")
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
    if p.suffix.lower() == ".safetensors":
        return inspect_weights(p)
    try:  # a weights file under another name (export --safetensors writes any name)
        return inspect_weights(p)
    except InspectError as exc:
        if "pickle" in str(exc):  # that it is a pickle, never unpickled, is worth saying as it is
            raise
        raise InspectError(f"{p}: not {READS} (what inspect reads)") from None


def _tensor_values(tensors: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"dtype": str(t["dtype"]), "shape": [int(v) for v in t["shape"]]} for name, t in tensors.items()}


def _plain(value: Any) -> Any:
    """A value read from run.json as JSON can carry it (numbers that are not finite become strings)."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def inspect_path_values(path: str | Path) -> dict[str, Any]:
    """What :func:`inspect_path` says, as plain values (``explorer inspect --json``): the kind of file, what
    it holds, and the text summary; the same checks, the same InspectError."""
    summary = inspect_path(path)  # every check first: a file that fails them is an error, not values
    p = Path(path)
    kind = summary.split(" ", 1)[0]  # "run", "weights" or "network"
    if kind == "run":
        folder = p if p.is_dir() else p.parent
        run = load_run(folder)
        tensors, _ = read_safetensors_header(folder / "weights.safetensors")
        return {"path": str(folder), "kind": "run", "family": run.family, "step": run.step, "epoch": run.epoch,
                "config": _plain(run.config), "metrics": {"step_rows": len(run.steps), "evaluations": len(run.evals)},
                "last_evaluation": _plain(run.evals[-1]) if run.evals else None,
                "weights": _tensor_values(tensors), "summary": summary}
    if kind == "weights":
        tensors, meta = read_safetensors_header(p)
        return {"path": str(p), "kind": "weights", "metadata": dict(meta), "tensors": _tensor_values(tensors),
                "summary": summary}
    import explorer.core.families.registry  # noqa: F401 - it tells the spec checker the families
    from explorer.core.spec.network import load_spec, validate

    spec = load_spec(p)
    inf = validate(spec)
    return {"path": str(p), "kind": "network", "family": spec.family, "layers": len(spec.layers),
            "parameters": int(inf.total_params),
            "output_shape": list(inf.output_shape) if inf.output_shape is not None else None, "summary": summary}
