"""The deep-network and the four-starts panels, driven as a user drives them."""

import pytest
from PySide6 import QtCore

from explorer.core.families.deep.compare import CompareConfig
from explorer.core.families.deep.trainer import MLPConfig
from explorer.gui.panels.deep_panel import HEATMAP_COLUMNS
from tests.helpers import log_drawing_parts, open_window


def test_gradient_views_fill_while_training(qtbot, settings):
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(16, 16, 16, 16, 16), init="random",
                                                 stats_every=1, batch_size=32, device="cpu"))
    try:
        panel = win.panel
        assert win.family == "mlp"
        win.toggle_play()
        qtbot.waitUntil(lambda: win.session.trainer.step > 60 and panel.grad_heat.updates > 0, timeout=20000)
        win.toggle_play()
        win.session.wait(5)
        qtbot.waitUntil(lambda: len(panel.grad_curve.series("g1")[0]) > 10, timeout=5000)
        g1 = panel.grad_curve.series("g1")[1][-1]
        g_out = panel.grad_curve.series(f"g{win.session.trainer.n_layers}")[1][-1]
        assert g1 < g_out  # the first layer's gradient is the smallest: it vanished on the way down
        assert panel.grad_heat.image.image.shape[0] == win.session.trainer.n_layers
        qtbot.waitUntil(lambda: panel.saturation.updates > 0, timeout=5000)
        assert "‖∂L/∂W₁‖" in panel.stats.text()
    finally:
        win.close()



def test_gradient_curve_plots_only_the_measured_steps(qtbot, settings):
    """The trainer repeats the last statistics between two measurements ("Statistics every" 10 steps):
    the curve and the heatmap take a point per measurement, not per step."""
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(16, 16), init="random", stats_every=10, batch_size=32,
                                                 device="cpu"))
    try:
        panel = win.panel
        win.session.step(25)
        assert win.session.wait(10)
        qtbot.waitUntil(lambda: len(panel.curves.series("loss")[0]) == 25, timeout=5000)
        xs, ys = panel.grad_curve.series("g1")
        measured = [r for r in win.session.metrics.steps if r["step"] in (1, 11, 21)]
        assert list(xs) == [1.0, 11.0, 21.0]  # the fine-tuning steps 1, 11 and 21 measure
        assert list(ys) == [r["grad_norm_1"] for r in measured]
        assert panel._grad_steps == [1, 11, 21] and len(panel._grad_history) == 3
    finally:
        win.close()

def test_pretraining_pipeline_and_ending_a_stage(qtbot, settings):
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(16, 16, 16), init="rbm",
                                                 pretrain_epochs=50, batch_size=32, device="cpu"))
    try:
        panel = win.panel
        qtbot.waitUntil(lambda: panel.pipeline.count() == 4, timeout=5000)  # 3 pretraining stages + fine-tune
        assert panel.pipeline.item(0).text().startswith("▶")
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 1, timeout=5000)
        qtbot.waitUntil(lambda: len(panel.curves.series("pretrain")[0]) == 1, timeout=5000)  # the error is plotted
        qtbot.mouseClick(panel.end_stage_btn, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.trainer.stage_index == 1, timeout=5000)
        qtbot.waitUntil(lambda: panel.pipeline.item(0).text().startswith("✔")
                        and panel.pipeline.item(1).text().startswith("▶"), timeout=5000)
        # the layer in training is watched with the RBM panel's own views: its input is layer 1's code (16 units)
        assert panel.stage_stack.currentIndex() == 1
        assert "Layer 2" in panel.stage_title.text()
        win.session.request_snapshot()
        # 8 probes x 3 rows of 4x4 grids (16 code units), 1-pixel gaps
        qtbot.waitUntil(lambda: panel.rbm_views.recon.current_image() is not None
                        and panel.rbm_views.recon.current_image().shape == (3 * 4 + 2, 8 * 4 + 7), timeout=5000)
        assert panel.rbm_views.hidden.image.image.shape == (32, 16)  # 32 held-out codes x 16 hidden units
    finally:
        win.close()


