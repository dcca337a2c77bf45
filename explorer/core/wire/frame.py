"""The wire's frame: one message between a watched training script and a window, pickle-free.

Why a format of our own: a pickle read from a socket runs whatever code its sender chose, so nothing
that crosses the wire is ever unpickled. A frame is a small JSON header (the kind of message, its plain
fields, and where each array lies in the body) followed by the arrays' raw little-endian bytes::

    MAGIC b"NXW1" | header_len uint32 LE | body_len uint64 LE | header (UTF-8 JSON) | body

The reader checks every length, type and offset before it uses it, so a hostile or broken peer gets a
:class:`WireError` with a one-line reason, never a crash, a hang or a huge allocation. Arrays are of a
few numeric dtypes only (no object dtype, ever); big-endian input is converted on encode.
"""

from __future__ import annotations

import json
import math
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.safe_read import json_depth_exceeds

MAGIC = b"NXW1"
WIRE_VERSION = 1
PREFIX = struct.Struct("<4sIQ")     # magic, header_len, body_len: 16 bytes
MAX_HEADER = 1 << 20                # 1 MiB of JSON header
DEFAULT_MAX_BODY = 64 << 20         # 64 MiB of arrays, unless the reader says otherwise
MAX_ARRAYS = 4096
MAX_JSON_DEPTH = 32
MAX_NAME = 200                      # characters of an array's name
MAX_KIND = 64                       # characters of a frame's kind
MAX_NDIM = 32                       # numpy's own limit is 64
ALIGN = 8                           # arrays start at multiples of this in the body (aligned views)
ALLOWED_DTYPES = frozenset({"<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "|b1"})


class WireError(Exception):
    """A frame or a connection that cannot be used; the message is a one-line reason."""

    @property
    def reason(self) -> str:
        return str(self)


class ConnectionClosed(WireError):
    """The peer closed the stream cleanly, before the first byte of a frame."""


@dataclass(frozen=True)
class Frame:
    """One decoded message: its kind, its plain fields, and its arrays (read-only, owned by the frame)."""

    kind: str
    fields: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _malformed(why: str) -> WireError:
    return WireError(f"malformed frame: {why}")


def _wire_dtype(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as a C-ordered little-endian array of an allowed dtype; WireError for any other dtype."""
    dtype = array.dtype
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    if dtype.str not in ALLOWED_DTYPES:
        raise WireError(f"array {name!r}: dtype {array.dtype.str} cannot cross the wire "
                        f"(allowed: {' '.join(sorted(ALLOWED_DTYPES))})")
    return np.asarray(array, dtype=dtype, order="C")  # (ascontiguousarray would make a 0-d array 1-d)


def _plain(value: Any) -> Any:
    """A numpy scalar (``np.float32(0.5)``) as the Python number it holds; anything else is refused."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"a {type(value).__name__} is not plain JSON")


def _dumps(obj: Any, what: str) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_plain).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError(f"{what} cannot be sent as JSON ({exc})") from None


def encode_frame(kind: str, fields: dict | None = None, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """The bytes of one frame. ``fields`` must be plain JSON (str keys; str, int, float, bool, None,
    lists, dicts); ``arrays`` numpy arrays of an allowed dtype. Any fault is a WireError."""
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND:
        raise WireError(f"a frame's kind must be a str of 1 to {MAX_KIND} characters, not {kind!r:.80}")
    fields = {} if fields is None else fields
    if not isinstance(fields, dict):
        raise WireError(f"a frame's fields must be a dict, not {type(fields).__name__}")
    arrays = {} if arrays is None else arrays
    if len(arrays) > MAX_ARRAYS:
        raise WireError(f"{len(arrays)} arrays in one frame (the limit is {MAX_ARRAYS})")
    entries: list[dict] = []
    parts: list[bytes | memoryview] = []
    offset = 0
    for name, value in arrays.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise WireError(f"an array's name must be a str of 1 to {MAX_NAME} characters, not {name!r:.80}")
        try:
            array = _wire_dtype(name, np.asarray(value))
        except (TypeError, ValueError, RuntimeError) as exc:  # e.g. a tensor still on the GPU
            raise WireError(f"array {name!r} is not a numpy array ({exc})") from None
        if array.ndim > MAX_NDIM:
            raise WireError(f"array {name!r}: {array.ndim} dimensions (the limit is {MAX_NDIM})")
        pad = -offset % ALIGN
        if pad:
            parts.append(bytes(pad))
            offset += pad
        entries.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                        "offset": offset, "nbytes": array.nbytes})
        parts.append(array.reshape(-1).view(np.uint8).data)
        offset += array.nbytes
    if json_depth_exceeds(fields, MAX_JSON_DEPTH - 1):  # the header holds them one level down
        raise WireError(f"the frame's fields nest deeper than {MAX_JSON_DEPTH - 1} levels")
    header = _dumps({"v": WIRE_VERSION, "kind": kind, "fields": fields, "arrays": entries}, "the frame's fields")
    if len(header) > MAX_HEADER:
        raise WireError(f"frame too large: a header of {len(header)} bytes (limit {MAX_HEADER})")
    return b"".join([PREFIX.pack(MAGIC, len(header), offset), header, *parts])


def check_prefix(prefix: bytes, max_body: int, max_header: int = MAX_HEADER) -> tuple[int, int]:
    """(header_len, body_len) of a frame's first 16 bytes, checked against the limits."""
    magic, header_len, body_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise _malformed(f"bad magic {magic!r} (expected {MAGIC!r})")
    if header_len > min(max_header, MAX_HEADER):
        raise WireError(f"frame too large: a header of {header_len} bytes (limit {min(max_header, MAX_HEADER)})")
    if header_len < 2:
        raise _malformed(f"a header of {header_len} bytes")
    if body_len > max_body:
        raise WireError(f"frame too large: {body_len} bytes (limit {max_body})")
    return header_len, body_len


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_Layout = list[tuple[str, np.dtype, tuple, int, int]]  # name, dtype, shape, offset, nbytes of each array


def _parse_header(raw: bytes | bytearray | memoryview, body_len: int) -> tuple[str, dict, _Layout]:
    """The kind, fields and array layout of a header, every field checked against the body's length."""
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"header is not UTF-8 (byte {exc.start})") from None
    try:
        header = json.loads(text)
    except RecursionError:
        raise _malformed(f"header nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise _malformed(f"header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _malformed(f"header is a JSON {type(header).__name__}, not an object")
    if json_depth_exceeds(header, MAX_JSON_DEPTH):
        raise _malformed(f"header nests deeper than {MAX_JSON_DEPTH} levels")
    version = header.get("v")
    if not _is_int(version):
        raise _malformed(f"no version number (v={version!r:.40})")
    if version != WIRE_VERSION:
        raise WireError(f"version {version} is not spoken here ({WIRE_VERSION})")
    kind = header.get("kind")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND:
        raise _malformed(f"kind must be a str of 1 to {MAX_KIND} characters, not {kind!r:.80}")
    fields = header.get("fields", {})
    if not isinstance(fields, dict):
        raise _malformed(f"fields is a {type(fields).__name__}, not an object")
    entries = header.get("arrays", [])
    if not isinstance(entries, list):
        raise _malformed(f"arrays is a {type(entries).__name__}, not a list")
    if len(entries) > MAX_ARRAYS:
        raise _malformed(f"{len(entries)} arrays (the limit is {MAX_ARRAYS})")
    layout: _Layout = []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _malformed(f"array entry {i} is a {type(entry).__name__}, not an object")
        name = entry.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise _malformed(f"array entry {i}: name must be a str of 1 to {MAX_NAME} characters")
        if name in names:
            raise _malformed(f"array {name!r} appears twice")
        names.add(name)
        dtype_str = entry.get("dtype")
        if not isinstance(dtype_str, str) or dtype_str not in ALLOWED_DTYPES:
            raise _malformed(f"array {name!r}: dtype {dtype_str!r:.40} is not allowed")
        dtype = np.dtype(dtype_str)
        shape = entry.get("shape")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(n) and n >= 0 for n in shape)):
            raise _malformed(f"array {name!r}: shape must be a list of at most {MAX_NDIM} non-negative ints")
        offset, nbytes = entry.get("offset"), entry.get("nbytes")
        if not isinstance(offset, int) or not isinstance(nbytes, int) or isinstance(offset, bool) \
                or isinstance(nbytes, bool) or offset < 0 or nbytes < 0:
            raise _malformed(f"array {name!r}: offset and nbytes must be non-negative ints")
        if math.prod(shape) * dtype.itemsize != nbytes:
            raise _malformed(f"array {name!r}: shape {shape} of {dtype_str} is not {nbytes} bytes")
        if offset + nbytes > body_len:
            raise _malformed(f"array {name!r}: bytes {offset}..{offset + nbytes} lie outside the body "
                             f"of {body_len} bytes")
        layout.append((name, dtype, tuple(shape), offset, nbytes))
    spans = sorted((offset, offset + nbytes, name) for name, _, _, offset, nbytes in layout if nbytes)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise _malformed(f"arrays {first!r} and {second!r} overlap")
    return kind, fields, layout


