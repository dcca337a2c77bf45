"""Readouts under the mouse in the other panels: autoencoder, LSTM gates, CNN feature maps, the deep net's
gradient heatmap. Each checks the numbers against the arrays the view shows, computed here."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.families.cnn.trainer import CNNConfig
from explorer.core.families.deep.trainer import MLPConfig
from explorer.core.families.recurrent.trainer import LSTMConfig
from explorer.gui.main_window import MainWindow


def f4(v) -> str:
    return f"{float(v):.4g}"


def hover(qtbot, view, scene_pos):
    view.hover.view.scene().sigMouseMoved.emit(scene_pos)
    qtbot.waitUntil(lambda: view.hover._pending is None, timeout=2000)
    return view.hover.plain_text()


def leave(view):
    QtWidgets.QApplication.sendEvent(view.hover.view.viewport(), QtCore.QEvent(QtCore.QEvent.Type.Leave))


@pytest.fixture
def open_window(qtbot, tmp_path):
    wins = []

    def make(config):
        settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
        win = MainWindow(config, settings=settings)
        qtbot.addWidget(win)
        win.resize(1600, 1000)
        win.show()
        qtbot.waitExposed(win)
        wins.append(win)
        return win

    yield make
    for w in wins:
        w.close()


def test_autoencoder_filter_and_reconstruction_readouts(qtbot, open_window):
    win = open_window(AutoencoderConfig(dataset="digits", hidden=16, batch_size=32, device="cpu", noise="gaussian",
                                        noise_level=0.3))
    win.session.step(3)
    views = win.panel.views
    qtbot.waitUntil(lambda: win.session.trainer.step == 3 and views._a is win.session.latest_snapshot().arrays
                    and win.session.latest_snapshot().step == 3, timeout=10000)
    W = win.session.trainer.model.W.detach().numpy()
    text = hover(qtbot, views.filters, views.filters.pixel_scene_pos(2, 1, 3))
    assert "j = 2" in text and "i = 11" in text and f"= {f4(W[2, 11])}" in text
    a = views._a
    n = len(a["probe_clean"])
    text = hover(qtbot, views.triptych, views.triptych.pixel_scene_pos(2 * n + 1, 4, 4))  # x' row, example 1
    x, xr = a["probe_clean"][1, 36], a["probe_recon"][1, 36]
    loss = float(((a["probe_clean"][1].astype(np.float64) - a["probe_recon"][1]) ** 2).sum())
    assert f"({f4(x)} − {f4(xr)})² = {f4((x - xr) ** 2)}" in text and f"= {f4(loss)}" in text
    leave(views.triptych)
    assert not views.triptych.hover.is_shown()


def test_lstm_gate_readouts_give_the_equation_with_the_numbers(qtbot, open_window):
    win = open_window(LSTMConfig(task="adding", length=12, hidden=8, n_train=256, eval_samples=64, batch_size=16,
                                 device="cpu", compare_every=2))
    win.session.step(2)
    panel = win.panel
    qtbot.waitUntil(lambda: panel._last is not None and "c" in panel._last
                    and panel.heatmaps["c"].updates > 0, timeout=15000)
    a = panel._last
    u, t = 3, 5
    text = hover(qtbot, panel.heatmaps["f"], panel.heatmaps["f"].cell_scene_pos(u, t))
    assert f"u = {u}" in text and f"t = {t}" in text
    assert f"f_t = σ(U_f x_t + W_f s_t-1) = {f4(a['f'][u, t])}".replace("_t", "t").replace("_f", "f") in text
    text = hover(qtbot, panel.heatmaps["c"], panel.heatmaps["c"].cell_scene_pos(u, t))
    f, i, ct, prev, c = a["f"][u, t], a["i"][u, t], a["c_tilde"][u, t], a["c"][u, t - 1], a["c"][u, t]
    assert abs(f * prev + i * ct - c) < 1e-5  # the lecture's cell update holds for the numbers shown
    assert f"= {f4(f)} × {f4(prev)} + {f4(i)} × {f4(ct)} = {f4(c)}" in text
    text = hover(qtbot, panel.heatmaps["s"], panel.heatmaps["s"].cell_scene_pos(u, t))
    assert f"= {f4(a['o'][u, t])} × tanh({f4(c)}) = {f4(a['s'][u, t])}" in text
    leave(panel.heatmaps["s"])
    assert not panel.heatmaps["s"].hover.is_shown()


def test_cnn_feature_map_readout(qtbot, open_window):
    win = open_window(CNNConfig(device="cpu", batch_size=32, eval_samples=300))
    maps = win.panel.maps
    qtbot.waitUntil(lambda: maps.updates > 0, timeout=20000)
    qtbot.wait(50)
    a = win.panel._snap_arrays
    text = hover(qtbot, maps, maps.unit_scene_pos(2, 3, 4, 1))
    value = a["feature_maps"][2][3, 4, 1]
    assert a["feature_layers"][2] in text and "channel 3" in text and "(y 4, x 1)" in text
    assert f"activation {f4(value)}" in text
    leave(maps)
    assert not maps.hover.is_shown()


def test_deep_gradient_heatmap_readout(qtbot, open_window):
    win = open_window(MLPConfig(dataset="digits", hidden=(16, 16, 16), init="random", stats_every=1,
                                batch_size=32, device="cpu"))
    panel = win.panel
    win.session.step(12)
    qtbot.waitUntil(lambda: win.session.trainer.step == 12 and panel.grad_heat.updates > 0
                    and len(panel._grad_steps) == 12, timeout=20000)
    qtbot.wait(50)
    row = next(r for r in win.session.metrics.steps if r["step"] == 5 and "grad_norm_2" in r)
    col = panel._grad_steps.index(5)
    text = hover(qtbot, panel.grad_heat, panel.grad_heat.cell_scene_pos(1, col))  # row 1: layer 2
    assert "layer 2" in text and "step 5" in text
    assert f"= {f4(row['grad_norm_2'])}" in text
