"""Training processes, started ahead of need.

A training process spends its first seconds importing PyTorch. The window starts one as it opens
(beside its own import of the core) and keeps one spare while it trains, so a new session (another
family, a network from the builder, an opened run) finds one ready and the window never waits for an
import. This module imports only the standard library: the app calls :func:`prepare` before PyTorch is in.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_spare: tuple[Any, Connection] | None = None


class WorkerProcess:
    """A training process started with ``python -m explorer.core.process.child FD``.

    Not ``multiprocessing``'s spawn: that re-runs the parent's main script in the child, which fails for
    a script read from a pipe and costs a benchmark's imports twice. The child shares nothing with the
    window but a socket; when the window's end closes (a crash included), the child stops and ends."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[3])  # where the explorer package is, installed or not
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.popen = subprocess.Popen([sys.executable, "-m", "explorer.core.process.child", str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()  # the child holds its own copy: ours then sees EOF when the child ends
        self.conn = Connection(ours.detach())

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


def start_worker() -> tuple[WorkerProcess, Connection]:
    """A new training process and the window's end of its pipe."""
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
