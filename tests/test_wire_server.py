"""The watch server and client over real loopback sockets (explorer.core.wire.server, client).

Hostile peers run as processes of their own (tests/wire_peer.py): a wrong token, garbage, a frame that
claims 10 GB, another wire version, a peer that says nothing or trickles, 200 connections at once, a
client that never reads. Each is refused or dropped with its one-line reason, on both sides, and the
server keeps serving a good client while the publisher (the user's training loop) never waits.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.core.wire import server as server_module
from explorer.core.wire.client import FrameClient
from explorer.core.wire.frame import WireError, encode_frame, read_frame
from explorer.core.wire.server import FrameServer
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(__file__).with_name("wire_peer.py")
TOKEN = "control-token-for-tests"
VIEWER = "viewer-token-for-tests"
MODEL = {"name": "Tiny", "framework": "none", "layers": [], "grad_layers": []}


@pytest.fixture
def make_server():
    servers: list[FrameServer] = []

    def make(**kw) -> FrameServer:
        kw.setdefault("token", TOKEN)
        kw.setdefault("model", MODEL)
        server = FrameServer(**kw)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def make_client():
    clients: list[FrameClient] = []

    def make(server: FrameServer, token: str = TOKEN, role: str = "control", **kw) -> FrameClient:
        client = FrameClient(*server.address, token=token, role=role, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def next_of_kind(client: FrameClient, kind: str, timeout: float = 10.0):
    """The next frame of ``kind`` the client receives (others are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        frame = client.frames(left)
        if frame is not None and frame.kind == kind:
            return frame
        if frame is None and client.closed:
            break
    raise AssertionError(f"no {kind!r} frame within {timeout} s (closed: {client.closed_reason})")


def assert_serving(server: FrameServer, good: FrameClient) -> None:
    """The server still delivers to the good client, and takes its commands."""
    marker = time.monotonic_ns()
    server.publish("notice", {"text": f"still here {marker}"})
    deadline = time.monotonic() + 10
    while True:
        frame = good.frames(max(0.0, deadline - time.monotonic()))
        assert frame is not None, f"the good client got nothing (closed: {good.closed_reason})"
        if frame.kind == "notice" and frame.fields.get("text") == f"still here {marker}":
            break
    good.send("command", {"cmd": "snapshot", "marker": marker})
    command = server.wait_command(10)
    while command is not None and command.get("marker") != marker:
        command = server.wait_command(10)
    assert command == {"cmd": "snapshot", "marker": marker}


def run_peer(mode: str, server: FrameServer, *args: str, hold: bool = False) -> tuple[dict, subprocess.Popen]:
    """Start tests/wire_peer.py in a process of its own; its JSON answer line, and the process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    host, port = server.address
    proc = subprocess.Popen([sys.executable, str(PEER), mode, host, str(port), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout is not None else ""
    if not line:
        proc.kill()
        raise AssertionError(f"the peer {mode!r} printed nothing: {proc.communicate(timeout=10)[1]}")
    if not hold:
        proc.stdin.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=30) == 0
    return json.loads(line), proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # type: ignore[union-attr]
    assert proc.wait(timeout=30) == 0


def refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "explorer.wire" and "refused" in r.getMessage()]


# -- the plain path ---------------------------------------------------------------------------------------

def test_binds_loopback_by_default_on_a_free_port(make_server, caplog):
    caplog.set_level(logging.INFO, logger="explorer.wire")
    server = make_server()
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    assert not [r for r in caplog.records if "reachable from the network" in r.getMessage()]


def test_a_non_loopback_address_is_warned_about(make_server, caplog):
    caplog.set_level(logging.WARNING, logger="explorer.wire")
    server = make_server(host="0.0.0.0")
    warnings = [r.getMessage() for r in caplog.records if r.name == "explorer.wire"]
    assert warnings == [f"explorer: the watch server on 0.0.0.0:{server.address[1]} is reachable from the network "
                        f"(anyone who has the token can watch and control this run)"]


def test_handshake_roles_and_commands(make_server, make_client):
    server = make_server(viewer_token=VIEWER)
    control = make_client(server)
    assert control.connect() == {"role": "control", "model": MODEL}
    viewer = make_client(server, VIEWER, "viewer")
    assert viewer.connect() == {"role": "viewer", "model": MODEL}
    # the control token may also ask for the viewer role
    assert make_client(server, TOKEN, "viewer").connect()["role"] == "viewer"
    assert server.viewers() == 3
    control.send("command", {"cmd": "pause"})
    control.send("command", {"cmd": "step", "n": 3})
    assert server.wait_command(5) == {"cmd": "pause"}
    assert server.wait_command(5) == {"cmd": "step", "n": 3}
    assert server.wait_command(0.05) is None
    viewer.send("command", {"cmd": "erf", "layer": "conv1", "channel": 0, "y": 1, "x": 2})
    viewer.send("command", {"cmd": "snapshot"})
    deadline = time.monotonic() + 5
    got: list[dict] = []
    while len(got) < 2 and time.monotonic() < deadline:
        got += server.commands()
        time.sleep(0.01)
    assert got == [{"cmd": "erf", "layer": "conv1", "channel": 0, "y": 1, "x": 2}, {"cmd": "snapshot"}]
    assert server.commands() == []


def test_a_viewer_that_tries_to_pause_gets_a_notice_and_stays(make_server, make_client, caplog):
    caplog.set_level(logging.INFO, logger="explorer.wire")
    server = make_server(viewer_token=VIEWER)
    good = make_client(server)
    good.connect()
    viewer = make_client(server, VIEWER, "viewer")
    viewer.connect()
    for cmd in ("pause", "play", "step", "set_lr"):
        viewer.send("command", {"cmd": cmd})
        notice = next_of_kind(viewer, "notice")
        assert notice.fields == {"text": "viewers may not control the run", "reason": "viewers may not control the run"}
    assert server.commands() == []
    assert not viewer.closed and server.viewers() == 2
    server.publish("state", {"state": "running", "step": 4})
    assert next_of_kind(viewer, "state").fields == {"state": "running", "step": 4}
    assert_serving(server, good)
    assert any("refused 'pause' from the viewer at 127.0.0.1:" in line for line in refusal_lines(caplog))


def test_a_viewer_token_cannot_ask_for_control(make_server, make_client, caplog):
    caplog.set_level(logging.INFO, logger="explorer.wire")
    server = make_server(viewer_token=VIEWER)
    good = make_client(server)
    good.connect()
    sneaky = make_client(server, VIEWER, "control")
    with pytest.raises(WireError, match="^viewers may not control the run$"):
        sneaky.connect()
    assert sneaky.closed_reason == "viewers may not control the run"
    assert_serving(server, good)


def test_without_allow_control_the_control_token_is_read_only(make_server, make_client):
    server = make_server(allow_control=False)
    client = make_client(server)
    assert client.connect()["role"] == "viewer"
    client.send("command", {"cmd": "pause"})
    assert next_of_kind(client, "notice").fields["text"] == "viewers may not control the run"
    client.send("command", {"cmd": "snapshot"})
    assert server.wait_command(5) == {"cmd": "snapshot"}


def test_a_late_client_gets_the_metric_history_and_the_latest_kept_frames(make_server, make_client):
    server = make_server(history_rows=10_000)
    for start in range(0, 12_000, 400):
        server.publish_metrics([{"step": s, "loss": 1.0 / (s + 1)} for s in range(start, start + 400)])
    server.publish("snapshot", {"step": 5}, {"w": np.full((3, 3), 5, "<f4")}, droppable=True, keep_as_latest=True)
    server.publish("snapshot", {"step": 9}, {"w": np.full((3, 3), 9, "<f4")}, droppable=True, keep_as_latest=True)
    server.publish("state", {"state": "paused", "step": 9}, keep_as_latest=True)
    server.publish("notice", {"text": "not kept"})
    late = make_client(server)
    late.connect()
    rows: list[dict] = []
    frames = []
    while True:
        frame = late.frames(5)
        assert frame is not None
        if frame.kind != "metrics":
            frames.append(frame)
            break
        rows += frame.fields["rows"]
    frames.append(late.frames(5))
    assert [r["step"] for r in rows] == list(range(2000, 12_000))
    assert rows[0] == {"step": 2000, "loss": 1.0 / 2001}
    assert [f.kind for f in frames] == ["snapshot", "state"]
    assert frames[0].fields == {"step": 9}
    np.testing.assert_array_equal(frames[0].arrays["w"], np.full((3, 3), 9, "<f4"))
    assert late.frames(0.2) is None  # the notice was not kept
    server.publish_metrics([{"step": 12_000, "loss": 0.0}])
    assert next_of_kind(late, "metrics").fields == {"rows": [{"step": 12_000, "loss": 0.0}]}


def test_metric_rows_too_many_for_one_frame_are_split(make_server, make_client):
    """Rows of many gradient norms: a batch, and a late client's history, that would pass the header's 1 MiB
    go in several frames, every row once and in order."""
    server = make_server()
    early = make_client(server)
    early.connect()
    fat = [{"step": s, **{f"grad/block{i}.conv": 0.001 * i for i in range(100)}} for s in range(1500)]
    server.publish_metrics(fat)
    got: list[dict] = []
    while len(got) < 1500:
        got += next_of_kind(early, "metrics").fields["rows"]
    assert got == fat
    late = make_client(server)
    late.connect()
    got = []
    while len(got) < 1500:
        got += next_of_kind(late, "metrics").fields["rows"]
    assert got == fat
    assert late.frames(0.2) is None


def test_fan_out_encodes_once_and_sends_the_same_bytes_to_every_client(make_server, monkeypatch):
    server = make_server()
    socks = []
    for _ in range(5):
        sock = socket.create_connection(server.address, timeout=10)
        sock.sendall(encode_frame("hello", {"token": TOKEN, "role": "viewer", "client": "test"}))
        assert read_frame(sock, timeout=10).kind == "welcome"
        socks.append(sock)
    deadline = time.monotonic() + 5
    while server.viewers() < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    encoded: list[bytes] = []
    real_encode = server_module.encode_frame

    def counting_encode(*args, **kw):
        data = real_encode(*args, **kw)
        encoded.append(data)
        return data

    monkeypatch.setattr(server_module, "encode_frame", counting_encode)
    arrays = {"act/conv1": np.random.default_rng(0).normal(size=(16, 28, 28)).astype("<f4")}
    server.publish("snapshot", {"step": 1}, arrays, droppable=True)
    assert len(encoded) == 1
    try:
        for sock in socks:
            got = bytearray()
            while len(got) < len(encoded[0]):
                chunk = sock.recv(len(encoded[0]) - len(got))
                assert chunk
                got += chunk
            assert bytes(got) == encoded[0]
    finally:
        for sock in socks:
            sock.close()


def test_close_says_bye_and_ends_every_thread(make_server, make_client):
    server = make_server()
    client = make_client(server)
    client.connect()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2.0
    assert next_of_kind(client, "bye").fields == {"reason": "the training script ended"}
    assert client.frames(2) is None and client.closed
    assert client.closed_reason == "the training script ended"
    with pytest.raises(WireError, match="not connected"):
        client.send("command", {"cmd": "pause"})
    server.publish("notice", {"text": "after close"})  # a no-op, never an error
    server.publish_metrics([{"step": 1}])
    deadline = time.monotonic() + 5
    while any(t.name.startswith("wire-") and t.name != "wire-client-read" for t in threading.enumerate()):
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.02)
    with pytest.raises(WireError, match="^cannot connect to 127.0.0.1:"):
        FrameClient(*server.address, token=TOKEN).connect()


def test_a_malformed_frame_after_the_handshake_closes_that_connection_only(make_server, make_client, caplog):
    caplog.set_level(logging.INFO, logger="explorer.wire")
    server = make_server()
    good = make_client(server)
    good.connect()
    bad = socket.create_connection(server.address, timeout=10)
    try:
        bad.sendall(encode_frame("hello", {"token": TOKEN, "role": "control"}))
        assert read_frame(bad, timeout=10).kind == "welcome"
        head = json.dumps({"v": 1, "kind": "command", "fields": {}, "arrays": []}).encode()
        bad.sendall(struct.pack("<4sIQ", b"NXW1", len(head), 2 << 20) + head + b"\xff" * 100)
        frames = []
        while True:
            try:
                frames.append(read_frame(bad, timeout=10))
            except WireError:
                break
        assert [f.kind for f in frames] == ["refused"]
        assert frames[0].fields == {"reason": "frame too large: 2097152 bytes (limit 1048576)"}
    finally:
        bad.close()
    assert_serving(server, good)
    assert wait_until(lambda: server.viewers() == 1)  # (the refused one's thread ends it)
    assert refusal_lines(caplog)[-1].startswith("refused a frame from the control at 127.0.0.1:")
    assert refusal_lines(caplog)[-1].endswith(": frame too large: 2097152 bytes (limit 1048576)")


# -- hostile peers, each in a process of its own -----------------------------------------------------------

@pytest.mark.parametrize(("mode", "reason"), [
    ("wrong-token", "wrong token"),
    ("garbage", "malformed frame: bad magic b'GET ' (expected b'NXW1')"),
    ("huge", "frame too large: 10000000000 bytes (limit 1048576)"),
    ("version", "version 2 is not spoken here (1)"),
])
def test_a_hostile_peer_is_refused_with_its_reason(make_server, make_client, caplog, mode, reason):
    caplog.set_level(logging.INFO, logger="explorer.wire")
    server = make_server()
    good = make_client(server)
    good.connect()
    answer, _ = run_peer(mode, server, TOKEN)
    assert answer["kind"] == "refused" and answer["fields"] == {"reason": reason}
    assert answer["elapsed"] < 5
    lines = refusal_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("refused a connection from 127.0.0.1:")
    assert lines[0].endswith(f": {reason}")
    assert server.viewers() == 1
    assert_serving(server, good)


def test_the_client_raises_the_reason_of_a_refusal(make_server, make_client):
    server = make_server()
    client = make_client(server, "wrong")
    with pytest.raises(WireError, match="^wrong token$"):
        client.connect()
    assert client.closed_reason == "wrong token" and client.closed


@pytest.mark.parametrize(("mode", "reason"), [("silent", "no hello within 0.5 s"),
                                              ("trickle", "timed out in the middle of a frame")])
def test_a_peer_that_sends_no_hello_in_time_is_refused(make_server, make_client, caplog, mode, reason):
    caplog.set_level(logging.INFO, logger="explorer.wire")
    server = make_server(hello_timeout=0.5)
    good = make_client(server)
    good.connect()
    answer, _ = run_peer(mode, server, TOKEN)
    assert answer["kind"] == "refused" and answer["fields"] == {"reason": reason}
    assert 0.4 < answer["elapsed"] < 4
    assert refusal_lines(caplog)[0].endswith(f": {reason}")
    assert_serving(server, good)


def test_two_hundred_connections_at_once(make_server, make_client, caplog):
    """The 65th connection on is refused ("too many connections"); meanwhile the publisher never waits and the
    good client keeps receiving; when the flood ends, its slots are free again."""
    caplog.set_level(logging.WARNING, logger="explorer.wire")
    server = make_server()
    good = make_client(server)
    good.connect()
    stop = threading.Event()
    durations: list[float] = []

    def publisher():
        step = 0
        while not stop.is_set():
            started = time.perf_counter()
            server.publish_metrics([{"step": step, "loss": 1.0}])
            durations.append(time.perf_counter() - started)
            step += 1
            time.sleep(0.005)

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        answer, proc = run_peer("flood", server, TOKEN, "200", hold=True)
        assert answer["outcomes"] == {"welcome:": 63, "refused:too many connections": 137}
        assert server.viewers() == 64
        got_steps = [row["step"] for row in next_of_kind(good, "metrics").fields["rows"]]
        assert got_steps
        release(proc)
    finally:
        stop.set()
        thread.join()
    assert len(durations) > 10 and max(durations) < 0.5
    assert sum(1 for line in refusal_lines(caplog) if line.endswith(": too many connections")) == 137
    deadline = time.monotonic() + 10
    while server.viewers() > 1:
        assert time.monotonic() < deadline, server.viewers()
        time.sleep(0.05)
    assert_serving(server, good)
    assert make_client(server).connect()["role"] == "control"


def test_a_client_that_never_reads_is_dropped_and_the_publisher_never_waits(make_server, make_client, caplog):
    caplog.set_level(logging.WARNING, logger="explorer.wire")
    server = make_server(stall_timeout=2.0, queue_frames=4)
    good = make_client(server)
    good.connect()
    answer, proc = run_peer("never-read", server, TOKEN, hold=True)
    try:
        assert answer["kind"] == "welcome"
        assert server.viewers() == 2
        snapshot = {"act": np.random.default_rng(0).normal(size=(256, 1024)).astype("<f4")}  # 1 MiB
        durations = []
        started = time.monotonic()
        dropped_at = None
        while time.monotonic() - started < 15:
            t0 = time.perf_counter()
            server.publish("snapshot", {"step": len(durations)}, snapshot, droppable=True, keep_as_latest=True)
            durations.append(time.perf_counter() - t0)
            good.frames(0.01)  # the good client reads
            if server.viewers() == 1 and dropped_at is None:
                dropped_at = time.monotonic() - started
            if dropped_at is not None and time.monotonic() - started > dropped_at + 0.5:
                break
        assert dropped_at is not None, "the stuck client was never dropped"
        assert 1.5 < dropped_at < 10
        assert max(durations) < 0.5, max(durations)  # far below the 2 s the stuck client was given
        dropped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropped the control at")]
        assert len(dropped) == 1 and dropped[0].endswith(": stopped reading for 2 s")
    finally:
        release(proc)
    assert_serving(server, good)


# -- the receiving side's bounded queue --------------------------------------------------------------------

def test_a_client_that_falls_behind_drops_its_oldest_snapshots_not_its_metrics(make_server, make_client):
    server = make_server()
    client = make_client(server, queue_frames=8)
    client.connect()
    for step in range(20):
        server.publish_metrics([{"step": step}])
        server.publish("snapshot", {"step": step}, droppable=True)
    server.publish("notice", {"text": "done"})
    deadline = time.monotonic() + 10
    while client.dropped_frames == 0:  # the window has not taken a frame yet: the queue fills
        assert time.monotonic() < deadline
        time.sleep(0.02)
    metrics, snapshots = [], []
    while (frame := client.frames(5)) is not None:
        if frame.kind == "metrics":
            metrics += [row["step"] for row in frame.fields["rows"]]
        elif frame.kind == "snapshot":
            snapshots.append(frame.fields["step"])
        else:
            assert frame.fields == {"text": "done"}
            break
    assert metrics == list(range(20))
    assert snapshots == sorted(snapshots) and snapshots[-1] == 19
    assert len(snapshots) + client.dropped_frames == 20


def test_frames_arrive_whole_and_in_order_to_a_reader_that_lags(make_server):
    """A client that reads nothing for a while gets every frame that may not be dropped, whole and in order."""
    server = make_server()
    sock = socket.create_connection(server.address, timeout=10)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # a small buffer: it fills mid-frame
        sock.sendall(encode_frame("hello", {"token": TOKEN, "role": "viewer"}))
        assert read_frame(sock, timeout=10).kind == "welcome"
        assert wait_until(lambda: server.viewers() == 1)
        payload = np.arange(40_000, dtype=np.float32)  # 160 kB a frame
        for i in range(60):
            server.publish("data", {"seq": i}, {"x": payload})
        time.sleep(0.5)  # the client reads nothing meanwhile
        got = []
        while len(got) < 60:
            frame = read_frame(sock, timeout=10)
            if frame.kind == "data":
                assert np.array_equal(frame.arrays["x"], payload)
                got.append(frame.fields["seq"])
        assert got == list(range(60))
    finally:
        sock.close()
