"""The LSTM and RNN panels in the main window, driven as a user drives them."""

import dataclasses
import time
import types

import numpy as np
import pytest
from PySide6 import QtCore

from explorer.core.engine.session import RUNNING
from explorer.core.families.recurrent.trainer import RNNConfig
from explorer.gui.main_window import MainWindow
from tests.helpers import log_drawing_parts, open_window, small_recurrent_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def window(qtbot, settings):
    win = open_window(qtbot, settings, small_recurrent_config(), size=(1400, 900))
    yield win
    win.close()


def _image(view):
    return None if view.image.image is None else np.array(view.image.image)


def test_play_updates_the_gate_heatmaps_and_a_click_selects_a_unit(qtbot, window):
    panel = window.panel
    assert window.family == "lstm" and panel.family == "lstm"
    assert window.docks["lstmGradientsDock"].isVisible() and "rnnGradientsDock" not in window.docks
    f_view = panel.heatmaps["f"]
    qtbot.waitUntil(lambda: f_view.updates >= 1, timeout=8000)
    before = _image(f_view)
    assert before.shape == (8, 12) and before.min() >= 0 and before.max() <= 1
    window.toggle_play()
    assert window.session.state == RUNNING
    qtbot.waitUntil(lambda: window.session.trainer.step > 60 and f_view.updates > 2, timeout=20000)
    window.toggle_play()
    assert window.session.wait(10)
    qtbot.waitUntil(lambda: not np.allclose(before, _image(f_view)), timeout=8000)
    # click row 5 of the cell-state heatmap, as a user does
    c_view = panel.heatmaps["c"]
    pos = c_view.plot.mapFromScene(c_view.row_scene_pos(5, col=3.0))
    qtbot.mouseClick(c_view.plot.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: panel.unit == 5, timeout=3000)
    assert panel.unit_spin.value() == 5 and "Unit 5" in panel.units.title.text()
    x, y = panel.units.series("f")
    np.testing.assert_allclose(y, panel._last["f"][5], rtol=1e-6)  # the snapshot on show
    # the gradient view has both curves, the loss curves have points
    assert len(panel.grads.series("lstm")[1]) == 12 and len(panel.grads.series("rnn")[1]) == 12
    # the loss curve gets a point per step taken; curves redraw at most 4 times a second, so the last
    # steps before the pause may land a tick after the click
    steps = window.session.trainer.step
    qtbot.waitUntil(lambda: len(panel.curves.series("loss")[0]) == steps, timeout=3000)


def test_clamping_the_forget_gate_shows_at_once_while_paused(qtbot, window):
    panel = window.panel
    f_view = panel.heatmaps["f"]
    qtbot.waitUntil(lambda: f_view.updates >= 1, timeout=8000)
    box = panel.interventions
    box.clamp_value.setValue(0.0)
    box.clamp_gate.setCurrentText("f")
    qtbot.waitUntil(lambda: np.all(_image(f_view) == 0), timeout=8000)
    assert window.session.trainer.config.clamp_gate == "f"
    qtbot.waitUntil(lambda: len(panel.io.series("output_clean")[1]) == 12, timeout=5000)  # the clean output, dotted
    box.clear.click()
    qtbot.waitUntil(lambda: np.any(_image(f_view) > 0), timeout=8000)
    box.zero_unit.setValue(3)
    qtbot.waitUntil(lambda: np.all(_image(panel.heatmaps["c"])[3] == 0), timeout=8000)
    assert window.session.trainer.step == 0  # nothing trained: the views alone changed


def test_text_task_colours_characters_and_the_temperature_slider_acts(qtbot, window):
    panel = window.panel
    st = panel.settings
    st.task.setCurrentText("text")
    st.length.setValue(24)
    assert "Reset" in st.pending_label.text()
    qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.trainer.dataset.name == "text" and panel.coloured.updates > 0,
                    timeout=15000)
    text = panel.coloured.plain_text()
    assert len(text) > 100 and len(panel.coloured.values) > 100
    qtbot.waitUntil(lambda: len(panel.sample.toPlainText()) > 50, timeout=8000)
    panel.temperature.setValue(25)  # the slider, as dragged
    qtbot.waitUntil(lambda: window.session.trainer.config.temperature == 0.25, timeout=5000)
    qtbot.waitUntil(lambda: "temperature 0.25" in panel.sample_title.text(), timeout=8000)
    assert panel.temperature_label.text() == "0.25"
    panel.select_unit(2)
    assert "unit 2" in panel.coloured.title.text()


