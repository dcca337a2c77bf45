"""What a valid file of the app's is, checked before anything is built from it.

One check per file the app reads back: a run folder's ``run.json`` (its fields, and its configuration
against the family's settings), the tensor table of its ``weights.safetensors`` (well-formed, and of
the run's family), its ``metrics.csv``/``evals.csv``. A fault is a :class:`SchemaError` whose message
reads ``FILE: what is wrong, where``, e.g.
``run.json: config.hidden must be a whole number between 1 and 20000 (hidden units), got "16"``.

The configurations' own field metadata (``explorer.core.engine.settings.setting``: kind, range,
choices) is the description of a valid configuration; the field's type annotation covers the settings
declared without a range. Nothing here builds a model or loads data.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import math
import numbers
import re
import types
import typing
from pathlib import Path
from typing import Any

from explorer.core.engine.settings import Settings, rules
from explorer.core.safe_read import escape_text, one_line

RUN_FORMAT = "network-explorer-run"
RUN_VERSION = 1
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
MAX_STEP = 10**15           # a step or epoch counter past this is not one the app wrote
MAX_TENSOR_NUMBERS = 2**34  # no model the app builds has a tensor near this (64 GB of float32)
MAX_SEED = 2**63 - 1
"""The largest seed: torch's generators take 64 bits (the families add small offsets to the seed) and the
training process's messages carry signed 64-bit numbers. A larger one failed deep in torch, unnamed."""

# safetensors' dtypes and their sizes in bytes
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


class SchemaError(ValueError):
    """A file does not have the form the app writes; the message names the file, the fault and where."""


def shown(value: Any, limit: int = 60) -> str:
    """A value as a message shows it: JSON-like, shortened, control characters escaped."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return escape_text(text)


# -- values against type annotations ---------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _type_words(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_words(a) for a in typing.get_args(hint))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_type_words(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
            dict: "an object"}.get(hint, "a value")


def fits_type(hint: Any, value: Any) -> bool:
    """Whether the JSON ``value`` is of the annotated type (a list stands for a tuple; an int is a float)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(fits_type(a, value) for a in typing.get_args(hint))
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return not args or all(fits_type(args[0], v) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_number(value)
    if hint is str:
        return isinstance(value, str)
    return True  # a type the JSON form cannot carry: left to the family's own check


def config_fault(config_cls: type[Settings], config: Any, run_family: str | None = None) -> str | None:
    """What is wrong with a run's configuration ``config`` (JSON) for ``config_cls``, or None.

    Each known field is checked against its type annotation, then against its setting's rule; then the
    configuration is made and its own :meth:`Settings.validate` (the rules between settings) runs.

    ``run_family``: ``config`` is a saved run's (its run.json), of that family. Then a name that is not one of
    its settings is refused too (it was dropped unsaid, and the run trained with the default), and so is a data
    set its family cannot load (``inspect`` passed it, ``export`` and the window refused it). A request to
    train meets an unknown data set where its data is loaded, after the training server's own checks."""
    if not isinstance(config, dict):
        return f"config must be an object, got {shown(config)}"
    hints = typing.get_type_hints(config_cls)
    declared = rules(config_cls)
    names = [field.name for field in dataclasses.fields(config_cls)]
    unknown = [str(key) for key in config if key not in names] if run_family else []
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1, cutoff=0.8)
        hint = f"did you mean {close[0]}?" if close else f"its settings: {', '.join(sorted(names))}"
        return f"config.{escape_text(unknown[0])} is not a setting of the {run_family} family ({hint})"
    for field in dataclasses.fields(config_cls):
        if field.name not in config:
            continue
        value = config[field.name]
        where = f"config.{field.name}"
        rule = declared.get(field.name)
        if rule is not None and not rule.allows(value) and (rule.kind or rule.choices is not None):
            label = rule.label or field.name.replace("_", " ")
            extra = f" ({label})" if label != field.name.replace("_", " ") else ""
            return f"{where} must be {rule.requirement()}{extra}, got {shown(value)}"
        hint = hints.get(field.name, Any)
        if not fits_type(hint, value):
            return f"{where} must be {_type_words(hint)}, got {shown(value)}"
        text = _beyond_the_rule(field.name, rule, value, saved=run_family is not None)
        if text:
            return f"{where} must be {text}, got {shown(value)}"
    if isinstance(config.get("spec"), dict):
        from explorer.core.spec.network import SpecError, spec_from_dict

        try:
            spec_from_dict(config["spec"])
        except (SpecError, ValueError, TypeError, KeyError) as exc:
            return f"config.spec: {one_line(exc)}"
    try:
        config_cls.from_dict(config).validate()
    except (ValueError, TypeError, KeyError) as exc:
        return f"config: {one_line(exc)}"
    return None


