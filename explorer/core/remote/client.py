"""The window's side of remote training: a ProcessSession whose training process is on a server.

Why: the server relays the training process's own frames (``explorer.core.remote.server``), so the
window's session is the local one with its pipe replaced by a socket: every panel, control and live
hyper-parameter works the same. The socket stands in for the pipe (whole frames in, whole frames out) and
the connection stands in for the process (alive while connected).

A :class:`FollowSession` follows a run someone else's window trains there, read-only (a class following
the teacher's run): the same session again, that asks the process nothing and refuses every control.

What differs, and is done here: the commands that write a file (save a run, autosave, export) fetch the
files' bytes from the server and write them where the window is; the devices offered are the server's;
and a dropped connection does not end the run: the server trains on, and this session connects again
(by itself with back-off, or when asked) and fetches what it missed.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.core.atomic import atomic_write
from explorer.core.engine.devices import DeviceError
from explorer.core.engine.session import ERROR, STOPPED
from explorer.core.persist import commands
from explorer.core.process.session import ProcessSession, TrainingProcessError, send
from explorer.core.wire.frame import PREFIX, WireError, check_prefix, encode_frame, read_frame
from explorer.core.wire.server import keep_alive, shutdown_socket
from explorer.core.wire.tls import DuplexTLS, duplex

log = logging.getLogger("explorer.remote")

CONNECT_TIMEOUT = 10.0
MAX_FRAME_BODY = 1 << 31
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # waits between attempts to connect again; the last repeats
MAX_REQUEST_BYTES = 255 << 20  # a moved model's files in one request (the server reads 256 MiB at most)
MAX_QUERIES = 4  # a follower's questions on their way at once (the server's limit too)
NEXT_RUN_POLL_S = 2.0  # a follower whose run ended looks for the server's next run this often
FOLLOWING = ("This window follows the run on {server} read-only: only the window that trains it can pause, "
             "step or change it.")


class RemoteRefused(WireError):
    """The server refused the connection (the reason is the message) or could not be reached.

    ``final``: the server answered and will not take this run back (it ended there): trying again is useless."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


@dataclass(frozen=True)
class ServerAddress:
    """Where a training server listens, its token, and whether it speaks TLS (``cafile``: the certificate
    that signed the server's, when not one the system trusts)."""

    host: str
    port: int
    token: str
    tls: bool = False
    cafile: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


def read_server_file(path: str | Path) -> ServerAddress:
    """The server named by the token file ``serve`` wrote (host, port, token, whether TLS); WireError naming
    the file and the fault."""
    from explorer.core.wire.auth import read_token_file

    info = read_token_file(path)
    return ServerAddress(info["host"], info["port"], info["token"], tls=bool(info.get("tls", False)))


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
        header_len, body_len = check_prefix(prefix, MAX_FRAME_BODY)
        return prefix + self._exactly(header_len + body_len)

    def poll(self, timeout: float = 0.0) -> bool:
        pending = self.sock.pending() if isinstance(self.sock, DuplexTLS) else 0
        return bool(pending or select.select([self.sock], [], [], timeout)[0])

    def close(self) -> None:
        self.closed = True
        shutdown_socket(self.sock)
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


def connect(server: ServerAddress, resume: str | None = None, timeout: float = CONNECT_TIMEOUT, *,
            follow: str | None = None, viewer: bool = False) -> tuple[socket.socket, dict[str, Any]]:
    """A socket welcomed by ``server`` and the welcome's fields (the run's id, the server's devices);
    ``resume``: the id of a run to take up again. ``viewer``: follow a run read-only, the one named
    ``follow`` or the newest. RemoteRefused with the reason otherwise."""
    try:
        sock = socket.create_connection((server.host, server.port), timeout=timeout)
    except OSError as exc:
        raise RemoteRefused(f"{server}: {exc.strerror or exc}") from None
    try:
        if server.tls:
            sock = duplex(server.ssl_context().wrap_socket(sock, server_hostname=server.host))
        hello: dict[str, Any] = {"token": server.token, "role": "viewer" if viewer else "control",
                                 "client": "explorer"}
        if resume is not None:
            hello["resume"] = resume
        if follow is not None:
            hello["follow"] = follow
        sock.sendall(encode_frame("hello", hello))
        answer = read_frame(sock, max_body=1 << 16, timeout=timeout)
    except ssl.SSLError as exc:
        sock.close()
        raise RemoteRefused(f"{server}: TLS failed ({exc.reason or exc})") from None
    except (OSError, WireError) as exc:
        sock.close()
        raise RemoteRefused(f"{server}: {exc}") from None
    if answer.kind != "welcome" or not isinstance(answer.fields.get("run"), str):
        sock.close()
        reason = str(answer.fields.get("reason", answer.kind))[:200]
        named = resume is not None or follow is not None
        raise RemoteRefused(f"{server} refused: {reason}", final=answer.kind == "refused" and named
                            and "no such run" in reason)
    sock.settimeout(None)
    return sock, answer.fields


