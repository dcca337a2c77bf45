"""Reading a file the user (or anyone) handed the app, without letting the file take the app down.

Only regular files are read: a FIFO, a device (``/dev/urandom``, ``/dev/zero``) or a socket would make a
read hang or never end. A read stops at a size limit instead of filling memory, and JSON is parsed
with a limit on how deeply it nests (the parser recurses, and so does every walk over the result).
Every fault is an :class:`UnsafeFileError` (a ValueError) whose message names the file and the fault.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 64 * 1024 * 1024   # run.json, specs, settings: far below this when written by the app
MAX_JSON_DEPTH = 64                 # the app's own files nest 5 levels at most
MAX_TEXT_BYTES = 64 * 1024 * 1024


class UnsafeFileError(ValueError):
    """A file that is not a regular file, too large, not text or not sound JSON; the message names it."""


def escape_text(text: object) -> str:
    """``text`` with control characters (terminal escape sequences, newlines, NULs) shown as escapes:
    names and values read from a file are printed with this, so a file cannot drive the terminal."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def one_line(message: BaseException | str) -> str:
    """An error's message as one line for a notice, a log or the terminal: its first non-empty line,
    control characters escaped (see ``escape_text``); an exception with no message gives its type's name."""
    lines = [line for line in str(message).splitlines() if line.strip()]
    if lines:
        return escape_text(lines[0].strip())
    return type(message).__name__ if isinstance(message, BaseException) else ""


def _open_regular(p: Path) -> int:
    """A descriptor of the regular file ``p``; UnsafeFileError for anything else (never blocks on a FIFO)."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait for one, forever
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise UnsafeFileError(f"{p}: cannot read: no such file") from None
    except IsADirectoryError:
        raise UnsafeFileError(f"{p}: is a folder, not a file") from None
    except OSError as exc:
        raise UnsafeFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise UnsafeFileError(f"{p}: is a folder, not a file")
        raise UnsafeFileError(f"{p}: not a regular file (a device, pipe or socket), refused")
    return fd


def _read_up_to(fd: int, count: int) -> bytes:
    chunks, total = [], 0
    while total < count:
        chunk = os.read(fd, min(1 << 20, count - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_prefix(path: str | os.PathLike, count: int) -> bytes:
    """The first ``count`` bytes of the regular file ``path`` (all of it when shorter)."""
    p = Path(path)
    fd = _open_regular(p)
    try:
        return _read_up_to(fd, count)
    except OSError as exc:
        raise UnsafeFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_bytes(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (UnsafeFileError past that)."""
    p = Path(path)
    fd = _open_regular(p)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UnsafeFileError(f"{p}: too large ({size} bytes; the limit is {limit})")
        data = _read_up_to(fd, limit + 1)
        if len(data) > limit:  # the file grew while being read
            raise UnsafeFileError(f"{p}: too large (over {limit} bytes)")
        return data
    except OSError as exc:
        raise UnsafeFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``limit`` bytes)."""
    raw = read_bytes(path, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFileError(f"{Path(path)}: not a text (UTF-8) file (byte {exc.start} cannot be decoded)") from None


def json_depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether ``obj`` (parsed JSON) nests lists and objects more than ``limit`` deep; no recursion."""
    if not isinstance(obj, (dict, list)):
        return False
    stack = [(obj, 1)]
    while stack:  # only containers go on the stack: a row of a thousand numbers is one pass over them
        item, depth = stack.pop()
        if depth > limit:
            return True
        depth += 1
        stack.extend((v, depth) for v in (item.values() if isinstance(item, dict) else item)
                     if isinstance(v, (dict, list)))
    return False


def parse_json(text: str | bytes, where: str, max_depth: int = MAX_JSON_DEPTH, invalid: str = "not valid JSON") -> Any:
    """JSON from ``text`` (``where`` names its file in messages, ``invalid`` says what a parse error is),
    its nesting limited to ``max_depth``."""
    try:
        obj = json.loads(text)
    except RecursionError:
        raise UnsafeFileError(f"{where}: JSON nested too deeply (the limit is {max_depth} levels)") from None
    except json.JSONDecodeError as exc:
        raise UnsafeFileError(f"{where}: {invalid} ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsafeFileError(f"{where}: {invalid} ({exc})") from None
    if json_depth_exceeds(obj, max_depth):
        raise UnsafeFileError(f"{where}: JSON nested too deeply (the limit is {max_depth} levels)")
    return obj


def read_json(path: str | os.PathLike, limit: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH,
              invalid: str = "not valid JSON") -> Any:
    """Parsed JSON from the regular file ``path``: size and nesting limited, every fault naming the file."""
    return parse_json(read_text(path, limit), str(Path(path)), max_depth, invalid)


__all__ = ["UnsafeFileError", "escape_text", "read_bytes", "read_prefix", "read_text", "read_json", "parse_json",
           "json_depth_exceeds", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_TEXT_BYTES"]
