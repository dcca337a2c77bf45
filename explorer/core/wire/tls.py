"""A TLS connection that one thread may read while another writes.

OpenSSL forbids two calls on one connection at once: an ``SSL_read`` in a reader thread and an
``SSL_write`` in a writer thread corrupt its state, and the connection ends with "bad record mac" or an
EOF some runs in ten (a class's follower dropped right after its welcome). Every connection here has
such a pair (a viewer's reader and writer, a window's receiver and its commands), so a TLS socket is
wrapped in :class:`DuplexTLS` once its handshake is done: the TLS socket is made non-blocking and every
call on it is made under one lock, while the waiting for the network happens outside the lock, so a
reader waiting for a frame never holds a writer up.
"""
from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from typing import Any

# what else a caller may ask of the socket, passed through untouched (none of it reads or writes TLS data)
_PASSED_THROUGH = frozenset({"setsockopt", "getsockopt", "getpeername", "getsockname", "family", "type",
                             "proto", "cipher", "version", "getpeercert", "selected_alpn_protocol",
                             "server_hostname", "server_side", "context"})


class DuplexTLS:
    """``tls`` (an :class:`ssl.SSLSocket` whose handshake is done) with the socket methods this project
    uses, safe for one reader and one writer at once. Timeouts behave as a socket's: ``None`` waits,
    ``0`` raises :class:`ssl.SSLWantReadError`/``SSLWantWriteError`` at once, ``t`` raises
    :class:`TimeoutError` after ``t`` seconds (for ``sendall``, the whole of it)."""

    def __init__(self, tls: ssl.SSLSocket) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._timeout = tls.gettimeout()
        self._broken: str | None = None  # why no more may be sent (a send that stopped partway)
        tls.setblocking(False)

    # -- the socket's settings -------------------------------------------------------------------------
    def fileno(self) -> int:
        return self._tls.fileno()

    def gettimeout(self) -> float | None:
        return self._timeout

    def settimeout(self, timeout: float | None) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def __getattr__(self, name: str) -> Any:
        if name in _PASSED_THROUGH:
            return getattr(self._tls, name)
        raise AttributeError(name)

    # -- reading and writing ---------------------------------------------------------------------------
    def pending(self) -> int:
        """Decrypted bytes ready to read (which ``select`` on the socket cannot see)."""
        with self._lock:
            return self._tls.pending()

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        timeout, deadline = self._deadline()
        while True:
            with self._lock:
                try:
                    return self._tls.recv_into(buffer, nbytes, flags)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
                    error: ssl.SSLError = exc
            self._wait(error, timeout, deadline)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        buffer = bytearray(bufsize)
        n = self.recv_into(buffer, bufsize, flags)
        return bytes(memoryview(buffer)[:n])

    def send(self, data: Any, flags: int = 0) -> int:
        self._check_sendable()
        timeout, deadline = self._deadline()
        while True:
            with self._lock:
                try:
                    return self._tls.send(data, flags)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
                    error: ssl.SSLError = exc
            self._sending_wait(error, timeout, deadline)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """All of ``data``; after a wait, the same bytes are offered again (as OpenSSL requires)."""
        self._check_sendable()
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        timeout, deadline = self._deadline()
        while view:
            with self._lock:
                try:
                    sent = self._tls.send(view, flags)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
                    sent, error = 0, exc
            if sent:
                view = view[sent:]
            else:
                self._sending_wait(error, timeout, deadline)

    # -- the end -------------------------------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        """Shut the TCP connection (no lock: it wakes a thread waiting on it); TLS state stays, so what
        was already received can still be read."""
        socket.socket.shutdown(self._tls, how)

    def close(self) -> None:
        with self._lock:
            self._tls.close()

    def __enter__(self) -> DuplexTLS:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- waiting, outside the lock ---------------------------------------------------------------------
    def _deadline(self) -> tuple[float | None, float | None]:
        """The timeout this call started with, and when it runs out (a settimeout meanwhile is the next call's)."""
        timeout = self._timeout
        return timeout, None if timeout is None else time.monotonic() + timeout

    def _check_sendable(self) -> None:
        if self._broken is not None:
            raise OSError(f"the connection is broken: {self._broken}")

    def _sending_wait(self, error: ssl.SSLError, timeout: float | None, deadline: float | None) -> None:
        """:meth:`_wait` for a send: one that stops with part of its record written leaves OpenSSL holding
        it, and a later send of other bytes would carry on from the middle of those: no more sends."""
        try:
            self._wait(error, timeout, deadline)
        except BaseException as exc:
            if timeout != 0:
                self._broken = f"a send stopped partway ({exc or type(exc).__name__})"
            raise

    def _wait(self, error: ssl.SSLError, timeout: float | None, deadline: float | None) -> None:
        """Until the socket can do what ``error`` (want-read or want-write) asked for, or ``deadline``."""
        if deadline is None:
            remaining = None
        else:
            if timeout == 0:
                raise error  # non-blocking: the caller waits as it likes
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
        reading = isinstance(error, ssl.SSLWantReadError)
        fd = self._tls.fileno()
        if fd < 0:
            raise OSError("the socket is closed")
        if hasattr(select, "poll"):  # (no limit on the descriptor's number, unlike select)
            poller = select.poll()
            poller.register(fd, select.POLLIN if reading else select.POLLOUT)
            ready = bool(poller.poll(None if remaining is None else max(1, int(remaining * 1000 + 0.999))))
        else:
            ready = any(select.select(*(([fd], [], []) if reading else ([], [fd], [])), remaining))
        if not ready:
            raise TimeoutError("timed out")


def duplex(sock: Any) -> Any:
    """``sock`` made safe for a reader and a writer at once: a TLS socket wrapped, any other as it is."""
    return DuplexTLS(sock) if isinstance(sock, ssl.SSLSocket) else sock