def _end_run(sock: socket.socket) -> None:
    """Tell the run on the other end of ``sock`` (a connection that resumed it) to stop, and close."""
    with sock:
        try:
            send(SocketPipe(sock), ("stop",))  # type: ignore[arg-type]
        except (OSError, ValueError):
            pass


def _run_step(files: dict[str, Any]) -> int:
    return int(json.loads(files["run.json"].tobytes())["step"])


class RemoteSession(ProcessSession):
    """A training session run by ``server``: the same Session as a local training process.

    ``run_files``: a model moved from another session (``commands.run_files``), trained on from there."""

    def __init__(self, config: Any = None, *, server: ServerAddress, auto_reconnect: bool = True,
                 backoff: tuple[float, ...] = BACKOFF_S, **kwargs: Any) -> None:
        self.server = server
        self.server_run: str | None = None
        self.server_devices: list[str] = ["cpu"]
        self.connected = False
        self.auto_reconnect, self._backoff = auto_reconnect, backoff
        self._closed_event = threading.Event()
        self._reconnector: threading.Thread | None = None
        self._reconnecting = threading.Lock()  # one attempt at a time (the back-off thread, the user)
        super().__init__(config, **kwargs)

    # -- the connection --------------------------------------------------------------------------------
    def _open_process(self) -> tuple[Any, Any]:
        sock, welcome = connect(self.server)
        keep_alive(sock)
        return self._adopt(sock, welcome)

    def _request(self) -> None:
        """Ask the server for the session; a moved model too large for one request is refused here, named."""
        files = self._spec.get("run_files") or {}
        size = sum(getattr(data, "nbytes", 0) for data in files.values())
        if size > MAX_REQUEST_BYTES:
            raise TrainingProcessError(
                f"the model's files are {size / 2**20:.0f} MiB; a training server takes at most "
                f"{MAX_REQUEST_BYTES >> 20} MiB in one request; it stays where it is")
        super()._request()

    def _adopt(self, sock: socket.socket, welcome: dict[str, Any]) -> tuple[RemoteProcess, SocketPipe]:
        self.server_run = welcome["run"]
        devices = welcome.get("devices")
        if isinstance(devices, list) and devices and all(isinstance(d, str) for d in devices):
            self.server_devices = [d[:40] for d in devices[:16]]
        pipe = SocketPipe(sock)
        self.connected = True
        return RemoteProcess(pipe), pipe

    @property
    def dropped(self) -> bool:
        """The connection was lost while the run goes on at the server (not closed, not ended there)."""
        return self._gone and not self._closing and not self._ended_by_process and not self.connected \
            and self.server_run is not None and self._state != ERROR

    def _lost(self) -> None:
        self.connected = False
        if self._closing or self._ended_by_process or self.server_run is None:
            return super()._lost()
        with self._lock:  # the connection dropped: the server trains on, we connect again
            self._gone = True
            replies, self._replies = self._replies, {}
            self._notices.append(f"Lost the connection to the training server {self.server}; it trains on. "
                                 f"Connecting again…")
            self._lock.notify_all()
        log.warning("lost the connection to %s (run %s)", self.server, (self.server_run or "")[:6])
        for on_done in replies.values():
            self._call_back(on_done, None, TrainingProcessError(f"the connection to {self.server} was lost"))
        if self.auto_reconnect:
            self._reconnector = threading.Thread(target=self._reconnect_loop, name="remote-reconnect", daemon=True)
            self._reconnector.start()

    def _reconnect_loop(self) -> None:
        for attempt in range(10_000):
            if self._closed_event.wait(self._backoff[min(attempt, len(self._backoff) - 1)]):
                return
            if not self.dropped or self.reconnect():
                return

    def reconnect(self) -> bool:
        """Connect again to the run this session trains on the server, and fetch what was missed (the
        curves, a snapshot, the status). True when connected; a notice says why not otherwise."""
        with self._reconnecting:
            return self._reconnect()

    def _reconnect(self) -> bool:
        with self._lock:
            if not self.dropped:
                return self.connected
        try:
            sock, welcome = connect(self.server, resume=self.server_run)
        except RemoteRefused as exc:
            if exc.final:  # the run ended there: nothing to connect to again
                with self._lock:
                    self._state = ERROR
                    self.error = f"the run on {self.server} has ended ({exc}); press Reset to start a new one"
                    self._notices.append(self.error)
                    self.server_run = None
            return False
        if self._closed_event.is_set():  # the window closed meanwhile: end the run, adopt nothing
            _end_run(sock)
            return False
        self._receiver.join(2)  # the old reader has finished (it reported the loss)
        keep_alive(sock)
        process, pipe = self._adopt(sock, welcome)
        # said first: whoever sees the session connected, or the curves that follow, finds the notice there
        self._add_notices([f"Connected again to the training server {self.server}."])
        with self._send_lock:  # the resync goes first; no other message can (the session is still gone)
            with self._lock:
                self._process, self._conn = process, pipe
                self._sent_at_resync, self._awaiting_resync = self._sent, True
            try:
                send(pipe, ("resync",))  # type: ignore[arg-type]
            except (OSError, ValueError):
                pipe.close()
            with self._lock:
                self._gone = False
        self._receiver = threading.Thread(target=self._receive, name="training-process-reader", daemon=True)
        self._receiver.start()
        self.request_snapshot()
        return True

    def reset(self) -> None:
        if self.dropped and not self.reconnect():
            return
        if self.server_run is None and self._gone and not self._closing:
            self._ended_by_process = False  # a new run, from the current settings (ProcessSession.reset)
        super().reset()

    def stop(self, timeout: float = 10.0) -> bool:
        self._closed_event.set()
        if self.dropped:  # the run trains on at the server: connect once more to end it
            try:
                _end_run(connect(self.server, resume=self.server_run, timeout=3.0)[0])
            except RemoteRefused:
                pass
        return super().stop(timeout)

    close = stop

    # -- what differs from a local process ----------------------------------------------------------------
    def set_device(self, name: str) -> None:
        if name not in self.server_devices:
            raise DeviceError(f"{name!r} is not a device of the training server {self.server} "
                              f"(it has {', '.join(self.server_devices)})")
        self._do("set_device", name)

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        """As ProcessSession's; a command that writes a file here fetches its bytes from the server."""
        if fn is commands.save_run_to:
            return self._save_here(args[0], args[1] if len(args) > 1 else kwargs.get("extra"), on_done,
                                   autosave=False)
        if fn is commands.autosave_to:
            return self._save_here(args[0], None, on_done, autosave=True)
        if fn is commands.export_model:
            return self._export_here(args[0], args[1], on_done)
        return super().run_command(fn, *args, on_done=on_done, **kwargs)

    def _finish(self, on_done: Callable[[Any, BaseException | None], None] | None, result: Any,
                error: BaseException | None) -> None:
        if on_done is not None:
            self._call_back(on_done, result, error)

    def _save_here(self, chosen: str, extra: dict | None,
                   on_done: Callable[[Any, BaseException | None], None] | None, autosave: bool) -> None:
        from explorer.core.persist.runfolder import save_run_files, save_target

        def got(files: Any, error: BaseException | None) -> None:
            target: Any = chosen
            if error is None:
                try:
                    target = chosen if autosave else save_target(chosen)
                    save_run_files(files, target, where=f"the run from {self.server}")
                    result: Any = _run_step(files) if autosave else str(target)
                except Exception as exc:  # noqa: BLE001 - a notice, as the local command gives
                    error = exc
            if error is not None:
                what = "autosave failed" if autosave else f"could not save run to {target}"
                self._add_notices([f"{what}: {error}"])
                return self._finish(on_done, None, error)
            if not autosave:
                self._add_notices([f"saved run to {target}"])
            self._finish(on_done, result, None)

        super().run_command(commands.run_files, extra, on_done=got)

    def _export_here(self, kind: str, path: str,
                     on_done: Callable[[Any, BaseException | None], None] | None) -> None:
        def got(result: Any, error: BaseException | None) -> None:
            if error is None:
                try:
                    data, family, step = result
                    out = atomic_write(path, lambda p: Path(p).write_bytes(data.tobytes()))
                    return self._finish(on_done, (str(out), str(family), int(step)), None)
                except Exception as exc:  # noqa: BLE001 - the exporter's caller reports it
                    error = exc
            self._finish(on_done, None, error)

        super().run_command(commands.export_file, kind, on_done=got)


