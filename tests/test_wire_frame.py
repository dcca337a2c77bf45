"""The wire's frame format (explorer.core.wire.frame): every allowed dtype goes round trip, every
malformed frame is refused with its one-line reason before anything in it is used."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading

import numpy as np
import pytest

from explorer.core.wire.frame import (
    ALLOWED_DTYPES,
    MAGIC,
    MAX_ARRAYS,
    MAX_HEADER,
    ConnectionClosed,
    Frame,
    WireError,
    decode_frame,
    encode_frame,
    read_frame,
)


def raw_frame(header, body: bytes = b"", *, magic: bytes = MAGIC, header_len: int | None = None,
              body_len: int | None = None) -> bytes:
    """A frame built by hand: ``header`` a dict (dumped as JSON) or raw bytes."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (struct.pack("<4sIQ", magic, len(head) if header_len is None else header_len,
                        len(body) if body_len is None else body_len) + head + body)


def entry(name="a", dtype="<f4", shape=(2,), offset=0, nbytes=8) -> dict:
    return {"name": name, "dtype": dtype, "shape": list(shape), "offset": offset, "nbytes": nbytes}


def header(**over) -> dict:
    base = {"v": 1, "kind": "snapshot", "fields": {}, "arrays": []}
    base.update(over)
    return base


def refused(data: bytes, **kw) -> str:
    with pytest.raises(WireError) as info:
        decode_frame(data, **kw)
    return info.value.reason


