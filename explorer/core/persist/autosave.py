"""Autosave and crash recovery: the running session is saved every few minutes and on close, whole.

A save goes into a fresh sibling folder that replaces the previous autosave only once it is
complete, so a crash mid-save leaves the last good autosave intact (never a mixture of two).
A lock file marks a running app; if the app dies without removing it, the next start finds a
stale lock and offers the autosave back, losing at most one autosave interval.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from explorer.core.data.datasets import default_cache_dir
from explorer.core.engine.session import TrainingSession
from explorer.core.persist.atomic import atomic_write_folder, atomic_write_text
from explorer.core.persist.runfolder import RunFolderError, load_run, save_run

AUTOSAVE_INTERVAL_S = 180.0


def autosave_root() -> Path:
    """``$NETWORK_EXPLORER_CACHE/autosave`` (by default ~/.cache/network-explorer/autosave)."""
    return default_cache_dir() / "autosave"


def save_whole(session: TrainingSession, folder: str | Path, extra: dict | None = None) -> Path:
    """Save the session as a run folder that appears complete or not at all (call between steps).

    It is written into a hidden sibling folder and renamed over ``folder`` only once complete; a
    crash or a close mid-save leaves the previous contents of ``folder`` as they were.
    """
    return atomic_write_folder(folder, lambda tmp: save_run(session, tmp, extra=extra))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class AutosaveSlot:
    """The autosave folder of one running app, and the lock that tells a crash from a clean exit."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else autosave_root()
        self.folder = self.root / "last-session"
        self.lock = self.root / "running.lock"
        self.token = uuid.uuid4().hex
        self.last_step: int | None = None
        self.last_time = 0.0

    # -- recovery ----------------------------------------------------------------------------------
    def stale(self) -> dict | None:
        """What a crashed earlier run left: ``{"path", "family", "step", "saved_at"}``, or None.

        Stale means a lock whose process is gone (the app died without closing) and an autosave
        that loads. A live process's lock, a clean exit (no lock) or a broken autosave give None.
        """
        try:
            info = json.loads(self.lock.read_text(encoding="utf-8"))
            pid = int(info.get("pid", -1))
        except (OSError, ValueError, AttributeError):
            return None
        if _pid_alive(pid) or not (self.folder / "run.json").exists():
            return None
        try:
            run = load_run(self.folder)
        except RunFolderError:
            return None
        return {"path": str(self.folder), "family": run.family, "step": run.step,
                "saved_at": run.info.get("saved_at", "?")}

    def acquire(self) -> None:
        """Mark this app as running (a crash from now on leaves the lock behind)."""
        atomic_write_text(self.lock, json.dumps({"pid": os.getpid(), "token": self.token, "since": time.time()}))

    def release(self) -> None:
        """A clean exit: remove our lock (the autosave stays for reference, but is not offered)."""
        try:
            info = json.loads(self.lock.read_text(encoding="utf-8"))
            if info.get("token") == self.token:
                self.lock.unlink()
        except (OSError, ValueError, AttributeError):
            pass

    # -- saving ------------------------------------------------------------------------------------
    def due(self, step: int, interval_s: float = AUTOSAVE_INTERVAL_S) -> bool:
        """Whether the session at ``step`` should be autosaved now (something new, interval passed)."""
        return step != self.last_step and time.monotonic() - self.last_time >= interval_s

    def save(self, session: TrainingSession) -> Path:
        """Save now (on the training thread, between steps)."""
        path = save_whole(session, self.folder)
        self.saved(int(session.trainer.step))
        return path

    def saved(self, step: int) -> None:
        """The session at ``step`` is in the slot now (however it was written: here, or by a training
        process through ``commands.autosave_to``)."""
        self.last_step = int(step)
        self.last_time = time.monotonic()
