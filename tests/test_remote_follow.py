"""A class following one run on a training server, over loopback with real processes: viewers see the run's
curves whole (a late one included), its snapshots and its status; they cannot control it (the viewer token,
a viewer's commands); a viewer that reads nothing holds up neither the run nor the other viewers; a dropped
viewer comes back with the curves whole; when the run ends the viewers follow the next one; ``attach``
finds a training server and follows it."""

import logging
import socket
import time

import pytest

from explorer.core.engine.session import RUNNING, STOPPED
from explorer.core.process.session import send
from explorer.core.remote.client import FollowSession, RemoteRefused, RemoteSession, ServerAddress, connect
from explorer.core.remote.server import VIEWER_REFUSAL, TrainingServer, message_head
from explorer.core.watch.attach import AttachError, ServedRun, open_source
from explorer.core.wire.frame import WireError, encode_frame, read_frame
from tests.helpers import tiny_rbm_config, wait_for

TOKEN, VIEWER_TOKEN = "c" * 32, "v" * 32


@pytest.fixture
def server():
    s = TrainingServer(token=TOKEN, viewer_token=VIEWER_TOKEN, hello_timeout=1.0, keep_detached=60.0)
    s.start()
    yield s
    s.close()


def address(server, token=TOKEN):
    return ServerAddress(server.address[0], server.address[1], token)


def step_numbers(session):
    return [int(r["step"]) for r in session.metrics.steps]


def teacher_run(server, rate=200.0):
    """The teacher's window: a run on the server, training, its snapshots asked for as a window does."""
    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1, snapshot_hz=20)
    s.set_step_rate(rate)
    s.subscribe()
    s.start()
    return s


def test_viewers_see_the_whole_curves_the_snapshots_and_the_status_and_a_late_one_too(server):
    teacher = teacher_run(server)
    viewers = []
    try:
        viewers.append(FollowSession(server=address(server, VIEWER_TOKEN)))
        wait_for(lambda: teacher.trainer.step >= 60, what="training")
        viewers.append(FollowSession(server=address(server, VIEWER_TOKEN)))  # late: 60 steps in
        for v in viewers:
            assert v.server_run == teacher.server_run
            assert v.trainer.family == "rbm" and v.trainer.config == teacher.trainer.config
            wait_for(lambda v=v: len(step_numbers(v)) >= 100 and v.latest_snapshot() is not None,
                     what="the viewer's curves and snapshot")
            steps = step_numbers(v)
            assert steps == list(range(1, steps[-1] + 1))  # every step once, from the first
            wait_for(lambda v=v: v.state == RUNNING, what="the viewer to see it training")
            assert v.latest_snapshot().arrays  # a real snapshot of the teacher's model
        teacher.pause()
        wait_for(lambda: all(v.state == "paused" for v in viewers), what="the viewers to see the pause")
        wait_for(lambda: all(v.trainer.step == teacher.trainer.step for v in viewers), what="the last step")
    finally:
        for v in viewers:
            v.stop()
        teacher.stop()
    # the teacher's window closing ended the run (the viewers' closing never does)
    wait_for(lambda: server.runs() == [], what="the run to end", timeout=20)


def test_a_viewer_cannot_control_the_run(server, caplog):
    teacher = teacher_run(server)
    viewer = FollowSession(server=address(server, VIEWER_TOKEN))
    try:
        # its own controls are refused at once, with the reason
        viewer.pause()
        viewer.set_hparams(lr=1.0)
        assert viewer.pop_notices()[0].startswith("This window follows the run")
        # and what a hostile viewer sends through the socket is refused by the server, with a log line
        with caplog.at_level(logging.WARNING, logger="explorer.remote"):
            send(viewer._conn, ("do", True, "pause", (), {}))
            wait_for(lambda: VIEWER_REFUSAL in " ".join(viewer.pop_notices()), what="the refusal")
        assert any("refused a command from the viewer" in r.message for r in caplog.records)
        time.sleep(0.3)
        assert teacher.state == RUNNING and viewer.state == RUNNING
        # the viewer token cannot take control, nor a wrong one watch
        with pytest.raises(RemoteRefused, match="viewer token cannot control a run"):
            connect(address(server, VIEWER_TOKEN))
        with pytest.raises(RemoteRefused, match="wrong token"):
            connect(address(server, "x" * 32), viewer=True)
        assert server.runs() == [teacher.server_run]  # no run was started for them
    finally:
        viewer.stop()
        teacher.stop()


