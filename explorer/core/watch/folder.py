"""Folder mode: a watched run written to a folder (``watch(model, logdir="runs/exp1")``), and read back.

Why a folder: a run on a cluster node, or one nobody watches live, is looked at later, or from another
machine that sees the same disk (``explorer attach runs/exp1``). The folder holds:

- ``watch.json``: ``{"format": "network-explorer-watch", "version": 1, "model": <the model description>}``
- ``metrics.jsonl``: one JSON object per line (a metric row, as the wire's ``metrics`` frames carry them),
  appended and flushed at most about twice a second; a line cut short by a crash is ignored by readers;
  a number that is not finite is written as ``null`` (plain JSON has no NaN)
- ``snapshots/<step:09d>.safetensors``: one snapshot's arrays, with the metadata ``step``, ``epoch``,
  ``time`` and ``scalars`` (a JSON object) as strings, each file written whole (atomically). They are
  thinned as the window's timeline is: one every ``every`` steps, plus the newest; when the files pass
  ``bound_bytes`` every second one goes and ``every`` doubles, so they span the whole run, evenly.
- ``ended``: written when the run closes.

:class:`FolderWriter` writes it (the watcher's side); :class:`FolderSource` reads it as a stream of the
wire's frames (``welcome``, ``metrics``, ``snapshot``, ``state``, ``notice``), for the window's
``WatchSession``, while it is still being written. The reader checks every file it reads: only regular
files, of bounded size, parsed with limits; a bad file is a ``notice`` frame naming it, never a crash.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.atomic import atomic_write_bytes, atomic_write_json
from explorer.core.safe_read import UnsafeFileError, escape_text, parse_json, read_bytes, read_json
from explorer.core.wire.frame import ALLOWED_DTYPES, Frame

FORMAT = "network-explorer-watch"
VERSION = 1
WATCH_FILE = "watch.json"
METRICS_FILE = "metrics.jsonl"
SNAPSHOT_DIR = "snapshots"
ENDED_FILE = "ended"
SNAPSHOT_SUFFIX = ".safetensors"
SNAPSHOT_NAME = re.compile(r"^(\d{9,18})\.safetensors$")
DEFAULT_BOUND_BYTES = 256 * 1024 * 1024
FLUSH_EVERY_S = 0.5            # metrics.jsonl is written at most this often
ENDED_REASON = "the training script ended"
READ_ONLY = "a watch folder is read-only: attach to the script's address (HOST:PORT) to control its run"

# what a reader accepts
MAX_WATCH_BYTES = 64 * 1024 * 1024
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024    # the wire's limit for a frame to a window
MAX_SAFETENSORS_HEADER = 16 * 1024 * 1024
MAX_LINE_BYTES = 4 * 1024 * 1024          # a row of many gradient norms stays far below
READ_CHUNK = 16 * 1024 * 1024             # of metrics.jsonl per poll
POLL_S = 0.25
MAX_KEY = 200


def snapshot_name(step: int) -> str:
    return f"{int(step):09d}{SNAPSHOT_SUFFIX}"


def _json_value(value: Any) -> Any:
    """A metric value for a JSON line: non-finite floats as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the writer -------------------------------------------------------------------------------------------

