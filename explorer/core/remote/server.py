"""The server's side of remote training: one training process per run, frames relayed to its window.

Why it looks like this: the app's training process already speaks in wire frames of plain values
(``explorer.core.process.codec``: no pickle), so the server does not need a protocol of its own. After a
``hello`` with the right token (within ``hello_timeout``: a peer that sends nothing cannot hold a slot)
it starts a training process (a *run*, named by an unguessable id sent in the ``welcome``) and relays
frames both ways. Every frame a client sends is decoded and checked first, its form
(``explorer.core.process.messages``: the fields the process reads, their types and ranges) and what it
asks: a request that would make the server read or write a path of the client's choosing (a saved run to
restore, a data folder, ``save_run_to``, ``autosave_to``, ``export_model``) is refused with an error reply;
the window saves runs where it is, from the files it fetches (``commands.run_files``). What is refused is
answered with one line naming the fault, and one line goes to the log (logger ``explorer.remote``): bytes
that are not a message (a second ``hello`` included) get a ``refused`` frame and the connection ends, as
before the welcome; a session request of the wrong form a ``failed`` reply (a ValueError; a forbidden one a
PermissionError), and its run ends; a command a reply to its call, or a notice. No traceback or path of
the server's crosses (the training process logs its own). The other connections and their training go on.

A dropped connection does not end its run: the run trains on, detached, and a ``hello`` naming its id
(``resume``) takes it up again; the window then asks the process for everything anew (``resync``). A run
stays detached at most ``keep_detached`` seconds; a window that closes says ``stop`` and its run ends.
A control hello with ``"start_run": false`` starts nothing: its welcome (``"run": ""``) only says that a
training server answers here (``explorer attach`` asks so before it follows a run).

**Viewers** (a class following the teacher's run): a ``hello`` with the role ``viewer`` and the viewer
token (or the control token) follows a run read-only, the one it names (``follow``) or the newest. The
pump reads each of the process's frames once, looks at its header only (``decode_header``: the arrays
stay unread) and queues the same bytes for every viewer, each with its own writer thread and bounded
queue (a viewer that falls behind loses its oldest snapshots first; one that stops reading is dropped).
A viewer that joins late gets what the run keeps for it: its first report, the latest full status, the
curves (the newest ``VIEWER_HISTORY_BYTES``), the latest snapshot. A viewer may ask one thing only: the
receptive field of a unit its user clicked (``commands.unit_view``, ``VIEWER_MAX_QUERIES`` at a time),
answered to it alone; anything else it sends is refused with a notice and a log line, and ten refusals
end its connection.

``ranks`` (``serve --gpus N``): the server writes it into every session request it passes on, over
whatever a client sent, so the operator alone chooses how many processes a run takes. With N > 1 a
cnn or fcn run's training process becomes rank 0 of N training the model with DistributedDataParallel
(``explorer.core.process.lockstep``); other families train on one process, and their window is told.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any

from explorer.core.persist import commands
from explorer.core.process import codec, worker
from explorer.core.process.messages import MAX_ID, command_fault, request_fault
from explorer.core.process.session import MAX_MESSAGE_BYTES, MESSAGE
from explorer.core.wire.auth import tokens_equal
from explorer.core.wire.frame import ConnectionClosed, WireError, decode_frame, decode_header, encode_frame, read_frame
from explorer.core.wire.server import (
    HARD_QUEUE_BYTES,
    HARD_QUEUE_FRAMES,
    QUEUE_BYTES,
    QUEUE_FRAMES,
    _Client,
    _Outgoing,
    drain_before_close,
    keep_alive,
    shutdown_socket,
)
from explorer.core.wire.tls import duplex

log = logging.getLogger("explorer.remote")

HELLO_TIMEOUT = 5.0
HELLO_MAX_BODY = 4096
CLIENT_MAX_BODY = 256 << 20     # a session request (with a moved model's weights) or a command
MAX_RUNS = 8                    # training processes, attached or detached
MAX_PENDING = 64                # connections that have not said hello yet
KEEP_DETACHED_S = 600.0   # a dropped network comes back within minutes; a crashed window never does
PATH_COMMANDS = frozenset({commands.save_run_to, commands.autosave_to, commands.export_model})
MAX_VIEWERS = 256               # read-only followers, all runs together
VIEWER_HISTORY_BYTES = 64 << 20  # the curves a run keeps for viewers who join late (the oldest rows go first)
VIEWER_MAX_BODY = 4096          # a viewer's questions are small; the rest is read only to be refused
VIEWER_MAX_HEADER = 4096        # (its header as well: a question's arguments travel there)
VIEWER_STALL_S = 30.0           # a viewer that takes no bytes for this long is dropped
VIEWER_MAX_REFUSALS = 10
SEND_BATCH = 256                # buffers per sendmsg (the system's limit is 1024)
LAST_FRAME_S = 5.0              # for the frame that ends a refused connection to go out
VIEWER_REFUSAL = "a viewer follows the run read-only: only the window that trains it can control it"
VIEWER_QUERIES = commands.VIEWER_QUERIES  # what a viewer may ask the run (answered to it alone)
VIEWER_MAX_QUERIES = 4          # a viewer's questions waiting for their answer at once
# what a training process says that viewers see too (replies and failures are the controlling window's)
SHARED_MESSAGES = frozenset({"ready", "metrics", "static", "snapshot", "status", "resynced", "stopped"})


# the settings that name a file or folder (of the machine the settings are read on)
PATH_SETTINGS = frozenset({"data_dir", "image_folder", "text_file"})
TRAINER_CALLS = frozenset({commands.call_trainer, commands.ask_trainer})


def _names_a_path(item: Any) -> bool:
    """Whether a path setting's value names something (None and "" name nothing; an array is not asked
    for its truth, which it has none of)."""
    return item is not None and not (isinstance(item, (str, bool, int, float)) and not item)


def _named_path(value: Any, depth: int = 0) -> str | None:
    """The first path setting ``value`` names (a settings object, or dicts and sequences holding one)."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PATH_SETTINGS and _names_a_path(item):
                return str(key)
            found = _named_path(item, depth + 1)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for item in value:
            found = _named_path(item, depth + 1)
            if found:
                return found
    else:
        for key in PATH_SETTINGS:
            if _names_a_path(getattr(value, key, None)) and hasattr(type(value), "__dataclass_fields__"):
                return key
    return None