def test_builder_trains_the_lstm_preset_and_a_run_reopens(qtbot, window, tmp_path):
    window.session.step(3)
    window.session.wait(10)
    assert window.save_run(tmp_path / "run").wait(10)
    b = window.show_builder().builder
    b.load_preset("lstm")
    spec = b.spec.copy()
    spec.input_shape = (16, 1)
    spec.layers[0].params["hidden_size"] = 8
    b.set_spec(spec)
    assert b.info.valid, b.info.first_error
    qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
    tr = window.session.trainer
    assert window.family == "lstm" and tr.family == "lstm"
    assert tr.config.task == "sine" and tr.config.length == 16 and tr.config.hidden == 8 and tr.config.bias
    window.builder_window.close()
    assert window.open_run(tmp_path / "run")  # the saved adding-problem run comes back with its step
    assert window.family == "lstm" and window.session.trainer.step == 3
    assert window.session.trainer.config.task == "adding"


def test_rnn_window_shows_the_hidden_state_only(qtbot, settings):
    win = MainWindow(small_recurrent_config(RNNConfig), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        panel = win.panel
        assert win.family == "rnn" and panel.family == "rnn" and list(panel.heatmaps) == ["s"]
        assert win.docks["rnnSaturationDock"].isVisible() and "lstmSaturationDock" not in win.docks
        assert not panel.interventions.clamp_gate.isEnabled()
        assert "c_t" not in panel.units.caption.text() and "tanh(U x_t" in panel.units.caption.text()  # no cell
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 1 and panel.heatmaps["s"].updates >= 1, timeout=10000)
        assert _image(panel.heatmaps["s"]).shape == (8, 12)
        assert win.switch_family("lstm") and win.panel.family == "lstm"
        # the LSTM's panel is built on first use; the RNN's docks step aside
        assert win.docks["lstmSaturationDock"].isVisible() and not win.docks["rnnSaturationDock"].isVisible()
        assert [a.text() for a in win._view_dock_actions] == [d.windowTitle() for d, _ in win._family_docks["lstm"]]
    finally:
        win.close()


def test_a_reset_to_another_task_leaves_no_view_or_title_of_the_last_one(qtbot, settings, monkeypatch):
    """Task = text and Reset, training in its own process: the panel's title said "adding problem …
    baseline MSE 0.158" on, and the Probe tab, hidden behind the Text tab, kept the adding problem's plot."""
    from explorer.core.process import worker
    from explorer.core.process.session import ProcessSession
    from explorer.gui.panels.base import bring_forward
    from explorer.gui.widgets.views import shown_text

    monkeypatch.setenv("NETWORK_EXPLORER_TRAINING", "process")
    win = MainWindow(small_recurrent_config(), settings=settings)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    try:
        s, panel = win.session, win.panel
        assert isinstance(s, ProcessSession)
        assert "adding problem" in panel.description.text()
        qtbot.waitUntil(lambda: panel.io.title.text().startswith("Adding problem"), timeout=20000)
        assert "read at the last step only" in shown_text(panel.io.caption)
        run = s.run_id
        panel.settings.task.setCurrentText("text")
        win.reset()
        qtbot.waitUntil(lambda: panel._last_run == run + 1, timeout=30000)
        title = panel.description.text()  # as the panel first sees the new run
        assert "next character" in title and "adding" not in title
        qtbot.waitUntil(lambda: panel._last is not None and panel._last.get("task") == "text", timeout=30000)
        assert not panel.io.isVisible()  # the text task brings the Text tab forward
        assert panel.io.title.text() == "Probe: input, target, output"  # cleared, not the adding problem
        assert all(len(panel.io.series(k)[0]) == 0 for k in panel.io._items)
        bring_forward(panel.io)  # the user opens the Probe tab
        qtbot.waitUntil(lambda: panel.io.title.text().startswith("Text:"), timeout=5000)
        assert "character that really comes next" in shown_text(panel.io.caption)
    finally:
        win.close()
        worker.discard_spare()


def test_while_training_a_snapshot_is_drawn_part_by_part_with_the_window_free_in_between(qtbot, window):
    """The LSTM panel's views took 30-40 ms to paint at once, which held every click and timer that long.
    While training runs, each live snapshot is drawn one part per event: other events (a paint, a click,
    a timer) are served between the parts, and when the parts are done every view shows that snapshot."""
    panel = window.panel
    log: list[str] = []
    real_parts = panel.snapshot_parts

    panel.snapshot_parts = log_drawing_parts(real_parts, log)
    window.toggle_play()
    qtbot.waitUntil(lambda: log.count("part 0") >= 3, timeout=20000)
    window.toggle_play()
    assert window.session.wait(10)
    assert len(real_parts(window.session.latest_snapshot())) == 5
    first = log.index("part 0")
    one_snapshot = log[first:log.index("part 4", first) + 1]
    assert [e for e in one_snapshot if e != "other"] == [f"part {i}" for i in range(5)]
    assert "other" in one_snapshot  # the window served another event before the drawing was done
    qtbot.waitUntil(lambda: panel._parts_due is None, timeout=3000)
    drawn = panel._last
    for g, view in panel.heatmaps.items():  # every view ends on one snapshot: the last one begun
        np.testing.assert_allclose(_image(view), np.asarray(drawn[g]), rtol=1e-6)
    np.testing.assert_allclose(panel.io.series("output")[1], np.asarray(drawn["probe_output"])[:, 0], rtol=1e-6)
    np.testing.assert_allclose(panel.units.series("f")[1], np.asarray(drawn["f"])[panel.unit], rtol=1e-6)


