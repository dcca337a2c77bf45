"""Readouts under the mouse: each view says what is at the pointed-at place, with the numbers, and the
RBM's filters explain the last CD update of the weight under the mouse."""

import numpy as np
import pytest
from PySide6 import QtCore, QtTest, QtWidgets

from explorer.core.families.rbm.trainer import RBMConfig
from explorer.gui.main_window import MainWindow
from explorer.gui.widgets.views import CurveView, HeatmapView, MosaicView


def f4(v) -> str:
    """Numbers as the readouts print them: 4 significant digits."""
    return f"{float(v):.4g}"


def hover(qtbot, view, scene_pos):
    """What a mouse move over the view does (the scene's move signal, as the scene emits it); moves come
    through at most 30 times a second, so wait until this one has."""
    view.hover.view.scene().sigMouseMoved.emit(scene_pos)
    qtbot.waitUntil(lambda: view.hover._pending is None, timeout=2000)


def leave(view):
    QtWidgets.QApplication.sendEvent(view.hover.view.viewport(), QtCore.QEvent(QtCore.QEvent.Type.Leave))


def show(qtbot, widget):
    widget.resize(640, 480)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


# -- the shared views ----------------------------------------------------------------------------------------
def test_mosaic_reads_the_unnormalised_value_and_clears_on_leave(qtbot):
    view = show(qtbot, MosaicView("filters", levels=(-1, 1), normalize="symmetric"))
    rng = np.random.default_rng(0)
    imgs = rng.normal(0, 3, (10, 5, 4)).astype(np.float32)
    view.set_images(imgs, (5, 4))
    updates = view.updates
    hover(qtbot, view, view.pixel_scene_pos(7, 3, 2))
    text = view.hover.plain_text()
    assert "tile 7" in text and "row 3, col 2" in text
    assert f4(imgs[7, 3, 2]) in text  # the value itself, not the tile's scaled one
    assert view.hover.info["pixel"] == 3 * 4 + 2
    assert view.updates == updates  # a hover does not redraw the image
    # the box stays beside the pointed-at pixel, not on it
    cursor = view.graphics.viewport().mapTo(view, view.graphics.mapFromScene(view.pixel_scene_pos(7, 3, 2)))
    assert not view.hover.label.geometry().contains(cursor)
    # new data under a resting mouse: the numbers follow
    view.set_images(imgs * 2, (5, 4))
    assert f4(imgs[7, 3, 2] * 2) in view.hover.plain_text()
    leave(view)
    assert view.hover.plain_text() == "" and not view.hover.is_shown()


def test_mosaic_gap_between_tiles_shows_nothing(qtbot):
    view = show(qtbot, MosaicView("m"))
    view.set_images(np.ones((4, 3, 3), np.float32), (3, 3))
    # x = 3.5 is the one-pixel gap between the first two tiles
    hover(qtbot, view, view.viewbox.mapViewToScene(QtCore.QPointF(3.5, 1.5)))
    assert not view.hover.is_shown()
    hover(qtbot, view, view.pixel_scene_pos(1, 0, 0))
    assert view.hover.info["tile"] == 1


def test_heatmap_reads_labels_row_column_and_value_with_a_real_mouse_move(qtbot):
    view = show(qtbot, HeatmapView("h", xlabel="recorded step", ylabel="layer"))
    m = np.random.default_rng(1).random((3, 6)).astype(np.float32)
    view.set_matrix(m, first_row=1)
    scene = view.cell_scene_pos(2, 4)
    QtTest.QTest.mouseMove(view.plot.viewport(), view.plot.mapFromScene(scene))
    qtbot.waitUntil(view.hover.is_shown, timeout=2000)
    text = view.hover.plain_text()
    assert "layer 3" in text and "recorded step 4" in text and f4(m[2, 4]) in text
    assert (view.hover.info["row"], view.hover.info["col"]) == (2, 4)
    leave(view)
    assert not view.hover.is_shown()


def test_heatmap_outside_the_matrix_and_a_panel_text(qtbot):
    view = show(qtbot, HeatmapView("h", hover_text=lambda info: f"gate f = {info['value']:.2f} at t={info['col']}"))
    view.set_matrix(np.full((2, 2), 0.93, np.float32))
    hover(qtbot, view, view.cell_scene_pos(1, 1))
    assert view.hover.plain_text() == "gate f = 0.93 at t=1"
    qtbot.wait(50)  # (the axes take their widths for their numbers once drawn: "0 1 2" is narrower than "0.5")
    data = view.plot.getPlotItem().vb.sceneBoundingRect()
    hover(qtbot, view, QtCore.QPointF(data.left() - 3, data.center().y()))  # over the axis's numbers: nothing
    assert not view.hover.is_shown()


