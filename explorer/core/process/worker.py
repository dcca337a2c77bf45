"""Training processes, started ahead of need.

A training process spends its first seconds importing PyTorch. The window starts one as it opens
(beside its own import of the core) and keeps one spare while it trains, so a new session (another
family, a network from the builder, an opened run) finds one ready and the window never waits for an
import. On Linux with a CPU build of PyTorch they are forked from one process that imported PyTorch once
(:mod:`explorer.core.process.zygote`): they then share its memory (about 150 MB that each held a copy
of) and start in milliseconds; elsewhere, or when that process cannot fork, each is started on its own.
This module imports only the standard library: the app calls :func:`prepare` before PyTorch is in.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_spare: tuple[Any, Connection] | None = None
_forker: _Forker | None = None
_forker_lock = threading.Lock()  # (apart from _lock: prepare() starts a worker under that one)

RECORD = struct.Struct("<cii")     # the forking process's records (see explorer.core.process.zygote)
FORK_ENV = "NETWORK_EXPLORER_FORK"  # "0": start every training process on its own
FORK_WAIT_S = 120.0                 # the longest a forked process's pid is waited for (the import, at most)


def _child_env() -> dict[str, str]:
    """The environment of a training process: the window's, with the explorer package on the path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # where the explorer package is, installed or not
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class WorkerProcess:
    """A training process started with ``python -m explorer.core.process.child FD``.

    Not ``multiprocessing``'s spawn: that re-runs the parent's main script in the child, which fails for
    a script read from a pipe and costs a benchmark's imports twice. The child shares nothing with the
    window but a socket; when the window's end closes (a crash included), the child stops and ends."""

    def __init__(self, theirs: socket.socket | None = None, conn: Connection | None = None) -> None:
        if theirs is None:
            ours, theirs = socket.socketpair()
            conn = Connection(ours.detach())
        self.popen = subprocess.Popen([sys.executable, "-m", "explorer.core.process.child", str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), env=_child_env(), stdin=subprocess.DEVNULL)
        theirs.close()  # the child holds its own copy: ours then sees EOF when the child ends
        assert conn is not None
        self.conn = conn

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def kill(self) -> None:
        if self.is_alive():
            self.popen.kill()


class ForkedWorker:
    """A training process forked by the forking process, as :class:`WorkerProcess` offers it: its pid once
    forked (the fork waits, at first, for that process's import), whether it is alive, its exit code (the
    forking process reports it), ``join`` and ``kill``. Should the forking process fail before forking it,
    it is started on its own instead, on the same socket: the window's end never changes."""

    def __init__(self, theirs: socket.socket, conn: Connection) -> None:
        self.conn = conn
        self._theirs: socket.socket | None = theirs  # kept until forked: a start on its own needs it
        self._pid: int | None = None
        self._code: int | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._alone: WorkerProcess | None = None  # started on its own after all
        self._untracked = False                   # the forking process is gone: exit codes are not told
        self._kill_asked = False

    # -- told by the forking process's reader ----------------------------------------------------------
    def _forked(self, pid: int) -> None:
        self._pid = pid
        self._drop_theirs()
        self._started.set()
        if self._kill_asked:
            self.kill()

    def _exited(self, code: int) -> None:
        self._code = code
        self._ended.set()

    def _start_alone(self) -> None:
        theirs, self._theirs = self._theirs, None
        if theirs is None or self._kill_asked:
            self._started.set()
            self._ended.set()
            return
        try:
            self._alone = WorkerProcess(theirs, self.conn)
            self._pid = self._alone.pid
        except OSError:
            log.exception("a training process could not start")
            self._ended.set()
        self._started.set()

    def _lose_track(self) -> None:
        self._untracked = True

    def _drop_theirs(self) -> None:
        theirs, self._theirs = self._theirs, None
        if theirs is not None:
            theirs.close()

    # -- as WorkerProcess ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        self._started.wait(FORK_WAIT_S)
        return self._pid

    @property
    def exitcode(self) -> int | None:
        if self._alone is not None:
            return self._alone.exitcode
        return self._code

    def is_alive(self) -> bool:
        if self._alone is not None:
            return self._alone.is_alive()
        if self._ended.is_set():
            return False
        if not self._started.is_set():
            return not self._kill_asked
        if self._untracked:
            return _pid_alive(self._pid)
        return True

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._started.wait(timeout):
            return
        if self._alone is not None:
            return self._alone.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        while self.is_alive():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self._ended.wait(0.05 if self._untracked else left)

    def kill(self) -> None:
        if self._alone is not None:
            return self._alone.kill()
        if not self._started.is_set():
            self._kill_asked = True  # (killed as soon as it is forked)
            return
        if self._pid is not None and self.is_alive():
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs (one that ended and is not yet reaped, a zombie, does not)."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


