"""The window on a training server over loopback (a real server, real training processes), as a user drives
it: Training > Connect moves the model there with its weights, the views draw, Play/Pause, live settings,
save and export write here; a dropped connection is a notice with Connect again, and the curves come back
whole; a refused connection leaves the model where it was; Train on this computer brings it back."""

import json
import socket

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets
from safetensors.numpy import load as load_safetensors

from explorer.core.engine.session import PAUSED, RUNNING
from explorer.core.persist import commands
from explorer.core.persist.runfolder import load_run
from explorer.core.remote.client import RemoteSession, ServerAddress
from explorer.core.remote.server import TrainingServer
from explorer.gui.window.remote import ConnectDialog, fetch
from tests import helpers
from tests.helpers import tiny_rbm_config

TOKEN = "w" * 32


@pytest.fixture
def server():
    s = TrainingServer(token=TOKEN, hello_timeout=2.0)
    s.start()
    yield s
    s.close()


def address(server, token=TOKEN):
    return ServerAddress(server.address[0], server.address[1], token)


def open_window(qtbot, settings):
    return helpers.open_window(qtbot, settings, tiny_rbm_config(), size=(1400, 900))


def connect_through_the_dialog(qtbot, win, server, token=TOKEN):
    """Training > Connect to a training server…: the user types the address and the token and clicks Connect."""
    seen = []

    def fill_and_connect():
        dialog = QtWidgets.QApplication.activeModalWidget()
        seen.append(dialog)
        assert isinstance(dialog, ConnectDialog)
        dialog.address.setText(f"{server.address[0]}:{server.address[1]}")
        assert not dialog.ok_button.isEnabled()  # no token yet
        dialog.token_edit.setText(token)
        assert dialog.ok_button.isEnabled()
        dialog.ok_button.click()

    QtCore.QTimer.singleShot(200, fill_and_connect)
    win.act_connect.trigger()
    assert seen, "the dialog did not open"


def test_a_model_moves_to_the_server_and_the_window_drives_it_as_a_local_one(qtbot, settings, server, tmp_path):
    win = open_window(qtbot, settings)
    try:
        local = win.session
        local.step(10)
        assert local.wait(30) and local.trainer.step == 10
        weights = load_safetensors(fetch(local, commands.run_files)["weights.safetensors"].tobytes())
        connect_through_the_dialog(qtbot, win, server)
        s = win.session
        assert isinstance(s, RemoteSession) and s is not local
        assert s.trainer.step == 10  # its weights and curves came along
        there = load_safetensors(fetch(s, commands.run_files)["weights.safetensors"].tobytes())
        assert set(there) == set(weights) and all(np.array_equal(there[k], weights[k]) for k in weights)
        qtbot.waitUntil(lambda: len(s.metrics.steps) == 10, timeout=10000)
        assert server.runs() == [s.server_run]
        assert f"on {server.address[0]}:{server.address[1]}" in win.status_device.text()
        assert "Training on the training server" in win.notice.label.text()
        assert win.act_train_here.isEnabled() and not win.act_reconnect.isEnabled()
        assert [win.device_combo.itemText(i) for i in range(win.device_combo.count())] == s.server_devices
        assert not win.act_open_data.isEnabled()  # the server reads its own data only
        assert win.training_threads() is None
        drawn = win.panel._last_seq
        win.toggle_play()
        qtbot.waitUntil(lambda: s.trainer.step > 40 and win.panel._last_seq > drawn, timeout=30000)
        win._on_setting_changed("lr", 0.0123)  # a live setting, as the settings box sends it
        win.toggle_play()
        assert s.wait(30) and s.state == PAUSED
        qtbot.waitUntil(lambda: s.trainer.config.lr == pytest.approx(0.0123), timeout=10000)
        assert win.save_run(tmp_path / "run").wait(60)
        run = load_run(tmp_path / "run")
        assert run.step == s.trainer.step and run.config["lr"] == pytest.approx(0.0123)
        assert "gui" in run.info  # the window's layout travelled with it, as with a local save
        assert win.model_exporter.export_model("safetensors", tmp_path / "m.safetensors").wait(60)
        assert (tmp_path / "m.safetensors").stat().st_size > 0
        # a run folder opened here goes to the server to train on
        assert win.open_run(tmp_path / "run")
        s = win.session
        assert isinstance(s, RemoteSession) and s.trainer.step == run.step
        # and back: the model comes home with what it learnt there
        step = s.trainer.step
        assert win.train_here()
        assert not isinstance(win.session, RemoteSession) and win.session.trainer.step == step
        assert not win.act_train_here.isEnabled()
        qtbot.waitUntil(lambda: server.runs() == [], timeout=30000)
    finally:
        win.close()


