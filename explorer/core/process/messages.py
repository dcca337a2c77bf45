"""What a window may say to its training process, checked before use: its session request, then its commands.

Why: the same messages reach a training process from a window on another machine, through a training
server (``explorer.core.remote.server``), and a token-holder's bytes are trusted no more than a file's.
The codec (``explorer.core.process.codec``) rebuilds plain values only; this module checks that they
form a message the training process knows (the fields it reads, of the types it reads them as, within
their ranges) before anything is built from them, and says what is wrong in one line that names the
field and the fault: ``malformed session request: family must be one of rbm, ..., got "banana"``.

The server refuses what fails here before the process sees it; the process checks again and refuses
what fails (a window of its own machine, with a bug, hears the same one-line reason).
"""

from __future__ import annotations

import inspect
import types
from typing import Any, cast

import numpy as np

from explorer.core.engine.session import TrainingSession
from explorer.core.engine.settings import Rule, Settings
from explorer.core.persist import commands
from explorer.core.persist.schema import config_fault, shown

# what a session request holds (ProcessSession._spec; ``ranks`` a training server's own)
REQUEST_FIELDS = ("family", "config", "run_dir", "run_files", "threads", "step_rate", "session", "ranks")
# the TrainingSession methods a window calls through a ``do``
CONTROLS = frozenset({"start", "pause", "step", "reset", "set_hparams", "set_device", "set_threads",
                      "set_snapshot_rate", "set_step_rate", "set_epochs", "request_snapshot", "subscribe",
                      "unsubscribe", "snapshot_taken"})
MESSAGES = ("do", "call", "stop", "resync")  # what a window sends once its session is built
SERVER_MESSAGES = ("query",)                 # and what a training server sends for its followers
MAX_THREADS = 1024  # intra-op threads: past every machine this app trains on (torch would try to start them)
MAX_RANKS = 1024
MAX_ID = 2**63      # a call's id is a signed 64-bit number (what the codec sends)

# what the arguments a session reads as numbers may be: what it takes (it reads a step count under 1 as 1,
# an infinite step rate as full speed), short of what would exhaust it (a billion threads); the rest are
# checked where they are used (a setting's value by its rule, a device's name against the devices there)
_REAL = (int, float)
_REAL_OR_NONE = (int, float, type(None))
_THREADS = Rule(kind="int", hi=MAX_THREADS, optional=True)
_ARGUMENTS: dict[tuple[str, str], Rule | type | tuple[type, ...]] = {
    ("step", "n"): Rule(kind="int"),
    ("set_threads", "n"): _THREADS,
    ("set_epochs", "epochs"): Rule(kind="int", optional=True),
    ("set_snapshot_rate", "hz"): _REAL,
    ("set_step_rate", "steps_per_s"): _REAL_OR_NONE,
    ("snapshot_taken", "seq"): Rule(kind="int"),
    ("set_device", "name"): str,
    ("subscribe", "pull"): bool,
}
_WORDS = {bool: "true or false", str: "a string of at most 200 characters", _REAL: "a number",
          _REAL_OR_NONE: "a number or null"}
# the settings of a TrainingSession a request may pass (``session``); a MetricsLog cannot cross
_SESSION: dict[str, Rule | type | tuple[type, ...]] = {
    "snapshot_hz": Rule(kind="number", lo=0, above=True),
    "eval_fraction": Rule(kind="number", lo=0, hi=1, above=True, optional=True),
    "epochs": Rule(kind="int", lo=0, optional=True),
    "metrics_every": Rule(kind="int"),
    "eval_every": Rule(kind="int"),
    "tune_threads": bool,
    "name": str,
}


def _kind(value: Any) -> str:
    """A value's kind as a message says it: "a list", "an int", "null"."""
    if value is None:
        return "null"
    name = "tuple" if isinstance(value, tuple) else type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _value_fault(where: str, expected: Rule | type | tuple[type, ...], value: Any) -> str | None:
    """Why ``value`` is not what ``expected`` allows (a setting's rule, or the Python types it may be), or None."""
    if isinstance(expected, Rule):
        return None if expected.allows(value) else f"{where} must be {expected.requirement()}, got {shown(value)}"
    if expected is str:
        fits = isinstance(value, str) and len(value) <= 200
    else:  # (a bool is no number here)
        fits = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    return None if fits else f"{where} must be {_WORDS[expected]}, got {shown(value)}"


def _is_str_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


# -- the session request ---------------------------------------------------------------------------------
def request_fault(spec: Any) -> str | None:
    """Why ``spec`` is not a session request the training process can build, or None when it is."""
    fault = _request_fault(spec)
    return None if fault is None else f"malformed session request: {fault}"