class _Forker:
    """The window's end of the forking process (:mod:`explorer.core.process.zygote`): asks it for training
    processes, and reads what it answers on a thread of its own."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.popen = subprocess.Popen([sys.executable, "-m", "explorer.core.process.zygote", str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), env=_child_env(), stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.state = "starting"  # then "ready"; "refused" (it will not fork here) or "gone"
        self.warmed = False  # its children inherit the first optimiser's imports (warmup.warm_first_optimizer)
        self.pending: deque[ForkedWorker] = deque()
        self.running: dict[int, ForkedWorker] = {}
        self.reader = threading.Thread(target=self._read, name="training-forker", daemon=True)
        self.reader.start()

    def fork(self) -> ForkedWorker | None:
        """A training process forked for a new socket pair (None: this forker cannot)."""
        with self.lock:
            if self.state in ("refused", "gone"):
                return None
            ours, theirs = socket.socketpair()
            worker = ForkedWorker(theirs, Connection(ours.detach()))
            stdio = [fd for fd in (1, 2) if _fd_open(fd)]  # its output goes where the window's goes now
            request = json.dumps({"env": _child_env(), "cwd": os.getcwd(), "stdio": stdio}).encode()
            try:
                socket.send_fds(self.sock, [b"F" + request], [theirs.fileno(), *stdio])
            except OSError as exc:
                log.warning("the forking process is gone (%s): training processes start on their own", exc)
                self.state = "gone"
                worker.conn.close()
                theirs.close()
                return None
            self.pending.append(worker)
        return worker

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(RECORD.size)
            except OSError:
                data = b""
            if len(data) != RECORD.size:
                break
            kind, pid, code = RECORD.unpack(data)
            with self.lock:
                if kind == b"R":
                    self.state = "ready"
                elif kind == b"W":
                    self.warmed = True
                elif kind == b"N":
                    self.state = "refused"
                    break
                elif kind == b"P" and self.pending:
                    worker = self.pending.popleft()
                    self.running[pid] = worker
                    worker._forked(pid)
                elif kind == b"X":
                    ended = self.running.pop(pid, None)
                    if ended is not None:
                        ended._exited(code)
        with self.lock:  # refused, or gone: what it had not forked starts on its own
            if self.state != "refused":
                self.state = "gone"
                log.warning("the forking process ended (exit code %s): training processes start on their own",
                            self.popen.poll())
            pending, self.pending = list(self.pending), deque()
            running, self.running = list(self.running.values()), {}
        for worker in pending:
            worker._start_alone()
        for worker in running:
            worker._lose_track()
        self.sock.close()


def _the_forker() -> _Forker | None:
    """The forking process (started if there is none), or None where training processes start alone."""
    global _forker
    if sys.platform != "linux" or os.environ.get(FORK_ENV, "1") == "0":
        return None
    with _forker_lock:
        if _forker is not None and _forker.state == "refused":
            return None
        if _forker is None or _forker.state == "gone":
            try:
                _forker = _Forker()
            except OSError as exc:
                log.warning("the forking process could not start (%s): training processes start on their own", exc)
                return None
        return _forker


def start_worker() -> tuple[WorkerProcess | ForkedWorker, Connection]:
    """A new training process and the window's end of its pipe."""
    forker = _the_forker()
    forked = forker.fork() if forker is not None else None
    if forked is not None:
        return forked, forked.conn
    process = WorkerProcess()
    return process, process.conn


def prepare() -> None:
    """Start a spare training process now, if there is none (cheap to call often)."""
    global _spare
    with _lock:
        if _spare is not None and _spare[0].is_alive():
            return
        if _spare is not None:
            _spare[1].close()
        _spare = start_worker()


def take() -> tuple[Any, Connection]:
    """A training process for a new session: the spare if one is up, else a new one."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is not None and spare[0].is_alive():
        return spare
    if spare is not None:
        spare[1].close()
    return start_worker()


def discard_spare() -> None:
    """End the spare (the app is closing, or training moved back into the window's process)."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is None:
        return
    process, conn = spare
    try:
        from explorer.core.wire.frame import encode_frame  # (numpy is in by the time a spare is discarded)

        conn.send_bytes(encode_frame("message", {"m": None}))  # "no session for you": the child returns at once
    except (OSError, ValueError):
        pass
    conn.close()
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(2)
