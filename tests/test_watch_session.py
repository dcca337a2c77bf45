"""The viewer's session of a watched run (explorer.core.watch.session), headless, over a source in this process:
frames in, curves, snapshots, state and notices out; commands sent only when control was granted."""

import re
import time

import numpy as np
import pytest

from explorer.core.engine.session import FINISHED, PAUSED, RUNNING
from explorer.core.persist.commands import autosave_to, save_run_to
from explorer.core.watch.session import (
    FOLDER_READ_ONLY,
    FOLLOWING,
    READ_ONLY,
    WatchSession,
    clean_model,
    clean_rows,
    field_box,
    receptive_fields,
)
from tests.watch_fakes import (
    FakeSource,
    feed_run,
    make_frame,
    metric_rows,
    model_description,
    snapshot_arrays,
    snapshot_fields,
    welcome,
)


def until(condition, timeout=5.0):
    t_end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < t_end, "timed out"
        time.sleep(0.01)


@pytest.fixture
def run():
    """A session over a fake connection that granted control; closed after the test."""
    source = FakeSource()
    session = WatchSession(source, welcome(), where="127.0.0.1:5000")
    yield session, source
    session.close()


def test_metrics_rows_become_the_curves_and_the_step(run):
    session, source = run
    source.push("metrics", {"rows": metric_rows(1, 10)})
    until(lambda: len(session.metrics.steps) == 12)
    rows, end = session.metrics.steps_since(0)
    assert end == 12
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 11))
    assert rows[0] == {"step": 1.0, "time": 0.05, "loss": 1.0, "accuracy": 0.01}
    grads = [r for r in rows if "grad/features.0" in r]
    assert [r["step"] for r in grads] == [5.0, 10.0] and grads[0]["grad/classifier.2"] == pytest.approx(0.3)
    assert session.trainer.step == 10 and session.metrics.evals == []


def test_a_long_runs_rows_are_kept_as_means_of_ever_longer_windows(run, monkeypatch):
    """A fast script's row a step, kept for good in the window, grew without end: each batch is now averaged in
    windows that double every ROWS_PER_WINDOW_SIZE rows kept, its last step always a row of its own."""
    from explorer.core.engine import metrics

    monkeypatch.setattr(metrics, "ROWS_PER_WINDOW_SIZE", 5)
    session, source = run
    session._windows.reset()  # (made with the size before the patch)
    for batch in range(40):
        source.push("metrics", {"rows": metric_rows(10 * batch + 1, 10 * batch + 10)})
    until(lambda: session.trainer.step == 400)
    rows = session.metrics.steps
    assert len(rows) < 120  # (480 rows came: 400 steps and 80 gradient rows)
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps) and set(range(10, 401, 10)) <= set(steps)  # every batch's last step
    # the last window's loss rows and its gradient rows, averaged apart (merged, the panel took the loss for a
    # gradient row's and left it out)
    loss_row, grad_row = rows[-2:]
    assert set(loss_row) == {"step", "time", "loss", "accuracy"} and loss_row["step"] == 400
    assert loss_row["time"] == pytest.approx(20.0)
    before = max(r["step"] for r in rows[:-2] if "loss" in r)
    assert 2.0 / (1 + 400) < loss_row["loss"] < 2.0 / (1 + before)  # the mean of the steps since the row before
    assert grad_row["step"] == 400 and "grad/features.0" in grad_row and "loss" not in grad_row


def test_a_snapshot_frame_is_the_latest_snapshot(run):
    session, source = run
    assert session.latest_snapshot() is None
    source.push("snapshot", snapshot_fields(40), snapshot_arrays(40))
    until(lambda: session.latest_snapshot() is not None)
    snap = session.latest_snapshot()
    assert (snap.run_id, snap.seq, snap.step, snap.epoch, snap.time) == (0, 1, 40, 0, 2.0)
    assert snap.scalars["loss"] == pytest.approx(2 / 41) and snap.scalars["saturated/features.4"] == 0.6
    assert snap.arrays["act/features.3"].shape == (16, 10, 10)
    assert np.array_equal(snap.arrays["gates/rnn/l1r/f"], snapshot_arrays(40)["gates/rnn/l1r/f"])
    source.push("snapshot", snapshot_fields(41), snapshot_arrays(41))
    until(lambda: session.latest_snapshot().seq == 2)
    assert session.latest_snapshot().step == 41 and session.trainer.step == 41


