"""The per-user folders the app writes to, where each platform keeps them (platformdirs).

- cache (downloaded data sets): ``~/.cache/network-explorer`` on Linux, ``~/Library/Caches/network-explorer``
  on macOS, ``%LOCALAPPDATA%\\network-explorer\\Cache`` on Windows;
- autosaves (``autosave/`` in the state folder): ``~/.local/state/network-explorer`` on Linux,
  ``~/Library/Application Support/network-explorer`` on macOS, ``%LOCALAPPDATA%\\network-explorer`` on Windows;
- logs: ``~/.local/state/network-explorer/log``, ``~/Library/Logs/network-explorer``,
  ``%LOCALAPPDATA%\\network-explorer\\Logs``.

``NETWORK_EXPLORER_CACHE`` puts all three in one folder of its choosing (the data sets in it, ``autosave/``
and ``logs/`` beside them): the tests use it to keep away from the user's home folder.
``NETWORK_EXPLORER_LOG_DIR`` moves the logs alone.

The runtime folder (a watched script's token file, readable by its user alone) is ``$XDG_RUNTIME_DIR/
network-explorer`` on Linux (else ``runtime/`` in the state folder: never a folder of /tmp, which another
user could have made first), platformdirs' user runtime folder elsewhere; ``NETWORK_EXPLORER_RUNTIME`` moves
it, and ``NETWORK_EXPLORER_CACHE`` puts it in ``runtime/`` beside the others.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import platformdirs

APP_NAME = "network-explorer"
CACHE_ENV = "NETWORK_EXPLORER_CACHE"
LOG_DIR_ENV = "NETWORK_EXPLORER_LOG_DIR"
RUNTIME_ENV = "NETWORK_EXPLORER_RUNTIME"


def _override(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads go: ``$NETWORK_EXPLORER_CACHE``, else the user's cache folder."""
    return _override(CACHE_ENV) or Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def autosave_dir() -> Path:
    """The autosave root: ``$NETWORK_EXPLORER_CACHE/autosave``, else ``autosave`` in the user's state folder
    (not the cache, which the user or the system may clear)."""
    override = _override(CACHE_ENV)
    if override is not None:
        return override / "autosave"
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)) / "autosave"


def log_dir() -> Path:
    """Where the log file goes: ``$NETWORK_EXPLORER_LOG_DIR``, else ``$NETWORK_EXPLORER_CACHE/logs``, else the
    user's log folder."""
    override = _override(LOG_DIR_ENV)
    if override is not None:
        return override
    cache = _override(CACHE_ENV)
    if cache is not None:
        return cache / "logs"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def _default_runtime_dir() -> Path:
    if sys.platform in ("win32", "darwin"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Path(platformdirs.user_runtime_dir(APP_NAME, appauthor=False))
    xdg = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if xdg and os.path.isabs(xdg) and Path(xdg).is_dir():
        return Path(xdg) / APP_NAME
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)) / "runtime"


def runtime_dir() -> Path:
    """The folder of a watched script's token files, created (mode 0700: its user's alone) if missing:
    ``$NETWORK_EXPLORER_RUNTIME``, else ``$NETWORK_EXPLORER_CACHE/runtime``, else the user's runtime folder."""
    folder = _override(RUNTIME_ENV)
    if folder is None:
        cache = _override(CACHE_ENV)
        folder = cache / "runtime" if cache is not None else _default_runtime_dir()
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
        except OSError:
            pass
    return folder