def test_a_lenet_on_the_server_steps_resets_and_scrubs_its_timeline_from_the_window(qtbot, settings, server):
    """The CNN panel, driven over the server as a local one is: Step does exactly one step, Play draws
    the views, the timeline bar scrubs back to a kept snapshot and Live returns, Reset starts the
    model again from its seed on the server."""
    from explorer.core.families.cnn.trainer import CNNConfig

    config = CNNConfig(device="cpu", batch_size=8, eval_samples=32, n_gallery=4)
    win = helpers.open_window(qtbot, settings, config, size=(1400, 900))
    try:
        connect_through_the_dialog(qtbot, win, server)
        s = win.session
        assert isinstance(s, RemoteSession) and win.family == "cnn"
        assert server.runs() == [s.server_run]
        before = s.trainer.step
        win.act_step.trigger()  # the toolbar's Step
        qtbot.waitUntil(lambda: s.trainer.step == before + 1 and s.state == PAUSED, timeout=30000)
        panel, bar = win.panel, win.timeline_bar
        drawn = panel._last_seq
        win.act_play.trigger()
        qtbot.waitUntil(lambda: panel._last_seq > drawn and len(panel.timeline) >= 3, timeout=60000)
        win.act_play.trigger()
        assert s.wait(30) and s.state == PAUSED
        kept = panel.timeline.steps()
        assert kept == sorted(kept) and kept[-1] > before + 1
        bar.show_index(0)  # drag the slider to its left end
        assert panel.viewing is not None and panel.viewing.step == kept[0]
        assert bar.scrubbed
        bar.go_live()
        assert panel.viewing is None and not bar.scrubbed
        trained = s.trainer.step
        assert trained > before + 1
        win.act_reset.trigger()
        qtbot.waitUntil(lambda: s.trainer.step == 0, timeout=30000)
        assert server.runs() == [s.server_run] and s.state == PAUSED
        qtbot.waitUntil(lambda: len(panel.timeline) <= 1, timeout=30000)  # the old model's views are gone
    finally:
        win.close()


def test_the_devices_offered_are_the_servers_not_this_computers(qtbot, settings, server, monkeypatch):
    """A server with GPUs that this computer lacks: the device box lists the server's devices while the
    model trains there, and this computer's again when it comes back."""
    from explorer.core.engine import devices

    # the server's process asks its own list at each welcome (the window's list was read at start)
    monkeypatch.setattr(devices, "available_devices", lambda: ["cpu", "cuda:0", "cuda:1"])
    win = open_window(qtbot, settings)
    try:
        here = [win.device_combo.itemText(i) for i in range(win.device_combo.count())]
        assert "cuda:1" not in here
        connect_through_the_dialog(qtbot, win, server)
        assert isinstance(win.session, RemoteSession)
        assert win.session.server_devices == ["cpu", "cuda:0", "cuda:1"]
        assert [win.device_combo.itemText(i) for i in range(win.device_combo.count())] == ["cpu", "cuda:0", "cuda:1"]
        assert win.train_here()
        assert [win.device_combo.itemText(i) for i in range(win.device_combo.count())] == here
    finally:
        win.close()


def test_a_dropped_connection_is_a_notice_and_connect_again_brings_back_the_curves(qtbot, settings, server):
    win = open_window(qtbot, settings)
    try:
        assert win.connect_server(address(server))
        s = win.session
        s.auto_reconnect = False  # the user reconnects (the window also retries by itself, with back-off)
        win.set_step_rate(100)
        win.toggle_play()
        qtbot.waitUntil(lambda: s.trainer.step > 10, timeout=30000)
        s._conn.sock.shutdown(socket.SHUT_RDWR)  # the network drops
        qtbot.waitUntil(lambda: "Lost the connection" in win.notice.label.text(), timeout=10000)
        assert win.notice.property("error")
        assert not win.train_here() and win.session is s  # its weights are on the server: nothing moves
        assert "connect again first" in win.notice.label.text()
        qtbot.waitUntil(lambda: win.act_reconnect.isEnabled(), timeout=2000)  # (the status line: 5 times a second)
        assert "lost, connecting again" in win.status_device.text()
        assert server.runs() == [s.server_run]  # the server trains on
        qtbot.wait(1000)
        win.notice.action_buttons[0].click()  # "Connect again"
        assert s.connected and not win.act_reconnect.isEnabled()
        qtbot.waitUntil(lambda: len(s.metrics.steps) > 0 and s.metrics.steps[-1]["step"] > 100, timeout=30000)
        steps = [int(r["step"]) for r in s.metrics.steps]
        assert steps == list(range(1, steps[-1] + 1))  # every step once: those trained while away included
        assert s.state == RUNNING
    finally:
        win.close()
    qtbot.waitUntil(lambda: server.runs() == [], timeout=30000)  # closing the window ends its run there


