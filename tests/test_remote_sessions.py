"""A window's session on a training server, over loopback with real processes: a dropped connection leaves
the run training and the session connects again with the curves it missed; runs are saved and exported
where the window is; a model moves to the server with its weights; TLS; 200 connections at once."""

import json
import logging
import socket
import ssl
import threading
import time

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors

from explorer.core.engine.session import TrainingSession
from explorer.core.families.registry import make_trainer
from explorer.core.persist import commands
from explorer.core.persist.runfolder import load_run
from explorer.core.remote.client import RemoteRefused, RemoteSession, ServerAddress, connect
from explorer.core.remote.server import TrainingServer
from explorer.core.wire.frame import WireError, encode_frame, read_frame
from tests.helpers import tiny_rbm_config, wait_for

TOKEN = "s" * 32



@pytest.fixture
def server():
    s = TrainingServer(token=TOKEN, hello_timeout=1.0, keep_detached=60.0)
    s.start()
    yield s
    s.close()


def address(server, token=TOKEN, **kw):
    return ServerAddress(server.address[0], server.address[1], token, **kw)


def command(session, fn, *args):
    """Run a command on the session and wait for its (result, error)."""
    done, out = threading.Event(), []

    def finished(result, error):
        out.append((result, error))
        done.set()

    session.run_command(fn, *args, on_done=finished)
    assert done.wait(60), f"{fn.__name__} did not finish"
    return out[0]


def step_numbers(session):
    return [int(r["step"]) for r in session.metrics.steps]


def test_a_dropped_connection_leaves_the_run_training_and_the_session_comes_back_with_the_missed_curves(server):
    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1, snapshot_hz=20, backoff=(0.5,))
    try:
        s.set_step_rate(200)
        s.start()
        wait_for(lambda: s.trainer.step >= 20, what="training")
        run = s.server_run
        s._conn.sock.shutdown(socket.SHUT_RDWR)  # the network drops under the window
        wait_for(lambda: s.dropped, what="the drop to be seen")
        at_drop = max(step_numbers(s))
        assert server.runs() == [run]  # the server keeps the run
        wait_for(lambda: s.connected, what="connecting again")
        wait_for(lambda: s.trainer.step >= at_drop + 50, what="training to go on")
        wait_for(lambda: max(step_numbers(s), default=0) >= at_drop + 50, what="the curves")
        steps = step_numbers(s)
        # the curves came whole: every step once, those trained while disconnected included
        assert steps == list(range(steps[0], steps[-1] + 1)) and steps[0] <= 1
        assert s.server_run == run and s.state == "running"
        notices = " ".join(s.pop_notices())
        assert "Lost the connection" in notices and "Connected again" in notices
        s.pause()  # and it is controlled again: the pause holds
        wait_for(lambda: s.state == "paused" and s.settled(), what="the pause")
        held = s.trainer.step
        time.sleep(0.5)
        assert s.trainer.step == held
    finally:
        s.stop()
    wait_for(lambda: server.runs() == [], what="the run to end when the window closes")


def test_a_run_that_ended_on_the_server_is_not_taken_back_and_says_so(server):
    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1, auto_reconnect=False)
    try:
        run = s.server_run
        s._conn.sock.shutdown(socket.SHUT_RDWR)
        wait_for(lambda: s.dropped, what="the drop")
        for r in list(server._runs.values()):
            r.stop()
        wait_for(lambda: server.runs() == [], what="the run to end")
        with pytest.raises(RemoteRefused, match="no such run"):
            connect(address(server), resume=run)
        assert s.reconnect() is False
        assert s.state == "error" and "has ended" in s.error
    finally:
        s.stop()


def test_a_run_left_without_a_window_ends_after_keep_detached(caplog):
    srv = TrainingServer(token=TOKEN, keep_detached=1.0)
    srv.start()
    try:
        s = RemoteSession(tiny_rbm_config(), server=address(srv), threads=1, auto_reconnect=False)
        s.start()
        with caplog.at_level(logging.WARNING, "explorer.remote"):
            s._conn.sock.shutdown(socket.SHUT_RDWR)
            wait_for(lambda: s.dropped, what="the drop")
            wait_for(lambda: srv.runs() == [], timeout=20, what="the detached run to end")
        assert any("no window came back" in r.getMessage() for r in caplog.records)
        s.stop()
    finally:
        srv.close()


