"""The CNN panel, driven as a user drives it: train, click a unit, draw a probe, pick one, change settings."""

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.families.cnn.trainer import CNNConfig
from tests import helpers


def open_window(qtbot, settings, config):
    return helpers.open_window(qtbot, settings, config, size=(1600, 1000))


def latest(win):
    return win.session.latest_snapshot().arrays


def test_feature_maps_fill_and_a_clicked_unit_shows_its_receptive_field(qtbot, settings):
    win = open_window(qtbot, settings, CNNConfig(device="cpu", batch_size=32, eval_samples=300))
    try:
        panel = win.panel
        assert win.family == "cnn"
        win.toggle_play()
        qtbot.waitUntil(lambda: win.session.trainer.step > 30 and panel.maps.updates > 2, timeout=30000)
        win.toggle_play()
        win.session.wait(10)
        assert [r["name"] for r in panel.maps.rows] == ["Conv2d #1", "Tanh #2", "AvgPool2d #3", "Conv2d #4",
                                                        "Tanh #5", "AvgPool2d #6"]
        # click unit (map 3, y 4, x 7) of AvgPool2d #3 with the mouse
        row = 2
        vb = panel.maps.rows[row]["viewbox"]
        scene = vb.mapViewToScene(panel.maps.unit_position(row, 3, 4, 7))
        pos = panel.maps.mapFromScene(scene)
        qtbot.mouseClick(panel.maps.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
        qtbot.waitUntil(lambda: latest(win)["unit"].tolist() == [3, 3, 4, 7], timeout=10000)
        qtbot.waitUntil(lambda: panel._snap_arrays is not None and panel._snap_arrays["unit"].tolist() == [3, 3, 4, 7],
                        timeout=5000)
        a = latest(win)
        # AvgPool2d #3: r 6, jump 2, offset -2 -> rows 6..11, columns 12..17
        assert a["rf_box"].tolist() == [6, 12, 11, 17]
        rect = panel.input_view.box.rect()
        assert (rect.left(), rect.top(), rect.width(), rect.height()) == (12, 6, 6, 6)
        assert panel.input_view.box.isVisible() and panel.input_view.heat.isVisible()
        assert "AvgPool2d #3" in panel.unit_label.text() and "100% of" in panel.unit_label.text()
        assert panel.rf_chart.updates > 0 and panel.prediction.updates > 0
    finally:
        win.close()


def drag(widget, points):
    """Press at the first point, move through the others with the button held, release at the last."""
    from PySide6.QtTest import QTest
    QTest.mousePress(widget, QtCore.Qt.MouseButton.LeftButton, pos=points[0])
    for p in points[1:]:
        ev = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, QtCore.QPointF(p), widget.mapToGlobal(QtCore.QPointF(p)),
                               QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.LeftButton,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(widget, ev)
    QTest.mouseRelease(widget, QtCore.Qt.MouseButton.LeftButton, pos=points[-1])


def test_drawing_on_the_canvas_probes_the_network(qtbot, settings):
    win = open_window(qtbot, settings, CNNConfig(device="cpu", eval_samples=300))
    try:
        panel = win.panel
        qtbot.waitUntil(lambda: panel.maps.updates > 0, timeout=10000)
        canvas = panel.canvas
        assert canvas.image.shape == (28, 28)
        r = canvas._square()
        x = int(r.center().x())
        points = [QtCore.QPoint(x, int(r.top() + r.height() * f)) for f in (0.2, 0.4, 0.6, 0.8)]
        drag(canvas, points)
        assert canvas.strokes == 1
        col = canvas.to_pixels(QtCore.QPointF(points[0]))[1]
        assert canvas.image[5:22, int(col)].min() > 0.5      # a vertical stroke, inked all the way
        assert canvas.image[:, :5].max() == 0.0              # nothing far from it
        qtbot.waitUntil(lambda: latest(win)["probe_index"] == -1, timeout=10000)
        np.testing.assert_allclose(latest(win)["probe"][0], canvas.image)
        qtbot.waitUntil(lambda: "(drawn)" in panel.input_title.text(), timeout=5000)
        # back to a held-out example: click a thumbnail in the gallery
        gal = panel.gallery
        qtbot.mouseClick(gal.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=gal.item_center(5))
        qtbot.waitUntil(lambda: latest(win)["probe_index"] == 5, timeout=10000)
        a = latest(win)
        np.testing.assert_array_equal(a["probe"], a["gallery"][5])
        qtbot.waitUntil(lambda: gal.currentRow() == 5 and "true" in panel.input_title.text(), timeout=5000)
    finally:
        win.close()


def test_live_settings_and_reset_settings(qtbot, settings):
    win = open_window(qtbot, settings, CNNConfig(device="cpu", eval_samples=300))
    try:
        st = win.panel.settings
        st.lr.setValue(0.1)
        st.batch_size.setValue(16)
        qtbot.waitUntil(lambda: win.session.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1),
                        timeout=5000)
        qtbot.waitUntil(lambda: win.session.trainer.config.batch_size == 16, timeout=5000)
        st.seed.setValue(5)
        assert "Reset" in st.pending_label.text()
        qtbot.waitUntil(lambda: win.session.trainer.config.seed == 5, timeout=5000)  # applied on the thread
        assert win.session.run_id == 0
        updates = win.panel.maps.updates
        qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.run_id == 1, timeout=20000)
        qtbot.waitUntil(lambda: win.panel.maps.updates > updates and st.pending_label.text() == "", timeout=10000)
        assert latest(win)["probe_index"] == 0
        # another preset waits for Reset too (alexnet-small itself is too slow to train in a test on a CPU)
        st.preset.setCurrentText("alexnet-small")
        assert "preset" in st.pending_label.text() and win.session.trainer.input_shape == (1, 28, 28)
        qtbot.waitUntil(lambda: win.session.trainer.config.preset == "alexnet-small", timeout=5000)
    finally:
        win.close()


