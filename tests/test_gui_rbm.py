"""The window and the RBM panel, driven the way a user drives them (offscreen Qt)."""

import gc
import gzip
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.session import ERROR, RUNNING, TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.runfolder import save_run
from explorer.gui import gc_guard
from explorer.gui.main_window import MainWindow
from tests.helpers import open_window


def tiny_config(**kw):
    cfg = dict(dataset="bars", bars_size=6, hidden=16, batch_size=20, device="cpu", seed=0)
    cfg.update(kw)
    return RBMConfig(**cfg)


@pytest.fixture
def window(qtbot, settings):
    win = open_window(qtbot, settings, tiny_config())
    yield win
    win.close()


def button_for(win, action):
    tb = win.findChild(QtWidgets.QToolBar, "trainingToolbar")
    return tb.widgetForAction(action)


def click(qtbot, win, action):
    qtbot.mouseClick(button_for(win, action), QtCore.Qt.MouseButton.LeftButton)


def test_play_shows_live_views_then_pause_stops(qtbot, window):
    panel = window.panel
    qtbot.waitUntil(lambda: panel.filters.updates >= 1, timeout=5000)  # the initial snapshot
    before = panel.filters.current_image()
    updates = panel.filters.updates
    click(qtbot, window, window.act_play)
    assert window.session.state == RUNNING
    qtbot.waitUntil(lambda: panel.filters.updates >= updates + 3 and window.session.trainer.step > 50, timeout=10000)
    after = panel.filters.current_image()
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(after)), "filters did not change while training"
    qtbot.waitUntil(lambda: len(panel.error_curve.series("step")[0]) > 10, timeout=5000)
    assert "training" in window.status_state.text()
    assert window.act_play.text().endswith("Pause")
    click(qtbot, window, window.act_play)  # the same button pauses
    assert window.session.wait(5)
    frozen = window.session.trainer.step
    qtbot.wait(200)
    assert window.session.trainer.step == frozen
    assert "paused" in window.status_state.text()


def test_step_key_advances_exactly_one(qtbot, window):
    s = window.session
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S)
    qtbot.waitUntil(lambda: s.trainer.step == 1, timeout=5000)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S)
    qtbot.waitUntil(lambda: s.trainer.step == 2, timeout=5000)
    s.wait(5)
    qtbot.wait(100)
    assert s.trainer.step == 2
    # the views show the stepped model
    qtbot.waitUntil(lambda: window.panel._last_seq == s.latest_snapshot().seq and
                    s.latest_snapshot().step == 2, timeout=5000)


def test_space_plays_and_pauses(qtbot, window):
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert window.session.state == RUNNING
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert window.session.state != RUNNING


def test_reset_key_restarts_from_seed(qtbot, window):
    s = window.session
    s.step(30)
    s.wait(5)
    qtbot.waitUntil(lambda: len(window.panel.error_curve.series("step")[0]) == 30, timeout=5000)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_R)
    qtbot.waitUntil(lambda: s.run_id == 1 and s.trainer.step == 0, timeout=5000)
    qtbot.waitUntil(lambda: len(window.panel.error_curve.series("step")[0]) == 0, timeout=5000)
    fresh = RBMTrainer(tiny_config())
    assert np.array_equal(s.trainer.rbm.W.numpy(), fresh.rbm.W.numpy())


def test_learning_rate_applies_live(qtbot, window):
    window.panel.settings.lr.setValue(0.25)
    window.session.step()
    window.session.wait(5)
    assert window.session.trainer.cd.lr == pytest.approx(0.25)
    assert window.panel.settings.pending_label.text() == ""


def test_hidden_units_change_says_reset_and_applies_on_reset(qtbot, window):
    st = window.panel.settings
    st.hidden.setValue(25)
    assert "Reset" in st.pending_label.text() and st.apply_reset.isEnabled()
    window.session.step()
    window.session.wait(5)
    assert window.session.trainer.rbm.n_hidden == 16
    qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.trainer.rbm.n_hidden == 25, timeout=5000)
    qtbot.waitUntil(lambda: not st.apply_reset.isEnabled(), timeout=5000)
    qtbot.waitUntil(lambda: window.panel.hidden.image.image is not None
                    and window.panel.hidden.image.image.shape[1] == 25, timeout=5000)


