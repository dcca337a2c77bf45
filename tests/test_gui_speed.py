"""The training speed, from the toolbar and the keyboard: full speed by default, down to a step a second."""

import time

from PySide6 import QtCore, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.gui.main_window import MainWindow
from explorer.gui.window.actions import STEP_RATES


def open_window(qtbot, settings):
    win = MainWindow(RBMConfig(dataset="digits", hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_the_speed_box_sets_the_session_rate_and_training_keeps_to_it(qtbot, settings):
    win = open_window(qtbot, settings)
    try:
        combo = win.speed_combo
        assert win.findChild(QtWidgets.QToolBar, "trainingToolbar").isAncestorOf(combo)
        assert combo.isVisible() and combo.currentText() == "full speed"
        assert win.step_rate is None and win.session.step_rate is None
        assert [combo.itemText(i) for i in (0, 1, combo.count() - 1)] == ["full speed", "1,000 steps/s", "1 step/s"]
        combo.setCurrentIndex(combo.findText("5 steps/s"))  # as a user picks it
        assert win.step_rate == 5.0 and win.session.step_rate == 5.0
        win.toggle_play()
        qtbot.waitUntil(lambda: win.session.trainer.step >= 1, timeout=10000)
        first, t0 = win.session.trainer.step, time.perf_counter()
        qtbot.wait(2000)
        made, dt = win.session.trainer.step - first, time.perf_counter() - t0
        assert 0.6 * 5 * dt <= made <= 1.4 * 5 * dt + 1
        qtbot.waitUntil(lambda: "at most 5 steps/s" in win.status_rate.text(), timeout=3000)
        combo.setCurrentIndex(0)  # full speed again
        assert win.session.step_rate is None
        qtbot.waitUntil(lambda: win.session.trainer.step > first + made + 200, timeout=10000)
        win.toggle_play()
        qtbot.waitUntil(lambda: win.session.state != RUNNING, timeout=5000)
        # the chosen speed holds for the next model too
        combo.setCurrentIndex(combo.findText("2 steps/s"))
        win.switch_family("autoencoder")
        assert win.session.step_rate == 2.0 and combo.currentText() == "2 steps/s"
    finally:
        win.close()


def test_brackets_change_the_speed_in_presentation_mode_too(qtbot, settings):
    win = open_window(qtbot, settings)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)  # window shortcuts need the active window
    try:
        win.enter_presentation()
        assert not win.speed_combo.isVisible()  # the toolbar is hidden: the keys still work
        qtbot.keyClick(win, QtCore.Qt.Key.Key_BracketLeft)
        assert win.step_rate == 1000.0 and win.session.step_rate == 1000.0
        for _ in range(20):  # down to one step a second, and no further
            qtbot.keyClick(win, QtCore.Qt.Key.Key_BracketLeft)
        assert win.step_rate == 1.0 == STEP_RATES[-1]
        assert "1 step/s" in win.statusBar().currentMessage()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_BracketRight)
        assert win.step_rate == 2.0
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Plus)
        assert win.step_rate == 5.0
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Minus)
        assert win.step_rate == 2.0
        for _ in range(20):
            qtbot.keyClick(win, QtCore.Qt.Key.Key_BracketRight)
        assert win.step_rate is None and win.session.step_rate is None  # full speed is the top
        assert win.speed_combo.currentText() == "full speed"
    finally:
        win.leave_presentation()
        win.close()


def test_a_speed_off_the_list_steps_to_the_next_listed_one(qtbot, settings):
    win = open_window(qtbot, settings)
    try:
        win.set_step_rate(7)
        assert win.speed_combo.currentText() == "7 steps/s" and win.session.step_rate == 7.0
        win.act_slower.trigger()
        assert win.step_rate == 5.0
        win.set_step_rate(7)
        win.act_faster.trigger()
        assert win.step_rate == 10.0
    finally:
        win.close()