def _beyond_the_rule(name: str, rule: Any, value: Any, saved: bool) -> str | None:
    """What a valid value is, in words, when ``value`` passes the setting's own rule but not what the code that
    uses it takes: a seed past 64 bits; in a saved run (``saved``), a data set the loader does not know (the
    families that train on the bundled or downloaded images declare no choices). None when it is valid."""
    if name == "seed" and _is_int(value) and not 0 <= value <= MAX_SEED:
        return f"a whole number between 0 and {MAX_SEED}"
    if saved and name == "dataset" and (rule is None or rule.choices is None) and isinstance(value, str):
        from explorer.core.data.datasets import DATASET_NAMES

        if value.strip().lower().replace("_", "-") not in DATASET_NAMES:  # as load_dataset reads the name
            return f"one of {', '.join(DATASET_NAMES)}"
    return None


# -- run.json ---------------------------------------------------------------------------------------
def _counter_fault(info: dict, key: str) -> str | None:
    v = info[key]
    if not _is_int(v) or not 0 <= v <= MAX_STEP:
        return f"{key} must be a whole number from 0 to {MAX_STEP}, got {shown(v)}"
    return None


def check_run_info(info: Any, where: str | Path) -> dict[str, Any]:
    """``info`` (a parsed run.json) if it is a run this app can open; SchemaError naming the fault."""
    from explorer.core.families.registry import FAMILIES

    def fault(text: str) -> SchemaError:
        return SchemaError(f"{where}: {text}")

    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        raise fault("not a Network Explorer run (format field missing or foreign)")
    version = info.get("version", RUN_VERSION)
    if not _is_int(version) or version < 1:
        raise fault(f"version must be a whole number >= 1, got {shown(version)}")
    if version > RUN_VERSION:
        raise fault(f"run format version {version} is newer than this app supports ({RUN_VERSION})")
    for key in ("family", "config", "step", "epoch"):
        if key not in info:
            raise fault(f"missing field {key!r}")
    family = info["family"]
    if not isinstance(family, str) or family not in FAMILIES:
        raise fault(f"family must be one of {', '.join(sorted(FAMILIES))}, got {shown(family)}")
    for key in ("step", "epoch"):
        text = _counter_fault(info, key)
        if text:
            raise fault(text)
    for key in ("saved_at", "device", "explorer_version"):
        if key in info and not isinstance(info[key], str):
            raise fault(f"{key} must be a string, got {shown(info[key])}")
    if "gui" in info:
        gui = info["gui"]
        if not isinstance(gui, dict):
            raise fault(f"gui must be an object, got {shown(gui)}")
        layout = gui.get("layout")
        if layout is not None and not (isinstance(layout, str) and _BASE64.fullmatch(layout)):
            raise fault(f"gui.layout must be base64 text (a saved window layout), got {shown(layout)}")
        if "layout_version" in gui and not _is_int(gui["layout_version"]):
            raise fault(f"gui.layout_version must be a whole number, got {shown(gui['layout_version'])}")
    ds = info.get("dataset")
    if ds is not None:
        if not isinstance(ds, dict):
            raise fault(f"dataset must be an object, got {shown(ds)}")
        if "name" in ds and not isinstance(ds["name"], str):
            raise fault(f"dataset.name must be a string, got {shown(ds['name'])}")
        shape = ds.get("image_shape", [])
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise fault(f"dataset.image_shape must be a list of whole numbers, got {shown(shape)}")
        for key in ("n_train", "n_test"):
            if key in ds and not (_is_int(ds[key]) and ds[key] >= 0):
                raise fault(f"dataset.{key} must be a whole number >= 0, got {shown(ds[key])}")
        for key in ("channels", "n_classes", "n_outputs"):  # written since the weights' shapes are checked from them
            if key in ds and not (_is_int(ds[key]) and ds[key] >= 1):
                raise fault(f"dataset.{key} must be a whole number >= 1, got {shown(ds[key])}")
    text = config_fault(FAMILIES[family].config_cls, info["config"], family)
    if text:
        raise fault(text)
    return info