def test_builder_train_opens_the_cnn_panel(qtbot, settings):
    from explorer.core.families.rbm.trainer import RBMConfig
    win = open_window(qtbot, settings, RBMConfig(dataset="bars", bars_size=6, hidden=16, device="cpu"))
    try:
        bw = win.show_builder()
        b = bw.builder
        b.load_preset("lenet5")
        qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
        assert win.family == "cnn" and win.session.trainer.family == "cnn"
        assert win.session.trainer.config.preset == "lenet5"
        assert win.session.trainer.config.lr == pytest.approx(0.01)  # the preset's hyper-parameters
        assert win.family_combo.currentData() == "cnn"
        bw.close()
    finally:
        win.close()


def test_a_tab_opened_while_paused_shows_the_last_snapshot(qtbot, settings):
    """The LCN and receptive-field tabs are hidden at first; clicked while training is paused, they draw
    the snapshot on show at once instead of staying empty until Play."""
    win = open_window(qtbot, settings, CNNConfig(device="cpu", batch_size=32, eval_samples=300))
    try:
        panel = win.panel
        win.session.step(20)
        qtbot.waitUntil(lambda: panel.maps.updates > 0 and panel._snap_arrays is not None, timeout=30000)
        assert win.session.state != "running"
        tabs = panel._lcn_widget.parentWidget()
        while not isinstance(tabs, QtWidgets.QTabWidget):
            tabs = tabs.parentWidget()
        assert [tabs.tabText(i) for i in range(tabs.count())] == ["Filters", "LCN", "Receptive fields"]
        assert panel.lcn.updates == 0  # hidden while the snapshot came
        qtbot.mouseClick(tabs.tabBar(), QtCore.Qt.MouseButton.LeftButton, pos=tabs.tabBar().tabRect(1).center())
        assert tabs.currentIndex() == 1
        qtbot.waitUntil(lambda: panel.lcn.updates > 0, timeout=5000)
        assert "LCN" in panel.lcn_note.text() or "formula" in panel.lcn_note.text()
        # the receptive-field chart, in the third tab, has its bars whatever tab was up
        tabs.setCurrentIndex(2)
        assert panel.rf_chart.updates > 0 and len(panel.rf_chart._labels) == 6
    finally:
        win.close()


def test_the_filter_mosaics_sit_side_by_side_with_room_to_read(qtbot, settings):
    """The filters dock is wide and short: stacked, the first layer's six 5x5 kernels were 60 px tall
    at 1600x1000; side by side each mosaic gets the dock's height, and the ten prediction bars less."""
    win = open_window(qtbot, settings, CNNConfig(dataset="digits", device="cpu"))
    try:
        win.resize(1600, 1000)
        panel = win.panel
        qtbot.waitUntil(lambda: panel.filters.height() > 0 and panel.prediction.height() > 0, timeout=5000)
        qtbot.wait(100)  # the docks take their default proportions just after the window shows
        assert panel.filters.x() + panel.filters.width() <= panel.deep_filters.x()  # side by side
        assert panel.filters.height() >= 200 and panel.deep_filters.height() >= 160
        assert panel.prediction.height() < panel.filters.height()
        # the left column: the settings in sight (they had 60 px beside the probe's examples and canvas)
        assert win.docks["cnnSettingsDock"].height() >= 150 and panel.canvas.height() >= 80
    finally:
        win.close()


