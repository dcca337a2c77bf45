"""The training server over loopback with real processes: a client trains a model there; hostile peers
(wrong token, silence, malformed frames, path-writing commands, malformed messages from a token-holder) are
refused with one line saying why and the training goes on."""

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.core.persist import commands
from explorer.core.process import codec
from explorer.core.process.session import MESSAGE
from explorer.core.remote.server import TrainingServer
from explorer.core.wire.frame import ConnectionClosed, encode_frame, read_frame
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


def address(server, token=TOKEN, **kw):
    from explorer.core.remote.client import ServerAddress

    return ServerAddress(server.address[0], server.address[1], token, **kw)


def stop_and_close(sock):
    """End the run as a window does (a dropped connection would leave it training on the server)."""
    try:
        sock.sendall(message(("stop",)))
        while receive(sock, timeout=30)[0] != "stopped":
            pass
    finally:
        sock.close()


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
    stop_and_close(sock)


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


def test_a_hello_that_trickles_in_is_timed_out_with_a_line_in_the_log(server, caplog):
    """A valid hello sent one byte at a time, slower than the hello timeout (0.5 s here) allows: refused
    once that time is up, with a line in the log, however long the peer would go on."""
    import select

    data = encode_frame("hello", {"token": TOKEN, "role": "control", "client": "test"})
    with caplog.at_level(logging.WARNING, "explorer.remote"):
        sock = socket.create_connection(server.address, timeout=10)
        started = time.monotonic()
        for i in range(len(data)):
            if select.select([sock], [], [], 0.1)[0]:
                break  # the server answered: read it
            sock.sendall(data[i:i + 1])
        answer = read_frame(sock, timeout=5)
        elapsed = time.monotonic() - started
        sock.close()
    assert answer.kind == "refused" and elapsed < 4
    assert answer.fields["reason"] in ("no hello in time", "bad hello (timed out in the middle of a frame)")
    assert any(r.getMessage().endswith(answer.fields["reason"]) and r.getMessage().startswith("refused ")
               for r in caplog.records)
    with socket.create_connection(server.address, timeout=10) as sock:  # and the server serves the next one
        sock.sendall(encode_frame("hello", {"token": TOKEN, "role": "control", "client": "test", "start_run": False}))
        welcome = read_frame(sock, timeout=10)
    assert welcome.kind == "welcome" and welcome.fields["run"] == ""


def test_a_saved_run_path_from_a_client_is_refused(server):
    sock, welcome = connect(server)
    assert welcome.kind == "welcome"
    sock.sendall(message({**spec(), "run_dir": "/etc"}))
    failed = receive(sock)
    assert failed[0] == "failed" and isinstance(failed[1], PermissionError)
    sock.close()


def serve_command(tmp_path, *options):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # (a Ctrl+C as from a terminal: a shell that starts a job in the background, such as a CI script's, has
    # it ignored, and the server, like any program, inherits that; the test then waited on it for good)
    return subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--token-file", str(tmp_path / "t"),
                             *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def first_lines(proc, n):
    """The first ``n`` lines serve prints, then a Ctrl+C: it stops the server (exit 0, "stopped"), however
    soon after the lines it comes (it escaped the prints as exit 130, the server left unclosed)."""
    lines = [proc.stdout.readline().strip() for _ in range(n)]
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err.strip().splitlines()[-1:] == ["stopped"], (proc.returncode, err)
    return lines


def test_serve_binds_loopback_writes_a_private_token_file_and_warns_when_told_another_host(tmp_path):
    lines = first_lines(serve_command(tmp_path), 5)
    assert lines[0].startswith("serving training on 127.0.0.1:")
    token = lines[1].removeprefix("token: ")
    info = json.loads((tmp_path / "t").read_text())
    assert info["token"] == token
    assert (tmp_path / "t").stat().st_mode & 0o777 == 0o600
    # the viewer token, for a class: in the token file, and alone in a file of its own to hand out
    viewer = lines[3].removeprefix("viewer token (follow read-only): ")
    assert lines[4] == f"viewer token file: {tmp_path / 't.viewer.json'}"
    assert info["viewer_token"] == viewer != token
    alone = json.loads((tmp_path / "t.viewer.json").read_text())
    assert alone == {"host": "127.0.0.1", "port": info["port"], "tls": False, "token": viewer}
    assert (tmp_path / "t.viewer.json").stat().st_mode & 0o777 == 0o600
    lines = first_lines(serve_command(tmp_path, "--listen", "0.0.0.0:0"), 2)
    assert lines[0].startswith("serving training on 0.0.0.0:")
    assert lines[1].startswith("warning: 0.0.0.0 is reachable from the network")