# -- round trips --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
def test_every_allowed_dtype_goes_round_trip(dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    frame = decode_frame(encode_frame("snapshot", {"step": 3}, {"x": array}))
    assert frame == Frame("snapshot", {"step": 3}, frame.arrays)
    got = frame.arrays["x"]
    assert got.dtype.str == dtype and got.shape == (3, 4, 5)
    np.testing.assert_array_equal(got, array)
    assert not got.flags.writeable


@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8", ">i2", ">i4", ">i8", ">u2", ">u4"])
def test_big_endian_input_arrives_little_endian(dtype):
    array = np.arange(24).reshape(2, 3, 4).astype(dtype)
    data = encode_frame("snapshot", None, {"x": array})
    got = decode_frame(data).arrays["x"]
    assert got.dtype.str == "<" + dtype[1:]
    np.testing.assert_array_equal(got, np.arange(24).reshape(2, 3, 4))
    assert json.loads(data[16:16 + struct.unpack("<I", data[4:8])[0]])["arrays"][0]["dtype"] == "<" + dtype[1:]


def test_zero_size_scalar_and_non_contiguous_arrays_go_round_trip():
    arrays = {"empty": np.zeros((0, 3), "<f4"), "empty2": np.zeros((4, 0, 2), "<i8"), "scalar": np.float64(2.5),
              "transposed": np.arange(12, dtype="<i4").reshape(3, 4).T, "flags": np.array([True, False, True]),
              "odd": np.arange(3, dtype="|u1")}
    frame = decode_frame(encode_frame("snapshot", {"n": None, "s": "é", "l": [1, 2.5, True]}, arrays))
    assert frame.fields == {"n": None, "s": "é", "l": [1, 2.5, True]}
    assert list(frame.arrays) == list(arrays)
    for name, array in arrays.items():
        got = frame.arrays[name]
        assert got.shape == np.shape(array), name
        np.testing.assert_array_equal(got, array)
    assert frame.arrays["scalar"].ndim == 0
    for name in ("transposed", "scalar", "empty"):  # placed at aligned offsets: views need no copy
        assert frame.arrays[name].flags.aligned


def test_read_frame_reads_consecutive_frames_from_a_file_and_a_socket():
    one = encode_frame("metrics", {"rows": [{"step": 1, "loss": 0.5}]})
    two = encode_frame("snapshot", {"step": 2}, {"w": np.ones((2, 2), "<f4")})
    stream = io.BytesIO(one + two)
    assert read_frame(stream).kind == "metrics"
    assert read_frame(stream).arrays["w"].sum() == 4
    with pytest.raises(ConnectionClosed):
        read_frame(stream)
    a, b = socket.socketpair()
    try:
        sender = threading.Thread(target=lambda: [b.sendall(one[:5]), b.sendall(one[5:] + two), b.close()])
        sender.start()
        assert read_frame(a, timeout=5).fields == {"rows": [{"step": 1, "loss": 0.5}]}
        assert read_frame(a, timeout=5).kind == "snapshot"
        with pytest.raises(ConnectionClosed):
            read_frame(a, timeout=5)
        sender.join()
    finally:
        a.close()


def test_read_frame_times_out_as_a_whole_not_per_read():
    a, b = socket.socketpair()
    try:
        with pytest.raises(TimeoutError):  # nothing arrived: nothing lost
            read_frame(a, timeout=0.2)
        data = encode_frame("hello", {"token": "x"})
        b.sendall(data[:10])
        with pytest.raises(WireError, match="timed out in the middle of a frame"):
            read_frame(a, timeout=0.3)
    finally:
        a.close()
        b.close()


def test_numpy_scalars_in_fields_cross_as_plain_numbers():
    fields = {"loss": np.float32(0.5), "step": np.int64(7), "flag": np.bool_(True), "rows": [{"g": np.float64(2)}]}
    got = decode_frame(encode_frame("metrics", fields)).fields
    assert got == {"loss": 0.5, "step": 7, "flag": True, "rows": [{"g": 2.0}]}
    assert [type(v) for v in (got["loss"], got["step"], got["flag"])] == [float, int, bool]
    with pytest.raises(WireError, match=r"the frame's fields cannot be sent as JSON \(a complex64 is not plain JSON\)"):
        encode_frame("metrics", {"z": np.complex64(1)})


def test_encode_refuses_what_cannot_cross_the_wire():
    for dtype in ("|O", "<U4", "|S3", "<u8", "<c8", "|V4"):
        array = np.zeros(2, dtype=dtype)
        with pytest.raises(WireError, match=r"array 'x': dtype .* cannot cross the wire"):
            encode_frame("snapshot", None, {"x": array})
    with pytest.raises(WireError, match="cannot be sent as JSON"):
        encode_frame("snapshot", {"obj": object()})

    class NoArray:
        def __array__(self, *args, **kw):
            raise RuntimeError("can't convert cuda:0 device type tensor to numpy")

    with pytest.raises(WireError, match=r"^array 'gpu' is not a numpy array \(can't convert cuda:0"):
        encode_frame("snapshot", None, {"gpu": NoArray()})
    with pytest.raises(WireError, match="kind must be a str"):
        encode_frame("", {})
    with pytest.raises(WireError, match="an array's name must be a str"):
        encode_frame("snapshot", None, {"x" * 201: np.zeros(1, "<f4")})
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(WireError, match="nest deeper than"):
        encode_frame("snapshot", deep)
    with pytest.raises(WireError, match="frame too large: a header of"):
        encode_frame("snapshot", {"s": "x" * MAX_HEADER})


# -- malformed frames, each refused with its reason ---------------------------------------------------------

def test_bad_magic():
    assert refused(raw_frame(header(), magic=b"GET ")) == "malformed frame: bad magic b'GET ' (expected b'NXW1')"


def test_wrong_version():
    assert refused(raw_frame(header(v=2))) == "version 2 is not spoken here (1)"
    assert refused(raw_frame(header(v="1"))) == "malformed frame: no version number (v='1')"
    assert refused(raw_frame({"kind": "x"})) == "malformed frame: no version number (v=None)"


def test_header_too_long():
    data = raw_frame(b"{}", header_len=MAX_HEADER + 1)
    assert refused(data) == f"frame too large: a header of {MAX_HEADER + 1} bytes (limit {MAX_HEADER})"


def test_body_too_long():
    assert refused(raw_frame(header(), body_len=10 * 10**9)) == \
        f"frame too large: 10000000000 bytes (limit {64 << 20})"
    assert refused(raw_frame(header(), b"\0" * 100), max_body=99) == "frame too large: 100 bytes (limit 99)"


def test_truncated():
    good = encode_frame("snapshot", {"step": 1}, {"x": np.ones(4, "<f4")})
    assert refused(good[:7]) == "malformed frame: truncated: 7 bytes, less than the 16-byte prefix"
    assert refused(good[:-1]) == f"malformed frame: truncated: {len(good) - 1} bytes of a {len(good)}-byte frame"
    assert refused(good + b"\0") == "malformed frame: 1 bytes after the end of the frame"
    for cut in (3, 16, 20, len(good) - 1):
        with pytest.raises(WireError, match="malformed frame: truncated: the stream ended after") as info:
            read_frame(io.BytesIO(good[:cut]))
        assert not isinstance(info.value, ConnectionClosed)


def test_header_not_json_not_an_object_not_utf8_too_deep():
    assert refused(raw_frame(b"{not json")).startswith("malformed frame: header is not JSON (")
    assert refused(raw_frame(b"[1, 2]")) == "malformed frame: header is a JSON list, not an object"
    assert refused(raw_frame(b'"v"')) == "malformed frame: header is a JSON str, not an object"
    assert refused(raw_frame(b"\xff\xfe{}")) == "malformed frame: header is not UTF-8 (byte 0)"
    deep = header(fields=json.loads("[" * 40 + "]" * 40))
    assert refused(raw_frame(deep)) == "malformed frame: header nests deeper than 32 levels"
    very_deep = b'{"v": 1, "kind": "x", "fields": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert refused(raw_frame(very_deep)) == "malformed frame: header nests deeper than 32 levels"


def test_bad_kind_fields_arrays_types():
    assert refused(raw_frame(header(kind=""))).startswith("malformed frame: kind must be a str of 1 to 64")
    assert refused(raw_frame(header(kind=7))).startswith("malformed frame: kind must be a str")
    assert refused(raw_frame(header(kind="k" * 65))).startswith("malformed frame: kind must be a str")
    assert refused(raw_frame(header(fields=[1]))) == "malformed frame: fields is a list, not an object"
    assert refused(raw_frame(header(arrays={}))) == "malformed frame: arrays is a dict, not a list"
    assert refused(raw_frame(header(arrays=[7]))) == "malformed frame: array entry 0 is a int, not an object"
    too_many = [entry(name=f"a{i}", nbytes=0, shape=(0,)) for i in range(MAX_ARRAYS + 1)]
    assert refused(raw_frame(header(arrays=too_many))) == f"malformed frame: {MAX_ARRAYS + 1} arrays (the limit is 4096)"


@pytest.mark.parametrize("dtype", ["|O", "<U4", "|S4", "<u8", ">f4", "<c8", "f4", 4, None])
def test_bad_dtype(dtype):
    data = raw_frame(header(arrays=[entry(dtype=dtype)]), b"\0" * 8)
    assert refused(data) == f"malformed frame: array 'a': dtype {dtype!r} is not allowed"


def test_bad_names():
    body = b"\0" * 16
    assert refused(raw_frame(header(arrays=[entry(), entry(offset=8)]), body)) == \
        "malformed frame: array 'a' appears twice"
    assert refused(raw_frame(header(arrays=[entry(name="")]), body)).startswith(
        "malformed frame: array entry 0: name must be a str of 1 to 200 characters")
    assert refused(raw_frame(header(arrays=[entry(name="n" * 201)]), body)).startswith(
        "malformed frame: array entry 0: name must be a str")
    assert refused(raw_frame(header(arrays=[entry(name=5)]), body)).startswith(
        "malformed frame: array entry 0: name must be a str")


def test_shape_and_nbytes_mismatch():
    body = b"\0" * 64
    assert refused(raw_frame(header(arrays=[entry(shape=(3,), nbytes=8)]), body)) == \
        "malformed frame: array 'a': shape [3] of <f4 is not 8 bytes"
    for shape in ([-1], [1.5], ["2"], [True], 3, [1] * 33):
        data = raw_frame(header(arrays=[{**entry(), "shape": shape}]), body)
        assert refused(data) == "malformed frame: array 'a': shape must be a list of at most 32 non-negative ints"
    huge = raw_frame(header(arrays=[entry(shape=(2**40, 2**40), nbytes=8)]), body)
    assert refused(huge) == f"malformed frame: array 'a': shape [{2**40}, {2**40}] of <f4 is not 8 bytes"


def test_offsets_outside_the_body_or_overlapping():
    body = b"\0" * 16
    for offset, nbytes in ((-1, 8), (1.0, 8), (0, -8), (None, 8)):
        data = raw_frame(header(arrays=[entry(offset=offset, nbytes=nbytes, shape=(2,))]), body)
        assert refused(data) == "malformed frame: array 'a': offset and nbytes must be non-negative ints"
    assert refused(raw_frame(header(arrays=[entry(offset=12)]), body)) == \
        "malformed frame: array 'a': bytes 12..20 lie outside the body of 16 bytes"
    assert refused(raw_frame(header(arrays=[entry(offset=2**64)]), body)).startswith(
        "malformed frame: array 'a': bytes 18446744073709551616..")
    overlapping = [entry(name="a", offset=0), entry(name="b", offset=4)]
    assert refused(raw_frame(header(arrays=overlapping), body)) == "malformed frame: arrays 'a' and 'b' overlap"
    same = [entry(name="a", offset=8), entry(name="b", offset=8)]
    assert refused(raw_frame(header(arrays=same), body)) == "malformed frame: arrays 'a' and 'b' overlap"
    # zero-size arrays take no bytes: anywhere in the body is fine, and touching arrays do not overlap
    fine = [entry(name="a", offset=0), entry(name="b", offset=8), entry(name="e", shape=(0,), nbytes=0, offset=4)]
    frame = decode_frame(raw_frame(header(arrays=fine), body))
    assert [a.shape for a in frame.arrays.values()] == [(2,), (2,), (0,)]


def test_read_frame_refuses_before_reading_a_huge_body():
    """A frame that claims 10 GB is refused from its 16-byte prefix: nothing of that size is allocated or
    waited for."""
    stream = io.BytesIO(raw_frame(header(), body_len=10 * 10**9))
    with pytest.raises(WireError, match=r"frame too large: 10000000000 bytes \(limit 1048576\)"):
        read_frame(stream, max_body=1 << 20)
    assert stream.tell() == 16


def test_a_reader_can_hold_a_peer_to_a_small_header():
    """A peer that sends small commands only (a training server's viewer) is held to ``max_header`` bytes of
    header as well as to ``max_body``: its header is refused from the prefix, before it is read."""
    small = encode_frame("message", {"m": "x" * 100})
    large = encode_frame("message", {"m": "x" * 10_000})
    assert read_frame(io.BytesIO(small), max_body=16, max_header=4096).fields["m"] == "x" * 100
    with pytest.raises(WireError, match="frame too large: a header of"):
        read_frame(io.BytesIO(large), max_body=16, max_header=4096)
    assert read_frame(io.BytesIO(large), max_body=16).fields["m"] == "x" * 10_000  # the default: 1 MiB
