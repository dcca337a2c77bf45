"""The class step-through of one CD-1 update: opened from the RBM panel, driven by the keyboard."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from explorer.core.families.rbm.trainer import RBMConfig
from explorer.gui.main_window import MainWindow


@pytest.fixture
def win(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(RBMConfig(dataset="digits", hidden=16, binarize="threshold", device="cpu"), settings=settings)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def test_step_through_one_update_with_keys(qtbot, win):
    win.session.step(20)
    win.session.wait(30)
    W_before = win.session.trainer.rbm.W.clone()
    qtbot.mouseClick(win.panel.settings.walkthrough_btn, QtCore.Qt.MouseButton.LeftButton)
    dlg = win.panel.walkthrough
    assert dlg is not None and dlg.isVisible()
    d = dlg.data
    assert d["step"] == 20 and d["x"].shape == (64,) and d["dW"].shape == (64, 16)
    assert dlg.heading.text().startswith("1.")
    np.testing.assert_array_equal(dlg.view.current_image()[:8, :8].ravel(), d["x"])  # the example itself
    headings = [dlg.heading.text()]
    for _ in range(4):
        qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)
        headings.append(dlg.heading.text())
    assert [h[:2] for h in headings] == ["1.", "2.", "3.", "4.", "5."]
    assert dlg.pages.currentIndex() == 1  # the update of W, as tiles
    changed = int(np.count_nonzero(d["dW"]))
    assert f"{changed:,}</b> of 1,024 weights change" in dlg.explain.text()
    qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)  # no stage 6
    assert dlg.heading.text().startswith("5.")
    qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Left)
    assert dlg.heading.text().startswith("4.")
    # stage 4 shows h^, p(h|x~), h~ on a 4x4 grid of the 16 hidden units
    img = dlg.view.current_image()
    np.testing.assert_array_equal(img[10:14, :4].ravel(), d["h_tilde"])
    qtbot.keyClick(dlg, QtCore.Qt.Key.Key_N)  # another example, from the start
    assert dlg.probe == 1 and dlg.heading.text().startswith("1.")
    assert win.session.trainer.rbm.W.equal(W_before)  # shown, never applied
    qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Escape)
    assert not dlg.isVisible()


def test_the_walkthrough_says_its_example_is_held_out_and_that_it_is_cd1(qtbot, tmp_path):
    from explorer.gui.widgets.views import shown_text

    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(RBMConfig(dataset="digits", hidden=16, binarize="threshold", device="cpu", k=3), settings=settings)
    qtbot.addWidget(w)
    w.show()
    try:
        w.session.step(2)
        w.session.wait(30)
        qtbot.mouseClick(w.panel.settings.walkthrough_btn, QtCore.Qt.MouseButton.LeftButton)
        dlg = w.panel.walkthrough
        first = shown_text(dlg.explain)
        assert "held-out example, one the RBM never trained on" in first and "training example" not in first
        assert "CD-1" in w.panel.settings.walkthrough_btn.toolTip() and "held-out" in w.panel.settings.walkthrough_btn.toolTip()
        qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)
        qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)  # 3. x~
        assert "The trainer uses CD-3" in shown_text(dlg.explain) and "this step-through shows CD-1" in shown_text(dlg.explain)
        qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)
        qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)  # 5. the update
        text = shown_text(dlg.explain)
        assert "Training uses CD-3" in text and "This is the update CD-1 would make" in text
        assert "weights change this step" in text
        dlg.close()
    finally:
        w.close()


def _scene_rect(item):
    """Where ``item`` is drawn, in scene coordinates (a label's transform is brought up to date first)."""
    if hasattr(item, "updateTransform"):
        item.updateTransform(force=True)
    return item.sceneBoundingRect()


def test_each_step_s_images_are_centred_in_their_slot_and_line_up(qtbot, win):
    """The first step's x sat far to the right of its place (room for its label taken on the left only),
    out of line with the later steps' stacks: each step's tiles are now whole in the view and centred in it,
    their labels on their left, in sight and off the tiles."""
    win.resize(1366, 768)
    qtbot.mouseClick(win.panel.settings.walkthrough_btn, QtCore.Qt.MouseButton.LeftButton)
    dlg = win.panel.walkthrough
    view = dlg.view
    centres = []
    for stage in range(4):
        if stage:
            qtbot.keyClick(dlg, QtCore.Qt.Key.Key_Space)
        QtWidgets.QApplication.processEvents()
        assert dlg.pages.currentIndex() == 0 and view.isVisible()
        box = view.viewbox.sceneBoundingRect()
        mh, mw = view.image.image.shape
        tiles = view.viewbox.mapViewToScene(QtCore.QRectF(0, 0, mw, mh)).boundingRect()
        assert box.adjusted(-1, -1, 1, 1).contains(tiles), (stage, box, tiles)
        assert abs(tiles.center().x() - box.center().x()) < 3, (stage, box, tiles)
        assert abs(tiles.center().y() - box.center().y()) < 3, (stage, box, tiles)
        assert tiles.height() > 0.8 * box.height() or tiles.width() > 0.8 * box.width()  # drawn large
        for label in view._row_labels:
            rect = _scene_rect(label)
            assert box.contains(rect) and not rect.intersects(tiles) and rect.right() <= tiles.left()
        centres.append(tiles.center().x())
    assert max(centres) - min(centres) < 3  # the steps line up
    dlg.close()
