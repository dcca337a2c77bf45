"""Presentation mode: full screen, large type, settings hidden, everything from the keyboard."""

from PySide6 import QtCore, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import PANELS


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


def test_presentation_mode_sizes_the_docks_for_the_screen_and_gives_them_back(qtbot, tmp_path):
    """Full screen with large type, the docks take the panel's proportions of the screen again (they
    had kept their pixel heights, and the larger captions left the curves 40 px): in presentation mode the
    panel's presentation docks share the right column, the RBM's curves its lower half; leaving the mode
    puts back the sizes the user had."""
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    bottom = win.docks["rbmCurvesDock"]
    try:
        qtbot.wait(100)  # the first sizes are applied just after the window shows
        win.resizeDocks([bottom], [200], QtCore.Qt.Orientation.Vertical)  # the user's choice
        qtbot.waitUntil(lambda: abs(bottom.height() - 200) <= 2, timeout=2000)
        win.enter_presentation()
        qtbot.waitUntil(lambda: win.isFullScreen()
                        and abs(bottom.height() - win.docks["rbmFiltersDock"].height()) <= 8
                        and bottom.height() > 300, timeout=3000)
        win.leave_presentation()
        qtbot.waitUntil(lambda: abs(bottom.height() - 200) <= 2, timeout=3000)
    finally:
        win.leave_presentation()
        win.close()
