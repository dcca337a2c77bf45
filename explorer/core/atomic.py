"""Atomic writes: write to a temporary file (or folder) beside the target, flush, fsync, rename.

A crash or a full disk mid-write leaves the old file intact instead of a truncated one. Every file the
core writes goes through here: run folders, specs, exports, videos, the autosave and its lock, downloads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, writer: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """Call ``writer(tmp_path)`` to produce the content, then move it over ``path`` atomically.

    The temporary file is a hidden sibling ending in ``suffix``; if ``writer`` raises, it is removed
    and the error goes on to the caller (``path`` is untouched)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_folder(folder: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_folder)`` to fill a new hidden sibling folder, then put it in ``folder``'s place.

    ``folder`` appears complete or not at all: a crash or an error mid-write leaves its previous contents
    as they were (never a mixture of two), and nothing half-written is left beside it.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
    try:
        writer(tmp)
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    return folder
