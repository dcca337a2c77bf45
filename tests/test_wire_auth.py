"""Tokens and token files (explorer.core.wire.auth) and the runtime folder they live in (core/paths.py)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from explorer.core import paths
from explorer.core.wire.auth import (
    new_token,
    read_token_file,
    token_file_path,
    tokens_equal,
    write_token_file,
)
from explorer.core.wire.frame import WireError

INFO = {"host": "127.0.0.1", "port": 40123, "token": "tok-A_b", "viewer_token": "view-C", "pid": 4321,
        "name": "MyCNN"}
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="file modes are POSIX")


def test_tokens_are_random_url_safe_and_compared_whole():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 32 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    token = new_token()
    assert tokens_equal(token, token)
    assert not tokens_equal(token[:-1], token)
    assert not tokens_equal(token + "x", token)
    assert not tokens_equal(None, token) and not tokens_equal(7, token)
    assert not tokens_equal(token, None)
    assert not tokens_equal("é\ud800", token)  # not ASCII, even a lone surrogate: False, no exception


@posix_only
def test_runtime_dir_is_made_private_and_can_be_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "rt"))
    folder = paths.runtime_dir()
    assert folder == tmp_path / "rt" and stat.S_IMODE(folder.stat().st_mode) == 0o700
    monkeypatch.delenv("NETWORK_EXPLORER_RUNTIME")
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))
    assert paths.runtime_dir() == tmp_path / "cache" / "runtime"
    if sys.platform.startswith("linux"):
        monkeypatch.delenv("NETWORK_EXPLORER_CACHE")
        (tmp_path / "xdg").mkdir()
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
        assert paths.runtime_dir() == tmp_path / "xdg" / "network-explorer"
        monkeypatch.delenv("XDG_RUNTIME_DIR")  # never a folder of /tmp: the state folder instead
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        assert paths.runtime_dir() == tmp_path / "state" / "network-explorer" / "runtime"
        assert stat.S_IMODE((tmp_path / "state" / "network-explorer" / "runtime").stat().st_mode) == 0o700


@posix_only
def test_token_file_round_trip_private_and_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "rt"))
    path = write_token_file(None, {**INFO, "extra": "ignored"})
    assert path == token_file_path(40123) == tmp_path / "rt" / "watch-40123.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == INFO
    assert read_token_file(path) == INFO
    assert [p.name for p in path.parent.iterdir()] == ["watch-40123.json"]  # no temporary file left
    minimal = {"host": "::1", "port": 1, "token": "t"}
    other = write_token_file(tmp_path / "elsewhere" / "t.json", minimal)
    assert read_token_file(other) == minimal
    assert stat.S_IMODE(other.stat().st_mode) == 0o600


@pytest.mark.parametrize(("content", "fault"), [
    (b"not json", "not a token file (not JSON)"),
    (b"[1, 2]", "not a token file (a JSON list, not an object)"),
    (json.dumps({**INFO, "token": ""}).encode(), "'token' must be a token"),
    (json.dumps({**INFO, "token": "has space"}).encode(), "'token' must be a token"),
    (json.dumps({k: v for k, v in INFO.items() if k != "token"}).encode(), "'token' must be a token"),
    (json.dumps({**INFO, "viewer_token": 5}).encode(), "'viewer_token' must be a token"),
    (json.dumps({**INFO, "port": 70000}).encode(), "'port' must be a port number (1 to 65535)"),
    (json.dumps({**INFO, "port": True}).encode(), "'port' must be a port number (1 to 65535)"),
    (json.dumps({**INFO, "host": ""}).encode(), "'host' must be a host name or address"),
    (json.dumps({**INFO, "pid": -1}).encode(), "'pid' must be a process id"),
    (json.dumps({**INFO, "name": ["x"]}).encode(), "'name' must be a str of at most 200 characters"),
    (b"[" * 100 + b"]" * 100, "JSON nested too deeply (the limit is 4 levels)"),
    (b"\xff\xfe", "not a text (UTF-8) file"),
    (b" " * (65 * 1024), "too large"),
])
def test_a_bad_token_file_is_refused_naming_the_file_and_the_fault(tmp_path, content, fault):
    path = tmp_path / "watch-1.json"
    path.write_bytes(content)
    with pytest.raises(WireError) as info:
        read_token_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert fault in str(info.value)


@posix_only
def test_a_token_file_that_is_no_regular_file_is_refused(tmp_path):
    with pytest.raises(WireError, match="no such file"):
        read_token_file(tmp_path / "missing.json")
    with pytest.raises(WireError, match="is a folder, not a file"):
        read_token_file(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(WireError, match=r"not a regular file \(a device, pipe or socket\), refused"):
        read_token_file(fifo)


def test_writing_refuses_an_incomplete_info(tmp_path):
    with pytest.raises(WireError, match="'port' must be a port number"):
        write_token_file(tmp_path / "t.json", {"host": "127.0.0.1", "port": 0, "token": "t"})
    assert not (tmp_path / "t.json").exists()