def test_state_frames_set_the_state(run):
    session, source = run
    assert session.state == PAUSED and session.thread_idle()
    source.push("state", {"state": "running", "step": 7})
    until(lambda: session.state == RUNNING)
    assert not session.thread_idle() and session.trainer.step == 7 and not session.wait(timeout=0.05)
    source.push("state", {"state": "paused", "step": 9})
    assert session.wait(timeout=5)
    assert session.state == PAUSED and session.trainer.step == 9


def test_notices_and_refusals_of_the_script_are_the_windows_notices(run):
    session, source = run
    source.push("notice", {"text": "the window asked to pause"})
    source.push("refused", {"reason": "viewers may not control the run"})
    source.push("notice", {"text": "\x1b[31mred\x1b[0m"})
    until(lambda: len(session._notices) == 3)
    assert session.pop_notices() == ["the window asked to pause", "refused: viewers may not control the run",
                                     "\\x1b[31mred\\x1b[0m"]
    assert session.pop_notices() == []


def test_control_commands_go_to_the_script_when_control_was_granted(run):
    session, source = run
    assert session.control and not session.trainer.describe().endswith("read-only")
    session.start()
    session.pause()
    session.step(3)
    session.step(10**6)
    session.set_hparams(lr=0.05)
    session.request_erf("features.3", 2, 4, 5)
    assert source.commands()[-6:] == [{"cmd": "play"}, {"cmd": "pause"}, {"cmd": "step", "n": 3},
                                      {"cmd": "step", "n": 10000}, {"cmd": "set_lr", "lr": 0.05},
                                      {"cmd": "erf", "layer": "features.3", "channel": 2, "y": 4, "x": 5}]
    assert session.trainer.config["hparams"]["lr"] == 0.05
    assert session.pop_notices() == []


def test_the_learning_rate_is_checked_and_other_settings_refused(run):
    session, source = run
    before = list(source.sent)
    session.set_hparams(lr=-1.0)
    session.set_hparams(lr=float("nan"))
    session.set_hparams(batch_size=32)
    assert source.sent == before
    notices = session.pop_notices()
    assert notices[:2] == ["learning rate refused: -1.0 is not a positive number",
                           "learning rate refused: nan is not a positive number"]
    assert notices[2].startswith("batch_size: not available for a watched run")


def test_without_an_optimizer_the_learning_rate_cannot_be_set():
    source = FakeSource()
    session = WatchSession(source, welcome(optimizer=False))
    try:
        session.set_hparams(lr=0.1)
        assert source.commands() == [] and "optimizer=opt" in session.pop_notices()[0]
    finally:
        session.close()


@pytest.mark.parametrize("role, control, notice", [("control", False, READ_ONLY), ("viewer", True, FOLLOWING),
                                                   ("viewer", False, READ_ONLY)])
def test_a_read_only_run_sends_no_control_command_and_says_why(role, control, notice):
    source = FakeSource()
    session = WatchSession(source, welcome(role=role, control=control))
    try:
        assert not session.control
        session.start()
        session.pause()
        session.step(1)
        session.set_hparams(lr=0.1)
        assert [c["cmd"] for c in source.commands()] == []
        assert session.pop_notices() == [notice] * 4
        session.request_snapshot()  # any role may look
        session.request_erf("features.0", 0, 1, 1)
        assert source.commands() == [{"cmd": "snapshot"}, {"cmd": "erf", "layer": "features.0", "channel": 0,
                                                            "y": 1, "x": 1}]
    finally:
        session.close()