class FolderWriter:
    """Writes one watched run into ``path`` (see the module's docstring). A new run in a folder that holds an
    older one replaces the older one's files (only the files named above; nothing else is touched).

    Not thread-safe: the watcher calls it from the training loop alone. Errors (a full disk) are raised to
    the caller, which stops writing the folder and says so."""

    def __init__(self, path: str | os.PathLike, description: dict, *, bound_bytes: int = DEFAULT_BOUND_BYTES,
                 every: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if int(bound_bytes) < 1:
            raise ValueError(f"the folder's bound must be a positive number of bytes, not {bound_bytes!r}")
        if int(every) < 1:
            raise ValueError(f"every must be at least 1 step, not {every!r}")
        self.path = Path(path)
        self.bound_bytes = int(bound_bytes)
        self.every = int(every)
        self._clock = clock
        self.path.mkdir(parents=True, exist_ok=True)
        self.snapshots = self.path / SNAPSHOT_DIR
        self._clear_previous_run()
        self.snapshots.mkdir(exist_ok=True)
        atomic_write_json(self.path / WATCH_FILE, {"format": FORMAT, "version": VERSION, "model": description})
        self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self._lines: list[str] = []
        self._flushed_at = -math.inf
        self._grid: list[tuple[int, int]] = []    # (step, bytes) of the files kept on the grid, in order
        self._tail: tuple[int, int] | None = None  # the newest file, when it is not on the grid
        self.thinnings = 0
        self.closed = False

    def _clear_previous_run(self) -> None:
        for name in (ENDED_FILE, METRICS_FILE):
            (self.path / name).unlink(missing_ok=True)
        if self.snapshots.is_dir():
            for entry in self.snapshots.iterdir():
                if SNAPSHOT_NAME.match(entry.name) and entry.is_file():
                    entry.unlink(missing_ok=True)

    @property
    def bytes_used(self) -> int:
        """Bytes of the snapshot files kept."""
        return sum(size for _, size in self._grid) + (self._tail[1] if self._tail else 0)

    def steps(self) -> list[int]:
        """The steps of the snapshot files kept, oldest first."""
        return [step for step, _ in self._grid] + ([self._tail[0]] if self._tail else [])

    # -- metrics --------------------------------------------------------------------------------------
    def add_rows(self, rows: list[dict]) -> None:
        """Queue metric rows for ``metrics.jsonl`` (written by :meth:`flush`)."""
        for row in rows:
            self._lines.append(json.dumps({k: _json_value(v) for k, v in row.items()}, allow_nan=False) + "\n")

    def flush(self, force: bool = False) -> None:
        """Append the queued rows, at most every ``FLUSH_EVERY_S`` seconds unless ``force``."""
        now = self._clock()
        if not self._lines or (not force and now - self._flushed_at < FLUSH_EVERY_S):
            return
        self._metrics.write("".join(self._lines))
        self._metrics.flush()
        self._lines.clear()
        self._flushed_at = now

    # -- snapshots -----------------------------------------------------------------------------------
    def write_snapshot(self, step: int, epoch: int, time_s: float, scalars: dict[str, float],
                       arrays: dict[str, np.ndarray]) -> bool:
        """Write one snapshot's file; True if it is kept on the grid (else it is the newest only, replaced by
        the next one). A step not after the newest kept one replaces the files from that step on."""
        from safetensors.numpy import save  # here: only a script that writes a folder needs it

        step = int(step)
        # a step not after the newest: the files from that step on go (one at this very step is replaced)
        while self._tail is not None and self._tail[0] >= step or self._grid and self._grid[-1][0] >= step:
            if self._tail is not None:
                gone, self._tail = self._tail[0], None
            else:
                gone = self._grid.pop()[0]
            if gone != step:
                self._delete(gone)
        metadata = {"step": str(step), "epoch": str(int(epoch)), "time": repr(float(time_s)),
                    "scalars": json.dumps({k: _json_value(float(v)) for k, v in scalars.items()}, allow_nan=False)}
        data = save({name: np.ascontiguousarray(a) for name, a in arrays.items()}, metadata=metadata)
        atomic_write_bytes(self.snapshots / snapshot_name(step), data)
        if self._tail is not None:  # the previous newest makes way
            self._delete(self._tail[0])
            self._tail = None
        entry = (step, len(data))
        on_grid = not self._grid or step - self._grid[-1][0] >= self.every
        if on_grid:
            self._grid.append(entry)
        else:
            self._tail = entry
        self._fit()
        return on_grid

    def _fit(self) -> None:
        """Thin the grid (every second file goes, ``every`` doubles) until the files are within the bound;
        the newest file stays whatever its size."""
        while self.bytes_used > self.bound_bytes:
            if len(self._grid) >= 3 or len(self._grid) >= 2 and self._tail is not None:
                newest = self._grid[-1] if self._tail is None else None
                keep, drop = self._grid[0::2], self._grid[1::2]
                if newest is not None and newest in drop:  # the newest is kept, as the tail
                    drop.remove(newest)
                    self._tail = newest
                for step, _ in drop:
                    self._delete(step)
                self._grid = keep
                self.every *= 2
                self.thinnings += 1
            elif len(self._grid) >= 2 or self._grid and self._tail is not None:
                self._delete(self._grid.pop(0)[0])
            else:
                return

    def _delete(self, step: int) -> None:
        (self.snapshots / snapshot_name(step)).unlink(missing_ok=True)

    # -- closing --------------------------------------------------------------------------------------
    def close(self, step: int | None = None) -> None:
        """Write what is queued and the ``ended`` marker (readers then know the run is over)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.flush(force=True)
            os.fsync(self._metrics.fileno())
        finally:
            self._metrics.close()
        atomic_write_json(self.path / ENDED_FILE, {"step": step})


# -- the reader -------------------------------------------------------------------------------------------

def _plain_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _clean_row(obj: Any) -> dict[str, float] | None:
    """A metric row from a line of ``metrics.jsonl``: a JSON object with a numeric ``step``; other numbers
    kept, ``null`` as NaN (a value that was not finite), anything else left out. None if not a row."""
    if not isinstance(obj, dict) or _plain_number(obj.get("step")) is None:
        return None
    row: dict[str, float] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or len(key) > MAX_KEY:
            continue
        number = math.nan if value is None else _plain_number(value)
        if number is not None:
            row[key] = number
    return row


def _read_from(path: Path, offset: int, limit: int) -> tuple[bytes, int, int]:
    """Up to ``limit`` bytes of the regular file ``path`` from ``offset``, the file's size now and its inode
    (a new file in its place is a new run).
    UnsafeFileError for anything but a regular file (a FIFO would block, a device never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"{path}: not a regular file")
        if info.st_size <= offset:
            return b"", info.st_size, info.st_ino
        os.lseek(fd, offset, os.SEEK_SET)
        chunks, left = [], min(limit, info.st_size - offset)
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), info.st_size, info.st_ino
    except OSError as exc:
        raise UnsafeFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_watch_file(path: str | os.PathLike) -> dict:
    """The model description in a folder's ``watch.json``, checked; ValueError naming the file."""
    where = Path(path) / WATCH_FILE
    if not where.exists():
        raise ValueError(f"{Path(path)}: not a watch folder (no {WATCH_FILE}; is the script watching with "
                         f"logdir= this folder?)")
    info = read_json(where, limit=MAX_WATCH_BYTES, invalid="not a watch file (not JSON)")
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"{where}: not a watch file (its format is not {FORMAT!r})")
    version = info.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{where}: 'version' must be a positive int")
    if version > VERSION:
        raise ValueError(f"{where}: version {version} is not read here ({VERSION}); a newer Network Explorer "
                         f"wrote it")
    model = info.get("model")
    if not isinstance(model, dict):
        raise ValueError(f"{where}: 'model' must be an object (the model description)")
    return model


