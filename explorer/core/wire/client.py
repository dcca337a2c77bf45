"""The window's side of the wire: connect to a watched script, say hello, then receive its frames.

Why a reader thread and a bounded queue: the window must never wait on the network, and a window that
falls behind must not make the script's server drop it for not reading. The reader thread takes frames
off the socket as they come and keeps the newest; when the queue is full the oldest snapshot goes
(metrics, notices and state changes are kept). ``closed_reason`` says in one line why the stream ended.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from typing import Any

from explorer import __version__
from explorer.core.safe_read import escape_text
from explorer.core.wire.frame import ConnectionClosed, Frame, WireError, encode_frame, read_frame
from explorer.core.wire.tls import duplex

CLIENT_NAME = f"network-explorer {__version__}"
DEFAULT_MAX_BODY = 256 << 20       # a snapshot of a big model stays far below this
STALL_TIMEOUT = 30.0               # a frame that stops half way for this long ends the stream
RECEIVE_QUEUE_FRAMES = 256
DROPPABLE_KINDS = frozenset({"snapshot"})
MAX_REASON_CHARS = 300


def _reason_of(frame: Frame, default: str) -> str:
    """A peer's one-line reason, printable and short whatever the peer sent."""
    reason = frame.fields.get("reason")
    if not isinstance(reason, str) or not reason:
        return default
    return escape_text(reason)[:MAX_REASON_CHARS]