def test_a_viewer_that_keeps_sending_commands_is_dropped_and_the_run_goes_on(server, caplog):
    teacher = teacher_run(server)
    try:
        wait_for(lambda: teacher.trainer.step >= 5, what="training")
        sock, welcome = connect(address(server, VIEWER_TOKEN), viewer=True)
        assert welcome["role"] == "viewer" and welcome["run"] == teacher.server_run
        with caplog.at_level(logging.WARNING, logger="explorer.remote"):
            for _ in range(12):
                try:
                    sock.sendall(encode_frame("message", {"m": {"__tuple": ["do", True, "pause", [], {}]}}))
                except OSError:
                    break
                time.sleep(0.02)
            wait_for(lambda: any("commands refused" in r.message for r in caplog.records), what="the drop")
        sock.close()
        at = teacher.trainer.step
        wait_for(lambda: teacher.trainer.step >= at + 20, what="training to go on")
        assert teacher.state == RUNNING
    finally:
        teacher.stop()


def test_a_viewer_that_reads_nothing_holds_up_neither_the_run_nor_the_others(server):
    teacher = teacher_run(server, rate=400.0)
    good = None
    try:
        stuck, _ = connect(address(server, VIEWER_TOKEN), viewer=True)  # says hello, then never reads
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        good = FollowSession(server=address(server, VIEWER_TOKEN))
        at, t0 = teacher.trainer.step, time.monotonic()
        wait_for(lambda: teacher.trainer.step >= at + 400, what="training at its pace", timeout=30)
        assert time.monotonic() - t0 < 20
        wait_for(lambda: step_numbers(good) and step_numbers(good)[-1] >= at + 400, what="the good viewer's curves")
        stuck.close()
    finally:
        if good is not None:
            good.stop()
        teacher.stop()


def test_a_dropped_viewer_comes_back_with_the_curves_whole(server):
    teacher = teacher_run(server)
    viewer = FollowSession(server=address(server, VIEWER_TOKEN), backoff=(0.3,))
    try:
        wait_for(lambda: len(step_numbers(viewer)) >= 30, what="the viewer's curves")
        viewer._conn.sock.shutdown(socket.SHUT_RDWR)  # the student's network drops
        wait_for(lambda: viewer.dropped, what="the drop to be seen")
        at = teacher.trainer.step
        wait_for(lambda: viewer.connected, what="connecting again")
        wait_for(lambda: len(step_numbers(viewer)) >= at + 30, what="the curves after it")
        steps = step_numbers(viewer)
        assert steps == list(range(1, steps[-1] + 1))  # no step twice, none missing
        notices = " ".join(viewer.pop_notices())
        assert "Lost the connection" in notices and "Connected again" in notices
    finally:
        viewer.stop()
        teacher.stop()


def test_when_the_run_ends_the_viewers_follow_the_next_one(server):
    with pytest.raises(RemoteRefused, match="no run to follow yet"):
        FollowSession(server=address(server, VIEWER_TOKEN))
    teacher = teacher_run(server)
    viewer = FollowSession(server=address(server, VIEWER_TOKEN))
    nxt = successor = None
    try:
        first = viewer.server_run
        teacher.stop()  # the teacher moves on to another model: this run ends...
        notices: list[str] = []
        # (the run's last status can say "stopped" a moment before the end of its stream is read)
        wait_for(lambda: notices.extend(viewer.pop_notices()) or any("has ended" in n for n in notices),
                 what="the viewer to be told the run has ended")
        assert viewer.state == STOPPED
        nxt = teacher_run(server)  # ...and the next one starts
        wait_for(lambda: viewer.successor is not None, what="the next run to be found", timeout=20)
        successor = viewer.successor
        assert successor.server_run == nxt.server_run != first
        wait_for(lambda: len(step_numbers(successor)) >= 10, what="the next run's curves")
    finally:
        viewer.stop()
        if successor is not None:
            successor.stop()
        if nxt is not None:
            nxt.stop()