def test_subscribing_asks_for_a_snapshot_and_calls_back(run):
    session, source = run
    seen = []
    session.subscribe(seen.append, pull=True)
    assert source.commands() == [{"cmd": "snapshot"}]
    source.push("snapshot", snapshot_fields(3), snapshot_arrays(3))
    until(lambda: len(seen) == 1)
    assert seen[0] is session.latest_snapshot()
    session.unsubscribe()
    source.push("snapshot", snapshot_fields(4), snapshot_arrays(4))
    until(lambda: session.latest_snapshot().step == 4)
    assert len(seen) == 1


def test_the_stream_end_keeps_the_last_snapshot_with_a_notice(run):
    session, source = run
    feed_run(source, steps=20)
    until(lambda: session.state == RUNNING and session.latest_snapshot() is not None)
    last = session.latest_snapshot()
    source.push("bye", {"reason": "the training script ended"})
    until(lambda: session.state == FINISHED)
    assert session.ended and not session.is_alive
    assert session.latest_snapshot() is last and len(session.metrics.steps) == 24
    assert session.pop_notices() == ["The training run at 127.0.0.1:5000 ended (the training script ended); "
                                     "its last views stay on show."]
    sent = list(source.sent)
    session.start()
    assert source.sent == sent and "has ended" in session.pop_notices()[0]


def test_a_lost_connection_ends_the_stream_with_its_reason(run):
    session, source = run
    source.push("state", {"state": "running", "step": 1})
    until(lambda: session.state == RUNNING)
    source.lose("connection reset by peer")
    until(lambda: session.state == FINISHED)
    assert session.closed_reason == "connection reset by peer"
    assert session.pop_notices() == ["The training run at 127.0.0.1:5000 ended (connection reset by peer); "
                                     "its last views stay on show."]


def test_a_source_that_fails_ends_the_stream():
    class Broken(FakeSource):
        def next_frame(self, timeout=None):
            raise OSError("malformed frame: bad magic")

    session = WatchSession(Broken(), welcome(), where="h:1")
    try:
        until(lambda: session.state == FINISHED)
        assert session.pop_notices() == ["The training run at h:1 ended (malformed frame: bad magic); its last views "
                                         "stay on show."]
    finally:
        session.close()


def test_a_folder_brings_its_welcome_as_the_first_frame_and_is_not_live():
    source = FakeSource([make_frame("welcome", welcome(role="control", control=True))])
    feed_run(source, steps=5)
    session = WatchSession(source, where="runs/exp1", live=False)
    try:
        assert session.trainer.name == "MyCNN" and not session.control
        until(lambda: session.latest_snapshot() is not None)
        session.subscribe(pull=True)
        assert not session.request_erf("features.0", 0, 0, 0)
        session.pause()  # even when the script allowed control: a folder cannot pass a command on
        assert source.sent == []  # a folder is read, never written to
        notices = session.pop_notices()
        assert "attach to HOST:PORT" in notices[0] and notices[1] == FOLDER_READ_ONLY
    finally:
        session.close()


def test_without_a_welcome_the_session_is_not_made():
    with pytest.raises(ValueError, match="no model description came within 0.2 s"):
        WatchSession(FakeSource(), where="runs/x", wait=0.2)
    refused = FakeSource([make_frame("refused", {"reason": "wrong token"})])
    with pytest.raises(ValueError, match="h:1: wrong token"):
        WatchSession(refused, where="h:1")


