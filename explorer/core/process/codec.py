"""Plain values for the pipe between the window and its training process: no pickle.

Why: a pickle runs code when it is read. The training process is the app's own child, but the same
messages are meant to travel to a training server over a network (see ``docs/wire.md``), and a format
that cannot run code is the one to trust there. A message is turned into a JSON-able tree plus a list
of numpy arrays (:func:`pack`), sent as one frame of ``explorer.core.wire.frame`` (a JSON header and the
arrays' raw bytes), and rebuilt on the other side (:func:`unpack`) from a closed list of types:

* JSON's own values (non-finite floats tagged), tuples, dicts with keys that are not strings, sets;
* numpy arrays and scalars (a torch tensor is sent as its numpy copy);
* the families' settings (subclasses of :class:`~explorer.core.engine.settings.Settings`), rebuilt with
  ``from_dict`` as a saved run's are;
* a :class:`~explorer.core.engine.session.Snapshot`;
* exceptions of the app's own error types and of Python's (any other arrives as a RuntimeError that
  names it);
* the functions of :mod:`explorer.core.persist.commands`, by name (``run_command``'s work).

Anything else is refused with a TypeError when packed: a value the other side could not rebuild is
never sent.
"""

from __future__ import annotations

import builtins
import dataclasses
import math
import types
from pathlib import PurePath
from typing import Any

import numpy as np
import torch

from explorer.core.engine.session import Snapshot
from explorer.core.engine.settings import Settings
from explorer.core.persist import commands

# a dict of one of these keys is a tagged value; a plain dict whose keys are all strings and none starts
# with "__" travels as it is (metric rows, statuses); any other dict as a list of pairs
ARRAY, TUPLE, PAIRS, SET, FLOAT, SETTINGS, SNAPSHOT, ERROR, FUNCTION = (
    "__array", "__tuple", "__pairs", "__set", "__float", "__settings", "__snapshot", "__error", "__function")
TAGS = frozenset({ARRAY, TUPLE, PAIRS, SET, FLOAT, SETTINGS, SNAPSHOT, ERROR, FUNCTION})
MAX_DEPTH = 64  # a message nested deeper than this is refused (the frame's JSON depth limit is lower anyway)

_BUILTIN_ERRORS = ("ArithmeticError", "AssertionError", "AttributeError", "EOFError", "FileExistsError",
                   "FileNotFoundError", "IndexError", "IsADirectoryError", "KeyError", "LookupError",
                   "MemoryError", "NotADirectoryError", "NotImplementedError", "OSError", "OverflowError",
                   "PermissionError", "RuntimeError", "TimeoutError", "TypeError", "ValueError",
                   "ZeroDivisionError")


class CodecError(ValueError):
    """A message that cannot be rebuilt (an unknown tag, type or name): the frame is dropped."""


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    todo: list[type] = [cls]
    while todo:
        subs: list[type] = type.__subclasses__(todo.pop())
        out.extend(subs)
        todo.extend(subs)
    return out


def _settings_classes() -> dict[str, type[Settings]]:
    # the families' settings, imported with the registry; looked up, never imported by a name that came in
    from explorer.core.families import registry  # noqa: F401 - imports every family's settings

    return {f"{c.__module__}:{c.__qualname__}": c for c in _subclasses(Settings)}


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {name: getattr(builtins, name) for name in _BUILTIN_ERRORS}
    for cls in _subclasses(Exception):
        if cls.__module__.startswith("explorer."):
            found[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return found


def _function_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None)
    if (isinstance(fn, types.FunctionType) and fn.__module__ == commands.__name__ and name
            and getattr(commands, name, None) is fn):
        return name
    raise TypeError(f"only the functions of {commands.__name__} can run in the training process, not {fn!r}")


def _error_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}:{cls.__qualname__}"