class FollowSession(RemoteSession):
    """A run on a training server followed read-only: its curves, snapshots and status as they come, every
    control refused with a notice (the server would refuse it too).

    ``run``: the run's id (default: the newest run the server trains). ``greeted``: a connection already
    welcomed as a viewer (``explorer attach HOST:PORT --follow`` opens it before the window). A dropped
    connection is taken up again with back-off, and the server sends the curves whole. When the run ends
    (its window closed or moved to another model), ``follow_next`` looks for the server's next run every
    ``NEXT_RUN_POLL_S``: once one trains, ``successor`` holds a FollowSession of it, ready for the window
    to show in this one's place."""

    read_only = True

    def __init__(self, *, server: ServerAddress, run: str | None = None,
                 greeted: tuple[socket.socket, dict[str, Any]] | None = None, follow_next: bool = True,
                 **kwargs: Any) -> None:
        self._greeted, self._follow = greeted, run
        self.follow_next = follow_next
        self.successor: FollowSession | None = None
        self._next_finder: threading.Thread | None = None
        super().__init__(None, family="followed", server=server, **kwargs)

    # -- the connection --------------------------------------------------------------------------------
    def _open_process(self) -> tuple[Any, Any]:
        greeted, self._greeted = self._greeted, None
        sock, welcome = greeted if greeted is not None else connect(self.server, follow=self._follow, viewer=True)
        keep_alive(sock)
        return self._adopt(sock, welcome)

    def _request(self) -> None:
        """Nothing: the run is there already, and its first report comes by itself."""

    def _apply(self, msg: Any) -> None:
        if msg[0] == "ready":  # (again after connecting again)
            _, fields, _run_id, extra = msg
            self.trainer._fields = {**self.trainer._fields, **fields}
            self.run_info = extra.get("run_info", self.run_info)
            return
        super()._apply(msg)

    def _lost(self) -> None:
        self.connected = False
        if self._closing:
            return ProcessSession._lost(self)
        if self._ended_by_process:
            return self._run_over(f"The run on {self.server} has ended.")
        super()._lost()  # a dropped connection: connect again (``_reconnect``)

    def _run_over(self, text: str) -> None:
        with self._lock:
            self._gone = True
            self._state = STOPPED
            self._idle = self._settled = True
            self._notices.append(text + (" This window follows the next run trained there." if self.follow_next
                                         else ""))
            self._lock.notify_all()
        if self.follow_next and self._next_finder is None:
            self._next_finder = threading.Thread(target=self._find_next_run, name="remote-follow-next", daemon=True)
            self._next_finder.start()

    def _reconnect(self) -> bool:
        with self._lock:
            if not self.dropped:
                return self.connected
        try:
            sock, welcome = connect(self.server, follow=self.server_run, viewer=True)
        except RemoteRefused as exc:
            if exc.final:
                self._run_over(f"The run on {self.server} ended while the connection was lost.")
                self.server_run = None
            return False
        if self._closed_event.is_set():
            sock.close()
            return False
        self._receiver.join(2)
        keep_alive(sock)
        process, pipe = self._adopt(sock, welcome)
        # said first: whoever sees the session connected, or the curves that follow, finds the notice there
        self._add_notices([f"Connected again to the training server {self.server}."])
        with self._lock:
            self._process, self._conn = process, pipe
            self._metrics_gen = None  # the server sends the curves whole: they replace what is here
            self._gone = False
        self._receiver = threading.Thread(target=self._receive, name="training-process-reader", daemon=True)
        self._receiver.start()
        return True

    def _find_next_run(self) -> None:
        ended = self.server_run
        while not self._closed_event.wait(NEXT_RUN_POLL_S):
            try:
                sock, welcome = connect(self.server, viewer=True, timeout=5.0)
            except RemoteRefused:
                continue
            if welcome.get("run") == ended:  # (the server has not seen it end yet)
                sock.close()
                continue
            try:
                following = FollowSession(server=self.server, greeted=(sock, welcome), snapshot_hz=self._hz,
                                          follow_next=self.follow_next)
            except Exception:  # noqa: BLE001 - a run that failed to start, a lost connection: look again
                log.info("could not follow the next run on %s", self.server, exc_info=True)
                sock.close()
                continue
            if self._closed_event.is_set():
                following.stop()
                return
            self.successor = following
            self._add_notices([f"The training server {self.server} trains a new run: this window follows it."])
            return

    def stop(self, timeout: float = 10.0) -> bool:
        """Let go of the run (it trains on: it is not this window's)."""
        self._closed_event.set()
        with self._lock:
            if self._closing:
                return True
            self._closing = True
        self._conn.close()
        self._receiver.join(timeout)
        with self._lock:
            self._gone, self._state = True, STOPPED
        successor, self.successor = self.successor, None
        if successor is not None:  # (found, but never shown)
            successor.stop()
        return True

    close = stop

    # -- read-only -------------------------------------------------------------------------------------
    def _refuse_control(self) -> None:
        self._add_notices([FOLLOWING.format(server=self.server)])

    def start(self) -> None:
        self._refuse_control()

    resume = start

    def pause(self) -> None:
        self._refuse_control()

    def step(self, n: int = 1) -> None:
        self._refuse_control()

    def reset(self) -> None:
        if self.dropped:
            self.reconnect()
            return
        self._refuse_control()

    def set_hparams(self, **changes: Any) -> None:
        self._refuse_control()

    def set_device(self, name: str) -> None:
        self._refuse_control()

    def set_epochs(self, epochs: int | None) -> None:
        self._refuse_control()

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        """A question a follower may ask (``commands.VIEWER_QUERIES``: the receptive field of a unit clicked
        here) goes to the run, answered to this window alone; anything else is refused, with a notice:
        the model is its own window's to save, export or change."""
        if fn not in commands.VIEWER_QUERIES or kwargs:
            self._refuse_control()
            if on_done is not None:
                on_done(None, PermissionError(FOLLOWING.format(server=self.server)))
            return
        with self._lock:
            busy = len(self._replies) >= MAX_QUERIES
            if not busy:
                self._call_ids += 1
                call_id = self._call_ids
                self._replies[call_id] = on_done or (lambda _result, _error: None)
        if busy:  # (the server takes only so many at once: the newest click asks again when one is answered)
            if on_done is not None:
                on_done(None, PermissionError("still waiting for the answers to the last clicks"))
            return
        if not self._send(("query", call_id, fn, args, {}), counted=False):
            with self._lock:
                self._replies.pop(call_id, None)
            if on_done is not None:
                on_done(None, TrainingProcessError(f"the connection to {self.server} is lost"))

    # what a window sets for every session: the run's own window has set them
    def set_threads(self, n: int | None) -> None:
        pass

    def set_snapshot_rate(self, hz: float) -> None:
        self._hz = max(0.1, float(hz))

    def set_step_rate(self, steps_per_s: float | None) -> None:
        pass

    @property
    def step_rate(self) -> float | None:
        return None

    def request_snapshot(self) -> None:
        pass

    def subscribe(self, callback: Callable[..., None] | None = None, pull: bool = False) -> None:
        pass

    def unsubscribe(self, callback: Callable[..., None] | None = None) -> None:
        pass

    def snapshot_taken(self, seq: int) -> None:
        pass