def test_what_a_watched_run_cannot_do_is_a_notice(run):
    session, source = run
    session.reset()
    session.set_device("cpu")
    session.set_threads(2)     # the window sets these on every session: silently nothing
    session.set_step_rate(10)
    results = []
    session.run_command(save_run_to, "/tmp/x", {}, on_done=lambda r, e: results.append((r, type(e).__name__)))
    session.run_command(autosave_to, "/tmp/y", on_done=lambda r, e: results.append((r, type(e).__name__)))
    assert results == [(None, "NotImplementedError"), (None, "NotImplementedError")]
    notices = session.pop_notices()
    assert notices[0] == "Reset: not available for a watched run (the model is your script's)"
    assert notices[1] == "Device: not available for a watched run (your script chooses it)"
    assert notices[2].startswith("not available for a watched run: the model is in your script")
    assert len(notices) == 3  # the autosave is refused without a word
    assert source.commands() == [] and session.step_rate is None and session.in_own_process


def test_closing_closes_the_source_not_the_script(run):
    session, source = run
    assert session.is_alive
    assert session.close(timeout=5)
    assert source.closed and not session.is_alive
    assert session.pop_notices() == []  # the window closed it: nothing to announce


def test_the_device_and_description_come_from_the_model():
    session = WatchSession(FakeSource(), welcome(), where="127.0.0.1:5000")
    try:
        tr = session.trainer
        assert (tr.family, tr.device.type, str(tr.device)) == ("watch", "cuda", "cuda:0")
        assert tr.describe() == ("MyCNN at 127.0.0.1:5000 · 10 layers, "
                                 f"{sum(layer['params'] for layer in model_description()['layers']):,} parameters · "
                                 "torch 2.13.0 on cuda:0")
    finally:
        session.close()


def test_steps_per_second_come_from_the_scripts_clock(run):
    session, source = run
    source.push("metrics", {"rows": metric_rows(1, 40)})
    source.push("state", {"state": "running", "step": 40})
    until(lambda: session.state == RUNNING and session.trainer.step == 40)
    steps, samples = session.rates()
    assert steps == pytest.approx(20.0) and samples == 0.0  # a step every 0.05 s


# -- what a frame may hold, checked ------------------------------------------------------------------------

def test_a_hostile_model_description_is_cleaned():
    raw = {"name": 3, "device": ["x"], "control": "yes", "input_shape": [1, "a", -2, 5],
           "layers": [None, {"name": "a", "kind": "weird", "params": "many", "out_shape": "x"},
                      {"name": "c", "kind": "conv", "geometry": {"kernel": 3, "stride": [2, 1], "padding": "p"}},
                      {"name": "r", "kind": "recurrent", "cell": "transformer", "num_layers": -1}],
           "grad_layers": ["a", 4], "hparams": {"lr": "fast", "momentum": 0.9}}
    m = clean_model(raw)
    assert (m["name"], m["device"], m["control"], m["input_shape"]) == ("model", "?", False, [1, 5])
    assert [(layer["name"], layer["kind"], layer["params"], layer["out_shape"]) for layer in m["layers"]] == [
        ("a", "other", 0, []), ("c", "conv", 0, []), ("r", "recurrent", 0, [])]
    assert m["layers"][1]["geometry"] == {"kernel": [3, 3], "stride": [2, 1], "padding": [0, 0], "dilation": [1, 1]}
    assert (m["layers"][2]["cell"], m["layers"][2]["num_layers"]) == ("rnn", 1)
    assert m["grad_layers"] == ["a"] and m["hparams"] == {"momentum": 0.9}
    assert clean_model("not a dict")["layers"] == []


def test_metric_rows_keep_numbers_only():
    assert clean_rows([{"step": 1, "loss": 0.5, "name": "x", "ok": True}, {"loss": 1}, "row", {"step": "2"}]) == [
        {"step": 1.0, "loss": 0.5}]
    assert clean_rows("rows") == []


def test_bad_frames_are_skipped_and_the_stream_goes_on(run):
    session, source = run
    source.push("metrics", {"rows": "nonsense"})
    source.push("snapshot", {"step": "x", "scalars": [1, 2]}, {})
    source.push("mystery", {"a": 1})
    source.push("state", {"state": "flying"})
    source.push("metrics", {"rows": metric_rows(1, 1)})
    until(lambda: len(session.metrics.steps) == 1)
    snap = session.latest_snapshot()
    assert (snap.step, snap.scalars, snap.arrays) == (0, {}, {}) and session.state == PAUSED and session.is_alive