def test_the_relay_reads_a_message_from_its_header_alone():
    from explorer.core.process.codec import pack
    from explorer.core.process.session import MESSAGE

    tree, arrays = pack(("metrics", 3, [{"step": 1.0}], []))
    assert message_head(encode_frame(MESSAGE, {"m": tree}, arrays)) == ("metrics", 3)
    assert message_head(b"not a frame") == ("", None)
    assert message_head(encode_frame("hello", {"token": "t"})) == ("", None)


def test_attach_finds_a_training_server_and_follows_its_run(server, caplog):
    host, port = server.address
    with pytest.raises(AttachError, match="no run to follow yet"):
        open_source(f"{host}:{port}", token=VIEWER_TOKEN, follow=True)
    teacher = teacher_run(server)
    try:
        wait_for(lambda: teacher.trainer.step > 0, what="the teacher's run")
        caplog.set_level(logging.INFO, "explorer.remote")
        before = len(caplog.records)  # (the teacher's own start may be in the log already)
        for token, follow in ((VIEWER_TOKEN, True), (TOKEN, True), (TOKEN, False)):
            opened = open_source(f"{host}:{port}", token=token, follow=follow)
            assert isinstance(opened.source, ServedRun) and opened.welcome["run"] == teacher.server_run
            viewer = FollowSession(server=ServerAddress(host, port, token),
                                   greeted=(opened.source.sock, opened.welcome))
            try:
                assert viewer.trainer.family == "rbm" and viewer.read_only
            finally:
                viewer.stop()
        with pytest.raises(AttachError, match="attach --follow"):
            open_source(f"{host}:{port}", token=VIEWER_TOKEN)  # the viewer token, without --follow
        assert server.runs() == [teacher.server_run]
        # asking what serves there (attach without --follow) started no training process
        assert not [r for r in caplog.records[before:] if "started for" in r.getMessage()]
        assert any("told it is a training server" in r.getMessage() for r in caplog.records[before:])
    finally:
        teacher.stop()


def test_a_viewer_hello_is_checked_as_any_other(server):
    """A viewer that says nothing, or a broken hello, is refused as a window is (the run is untouched)."""
    teacher = teacher_run(server)
    try:
        with socket.create_connection(server.address) as sock:
            answer = read_frame(sock, max_body=1 << 16, timeout=5)  # said nothing: refused after hello_timeout
            assert answer.kind == "refused" and "no hello" in answer.fields["reason"]
        with socket.create_connection(server.address) as sock:
            sock.sendall(encode_frame("hello", {"token": VIEWER_TOKEN, "role": "viewer", "follow": ["x"]}))
            answer = read_frame(sock, max_body=1 << 16, timeout=5)
            assert answer.kind == "refused" and "no such run" in answer.fields["reason"]
        assert teacher.state == RUNNING and server.runs() == [teacher.server_run]
    finally:
        teacher.stop()


def test_queued_frames_go_out_whole_and_in_order_in_batched_sends():
    """A viewer's writer sends what has queued up in one call; the socket takes part of it at a time."""
    import threading

    from explorer.core.remote.server import send_buffers

    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    buffers = [bytes([i % 251]) * (1 + 7919 * i % 100_000) for i in range(600)] + [b"", b"end"]
    writer = threading.Thread(target=send_buffers, args=(a, buffers))
    writer.start()
    want, got = b"".join(buffers), bytearray()
    while len(got) < len(want):
        got += b.recv(1 << 16)
    writer.join(10)
    assert bytes(got) == want
    a.close()
    b.close()