def _path_refusal(key: str | None) -> str | None:
    return None if key is None else f"a remote client may not name a file or folder on the server ({key})"


def malformed(message: Any, started: bool = True) -> str | None:
    """Why ``message`` is not one the training process can use, or None: before its session is built
    (``started`` False) a session request, then its commands (``explorer.core.process.messages``)."""
    return command_fault(message) if started else request_fault(message)


def refusal(message: Any) -> str | None:
    """Why a client's message may not reach the training process, or None when it may: a message of the
    wrong form (:func:`malformed`, a session request being a dict), or one that would reach a path on the
    server or the trainer's private methods (:func:`forbidden`)."""
    return malformed(message, started=not isinstance(message, dict)) or forbidden(message)


def forbidden(message: Any) -> str | None:
    """Why a well-formed message may not reach the training process (it names a path on the server, calls
    the trainer's private methods, passes off a follower's question), or None when it may."""
    if isinstance(message, dict):
        if message.get("run_dir"):
            return "a remote client may not open a path on the server (run_dir)"
        why = _path_refusal(_named_path(message.get("config")))
        if why:
            return why
        files = message.get("run_files")
        if files is not None:
            try:
                info = json.loads(files["run.json"].tobytes())
            except (TypeError, KeyError, AttributeError, ValueError, RecursionError):
                return "the run's files sent are not a run (run.json)"
            if not isinstance(info, dict):
                return "the run's files sent are not a run (run.json)"
            return _path_refusal(_named_path(info.get("config")))
        return None
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        return "not a training message"
    if message[0] == "query":  # the server's own, for its viewers: unchecked by the process, answered to them
        return "a window asks its run with calls; questions are a follower's, sent by the server"
    if message[0] == "call" and len(message) == 5:
        if not isinstance(message[1], int) or message[1] < 0:  # below 0: the ids of viewers' questions
            return f"a call's id must be a whole number of 0 or more, not {str(message[1])[:20]!r}"
        if message[2] in PATH_COMMANDS:
            return f"a remote client may not write a path on the server ({message[2].__name__})"
        if message[2] in TRAINER_CALLS:
            method = message[3][0] if message[3] else None
            if not isinstance(method, str) or method.startswith("_") or method == "apply_hparams":
                return f"a remote client may not call the trainer's {str(method)[:40]!r}"
        return _path_refusal(_named_path(message[3:5]))
    if message[0] == "do" and len(message) == 5:
        return _path_refusal(_named_path(message[3:5]))
    return None


def _message_frame(message: Any) -> bytes:
    tree, arrays = codec.pack(message)
    return encode_frame(MESSAGE, {"m": tree}, arrays)