@pytest.mark.parametrize("n, size", [(7, (330, 200)), (32, (330, 200)), (32, (400, 290))])
def test_the_misclassified_texts_stand_below_their_digits_not_on_them(qtbot, n, size):
    """Each misclassified example's "true→predicted" text was drawn on its tile's top left, over the digit:
    it now has a strip of its own below its tile, clear of every tile and of the other texts, in the view
    (the Misclassified dock's place at 1366x768 and at 1600x1000, with a few examples and a full gallery)."""
    from explorer.gui.panels.cnn_panel import LabelledMosaic

    view = LabelledMosaic("Misclassified held-out examples", "true → predicted")
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    h = w = 28
    rng = np.random.default_rng(0)
    texts = [f"{i % 10}→{(i + 3) % 10}" for i in range(n)]
    view.set_labelled(rng.random((n, h, w)), (h, w), texts)
    QtWidgets.QApplication.processEvents()
    box = view.viewbox.sceneBoundingRect()
    tiles = []
    for i in range(n):  # a tile's corners: the centres of its first and last pixels, half a pixel out
        a, b = view.pixel_scene_pos(i, 0, 0), view.pixel_scene_pos(i, h - 1, w - 1)
        half = (b.x() - a.x()) / (2 * (w - 1))
        tiles.append(QtCore.QRectF(a, b).adjusted(-half, -half, half, half))
    labels = []
    for t, text in zip(view._texts, texts):
        assert t.textItem.toPlainText() == text
        t.updateTransform(force=True)
        labels.append(t.sceneBoundingRect())
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        assert box.adjusted(-1, -1, 1, 1).contains(tile) and box.adjusted(-1, -1, 1, 1).contains(label)
        assert not any(label.intersects(other) for other in tiles), (i, label, tile)
        assert label.top() >= tile.bottom() and abs(label.center().x() - tile.center().x()) < 1  # below its own
        assert not any(label.intersects(other) for j, other in enumerate(labels) if j != i)
        assert tile.height() >= 1.3 * label.height()  # the digits, not their texts, fill the place
    # the readout under the mouse still names the tile and pixel; a text's strip is no tile
    info = view._hover_info(view.pixel_scene_pos(n - 1, 2, 3))
    assert (info["tile"], info["row"], info["col"]) == (n - 1, 2, 3)
    assert view._hover_info(labels[0].center()) is None
    # readable at a projector: a few examples in large type, a full gallery in a small place no smaller than 8 pt
    assert view.label_font.pointSizeF() >= (11 if n <= 8 else 8) and view.label_font.bold()


def test_a_gallery_too_large_for_its_place_stays_a_picture_of_bounded_size(qtbot):
    """Gaps kept in screen pixels grew as 1/scale in image pixels: 1,000 examples (the setting's limit) in a
    small dock made a picture of 15,000 x 13,000 pixels (800 MB) at each resize. Where the texts cannot fit,
    they go and the tiles are tiled plainly."""
    from explorer.gui.panels.cnn_panel import LabelledMosaic

    view = LabelledMosaic("Misclassified held-out examples", "true → predicted")
    qtbot.addWidget(view)
    view.resize(300, 160)
    view.show()
    qtbot.waitExposed(view)
    n, h, w = 1000, 28, 28
    view.set_labelled(np.random.default_rng(0).random((n, h, w)), (h, w), [f"{i % 10}→{(i + 1) % 10}" for i in range(n)])
    QtWidgets.QApplication.processEvents()
    assert view.image.image.size <= 4 * n * h * w  # (at most twice a tile's size each way)
    assert not any(t.isVisible() for t in view._texts)
    info = view._hover_info(view.pixel_scene_pos(n - 1, 2, 3))
    assert (info["tile"], info["row"], info["col"]) == (n - 1, 2, 3)
    assert view._hover_default(info).startswith("<b>9→0</b> · tile 999")  # the readout names its classes
    view.set_labelled(np.zeros((3, h, w)), (h, w), ["1→7", "2→3", "4→9"])  # a few again: their texts shown
    assert [t.isVisible() for t in view._texts] == [True] * 3