def test_a_viewer_asks_for_the_unit_it_clicked_and_the_run_keeps_its_own(server):
    """A student clicks a unit: its receptive field comes back to that window alone, for the probe on show,
    and the run's own selection (the teacher's) is untouched; any other command is refused."""
    import threading

    import numpy as np

    from explorer.core.families.cnn.trainer import CNNConfig
    from explorer.core.persist import commands

    teacher = RemoteSession(CNNConfig(device="cpu", batch_size=8, eval_samples=32, n_gallery=4),
                            server=address(server), threads=1, snapshot_hz=20)
    viewer = None
    try:
        teacher.subscribe()
        teacher.step(3)
        wait_for(lambda: teacher.settled() and teacher.latest_snapshot() is not None, what="the teacher's run")
        viewer = FollowSession(server=address(server, VIEWER_TOKEN))
        wait_for(lambda: viewer.latest_snapshot() is not None, what="the viewer's snapshot")
        teachers_unit = teacher.latest_snapshot().arrays["unit"].tolist()
        answers, done = [], threading.Event()
        viewer.run_command(commands.unit_view, (1, 2, 5, 7), on_done=lambda r, e: (answers.append((r, e)), done.set()))
        assert done.wait(30)
        view, error = answers[0]
        assert error is None and view["unit"].tolist() == [1, 2, 5, 7] and view["unit_layer"] == "Conv2d #1"
        # LeNet's first layer: a 5x5 kernel, stride 1, padding 2: the unit at (5, 7) sees rows 3-7, columns 5-9
        assert view["rf_box"].tolist() == [3, 5, 7, 9]
        erf = view["erf"]
        assert erf.shape == (28, 28) and erf.sum() > 0
        inside = erf[3:8, 5:10].sum()
        assert inside == erf.sum()  # the effective field lies inside the theoretical one
        teacher.request_snapshot()
        teacher.step(1)
        wait_for(lambda: teacher.settled() and teacher.latest_snapshot().step == 4, what="the next snapshot")
        assert teacher.latest_snapshot().arrays["unit"].tolist() == teachers_unit  # the run's own selection
        # out of range: the error comes back to the viewer
        answers.clear()
        done.clear()
        viewer.run_command(commands.unit_view, (1, 99, 0, 0), on_done=lambda r, e: (answers.append((r, e)), done.set()))
        assert done.wait(30) and isinstance(answers[0][1], ValueError)
        # anything else is refused here, and by the server when sent anyway
        viewer.run_command(commands.run_files, None, on_done=lambda r, e: answers.append((r, e)))
        assert isinstance(answers[-1][1], PermissionError)
        send(viewer._conn, ("query", 99, commands.run_files, (None,), {}))
        wait_for(lambda: VIEWER_REFUSAL in " ".join(viewer.pop_notices()), what="the server's refusal")
        assert np.isfinite(erf).all()
    finally:
        if viewer is not None:
            viewer.stop()
        teacher.stop()


def test_a_viewer_frame_past_4_kib_header_included_ends_its_connection_unread(server, caplog):
    """A follower sends 4 KiB at most (docs/remote.md): a question with a large header (its arguments) is
    not passed on to the training process, its connection ends with a ``refused`` frame saying why, and the
    run goes on."""
    from explorer.core.persist import commands
    from explorer.core.process import codec
    from explorer.core.process.session import MESSAGE

    teacher = teacher_run(server)
    try:
        wait_for(lambda: teacher.trainer.step >= 5, what="training")
        sock, _ = connect(address(server, VIEWER_TOKEN), viewer=True)
        tree, arrays = codec.pack(("query", 5, commands.unit_view, ("9" * 3000, "9" * 3000), {}))
        with caplog.at_level(logging.WARNING, logger="explorer.remote"):
            sock.sendall(encode_frame(MESSAGE, {"m": tree}, arrays))
            replies, refused, closed, deadline = [], [], False, time.monotonic() + 10
            while not closed and time.monotonic() < deadline:  # the run's frames, until the server lets go
                try:
                    frame = read_frame(sock, max_body=1 << 26, timeout=2)
                except TimeoutError:
                    continue
                except (OSError, WireError):
                    closed = True
                    break
                if frame.kind == "refused":
                    refused.append(frame.fields["reason"])
                    continue
                tag = codec.unpack(frame.fields.get("m"), dict(frame.arrays))[0]
                if tag in ("reply", "notice"):
                    replies.append(tag)
            wait_for(lambda: any("too large" in r.getMessage() for r in caplog.records), what="the drop", timeout=10)
        # never asked of the run, never refused with a notice: told why in its last frame, and let go
        assert closed and replies == [] and len(refused) == 1 and refused[0].startswith("frame too large: a header of")
        sock.close()
        at = teacher.trainer.step
        wait_for(lambda: teacher.trainer.step >= at + 20, what="training to go on")
    finally:
        teacher.stop()