def message_head(data: bytes | bytearray | memoryview) -> tuple[str, Any]:
    """The tag of a training process's message (``"snapshot"``, ``"status"``...) and its first field, read
    from the frame's header alone; ("", None) for bytes that are not such a message."""
    try:
        kind, fields = decode_header(data, max_body=MAX_MESSAGE_BYTES)
    except WireError:
        return "", None
    tree = fields.get("m")
    items = tree.get("__tuple") if isinstance(tree, dict) else None
    if kind != MESSAGE or not isinstance(items, list) or not items or not isinstance(items[0], str):
        return "", None
    return items[0], items[1] if len(items) > 1 else None


def send_buffers(sock: socket.socket, buffers: list[bytes]) -> None:
    """Send ``buffers`` in order, whole, in as few system calls as the socket allows (no joined copy)."""
    if isinstance(sock, ssl.SSLSocket) or not isinstance(sock, socket.socket):  # TLS (DuplexTLS): no sendmsg
        for data in buffers:
            sock.sendall(data)
        return
    views = [memoryview(data) for data in buffers if data]
    while views:
        sent = sock.sendmsg(views[:SEND_BATCH])
        while sent and views:
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0], sent = views[0][sent:], 0


def message_fields(data: bytes) -> Any:
    """The packed message (``fields["m"]``) of a frame from the training process."""
    return decode_header(data, max_body=MAX_MESSAGE_BYTES)[1].get("m")


def message_arrays(data: bytes) -> dict[str, Any]:
    """The arrays of a frame from the training process."""
    return dict(decode_frame(data, max_body=MAX_MESSAGE_BYTES).arrays)


def _full_status(status: Any) -> bool:
    """Whether a status carries the slow fields too (the model's description and settings)."""
    return isinstance(status, dict) and isinstance(status.get("fields"), dict) and "describe" in status["fields"]


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        shutdown_socket(sock)
        sock.close()