def test_close_while_training_stops_the_thread(qtbot, settings):
    win = MainWindow(tiny_config(), settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.toggle_play()
    qtbot.waitUntil(lambda: win.session.trainer.step > 20, timeout=5000)
    session = win.session
    win.close()
    assert not session.is_alive
    assert not [t for t in threading.enumerate() if t.name.endswith("-thread") and t.is_alive()]


def test_layout_and_refresh_rate_are_restored(qtbot, settings):
    win = MainWindow(tiny_config(), settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.docks["rbmDreamsDock"].hide()
    win.refresh_spin.setValue(7)
    assert win.timer.interval() == 1000 // 7 and win.session.snapshot_hz == 7
    win.close()
    win2 = MainWindow(tiny_config(), settings=settings)
    qtbot.addWidget(win2)
    win2.show()
    try:
        assert not win2.docks["rbmDreamsDock"].isVisible()
        assert win2.docks["rbmFiltersDock"].isVisible()
        assert win2.refresh_spin.value() == 7
    finally:
        win2.close()


def test_open_run_folder_shows_its_state(qtbot, window, tmp_path):
    s = TrainingSession(RBMTrainer(tiny_config(hidden=12)), eval_every=10)
    s.step(40)
    s.wait(10)
    save_run(s, tmp_path / "run")
    s.close()
    assert window.open_run(tmp_path / "run")
    assert window.session.trainer.step == 40 and window.session.trainer.rbm.n_hidden == 12
    qtbot.waitUntil(lambda: len(window.panel.error_curve.series("step")[0]) == 40, timeout=5000)
    qtbot.waitUntil(lambda: len(window.panel.error_curve.series("heldout")[0]) == 5, timeout=5000)  # 0,10,..,40
    qtbot.waitUntil(lambda: window.panel.filters.updates > 0, timeout=5000)
    assert window.panel.settings.hidden.value() == 12
    assert "step 40" in window.status_epoch.text()


def test_a_saved_session_brings_its_panel_layout_back(qtbot, window, tmp_path):
    window.docks["rbmDreamsDock"].hide()  # the user closed a view before saving
    window.step_once()
    qtbot.waitUntil(lambda: window.session.trainer.step == 1, timeout=5000)
    assert window.save_run(tmp_path / "session").wait(10)
    window.docks["rbmDreamsDock"].show()
    assert window.open_run(tmp_path / "session")
    assert not window.docks["rbmDreamsDock"].isVisible()  # as it was saved
    assert window.docks["rbmFiltersDock"].isVisible()
    assert window.session.trainer.step == 1


def test_corrupt_run_folder_gives_a_message_and_the_app_goes_on(qtbot, window, tmp_path):
    (tmp_path / "run.json").write_text("{broken")
    old = window.session
    assert not window.open_run(tmp_path)
    assert window.notice.isVisible() and "corrupt JSON" in window.notice.label.text()
    assert window.session is old and old.is_alive


def write_idx(folder, n=60, size=7):
    rng = np.random.default_rng(1)
    imgs = (rng.random((n, size, size)) * 255).astype(np.uint8)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", n, size, size) + imgs.tobytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", n)
                                                    + rng.integers(0, 10, n).astype(np.uint8).tobytes())


def test_data_folder_switches_to_mnist(qtbot, window, tmp_path):
    write_idx(tmp_path)
    window.use_data_folder(str(tmp_path))
    qtbot.waitUntil(lambda: window.session.trainer.dataset.name == "mnist", timeout=5000)
    qtbot.waitUntil(lambda: "mnist" in window.panel.description.text(), timeout=5000)
    assert window.session.trainer.rbm.n_visible == 49