def _metadata_of(data: bytes, where: str) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's bytes, checked (its header is JSON the reader limits)."""
    if len(data) < 8:
        raise UnsafeFileError(f"{where}: not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_SAFETENSORS_HEADER, len(data) - 8):
        raise UnsafeFileError(f"{where}: not a safetensors file (a header of {header_len} bytes)")
    header = parse_json(bytes(data[8:8 + header_len]), where, max_depth=8,
                        invalid="not a safetensors file (its header is not JSON)")
    if not isinstance(header, dict):
        raise UnsafeFileError(f"{where}: not a safetensors file (its header is not an object)")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise UnsafeFileError(f"{where}: the metadata must map names to strings")
    return meta


def read_snapshot_file(path: str | os.PathLike) -> Frame:
    """One snapshot file as the wire's ``snapshot`` frame; UnsafeFileError naming the file and the fault."""
    from safetensors.numpy import load  # here: reading a folder needs it, connecting to a script does not

    where = str(path)
    data = read_bytes(path, MAX_SNAPSHOT_BYTES)
    meta = _metadata_of(data, where)
    fields: dict[str, Any] = {}
    try:
        fields["step"] = int(meta["step"])
        fields["epoch"] = int(meta.get("epoch", "0"))
        fields["time"] = float(meta.get("time", "0"))
    except (KeyError, ValueError):
        raise UnsafeFileError(f"{where}: the metadata needs 'step' (and 'epoch', 'time') as numbers") from None
    if fields["step"] < 0 or fields["epoch"] < 0 or not math.isfinite(fields["time"]):
        raise UnsafeFileError(f"{where}: the metadata's step, epoch or time is out of range")
    scalars = parse_json(meta.get("scalars", "{}"), f"{where} (its scalars)", max_depth=2)
    if not isinstance(scalars, dict):
        raise UnsafeFileError(f"{where}: the metadata's scalars must be a JSON object")
    fields["scalars"] = {k: (math.nan if v is None else float(v)) for k, v in scalars.items()
                         if isinstance(k, str) and len(k) <= MAX_KEY and (v is None or _plain_number(v) is not None)}
    try:
        arrays = load(data)
    except Exception as exc:  # noqa: BLE001 - the library's own check of offsets and dtypes, any fault
        raise UnsafeFileError(f"{where}: not a safetensors file ({escape_text(exc)})") from None
    for name, array in arrays.items():
        if len(name) > MAX_KEY or array.dtype.newbyteorder("<").str not in ALLOWED_DTYPES:
            raise UnsafeFileError(f"{where}: array {escape_text(name)[:MAX_KEY]!r} of dtype {array.dtype} "
                                  f"is not one a snapshot holds")
        array.flags.writeable = False
    return Frame("snapshot", fields, arrays)


class FolderSource:
    """A watch folder as a source of frames for the window's ``WatchSession``: ``next_frame(timeout)`` gives
    a ``welcome`` (``{"role": "viewer", "model": ...}``) first (and a ``state`` ``running`` if the run has not
    ended), then the ``metrics`` rows and the ``snapshot`` files, oldest first, and new ones as the script
    writes them; a ``state`` ``ended`` when the run has ended, after which ``closed_reason`` is set. A bad
    file (or line) is a ``notice`` naming it.

    The constructor reads ``watch.json``: ValueError, naming the file, when it is missing or bad."""

    def __init__(self, path: str | os.PathLike, *, poll: float = POLL_S) -> None:
        self.path = Path(path)
        model = read_watch_file(self.path)
        self.poll = poll
        self.closed_reason: str | None = None
        self._lock = threading.Lock()
        self._frames: deque[Frame] = deque([Frame("welcome", {"role": "viewer", "model": model})])
        if not (self.path / ENDED_FILE).is_file():  # a run still being written
            self._frames.append(Frame("state", {"state": "running", "step": 0}))
        self._offset = 0                  # bytes of metrics.jsonl taken (whole lines)
        self._line_no = 0
        self._inode: int | None = None    # of metrics.jsonl
        self._partial = b""               # the start of a line whose end is not written yet
        self._skip_line = False           # in the middle of a line too long to take: skip to its end
        self._metrics_broken = False
        self._last_step = -1              # the newest snapshot's step given out
        self._last_row_step = -1          # the highest step of the metric rows given out
        self._pending: deque[Path] = deque()
        self._said: set[str] = set()      # notices given once each
        self._polled_at = -math.inf
        self._ended = False
        self._closed = False

    # -- the source's interface ----------------------------------------------------------------------
    def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame, looking at the folder again every ``poll`` seconds up to ``timeout`` seconds
        (None: until one comes or the stream ends); None when none came or the stream has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._closed:
                    return None
                frame = self._take()
                if frame is None and self.closed_reason is None and time.monotonic() - self._polled_at >= self.poll:
                    self._scan()
                    frame = self._take()
            if frame is not None or self.closed_reason is not None:
                return frame
            now = time.monotonic()
            wait = self._polled_at + self.poll - now
            if deadline is not None:
                if now >= deadline:
                    return None
                wait = min(wait, deadline - now)
            time.sleep(max(wait, 0.001))

    def frames(self, timeout: float | None = None) -> Frame | None:
        """The same as :meth:`next_frame` (a connection's name for it)."""
        return self.next_frame(timeout)

    def send(self, kind: str, fields: dict) -> None:
        """A folder passes nothing on: a ``notice`` says so."""
        with self._lock:
            self._frames.append(Frame("notice", {"text": READ_ONLY}))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self.closed_reason is None:
                self.closed_reason = "the folder was closed here"

    # -- reading the folder --------------------------------------------------------------------------
    def _take(self) -> Frame | None:
        """The next queued frame, or the next pending snapshot read now (one file at a time, so a long run's
        folder is not read into memory at once)."""
        while True:
            if self._frames:
                return self._frames.popleft()
            if not self._pending:
                break
            path = self._pending.popleft()
            try:
                return read_snapshot_file(path)
            except UnsafeFileError as exc:
                if path.exists():  # else thinned away meanwhile: nothing to say
                    self._notice_once(str(path), f"skipped a bad snapshot file: {escape_text(exc)}")
        if self._ended and self.closed_reason is None:  # everything written before the end was given out
            self.closed_reason = ENDED_REASON
            return Frame("state", {"state": "ended", "step": max(self._last_step, self._last_row_step, 0)})
        return None

    def _notice_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self._frames.append(Frame("notice", {"text": text}))

    def _scan(self) -> None:
        """Look at the folder once: new metric lines, new snapshot files, the end."""
        self._polled_at = time.monotonic()
        if self._ended:
            return
        ended = (self.path / ENDED_FILE).is_file()  # looked at first: what was written before it is read below
        self._read_metrics()
        self._find_snapshots()
        self._ended = ended

    def _read_metrics(self) -> None:
        """The new whole lines of metrics.jsonl as ``metrics`` frames; a last line without its end yet is
        kept for the next look (the script is writing it), one past ``MAX_LINE_BYTES`` is skipped."""
        if self._metrics_broken:
            return
        path = self.path / METRICS_FILE
        while True:
            try:
                data, size, inode = _read_from(path, self._offset, READ_CHUNK)
            except FileNotFoundError:
                return
            except UnsafeFileError as exc:
                self._metrics_broken = True
                self._notice_once(str(path), f"stopped reading the metrics: {escape_text(exc)}")
                return
            if self._inode is None:
                self._inode = inode
            if size < self._offset or inode != self._inode:  # the file started over (a new run in this folder)
                self._offset, self._line_no, self._partial, self._skip_line = 0, 0, b"", False
                self._inode = inode
                self._frames.append(Frame("notice", {"text": f"{self.path}: a new run started in this folder"}))
                continue
            self._offset += len(data)
            lines = (self._partial + data).split(b"\n")
            self._partial = lines.pop()  # what follows the last line's end: b"" or a line being written
            rows = []
            for raw in lines:
                self._line_no += 1
                if self._skip_line:  # the end of a line too long to take
                    self._skip_line = False
                elif raw.strip() and (row := self._parse_line(raw, path)) is not None:
                    rows.append(row)
                    if math.isfinite(row["step"]):
                        self._last_row_step = max(self._last_row_step, int(row["step"]))
            if len(self._partial) > MAX_LINE_BYTES and not self._skip_line:
                self._notice_once(f"{path}:{self._line_no + 1}",
                                  f"{path}: line {self._line_no + 1} is longer than {MAX_LINE_BYTES} bytes: skipped")
                self._skip_line = True
            if self._skip_line:
                self._partial = b""
            if rows:
                self._frames.append(Frame("metrics", {"rows": rows}))
            if len(data) < READ_CHUNK:
                return

    def _parse_line(self, raw: bytes, path: Path) -> dict[str, float] | None:
        where = f"{path} line {self._line_no}"
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise UnsafeFileError(f"{where}: longer than {MAX_LINE_BYTES} bytes")
            row = _clean_row(parse_json(raw, where, max_depth=4, invalid="not a metric row (not JSON)"))
            if row is None:
                raise UnsafeFileError(f"{where}: not a metric row (a JSON object with a numeric 'step')")
        except UnsafeFileError as exc:
            self._notice_once(where, f"skipped a bad line: {escape_text(exc)}")
            return None
        return row

    def _find_snapshots(self) -> None:
        folder = self.path / SNAPSHOT_DIR
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        except OSError as exc:
            self._notice_once(str(folder), f"cannot read {escape_text(folder)} ({escape_text(exc.strerror or exc)})")
            return
        found = []
        for entry in entries:
            match = SNAPSHOT_NAME.match(entry.name)
            if match is None:
                continue
            step = int(match.group(1))
            if step > self._last_step:
                found.append((step, Path(entry.path)))
        for step, path in sorted(found):
            self._pending.append(path)
            self._last_step = step


__all__ = ["DEFAULT_BOUND_BYTES", "ENDED_FILE", "FORMAT", "METRICS_FILE", "SNAPSHOT_DIR", "VERSION",
           "WATCH_FILE", "FolderSource", "FolderWriter", "read_snapshot_file", "read_watch_file", "snapshot_name"]