@pytest.mark.parametrize("init, page, views", [("rbm", 1, "rbm_views"), ("ae", 2, "ae_views")])
def test_stage_views_show_the_layer_being_pretrained(qtbot, settings, init, page, views):
    """Each pretraining stage is shown with the RBM's or the autoencoder's views, fed with that stage's model."""
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(12, 9), init=init, pretrain_epochs=50,
                                                 batch_size=32, device="cpu"))
    try:
        panel = win.panel
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 1, timeout=5000)
        win.session.request_snapshot()
        qtbot.waitUntil(lambda: panel.stage_stack.currentIndex() == page, timeout=5000)
        v = getattr(panel, views)
        filters = v.filters.current_image()
        assert filters is not None and "of 12 hidden units" in v.filters.title.text()  # layer 1: 12 filters of 8x8
        rows = (v.recon if init == "rbm" else v.triptych).current_image()
        assert rows.shape[0] == (3 if init == "rbm" else 2) * 8 + (3 if init == "rbm" else 2) - 1  # 8x8 rows
        win.session.call_in_thread(win.session.trainer.end_stage)
        win.session.request_snapshot()
        qtbot.waitUntil(lambda: "Layer 2" in panel.stage_title.text(), timeout=5000)
        qtbot.waitUntil(lambda: "of 9 hidden units" in v.filters.title.text(), timeout=5000)
        win.session.call_in_thread(win.session.trainer.end_stage)
        win.session.request_snapshot()
        qtbot.waitUntil(lambda: panel.stage_stack.currentIndex() == 0, timeout=5000)
        assert "fine-tuned" in panel.stage_title.text()
    finally:
        win.close()


def test_the_big_view_follows_the_lesson(qtbot, settings):
    """Pretraining: the window's centre shows the layer being pretrained, and the gradient views say
    why they are empty. Fine-tuning: the centre turns to the gradients, which fill in. A tab the user
    picks stays picked until the stage changes."""
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(12, 9), init="rbm", pretrain_epochs=50,
                                                 batch_size=32, stats_every=1, device="cpu"))
    try:
        panel = win.panel
        win.resize(1366, 768)
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 1, timeout=5000)
        win.session.request_snapshot()
        tabs = panel.central_tabs
        stage_tab = next(i for i in range(tabs.count()) if tabs.widget(i).isAncestorOf(panel.stage_widget))
        qtbot.waitUntil(lambda: panel.central_tabs.currentIndex() == stage_tab, timeout=5000)
        for view in (panel.grad_curve, panel.grad_heat):
            assert view.showing_placeholder and "pretraining" in view.placeholder.text()
        assert not panel.grad_curve.plot.isVisible()
        # the stage views fill their place: no scrolling, the input rows in sight
        scroll = panel.central_tabs.widget(stage_tab)
        qtbot.waitUntil(lambda: panel.rbm_views.recon.current_image() is not None, timeout=5000)
        assert not scroll.verticalScrollBar().isVisible()
        assert panel.stage_widget.height() <= scroll.viewport().height()
        # the user looks at the (empty) gradients; the next snapshot of the same stage leaves them there
        panel.central_tabs.setCurrentIndex(0)
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 2, timeout=5000)
        win.session.request_snapshot()
        seq = win.session.latest_snapshot().seq
        qtbot.waitUntil(lambda: panel._last_seq > seq, timeout=5000)
        assert panel.central_tabs.currentIndex() == 0
        panel.central_tabs.setCurrentIndex(stage_tab)
        for _ in range(2):  # both pretraining stages ended: fine-tuning
            win.session.call_in_thread(win.session.trainer.end_stage)
        win.session.step(3)
        assert win.session.wait(10)
        win.session.request_snapshot()
        qtbot.waitUntil(lambda: panel.central_tabs.currentIndex() == 0, timeout=5000)
        qtbot.waitUntil(lambda: not panel.grad_curve.showing_placeholder, timeout=5000)
        assert panel.grad_curve.plot.isVisible() and not panel.grad_heat.showing_placeholder
        # a colour per layer, in order (no palette repeat: layer 1 and layer 3 must not look alike)
        pens = [panel.grad_curve._items[f"g{k}"].opts["pen"].color().name() for k in (1, 2, 3)]
        assert len(set(pens)) == 3
    finally:
        win.close()