def test_curve_reads_each_series_at_the_nearest_step(qtbot):
    view = show(qtbot, CurveView("loss"))
    view.add_series("step", "per step", "#5c6b80")
    view.add_series("eval", "held-out", "#ffb74d")
    xs = np.arange(0, 200, 2)
    ys = np.cos(xs / 30.0)
    view.append("step", xs, ys)
    view.append("eval", [0, 100, 198], [0.5, 0.25, 0.125])
    view.redraw()
    qtbot.wait(50)  # the axis follows the data when the plot is next painted
    hover(qtbot, view, view.step_scene_pos(41.2))
    text = view.hover.plain_text()
    assert "step 42" in text and f"per step: {f4(ys[21])}" in text
    assert "held-out: 0.5 (at 0)" in text  # its nearest record is elsewhere: said so
    assert view.hover.info["step"] == 42
    assert view._cursor.isVisible() and view._cursor.value() == 42
    leave(view)
    assert not view.hover.is_shown() and not view._cursor.isVisible()


# -- the RBM panel -------------------------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    cfg = RBMConfig(dataset="bars", bars_size=6, hidden=16, batch_size=20, lr=0.2, device="cpu", seed=0)
    win = MainWindow(cfg, settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def stepped(qtbot, window, n):
    """Do ``n`` steps and wait until the panel shows the snapshot taken after them."""
    window.session.step(n)
    views = window.panel.views
    qtbot.waitUntil(lambda: views._step == n and "cd_x" in views._a, timeout=10000)
    return views


def test_rbm_filter_readout_shows_w_ij_and_its_last_cd_update(qtbot, window):
    views = stepped(qtbot, window, 3)
    tr = window.session.trainer  # paused: read it directly to check the readout independently
    W = tr.rbm.W.detach().numpy()
    last = tr.cd.last
    x0, h, xt, ht = (t.double().numpy() for t in (last.x0, last.h_hat, last.x_tilde, last.h_tilde))
    pos, neg = x0.T @ h / 20, xt.T @ ht / 20
    # a weight whose update had two different parts
    i, j = map(int, np.argwhere(np.abs(pos - neg) > 0.04)[0])
    r, c = divmod(i, 6)
    hover(qtbot, views.filters, views.filters.pixel_scene_pos(j, r, c))
    text = views.filters.hover.plain_text()
    assert f"j = {j}" in text and f"i = {i}" in text
    assert f"w_ij = {f4(W[i, j])}".replace("_ij", "ij") in text
    assert f"= {f4(0.2)} × ({f4(pos[i, j])} − {f4(neg[i, j])}) = {f4(0.2 * (pos[i, j] - neg[i, j]))}" in text
    assert "step 3" in text and "batch of 20" in text
    leave(views.filters)
    assert views.filters.hover.plain_text() == ""


def test_rbm_hidden_probability_readout(qtbot, window):
    views = stepped(qtbot, window, 2)
    tr = window.session.trainer
    x = tr._heat_grey.double().numpy()
    W, d = tr.rbm.W.detach().double().numpy(), tr.rbm.d.detach().double().numpy()
    p = 1 / (1 + np.exp(-(x @ W + d)))
    hover(qtbot, views.hidden, views.hidden.cell_scene_pos(3, 5))
    text = views.hidden.hover.plain_text()
    assert "example 3" in text and "j = 5" in text
    assert f"= σ({f4(d[5])} + " in text and text.endswith(f"= {f4(p[3, 5])}")


def test_rbm_reconstruction_readout(qtbot, window):
    views = stepped(qtbot, window, 2)
    a = views._a
    hover(qtbot, views.recon, views.recon.pixel_scene_pos(1 * len(a["probe_input"]) + 2, 1, 4))  # p(x|h) row, example 2
    text = views.recon.hover.plain_text()
    i = 1 * 6 + 4
    xi, ri = a["probe_input"][2, i], a["probe_recon"][2, i]
    assert "example 2" in text and f"i = {i}" in text
    assert f"= {f4(ri)}" in text and f"= {f4((xi - ri) ** 2)}" in text


def test_rbm_error_curve_readout(qtbot, window):
    window.session.step(6)
    panel = window.panel
    qtbot.waitUntil(lambda: len(panel.error_curve.series("step")[0]) >= 6, timeout=10000)
    qtbot.wait(50)
    row = next(r for r in window.session.metrics.steps if r["step"] == 4)
    hover(qtbot, panel.error_curve, panel.error_curve.step_scene_pos(4))
    text = panel.error_curve.hover.plain_text()
    assert "step 4" in text and f"training (per step): {f4(row['recon_error'])}" in text