def test_bad_data_folder_is_reported_and_training_goes_on(qtbot, window, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
    window.use_data_folder(str(tmp_path))
    qtbot.waitUntil(lambda: window.session.state == ERROR, timeout=5000)
    qtbot.waitUntil(lambda: "t10k" in window.notice.label.text(), timeout=5000)
    assert window.session.trainer.dataset.name == "bars"  # still the data it had
    assert window.session.trainer.config.dataset == "bars"
    window.toggle_play()  # and it trains on
    qtbot.waitUntil(lambda: window.session.trainer.step > 5, timeout=5000)


def test_diverging_run_pauses_with_a_message(qtbot, window):
    s = window.session
    s.call_in_thread(lambda: s.trainer.rbm.W.fill_(float("nan")))
    window.toggle_play()
    qtbot.waitUntil(lambda: s.state == ERROR, timeout=5000)
    qtbot.waitUntil(lambda: "diverged" in window.notice.label.text(), timeout=5000)
    assert window.notice.isVisible()


def test_device_menu_offers_only_what_exists(window):
    import torch
    items = [window.device_combo.itemText(i) for i in range(window.device_combo.count())]
    assert items[:2] == ["auto", "cpu"]
    assert ("cuda" in items) == torch.cuda.is_available()


def test_snapshot_command_writes_a_png(tmp_path):
    out = tmp_path / "panel.png"
    r = subprocess.run([sys.executable, "-m", "explorer", "snapshot", "rbm", "--steps", "30", "--dataset", "bars",
                        "--hidden", "16", "--out", str(out), "--size", "1200x800"],
                       capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PySide6 import QtGui
    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1200, 800)


def test_redraws_keep_none_and_bool_references_intact(qtbot, window):
    """Some Qt binding releases drop a reference to None/True/False on each call; on Python < 3.12
    the app then aborts ("deallocating None") after minutes of live redraws. Redraw a few hundred
    times and check the counts do not fall."""
    s = window.session
    s.step(40)
    s.wait(5)
    qtbot.waitUntil(lambda: s.latest_snapshot() is not None and s.latest_snapshot().step == 40, timeout=5000)
    snap = s.latest_snapshot()
    panel = window.panel
    app = QtWidgets.QApplication.instance()

    def redraw():
        panel.show_snapshot(snap)
        panel.error_curve.append("step", [1.0], [0.5])
        panel.error_curve.redraw()
        window.repaint()
        app.processEvents()

    def counts():
        # Collect first, so objects freed by the collector (the window's own collector runs from a
        # timer, and may free a previous test's widgets in the middle of the loop) do not read as
        # references lost.
        gc.collect()
        return (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))

    redraw()
    collector = gc_guard.install()
    collector.timer.stop()
    try:
        before = counts()
        for _ in range(200):
            redraw()
        after = counts()
    finally:
        collector.timer.start()
    assert all(a >= b - 50 for a, b in zip(after, before)), (before, after)


def test_the_window_keeps_a_core_for_itself(qtbot, window, monkeypatch):
    import os

    from explorer.core.engine.session import DEFAULT_THREADS

    expected = max(1, (os.cpu_count() or 1) - 1)
    window.step_once()
    qtbot.waitUntil(lambda: window.session.threads == expected, timeout=5000)
    window._update_status()
    assert f"{expected} thread" in window.status_device.text()
    window.act_keep_core.trigger()  # Training > Keep a core for the window: off
    assert not window.act_keep_core.isChecked()
    window.step_once()
    qtbot.waitUntil(lambda: window.session.threads == DEFAULT_THREADS, timeout=5000)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    window.act_keep_core.trigger()  # on again, on an 8-core machine: 7 for training
    window.step_once()
    qtbot.waitUntil(lambda: window.session.threads == 7, timeout=5000)


def test_the_status_bar_says_how_many_threads_training_chose_and_why(qtbot, window):
    window.step_once()
    assert window.session.wait(10)
    s = window.session
    s.threads, s.threads_in_use, s.thread_note = 4, 1, "1 thread 1.0 ms/step, 2 threads 2.9 ms/step, 4 threads 3.1 ms/step"
    window._update_status()
    assert "cpu · 1 of 4 threads" in window.status_device.text()
    assert "2 threads 2.9 ms/step" in window.status_device.toolTip()