def test_receptive_fields_of_a_chain_of_convolutions_and_poolings():
    fields = receptive_fields(clean_model(model_description()))
    # conv 5 (pad 2) -> relu -> max 2/2 -> conv 5 -> sigmoid -> max 2/2; the LSTM has none
    assert fields == {
        "features.0": ((5, 5), (1, 1), (-2, -2)),
        "features.1": ((5, 5), (1, 1), (-2, -2)),
        "features.2": ((6, 6), (2, 2), (-2, -2)),
        "features.3": ((14, 14), (2, 2), (-2, -2)),
        "features.4": ((14, 14), (2, 2), (-2, -2)),
        "features.5": ((16, 16), (4, 4), (-2, -2)),
    }
    # unit (y 4, x 0) of features.3: rows 6..19, columns -2..11 (into the padding), clipped to the image
    assert field_box(fields["features.3"], 4, 0, (28, 28)) == ((6, 0, 19, 11), (6, -2, 19, 11))


def test_dilation_and_strides_per_axis():
    m = clean_model({"input_shape": [1, 1, 32, 32], "layers": [
        {"name": "a", "kind": "conv", "type": "Conv2d", "out_shape": [1, 4, 28, 16],
         "geometry": {"kernel": [3, 3], "stride": [1, 2], "padding": [0, 1], "dilation": [2, 1]}},
        {"name": "b", "kind": "other", "type": "Flatten", "out_shape": [1, 1792]}]})
    assert receptive_fields(m) == {"a": ((5, 3), (1, 2), (0, -1))}
    assert receptive_fields(clean_model({"input_shape": [1, 5, 3], "layers": m["layers"]})) == {}


# -- over a real connection: a FrameServer in this process, as a watched script runs one ---------------------

@pytest.fixture
def server(tmp_path, monkeypatch):
    """A watch server publishing a run's history, its latest snapshot and state, its token file written where
    the window looks for it."""
    from explorer.core.wire.auth import write_token_file
    from explorer.core.wire.server import FrameServer

    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "runtime"))
    srv = FrameServer(token="control-token", viewer_token="viewer-token", model=model_description())
    srv.start()
    host, port = srv.address
    write_token_file(None, {"host": host, "port": port, "token": "control-token", "viewer_token": "viewer-token",
                            "pid": 1, "name": "MyCNN"})
    srv.publish_metrics(metric_rows(1, 10))
    srv.publish("snapshot", snapshot_fields(10), snapshot_arrays(10), droppable=True, keep_as_latest=True)
    srv.publish("state", {"state": "running", "step": 10}, keep_as_latest=True)
    yield srv
    srv.close()


def test_a_watched_run_over_a_connection(server):
    from explorer.core.watch.attach import open_source

    host, port = server.address
    opened = open_source(f"{host}:{port}")  # the token from the script's token file
    session = WatchSession(opened.source, opened.welcome, where=opened.where, live=opened.live)
    try:
        assert session.control and session.trainer.name == "MyCNN" and opened.where == f"127.0.0.1:{port}"
        until(lambda: len(session.metrics.steps) == 12 and session.latest_snapshot() is not None
              and session.state == RUNNING)
        snap = session.latest_snapshot()
        assert snap.step == 10 and np.array_equal(snap.arrays["act/features.0"], snapshot_arrays(10)["act/features.0"])
        session.pause()
        assert server.wait_command(5) == {"cmd": "pause"}
        session.request_erf("features.3", 1, 2, 3)
        assert server.wait_command(5) == {"cmd": "erf", "layer": "features.3", "channel": 1, "y": 2, "x": 3}
        server.publish("state", {"state": "paused", "step": 11})
        until(lambda: session.state == PAUSED)
        server.close()  # the script ends: bye
        until(lambda: session.state == FINISHED)
        assert session.latest_snapshot() is snap
        assert session.pop_notices() == [f"The training run at 127.0.0.1:{port} ended (the training script ended); "
                                         "its last views stay on show."]
    finally:
        session.close()


