"""The app's log file: what went wrong, kept after the window that showed it has closed.

Modules log through ``logging.getLogger(__name__)``; :func:`configure_logging`, called as the window, the
command line or a training process starts, sends the ``explorer`` loggers' records to a rotating file,
``explorer.log`` in the user's log folder (``explorer.core.paths.log_dir``: ``$NETWORK_EXPLORER_LOG_DIR``
if set, for tests, else ~/.local/state/network-explorer/log on Linux). Imports only the standard library
and ``explorer.core.paths``, so it costs nothing before the window's first paint.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from explorer import __version__
from explorer.core import paths

LOG_FILE_NAME = "explorer.log"
MAX_BYTES = 1_000_000  # then explorer.log.1 ... .3: a few megabytes at most
BACKUP_COUNT = 3
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"

log = logging.getLogger(__name__)
_handler: logging.handlers.RotatingFileHandler | None = None
_roles: set[str] = set()  # those this process has announced in the current file


def log_file() -> Path:
    """The file :func:`configure_logging` writes to (it may not exist yet)."""
    return paths.log_dir() / LOG_FILE_NAME


def configure_logging(level: int = logging.INFO, role: str = "app") -> Path | None:
    """Send the ``explorer`` loggers' records at ``level`` and above to the rotating log file; returns it.

    Calling it again is harmless (one handler; a changed log folder moves it). Where the folder cannot be
    written, the app runs on without a log file and None is returned. ``role`` ("gui", "cli", "training
    process") goes into a first line, once per role (the command line's plain launch opens the window)."""
    global _handler
    path = log_file()
    logger = logging.getLogger("explorer")
    if _handler is not None and Path(_handler.baseFilename) == path.resolve():
        _announce(role)
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                                       encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
    _handler = handler
    _roles.clear()
    logger.addHandler(handler)
    logger.setLevel(level)
    _announce(role)
    return path


def _announce(role: str) -> None:
    if role not in _roles:
        _roles.add(role)
        log.info("Network Explorer %s, %s, process %d", __version__, role, os.getpid())
