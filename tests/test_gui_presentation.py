"""Presentation mode: full screen, large type, settings hidden, everything from the keyboard."""

from PySide6 import QtCore, QtWidgets

from explorer.core.engine import RUNNING
from explorer.core.rbm_trainer import RBMConfig
from explorer.gui.main_window import PANELS, MainWindow


def test_presentation_mode_by_keyboard(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)  # window shortcuts need the active window
    app = QtWidgets.QApplication.instance()
    size0, style0 = app.font().pointSize(), app.styleSheet()
    try:
        assert win.docks["rbmSettingsDock"].isVisible()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_F5)
        assert win.presenting and win.isFullScreen()
        assert not win.docks["rbmSettingsDock"].isVisible() and not win.menuBar().isVisible()
        assert app.font().pointSize() == size0 + 6 and "Presentation mode" in app.styleSheet()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)  # play, with no toolbar in sight
        qtbot.waitUntil(lambda: win.session.state == RUNNING, timeout=5000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: win.session.state != RUNNING, timeout=5000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert win.family == list(PANELS)[1]
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageUp, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert win.family == "rbm"
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Escape)
        assert not win.presenting and not win.isFullScreen()
        assert win.docks["rbmSettingsDock"].isVisible() and win.menuBar().isVisible()
        assert app.font().pointSize() == size0 and app.styleSheet() == style0
    finally:
        win.leave_presentation()
        win.close()
