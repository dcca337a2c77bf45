"""Atomic writes: write to a temporary file (or folder) beside the target, flush, fsync, rename.

A crash or a full disk mid-write leaves the old file intact instead of a truncated one. Every file the
core writes goes through here: run folders, specs, exports, videos, the autosave and its lock, downloads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def new_file_mode(path: str | Path) -> int:
    """The permissions a file written at ``path`` gets: an existing file's, else what the umask gives a
    new file (the temporary file is created private, 0600, which an export or a picture should not keep)."""
    try:
        return Path(path).stat().st_mode & 0o777
    except OSError:
        pass
    umask = 0o022
    try:
        with open("/proc/self/status", encoding="ascii") as fh:  # read, not set: os.umask would race threads
            for line in fh:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def atomic_write(path: str | Path, writer: Callable[[Path], object], suffix: str = ".tmp",
                 private: bool = False) -> Path:
    """Call ``writer(tmp_path)`` to produce the content, then move it over ``path`` atomically.

    The temporary file is a hidden sibling ending in ``suffix``; if ``writer`` raises, it is removed
    and the error goes on to the caller (``path`` is untouched). The file ends with the permissions of the
    file it replaces or, new, those the umask gives (:func:`new_file_mode`); ``private`` keeps it 0600
    (a token)."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a device, a FIFO or a folder is never replaced
        raise OSError(f"{path}: not a regular file (a device, pipe, socket or folder), refused")
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = None if private else new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        if mode is not None:
            os.chmod(tmp_path, mode)
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes, private: bool = False) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data), private=private)


def atomic_write_text(path: str | Path, text: str, private: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), private=private)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# -- whole folders ------------------------------------------------------------------------------------------

stage_hook: Callable[[str], None] | None = None
"""Called with the name of each stage of a folder write ("files", "swap", "renamed", "cleanup"); the tests
set it to stop a save at a chosen instant (a kill -9 there must leave the old or the new folder, whole)."""

_os_write = os.write  # the one call that writes file bytes here: a test makes it fail part way (a full disk)
_CHUNK = 1 << 20
_LEFTOVER_SUFFIXES = (".tmp", ".new", ".old")
_RENAME_EXCHANGE = 2  # renameat2's flag (Linux): swap two paths in one step
_AT_FDCWD = -100
_exchange_fn: Any = None


def _stage(name: str) -> None:
    if stage_hook is not None:
        stage_hook(name)


def write_file_synced(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` and fsync it (a file of a folder written whole)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            done = _os_write(fd, view[:_CHUNK])
            view = view[done:]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | Path) -> None:
    """Make a folder's entries (new files, renames) durable; a no-op where folders cannot be opened."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one step (Linux renameat2); False where the system cannot."""
    global _exchange_fn
    if not sys.platform.startswith("linux"):
        return False
    if _exchange_fn is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _exchange_fn = libc.renameat2
            _exchange_fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        except (OSError, AttributeError):
            _exchange_fn = False
    if not _exchange_fn:
        return False
    if _exchange_fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False  # this file system or kernel cannot: two renames instead
    raise OSError(code, os.strerror(code), str(b))


def _sibling(folder: Path, suffix: str) -> Path:
    """A hidden sibling of ``folder`` that names its writer: ``.NAME.PID-RANDOM.tmp``."""
    return folder.with_name(f".{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def _leftovers(folder: Path) -> list[Path]:
    """Hidden siblings of ``folder`` left by a save that did not finish, whose writer has ended."""
    prefix = f".{folder.name}."
    try:
        entries = list(folder.parent.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_LEFTOVER_SUFFIXES)):
            continue
        middle = name[len(prefix):-4]
        pid_text = middle.split("-", 1)[0]
        if not pid_text.isdecimal() or "." in middle:
            continue
        if _writer_alive(int(pid_text), entry):
            continue
        found.append(entry)
    return found


def _writer_alive(pid: int, entry: Path) -> bool:
    if pid == os.getpid():
        return True  # this process's own save: it cleans up after itself
    if sys.platform == "win32":  # no harmless way to ask: an hour-old leftover is taken as abandoned
        try:
            return time.time() - entry.stat().st_mtime < 3600
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def recover_folder(folder: str | Path) -> None:
    """Finish or undo a folder write that a crash interrupted, then remove its leftovers.

    Where ``folder`` is missing but a complete copy waits beside it (a crash between the two renames of a
    swap), that copy is put in place: the new one if it got that far, else the old one. Called before a
    save into ``folder`` and before it is read."""
    folder = Path(folder)
    leftovers = _leftovers(folder)
    if not leftovers:
        return
    if not os.path.lexists(folder):
        for suffix in (".new", ".old"):  # complete copies only; a .tmp may be half written
            ready = sorted((p for p in leftovers if p.name.endswith(suffix)),
                           key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
            if ready:
                try:
                    os.replace(ready[0], folder)
                    leftovers.remove(ready[0])
                    fsync_folder(folder.parent)
                except OSError:
                    pass
                break
    for entry in leftovers:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                entry.unlink()
            except OSError:
                pass


def atomic_write_folder(folder: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_folder)`` to fill a new hidden sibling folder, then put it in ``folder``'s place.

    At every instant ``folder`` holds its previous contents or the new ones, each complete: the new
    folder is written and fsynced beside it, then swapped in by one exchange of the two paths (Linux),
    else by two renames that :func:`recover_folder` completes after a crash between them. An error
    mid-write (a full disk) leaves the previous contents as they were and nothing half-written beside
    them; it is raised as an OSError whose message names the folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    existed = folder.exists()
    tmp = _sibling(folder, ".tmp")
    try:
        try:
            writer(tmp)
            _stage("files")
            for entry in tmp.iterdir():
                if entry.is_file():
                    with open(entry, "rb+") as fh:
                        os.fsync(fh.fileno())
            fsync_folder(tmp)
        except OSError as exc:
            reason = ("the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                      else exc.strerror or str(exc))
            kept = "its previous contents are unchanged" if existed else "nothing was left behind"
            error = OSError(f"{folder}: could not be written ({reason}); {kept}")
            error.errno = exc.errno
            raise error from None
        _stage("swap")
        if existed and _exchange(tmp, folder):
            fsync_folder(folder.parent)
            _stage("cleanup")
            shutil.rmtree(tmp, ignore_errors=True)  # it holds the previous contents now
        else:
            ready = _sibling(folder, ".new")
            os.replace(tmp, ready)
            old = _sibling(folder, ".old") if existed else None
            if old is not None:
                os.replace(folder, old)
            _stage("renamed")
            os.replace(ready, folder)
            fsync_folder(folder.parent)
            _stage("cleanup")
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