def greet(host: str, port: int, *, token: str, role: str, timeout: float = 5.0,
          max_body: int = DEFAULT_MAX_BODY, tls: ssl.SSLContext | None = None,
          hello: dict[str, Any] | None = None) -> tuple[socket.socket, Frame]:
    """A connection to ``host:port`` that has said its hello, and the peer's answer, a ``welcome``: a
    watched script's (its ``model``) or a training server's (``"server": "training"``, the ``run`` followed).
    ``tls``: speak TLS (a training server started with a certificate; a watched script never does).
    ``hello``: more fields for the hello. WireError with the reason when refused (e.g. "wrong token"),
    unreachable or answered otherwise."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise WireError(f"cannot connect to {where} ({exc.strerror or exc})") from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    if tls is not None:
        try:
            sock = duplex(tls.wrap_socket(sock, server_hostname=host))
        except (ssl.SSLError, ssl.CertificateError) as exc:
            sock.close()
            raise WireError(f"{where}: TLS failed ({getattr(exc, 'reason', None) or exc})") from None
        except OSError as exc:
            sock.close()
            raise WireError(f"{where}: TLS failed ({exc.strerror or exc}; does it speak TLS?)") from None
    try:
        try:
            sock.sendall(encode_frame("hello", {**(hello or {}), "token": token, "role": role,
                                                "client": CLIENT_NAME}))
        except OSError:
            pass  # refused before the hello went out (too many connections): its answer is read below
        try:
            answer = read_frame(sock, max_body=max_body, timeout=timeout)
        except TimeoutError:
            raise WireError(f"no answer from {where} within {timeout:g} s") from None
        except ConnectionClosed:
            raise WireError(f"{where} closed the connection without an answer") from None
        if answer.kind == "refused":
            raise WireError(_reason_of(answer, "refused"))
        if answer.kind != "welcome":
            raise WireError(f"malformed frame: {where} answered with {answer.kind!r:.80}, not a welcome")
    except WireError:
        sock.close()
        raise
    return sock, answer


def is_training_server(welcome: dict) -> bool:
    """Whether a welcome is a training server's (``python -m explorer serve``), not a watched script's."""
    return welcome.get("server") == "training" and isinstance(welcome.get("run"), str)


class FrameClient:
    """One connection to a :class:`~explorer.core.wire.server.FrameServer`."""

    def __init__(self, host: str, port: int, *, token: str, role: str = "control", timeout: float = 5.0,
                 max_body: int = DEFAULT_MAX_BODY, queue_frames: int = RECEIVE_QUEUE_FRAMES) -> None:
        if role not in ("control", "viewer"):
            raise ValueError(f"role must be 'control' or 'viewer', not {role!r}")
        self.host, self.port, self.role = host, int(port), role
        self._token = token
        self._timeout = timeout
        self._max_body = max_body
        self._queue_frames = max(1, queue_frames)
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: deque[Frame] = deque()
        self._ended = False        # the reader has stopped: no more frames will come
        self._closing = False      # close() was called here
        self._reader: threading.Thread | None = None
        self.welcome: dict | None = None
        self.closed_reason: str | None = None
        self.dropped_frames = 0    # snapshots dropped because this side fell behind

    # -- connecting -----------------------------------------------------------------------------------------
    def connect(self) -> dict:
        """Connect and hand over the token; the server's ``welcome`` fields (``role``, ``model``).
        WireError with the reason when refused (e.g. "wrong token") or unreachable."""
        if self._sock is not None:
            raise WireError("already connected")
        try:
            sock, answer = greet(self.host, self.port, token=self._token, role=self.role, timeout=self._timeout,
                                 max_body=self._max_body)
        except WireError as exc:
            self.closed_reason = exc.reason
            raise
        return self.adopt(sock, answer.fields)

    def adopt(self, sock: socket.socket, welcome: dict) -> dict:
        """Take over ``sock``, greeted already (:func:`greet`) with ``welcome``, and start reading it.
        WireError (the socket closed) when the welcome is not a watched script's."""
        if not isinstance(welcome.get("model"), dict):
            sock.close()
            self.closed_reason = (f"{self.host}:{self.port} is a training server: follow its run read-only "
                                  f"(attach --follow)" if is_training_server(welcome) else
                                  f"malformed frame: {self.host}:{self.port}'s welcome has no model")
            raise WireError(self.closed_reason)
        sock.settimeout(STALL_TIMEOUT)
        self._sock = sock
        self.welcome = dict(welcome)
        self._reader = threading.Thread(target=self._read_loop, name="wire-client-read", daemon=True)
        self._reader.start()
        return dict(welcome)

    # -- receiving ------------------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        assert self._sock is not None
        reason = None
        try:
            while True:
                try:
                    frame = read_frame(self._sock, max_body=self._max_body)
                except TimeoutError:
                    if self._closing:
                        break
                    continue  # a quiet run: nothing to read yet
                except ConnectionClosed:
                    break
                except WireError as exc:
                    reason = exc.reason
                    break
                if frame.kind == "bye":
                    reason = _reason_of(frame, "the training script ended")
                elif frame.kind == "refused":
                    reason = _reason_of(frame, "refused")
                self._put(frame)
        finally:
            try:
                self._sock.shutdown(socket.SHUT_WR)  # nothing more to say: the server need not wait for us
            except OSError:
                pass
            with self._cond:
                if self.closed_reason is None:
                    self.closed_reason = reason or ("the connection was closed here" if self._closing
                                                    else "the connection closed")
                self._ended = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            while len(self._queue) >= self._queue_frames and not self._closing:
                victim = next((f for f in self._queue if f.kind in DROPPABLE_KINDS), None)
                if victim is not None:
                    self._queue.remove(victim)
                    self.dropped_frames += 1
                    continue
                self._cond.wait(0.5)  # nothing droppable: wait for the window to take frames
            self._queue.append(frame)
            self._cond.notify_all()

    def frames(self, timeout: float | None = None) -> Frame | None:
        """The next received frame, waiting up to ``timeout`` seconds (None: until one comes or the stream
        ends); None when none came in time or the stream has ended and every frame was taken."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._ended or self._sock is None, timeout)
            if not self._queue:
                return None
            frame = self._queue.popleft()
            self._cond.notify_all()
            return frame

    @property
    def closed(self) -> bool:
        """Whether the stream has ended (frames already received may still be waiting in ``frames``)."""
        return self._ended or (self._sock is None and self.closed_reason is not None)

    # -- sending --------------------------------------------------------------------------------------------
    def send(self, kind: str, fields: dict) -> None:
        """Send one frame (a ``command``); WireError if the connection is gone."""
        data = encode_frame(kind, fields)
        sock = self._sock
        if sock is None or self._ended:
            raise WireError(f"not connected ({self.closed_reason or 'connect first'})")
        try:
            with self._send_lock:
                sock.sendall(data)
        except OSError as exc:
            raise WireError(f"the connection broke ({exc.strerror or exc})") from None

    # -- closing --------------------------------------------------------------------------------------------
    def close(self) -> None:
        """End the connection (never the watched script); waits briefly for the reader thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        sock = self._sock
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)
        sock.close()
        with self._cond:
            if self.closed_reason is None:
                self.closed_reason = "the connection was closed here"
            self._ended = True
            self._cond.notify_all()

    def __enter__(self) -> FrameClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
