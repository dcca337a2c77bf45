"""The training server over loopback with real processes: a client trains a model there; hostile peers
(wrong token, silence, malformed frames, path-writing commands) are refused and the training goes on."""

import logging
import socket
import time

import pytest

from explorer.core.persist import commands
from explorer.core.process import codec
from explorer.core.process.session import MESSAGE
from explorer.core.remote.server import TrainingServer
from explorer.core.wire.frame import encode_frame, read_frame
from tests.helpers import tiny_rbm_config

TOKEN = "t" * 32


@pytest.fixture(scope="module")
def server():
    s = TrainingServer(token=TOKEN, hello_timeout=0.5)
    s.start()
    yield s
    s.close()


def message(value):
    tree, arrays = codec.pack(value)
    return encode_frame(MESSAGE, {"m": tree}, arrays)


def receive(sock, timeout=30.0):
    frame = read_frame(sock, timeout=timeout)
    assert frame.kind == MESSAGE
    return codec.unpack(frame.fields.get("m"), dict(frame.arrays))


def connect(server, token=TOKEN):
    sock = socket.create_connection(server.address, timeout=30)
    sock.sendall(encode_frame("hello", {"token": token, "role": "control", "client": "test"}))
    return sock, read_frame(sock, timeout=10)


def spec():
    return {"family": "rbm", "config": tiny_rbm_config(), "run_dir": None, "threads": 1, "step_rate": None,
            "session": {"snapshot_hz": 20.0}}


def test_binds_loopback_by_default(server):
    assert server.address[0] == "127.0.0.1"


def test_a_client_trains_a_model_and_path_commands_are_refused(server, caplog):
    sock, welcome = connect(server)
    assert welcome.kind == "welcome"
    sock.sendall(message(spec()))
    ready = receive(sock, timeout=60)
    assert ready[0] == "ready"
    sock.sendall(message(("do", True, "start", (), {})))
    rows = 0
    deadline = time.monotonic() + 30
    while rows < 5 and time.monotonic() < deadline:
        m = receive(sock)
        if m[0] == "metrics":
            rows += len(m[2])
    assert rows >= 5
    with caplog.at_level(logging.WARNING, "explorer.remote"):
        sock.sendall(message(("call", 7, commands.save_run_to, ("/tmp/anywhere",), {})))
        while (m := receive(sock))[0] != "reply":
            pass
    assert m[1] == 7 and isinstance(m[3], PermissionError) and "save_run_to" in str(m[3])
    assert any("save_run_to" in r.getMessage() for r in caplog.records)
    sock.close()


def test_hostile_peers_are_refused_with_a_line_in_the_log(server, caplog):
    with caplog.at_level(logging.WARNING, "explorer.remote"):
        sock, answer = connect(server, token="wrong")
        assert answer.kind == "refused" and answer.fields["reason"] == "wrong token"
        sock.close()
        silent = socket.create_connection(server.address, timeout=10)
        assert read_frame(silent, timeout=5).fields["reason"] == "no hello in time"
        silent.close()
        junk = socket.create_connection(server.address, timeout=10)
        junk.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 64)
        assert read_frame(junk, timeout=5).kind == "refused"
        junk.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any("wrong token" in line for line in lines)
    assert any("no hello in time" in line for line in lines)
    assert any("bad hello" in line for line in lines)


def test_a_saved_run_path_from_a_client_is_refused(server):
    sock, welcome = connect(server)
    assert welcome.kind == "welcome"
    sock.sendall(message({**spec(), "run_dir": "/etc"}))
    failed = receive(sock)
    assert failed[0] == "failed" and isinstance(failed[1], PermissionError)
    sock.close()
