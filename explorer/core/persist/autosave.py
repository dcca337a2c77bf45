"""Autosave and crash recovery: the running session is saved every few minutes and on close, whole.

A save goes into a fresh sibling folder that replaces the previous autosave only once it is
complete, so a crash mid-save leaves the last good autosave intact (never a mixture of two).

Every running window has a slot of its own, a folder ``slot-N`` under the autosave root, so two
windows never overwrite each other's autosave. A slot holds:

- ``lock``: a file the window holds an OS lock on for its whole life (``fcntl.flock`` on POSIX,
  ``msvcrt.locking`` on Windows). The system releases it when the process ends, however it ends,
  so a free lock means no living window uses the slot;
- ``running.json``: written when the window takes the slot and removed when it closes cleanly, so a
  free lock with this file still there means the window died;
- ``last-session``: the autosave, a run folder.

At start, a slot with a free lock, a ``running.json`` and an autosave that loads is what a crashed
window left: it is offered back (losing at most one autosave interval) and reserved for the new
window, so that no other window is offered it too. An autosave that does not load (a malformed or
foreign file in it) is set aside, renamed ``last-session.bad-<time>``, and reported once
(:attr:`AutosaveSlot.set_aside`): it never stops a start, and is never offered again.

The first autosave of a session comes early, after its first minute of training or its first
``FIRST_AUTOSAVE_STEPS`` steps, whichever is first; then every ``AUTOSAVE_INTERVAL_S``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import IO

from explorer.core import paths
from explorer.core.atomic import atomic_write_folder, atomic_write_text
from explorer.core.engine.session import TrainingSession
from explorer.core.persist.runfolder import RunFolderError, load_run, write_run_files
from explorer.core.safe_read import one_line, read_json

# sys.platform rather than os.name: type checkers understand it, and check each system's branch on that system
if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

AUTOSAVE_INTERVAL_S = 180.0
FIRST_AUTOSAVE_S = 60.0      # a kill in the first minutes of training loses at most this much
FIRST_AUTOSAVE_STEPS = 1000  # or this many steps, if they come sooner
SLOT_PREFIX = "slot-"

log = logging.getLogger(__name__)


def autosave_root() -> Path:
    """``$NETWORK_EXPLORER_CACHE/autosave``, else ``autosave`` in the user's state folder
    (~/.local/state/network-explorer/autosave on Linux; see ``explorer.core.paths``)."""
    return paths.autosave_dir()


def save_whole(session: TrainingSession, folder: str | Path, extra: dict | None = None) -> Path:
    """Save the session as a run folder that appears complete or not at all (call between steps).

    It is written into a hidden sibling folder and renamed over ``folder`` only once complete; a
    crash or a close mid-save leaves the previous contents of ``folder`` as they were.
    """
    # the run's files straight into the one hidden sibling (save_run would swap a second one inside it)
    return atomic_write_folder(folder, lambda tmp: write_run_files(session, tmp, extra))


class SlotLock:
    """An exclusive OS lock on one file, taken without waiting and held until :meth:`release` (or until
    the process ends: the system then releases it, which is how a crash is told from a living window).

    Two locks on the same file exclude each other within one process too (each opens the file anew)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False if another holder (this process or another) has it."""
        if self._file is not None:
            return True
        handle = open(self.path, "a+b")  # created if missing; an OSError (read-only folder) reaches the caller
        try:
            if sys.platform == "win32":
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is None:
            return
        try:
            if sys.platform == "win32":
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass  # closing the file below releases it anyway
        finally:
            handle.close()


def _slot_number(folder: Path) -> int:
    try:
        return int(folder.name[len(SLOT_PREFIX):])
    except ValueError:
        return -1


def slot_folders(root: str | Path) -> list[Path]:
    """The slots under ``root``, in their order (``slot-1``, ``slot-2``, ...)."""
    try:
        found = [p for p in Path(root).iterdir() if p.name.startswith(SLOT_PREFIX) and p.is_dir()]
    except OSError:
        return []
    return sorted((p for p in found if _slot_number(p) > 0), key=_slot_number)


class AutosaveSlot:
    """The autosave slot of one running window, and the lock that tells a crash from a clean exit.

    Use: ``stale()`` (what a crashed window left, reserved for this one), then ``acquire()`` (take that
    slot, or a free one), ``save()`` or ``saved()`` while running, ``release()`` on a clean exit."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else autosave_root()
        self.slot: Path | None = None  # the slot folder this window holds, once stale() or acquire() took one
        self.os_lock: SlotLock | None = None
        self.token = uuid.uuid4().hex
        self.last_step: int | None = None
        self.last_time = 0.0
        self.first_seen: tuple[float, int] | None = None  # (when, step) training was first seen, before a save
        self.set_aside: list[tuple[Path, str]] = []  # autosaves that did not load: (where they went, why)

    @property
    def folder(self) -> Path:
        """Where this window's autosave goes (``<slot>/last-session``)."""
        if self.slot is None:
            raise RuntimeError("no autosave slot is held yet: call acquire() first")
        return self.slot / "last-session"

    @property
    def lock(self) -> Path:
        """The slot's lock file (its OS lock is held while this window runs)."""
        if self.slot is None:
            raise RuntimeError("no autosave slot is held yet: call acquire() first")
        return self.slot / "lock"

    @property
    def marker(self) -> Path:
        """The slot's ``running.json``: there while this window runs, gone after a clean exit."""
        if self.slot is None:
            raise RuntimeError("no autosave slot is held yet: call acquire() first")
        return self.slot / "running.json"

    # -- recovery ----------------------------------------------------------------------------------
    def stale(self) -> dict | None:
        """What a crashed earlier window left: ``{"path", "family", "step", "saved_at"}``, or None.

        Only slots whose lock is free (no living window holds them) are looked at, the newest autosave
        first. Its window must have died (its ``running.json`` is still there) and its autosave must load;
        that slot is then held by this object, so no other window is offered it, and :meth:`acquire`
        takes it. A slot held by a living window, a clean exit or a broken autosave give None; once this
        object holds a slot it offers nothing.
        """
        if self.slot is not None:
            return None
        candidates = []
        for slot in slot_folders(self.root):
            run_json = slot / "last-session" / "run.json"
            if (slot / "running.json").exists() and run_json.exists():
                try:
                    candidates.append((run_json.stat().st_mtime, slot))
                except OSError:
                    continue
        for _, slot in sorted(candidates, key=lambda c: c[0], reverse=True):
            lock = SlotLock(slot / "lock")
            try:
                if not lock.try_acquire():
                    continue  # a living window's slot
            except OSError:
                continue
            if not (slot / "running.json").exists():  # closed cleanly in the meantime
                lock.release()
                continue
            try:
                run = load_run(slot / "last-session")
            except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, it must not stop a start
                reason = one_line(exc)
                if not isinstance(exc, RunFolderError):
                    log.error("the autosave in %s cannot be restored", slot, exc_info=True)
                self._set_aside(slot, reason)
                _remove(slot / "running.json")  # never offered: the slot is free for reuse
                lock.release()
                continue
            self.slot, self.os_lock = slot, lock
            log.info("offering the autosave a crashed window left in %s (step %s)", slot, run.step)
            return {"path": str(slot / "last-session"), "family": run.family, "step": run.step,
                    "saved_at": run.info.get("saved_at", "?")}
        return None

    def _set_aside(self, slot: Path, reason: str) -> None:
        """Rename a slot's autosave that does not load out of the way (kept for the curious, never offered)."""
        bad = slot / f"last-session.bad-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            os.replace(slot / "last-session", bad)
        except OSError as exc:
            log.warning("the autosave in %s could not be set aside (%s)", slot, exc)
            bad = slot / "last-session"
        log.warning("the autosave in %s cannot be restored: %s; set aside as %s", slot, reason, bad)
        self.set_aside.append((bad, reason))

    def acquire(self) -> None:
        """Take a slot and mark it as running (a crash from now on leaves the mark behind).

        The slot :meth:`stale` reserved if any; else the first free slot that holds no autosave of a
        crashed window (those wait to be offered); else a new one. Raises OSError when the autosave
        folder cannot be written (the window then runs without autosave)."""
        if self.slot is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self.slot, self.os_lock = self._take_free_slot()
        atomic_write_text(self.marker, json.dumps({"pid": os.getpid(), "token": self.token, "since": time.time()}),
                          private=True)

    def _take_free_slot(self) -> tuple[Path, SlotLock]:
        existing = slot_folders(self.root)
        for slot in existing:
            lock = SlotLock(slot / "lock")
            try:
                if not lock.try_acquire():
                    continue
            except OSError:  # a slot this user cannot write: another is made
                continue
            if (slot / "running.json").exists() and (slot / "last-session" / "run.json").exists():
                lock.release()  # a crashed window's autosave: left for a later start to offer
                continue
            return slot, lock
        first = _slot_number(existing[-1]) + 1 if existing else 1
        for number in range(first, first + 1000):
            slot = self.root / f"{SLOT_PREFIX}{number}"
            try:
                slot.mkdir()
            except FileExistsError:  # another window made it just now
                continue
            lock = SlotLock(slot / "lock")
            if lock.try_acquire():
                return slot, lock
        raise OSError(f"no free autosave slot in {self.root}")

    def release(self) -> None:
        """A clean exit: remove our mark and free the slot (the autosave stays for reference, but is not
        offered)."""
        if self.slot is None or self.os_lock is None:
            return
        try:
            info = read_json(self.marker, 4096)
            if isinstance(info, dict) and info.get("token") == self.token:
                self.marker.unlink()
        except (OSError, ValueError):
            pass
        self.os_lock.release()
        self.os_lock = None

    # -- saving ------------------------------------------------------------------------------------
    def due(self, step: int, interval_s: float = AUTOSAVE_INTERVAL_S, first_s: float = FIRST_AUTOSAVE_S,
            first_steps: int = FIRST_AUTOSAVE_STEPS) -> bool:
        """Whether the session at ``step`` should be autosaved now: something new, and the interval passed,
        or, before the first autosave, a minute (``first_s``) or ``first_steps`` steps of training."""
        if step == self.last_step:
            return False
        now = time.monotonic()
        if now - self.last_time >= interval_s:
            return True
        if self.last_step is None:
            if self.first_seen is None:  # the clock starts when training does, not when the window opens
                if step > 0:
                    self.first_seen = (now, int(step))
                return False
            since, first_step = self.first_seen
            return now - since >= min(first_s, interval_s) or step - first_step >= first_steps
        return False

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


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