def test_serve_bad_listen_option_is_one_line_and_exit_2(tmp_path):
    proc = serve_command(tmp_path, "--listen", "localhost:99999")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == ["explorer: error: --listen: expected a port from 0 to 65535, got '99999'"]


def test_oversized_wrong_version_and_many_peers_at_once_leave_a_training_client_going(server, caplog):
    sock, _welcome = connect(server)
    sock.sendall(message(spec()))
    assert receive(sock, timeout=60)[0] == "ready"
    sock.sendall(message(("do", True, "start", (), {})))
    with caplog.at_level(logging.WARNING, "explorer.remote"):
        big = socket.create_connection(server.address, timeout=10)
        big.sendall(b"NXW1" + (100).to_bytes(4, "little") + (1 << 30).to_bytes(8, "little"))
        assert "frame too large" in read_frame(big, timeout=5).fields["reason"]
        big.close()
        old = socket.create_connection(server.address, timeout=10)
        old.sendall(b"NXW9" + bytes(12))
        assert "bad magic" in read_frame(old, timeout=5).fields["reason"]
        old.close()
        crowd = [socket.create_connection(server.address, timeout=10) for _ in range(40)]
        for peer in crowd:
            peer.sendall(encode_frame("hello", {"token": "nope", "role": "control", "client": "test"}))
        assert all(read_frame(peer, timeout=10).fields["reason"] == "wrong token" for peer in crowd)
        for peer in crowd:
            peer.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any("frame too large" in line for line in lines) and any("bad magic" in line for line in lines)
    assert sum("wrong token" in line for line in lines) >= 40
    deadline, rows = time.monotonic() + 30, 0
    while rows < 20 and time.monotonic() < deadline:
        m = receive(sock)
        if m[0] == "metrics":
            rows += len(m[2])
    assert rows >= 20  # the training went on and its rows still arrive
    stop_and_close(sock)


