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
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "network-explorer"
CACHE_ENV = "NETWORK_EXPLORER_CACHE"
LOG_DIR_ENV = "NETWORK_EXPLORER_LOG_DIR"


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