def test_viewers_that_keep_their_connection_after_the_run_ended_free_their_places():
    """A run ends: a viewer told so that never closes its end (a window left open, a hostile peer) is let go
    after the stall time, so it holds neither a viewer's place nor the ended run's kept frames. (Run after
    run: the one place must be free for the next run's viewer each time.)"""
    s = TrainingServer(token=TOKEN, viewer_token=VIEWER_TOKEN, hello_timeout=1.0, max_viewers=1, viewer_stall=0.5)
    s.start()
    lingering = []
    try:
        for _ in range(4):
            teacher = teacher_run(s)
            try:
                wait_for(lambda t=teacher: t.trainer.step >= 5, what="training")
                time.sleep(1.5)  # past the stall time of the last run's viewer
                sock, welcome = connect(address(s, VIEWER_TOKEN), viewer=True)  # the one place is free
                assert welcome["run"] == teacher.server_run
                lingering.append(sock)
            finally:
                teacher.stop()
            tags = []
            while "stopped" not in tags:  # told the run ended; the connection stays open on this side
                frame = read_frame(sock, max_body=1 << 26, timeout=30)
                tags.append(message_head(encode_frame(frame.kind, frame.fields, frame.arrays))[0])
            wait_for(lambda: s.runs() == [], what="the run to end", timeout=20)
    finally:
        for sock in lingering:
            sock.close()
        s.close()


def test_what_the_run_is_sent_reaches_its_process_whole_from_every_thread(monkeypatch):
    """The controlling window's relay and each viewer's reader send to the run's process from threads of
    their own: a large message must not interleave with another on the pipe (the process would read a
    broken stream, and the teacher's run would end)."""
    import threading
    from multiprocessing import Pipe
    from types import SimpleNamespace

    from explorer.core.remote import server as remote_server

    ours, theirs = Pipe()
    no_process = SimpleNamespace(join=lambda timeout=None: None, is_alive=lambda: False, kill=lambda: None)
    monkeypatch.setattr(remote_server.worker, "start_worker", lambda: (no_process, theirs))
    run = remote_server._Run(SimpleNamespace(_forget=lambda run: None), "r" * 22)
    messages = [bytes([65 + n]) * (1 << 20) for n in range(3)]
    senders = [threading.Thread(target=lambda m=m: [run.send_to_process(m) for _ in range(8)], daemon=True)
               for m in messages]
    for sender in senders:
        sender.start()
    time.sleep(0.3)  # the pipe is full: the senders wait on it together
    received = []
    try:
        for _ in range(24):
            assert ours.poll(10), "the pipe stalled"
            received.append(ours.recv_bytes(maxlength=1 << 22))
    except OSError as exc:  # ("bad message length": a broken stream)
        raise AssertionError(f"the process would read a broken stream ({exc})") from None
    finally:
        ours.close()
    assert sorted(received) == sorted(messages * 8)


