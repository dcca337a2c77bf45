"""The window's side of remote training: a ProcessSession whose training process is on a server.

Why: the server relays the training process's own frames (``explorer.core.remote.server``), so the
window's session is the local one with its pipe replaced by a socket: every panel, control and live
hyper-parameter works the same. The socket stands in for the pipe (whole frames in, whole frames out) and
the connection stands in for the process (alive while connected).
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Any

from explorer.core.process.session import ProcessSession
from explorer.core.wire.frame import PREFIX, WireError, _check_prefix, encode_frame, read_frame

CONNECT_TIMEOUT = 10.0
MAX_FRAME_BODY = 1 << 31


class RemoteRefused(WireError):
    """The server refused the connection (the reason is the message) or could not be reached."""


class SocketPipe:
    """A connected socket as the pipe ProcessSession reads and writes: whole frames each way."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self.closed = False

    def send_bytes(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def _exactly(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise EOFError("the server closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv_bytes(self) -> bytes:
        prefix = self._exactly(PREFIX.size)
        header_len, body_len = _check_prefix(prefix, MAX_FRAME_BODY)
        return prefix + self._exactly(header_len + body_len)

    def poll(self, timeout: float = 0.0) -> bool:
        return bool(select.select([self.sock], [], [], timeout)[0])

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class RemoteProcess:
    """The remote training process as the session sees a local one: alive while connected."""

    pid = 0

    def __init__(self, pipe: SocketPipe) -> None:
        self._pipe = pipe

    @property
    def exitcode(self) -> int | None:
        return None if self.is_alive() else 0

    def is_alive(self) -> bool:
        return not self._pipe.closed

    def join(self, timeout: float | None = None) -> None:
        self._pipe.closed = True

    def kill(self) -> None:
        self._pipe.close()


def connect(host: str, port: int, token: str, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A socket welcomed by the server at ``host:port``; RemoteRefused with the reason otherwise."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise RemoteRefused(f"{host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.sendall(encode_frame("hello", {"token": token, "role": "control", "client": "explorer"}))
        answer = read_frame(sock, max_body=1 << 16, timeout=timeout)
    except (OSError, WireError) as exc:
        sock.close()
        raise RemoteRefused(f"{host}:{port}: {exc}") from None
    if answer.kind != "welcome":
        sock.close()
        raise RemoteRefused(f"{host}:{port} refused: {answer.fields.get('reason', answer.kind)}")
    sock.settimeout(None)
    return sock


class RemoteSession(ProcessSession):
    """A training session run by the server at ``host:port`` (token ``token``)."""

    def __init__(self, config: Any = None, *, host: str, port: int, token: str, **kwargs: Any) -> None:
        self.server_address, self._token = (host, port), token
        super().__init__(config, **kwargs)

    def _open_process(self) -> tuple[Any, Any]:
        pipe = SocketPipe(connect(*self.server_address, self._token))
        return RemoteProcess(pipe), pipe