def test_a_command_lost_with_the_connection_is_said_and_the_window_shows_the_run_as_it_is(server, monkeypatch):
    """A Pause pressed as the network drops may never reach the server: once connected again the window
    says so, and shows the run as it is there (training on), not as the Pause would have left it."""
    import explorer.core.process.session as process_session

    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1, backoff=(0.2,))
    try:
        s.set_step_rate(200)
        s.start()
        wait_for(lambda: s.trainer.step >= 20, what="training")
        sent = process_session.send

        def lost_in_the_network(conn, message):
            if message[:3] != ("do", True, "pause"):
                sent(conn, message)

        monkeypatch.setattr(process_session, "send", lost_in_the_network)
        s.pause()
        monkeypatch.setattr(process_session, "send", sent)
        assert s.state == "paused"  # (as the window shows it at once)
        s._conn.sock.shutdown(socket.SHUT_RDWR)
        wait_for(lambda: s.dropped, what="the drop")
        notices: list[str] = []
        lost = "1 command sent as the connection dropped did not reach the run; it goes on as it was (as shown now)"
        wait_for(lambda: notices.extend(s.pop_notices()) or lost in notices, what="the notice")
        assert s.connected and "Connected again to the training server" in " ".join(notices)
        at = s.trainer.step
        wait_for(lambda: s.state == "running" and s.trainer.step > at + 20, what="the run training on")
        s.pause()  # and a Pause now holds
        wait_for(lambda: s.state == "paused" and s.settled(), what="the pause")
    finally:
        s.stop()


def test_a_window_that_comes_back_at_the_last_moment_keeps_its_run(monkeypatch):
    """A resume claims its run before anything else: the reaper, due while the welcome is being made,
    passes it by (it used to end the run under the returning window)."""
    import explorer.core.engine.devices as devices

    srv = TrainingServer(token=TOKEN, keep_detached=1.0)
    srv.start()
    s = RemoteSession(tiny_rbm_config(), server=address(srv), threads=1, auto_reconnect=False)
    try:
        s.set_step_rate(100)
        s.start()
        # the run has taken the Play (a command still on its way when the connection drops can be lost with it,
        # and the run would wait, paused, for a Play that never came)
        wait_for(lambda: s.trainer.step > 0, what="the run to start")
        run = s.server_run
        s._conn.sock.shutdown(socket.SHUT_RDWR)
        wait_for(lambda: s.dropped, what="the drop")
        slow = devices.available_devices

        def welcome_made_slowly():  # the reaper's deadline passes while the welcome is being made
            time.sleep(2.0)
            return slow()

        monkeypatch.setattr(devices, "available_devices", welcome_made_slowly)
        assert s.reconnect()
        monkeypatch.setattr(devices, "available_devices", slow)
        time.sleep(2.0)  # past keep_detached again, attached
        assert srv.runs() == [run] and s.connected and s.server_run == run
        at = s.trainer.step
        wait_for(lambda: s.trainer.step > at + 20, what="the run training on")
    finally:
        s.stop()
        srv.close()


def test_save_run_autosave_and_export_of_a_remote_run_are_written_where_the_window_is(server, tmp_path):
    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1)
    try:
        s.step(7)
        wait_for(lambda: s.trainer.step == 7 and s.settled(), what="seven steps")
        target, error = command(s, commands.save_run_to, str(tmp_path / "run"), {"layout": "x"})
        assert error is None and target == str(tmp_path / "run")
        run = load_run(tmp_path / "run")
        assert run.family == "rbm" and run.step == 7 and run.info["gui"] == {"layout": "x"}
        assert [int(r["step"]) for r in run.steps] == list(range(1, 8))
        assert f"saved run to {tmp_path / 'run'}" in s.pop_notices()
        step, error = command(s, commands.autosave_to, str(tmp_path / "autosave"))
        assert error is None and step == 7 and load_run(tmp_path / "autosave").step == 7
        out, error = command(s, commands.export_model, "safetensors", str(tmp_path / "m.safetensors"))
        assert error is None and out == (str(tmp_path / "m.safetensors"), "rbm", 7)
        tensors = load_safetensors((tmp_path / "m.safetensors").read_bytes())
        assert np.array_equal(tensors["W"], run.tensors["W"].numpy())
        # a folder of other files is left alone: the run goes into a new sub-folder, as a local save does
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep")
        target, error = command(s, commands.save_run_to, str(tmp_path / "mine"), None)
        assert error is None and target.startswith(str(tmp_path / "mine" / "network-explorer-run-"))
        assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    finally:
        s.stop()