def test_a_late_viewers_catch_up_is_not_held_against_its_queues_bounds():
    """A long run keeps more frames of history than a viewer's queue may hold: a live frame queued before the
    late viewer's writer has taken its catch-up must not get the viewer dropped as too far behind."""
    from explorer.core.wire.server import (
        HARD_QUEUE_BYTES,
        HARD_QUEUE_FRAMES,
        QUEUE_BYTES,
        QUEUE_FRAMES,
        _Client,
        _Outgoing,
    )

    a, b = socket.socketpair()
    try:
        viewer = _Client(a, "test", 0)
        viewer.queue_backlog([_Outgoing(b"h" * 100) for _ in range(HARD_QUEUE_FRAMES + 500)])
        live = [_Outgoing(b"s" * 100, droppable=True), _Outgoing(b"m" * 100)]
        assert all(viewer.enqueue(item, QUEUE_FRAMES, QUEUE_BYTES) for item in live)
        assert len(viewer.queue) == HARD_QUEUE_FRAMES + 502 and viewer.dropped_frames == 0
        with viewer.cond:
            taken = viewer.take_all()
        assert len(taken) == HARD_QUEUE_FRAMES + 502 and taken[-2:] == live
        # once taken, the bounds hold again: a viewer that then stops reading is let go as before
        assert all(viewer.enqueue(_Outgoing(b"m" * 100), QUEUE_FRAMES, QUEUE_BYTES)
                   for _ in range(HARD_QUEUE_FRAMES))
        assert not viewer.enqueue(_Outgoing(b"m" * 100), QUEUE_FRAMES, HARD_QUEUE_BYTES)
    finally:
        a.close()
        b.close()


def read_raw_frame(sock) -> bytes:
    """One frame from ``sock`` as the bytes that came over the wire (prefix, header and body)."""
    from explorer.core.wire.frame import PREFIX

    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the connection closed")
            buf += chunk
        return bytes(buf)

    prefix = exactly(PREFIX.size)
    _, header_len, body_len = PREFIX.unpack(prefix)
    return prefix + exactly(header_len + body_len)


def test_the_training_server_encodes_a_snapshot_once_and_every_viewer_gets_the_same_bytes(server, monkeypatch):
    """The server reads each frame of the training process once and queues those bytes for every viewer:
    the snapshots three viewers receive are byte for byte the same, and none is encoded on the server."""
    import threading

    from explorer.core.process import codec
    from explorer.core.remote import server as remote_server

    encoded = []  # the tag of each message frame the server encodes (its own, never a relayed one)
    real_encode = remote_server.encode_frame

    def counting_encode(kind, fields=None, arrays=None):
        data = real_encode(kind, fields, arrays)
        encoded.append(message_head(data)[0] if kind == "message" else kind)
        return data

    monkeypatch.setattr(remote_server, "encode_frame", counting_encode)
    teacher = teacher_run(server)
    socks = []
    try:
        wait_for(lambda: teacher.latest_snapshot() is not None, what="the teacher's first snapshot")
        del encoded[:]  # (the teacher's own welcome and commands)
        for _ in range(3):
            sock, welcome = connect(address(server, VIEWER_TOKEN), viewer=True)
            assert welcome["run"] == teacher.server_run
            sock.settimeout(10)
            socks.append(sock)
        wanted = 8
        received: list[dict[int, bytes]] = [{} for _ in socks]  # per viewer: a snapshot's seq -> its frame

        def collect(sock, snapshots):
            while len(snapshots) < wanted:
                data = read_raw_frame(sock)
                if message_head(data)[0] == "snapshot":
                    snap = codec.unpack(remote_server.message_fields(data), remote_server.message_arrays(data))[1]
                    snapshots[snap.seq] = data

        readers = [threading.Thread(target=collect, args=(sock, got), daemon=True)
                   for sock, got in zip(socks, received)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(20)
        assert all(len(got) >= wanted for got in received), [len(got) for got in received]
        common = set(received[0]) & set(received[1]) & set(received[2])
        assert len(common) >= wanted // 2, (sorted(received[0]), sorted(received[1]), sorted(received[2]))
        for seq in common:
            assert received[0][seq] == received[1][seq] == received[2][seq], f"snapshot {seq} differs"
        assert len({received[0][seq] for seq in common}) == len(common)  # a new picture each time
        # the server encoded a welcome for each viewer and not one snapshot (nor anything else it shared)
        assert encoded.count("welcome") == 3
        assert not set(encoded) & remote_server.SHARED_MESSAGES, encoded
    finally:
        for sock in socks:
            sock.close()
        teacher.stop()
