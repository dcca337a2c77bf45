"""The server's side of remote training: one training process per run, frames relayed to its window.

Why it looks like this: the app's training process already speaks in wire frames of plain values
(``explorer.core.process.codec``: no pickle), so the server does not need a protocol of its own. After a
``hello`` with the right token (within ``hello_timeout``: a peer that sends nothing cannot hold a slot)
it starts a training process (a *run*, named by an unguessable id sent in the ``welcome``) and relays
frames both ways. Every frame a client sends is decoded and checked first: a request that would make the
server read or write a path of the client's choosing (a saved run to restore, a data folder,
``save_run_to``, ``autosave_to``, ``export_model``) is refused with an error reply; the window saves runs
where it is, from the files it fetches (``commands.run_files``). Refusals are a ``refused`` frame to the
peer and one line in the log (logger ``explorer.remote``); the other connections and their training go on.

A dropped connection does not end its run: the run trains on, detached, and a ``hello`` naming its id
(``resume``) takes it up again; the window then asks the process for everything anew (``resync``). A run
stays detached at most ``keep_detached`` seconds; a window that closes says ``stop`` and its run ends.

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
from typing import Any

from explorer.core.persist import commands
from explorer.core.process import codec, worker
from explorer.core.process.session import MESSAGE
from explorer.core.wire.auth import tokens_equal
from explorer.core.wire.frame import ConnectionClosed, WireError, encode_frame, read_frame
from explorer.core.wire.server import keep_alive, shutdown_socket

log = logging.getLogger("explorer.remote")

HELLO_TIMEOUT = 5.0
HELLO_MAX_BODY = 4096
CLIENT_MAX_BODY = 256 << 20     # a session request (with a moved model's weights) or a command
MAX_RUNS = 8                    # training processes, attached or detached
MAX_PENDING = 64                # connections that have not said hello yet
KEEP_DETACHED_S = 600.0   # a dropped network comes back within minutes; a crashed window never does
PATH_COMMANDS = frozenset({commands.save_run_to, commands.autosave_to, commands.export_model})


# the settings that name a file or folder (of the machine the settings are read on)
PATH_SETTINGS = frozenset({"data_dir", "image_folder", "text_file"})
TRAINER_CALLS = frozenset({commands.call_trainer, commands.ask_trainer})


def _named_path(value: Any, depth: int = 0) -> str | None:
    """The first path setting ``value`` names (a settings object, or dicts and sequences holding one)."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PATH_SETTINGS and item:
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
            if getattr(value, key, None) and hasattr(type(value), "__dataclass_fields__"):
                return key
    return None


def _path_refusal(key: str | None) -> str | None:
    return None if key is None else f"a remote client may not name a file or folder on the server ({key})"


