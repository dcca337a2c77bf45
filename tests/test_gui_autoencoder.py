"""The autoencoder panel in the main window, driven as a user drives it."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.gui.main_window import MainWindow
from tests.helpers import open_window


@pytest.fixture
def window(qtbot, settings):
    win = open_window(qtbot, settings, AutoencoderConfig(dataset="digits", hidden=16, batch_size=32, device="cpu",
                                                         noise="gaussian", noise_level=0.3))
    yield win
    win.close()


def test_play_shows_the_triptych_and_filters_changing(qtbot, window):
    panel = window.panel
    assert window.family == "autoencoder" and panel.family == "autoencoder"
    assert window.docks["aeFiltersDock"].isVisible()
    assert "rbmFiltersDock" not in window.docks  # another family's panel is only built when it is shown
    qtbot.waitUntil(lambda: panel.filters.updates >= 1, timeout=5000)
    before = panel.filters.current_image()
    window.toggle_play()
    assert window.session.state == RUNNING
    qtbot.waitUntil(lambda: window.session.trainer.step > 100 and panel.filters.updates > 3, timeout=15000)
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(panel.filters.current_image()))
    qtbot.waitUntil(lambda: len(panel.loss_curve.series("step")[0]) > 10, timeout=5000)
    # the triptych has three rows: clean, corrupted (differs from clean), reconstruction
    img = panel.triptych.current_image()
    h = 8
    clean, noisy = img[:h], img[h + 1:2 * h + 1]
    assert not np.allclose(np.nan_to_num(clean), np.nan_to_num(noisy))
    window.toggle_play()
    assert window.session.wait(5)


def test_noise_controls_act_on_the_running_training(qtbot, window):
    st = window.panel.settings
    window.toggle_play()
    st.noise.setCurrentText("masking")
    st.noise_level.setValue(70)
    qtbot.waitUntil(lambda: window.session.trainer.config.noise == "masking"
                    and abs(window.session.trainer.config.noise_level - 0.7) < 1e-9, timeout=5000)
    assert window.session.state == RUNNING  # no reset needed
    assert st.pending_label.text() == ""
    qtbot.waitUntil(lambda: "masking noise 0.70" in window.panel.stats.text(), timeout=5000)
    window.toggle_play()
    window.session.wait(5)


def test_two_unit_code_shows_a_scatter(qtbot, window):
    st = window.panel.settings
    st.hidden.setValue(2)
    assert "Reset" in st.pending_label.text()
    qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.trainer.config.hidden == 2 and window.panel.scatter.updates > 0,
                    timeout=8000)
    pts = window.panel.scatter.scatter.data
    assert len(pts) > 100


def test_switching_model_family_swaps_panels_and_sessions(qtbot, window):
    combo = window.findChild(QtWidgets.QComboBox, "familyCombo")
    old = window.session
    combo.setCurrentIndex(combo.findData("rbm"))
    assert window.family == "rbm" and window.session is not old and not old.is_alive
    assert window.session.trainer.family == "rbm"
    assert window.docks["rbmFiltersDock"].isVisible() and not window.docks["aeFiltersDock"].isVisible()
    window.step_once()
    qtbot.waitUntil(lambda: window.session.trainer.step == 1, timeout=5000)
    combo.setCurrentIndex(combo.findData("autoencoder"))
    assert window.family == "autoencoder" and window.session.trainer.family == "autoencoder"
    # the autoencoder comes back with the settings it had
    assert window.session.trainer.config.hidden == 16


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_run_left_for_another_model_is_there_when_coming_back(qtbot, settings, monkeypatch, where):
    """Ctrl+PgDown to the next model and Ctrl+PgUp back: the autoencoder trained before is back, paused, at
    its step, with its weights and its curves (it was a new session from step 0 before); in a training
    process (the app's default) as on a thread."""
    monkeypatch.setenv("NETWORK_EXPLORER_TRAINING", where)
    win = open_window(qtbot, settings, AutoencoderConfig(dataset="digits", hidden=16, batch_size=32, device="cpu",
                                                         noise="gaussian", noise_level=0.3))
    try:
        _leave_and_come_back(qtbot, win, where)
    finally:
        win.close()


def _leave_and_come_back(qtbot, win, where):
    assert type(win.session).__name__ == ("ProcessSession" if where == "process" else "TrainingSession")
    win.session.step(40)
    qtbot.waitUntil(lambda: win.session.trainer.step == 40, timeout=10000)
    panel = win.panel
    # taken, and drawn: a snapshot taken while steps run is drawn in parts, each an event of its own (on a busy
    # machine the filters' part could still be waiting when the snapshot's number was already the panel's)
    qtbot.waitUntil(lambda: win.session.latest_snapshot() is not None
                    and win.session.latest_snapshot().step == 40 and panel._last_seq == win.session.latest_snapshot().seq
                    and panel._parts_due is None, timeout=10000)
    filters = panel.filters.current_image().copy()
    qtbot.waitUntil(lambda: len(panel.loss_curve.series("step")[0]) == 40, timeout=10000)
    loss = panel.loss_curve.series("step")[1].copy()
    win.act_next_model.trigger()
    assert win.family != "autoencoder"
    win.act_prev_model.trigger()
    assert win.family == "autoencoder" and win.session.trainer.step == 40
    assert "Back to the" in win.notice.label.text() and "at step 40" in win.notice.label.text()
    qtbot.waitUntil(lambda: win.session.latest_snapshot() is not None and panel._last_seq == win.session.latest_snapshot().seq
                    and panel._parts_due is None, timeout=10000)
    assert win.session.latest_snapshot().step == 40
    assert np.array_equal(panel.filters.current_image(), filters, equal_nan=True)  # the same weights (NaN: gaps)
    qtbot.waitUntil(lambda: len(panel.loss_curve.series("step")[0]) == 40, timeout=10000)
    assert np.array_equal(panel.loss_curve.series("step")[1], loss)  # the same curve
    win.step_once()  # and it trains on from there
    qtbot.waitUntil(lambda: win.session.trainer.step == 41, timeout=10000)
    win.reset()  # Reset starts afresh, as always
    qtbot.waitUntil(lambda: win.session.trainer.step == 0, timeout=10000)


def test_rbm_window_can_switch_to_autoencoder(qtbot, settings):
    win = MainWindow(RBMConfig(dataset="bars", bars_size=6, hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.switch_family("autoencoder")
        assert win.session.trainer.family == "autoencoder"
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 1, timeout=5000)
    finally:
        win.close()


def test_builder_trains_the_denoising_autoencoder_preset(qtbot, window, tmp_path):
    b = window.show_builder().builder
    b.load_preset("denoising-autoencoder")
    spec = b.spec.copy()
    spec.input_shape = (64,)  # on the bundled digits
    spec.layers[-2].params["out_features"] = 64
    b.set_spec(spec)
    assert b.info.valid, b.info.first_error
    qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
    tr = window.session.trainer
    assert tr.family == "autoencoder" and tr.dataset.name == "digits"
    assert tr.config.hidden == spec.layers[0].params["out_features"]
    window.builder_window.close()