def test_four_starts_side_by_side(qtbot, settings):
    win = open_window(qtbot, settings, CompareConfig(dataset="digits", hidden=(16, 16, 16, 16, 16), pretrain_epochs=1,
                                                     batch_size=32, device="cpu"))
    try:
        panel = win.panel
        assert panel.status.rowCount() == 4
        assert [panel.status.item(r, 0).text() for r in range(4)] == ["random", "rbm", "ae", "relu-he"]
        win.toggle_play()
        # the pretrained runs go through 5 one-epoch pretraining stages first; wait for their fine-tuning
        qtbot.waitUntil(lambda: all(r.fine_tuning for r in win.session.trainer.runs.values()), timeout=60000)
        qtbot.waitUntil(lambda: len(panel.first_grad.series("rbm")[0]) > 0, timeout=30000)
        win.toggle_play()
        win.session.wait(10)
        qtbot.waitUntil(lambda: len(panel.accuracy.series("relu-he")[0]) > 0, timeout=10000)
        qtbot.waitUntil(lambda: panel.status.item(1, 1) is not None
                        and panel.status.item(1, 1).text().startswith("fine-tune"), timeout=5000)
    finally:
        win.close()


def test_editing_hidden_layers_waits_for_reset(qtbot, settings):
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(16, 16, 16), device="cpu"))
    try:
        st = win.panel.settings
        st.hidden_edit.setText("8, 8")
        st.hidden_edit.editingFinished.emit()
        assert "Reset" in st.pending_label.text()
        assert win.session.trainer.n_layers == 4
        qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.trainer.n_layers == 3, timeout=5000)
        st.hidden_edit.setText("8, x")
        st.hidden_edit.editingFinished.emit()
        assert "separated by commas" in st.pending_label.text()
    finally:
        win.close()


def test_layer_curves_follow_the_network_size(qtbot, settings):
    """A curve per layer, in colours that keep their order; a smaller network after a reset leaves no
    empty rows in the legend."""
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(12,) * 6, init="random", stats_every=1,
                                                 batch_size=32, device="cpu"))
    try:
        panel = win.panel
        win.session.step(2)
        assert win.session.wait(10)
        qtbot.waitUntil(lambda: "g7" in panel.grad_curve._items and len(panel.grad_curve.series("g7")[0]) == 2,
                        timeout=5000)
        colours = [panel.grad_curve._items[f"g{k}"].opts["pen"].color().name() for k in range(1, 8)]
        assert len(set(colours)) == 7
        st = panel.settings
        st.hidden_edit.setText("12, 12")  # then Reset: a 3-layer network
        st.hidden_edit.editingFinished.emit()
        qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.trainer.n_layers == 3, timeout=5000)
        win.session.step(2)
        assert win.session.wait(10)
        qtbot.waitUntil(lambda: sorted(panel.grad_curve._items) == ["g1", "g2", "g3"], timeout=5000)
        qtbot.waitUntil(lambda: len(panel.grad_curve.series("g3")[0]) == 2, timeout=5000)
        legend = [label.text for _sample, label in panel.grad_curve.legend.items]
        assert legend == ["layer 1", "layer 2", "layer 3"]
    finally:
        win.close()


def test_while_training_the_curves_are_drawn_part_by_part_and_lose_no_point(qtbot, settings):
    """The gradient curves, their heatmap and the loss curves painted together for 20-30 ms at each curve
    tick. While training they are drawn one part per event, with the window free in between, and a scrub
    back on the timeline meanwhile loses no point of the curves."""
    win = open_window(qtbot, settings, MLPConfig(dataset="digits", hidden=(16, 16), init="random", stats_every=1,
                                                 batch_size=32, device="cpu"))
    try:
        panel = win.panel
        log: list[str] = []
        panel.metrics_parts = log_drawing_parts(panel.metrics_parts, log)
        win.toggle_play()
        qtbot.waitUntil(lambda: log.count("part 0") >= 3 and panel.timeline.newest is not None, timeout=20000)
        panel.view_kept(panel.timeline.newest)  # scrubbed back: the curves go on
        qtbot.waitUntil(lambda: log.count("part 0") >= 5, timeout=20000)
        win.toggle_play()
        assert win.session.wait(10)
        first = log.index("part 0")
        one_tick = log[first:log.index("part 2", first) + 1]
        assert [e for e in one_tick if e != "other"] == ["part 0", "part 1", "part 2"] and "other" in one_tick
        steps = win.session.trainer.step
        qtbot.waitUntil(lambda: len(panel.curves.series("loss")[0]) == steps and panel._parts_due is None,
                        timeout=5000)
        assert panel._grad_steps == list(range(1, steps + 1))  # every measured step, none lost or repeated
        assert panel.grad_heat.image.image.shape[0] == win.session.trainer.n_layers
        assert panel.grad_heat.image.image.shape[1] == min(steps, HEATMAP_COLUMNS)  # the newest, binned
    finally:
        win.close()
