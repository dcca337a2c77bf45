"""Tokens and token files: who may connect to a watched training script.

Why: a watched script listens on a TCP port, and on a shared machine any local user can reach a port on
127.0.0.1. A connection is accepted only with a random token (``secrets.token_urlsafe``) that the script
writes to a file only its user can read (mode 0600, in a 0700 folder), so only that user (or whoever the
user hands the token to) can watch, and only the control token can pause the run. Token files are
written atomically and validated on read: a broken or hostile file is a :class:`WireError` naming the
file and the fault, never a crash.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from explorer.core import paths
from explorer.core.atomic import atomic_write
from explorer.core.safe_read import UnsafeFileError, read_json
from explorer.core.wire.frame import WireError

TOKEN_BYTES = 24            # 32 URL-safe characters
MAX_TOKEN_CHARS = 256
MAX_TOKEN_FILE_BYTES = 64 * 1024
ROLES = ("control", "viewer")


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def tokens_equal(given: object, expected: str | None) -> bool:
    """Whether ``given`` is the token ``expected``, in time that does not tell how much of it matched."""
    if expected is None or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def token_file_path(port: int) -> Path:
    """Where a script watched on ``port`` keeps its token file by default."""
    return paths.runtime_dir() / f"watch-{int(port)}.json"


def _valid_token(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_CHARS and value.isascii()
            and value.isprintable() and " " not in value)


def check_token_info(info: Any, where: str) -> dict:
    """``info`` (a token file's content) checked field by field; a clean copy, or WireError naming ``where``."""
    if not isinstance(info, dict):
        raise WireError(f"{where}: not a token file (a JSON {type(info).__name__}, not an object)")
    host, port = info.get("host"), info.get("port")
    if not isinstance(host, str) or not 0 < len(host) <= 255 or not host.isprintable():
        raise WireError(f"{where}: 'host' must be a host name or address")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise WireError(f"{where}: 'port' must be a port number (1 to 65535)")
    if not _valid_token(info.get("token")):
        raise WireError(f"{where}: 'token' must be a token (printable ASCII, at most {MAX_TOKEN_CHARS} characters)")
    clean: dict[str, Any] = {"host": host, "port": port, "token": info["token"]}
    if info.get("viewer_token") is not None:
        if not _valid_token(info["viewer_token"]):
            raise WireError(f"{where}: 'viewer_token' must be a token (printable ASCII, at most "
                            f"{MAX_TOKEN_CHARS} characters)")
        clean["viewer_token"] = info["viewer_token"]
    pid = info.get("pid")
    if pid is not None:
        if not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
            raise WireError(f"{where}: 'pid' must be a process id")
        clean["pid"] = pid
    tls = info.get("tls")
    if tls is not None:
        if not isinstance(tls, bool):
            raise WireError(f"{where}: 'tls' must be true or false")
        clean["tls"] = tls
    name = info.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name) > 200:
            raise WireError(f"{where}: 'name' must be a str of at most 200 characters")
        clean["name"] = name
    return clean


def write_token_file(path: str | os.PathLike | None, info: dict) -> Path:
    """Write ``info`` (``host``, ``port``, ``token``, optional ``viewer_token``, ``pid``, ``name``, ``tls``) as JSON
    to ``path`` (default: :func:`token_file_path` of its port), readable by its user alone, atomically."""
    clean = check_token_info(info, "token file")
    target = token_file_path(clean["port"]) if path is None else Path(path)
    data = (json.dumps(clean, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def write(tmp: Path) -> None:
        os.chmod(tmp, 0o600)  # before the token is in it (mkstemp makes 0600 already; said here for sure)
        tmp.write_bytes(data)

    return atomic_write(target, write, private=True)


def read_token_file(path: str | os.PathLike) -> dict:
    """The checked content of the token file ``path``; WireError naming the file and the fault."""
    where = str(Path(path))
    try:
        info = read_json(path, limit=MAX_TOKEN_FILE_BYTES, max_depth=4, invalid="not a token file (not JSON)")
    except UnsafeFileError as exc:
        raise WireError(str(exc)) from None
    return check_token_info(info, where)


__all__ = ["TOKEN_BYTES", "ROLES", "new_token", "tokens_equal", "token_file_path", "check_token_info",
           "write_token_file", "read_token_file"]