def test_a_refused_connection_leaves_the_model_where_it_was(qtbot, settings, server):
    win = open_window(qtbot, settings)
    try:
        local = win.session
        connect_through_the_dialog(qtbot, win, server, token="not-the-token")
        assert win.session is local and not isinstance(local, RemoteSession)
        text = win.notice.label.text()
        assert "Could not train on the training server" in text and "wrong token" in text
        assert win.remote_server is None and not win.act_train_here.isEnabled()
        local.step(2)
        assert local.wait(30) and local.trainer.step == 2  # and it still trains here
        dead = ServerAddress("127.0.0.1", 1, TOKEN)  # nothing listens there
        assert not win.connect_server(dead) and win.session is local
        assert "127.0.0.1:1" in win.notice.label.text()
    finally:
        win.close()


def test_the_dialog_reads_the_token_file_serve_wrote(qtbot, tmp_path):
    dialog = ConnectDialog()
    qtbot.addWidget(dialog)
    path = tmp_path / "serve.token"
    path.write_text(json.dumps({"host": "127.0.0.1", "port": 7100, "token": "abc", "tls": True}))
    assert dialog.load_token_file(path)
    assert dialog.server() == ServerAddress("127.0.0.1", 7100, "abc", tls=True)
    assert dialog.cafile.isEnabled() and dialog.ok_button.isEnabled()
    dialog.cafile.setText(str(tmp_path / "ca.pem"))
    assert dialog.server().cafile == str(tmp_path / "ca.pem")
    path.write_text('{"host": "x", "port": "no"}')
    assert not dialog.load_token_file(path)
    assert str(path) in dialog.file_note.text() and "'port' must be a port number" in dialog.file_note.text()
    dialog.token_edit.setText("")
    assert not dialog.ok_button.isEnabled() and dialog.server() is None


def test_closing_the_window_ends_its_run_on_the_server(qtbot, settings, server):
    win = open_window(qtbot, settings)
    assert win.connect_server(address(server))
    win.toggle_play()
    qtbot.waitUntil(lambda: win.session.trainer.step > 3, timeout=30000)
    assert len(server.runs()) == 1
    win.close()
    qtbot.waitUntil(lambda: server.runs() == [], timeout=30000)


VIEWER_TOKEN = "v" * 32


