"""The watched script's side of the wire: a small TCP server that fans frames out to windows.

Why it looks like this: ``publish`` is called from the user's own training loop, so it must never
block, whatever the windows do. Each frame is encoded once and the same bytes are queued for every
client; each client has a writer thread of its own with a bounded queue (the oldest droppable frame,
a snapshot, goes first when it fills; metrics and notices are kept), and a client that stops reading is
dropped. Nobody gets anything before a ``hello`` with the right token, within a few seconds
(a connection that sends nothing cannot hold a slot), and nothing a client sends is more than a small
command read with tight limits. Refusals are a one-line reason on both sides: a ``refused`` frame to
the peer, a line in the log (logger ``explorer.wire``), and training goes on.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import selectors
import socket
import sys
import threading
import time
from collections import deque

import numpy as np

from explorer.core.wire.auth import ROLES, tokens_equal
from explorer.core.wire.frame import ConnectionClosed, Frame, WireError, encode_frame, read_frame

log = logging.getLogger("explorer.wire")

HELLO_TIMEOUT = 5.0             # seconds from connecting to a complete hello
STALL_TIMEOUT = 30.0            # a client that takes no bytes for this long is dropped
CLIENT_MAX_BODY = 1 << 20       # clients send small commands only
MAX_CLIENTS = 64
QUEUE_FRAMES = 64               # per client: past these, the oldest droppable frame is dropped
QUEUE_BYTES = 64 << 20
HARD_QUEUE_FRAMES = 4096        # past these with nothing droppable left, the client is dropped
HARD_QUEUE_BYTES = 256 << 20
HISTORY_CHUNK_ROWS = 5000       # rows per metrics frame when a late client gets the history
MAX_PENDING_COMMANDS = 1024
REFUSAL_LINGER = 1.0            # seconds a refused connection is drained before it is closed
SEND_CHUNK = 1 << 20
CONTROL_COMMANDS = frozenset({"pause", "play", "step", "set_lr"})
VIEWER_REFUSAL = "viewers may not control the run"
BYE_REASON = "the training script ended"


class _Outgoing:
    """One queued frame: its bytes, or metric rows to encode in the writer (a late client's history)."""

    __slots__ = ("data", "rows", "droppable", "close_after")

    def __init__(self, data: bytes = b"", *, rows: list | None = None, droppable: bool = False,
                 close_after: bool = False) -> None:
        self.data, self.rows, self.droppable, self.close_after = data, rows, droppable, close_after

    @property
    def size(self) -> int:
        return len(self.data)

    def frames(self):
        if self.rows is None:
            yield self.data
            return
        for start in range(0, len(self.rows), HISTORY_CHUNK_ROWS):
            yield from metrics_frames(self.rows[start:start + HISTORY_CHUNK_ROWS])


def metrics_frames(rows: list[dict]) -> list[bytes]:
    """``rows`` as one ``metrics`` frame, or as several where one would pass the header's limit (rows of
    many gradient norms); a WireError only for a row that cannot be sent at all."""
    try:
        return [encode_frame("metrics", {"rows": rows})]
    except WireError:
        if len(rows) <= 1:
            raise
    half = len(rows) // 2
    return metrics_frames(rows[:half]) + metrics_frames(rows[half:])


class _Client:
    """One connection: its socket, its role once welcomed, its outgoing queue and its writer thread."""

    def __init__(self, sock: socket.socket, peer: str, number: int) -> None:
        self.sock, self.peer, self.number = sock, peer, number
        self.role: str | None = None
        self.queue: deque[_Outgoing] = deque()
        self.queued_bytes = 0
        self.cond = threading.Condition()
        self.dropped = False           # set once: the connection is being ended
        self.dropped_frames = 0
        self.writer: threading.Thread | None = None
        # a late joiner's catch-up at the head of the queue, until its writer takes it: not held against the
        # bounds (a long run's history alone is more frames than the hard bound; the writer takes it at once)
        self.backlog_frames = 0
        self.backlog_bytes = 0

    def queue_backlog(self, items: list[_Outgoing]) -> None:
        """Queue a late joiner's catch-up (its welcome, what the run kept for it) ahead of the live frames."""
        with self.cond:
            self.queue.extend(items)
            size = sum(item.size for item in items)
            self.queued_bytes += size
            self.backlog_frames += len(items)
            self.backlog_bytes += size
            self.cond.notify_all()

    def take_all(self) -> list[_Outgoing]:
        """Everything queued, for the writer (the caller holds ``cond``)."""
        items = list(self.queue)
        self.queue.clear()
        self.queued_bytes = self.backlog_frames = self.backlog_bytes = 0
        return items

    def mark_dropped(self) -> bool:
        """End this client's queue (its writer stops); False when it was ended already."""
        with self.cond:
            if self.dropped:
                return False
            self.dropped = True
            self.queue.clear()
            self.queued_bytes = 0
            self.cond.notify_all()
            return True

    def enqueue(self, item: _Outgoing, queue_frames: int, queue_bytes: int) -> bool:
        """Queue ``item``, dropping the oldest droppable frames past the bounds; False when the client is
        too far behind even so (it is to be dropped)."""
        with self.cond:
            if self.dropped:
                return True
            self.queue.append(item)
            self.queued_bytes += item.size
            while (len(self.queue) - self.backlog_frames > queue_frames
                   or self.queued_bytes - self.backlog_bytes > queue_bytes):
                victim = next((i for i in self.queue if i.droppable), None)
                if victim is None:
                    break
                self.queue.remove(victim)
                self.queued_bytes -= victim.size
                self.dropped_frames += 1
            self.cond.notify_all()
            return (len(self.queue) - self.backlog_frames <= HARD_QUEUE_FRAMES
                    and self.queued_bytes - self.backlog_bytes <= HARD_QUEUE_BYTES)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine alone (a server bound there is not reachable from the network)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def keep_alive(sock: socket.socket) -> None:
    """TCP keepalive probes after 30 s of silence, every 10 s, 3 unanswered: a peer whose network vanished
    (a laptop's Wi-Fi, a VPN) is found within about a minute, on either side, instead of never."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass


def shutdown_socket(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """``sock.shutdown(how)``, a socket already gone being no fault."""
    try:
        sock.shutdown(how)
    except OSError:
        pass


def drain_before_close(sock: socket.socket) -> None:
    """Read what the peer still sends, for a moment or until it closes: closing a socket with unread
    bytes resets the connection, and the peer could lose the frame that says why it ended."""
    deadline = time.monotonic() + REFUSAL_LINGER
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(65536):
                return
    except OSError:
        pass


class FrameServer:
    """Serves one watched run to any number (up to ``max_clients``) of windows.

    ``token`` grants the control role (or only the viewer role, if ``allow_control`` is False);
    ``viewer_token``, if given, grants the viewer role. ``model`` (the model description) goes to each
    client in its ``welcome``. ``hello_timeout``, ``stall_timeout`` and the queue bounds are there for the
    tests; the defaults are the documented limits."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str, viewer_token: str | None = None,
                 allow_control: bool = True, model: dict, max_clients: int = MAX_CLIENTS,
                 history_rows: int = 100_000, hello_timeout: float = HELLO_TIMEOUT,
                 stall_timeout: float = STALL_TIMEOUT, queue_frames: int = QUEUE_FRAMES,
                 queue_bytes: int = QUEUE_BYTES) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("a FrameServer needs a token")
        if viewer_token is not None and (not isinstance(viewer_token, str) or not viewer_token):
            raise ValueError("viewer_token must be a non-empty str or None")
        encode_frame("welcome", {"role": "control", "model": model})  # a model that cannot be sent fails here
        self.address: tuple[str, int] = (host, port)
        self._host, self._port = host, port
        self._token, self._viewer_token = token, viewer_token
        self._allow_control = allow_control
        self._model = model
        self._max_clients = max_clients
        self._hello_timeout, self._stall_timeout = hello_timeout, stall_timeout
        self._queue_frames, self._queue_bytes = queue_frames, queue_bytes
        self._lock = threading.Lock()
        self._connections: set[_Client] = set()   # every accepted connection, welcomed or not
        self._clients: list[_Client] = []          # the welcomed ones, who get published frames
        self._threads: set[threading.Thread] = set()
        self._history: deque[dict] = deque(maxlen=max(0, history_rows))
        self._latest: dict[str, bytes] = {}
        self._commands: deque[dict] = deque(maxlen=MAX_PENDING_COMMANDS)
        self._command_cond = threading.Condition()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._closed = False
        self._count = 0

    # -- starting -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind, listen and serve on a daemon thread; ``address`` is then the bound (host, port)."""
        if self._listener is not None:
            return
        family, _, _, _, sockaddr = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM,
                                                       flags=socket.AI_PASSIVE)[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(max(128, 4 * self._max_clients))
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        bound = listener.getsockname()
        self.address = (str(bound[0]), int(bound[1]))
        if not is_loopback(self.address[0]):
            message = (f"explorer: the watch server on {self.address[0]}:{self.address[1]} is reachable from the "
                       f"network (anyone who has the token can watch{' and control' if self._allow_control else ''}"
                       f" this run)")
            log.warning(message)
            if log.hasHandlers():  # else logging's last resort has printed it to stderr already
                print(message, file=sys.stderr)
        self._acceptor = threading.Thread(target=self._accept_loop, name="wire-accept", daemon=True)
        self._acceptor.start()

    # -- publishing (the user's loop) -----------------------------------------------------------------------
    def publish(self, kind: str, fields: dict, arrays: dict[str, np.ndarray] | None = None, *,
                droppable: bool = False, keep_as_latest: bool = False) -> None:
        """Send a frame to every welcomed client: encoded once, the same bytes queued for each; never waits
        for a client. ``keep_as_latest``: the frame is also kept (the latest one of its kind) and sent to
        clients that connect later. A frame that cannot be encoded is a WireError."""
        item = _Outgoing(encode_frame(kind, fields, arrays), droppable=droppable)
        self._fan_out([item], latest_kind=kind if keep_as_latest else None)

    def publish_metrics(self, rows: list[dict[str, float]]) -> None:
        """Send metric rows; they are also kept (the last ``history_rows``) for clients that connect later."""
        rows = [dict(row) for row in rows]
        if not rows:
            return
        self._fan_out([_Outgoing(data) for data in metrics_frames(rows)], rows=rows)

    def _fan_out(self, items: list[_Outgoing], latest_kind: str | None = None, rows: list | None = None) -> None:
        """Queue ``items`` for every welcomed client, in one step with the history's update (a client that
        connects meanwhile gets them once: in its history, or queued)."""
        behind = set()
        with self._lock:
            if self._closed:
                return
            if latest_kind is not None:
                self._latest[latest_kind] = items[-1].data
            if rows:
                self._history.extend(rows)
            for client in self._clients:
                for item in items:
                    if not client.enqueue(item, self._queue_frames, self._queue_bytes):
                        behind.add(client)
        for client in behind:
            self._drop(client, "too far behind (its outgoing queue is full)")

    # -- what clients asked ---------------------------------------------------------------------------------
    def viewers(self) -> int:
        """How many welcomed clients are connected."""
        with self._lock:
            return len(self._clients)

    def commands(self) -> list[dict]:
        """The commands received since the last call (their fields), oldest first; never waits."""
        with self._command_cond:
            pending = list(self._commands)
            self._commands.clear()
        return pending

    def wait_command(self, timeout: float) -> dict | None:
        """The next command, waiting up to ``timeout`` seconds for one (the paused loop); None if none came."""
        with self._command_cond:
            self._command_cond.wait_for(lambda: self._commands or self._closed, timeout)
            return self._commands.popleft() if self._commands else None

    # -- closing --------------------------------------------------------------------------------------------
    def close(self, reason: str = BYE_REASON) -> None:
        """Send ``bye`` to every client, let them read it (about a second at most), then stop serving."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients)
        with self._command_cond:
            self._command_cond.notify_all()
        bye = _Outgoing(encode_frame("bye", {"reason": reason}), close_after=True)
        for client in clients:
            client.enqueue(bye, HARD_QUEUE_FRAMES, HARD_QUEUE_BYTES)
        if self._acceptor is not None:
            self._acceptor.join(2.0)
        deadline = time.monotonic() + 1.0
        for client in clients:
            if client.writer is not None:
                client.writer.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # clients close on bye: their readers end by themselves
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftover = list(self._connections)
        for client in leftover:
            self._drop(client, None)
        deadline = time.monotonic() + 1.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the accepting thread -------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        lingering: dict[socket.socket, float] = {}  # refused sockets, drained a moment before closing
        try:
            while not self._closed:
                for key, _ in selector.select(0.2):
                    if key.data is None:
                        self._accept_all(selector, lingering)
                    else:
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        try:
                            more = sock.recv(65536)
                        except OSError:
                            more = b""
                        if not more:
                            selector.unregister(sock)
                            lingering.pop(sock, None)
                            sock.close()
                now = time.monotonic()
                for sock in [s for s, until in lingering.items() if until <= now]:
                    selector.unregister(sock)
                    del lingering[sock]
                    sock.close()
        except Exception:  # never expected; logged, the server stops accepting, training goes on
            log.exception("the watch server stopped accepting connections")
        finally:
            for sock in lingering:
                sock.close()
            selector.close()
            self._listener.close()

    def _accept_all(self, selector: selectors.BaseSelector, lingering: dict[socket.socket, float]) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, a connection reset before accept: keep serving
                log.warning("could not accept a connection (%s)", exc.strerror or exc)
                return
            peer = f"{addr[0]}:{addr[1]}"
            with self._lock:
                full = len(self._connections) >= self._max_clients
                if not full and not self._closed:
                    self._count += 1
                    client = _Client(sock, peer, self._count)
                    self._connections.add(client)
            if full or self._closed:
                reason = "too many connections" if full else "the server is closing"
                log.warning("refused a connection from %s: %s", peer, reason)
                sock.setblocking(False)
                try:
                    sock.send(encode_frame("refused", {"reason": reason}))
                except OSError:
                    pass
                shutdown_socket(sock, socket.SHUT_WR)
                if len(lingering) >= 4 * self._max_clients:  # a flood: no more lingering, close outright
                    sock.close()
                    continue
                lingering[sock] = time.monotonic() + REFUSAL_LINGER
                selector.register(sock, selectors.EVENT_READ, True)
                continue
            sock.setblocking(True)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            thread = threading.Thread(target=self._serve, args=(client,), name=f"wire-conn-{client.number}",
                                      daemon=True)
            with self._lock:
                self._threads.add(thread)
            thread.start()

    # -- one connection's thread: the handshake, then its commands ------------------------------------------
    def _serve(self, client: _Client) -> None:
        try:
            if self._handshake(client):
                self._read_commands(client)
        except Exception:  # never expected; the connection ends, the server goes on
            log.exception("the connection from %s failed", client.peer)
        finally:
            self._finish(client)

    def _handshake(self, client: _Client) -> bool:
        sock = client.sock
        sock.settimeout(self._stall_timeout)
        role = ""
        try:
            hello = read_frame(sock, max_body=CLIENT_MAX_BODY, timeout=self._hello_timeout)
        except TimeoutError:
            reason = f"no hello within {self._hello_timeout:g} s"
        except ConnectionClosed:
            log.info("a connection from %s closed before its hello", client.peer)
            return False
        except WireError as exc:
            reason = exc.reason
        else:
            reason, role = self._check_hello(hello)
        if reason:
            self._refuse(client, reason)
            return False
        welcome = _Outgoing(encode_frame("welcome", {"role": role, "model": self._model}))
        with self._lock:
            if self._closed:
                return False
            client.role = role
            client.queue.append(welcome)
            if self._history:
                client.queue.append(_Outgoing(rows=list(self._history)))
            client.queue.extend(_Outgoing(data) for data in self._latest.values())
            client.queued_bytes = sum(item.size for item in client.queue)
            self._clients.append(client)
        client.writer = threading.Thread(target=self._write_loop, args=(client,),
                                         name=f"wire-send-{client.number}", daemon=True)
        client.writer.start()
        log.info("a %s connected from %s", role, client.peer)
        return True

    def _check_hello(self, hello: Frame) -> tuple[str, str]:
        """(the reason to refuse, "") or ("", the role granted)."""
        if hello.kind != "hello":
            return f"the first frame must be a hello, not {hello.kind!r:.80}", ""
        role = hello.fields.get("role", "control")
        if role not in ROLES:
            return "malformed frame: a hello's role must be 'control' or 'viewer'", ""
        token = hello.fields.get("token")
        is_control = tokens_equal(token, self._token)
        is_viewer = tokens_equal(token, self._viewer_token)  # both compared, always
        if not (is_control or is_viewer):
            return "wrong token", ""
        if role == "control" and not is_control:
            return VIEWER_REFUSAL, ""
        return "", "control" if role == "control" and self._allow_control else "viewer"

    def _refuse(self, client: _Client, reason: str) -> None:
        """Tell the peer why in a ``refused`` frame, log it, end the connection (drained a moment first, so
        the frame is not lost to a reset)."""
        log.warning("refused a connection from %s: %s", client.peer, reason)
        sock = client.sock
        try:
            sock.settimeout(REFUSAL_LINGER)
            sock.sendall(encode_frame("refused", {"reason": reason}))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        drain_before_close(sock)

    def _read_commands(self, client: _Client) -> None:
        while not client.dropped:
            try:
                frame = read_frame(client.sock, max_body=CLIENT_MAX_BODY)
            except TimeoutError:
                continue  # an idle window: fine
            except ConnectionClosed:
                return
            except WireError as exc:
                if client.dropped:
                    return
                log.warning("refused a frame from the %s at %s: %s", client.role, client.peer, exc.reason)
                client.enqueue(_Outgoing(encode_frame("refused", {"reason": exc.reason}), close_after=True),
                               HARD_QUEUE_FRAMES, HARD_QUEUE_BYTES)
                if client.writer is not None:
                    client.writer.join(REFUSAL_LINGER)
                drain_before_close(client.sock)
                return
            self._handle(client, frame)

    def _handle(self, client: _Client, frame: Frame) -> None:
        cmd = frame.fields.get("cmd")
        if frame.kind != "command" or not isinstance(cmd, str):
            why = (f"a {frame.kind!r:.80} frame is not a command" if frame.kind != "command"
                   else "malformed command: 'cmd' must be a str")
            self._notice(client, why)
            return
        if cmd in CONTROL_COMMANDS and client.role != "control":
            log.info("refused %r from the viewer at %s: %s", cmd, client.peer, VIEWER_REFUSAL)
            self._notice(client, VIEWER_REFUSAL)
            return
        with self._command_cond:
            self._commands.append(dict(frame.fields))
            self._command_cond.notify_all()

    def _notice(self, client: _Client, text: str) -> None:
        """A notice to one client (the connection stays)."""
        item = _Outgoing(encode_frame("notice", {"text": text, "reason": text}))
        if not client.enqueue(item, self._queue_frames, self._queue_bytes):
            self._drop(client, "too far behind (its outgoing queue is full)")

    # -- one connection's writer thread ---------------------------------------------------------------------
    def _write_loop(self, client: _Client) -> None:
        sock = client.sock
        while True:
            with client.cond:
                client.cond.wait_for(lambda: client.queue or client.dropped)
                if client.dropped:
                    return
                item = client.queue.popleft()
                client.queued_bytes -= item.size
            try:
                for data in item.frames():
                    view = memoryview(data)
                    for start in range(0, len(view), SEND_CHUNK):
                        sock.sendall(view[start:start + SEND_CHUNK])
            except TimeoutError:
                self._drop(client, f"stopped reading for {self._stall_timeout:g} s")
                return
            except OSError as exc:
                self._drop(client, f"the connection broke ({exc.strerror or exc})")
                return
            except WireError as exc:  # history rows that cannot be encoded: not expected, they were once
                self._drop(client, exc.reason)
                return
            if item.close_after:
                shutdown_socket(sock, socket.SHUT_WR)
                return

    # -- ending a connection --------------------------------------------------------------------------------
    def _drop(self, client: _Client, reason: str | None) -> None:
        """Stop serving ``client`` (its threads end; the reader closes the socket); logs ``reason`` once."""
        if not client.mark_dropped():
            return
        if reason:  # logged first: whoever sees the client gone can read why
            log.warning("dropped the %s at %s: %s", client.role or "connection", client.peer, reason)
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        shutdown_socket(client.sock)

    def _finish(self, client: _Client) -> None:
        self._drop(client, None)
        if client.writer is not None and client.writer is not threading.current_thread():
            client.writer.join(1.0)
        client.sock.close()
        with self._lock:
            self._connections.discard(client)
            self._threads.discard(threading.current_thread())