def test_a_remote_session_trains_pauses_and_takes_live_hyper_parameters(server):
    from explorer.core.remote.client import RemoteRefused, RemoteSession

    with pytest.raises(RemoteRefused, match="wrong token"):
        RemoteSession(tiny_rbm_config(), server=address(server, token="bad"), threads=1)
    s = RemoteSession(tiny_rbm_config(), server=address(server), threads=1, snapshot_hz=20)
    try:
        s.start()
        deadline = time.monotonic() + 30
        while len(s.history()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(s.history()) >= 5
        s.set_hparams(lr=0.123)
        s.pause()
        deadline = time.monotonic() + 30
        while not (s.state == "paused" and s.trainer.config.lr == pytest.approx(0.123)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.state == "paused" and s.trainer.config.lr == pytest.approx(0.123)
    finally:
        s.stop()


@pytest.mark.parametrize("options, message", [
    (["--tls-cert", "/nonexistent/cert.pem"], "--tls-cert /nonexistent/cert.pem: No such file or directory"),
    (["--tls-cert", __file__], "not a certificate and key this server can use"),
    (["--tls-key", "key.pem"], "--tls-key: given without --tls-cert"),
    (["--keep-detached", "nan"], "--keep-detached: expected a number of seconds, got nan"),
])
def test_serve_bad_tls_and_keep_options_are_one_line_and_exit_2(tmp_path, options, message):
    proc = serve_command(tmp_path, *options)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_a_window_cannot_pass_a_command_off_as_a_followers_question(server, tmp_path, caplog):
    """A ``query`` is the server's to send for its viewers (under ids of its own, below 0): one from the
    controlling window would reach the process unchecked (a path written, a private method called), and a
    call under a negative id would be answered to a viewer. Both are refused, answered to the window."""
    sock, welcome = connect(server)
    assert welcome.kind == "welcome"
    sock.sendall(message(spec()))
    assert receive(sock, timeout=60)[0] == "ready"
    stolen = tmp_path / "stolen"
    with caplog.at_level(logging.WARNING, "explorer.remote"):
        for call_id, sent in ((8, ("query", 8, commands.save_run_to, (str(stolen),), {})),
                              (9, ("query", 9, commands.call_trainer, ("_private",), {})),
                              (-1, ("call", -1, commands.unit_view, ((1, 0, 0, 0),), {}))):
            sock.sendall(message(sent))
            while (m := receive(sock))[0] != "reply":
                pass
            assert m[1] == call_id and isinstance(m[3], PermissionError)
    assert any("refused a command" in r.getMessage() for r in caplog.records)
    time.sleep(0.5)
    assert not stolen.exists()
    stop_and_close(sock)


def test_a_closed_server_stops_listening_at_once():
    """close() frees the port: before, the thread blocked in accept() kept listening, and a connection made
    after close() was accepted and served."""
    server = TrainingServer(token=TOKEN, hello_timeout=0.5)
    server.start()
    host, port = server.address
    sock, welcome = connect(server)
    assert welcome.kind == "welcome"
    sock.close()
    server.close()
    assert not server._acceptor.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=5).close()
    TrainingServer(token=TOKEN).close()  # (never started: closes too)


# -- what a token-holder sends after the welcome, to a server started as an operator starts it ------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``python -m explorer serve`` on loopback, its log in a folder of its own: (host, port), the token file's
    fields and the log file."""
    folder = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "NETWORK_EXPLORER_LOG_DIR": str(folder / "log")}
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--listen", "127.0.0.1:0", "--token-file",
                             str(folder / "t")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().startswith("serving training on 127.0.0.1:")
        info = json.loads((folder / "t").read_text())
        yield (info["host"], info["port"]), info, folder / "log" / "explorer.log"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def welcomed(served, role="control"):
    where, info, _ = served
    sock = socket.create_connection(where, timeout=30)
    sock.sendall(encode_frame("hello", {"token": info["token" if role == "control" else "viewer_token"],
                                        "role": role, "client": "test"}))
    assert read_frame(sock, timeout=10).kind == "welcome"
    return sock


def raw_message(tree):
    """A message frame of the tree given, as a hostile peer writes it (not through the codec's packing)."""
    return encode_frame(MESSAGE, {"m": tree})


def until(sock, wanted, timeout=30.0):
    """The first message from the run that ``wanted`` accepts (its curves, snapshots and statuses skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = receive(sock, timeout=max(0.1, deadline - time.monotonic()))
        if wanted(m):
            return m
    raise AssertionError("not received in time")


def test_serve_answers_a_malformed_request_or_frame_after_the_welcome_with_one_line_and_serves_on(served):
    """After a good hello, what is not a session request gets a ``failed`` reply naming the field and the
    fault (before: a KeyError and the server's traceback, or no reply at all), what is not a message a
    ``refused`` frame (before: the connection closed unexplained); each connection then ends, and the
    server trains the next client's model."""
    from explorer.core.families.registry import FAMILIES

    requests = [
        ({"__evil": 1}, 'unknown field "__evil" (a request has family, config, run_dir, run_files, threads, '
                        'step_rate, session, ranks)'),
        ({"family": "banana"}, f'family must be one of {", ".join(FAMILIES)}, got "banana"'),
        ({"family": "rbm"}, "config is missing (the model's settings)"),
        ([1, 2, 3], "a list, not an object of fields"),
        ({"family": "rbm", "config": {"hidden": 10**9}},  # refused as settings are: nothing is built
         "config.hidden must be a whole number between 1 and 20000 (hidden units), got 1000000000"),
        ({"family": "rbm", "config": {}, "threads": 10**9},  # (torch would try to start that many threads)
         "threads must be a whole number <= 1024 (or none), got 1000000000"),
        ({"family": "rbm", "config": {}, "session": {"metrics": 1}},
         "session.metrics is not a setting of a training session (those are snapshot_hz, eval_fraction, epochs, "
         "metrics_every, eval_every, tune_threads, name)"),
    ]
    for tree, reason in requests:
        sock = welcomed(served)
        sock.sendall(raw_message(tree))
        answer = read_frame(sock, timeout=20)
        assert (answer.kind, answer.fields) == (MESSAGE, {"m": {"__tuple": [
            "failed", {"__error": "ValueError", "message": f"malformed session request: {reason}"}, ""]}})
        with pytest.raises(ConnectionClosed):
            read_frame(sock, timeout=10)
        sock.close()
    garbage = random.Random(7).randbytes(300)
    for data, reason in ((garbage, f"malformed frame: bad magic {garbage[:4]!r} (expected b'NXW1')"),
                         (encode_frame("hello", {"token": served[1]["token"], "role": "control"}),
                          "a second hello (this connection was welcomed already)"),
                         (raw_message({"__tuple": ["do", True, {"__set": [[1]]}, [], {}]}),
                          "malformed message: a set of values that cannot be in a set"),
                         (raw_message({"__settings": "explorer.core.families.deep.trainer:MLPConfig",
                                       "fields": {"hidden": ["x"]}}),
                          "malformed message: settings MLPConfig that cannot be made (invalid literal for int() "
                          "with base 10: 'x')")):
        sock = welcomed(served)
        sock.sendall(data)
        answer = read_frame(sock, timeout=20)
        assert (answer.kind, answer.fields) == ("refused", {"reason": reason})
        with pytest.raises(ConnectionClosed):
            read_frame(sock, timeout=10)
        sock.close()
    sock = welcomed(served)  # and the next client trains as ever
    sock.sendall(message(spec()))
    assert receive(sock, timeout=60)[0] == "ready"
    sock.sendall(message(("do", True, "start", (), {})))
    assert until(sock, lambda m: m[0] == "metrics" and len(m[2]) > 0)
    stop_and_close(sock)
    log_text = served[2].read_text()
    assert sum(f"malformed session request: {reason}" in log_text for _, reason in requests) == len(requests)
    assert "bad magic" in log_text and "a second hello" in log_text and "Traceback" not in log_text


def test_serve_answers_malformed_commands_of_a_run_and_a_viewers_garbage_and_the_run_trains_on(served):
    """Once its run trains, a client's malformed command is answered (a reply to its call, a notice) and kept
    from the training process, the connection staying; a viewer that sends bytes that are not a frame is
    told why in a ``refused`` frame and let go. The run trains on throughout."""
    sock = welcomed(served)
    sock.sendall(message(spec()))
    assert receive(sock, timeout=60)[0] == "ready"
    sock.sendall(message(("do", True, "start", (), {})))
    for tree, said in (([1, 2, 3], "malformed message: a list, not a training message"),
                       (codec.pack(spec())[0], "malformed message: a dict, not a training message"),
                       ({"__tuple": ["banana"]}, 'malformed message: "banana" is not a training message '
                                                 "(those are do, call, stop, resync)")):
        sock.sendall(raw_message(tree))
        assert until(sock, lambda m: m[0] == "notice") == ("notice", said)
    sock.sendall(raw_message({"__tuple": ["call", 5, "save_run_to", {"__tuple": []}, {}]}))
    reply = until(sock, lambda m: m[0] == "reply")
    assert reply[:3] == ("reply", 5, None) and type(reply[3]) is ValueError
    assert str(reply[3]) == 'malformed call: "save_run_to" is not one of the app\'s commands'
    for sent, said in ((message(("do", True, "set_threads", (10**9,), {})),  # (torch would try to start them)
                        "malformed do set_threads: n must be a whole number <= 1024 (or none), got 1000000000"),
                       (raw_message({"__tuple": ["do", True, "set_hparams", {"__tuple": []}, {"lr": 10**30}]}),
                        "malformed message: an integer too large to send")):
        sock.sendall(sent)  # kept from the process, which counts it answered and says why in its status
        assert until(sock, lambda m, said=said: m[0] == "status" and said in m[1]["notices"])
    viewer = welcomed(served, role="viewer")
    garbage = random.Random(8).randbytes(300)
    viewer.sendall(garbage)
    frames = []
    while not frames or frames[-1].kind == MESSAGE:  # what the run kept for a late viewer, then why it ends
        frames.append(read_frame(viewer, max_body=1 << 26, timeout=20))
    assert (frames[-1].kind, frames[-1].fields) == (
        "refused", {"reason": f"malformed frame: bad magic {garbage[:4]!r} (expected b'NXW1')"})
    with pytest.raises(ConnectionClosed):
        read_frame(viewer, timeout=10)
    viewer.close()
    step = until(sock, lambda m: m[0] == "status")[1]["fields"]["step"]
    assert until(sock, lambda m: m[0] == "status" and m[1]["fields"]["step"] > step + 5)  # trains on
    stop_and_close(sock)


def test_a_training_process_refuses_a_malformed_message_of_its_own_window_and_counts_it_answered():
    """The training process checks what its window sends too (a window of this machine, with a bug): a
    command of the wrong form is not applied, the window hears why, and is not left waiting for it."""
    from explorer.core.process.session import ProcessSession

    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        assert s._send(("do", True, "step", ("three",), {}))  # counted, as the window counts its steps
        assert s.wait(30)
        assert "malformed do step: n must be a whole number, got \"three\"" in s.pop_notices()
        replies = []
        s.run_command(commands.run_files, "one", "too many", on_done=lambda result, error: replies.append(error))
        assert s.wait(30) and len(replies) == 1 and type(replies[0]) is ValueError
        assert str(replies[0]) == "malformed call run_files: too many positional arguments"
        s.step(2)
        assert s.wait(30) and s.trainer.step == 2  # and it trains on
    finally:
        s.stop()