def test_a_student_window_follows_the_teachers_run_read_only_and_then_the_next_one(qtbot, settings):
    """File > Attach (or Training > Connect with Follow ticked) with the viewer token: the window shows the
    run the teacher's window trains on the server, cannot control it, scrubs its own timeline, and follows the
    teacher to the next model."""
    from explorer.core.families.cnn.trainer import CNNConfig
    from explorer.core.remote.client import FollowSession

    server = TrainingServer(token=TOKEN, viewer_token=VIEWER_TOKEN, hello_timeout=2.0)
    server.start()
    teacher = RemoteSession(tiny_rbm_config(), server=address(server), threads=1, snapshot_hz=20)
    win = None
    try:
        teacher.set_step_rate(100)
        teacher.subscribe()
        teacher.start()
        win = open_window(qtbot, settings)
        own = win.session
        seen = []

        def tick_follow_and_go():
            dialog = QtWidgets.QApplication.activeModalWidget()
            seen.append(dialog)
            dialog.address.setText(f"{server.address[0]}:{server.address[1]}")
            dialog.token_edit.setText(VIEWER_TOKEN)
            dialog.follow_box.setChecked(True)
            assert dialog.ok_button.text() == "Follow"
            dialog.ok_button.click()

        QtCore.QTimer.singleShot(200, tick_follow_and_go)
        win.act_connect.trigger()
        assert seen, "the dialog did not open"
        s = win.session
        assert isinstance(s, FollowSession) and s is not own and s.server_run == teacher.server_run
        assert "Following" in win.notice.label.text() and "read-only" in win.notice.label.text()
        # nothing here controls the teacher's run
        for widget in (win.act_play, win.act_step, win.act_reset, win.act_save_run, win.panel.settings,
                       win.device_combo):
            assert not widget.isEnabled()
        assert win.remote_server is None  # the student's own next model trains on this computer
        # the views draw the teacher's model, and the timeline keeps its snapshots for this window alone
        drawn = win.panel._last_seq
        qtbot.waitUntil(lambda: win.panel._last_seq > drawn and len(win.panel.timeline) >= 3, timeout=30000)
        bar = win.timeline_bar
        first = win.panel.timeline.steps()[0]
        bar.show_index(0)  # the student drags the slider back: this window shows a kept snapshot
        assert win.panel.viewing is not None and win.panel.viewing.step == first
        assert bar.scrubbed and teacher.state == RUNNING  # the teacher's run trains on
        qtbot.waitUntil(lambda: len(win.panel.timeline) >= 4, timeout=30000)
        assert win.panel.viewing.step == first  # new snapshots do not pull it back
        bar.go_live()
        assert win.panel.viewing is None and not bar.scrubbed
        qtbot.waitUntil(lambda: len(s.metrics.steps) >= 30, timeout=30000)
        win.toggle_play()  # Space: refused here, said why
        assert teacher.state == RUNNING
        qtbot.waitUntil(lambda: "follows the run" in win.notice.label.text(), timeout=5000)
        # the teacher moves on to a LeNet: the student's window follows, into the CNN panel
        teacher.stop()
        teacher = RemoteSession(CNNConfig(device="cpu", batch_size=8, eval_samples=32, n_gallery=4),
                                server=address(server), threads=1, snapshot_hz=20)
        teacher.subscribe()
        teacher.start()
        qtbot.waitUntil(lambda: isinstance(win.session, FollowSession) and win.session is not s
                        and win.family == "cnn", timeout=30000)
        assert win.session.server_run == teacher.server_run
        assert not win.act_play.isEnabled()
        # the student clicks a unit of the first layer's maps: its receptive field shows here, asked of the
        # run, while the teacher's own selection there stays as it was
        panel = win.panel
        qtbot.waitUntil(lambda: bool(panel._feature_index), timeout=30000)
        teachers_unit = teacher.latest_snapshot().arrays["unit"].tolist()
        panel._unit_clicked(0, 1, 4, 6)
        qtbot.waitUntil(lambda: panel._own_view is not None, timeout=30000)
        assert panel._own_view["unit"].tolist() == [panel._feature_index[0], 1, 4, 6]
        qtbot.waitUntil(lambda: "map 1, position (4, 6)" in panel.unit_label.text(), timeout=10000)
        assert teacher.latest_snapshot().arrays["unit"].tolist() == teachers_unit
    finally:
        if win is not None:
            win.close()
        teacher.stop()
        server.close()


def test_the_window_keeps_drawing_while_a_slow_server_answers(qtbot, settings, monkeypatch):
    """Connecting waits for the server (here 2 s to make its welcome) off the GUI thread: the window's
    timers keep running meanwhile (its views draw, it never reads as frozen), and clicks wait until done."""
    import time

    import explorer.core.engine.devices as devices

    server = TrainingServer(token=TOKEN, hello_timeout=5.0)
    server.start()
    win = open_window(qtbot, settings)
    try:
        slow = devices.available_devices

        def welcome_made_slowly():
            time.sleep(2.0)
            return slow()

        monkeypatch.setattr(devices, "available_devices", welcome_made_slowly)
        ticks = []
        timer = QtCore.QTimer()
        timer.timeout.connect(lambda: ticks.append(time.monotonic()))
        timer.start(50)
        t0 = time.monotonic()
        assert win.connect_server(address(server))
        waited = time.monotonic() - t0
        timer.stop()
        assert waited >= 2.0 and isinstance(win.session, RemoteSession)
        during = [t for t in ticks if t0 < t < t0 + waited]
        assert len(during) >= 20  # a tick every 50 ms went on through the 2 s wait
        assert max(b - a for a, b in zip(during, during[1:])) < 0.5
    finally:
        win.close()
        server.close()