def test_a_model_moves_to_the_server_with_its_weights_and_curves(server):
    local = TrainingSession(make_trainer("rbm", tiny_rbm_config()))
    local.step(12)
    assert local.wait(30)
    files = command(local, commands.run_files)[0]
    local.close()
    s = RemoteSession(server=address(server), run_files=files, threads=1)
    try:
        assert s.trainer.step == 12 and s.trainer.family == "rbm"
        back = command(s, commands.run_files)[0]
        sent, got = (load_safetensors(f["weights.safetensors"].tobytes()) for f in (files, back))
        assert set(sent) == set(got) and all(np.array_equal(sent[k], got[k]) for k in sent)
        wait_for(lambda: len(s.metrics.steps) == 12, what="the moved curves")
    finally:
        s.stop()


def test_a_client_may_not_name_a_data_folder_on_the_server(server, caplog):
    with caplog.at_level(logging.WARNING, "explorer.remote"), pytest.raises(PermissionError, match="data_dir"):
        RemoteSession(tiny_rbm_config(dataset="folder", data_dir="/etc"), server=address(server), threads=1)
    assert any("data_dir" in r.getMessage() for r in caplog.records)


def test_a_viewer_role_and_a_resume_with_the_wrong_token_are_refused(server):
    for hello in ({"token": TOKEN, "role": "viewer"}, {"token": "x" * 32, "role": "control", "resume": "abc"}):
        sock = socket.create_connection(server.address, timeout=10)
        sock.sendall(encode_frame("hello", hello))
        answer = read_frame(sock, timeout=10)
        sock.close()
        assert answer.kind == "refused"
    assert server.runs() == []


def test_two_hundred_connections_at_once_are_refused_or_timed_out_and_training_goes_on(caplog):
    srv = TrainingServer(token=TOKEN, hello_timeout=1.0, max_pending=64)
    srv.start()
    s = RemoteSession(tiny_rbm_config(), server=address(srv), threads=1)
    try:
        s.set_step_rate(100)
        s.start()
        wait_for(lambda: s.trainer.step > 5, what="training")
        with caplog.at_level(logging.WARNING, "explorer.remote"):
            crowd = [socket.create_connection(srv.address, timeout=20) for _ in range(200)]
            reasons = [read_frame(peer, timeout=20).fields["reason"] for peer in crowd]
            for peer in crowd:
                peer.close()
        assert set(reasons) == {"no hello in time", "too many connections waiting to say hello"}
        assert reasons.count("no hello in time") <= 64
        lines = [r.getMessage() for r in caplog.records]
        assert sum("no hello in time" in line or "too many connections" in line for line in lines) == 200
        before = s.trainer.step
        wait_for(lambda: s.trainer.step > before + 20, what="training to go on")
        assert s.connected and srv.runs() == [s.server_run]
    finally:
        s.stop()
        srv.close()


def test_tls_with_the_users_certificate(certificate, caplog):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = TrainingServer(token=TOKEN, ssl_context=context, hello_timeout=2.0)
    srv.start()
    try:
        s = RemoteSession(tiny_rbm_config(), server=address(srv, tls=True, cafile=str(cert)), threads=1)
        try:
            s.step(3)
            wait_for(lambda: s.trainer.step == 3, what="three steps over TLS")
        finally:
            s.stop()
        with pytest.raises(RemoteRefused, match="TLS failed"):  # a certificate nobody vouched for
            RemoteSession(tiny_rbm_config(), server=address(srv, tls=True), threads=1)
        with caplog.at_level(logging.WARNING, "explorer.remote"), pytest.raises(RemoteRefused):
            RemoteSession(tiny_rbm_config(), server=address(srv), threads=1, start_timeout=5)  # plain text
        wait_for(lambda: any("TLS handshake failed" in r.getMessage() for r in caplog.records), timeout=10,
                 what="the refusal in the log")
    finally:
        srv.close()


