"""A hostile or careless peer of the watch server, run as a process of its own by tests/test_wire_server.py.

    python tests/wire_peer.py MODE HOST PORT [TOKEN] [COUNT]

It prints one JSON line: what the server answered (the first frame's kind and fields, or the error) and
how long that took. Modes that hold their connections ("flood", "never-read") then wait for a line on
stdin before they exit.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time
from collections import Counter

from explorer.core.wire.frame import MAGIC, WireError, encode_frame, read_frame


def answer(sock: socket.socket, timeout: float = 20.0) -> dict:
    try:
        frame = read_frame(sock, max_body=1 << 20, timeout=timeout)
    except (WireError, OSError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"kind": frame.kind, "fields": frame.fields}


def hello(token: str, role: str = "control") -> bytes:
    return encode_frame("hello", {"token": token, "role": role, "client": "wire_peer"})


def raw_frame(header: dict, body_len: int) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<4sIQ", MAGIC, len(head), body_len) + head


def main(argv: list[str]) -> int:
    mode, host, port = argv[0], argv[1], int(argv[2])
    token = argv[3] if len(argv) > 3 else ""
    started = time.monotonic()
    if mode == "flood":
        count = int(argv[4])
        socks = []
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=20)
            try:
                sock.sendall(hello(token))
            except OSError:
                pass
            socks.append(sock)
        outcomes: Counter = Counter()
        for sock in socks:
            got = answer(sock)
            outcomes[got.get("kind", "error") + ":" + str(got.get("fields", {}).get("reason", got.get("error", "")))] += 1
        print(json.dumps({"outcomes": dict(outcomes), "elapsed": time.monotonic() - started}), flush=True)
        sys.stdin.readline()
        return 0
    sock = socket.create_connection((host, port), timeout=20)
    if mode == "wrong-token":
        sock.sendall(hello("not-the-token"))
    elif mode == "garbage":
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" + bytes(range(256)) * 64)
    elif mode == "huge":
        sock.sendall(raw_frame({"v": 1, "kind": "hello", "fields": {}, "arrays": []}, 10 * 10**9))
        sock.sendall(b"\0" * 65536)
    elif mode == "version":
        sock.sendall(raw_frame({"v": 2, "kind": "hello", "fields": {"token": token, "role": "control"},
                                "arrays": []}, 0))
    elif mode == "silent":
        pass
    elif mode == "trickle":  # a valid hello, one byte at a time, slower than the hello timeout allows
        data = hello(token)
        for i in range(len(data)):
            if select.select([sock], [], [], 0.1)[0] or time.monotonic() - started > 10:
                break  # the server answered (refused): read it
            try:
                sock.sendall(data[i:i + 1])
            except OSError:
                break
    elif mode == "never-read":
        sock.sendall(hello(token))
        got = answer(sock)
        print(json.dumps({**got, "elapsed": time.monotonic() - started}), flush=True)
        sys.stdin.readline()  # the socket is never read again
        return 0
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    got = answer(sock)
    print(json.dumps({**got, "elapsed": time.monotonic() - started}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