class _Run:
    """One training process on the server and the connection that controls it (None while dropped).

    Its pump thread forwards everything the process says to the connection attached at the time, and drops
    it while none is (the window asks for everything anew when it comes back), so a run never waits for a
    window: it trains on."""

    def __init__(self, server: TrainingServer, run_id: str) -> None:
        self.server, self.id = server, run_id
        self.process, self.conn = worker.start_worker()
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()  # the pump and the relay's refusals write the same socket
        self.process_lock = threading.Lock()  # the relay, the viewers' readers and stop write the same pipe
        self.sock: socket.socket | None = None
        self.peer = ""
        self.detached_at: float | None = time.monotonic()
        self.started = False     # the session request was passed on
        self.stopping = False    # the window asked it to stop
        self.ended = False
        self.created = time.monotonic()
        # viewers, and what a late one gets (see the module): under view_lock, with the fan-out
        self.view_lock = threading.Lock()
        self.viewers: list[_Client] = []
        self._ready: bytes | None = None
        self._status: bytes | None = None
        self._full_status: bytes | None = None
        self._snapshot: bytes | None = None
        self._statics: dict[str, bytes] = {}  # the latest of each array a snapshot leaves out, by name
        self._history: deque[bytes] = deque()
        self._history_bytes = 0
        self._history_gen: Any = None
        # viewers' questions on their way to the process: its id there (negative: never a window's) -> whose
        self._queries: dict[int, tuple[_Client, int]] = {}
        self._query_ids = 0
        self._pump = threading.Thread(target=self._forward, name=f"remote-run-{run_id[:6]}", daemon=True)
        self._pump.start()

    def attach(self, sock: socket.socket, peer: str) -> None:
        with self.lock:
            old, self.sock, self.peer, self.detached_at = self.sock, sock, peer, None
        _shut(old)  # a window that comes back takes over from its stale connection

    def detach(self, sock: socket.socket) -> bool:
        """Forget ``sock`` if it is still the run's connection; True when it was."""
        with self.lock:
            if self.sock is not sock:
                return False
            self.sock, self.detached_at = None, time.monotonic()
        return True

    def send_to_process(self, data: bytes) -> None:
        """One whole message to the process (a large one is written in parts: never two at once)."""
        with self.process_lock:
            self.conn.send_bytes(data)

    # -- viewers ---------------------------------------------------------------------------------------
    def add_viewer(self, viewer: _Client, welcome: bytes) -> bool:
        """Queue ``welcome`` and what the run keeps for a late viewer, then follow it; False if it ended."""
        with self.view_lock:
            if self.ended:
                return False
            kept = [self._ready, self._full_status, *self._statics.values(), *self._history, self._snapshot,
                    self._status]
            viewer.queue_backlog([_Outgoing(data) for data in [welcome, *kept] if data is not None])
            self.viewers.append(viewer)
        return True

    def drop_viewer(self, viewer: _Client, reason: str | None) -> None:
        """Stop sending to ``viewer`` (its writer ends; its reader closes the socket); logs ``reason`` once."""
        if not viewer.mark_dropped():
            return
        if reason:  # logged first: whoever sees the viewer gone can read why
            log.warning("run %s: dropped the viewer at %s: %s", self.id[:6], viewer.peer, reason)
        with self.view_lock:
            if viewer in self.viewers:
                self.viewers.remove(viewer)
        shutdown_socket(viewer.sock)

    def ask(self, viewer: _Client, message: Any) -> str | None:
        """Pass a viewer's question on (``("query", id, fn, args, kwargs)`` with ``fn`` in VIEWER_QUERIES);
        why not, when it may not."""
        if not (isinstance(message, tuple) and len(message) == 5 and message[0] == "query"
                and message[2] in VIEWER_QUERIES and isinstance(message[1], int)
                and isinstance(message[3], tuple) and isinstance(message[4], dict) and not message[4]):
            return VIEWER_REFUSAL
        with self.view_lock:
            if sum(1 for v, _ in self._queries.values() if v is viewer) >= VIEWER_MAX_QUERIES:
                return f"at most {VIEWER_MAX_QUERIES} questions at once"
            self._query_ids -= 1
            self._queries[self._query_ids] = (viewer, message[1])
            asked = self._query_ids
        self.send_to_process(_message_frame(("query", asked, message[2], message[3], {})))
        return None

    def _answer(self, data: bytes, asked: int) -> None:
        """The process's reply to a viewer's question: to that viewer alone, under the id it gave."""
        with self.view_lock:
            viewer, own_id = self._queries.pop(asked, (None, 0))
        if viewer is None or viewer.dropped:
            return
        try:
            _, _, result, error = codec.unpack(message_fields(data), message_arrays(data))
            frame = _message_frame(("reply", own_id, result, error))
        except (WireError, codec.CodecError, TypeError, ValueError) as exc:
            log.warning("run %s: the answer to a viewer could not be passed on (%s)", self.id[:6], exc)
            return
        if not viewer.enqueue(_Outgoing(frame), QUEUE_FRAMES, QUEUE_BYTES):
            self.drop_viewer(viewer, "too far behind (its outgoing queue is full)")

    def _share(self, data: bytes, tag: str, first: Any) -> None:
        """Keep what a late viewer needs of the process's message ``data`` and queue it for every viewer."""
        if tag not in SHARED_MESSAGES:
            return
        item = _Outgoing(data, droppable=tag == "snapshot", close_after=tag == "stopped")
        behind = []
        with self.view_lock:
            if tag == "ready":
                self._ready = data
            elif tag == "metrics":
                if first != self._history_gen:  # a reset: new curves
                    self._history.clear()
                    self._history_bytes, self._history_gen = 0, first
                self._history.append(data)
                self._history_bytes += len(data)
                while self._history_bytes > VIEWER_HISTORY_BYTES and len(self._history) > 1:
                    self._history_bytes -= len(self._history.popleft())
            elif tag == "resynced":  # the controlling window connected again: the whole history follows
                self._history.clear()
                self._history_bytes, self._history_gen = 0, None
            elif tag == "snapshot":
                self._snapshot = data
            elif tag == "static" and isinstance(first, str):
                self._statics[first] = data
            elif tag == "status":
                self._status = data
                if _full_status(first):
                    self._full_status = data
            for viewer in self.viewers:
                if not viewer.enqueue(item, QUEUE_FRAMES, QUEUE_BYTES):
                    behind.append(viewer)
        for viewer in behind:
            self.drop_viewer(viewer, "too far behind (its outgoing queue is full)")

    def write_to_viewer(self, viewer: _Client) -> None:
        """A viewer's writer thread: its queue, in order, until it is dropped or the run says ``stopped``.
        What has queued up goes out in one call (a tick's rows, snapshot and status together): a class of
        thirty wakes thirty threads once a tick, not once a frame."""
        while True:
            with viewer.cond:
                viewer.cond.wait_for(lambda: viewer.queue or viewer.dropped)
                if viewer.dropped:
                    return
                items = viewer.take_all()
            try:
                send_buffers(viewer.sock, [item.data for item in items])
            except TimeoutError:
                return self.drop_viewer(viewer, f"it took nothing for {VIEWER_STALL_S:g} s")
            except OSError as exc:
                return self.drop_viewer(viewer, f"the connection broke ({exc.strerror or exc})")
            if any(item.close_after for item in items):
                shutdown_socket(viewer.sock, socket.SHUT_WR)
                return

    def _end_viewers(self) -> None:
        """The run ended: every viewer is told (``stopped``, queued by the pump) and let go."""
        with self.view_lock:
            viewers = list(self.viewers)
        stopped = _Outgoing(_message_frame(("stopped",)), close_after=True)
        for viewer in viewers:  # (a process that died said nothing: the viewers hear it here)
            if not any(item.close_after for item in list(viewer.queue)):
                viewer.enqueue(stopped, HARD_QUEUE_FRAMES, HARD_QUEUE_BYTES)

    # -- the pump ------------------------------------------------------------------------------------
    def _forward(self) -> None:
        while True:
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                break
            tag, first = message_head(data)
            if tag == "reply" and isinstance(first, int) and first < 0:  # a viewer's answer, not the window's
                self._answer(data, first)
                continue
            self._share(data, tag, first)
            with self.lock:
                sock = self.sock
            if sock is None:
                continue
            try:
                with self.send_lock:
                    if self.sock is not sock:  # let go meanwhile: its refusal was the last frame it gets
                        continue
                    sock.sendall(data)
            except OSError:
                if self.detach(sock):
                    log.warning("run %s: the connection from %s dropped; the run trains on", self.id[:6], self.peer)
                _shut(sock)
        with self.view_lock:
            self.ended = True
            # nobody joins an ended run: what it kept for late viewers goes (a viewer still connected holds it)
            self._ready = self._status = self._full_status = self._snapshot = None
            self._statics, self._history, self._history_bytes = {}, deque(), 0
        self._end_viewers()
        with self.lock:
            sock, self.sock = self.sock, None
        _shut(sock)
        self.process.join(5)
        self.conn.close()
        self.server._forget(self)

    def stop(self, timeout: float = 30.0) -> None:
        """End the training process (it finishes its step); killed after ``timeout``."""
        try:
            self.send_to_process(_message_frame(("stop",) if self.started else None))
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class TrainingServer:
    """Accepts token-authenticated connections on ``host:port`` and trains one run for each.

    ``viewer_token``: a second token that lets a window follow a run read-only and nothing else (the
    control token may follow too). ``ssl_context``: a server-side :class:`ssl.SSLContext` (the user's
    certificate) to speak TLS. ``ranks``: the processes each cnn/fcn run trains on (data-parallel when over
    1; see the module)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str, viewer_token: str | None = None,
                 hello_timeout: float = HELLO_TIMEOUT, max_clients: int = MAX_RUNS,
                 max_pending: int = MAX_PENDING, keep_detached: float = KEEP_DETACHED_S,
                 ssl_context: ssl.SSLContext | None = None, ranks: int = 1, max_viewers: int = MAX_VIEWERS,
                 viewer_stall: float = VIEWER_STALL_S) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("a TrainingServer needs a token")
        if viewer_token is not None and (not isinstance(viewer_token, str) or not viewer_token
                                         or viewer_token == token):
            raise ValueError("viewer_token must be a token of its own (not the control token) or None")
        self.viewer_token = viewer_token
        self._max_viewers, self._viewer_stall = max_viewers, viewer_stall
        self._viewer_count = 0
        if not isinstance(ranks, int) or ranks < 1:
            raise ValueError(f"ranks: {ranks!r} is not a number of processes (1 or more)")
        self.ranks = ranks
        self._token, self._hello_timeout, self._max_clients = token, hello_timeout, max_clients
        self._max_pending, self._keep_detached, self._ssl = max_pending, keep_detached, ssl_context
        self._listener = socket.create_server((host, port), backlog=256)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._pending = 0
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="remote-acceptor", daemon=True)
        self._reaper = threading.Thread(target=self._reap, name="remote-reaper", daemon=True)

    def start(self) -> None:
        self._acceptor.start()
        self._reaper.start()

    def runs(self) -> list[str]:
        """The ids of the runs training now, attached or not."""
        with self._lock:
            return list(self._runs)

    def close(self) -> None:
        """Stop listening and end every run."""
        self._closed.set()
        # closing alone leaves a thread blocked in accept() listening on: shutting the socket down wakes it
        shutdown_socket(self._listener)
        try:
            self._listener.close()
        except OSError:
            pass
        if self._acceptor.is_alive() and self._acceptor is not threading.current_thread():
            self._acceptor.join(2.0)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop(timeout=10)

    def _forget(self, run: _Run) -> None:
        with self._lock:
            if self._runs.get(run.id) is run:
                del self._runs[run.id]

    def _reap(self) -> None:
        """End the runs left detached longer than ``keep_detached``."""
        while not self._closed.wait(min(1.0, self._keep_detached / 4)):
            now = time.monotonic()
            with self._lock:  # (taken out under the lock that a resume claims a run under: never both)
                old = [r for r in self._runs.values()
                       if r.detached_at is not None and now - r.detached_at > self._keep_detached]
                for run in old:
                    del self._runs[run.id]
                    # logged before the lock is let go: whoever sees the run gone can also read why
                    log.warning("run %s: no window came back for %.0f s; it ends", run.id[:6], self._keep_detached)
            for run in old:
                threading.Thread(target=run.stop, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return
            if self._closed.is_set():  # (came in as the server closed)
                _shut(sock)
                return
            where = f"{peer[0]}:{peer[1]}"
            with self._lock:
                full = self._pending >= self._max_pending
                if not full:
                    self._pending += 1
            if full:
                self._refuse(sock, where, "too many connections waiting to say hello")
                continue
            threading.Thread(target=self._serve, args=(sock, where), name="remote-connection", daemon=True).start()

    def _refuse(self, sock: socket.socket, peer: str, why: str) -> None:
        log.warning("refused %s: %s", peer, why)
        try:
            sock.settimeout(1.0)
            sock.sendall(encode_frame("refused", {"reason": why}))
        except (OSError, ValueError):
            pass
        _shut(sock)

    def _hello(self, sock: socket.socket, peer: str) -> tuple[socket.socket, Any] | None:
        """The connection (TLS-wrapped if so set up) and its hello; None, refused and logged, if it has none."""
        try:
            sock.settimeout(self._hello_timeout)
            if self._ssl is not None:
                sock = duplex(self._ssl.wrap_socket(sock, server_side=True))
            return sock, read_frame(sock, max_body=HELLO_MAX_BODY, timeout=self._hello_timeout)
        except TimeoutError:
            self._refuse(sock, peer, "no hello in time")
        except ssl.SSLError as exc:
            log.warning("refused %s: TLS handshake failed (%s)", peer, exc.reason or exc)
            _shut(sock)
        except WireError as exc:
            self._refuse(sock, peer, f"bad hello ({exc})")
        except OSError as exc:
            log.warning("refused %s: %s", peer, exc)
            _shut(sock)
        return None

    def _serve(self, sock: socket.socket, peer: str) -> None:
        try:
            got = self._hello(sock, peer)
        finally:
            with self._lock:
                self._pending -= 1
        if got is None:
            return
        sock, hello = got
        token = hello.fields.get("token") if hello.kind == "hello" else None
        is_control = tokens_equal(token, self._token)
        is_viewer = tokens_equal(token, self.viewer_token)  # both compared, always
        if not (is_control or is_viewer):
            return self._refuse(sock, peer, "wrong token")
        role = hello.fields.get("role", "control")
        if role == "viewer":
            return self._serve_viewer(sock, peer, hello.fields.get("follow"))
        if role != "control":
            return self._refuse(sock, peer, f"role {str(role)[:20]!r} is not served here "
                                            "(a training server has controlling windows and viewers)")
        if not is_control:
            return self._refuse(sock, peer, "the viewer token cannot control a run: follow it read-only (attach --follow)")
        resume = hello.fields.get("resume")
        if resume is None and hello.fields.get("start_run") is False:
            # a window asking what this is (``explorer attach`` without --follow): told, with no run started
            log.info("%s asked what serves here; told it is a training server", peer)
            try:
                sock.sendall(encode_frame("welcome", {"role": "control", "run": "", "server": "training"}))
            except OSError:
                pass
            return _shut(sock)
        if resume is not None:
            with self._lock:
                run = self._runs.get(resume) if isinstance(resume, str) else None
                if run is not None and not run.ended:
                    run.detached_at = None  # claimed: the reaper passes it by from now on
            if run is None or run.ended:
                return self._refuse(sock, peer, "no such run here (it ended, or the server was restarted)")
            log.info("run %s: %s connected again", run.id[:6], peer)
        else:
            with self._lock:
                full = len(self._runs) >= self._max_clients
            if full:
                return self._refuse(sock, peer, f"too many runs (at most {self._max_clients})")
            try:
                run = _Run(self, secrets.token_urlsafe(16))
            except OSError as exc:
                return self._refuse(sock, peer, f"no training process could start ({exc})")
            with self._lock:
                self._runs[run.id] = run
            log.info("run %s: started for %s", run.id[:6], peer)
        from explorer.core.engine.devices import available_devices

        try:
            sock.settimeout(None)
            sock.sendall(encode_frame("welcome", {"role": "control", "run": run.id, "server": "training",
                                                  "devices": available_devices()}))
        except OSError:
            _shut(sock)
            if resume is None:  # a run nobody will ever take up
                self._forget(run)
                run.stop()
            else:  # claimed, and not taken up after all: detached again, for the reaper
                with run.lock:
                    if run.sock is None:
                        run.detached_at = time.monotonic()
            return
        keep_alive(sock)
        run.attach(sock, peer)
        self._relay(sock, peer, run)

    def _followed(self, follow: Any) -> _Run | None:
        """The run a viewer asked for (by id), or the newest one training; None when there is none."""
        with self._lock:
            if follow is not None:
                run = self._runs.get(follow) if isinstance(follow, str) else None
                return run if run is not None and not run.ended else None
            live = [r for r in self._runs.values() if r.started and not r.ended and not r.stopping]
        return max(live, key=lambda r: r.created, default=None)

    def _serve_viewer(self, sock: socket.socket, peer: str, follow: Any) -> None:
        """Follow a run read-only: its frames go out through a writer of the viewer's own; what the viewer
        sends, but for its questions (``_Run.ask``), is refused."""
        run = self._followed(follow)
        if run is None:
            why = ("no such run here (it ended, or the server was restarted)" if follow is not None
                   else "no run to follow yet (no window trains here)")
            return self._refuse(sock, peer, why)
        with self._lock:
            full = self._viewer_count >= self._max_viewers
            if not full:
                self._viewer_count += 1
        if full:
            return self._refuse(sock, peer, f"too many viewers (at most {self._max_viewers})")
        try:
            viewer = _Client(sock, peer, 0)
            viewer.role = "viewer"
            sock.settimeout(self._viewer_stall)
            keep_alive(sock)
            welcome = encode_frame("welcome", {"role": "viewer", "run": run.id, "server": "training"})
            if not run.add_viewer(viewer, welcome):
                return self._refuse(sock, peer, "no such run here (it ended, or the server was restarted)")
            log.info("run %s: a viewer connected from %s", run.id[:6], peer)
            viewer.writer = threading.Thread(target=run.write_to_viewer, args=(viewer,), daemon=True,
                                             name=f"remote-viewer-{run.id[:6]}")
            viewer.writer.start()
            self._read_viewer(run, viewer)
        finally:
            with self._lock:
                self._viewer_count -= 1

    def _read_viewer(self, run: _Run, viewer: _Client) -> None:
        """A viewer's questions go to the run; any other frame is refused (a notice to it, a line in the log), and
        ``VIEWER_MAX_REFUSALS`` of them, or a frame too large to be a command, end its connection."""
        refusals = 0
        try:
            while not viewer.dropped:
                try:
                    frame = read_frame(viewer.sock, max_body=VIEWER_MAX_BODY, max_header=VIEWER_MAX_HEADER)
                except TimeoutError:
                    # told "stopped" (its writer has ended) and silent since: let go, whatever is left queued
                    if run.ended and not (viewer.writer is not None and viewer.writer.is_alive()):
                        break
                    continue  # a quiet viewer: as it should be
                except ConnectionClosed:
                    break
                except WireError as exc:  # not a frame, or too large: told why, as before the welcome
                    self._refuse_viewer(run, viewer, exc.reason)
                    break
                except OSError as exc:
                    run.drop_viewer(viewer, str(exc) or type(exc).__name__)
                    break
                try:
                    if frame.kind != MESSAGE:
                        raise WireError(f"a {frame.kind!r:.40} frame")
                    why = run.ask(viewer, codec.unpack(frame.fields.get("m"), dict(frame.arrays)))
                except (WireError, codec.CodecError) as exc:
                    why = f"{VIEWER_REFUSAL} ({exc})"
                except OSError:  # the run's process is gone: the viewer hears "stopped"
                    continue
                if why is None:
                    continue
                refusals += 1
                log.warning("run %s: refused a command from the viewer at %s: %s", run.id[:6], viewer.peer, why)
                if refusals >= VIEWER_MAX_REFUSALS:
                    run.drop_viewer(viewer, f"{refusals} commands refused")
                    break
                if not viewer.enqueue(_Outgoing(_message_frame(("notice", why))),
                                      QUEUE_FRAMES, QUEUE_BYTES):
                    run.drop_viewer(viewer, "too far behind (its outgoing queue is full)")
                    break
        finally:
            run.drop_viewer(viewer, None)
            if viewer.writer is not None:
                viewer.writer.join(1.0)
            viewer.sock.close()
            log.info("run %s: the viewer at %s left", run.id[:6], viewer.peer)

    @staticmethod
    def _refuse_viewer(run: _Run, viewer: _Client, reason: str) -> None:
        """End a viewer's connection with a ``refused`` frame saying why, after what is queued for it (its
        writer sends it, then stops), what it still sends read for a moment first (see :meth:`_let_go`)."""
        refused = _Outgoing(encode_frame("refused", {"reason": reason}), close_after=True)
        viewer.enqueue(refused, HARD_QUEUE_FRAMES, HARD_QUEUE_BYTES)
        if viewer.writer is not None:
            viewer.writer.join(LAST_FRAME_S)
        drain_before_close(viewer.sock)
        run.drop_viewer(viewer, reason)

    def _relay(self, sock: socket.socket, peer: str, run: _Run) -> None:
        """Pass what the window sends on to its run's process, each message checked first: a frame that is
        not a message ends the connection with a ``refused`` frame saying why (as before the welcome); a
        message of the wrong form, or one a remote client may not send, is kept from the process and
        answered as its kind allows (see :meth:`_refused`)."""
        try:
            while True:
                try:
                    frame = read_frame(sock, max_body=CLIENT_MAX_BODY)
                    if frame.kind != MESSAGE:
                        raise WireError("a second hello (this connection was welcomed already)"
                                        if frame.kind == "hello" else f"a {frame.kind!r:.40} frame, not a message")
                    message = codec.unpack(frame.fields.get("m"), dict(frame.arrays))
                except ConnectionClosed:
                    break
                except (WireError, codec.CodecError) as exc:
                    reason = exc.reason if isinstance(exc, WireError) else f"malformed message: {exc}"
                    log.warning("run %s: refused a frame from %s, the connection ends%s: %s", run.id[:6], peer,
                                " (the run trains on)" if run.started and not run.stopping else "", reason)
                    self._let_go(run, sock, encode_frame("refused", {"reason": reason}))
                    break
                if isinstance(message, dict) and not run.started:
                    message = self._own_ranks(message, run, peer)
                fault = malformed(message, started=run.started)
                why = fault or forbidden(message)
                if why is None:
                    try:
                        data = _message_frame(message)
                    except (TypeError, WireError) as exc:  # (a number past 64 bits, say: read, but not sendable)
                        why = fault = f"malformed message: {exc}"
                if why is None:
                    if isinstance(message, tuple) and message[0] == "stop":
                        run.stopping = True
                    run.send_to_process(data)
                    run.started = run.started or isinstance(message, dict)
                    continue
                log.warning("refused a command from %s: %s", peer, why)
                error = ValueError(why) if fault else PermissionError(why)
                if not run.started:  # answered as the process answers a request it cannot build; the run ends
                    run.stopping = True
                    self._let_go(run, sock, _message_frame(("failed", error, "")))
                    break
                self._refused(run, sock, message, why, error)
        except OSError:
            pass
        finally:
            attached = run.detach(sock)
            _shut(sock)
            if run.stopping or not run.started:
                self._forget(run)
                run.stop()
            elif attached and not run.ended:
                log.warning("run %s: the connection from %s dropped; the run trains on", run.id[:6], peer)

    def _own_ranks(self, request: dict, run: _Run, peer: str) -> dict:
        """``request`` with the server's ``ranks``: the operator's choice, never the client's (logged)."""
        ranks = request.get("ranks")
        if ranks is not None and not (type(ranks) is int and ranks == self.ranks):
            log.warning("run %s: %s asked for %s ranks; this server trains on %d",
                        run.id[:6], peer, str(ranks)[:20], self.ranks)
        return {**request, "ranks": self.ranks}

    @staticmethod
    def _refused(run: _Run, sock: socket.socket, message: Any, why: str, error: Exception) -> None:
        """Answer a command kept from the process, the connection staying: a call is replied to (under its
        id, when it has one) and counted answered by the process, as a ``do`` is, which then says why in
        a notice (the window waits for its count); anything else gets a notice of its own."""
        tag = message[0] if isinstance(message, tuple) and message else None
        if tag in ("call", "query", "do") and len(message) > 1:
            call_id = message[1]
            if tag != "do" and type(call_id) is int and -MAX_ID <= call_id < MAX_ID:
                with run.send_lock:
                    sock.sendall(_message_frame(("reply", call_id, None, error)))
            counted = tag == "call" or (tag == "do" and call_id is True)
            run.send_to_process(_message_frame(("do", counted, "refused", (why,), {})))
            return
        with run.send_lock:
            sock.sendall(_message_frame(("notice", why)))

    @staticmethod
    def _let_go(run: _Run, sock: socket.socket, last: bytes) -> None:
        """End the connection with ``last`` (the frame that says why): no frame of the run follows it, and
        what the peer still sends is read for a moment first (closing on unread bytes resets the connection,
        and the peer could lose the frame)."""
        with run.send_lock:
            run.detach(sock)
            try:
                sock.settimeout(LAST_FRAME_S)
                sock.sendall(last)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                return
        drain_before_close(sock)