def test_a_part_that_fails_holds_back_no_later_snapshot(qtbot, window):
    panel = window.panel
    failed: list[int] = []
    real_parts = panel.snapshot_parts

    def failing_once(snap):
        parts = real_parts(snap)
        if not failed:
            def fail():
                failed.append(snap.seq)
                raise RuntimeError("a view that cannot draw this snapshot")
            parts[2] = fail
        return parts

    panel.snapshot_parts = failing_once
    drawn_before = panel.snapshots_drawn
    with qtbot.captureExceptions() as raised:
        window.toggle_play()
        qtbot.waitUntil(lambda: bool(failed) and panel.snapshots_drawn >= drawn_before + 4, timeout=20000)
        window.toggle_play()
    assert window.session.wait(10)
    assert [str(e[1]) for e in raised] == ["a view that cannot draw this snapshot"]


class _Stand:
    """A training session as the panel's refresh sees it, training, with one snapshot and one row waiting."""

    def __init__(self, real, snap):
        self.run_id, self.trainer, self.snap = real.run_id, real.trainer, snap
        self.snapshot_hz, self.in_own_process, self.snapshot_seconds = 20.0, True, 0.0
        self.taken: list[int] = []
        rows = [{"step": 1}]
        self.metrics = types.SimpleNamespace(steps_since=lambda n: (rows[n:], len(rows)),
                                             evals_since=lambda n: ([], n))

    def thread_idle(self) -> bool:
        return False

    def latest_snapshot(self):
        return self.snap

    def snapshot_taken(self, seq: int) -> None:
        self.taken.append(seq)


def test_a_snapshot_due_with_the_curves_is_drawn_after_them_in_the_same_tick(qtbot, window):
    """A snapshot that came with the curves waited for the next tick; and as the window takes the next
    snapshot only once it has drawn this one, each of the curves' 4 ticks a second cost a snapshot (20 ticks
    drew 16). It is now taken at once and drawn after the curves' parts, each part in an event of its own."""
    window.session.step(3)
    assert window.session.wait(10)
    snap = window.session.latest_snapshot()
    window.timer.stop()  # only this test's calls refresh the panel
    panel, real = window.panel, window.session
    stand = _Stand(real, snap)
    log: list[str] = []
    panel.metrics_parts = lambda steps, evals: [lambda: log.append("curves 0"), lambda: log.append("curves 1")]
    panel.snapshot_parts = lambda s: [lambda: log.append("snapshot 0"), lambda: log.append("snapshot 1")]
    panel._update_stats = lambda s: None
    panel.session, panel._last_run, panel._last_seq, panel._last_curves_t = stand, stand.run_id, -1, 0.0
    try:
        assert panel.refresh()
        assert log == ["curves 0"] and stand.taken == [snap.seq]  # taken now: the next one may be computed
        qtbot.waitUntil(lambda: panel._parts_due is None, timeout=3000)
        assert log == ["curves 0", "curves 1", "snapshot 0", "snapshot 1"]
        # a snapshot whose parts are still to come holds the next one back a tick
        log.clear()
        panel._last_curves_t = time.monotonic()  # (no curves due)
        stand.snap = dataclasses.replace(snap, seq=snap.seq + 1)
        panel.pacer.enabled = False
        assert panel.refresh() and log == ["snapshot 0"]
        stand.snap = dataclasses.replace(snap, seq=snap.seq + 2)
        assert not panel.refresh() and stand.taken == [snap.seq, snap.seq + 1]
        qtbot.waitUntil(lambda: panel._parts_due is None, timeout=3000)
        assert panel.refresh() and stand.taken[-1] == snap.seq + 2
        qtbot.waitUntil(lambda: panel._parts_due is None, timeout=3000)
    finally:
        panel.session = real


def test_the_status_line_gives_a_trained_lstms_tiny_loss_in_significant_digits(window):
    """A trained LSTM's held-out loss on the adding problem (4e-05) read "held-out loss 0.0000" at four places."""
    metrics = types.SimpleNamespace(evals=[{"heldout_loss": 4.2e-05, "baseline": 0.15791, "compare_heldout_loss": 0.1849}])
    parts = window.panel.stats_parts(types.SimpleNamespace(metrics=metrics))
    assert parts == ["held-out loss 4.2e-05 (baseline 0.158)", "RNN alongside: 0.185"]
