"""The window's saved settings (QSettings) and the choice of where training runs.

Both the start-up code (``app.py``, which runs before torch is imported) and the main window read
these, so they live here, importing neither of them nor the core's heavy parts: the start-up window reads
the saved geometry before the main window's module (which needs torch) is loaded.

The settings file is read as untrusted input. PySide6 stores a Python object put into QSettings as a
pickle (an ``@Variant(...PyObjectWrapper...)`` value) and unpickles it when any key of its group is read,
so a crafted file could run code as the app starts. The app writes plain types only (strings, numbers,
``QByteArray``), and :func:`open_settings` removes every serialised-object value from the file before
Qt parses it. Each value is then checked on read (:func:`byte_array_setting`, :func:`number_setting`):
a bad one is ignored with a line in the log.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from pathlib import Path

from PySide6 import QtCore

from explorer.core.atomic import atomic_write_text
from explorer.core.safe_read import UnsafeFileError, escape_text, read_text

# where the window keeps its layout, refresh rate and geometry (QSettings)
SETTINGS_ORG = "NetworkExplorer"
SETTINGS_APP = "NetworkExplorer"

TRAINING_ENV = "NETWORK_EXPLORER_TRAINING"  # "process" or "thread": overrides the saved choice
MAX_SETTINGS_BYTES = 4 * 1024 * 1024        # the app's own settings file is a few kB

# values Qt reads back as plain types; any other "@Type(" value (above all @Variant, a QDataStream that may
# hold a pickled Python object) is removed unread. A literal leading "@" is written "@@" by Qt.
_PLAIN_PREFIXES = ("@ByteArray(", "@String(", "@Invalid()", "@Rect(", "@Size(", "@Point(", "@@")
_LINE = re.compile(r"^\s*([^=;#\[][^=]*?)\s*=\s*(.*)$")

log = logging.getLogger(__name__)


def scrub_settings_file(path: str | os.PathLike) -> list[str]:
    """Remove from the INI settings file ``path`` every value that is not a plain type; returns the keys
    removed (``section/key``). A file that is not a regular, readable, small text file is set aside
    (renamed ``*.bad``) whole. Call before any QSettings in this process reads the file."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return []
    try:
        text = read_text(p, MAX_SETTINGS_BYTES)
    except UnsafeFileError as exc:
        log.warning("the settings file cannot be used and is set aside: %s", exc)
        _set_aside(p)
        return ["*"]
    kept, removed, section = [], [], ""
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
        m = _LINE.match(line)
        if m and m.group(2).startswith("@") and not m.group(2).startswith(_PLAIN_PREFIXES):
            key = f"{section}/{m.group(1)}" if section and section != "General" else m.group(1)
            removed.append(key)
            log.warning("settings: %s holds a serialised object, not a plain value: removed unread",
                        escape_text(key))
            continue
        kept.append(line)
    if removed:
        try:
            atomic_write_text(p, "".join(kept))
        except OSError as exc:  # a read-only settings file: set it aside rather than let Qt parse it
            log.warning("the settings file %s cannot be rewritten (%s): set aside", p, exc)
            _set_aside(p)
    return removed


def _set_aside(path: Path) -> None:
    try:
        os.replace(path, path.with_name(path.name + ".bad"))
    except OSError as exc:
        log.warning("the settings file %s cannot be set aside either (%s)", path, exc)


def open_settings() -> QtCore.QSettings:
    """The app's settings, after :func:`scrub_settings_file` has removed any non-plain value from its file.

    The file's name is taken from a QSettings that reads no key (Qt parses a group's values only when one
    of them is read)."""
    probe = _new_settings()
    name = probe.fileName()
    del probe
    if name and Path(name).is_absolute():
        scrub_settings_file(name)
    return _new_settings()


def _new_settings() -> QtCore.QSettings:
    """The app's QSettings in an INI file on every system: Linux's native format is one already (the file
    stays where it always was); elsewhere the native store (a plist, the registry) cannot be scrubbed."""
    if sys.platform.startswith("linux"):
        return QtCore.QSettings(SETTINGS_ORG, SETTINGS_APP)
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                            SETTINGS_ORG, SETTINGS_APP)


def byte_array_setting(settings: QtCore.QSettings, key: str) -> QtCore.QByteArray | None:
    """A ``QByteArray`` setting (the window's geometry, its dock layout); None, with a line in the log,
    when it is missing or of another type."""
    value = settings.value(key)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = QtCore.QByteArray(bytes(value))
    if not isinstance(value, QtCore.QByteArray) or value.isEmpty():
        log.warning("settings: %s is not a saved layout (got %s), ignored", key, escape_text(repr(value)[:60]))
        return None
    return value


def number_setting(settings: QtCore.QSettings, key: str, lo: float, hi: float) -> float | None:
    """A number setting within [lo, hi]; None, with a line in the log, when missing or not such a number."""
    value = settings.value(key)
    if value is None:
        return None
    try:
        number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not lo <= number <= hi:
        log.warning("settings: %s must be a number from %s to %s, got %s: ignored", key, lo, hi,
                    escape_text(repr(value)[:60]))
        return None
    return number


def bool_setting(settings: QtCore.QSettings, key: str, default: bool) -> bool:
    """A true/false setting; the default, with a line in the log, when it holds anything else."""
    value = settings.value(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int):
        return value != 0
    log.warning("settings: %s must be true or false, got %s: ignored", key, escape_text(repr(value)[:60]))
    return default


def process_training_wanted(settings: QtCore.QSettings) -> bool:
    """Whether sessions train in a separate process (Training > Train in a separate process; on unless
    turned off). The environment variable wins: the tests train on a thread unless they ask otherwise."""
    forced = os.environ.get(TRAINING_ENV, "").strip().lower()
    if forced in ("process", "thread"):
        return forced == "process"
    # a training process inherits its socket by file descriptor, which Windows cannot pass: a thread there
    return bool_setting(settings, "training/process", os.name != "nt")