# -- packing -------------------------------------------------------------------------------------------------
def pack(value: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``(tree, arrays)``: a JSON-able tree whose arrays are named references into ``arrays``."""
    arrays: dict[str, np.ndarray] = {}
    return _pack(value, arrays, 0), arrays


def _pack(v: Any, arrays: dict[str, np.ndarray], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TypeError(f"a message nested deeper than {MAX_DEPTH} levels")
    if v is None or isinstance(v, (bool, int, str)):
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
            raise TypeError("an integer too large to send")
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {FLOAT: repr(v)}
    d = depth + 1
    if isinstance(v, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in v):
            return {k: _pack(x, arrays, d) for k, x in v.items()}
        return {PAIRS: [[_pack(k, arrays, d), _pack(x, arrays, d)] for k, x in v.items()]}
    if isinstance(v, list):
        return [_pack(x, arrays, d) for x in v]
    if isinstance(v, tuple):
        return {TUPLE: [_pack(x, arrays, d) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {SET: [_pack(x, arrays, d) for x in v]}
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "biuf":
            raise TypeError(f"an array of dtype {v.dtype} cannot be sent")
        name = str(len(arrays))
        arrays[name] = v
        return {ARRAY: name}
    if isinstance(v, np.generic):
        return _pack(v.item(), arrays, d)
    if isinstance(v, (PurePath, torch.device)):
        return str(v)
    if isinstance(v, Settings):
        return {SETTINGS: f"{type(v).__module__}:{type(v).__qualname__}", "fields": _pack(v.to_dict(), arrays, d)}
    if isinstance(v, Snapshot):
        # (not dataclasses.asdict: it deep-copies every array)
        return {SNAPSHOT: _pack({f.name: getattr(v, f.name) for f in dataclasses.fields(v)}, arrays, d)}
    if isinstance(v, BaseException):
        return {ERROR: _error_name(v), "message": str(v) if not isinstance(v, KeyError) or not v.args
                else str(v.args[0])}
    if callable(v):
        return {FUNCTION: _function_name(v)}
    raise TypeError(f"a {type(v).__name__} cannot be sent to or from the training process")


# -- unpacking -----------------------------------------------------------------------------------------------
class _Unpacker:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self._settings: dict[str, type[Settings]] | None = None
        self._errors: dict[str, type[BaseException]] | None = None

    def value(self, t: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CodecError(f"a message nested deeper than {MAX_DEPTH} levels")
        if t is None or isinstance(t, (bool, int, float, str)):
            return t
        d = depth + 1
        if isinstance(t, list):
            return [self.value(x, d) for x in t]
        if not isinstance(t, dict):
            raise CodecError(f"a {type(t).__name__} in a message")
        tag = next((k for k in t if k in TAGS), None)
        if tag is None:
            return {k: self.value(x, d) for k, x in t.items()}
        body = t[tag]
        if tag == ARRAY:
            if not isinstance(body, str) or body not in self.arrays:
                raise CodecError(f"a reference to an array that is not in the frame: {body!r}")
            return self.arrays[body]
        if tag == FLOAT:
            if body not in ("nan", "inf", "-inf"):
                raise CodecError(f"not a float: {body!r}")
            return float(body)
        if tag in (TUPLE, SET, PAIRS):
            if not isinstance(body, list):
                raise CodecError(f"{tag} holds a {type(body).__name__}")
            items = [self.value(x, d) for x in body]
            if tag == TUPLE:
                return tuple(items)
            if tag == SET:
                try:
                    return set(items)
                except TypeError:  # (a list or a dict among them)
                    raise CodecError("a set of values that cannot be in a set") from None
            if not all(isinstance(p, list) and len(p) == 2 for p in items):
                raise CodecError("a dict's items are not pairs")
            return {_hashable(k): x for k, x in items}
        if tag == SETTINGS:
            if self._settings is None:
                self._settings = _settings_classes()
            cls = self._settings.get(body) if isinstance(body, str) else None
            fields = self.value(t.get("fields"), d)
            if cls is None or not isinstance(fields, dict):
                raise CodecError(f"unknown settings {body!r}")
            try:
                return cls.from_dict(fields)
            except (TypeError, ValueError) as exc:  # a family's own reading of a field (MLPConfig's hidden)
                raise CodecError(f"settings {cls.__name__} that cannot be made ({exc})") from None
        if tag == SNAPSHOT:
            fields = self.value(body, d)
            try:
                return Snapshot(**fields)
            except TypeError as exc:
                raise CodecError(f"a malformed snapshot: {exc}") from None
        if tag == ERROR:
            if self._errors is None:
                self._errors = _error_classes()
            message = str(t.get("message", ""))
            cls_e = self._errors.get(body) if isinstance(body, str) else None
            if cls_e is not None:
                try:
                    return cls_e(message)
                except Exception:  # noqa: BLE001 - an error type that wants other arguments
                    pass
            short = str(body).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
            return RuntimeError(f"{short}: {message}")
        if tag == FUNCTION:
            fn = getattr(commands, body, None) if isinstance(body, str) else None
            if not isinstance(fn, types.FunctionType) or fn.__module__ != commands.__name__:
                raise CodecError(f"no command {body!r}")
            return fn
        raise CodecError(f"unknown tag {tag}")  # (unreachable: every tag is handled above)


def _hashable(k: Any) -> Any:
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    if isinstance(k, (dict, set)):
        raise CodecError("a dict key that is a dict or a set")
    return k


def unpack(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The value :func:`pack` packed (CodecError if the tree holds anything it would not have made)."""
    return _Unpacker(arrays).value(tree)
