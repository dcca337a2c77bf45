"""The FCN panel in the main window, driven as a user drives it."""

import numpy as np
import pytest
from PySide6 import QtCore

from explorer.core.engine.session import RUNNING
from explorer.core.families.fcn.trainer import FCNConfig
from explorer.core.spec.network import spec_to_dict
from explorer.gui.main_window import MainWindow
from tests.helpers import narrowed_unet_small, open_window


@pytest.fixture
def window(qtbot, settings):
    cfg = FCNConfig(spec=spec_to_dict(narrowed_unet_small(4)), n_train=64, n_test=16, eval_samples=16, batch_size=8, lr=0.005,
                    device="cpu")
    win = open_window(qtbot, settings, cfg, size=(1400, 900))
    yield win
    win.close()


def test_play_shows_predictions_and_curves(qtbot, window):
    panel = window.panel
    assert window.family == "fcn" and panel.family == "fcn"
    assert window.docks["fcnMapsDock"].isVisible() and window.docks["fcnIouDock"].isVisible()
    qtbot.waitUntil(lambda: panel.overlay.updates >= 1 and panel.probs.updates >= 1, timeout=10000)
    before = panel.overlay.current_image()
    assert before.shape[2] == 3 and before.dtype == np.uint8
    assert panel.overlay.legend.names() == ["background", "circle", "square", "triangle"]
    window.toggle_play()
    assert window.session.state == RUNNING
    qtbot.waitUntil(lambda: window.session.trainer.step > 40 and len(panel.iou.series("miou")[0]) >= 2,
                    timeout=60000)
    qtbot.waitUntil(lambda: not np.array_equal(before, panel.overlay.current_image()), timeout=10000)
    tabs = window.docks["fcnMapsDock"].widget()  # the up-sampling path shares its place with the probabilities
    tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index("Up-sampling path"))
    qtbot.waitUntil(lambda: panel.maps.updates >= 1, timeout=10000)
    assert "Up-sampling path of probe 1" in panel.maps.title.text()
    qtbot.waitUntil(lambda: len(panel.accuracy.series("step")[0]) > 10, timeout=3000)  # curves: 4 redraws/s
    assert "held-out mean IoU" in panel.stats.text()
    window.toggle_play()
    assert window.session.wait(10)


def test_opacity_slider_and_outline_toggle_redraw_at_once(qtbot, window):
    panel = window.panel
    s = window.session
    s.step(3)
    qtbot.waitUntil(lambda: s.trainer.step == 3 and panel.overlay.updates >= 1, timeout=10000)
    s.wait(10)
    # the view shows the last snapshot (step 3): the colours below are compared with its predictions
    qtbot.waitUntil(lambda: s.latest_snapshot().step == 3 and panel._last_seq == s.latest_snapshot().seq
                    and panel._parts_due is None, timeout=10000)  # (and all its parts drawn)
    view = panel.overlay
    view.outline.setChecked(False)
    view.opacity.setValue(0)
    image_row, pred_row, truth_row, _errors = (np.hstack(view.kind_tiles(k)) for k in range(4))
    assert np.array_equal(image_row, pred_row)  # opacity 0: the image alone
    view.opacity.setValue(100)
    assert view.opacity_value.text() == "100%"
    full = np.hstack(view.kind_tiles(1))
    assert not np.array_equal(full, image_row)
    snap = window.session.latest_snapshot().arrays
    # at full opacity every pixel predicted as an object shows its class colour exactly
    from explorer.gui.widgets.segmentation import palette_rgb
    pal = palette_rgb(4).astype(np.uint8)
    pred0 = snap["probe_pred"][0]
    h, w = pred0.shape
    tile = full[:, :w]
    obj = pred0 > 0
    if obj.any():
        assert np.array_equal(tile[obj], pal[pred0[obj]])
    # the outline draws the true objects' edges in white over the prediction row
    view.outline.setChecked(True)
    outlined = np.hstack(view.kind_tiles(1))
    assert not np.array_equal(outlined, full)
    from explorer.gui.widgets.segmentation import outline_of_objects
    edge = outline_of_objects(snap["probe_masks"][0])
    assert edge.any() and np.all(outlined[:, :w][edge] == 255)
    changed = np.any(outlined[:, :w] != full[:, :w], axis=2)
    assert changed.any() and not np.any(changed & ~edge)  # only the outline changed
    assert truth_row.shape == image_row.shape


def test_maps_probe_choice_reaches_the_trainer(qtbot, window):
    panel = window.panel
    tabs = window.docks["fcnMapsDock"].widget()
    tabs.setCurrentIndex(1)  # the user opens the "Up-sampling path" tab
    panel.maps_probe.setValue(3)
    qtbot.waitUntil(lambda: window.session.trainer.config.maps_probe == 2, timeout=5000)
    qtbot.waitUntil(lambda: "probe 3" in panel.maps.title.text(), timeout=10000)


def test_skip_toggle_waits_for_reset_then_rebuilds(qtbot, window):
    st = window.panel.settings
    st.skips.setChecked(False)
    assert "Reset" in st.pending_label.text()
    qtbot.mouseClick(st.apply_reset, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.session.trainer.config.skips
                    and all(type(m).__name__ != "Concat" for m in window.session.trainer.model.layers),
                    timeout=10000)
    qtbot.waitUntil(lambda: "skip connections off" in window.panel.stats.text(), timeout=5000)