def test_following_a_run_read_only_over_a_connection(server):
    from explorer.core.watch.attach import open_source

    host, port = server.address
    opened = open_source(f"{host}:{port}", follow=True)  # the viewer token of the token file
    session = WatchSession(opened.source, opened.welcome, where=opened.where)
    try:
        assert session.role == "viewer" and not session.control
        session.pause()
        assert session.pop_notices() == [FOLLOWING]
        session.request_snapshot()  # a viewer may ask to look
        assert server.wait_command(5) == {"cmd": "snapshot"}
        assert server.commands() == []
    finally:
        session.close()


def test_attach_faults_name_the_address(server, tmp_path):
    from explorer.core.watch.attach import AttachError, open_source, read_token

    host, port = server.address
    with pytest.raises(AttachError, match=f"^127.0.0.1:{port}: wrong token$"):
        open_source(f"{host}:{port}", token="not-the-token")
    (tmp_path / "bad.json").write_text('{"host": "h"}')
    with pytest.raises(AttachError, match="bad.json: 'port' must be a port number"):
        read_token(tmp_path / "bad.json")
    with pytest.raises(AttachError, match=r"^127.0.0.1:9: no token \(pass --token or --token-file; none for 127.0.0.1:9 in "):
        open_source("127.0.0.1:9")
    with pytest.raises(AttachError, match="no such folder"):
        open_source(str(tmp_path / "missing"))
    with pytest.raises(AttachError, match="expected HOST:PORT"):
        open_source("localhost:99999")


def test_a_token_file_is_used_only_for_the_address_its_script_listens_on(tmp_path, monkeypatch):
    """The runtime folder's token files are of scripts on this computer: a token goes only to the address
    its file names (or to this computer's loopback names for it), never to another host on the same port."""
    from explorer.core.watch.attach import AttachError, find_token, open_source
    from explorer.core.wire.auth import write_token_file

    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "runtime"))
    here = write_token_file(None, {"host": "127.0.0.1", "port": 7311, "token": "t" * 32})
    everywhere = write_token_file(None, {"host": "0.0.0.0", "port": 7312, "token": "u" * 32})
    assert find_token(7311, "127.0.0.1")[0] == here
    assert find_token(7311, "localhost")[0] == here
    assert find_token(7311, "127.0.0.2") is None and find_token(7311, "nohost.invalid") is None
    assert find_token(7311, "10.0.0.5") is None and find_token(7312, "10.0.0.5") is None
    assert find_token(7312, "127.0.0.1")[0] == everywhere and find_token(7312, "::1")[0] == everywhere
    for target in ("127.0.0.2:7311", "nohost.invalid:7311", "10.0.0.5:7312"):
        with pytest.raises(AttachError, match=f"^{re.escape(target)}: no token "):
            open_source(target)  # refused before any connection: the token is not sent anywhere


def test_attaching_to_a_port_where_something_else_answers_says_so():
    """A web server (or any other protocol) on the port: one line that says it is not what attach talks to."""
    import socket
    import threading

    from explorer.core.watch.attach import AttachError, open_source

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_like_a_web_server():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.recv(4096)

    thread = threading.Thread(target=answer_like_a_web_server, daemon=True)
    thread.start()
    try:
        with pytest.raises(AttachError) as caught:
            open_source(f"127.0.0.1:{port}", token="t" * 32, timeout=5.0)
        assert str(caught.value).startswith(f"127.0.0.1:{port}: what answers there is not a watched script or a "
                                            "training server (malformed frame: bad magic b'HTTP'")
        assert "\n" not in str(caught.value)
    finally:
        listener.close()
        thread.join(5)