def read_run_info(path: str | Path) -> dict[str, Any]:
    """The checked run.json of the run folder ``path`` (a save a crash interrupted is put back whole first);
    SchemaError naming the folder or the file and the fault. The weights are not read: the command line
    checks a run folder with it before the window opens; :func:`~explorer.core.persist.runfolder.load_run`
    reads the rest."""
    from explorer.core.atomic import recover_folder
    from explorer.core.safe_read import MAX_JSON_BYTES, UnsafeFileError, read_json

    path = Path(path)
    recover_folder(path)  # its folder put back whole, its leftovers removed
    if not path.is_dir():
        raise SchemaError(f"{path}: {'not a folder' if path.exists() else 'no such folder'}")
    meta = path / "run.json"
    if not meta.exists() and not meta.is_symlink():
        raise SchemaError(f"{path}: no run.json, so this is not a Network Explorer run folder")
    try:
        return check_run_info(read_json(meta, MAX_JSON_BYTES, invalid="corrupt JSON"), meta)
    except UnsafeFileError as exc:
        raise SchemaError(str(exc)) from None


# -- weights.safetensors ----------------------------------------------------------------------------
def check_tensor_table(header: Any, data_len: int, where: str | Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The tensor entries and metadata of a safetensors header (parsed JSON) whose data part holds
    ``data_len`` bytes, each entry checked: a known dtype, a shape of whole numbers whose size matches
    its byte range, offsets a pair of whole numbers inside the data. SchemaError naming the tensor."""
    if not isinstance(header, dict):
        raise SchemaError(f"{where}: not a safetensors file (its header is not a JSON object)")
    meta = header.get("__metadata__", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise SchemaError(f"{where}: the header's __metadata__ must be an object of strings, got {shown(meta)}")
    tensors: dict[str, dict] = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        label = shown(name)
        if not isinstance(t, dict) or not {"dtype", "shape", "data_offsets"} <= set(t):
            raise SchemaError(f"{where}: corrupt safetensors header (entry {label} lacks dtype, shape or data_offsets)")
        dtype, shape, offsets = t["dtype"], t["shape"], t["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise SchemaError(f"{where}: tensor {label} has an unknown dtype {shown(dtype)}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise SchemaError(f"{where}: tensor {label} has a shape that is not a list of whole numbers: {shown(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)):
            raise SchemaError(f"{where}: tensor {label} has data_offsets that are not a pair of whole numbers: "
                              f"{shown(offsets)}")
        count = math.prod(shape)
        if count > MAX_TENSOR_NUMBERS:
            raise SchemaError(f"{where}: tensor {label} claims {count} numbers, more than any model here has")
        start, end = offsets
        if not 0 <= start <= end <= data_len:
            raise SchemaError(f"{where}: truncated: tensor {label} lies beyond the end of the file")
        if end - start != count * DTYPE_BYTES[dtype]:
            raise SchemaError(f"{where}: tensor {label}: shape {shown(shape)} of {dtype} needs "
                              f"{count * DTYPE_BYTES[dtype]} bytes, its data holds {end - start}")
        tensors[name] = t
    return tensors, dict(meta)


def check_weights_family(meta: dict[str, str], family: str, where: str | Path) -> None:
    """A weights file written for another family than its run.json names is refused."""
    written_for = meta.get("family")
    if written_for is not None and written_for != family:
        raise SchemaError(f"{where}: the weights are of the {shown(written_for)} family, run.json says {shown(family)}")


# -- metrics.csv / evals.csv ------------------------------------------------------------------------
def parse_metrics_csv(text: str, where: str | Path) -> list[dict[str, float]]:
    """Rows of a metrics CSV: a header of distinct names, then rows of as many numbers (an empty cell is a
    value not recorded at that row). SchemaError naming the row and column otherwise."""
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise SchemaError(f"{where}: not a valid CSV file ({exc})") from None
    if not table:
        return []
    names = table[0]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise SchemaError(f"{where}: the header must name each column once, got {shown(names)}")
    rows: list[dict[str, float]] = []
    for number, cells in enumerate(table[1:], start=2):
        if not cells:
            continue  # a blank line
        if len(cells) != len(names):
            raise SchemaError(f"{where}: line {number} has {len(cells)} values, the header names {len(names)}")
        row: dict[str, float] = {}
        for name, cell in zip(names, cells):
            if cell == "":
                continue
            try:
                row[name] = float(cell)
            except ValueError:
                raise SchemaError(f"{where}: line {number}, column {shown(name)}: not a number: {shown(cell)}") from None
        rows.append(row)
    return rows


__all__ = ["SchemaError", "RUN_FORMAT", "RUN_VERSION", "MAX_SEED", "check_run_info", "read_run_info", "config_fault", "check_tensor_table",
           "check_weights_family", "parse_metrics_csv", "fits_type", "shown", "DTYPE_BYTES"]