def test_one_click_opens_the_side_by_side_comparison(qtbot, window):
    old = window.session
    qtbot.mouseClick(window.panel.compare_btn, QtCore.Qt.MouseButton.LeftButton)
    assert window.family == "fcn-compare" and window.session is not old
    tr = window.session.trainer
    assert tr.family == "fcn-compare" and tr.config.n_train == 64 and tr.config.spec == old.trainer.config.spec
    panel = window.panel
    window.session.step(4)
    qtbot.waitUntil(lambda: tr.step == 4 and panel.overlay.updates >= 1, timeout=20000)
    qtbot.waitUntil(lambda: window.session.latest_snapshot() is not None
                    and window.session.latest_snapshot().step == 4, timeout=10000)
    qtbot.waitUntil(lambda: panel.overlay.updates >= 1 and len(panel.overlay.kind_tiles(5)) == 4, timeout=10000)
    window.session.call_in_thread(window.session.evaluate_now)
    qtbot.waitUntil(lambda: len(panel.miou.series("skips")[0]) >= 2 and len(panel.miou.series("noskips")[0]) >= 2,
                    timeout=10000)


def test_the_panel_asks_for_the_comparison_by_a_signal_not_through_its_window(qtbot):
    """No window here: the panel's button emits the comparison's configuration (the window, when there is
    one, starts that session); without a session to copy, the comparison's defaults."""
    from explorer.core.families.fcn.trainer import FCNCompareConfig
    from explorer.gui.panels.fcn_panel import FCNPanel

    panel = FCNPanel(FCNConfig(device="cpu"))
    assert panel.parent() is None
    with qtbot.waitSignal(panel.sigNewSessionRequested, timeout=1000) as asked:
        panel.compare_btn.click()
    assert asked.args == [FCNCompareConfig()]


def test_builder_unet_small_trains_in_the_fcn_panel(qtbot, settings):
    from explorer.core.families.rbm.trainer import RBMConfig
    win = MainWindow(RBMConfig(dataset="bars", bars_size=6, hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        b = win.show_builder().builder
        b.load_preset("unet-small")
        assert b.info.valid
        qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
        assert win.family == "fcn"
        tr = win.session.trainer
        assert tr.family == "fcn" and tr.config.network_spec().name == "unet-small" and tr.config.lr == 0.001
        assert win.docks["fcnSettingsDock"].isVisible() and not win.docks["rbmFiltersDock"].isVisible()
        win.builder_window.close()
    finally:
        win.close()


def test_a_folder_without_pairs_is_a_message_not_a_crash(qtbot, window, tmp_path):
    empty = tmp_path / "no-pairs"
    empty.mkdir()
    window.use_data_folder(str(empty))
    qtbot.waitUntil(lambda: "no-pairs" in window.notice.label.text(), timeout=10000)
    assert "no images found" in window.notice.label.text()
    assert window.session.trainer.config.dataset == "scenes"  # the scenes stay loaded
    window.step_once()
    qtbot.waitUntil(lambda: window.session.trainer.step == 1, timeout=10000)


def test_the_overlay_turns_its_kinds_into_columns_where_that_draws_larger(qtbot):
    """The side-by-side panel's six kinds of four probes in a wide place: as columns (labelled on top, when
    the labels fit over a tile) the tiles are larger than as rows. Four kinds of four: rows in a wide
    place, columns in a tall one, and the view turns by itself when resized. The tiles are the same
    either way."""
    from explorer.gui.widgets.segmentation import SegmentationView

    rng = np.random.default_rng(0)
    images = rng.random((4, 16, 16)).astype(np.float32)
    truth = rng.integers(0, 3, (4, 16, 16))
    pred = rng.integers(0, 3, (4, 16, 16))
    six = [("image", "image", None), ("with skips", "overlay", pred), ("without", "overlay", truth),
           ("truth", "truth", None), ("errors, with", "error", pred), ("errors, without", "error", truth)]
    view = SegmentationView("probes")
    qtbot.addWidget(view)
    view.resize(1100, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_data(images, truth, six, ["a", "b", "c"])
    assert view.kinds_in_columns and view.current_image().shape[:2] == (4 * 17 - 1, 6 * 17 - 1)
    assert [t.textItem.toPlainText() for t in view._labels][4:] == ["errors,\nwith", "errors,\nwithout"]
    view.set_data(images, truth, six[:2] + six[3:5], ["a", "b", "c"])  # four kinds, a wide place: rows
    assert not view.kinds_in_columns and view.current_image().shape[:2] == (4 * 17 - 1, 4 * 17 - 1)
    as_rows = [view.kind_tiles(k) for k in range(4)]
    view.resize(560, 900)
    qtbot.waitUntil(lambda: view.kinds_in_columns, timeout=2000)  # turned by itself
    for k in range(4):
        assert all(np.array_equal(a, b) for a, b in zip(as_rows[k], view.kind_tiles(k)))
    assert not np.array_equal(as_rows[1][0], as_rows[0][0])  # (the kinds differ: the check can fail)