def _build(kind: str, fields: dict, layout: _Layout, body: bytes | bytearray) -> Frame:
    arrays = {}
    for name, dtype, shape, offset, nbytes in layout:
        array = np.frombuffer(body, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset).reshape(shape)
        array.flags.writeable = False
        arrays[name] = array
    return Frame(kind, fields, arrays)


def decode_frame(data: bytes | bytearray | memoryview, max_body: int = DEFAULT_MAX_BODY) -> Frame:
    """The frame held whole in ``data`` (no bytes before or after it); WireError for any fault."""
    view = memoryview(data).cast("B")
    if len(view) < PREFIX.size:
        raise _malformed(f"truncated: {len(view)} bytes, less than the {PREFIX.size}-byte prefix")
    header_len, body_len = check_prefix(bytes(view[:PREFIX.size]), max_body)
    expected = PREFIX.size + header_len + body_len
    if len(view) < expected:
        raise _malformed(f"truncated: {len(view)} bytes of a {expected}-byte frame")
    if len(view) > expected:
        raise _malformed(f"{len(view) - expected} bytes after the end of the frame")
    kind, fields, layout = _parse_header(view[PREFIX.size:PREFIX.size + header_len], body_len)
    return _build(kind, fields, layout, bytes(view[PREFIX.size + header_len:]))