def _request_fault(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return f"{_kind(spec)}, not an object of fields"
    if not _is_str_dict(spec):
        return "a field's name is not a string"
    unknown = [key for key in spec if key not in REQUEST_FIELDS]
    if unknown:
        return f"unknown field {shown(unknown[0])} (a request has {', '.join(REQUEST_FIELDS)})"
    for key, rule in (("threads", _THREADS), ("step_rate", _REAL_OR_NONE),
                      ("ranks", Rule(kind="int", lo=1, hi=MAX_RANKS, optional=True))):
        fault = _value_fault(key, rule, spec.get(key))
        if fault:
            return fault
    session = spec.get("session", {})
    if not _is_str_dict(session):
        return f"session must be an object of a training session's settings, got {shown(session)}"
    for key, value in session.items():
        if key not in _SESSION:
            return f"session.{key} is not a setting of a training session (those are {', '.join(_SESSION)})"
        fault = _value_fault(f"session.{key}", _SESSION[key], value)
        if fault:
            return fault
    run_dir, files = spec.get("run_dir"), spec.get("run_files")
    if run_dir is not None and not isinstance(run_dir, str):
        return f"run_dir must be a folder's path, got {shown(run_dir)}"
    if files is not None and (not _is_str_dict(files) or not all(
            isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1 for data in files.values())):
        return "run_files must be an object of a run's files, each its bytes"
    if run_dir or files:  # a saved run, read and checked as a run folder is where it is opened
        return None
    return _model_fault(spec)


def _model_fault(spec: dict[str, Any]) -> str | None:
    """What is wrong with the family and the settings of a request for a new model."""
    from explorer.core.families.registry import FAMILIES

    family = spec.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        return f"family must be one of {', '.join(FAMILIES)}, got {shown(family)}"
    if "config" not in spec:
        return "config is missing (the model's settings)"
    cls, config = FAMILIES[family].config_cls, spec["config"]
    if isinstance(config, Settings):
        if type(config) is not cls:
            return f"config is {_kind(config)}, not the settings of the {family} family ({cls.__name__})"
        config = config.to_dict()
    try:
        return config_fault(cls, config)
    except (TypeError, ValueError) as exc:  # (an array where a number goes: no truth value)
        return f"config: a value of the wrong kind ({type(exc).__name__})"


# -- the commands that follow -----------------------------------------------------------------------------
def command_fault(message: Any) -> str | None:
    """Why ``message`` is not a command the training process can apply (its session built), or None."""
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        return f"malformed message: {_kind(message)}, not a training message"
    tag = message[0]
    if tag in ("stop", "resync"):
        return None if len(message) == 1 else f"malformed {tag}: it has no fields, got {len(message) - 1}"
    if tag not in MESSAGES + SERVER_MESSAGES:
        return f"malformed message: {shown(tag)} is not a training message (those are {', '.join(MESSAGES)})"
    if len(message) != 5:
        return f"malformed {tag}: ({tag}, {'counted' if tag == 'do' else 'id'}, name, args, kwargs) expected, " \
               f"got {len(message)} items"
    _, first, name, args, kwargs = message
    if not isinstance(args, tuple):
        return f"malformed {tag}: args must be a tuple, got {_kind(args)}"
    if not _is_str_dict(kwargs):
        return f"malformed {tag}: kwargs must be an object of named values, got {_kind(kwargs)}"
    if tag == "do":
        if not isinstance(first, bool):
            return f"malformed do: counted must be true or false, got {shown(first)}"
        return _control_fault(name, args, kwargs)
    if isinstance(first, bool) or not isinstance(first, int) or not -MAX_ID <= first < MAX_ID:
        return f"malformed {tag}: its id must be a whole number of 64 bits, got {shown(first)}"
    if not (isinstance(name, types.FunctionType) and getattr(commands, name.__name__, None) is name):
        return f"malformed {tag}: {shown(name)} is not one of the app's commands"
    fn = cast(types.FunctionType, name)  # (the identity test above narrows it to getattr's type)
    if "on_done" in kwargs:
        return f"malformed {tag} {fn.__name__}: on_done is the session's own argument"
    try:
        inspect.signature(fn).bind(None, *args, **kwargs)
    except TypeError as exc:
        return f"malformed {tag} {fn.__name__}: {exc}"
    return None


def _control_fault(name: Any, args: tuple, kwargs: dict[str, Any]) -> str | None:
    if isinstance(name, str) and name == "refused":  # a training server's word on a request it kept from the process
        return None if len(args) == 1 and isinstance(args[0], str) and not kwargs else "malformed do: refused"
    if not isinstance(name, str) or name not in CONTROLS:
        return f"malformed do: {shown(name)} is not a control (those are {', '.join(sorted(CONTROLS))})"
    try:
        bound = inspect.signature(getattr(TrainingSession, name)).bind(None, *args, **kwargs)
    except TypeError as exc:
        return f"malformed do {name}: {exc}"
    for param, value in bound.arguments.items():
        expected = _ARGUMENTS.get((name, param))
        fault = _value_fault(param, expected, value) if expected is not None else None
        if param == "callback" and value is not None:  # (subscribe's, unsubscribe's)
            fault = "a callback cannot cross to the training process (it polls instead)"
        if fault:
            return f"malformed do {name}: {fault}"
    return None
