"""The process that training processes are forked from: ``python -m explorer.core.process.zygote FD``.

Why: every training process imports PyTorch, and what that import builds in memory (the Python modules'
objects, the operator tables, the libraries' relocated data: about 150 MB here) was private to each of
them: the one training and the spare waiting for the next session held two copies. This process
imports PyTorch and the session module once and then only forks: its children share those pages with it,
copy-on-write, and each starts in milliseconds instead of a second's import.

It never computes with PyTorch (a child must not inherit a started OpenMP team; it only allocates the one
value of a throwaway optimiser, ``warmup.warm_first_optimizer``) and is not used with a
CUDA or ROCm build of PyTorch (a process forked after the GPU driver was touched cannot use the GPU; the
window then starts each training process on its own, as before). Its one socket (FD, a sequenced-packet
pair) speaks in records of 9 bytes, a letter and two little-endian int32, never pickle:

- from the window: ``F`` and a JSON object of the window's environment and working folder (``env``,
  ``cwd``, and which of its standard output and error follow: the child takes them, as a process
  started then would have), with a socket's descriptor attached (SCM_RIGHTS), then those of the output
  and error: fork a training process that serves that socket;
- to the window: ``R`` (ready), ``N`` (it will not fork here: the window starts processes itself), ``W``
  (its first optimiser's imports are done, after its first child: the children forked from now on inherit
  them, :mod:`explorer.core.process.warmup`), ``P pid``
  (the child forked for the oldest request), ``X pid code`` (a child ended: its exit code, negative for a
  signal, as ``subprocess`` gives it).

When the window's end closes (the window quit or crashed) it exits; its children go on until their own
sockets close, as any training process does.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import sys
import warnings

RECORD = struct.Struct("<cii")
MAX_REQUEST = 1 << 20  # a fork request: the environment, the folder


def _reap(ctrl: socket.socket) -> None:
    """Tell the window about every child that has ended (and let the kernel forget it)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ctrl.sendall(RECORD.pack(b"X", pid, os.waitstatus_to_exitcode(status)))


def _child(fds: list[int], request: bytes, selector: selectors.BaseSelector, closing: list[int]) -> None:
    """In the forked child: take the window's environment, folder and output (``request``, ``fds[1:]``),
    serve the training session on ``fds[0]``, then exit (never return to the loop)."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        selector.close()
        for other in closing:
            os.close(other)
        _take_over(request, fds[1:])
        fd = fds[0]
        from multiprocessing.connection import Connection

        from explorer.core.logs import configure_logging
        from explorer.core.process.session import serve_child

        configure_logging(role="training process")
        serve_child(Connection(fd), warm=False)  # (what the forking process imported, it has: see serve)
    except BaseException:  # noqa: BLE001 - the child's last word goes to its log; the window sees it end
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            import logging

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _take_over(request: bytes, stdio_fds: list[int]) -> None:
    """The environment, working folder and standard output and error the window has now (as a process
    started on its own then would)."""
    try:
        asked = json.loads(request.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return
    stdio = asked.get("stdio") if isinstance(asked, dict) else None
    if isinstance(stdio, list) and len(stdio) == len(stdio_fds):
        for target, fd in zip(stdio, stdio_fds):
            if target in (1, 2):
                os.dup2(fd, target)
    for fd in stdio_fds:
        os.close(fd)
    env = asked.get("env") if isinstance(asked, dict) else None
    if isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        os.environ.clear()
        os.environ.update(env)
    cwd = asked.get("cwd") if isinstance(asked, dict) else None
    if isinstance(cwd, str):
        try:
            os.chdir(cwd)
        except OSError:
            pass


def why_not_fork(torch_module) -> str | None:
    """Why training processes are not forked from here (None: they are)."""
    if sys.platform != "linux":
        return "forking is used on Linux only"
    if getattr(torch_module.version, "cuda", None) or getattr(torch_module.version, "hip", None):
        return "a GPU build of PyTorch: each training process starts on its own"
    return None


def serve(ctrl: socket.socket) -> None:
    """Import what a training process needs, say whether it will fork, then fork on request until the
    window's end closes."""
    import torch

    import explorer.core.process.session  # noqa: F401 - imported once, here, for every child
    from explorer.core.process.warmup import warm_first_optimizer

    if why_not_fork(torch) is not None:
        ctrl.sendall(RECORD.pack(b"N", 0, 0))
        return
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # (the wake-up descriptor says a child ended)
    ctrl.sendall(RECORD.pack(b"R", 0, 0))
    selector = selectors.DefaultSelector()
    selector.register(ctrl, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    forked = warmed = False
    while True:
        events = selector.select(0 if forked and not warmed else None)
        if not events:  # after the first child (the window's spare, forked at its start: it does not wait)
            warm_first_optimizer()
            warmed = True
            ctrl.sendall(RECORD.pack(b"W", 0, 0))
            continue
        for key, _ in events:
            if key.fileobj == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                _reap(ctrl)
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(ctrl, MAX_REQUEST, 3)
            except InterruptedError:
                continue
            if not data:
                return  # the window has gone
            if data[:1] == b"F" and fds:
                with warnings.catch_warnings():  # (its one other thread, numpy's BLAS pool, is fork-safe)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:
                    _child(fds, data[1:], selector, [ctrl.fileno(), wake_r, wake_w])
                ctrl.sendall(RECORD.pack(b"P", pid, 0))
                forked = True
            for fd in fds:
                os.close(fd)
            _reap(ctrl)


if __name__ == "__main__":
    # Ctrl+C in the terminal reaches every process of the app: the window (or server) ends, and this
    # process and its children end when their sockets close, without tracebacks of their own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with socket.socket(fileno=int(sys.argv[1])) as control:
        try:
            serve(control)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the window has gone
