"""The device running out of memory: a message, and the offer to go on on the CPU (or a smaller batch)."""

import torch
from PySide6 import QtCore

from explorer.core.engine.session import ERROR, RUNNING, TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.gui.main_window import MainWindow


def oom_once(trainer):
    real = trainer.train_step
    state = {"raised": False}

    def step():
        if not state["raised"]:
            state["raised"] = True
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real()

    trainer.train_step = step


def test_engine_reports_out_of_memory():
    tr = RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=8, device="cpu"))
    oom_once(tr)
    s = TrainingSession(tr)
    try:
        s.step(1)
        s.wait(10)
        assert s.state == ERROR and s.out_of_memory
        assert "out of memory on cpu at step 0" in s.error and "smaller batch" in s.error
        s.start()  # going on clears it
        assert not s.out_of_memory
    finally:
        s.close()


def test_window_offers_to_continue_on_the_cpu(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        oom_once(win.session.trainer)
        win.step_once()
        qtbot.waitUntil(lambda: win.notice.action_button.isVisible(), timeout=5000)
        assert "out of memory" in win.notice.label.text()
        assert win.notice.action_button.text() == "Continue on the CPU"
        qtbot.mouseClick(win.notice.action_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.state == RUNNING and win.session.trainer.step > 3, timeout=5000)
        assert win.device_combo.currentText() == "cpu" and str(win.session.trainer.device) == "cpu"
    finally:
        win.close()


def test_window_offers_a_smaller_batch(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=8, batch_size=20, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        oom_once(win.session.trainer)
        win.step_once()
        more = win.notice.action_buttons[1]
        qtbot.waitUntil(lambda: more.isVisible(), timeout=5000)
        assert more.text() == "Halve the batch (20 → 10)"
        qtbot.mouseClick(more, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.state == RUNNING and win.session.trainer.step > 3, timeout=5000)
        assert win.session.trainer.config.batch_size == 10
        assert win.panel.settings._widgets()["batch_size"].value() == 10
        assert not win.notice.isVisible() or "out of memory" not in win.notice.label.text()
    finally:
        win.close()
