"""The server's side of remote training: one training process per authenticated connection, frames relayed.

Why it looks like this: the app's training process already speaks in wire frames of plain values
(``explorer.core.process.codec``: no pickle), so the server does not need a protocol of its own. After a
``hello`` with the right token (within ``hello_timeout``: a peer that sends nothing cannot hold a slot)
it starts a training process and relays frames both ways. Every frame a client sends is decoded and
checked first: a request that would make the server read or write a path of the client's choosing
(a saved run to restore, ``save_run_to``, ``autosave_to``, ``export_model``) is refused with an error
reply, and run folders are written where the window is, from the weights it fetches. Refusals are a
``refused`` frame to the peer and one line in the log (logger ``explorer.remote``); the other
connections and their training go on.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from explorer.core.persist import commands
from explorer.core.process import codec, worker
from explorer.core.process.session import MESSAGE
from explorer.core.wire.auth import tokens_equal
from explorer.core.wire.frame import ConnectionClosed, WireError, encode_frame, read_frame

log = logging.getLogger("explorer.remote")

HELLO_TIMEOUT = 5.0
HELLO_MAX_BODY = 4096
CLIENT_MAX_BODY = 16 << 20      # a session request or a command: small
MAX_CLIENTS = 8
PATH_COMMANDS = frozenset({commands.save_run_to, commands.autosave_to, commands.export_model})


def refusal(message: Any) -> str | None:
    """Why a client's message may not reach the training process, or None when it may."""
    if isinstance(message, dict):
        if message.get("run_dir"):
            return "a remote client may not open a path on the server (run_dir)"
        return None
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        return "not a training message"
    if message[0] == "call" and len(message) == 5 and message[2] in PATH_COMMANDS:
        return f"a remote client may not write a path on the server ({message[2].__name__})"
    return None


def _message_frame(message: Any) -> bytes:
    tree, arrays = codec.pack(message)
    return encode_frame(MESSAGE, {"m": tree}, arrays)


class TrainingServer:
    """Accepts token-authenticated connections on ``host:port`` and trains one session for each."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str,
                 hello_timeout: float = HELLO_TIMEOUT, max_clients: int = MAX_CLIENTS) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("a TrainingServer needs a token")
        self._token, self._hello_timeout, self._max_clients = token, hello_timeout, max_clients
        self._listener = socket.create_server((host, port))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._active = 0
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="remote-acceptor", daemon=True)

    def start(self) -> None:
        self._acceptor.start()

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock, f"{peer[0]}:{peer[1]}"),
                             name="remote-connection", daemon=True).start()

    def _refuse(self, sock: socket.socket, peer: str, why: str) -> None:
        log.warning("refused %s: %s", peer, why)
        try:
            sock.sendall(encode_frame("refused", {"reason": why}))
        except OSError:
            pass
        sock.close()

    def _serve(self, sock: socket.socket, peer: str) -> None:
        try:
            hello = read_frame(sock, max_body=HELLO_MAX_BODY, timeout=self._hello_timeout)
        except TimeoutError:
            return self._refuse(sock, peer, "no hello in time")
        except WireError as exc:
            return self._refuse(sock, peer, f"bad hello ({exc})")
        if hello.kind != "hello" or not tokens_equal(hello.fields.get("token"), self._token):
            return self._refuse(sock, peer, "wrong token")
        with self._lock:
            if self._active >= self._max_clients:
                full = True
            else:
                full, self._active = False, self._active + 1
        if full:
            return self._refuse(sock, peer, "too many connections")
        try:
            sock.settimeout(None)
            sock.sendall(encode_frame("welcome", {"role": "control"}))
            self._relay(sock, peer)
        finally:
            with self._lock:
                self._active -= 1

    def _relay(self, sock: socket.socket, peer: str) -> None:
        process, conn = worker.start_worker()

        def to_client() -> None:
            try:
                while True:
                    sock.sendall(conn.recv_bytes())
            except (EOFError, OSError):
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        out = threading.Thread(target=to_client, name="remote-to-client", daemon=True)
        out.start()
        started = False
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
                if why is None:
                    conn.send_bytes(_message_frame(message))
                    started = True
                    continue
                log.warning("refused a command from %s: %s", peer, why)
                if isinstance(message, tuple) and message[0] == "call":
                    conn_reply = ("reply", message[1], None, PermissionError(why))
                    sock.sendall(_message_frame(conn_reply))
                elif isinstance(message, dict):
                    sock.sendall(_message_frame(("failed", PermissionError(why), "")))
                    break
        except OSError:
            pass
        finally:
            try:
                conn.send_bytes(_message_frame(("stop",) if started else None))
            except (OSError, ValueError):
                pass
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join(5)
            conn.close()
            sock.close()
            out.join(5)