def refusal(message: Any) -> str | None:
    """Why a client's message may not reach the training process, or None when it may."""
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
            except (TypeError, KeyError, AttributeError, ValueError):
                return "the run's files sent are not a run (run.json)"
            if not isinstance(info, dict):
                return "the run's files sent are not a run (run.json)"
            return _path_refusal(_named_path(info.get("config")))
        return None
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        return "not a training message"
    if message[0] == "call" and len(message) == 5:
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
        self.sock: socket.socket | None = None
        self.peer = ""
        self.detached_at: float | None = time.monotonic()
        self.started = False     # the session request was passed on
        self.stopping = False    # the window asked it to stop
        self.ended = False
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
        self.conn.send_bytes(data)

    def _forward(self) -> None:
        while True:
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                break
            with self.lock:
                sock = self.sock
            if sock is None:
                continue
            try:
                with self.send_lock:
                    sock.sendall(data)
            except OSError:
                if self.detach(sock):
                    log.warning("run %s: the connection from %s dropped; the run trains on", self.id[:6], self.peer)
                _shut(sock)
        self.ended = True
        with self.lock:
            sock, self.sock = self.sock, None
        _shut(sock)
        self.process.join(5)
        self.conn.close()
        self.server._forget(self)

    def stop(self, timeout: float = 30.0) -> None:
        """End the training process (it finishes its step); killed after ``timeout``."""
        try:
            self.conn.send_bytes(_message_frame(("stop",) if self.started else None))
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class TrainingServer:
    """Accepts token-authenticated connections on ``host:port`` and trains one run for each.

    ``ssl_context``: a server-side :class:`ssl.SSLContext` (the user's certificate) to speak TLS.
    ``ranks``: the processes each cnn/fcn run trains on (data-parallel when over 1; see the module)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str,
                 hello_timeout: float = HELLO_TIMEOUT, max_clients: int = MAX_RUNS,
                 max_pending: int = MAX_PENDING, keep_detached: float = KEEP_DETACHED_S,
                 ssl_context: ssl.SSLContext | None = None, ranks: int = 1) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("a TrainingServer needs a token")
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
        try:
            self._listener.close()
        except OSError:
            pass
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
            with self._lock:
                old = [r for r in self._runs.values()
                       if r.detached_at is not None and now - r.detached_at > self._keep_detached]
            for run in old:
                log.warning("run %s: no window came back for %.0f s; it ends", run.id[:6], self._keep_detached)
                self._forget(run)
                threading.Thread(target=run.stop, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
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
                sock = self._ssl.wrap_socket(sock, server_side=True)
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
        if hello.kind != "hello" or not tokens_equal(hello.fields.get("token"), self._token):
            return self._refuse(sock, peer, "wrong token")
        if hello.fields.get("role", "control") != "control":
            return self._refuse(sock, peer, f"role {str(hello.fields.get('role'))[:20]!r} is not served here "
                                            "(a training server has controlling windows only)")
        resume = hello.fields.get("resume")
        if resume is not None:
            with self._lock:
                run = self._runs.get(resume) if isinstance(resume, str) else None
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
            sock.sendall(encode_frame("welcome", {"role": "control", "run": run.id,
                                                  "devices": available_devices()}))
        except OSError:
            _shut(sock)
            if resume is None:  # a run nobody will ever take up
                self._forget(run)
                run.stop()
            return
        keep_alive(sock)
        run.attach(sock, peer)
        self._relay(sock, peer, run)

    def _relay(self, sock: socket.socket, peer: str, run: _Run) -> None:
        try:
            while True:
                try:
                    frame = read_frame(sock, max_body=CLIENT_MAX_BODY)
                    if frame.kind != MESSAGE:
                        raise WireError(f"a {frame.kind!r} frame")
                    message = codec.unpack(frame.fields.get("m"), dict(frame.arrays))
                except ConnectionClosed:
                    break
                except (WireError, codec.CodecError) as exc:
                    log.warning("dropped %s: %s", peer, exc)
                    break
                why = refusal(message)
                if why is None and isinstance(message, dict):
                    if message.get("ranks") not in (None, self.ranks):
                        log.warning("run %s: %s asked for %s ranks; this server trains on %d",
                                    run.id[:6], peer, str(message.get("ranks"))[:20], self.ranks)
                    message = {**message, "ranks": self.ranks}  # the server's choice, never the client's
                if why is None:
                    if isinstance(message, tuple) and message[0] == "stop":
                        run.stopping = True
                    run.send_to_process(_message_frame(message))
                    run.started = run.started or isinstance(message, dict)
                    continue
                log.warning("refused a command from %s: %s", peer, why)
                if isinstance(message, tuple) and message[0] in ("call", "do"):
                    if message[0] == "call":
                        with run.send_lock:
                            sock.sendall(_message_frame(("reply", message[1], None, PermissionError(why))))
                    # the process counts it answered (the window waits for its count) and says why, a notice
                    counted = message[0] == "call" or bool(message[1])
                    run.send_to_process(_message_frame(("do", counted, "refused", (why,), {})))
                elif isinstance(message, dict):
                    with run.send_lock:
                        sock.sendall(_message_frame(("failed", PermissionError(why), "")))
                    run.stopping = True
                    break
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