def decode_header(data: bytes | bytearray | memoryview, max_body: int = DEFAULT_MAX_BODY) -> tuple[str, dict]:
    """The kind and fields of the frame held whole in ``data``, its arrays left unread and uncopied: for a
    relay that routes frames by what they are and passes their bytes on as they came. WireError for any
    fault of the prefix or the header (the arrays' layout included)."""
    view = memoryview(data).cast("B")
    if len(view) < PREFIX.size:
        raise _malformed(f"truncated: {len(view)} bytes, less than the {PREFIX.size}-byte prefix")
    header_len, body_len = check_prefix(bytes(view[:PREFIX.size]), max_body)
    if len(view) != PREFIX.size + header_len + body_len:
        raise _malformed(f"{len(view)} bytes for a {PREFIX.size + header_len + body_len}-byte frame")
    kind, fields, _ = _parse_header(view[PREFIX.size:PREFIX.size + header_len], body_len)
    return kind, fields


# -- reading from a stream --------------------------------------------------------------------------------

def _read_into(stream: Any, buf: memoryview, deadline: float | None) -> int:
    """Fill ``buf`` from a socket (recv_into) or a binary file (readinto/read); the count read (short on EOF).
    A socket times out by its own timeout, or at ``deadline`` when one is given."""
    done = 0
    is_socket = hasattr(stream, "recv_into")
    while done < len(buf):
        if is_socket:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out")
                stream.settimeout(remaining)
            n = stream.recv_into(buf[done:])
        elif hasattr(stream, "readinto"):
            n = stream.readinto(buf[done:])
        else:
            chunk = stream.read(len(buf) - done)
            n = len(chunk) if chunk else 0
            buf[done:done + n] = chunk or b""
        if not n:
            break
        done += n
    return done


def read_frame(stream: Any, max_body: int = DEFAULT_MAX_BODY, timeout: float | None = None,
               max_header: int = MAX_HEADER) -> Frame:
    """Read exactly one frame from a socket or a binary file.

    ``timeout`` (sockets only) bounds the whole frame, not each read: a peer that trickles bytes cannot
    hold the reader. Without it the socket's own timeout applies to each read. Raises
    :class:`ConnectionClosed` on a clean end of stream before the frame, ``TimeoutError`` when nothing of
    a frame arrived in time (nothing is lost: read again), and :class:`WireError` for a bad frame, an
    end of stream or a timeout in the middle of one, or a broken connection. ``max_header``: a peer that
    sends small commands only is held to a header of that many bytes too (at most ``MAX_HEADER``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    saved_timeout = stream.gettimeout() if deadline is not None and hasattr(stream, "gettimeout") else None
    started = False
    try:
        prefix = bytearray(PREFIX.size)
        try:
            n = _read_into(stream, memoryview(prefix)[:1], deadline)
            if n == 0:
                raise ConnectionClosed("the connection closed")
            started = True
            n += _read_into(stream, memoryview(prefix)[1:], deadline)
            if n < PREFIX.size:
                raise _malformed(f"truncated: the stream ended after {n} bytes of the prefix")
            header_len, body_len = check_prefix(bytes(prefix), max_body, max_header)
            header = bytearray(header_len)
            n = _read_into(stream, memoryview(header), deadline)
            if n < header_len:
                raise _malformed(f"truncated: the stream ended after {n} of {header_len} header bytes")
            kind, fields, layout = _parse_header(header, body_len)
            body = bytearray(body_len)
            n = _read_into(stream, memoryview(body), deadline)
            if n < body_len:
                raise _malformed(f"truncated: the stream ended after {n} of {body_len} body bytes")
        except TimeoutError:
            if not started:
                raise
            raise WireError("timed out in the middle of a frame") from None
        except WireError:
            raise
        except OSError as exc:
            reason = f"the connection broke ({exc.strerror or exc})"
            raise (WireError(reason) if started else ConnectionClosed(reason)) from None
        return _build(kind, fields, layout, body)
    finally:
        if deadline is not None and hasattr(stream, "settimeout"):
            try:
                stream.settimeout(saved_timeout)
            except OSError:
                pass


__all__ = ["check_prefix", "MAGIC", "WIRE_VERSION", "MAX_HEADER", "DEFAULT_MAX_BODY", "MAX_ARRAYS", "MAX_JSON_DEPTH", "MAX_NAME",
           "ALLOWED_DTYPES", "WireError", "ConnectionClosed", "Frame", "encode_frame", "decode_frame", "read_frame"]