def test_a_class_follows_a_run_over_tls_from_the_command_line_or_the_token_file(certificate, tmp_path):
    """``attach --follow --tls --cafile`` (or a viewer token file that says TLS) follows the teacher's run over
    TLS, reconnects included; without TLS, or with a certificate nobody vouched for, it is one clear line."""
    from explorer.core.remote.client import FollowSession
    from explorer.core.watch.attach import AttachError, ServedRun, open_source

    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = TrainingServer(token=TOKEN, viewer_token="v" * 32, ssl_context=context, hello_timeout=2.0)
    srv.start()
    host, port = srv.address
    viewer_file = tmp_path / "serve.viewer.json"
    viewer_file.write_text(json.dumps({"host": host, "port": port, "token": "v" * 32, "tls": True}))
    teacher = RemoteSession(tiny_rbm_config(), server=address(srv, tls=True, cafile=str(cert)), threads=1,
                            snapshot_hz=20)
    try:
        teacher.set_step_rate(200.0)
        teacher.subscribe()  # (a window that shows the views: the run takes snapshots)
        teacher.start()
        wait_for(lambda: teacher.trainer.step > 5, what="the teacher's run")
        by_flag = open_source(f"{host}:{port}", token="v" * 32, follow=True, tls=True, cafile=str(cert))
        with pytest.raises(AttachError, match="TLS failed"):  # the token file says TLS; nobody vouched
            open_source(f"{host}:{port}", token_info=json.loads(viewer_file.read_text()), follow=True)
        with pytest.raises(AttachError, match=f"{host}:{port}"):  # plain text to a TLS server
            open_source(f"{host}:{port}", token="v" * 32, follow=True, timeout=3)
        assert isinstance(by_flag.source, ServedRun) and by_flag.source.tls and by_flag.source.cafile == str(cert)
        run = by_flag.source
        viewer = FollowSession(server=ServerAddress(host, port, run.token, tls=run.tls, cafile=run.cafile),
                               greeted=(run.sock, run.welcome))
        try:
            assert viewer.server_run == teacher.server_run
            wait_for(lambda: viewer.latest_snapshot() is not None and viewer.trainer.step > 5,
                     what="the follower's snapshot over TLS")
            viewer._conn.sock.shutdown(socket.SHUT_RDWR)  # dropped: it comes back over TLS, the curves whole
            wait_for(lambda: viewer.connected is False, what="the drop")
            wait_for(lambda: viewer.connected and len(viewer.metrics.steps) >= teacher.trainer.step - 5,
                     timeout=30, what="the follower back, over TLS")
        finally:
            viewer.stop()
    finally:
        teacher.stop()
        srv.close()


def test_token_file_written_by_serve_is_what_the_window_reads(tmp_path):
    from explorer.core.remote.client import read_server_file

    path = tmp_path / "serve.token"
    path.write_text(json.dumps({"host": "127.0.0.1", "port": 7100, "token": "abc", "tls": True}))
    assert read_server_file(path) == ServerAddress("127.0.0.1", 7100, "abc", tls=True)
    path.write_text("[1, 2]")
    with pytest.raises(WireError, match=str(path)):
        read_server_file(path)


def test_every_path_setting_and_private_trainer_call_is_refused_and_the_window_still_settles(server, caplog):
    from explorer.core.remote.server import refusal

    assert refusal(("do", True, "set_hparams", (), {"dataset": "folder", "image_folder": "/root"}))
    assert refusal(("call", 1, commands.call_trainer, ("apply_hparams", {"data_dir": "/etc"}), {}))
    assert refusal(("call", 1, commands.call_trainer, ("__init__",), {}))
    assert refusal(("call", 1, commands.ask_trainer, ("_reload", "/etc"), {}))
    assert refusal(("do", True, "set_hparams", (), {"text_file": "/etc/passwd"}))
    assert refusal(("do", True, "set_hparams", (), {"lr": 0.1})) is None
    assert refusal(("do", True, "set_hparams", (), {"data_dir": None})) is None
    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1)
    try:
        with caplog.at_level(logging.WARNING, "explorer.remote"):
            s.set_hparams(image_folder="/root")  # refused at the server: the process still counts it answered
            assert s.wait(30) and s.settled()
        wait_for(lambda: any("image_folder" in n for n in s.pop_notices()), what="the refusal's notice")
        s.step(2)
        wait_for(lambda: s.trainer.step == 2 and s.settled(), what="two steps after the refusal")
        assert any("image_folder" in r.getMessage() for r in caplog.records)
    finally:
        s.stop()


def test_a_model_too_large_to_move_is_refused_by_the_window_with_its_size(server, monkeypatch):
    import explorer.core.remote.client as client
    from explorer.core.process.session import TrainingProcessError

    local = TrainingSession(make_trainer("rbm", tiny_rbm_config()))
    local.step(3)
    assert local.wait(30)
    files = commands.run_files(local, None)
    local.close()
    size = sum(a.nbytes for a in files.values())
    monkeypatch.setattr(client, "MAX_REQUEST_BYTES", size - 1)
    with pytest.raises(TrainingProcessError, match=r"the model's files are \d+ MiB; a training server takes at most"):
        RemoteSession(run_files=files, server=address(server), threads=1)
    wait_for(lambda: server.runs() == [], what="no run left behind", timeout=20)
