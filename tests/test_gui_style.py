"""The style sheets: a disabled control looks disabled, and a check box shows on the dark themes (the
app's own and presentation mode's black one)."""

import pytest
from PySide6 import QtGui, QtWidgets

from explorer.gui.app import make_app
from explorer.gui.resources import RESOURCES


@pytest.fixture
def app_look(qapp):
    sheet, font, style = qapp.styleSheet(), qapp.font(), qapp.style().name()
    make_app()
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setFont(font)
    qapp.setStyle(style)


def _presentation(app) -> None:
    app.setStyleSheet(app.styleSheet() + "\n" + (RESOURCES / "presentation.qss").read_text(encoding="utf-8"))


def _lightness(colour: QtGui.QColor) -> int:
    return colour.lightness()


def _box_contrast(box: QtWidgets.QCheckBox) -> int:
    """The largest lightness difference between the check box's indicator and the window behind it."""
    opt = QtWidgets.QStyleOptionButton()
    box.initStyleOption(opt)
    rect = box.style().subElementRect(QtWidgets.QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    image = box.grab().toImage()
    behind = _lightness(box.palette().color(QtGui.QPalette.ColorRole.Window))
    return max(abs(_lightness(image.pixelColor(x, y)) - behind)
               for x in range(rect.left(), rect.right() + 1) for y in range(rect.top(), rect.bottom() + 1))


@pytest.mark.parametrize("presenting", [False, True])
def test_a_disabled_control_looks_disabled(qtbot, app_look, presenting):
    """The LSTM panel's gate interventions, disabled for a vanilla RNN, looked as live as the LSTM's: the
    style sheet gave every state the same text colour."""
    from explorer.gui.panels.recurrent_panel import InterventionsBox

    if presenting:
        _presentation(app_look)
    box = InterventionsBox("rnn")
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)
    off, on = box.forget_bias, box.zero_unit  # a vanilla RNN has no gates; its units can be zeroed
    assert not off.isEnabled() and on.isEnabled()
    text = QtGui.QPalette.ColorRole.Text
    dim = off.palette().color(QtGui.QPalette.ColorGroup.Disabled, text)
    lit = on.palette().color(QtGui.QPalette.ColorGroup.Active, text)
    background = _lightness(on.palette().color(QtGui.QPalette.ColorRole.Window))
    # the disabled text stands out from the background far less than the enabled text
    assert abs(_lightness(dim) - background) < abs(_lightness(lit) - background) / 2
    assert off.grab().toImage() != on.grab().toImage()


@pytest.mark.parametrize("presenting", [False, True])
def test_a_check_box_shows_on_the_dark_themes(qtbot, app_look, presenting):
    """In presentation mode's black theme the check boxes were black on black."""
    if presenting:
        _presentation(app_look)
    box = QtWidgets.QCheckBox("learn biases")
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)
    assert _box_contrast(box) >= 100  # of 255: a box that shows, checked or not
    box.setChecked(True)
    assert _box_contrast(box) >= 100
    box.setEnabled(False)
    assert _box_contrast(box) < 100  # and a disabled one looks it
