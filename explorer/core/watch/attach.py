"""Attaching to a watched run: from an address (HOST:PORT) or a watch folder to an open source of frames.

The command line (``explorer attach``) and the window (File > Attach to a training run…) both come here:
the target is a folder when one is there, else an address; an address needs the script's token, given, read
from a token file, or found in the user's runtime folder, where the watcher wrote it (``watch-<port>.json``).
Every fault is one :class:`AttachError` naming the address, folder or file, never a traceback. Qt-free, and
torch-free: the command line opens the source before the window (and torch) load.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.core import paths
from explorer.core.safe_read import escape_text, one_line
from explorer.core.watch.folder import FolderSource
from explorer.core.wire.auth import read_token_file
from explorer.core.wire.client import FrameClient, greet, is_training_server
from explorer.core.wire.frame import WireError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


class AttachError(ValueError):
    """Why a watched run could not be opened, in one line naming the address, folder or file."""


@dataclass
class Opened:
    """An open source of frames: ``welcome`` (a connection's welcome fields; None for a folder, whose first
    frame is its welcome), ``where`` (the address or folder, for notices), ``live`` (a running script)."""

    source: Any
    welcome: dict[str, Any] | None
    where: str
    live: bool


@dataclass
class ServedRun:
    """A run on a training server (``python -m explorer serve``), connected as a viewer and welcomed: the
    window follows it read-only (``explorer.core.remote.client.FollowSession`` takes the socket over)."""

    host: str
    port: int
    token: str
    sock: Any
    welcome: dict[str, Any]
    tls: bool = False
    cafile: str | None = None

    def close(self) -> None:
        self.sock.close()


def parse_address(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:7000`` for IPv6) as (host, port); None when ``text`` is not one."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdecimal():
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    elif ":" in host or "/" in host or os.sep in host:
        return None
    number = int(port)
    return (host, number) if 1 <= number <= 65535 else None


def runtime_dir() -> Path | None:
    """Where watchers write their token files (None when it cannot be made)."""
    try:
        return paths.runtime_dir()
    except OSError:
        return None


def token_files() -> list[Path]:
    """The watchers' token files in the runtime folder, newest first."""
    folder = runtime_dir()
    if folder is None or not folder.is_dir():
        return []
    # (a training server's viewer-only file beside its token file is for handing out: the full one is here)
    found = [p for p in folder.glob("watch-*.json") if p.is_file() and not p.name.endswith(".viewer.json")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def read_token(path: str | Path) -> dict[str, Any]:
    """A token file, checked (``explorer.core.wire.auth.read_token_file``); AttachError naming the file."""
    try:
        info = read_token_file(Path(path))
    except (OSError, ValueError, WireError) as exc:
        reason = one_line(exc)
        raise AttachError(reason if str(path) in reason else f"{path}: {reason}") from None
    return dict(info)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::")


def same_endpoint(file_host: Any, host: str) -> bool:
    """Whether ``host`` as typed names the address a token file says its script listens on. Token files are
    of scripts on this computer: "localhost" stands for its loopback addresses, and a script listening on
    every address is reached through them too; any other host must be the file's own, exactly (a token
    sent to the wrong address is a token given away)."""
    if not isinstance(file_host, str):
        return False
    if file_host == host:
        return True
    return host in LOOPBACK_NAMES and (file_host in LOOPBACK_NAMES or file_host in ANY_ADDRESS)


def find_token(port: int | None = None, host: str | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable token file in the runtime folder (for ``port``, and listening on ``host``, when
    given; see :func:`same_endpoint`): (path, its fields)."""
    for path in token_files():
        try:
            info = read_token(path)
        except AttachError as exc:
            log.info("watch: token file skipped: %s", exc)
            continue
        if port is not None and info.get("port") != port:
            continue
        if host is not None and not same_endpoint(info.get("host"), host):
            continue
        return path, info
    return None


def open_source(target: str, *, token: str | None = None, token_info: dict[str, Any] | None = None,
                follow: bool = False, tls: bool = False, cafile: str | None = None,
                timeout: float = CONNECT_TIMEOUT_S) -> Opened:
    """Open ``target``: a watch folder, or the address of a watching script, connected and greeted.

    ``token``, else ``token_info["token"]`` (a token file's fields), else the token file found in the runtime
    folder for that port. ``follow``: attach read-only (the viewer role, with the run's viewer token if the
    file has one), so this window can never pause the run. ``tls`` (also when the token file says so, as a
    training server's started with a certificate does; ``cafile``: the certificate that signed the server's,
    when not one this system trusts): only a training server speaks TLS."""
    text = target.strip()
    if not text:
        raise AttachError("no address or folder given (HOST:PORT, or a watch folder)")
    folder = Path(text).expanduser()
    if folder.is_dir():
        return _open_folder(folder)
    address = parse_address(text)
    if address is None:
        if ":" in text and not any(c in text for c in "/\\") and not folder.exists():
            raise AttachError(f"{escape_text(text)}: expected HOST:PORT (a port from 1 to 65535) or a watch folder")
        what = "not a folder" if folder.exists() else "no such folder"
        raise AttachError(f"{escape_text(text)}: {what}")
    host, port = address
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    info = token_info
    if token is None and info is None:
        found = find_token(port, host)
        info = found[1] if found is not None else None
    if token is None and info is not None:
        token = str(info.get("viewer_token") if follow and info.get("viewer_token") else info.get("token", ""))
    if not token:
        place = runtime_dir()
        raise AttachError(f"{where}: no token (pass --token or --token-file"
                          + (f"; none for {where} in {place})" if place is not None else ")"))
    context = None
    if tls or cafile or (info is not None and info.get("tls") is True):
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise AttachError(f"{cafile}: not a certificate this system can read "
                              f"({escape_text(getattr(exc, 'strerror', None) or exc)})") from None
    return _connect(host, port, where, token, "viewer" if follow else "control", timeout, context, cafile)


def _open_folder(folder: Path) -> Opened:
    try:
        source = FolderSource(folder)
    except (OSError, ValueError) as exc:
        raise AttachError(f"{folder}: {one_line(exc)}") \
            from None
    return Opened(source, None, str(folder), live=False)


def _connect(host: str, port: int, where: str, token: str, role: str, timeout: float,
             tls: ssl.SSLContext | None = None, cafile: str | None = None) -> Opened:
    """A watched script's frames, or a training server's run followed read-only (asked for control, a server
    is asked again as a viewer: a window attaches to a run there only to follow it; ``start_run: false``
    keeps that first hello from starting a run there)."""
    try:
        sock, answer = greet(host, port, token=token, role=role, timeout=timeout, tls=tls,
                             hello={"start_run": False} if role == "control" else None)
        if is_training_server(answer.fields) and role != "viewer":
            sock.close()
            sock, answer = greet(host, port, token=token, role="viewer", timeout=timeout, tls=tls)
        if is_training_server(answer.fields):
            return Opened(ServedRun(host, port, token, sock, dict(answer.fields), tls=tls is not None, cafile=cafile),
                          dict(answer.fields), where, live=True)
        if tls is not None:  # (a watched script never speaks TLS: this cannot happen with an honest peer)
            sock.close()
            raise WireError(f"{where}: not a training server (only a training server speaks TLS)")
        client = FrameClient(host, port, token=token, role=role, timeout=timeout)
        welcome = client.adopt(sock, answer.fields)
    except (WireError, OSError) as exc:  # refused, unreachable, or the script's refusal ("wrong token", ...)
        reason = one_line(exc)
        if "refused" in reason.lower() and "connect" in reason.lower():
            reason += "; is a script watching on this port?"
        elif "bad magic" in reason:  # something answered, in another protocol (a web server, ssh, ...)
            reason = f"what answers there is not a watched script or a training server ({reason})"
        raise AttachError(reason if where in reason else f"{where}: {reason}") from None
    return Opened(client, dict(welcome), where, live=True)
