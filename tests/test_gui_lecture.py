"""Lecture mode in the window, as a teacher uses it: one window walks every step of the bundled lecture,
each opening its panel within 10 s with its views drawn; PgDown/PgUp and the step list move through it; it
works in presentation mode; a bad step is a notice and the lecture stays."""

import html
import json
import time

from PySide6 import QtCore

from explorer.core.lecture.steps import default_lecture_folder, load_lecture
from explorer.gui.main_window import MainWindow

STEP_SECONDS = 10.0


def drawn(win) -> bool:
    snap = win.session.latest_snapshot() if win.session is not None else None
    return snap is not None and win.panel._last_seq == snap.seq


def test_every_step_opens_its_panel_with_its_views_drawn_within_ten_seconds(qtbot, settings):
    settings.setValue("training/process", False)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1600, 1000)
    win.show()
    qtbot.waitExposed(win)
    steps = load_lecture(default_lecture_folder())
    try:
        assert win.open_lecture()
        lecture = win.lecture
        assert lecture.dock.isVisible() and lecture.index == 0
        assert [lecture.pane.steps.item(i).text() for i in range(2)] == [f"1. {steps[0].title}",
                                                                        f"2. {steps[1].title}"]
        took = {}
        for k, step in enumerate(steps):
            start = time.monotonic()
            if k:
                assert lecture.go(k), (step.path, win.notice.label.text())
            if step.run is not None:
                assert win.notice.label.text().startswith(f"Opened run {step.run}")
            else:
                assert win.family == step.family
                qtbot.waitUntil(lambda step=step: win.session.trainer.step >= step.train_steps,
                                timeout=int(STEP_SECONDS * 1000))
            qtbot.waitUntil(lambda: drawn(win), timeout=int(STEP_SECONDS * 1000))
            took[step.path.name] = time.monotonic() - start
            assert f">{html.escape(step.title)}</span>" in lecture.pane.title.text()
            assert lecture.pane.counter.text().startswith(f"Step {k + 1} of {len(steps)}")
            if step.dock:
                assert win.docks[step.dock].isVisible(), step.dock
            if step.builder:
                assert win.builder_window is not None and win.builder_window.isVisible()
                win.builder_window.close()
            if step.walkthrough:
                assert win.panel.walkthrough is not None and win.panel.walkthrough.isVisible()
                win.panel.walkthrough.close()
        assert max(took.values()) < STEP_SECONDS, took
    finally:
        win.close()


def test_pgdown_pgup_the_list_and_presentation_mode(qtbot, settings, tmp_path):
    settings.setValue("training/process", False)
    folder = tmp_path / "lecture"
    folder.mkdir()
    for k, (family, hidden) in enumerate((("rbm", 16), ("rbm", 24), ("autoencoder", 12))):
        (folder / f"0{k}.json").write_text(json.dumps({
            "title": f"Step {k}", "text": "Words.", "equations": [r"h = \sigma(W x)"],
            "open": {"family": family, "settings": {"hidden": hidden}}, "next": "Press Play."}))
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    qtbot.waitExposed(win)
    try:
        assert win.open_lecture(folder)
        lecture = win.lecture
        assert win.session.trainer.config.hidden == 16
        win.activateWindow()  # (a shortcut reaches the active window only)
        qtbot.waitUntil(win.isActiveWindow, timeout=3000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)
        assert lecture.index == 1 and win.session.trainer.config.hidden == 24
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)
        assert lecture.index == 2 and win.family == "autoencoder"
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)  # the last step: stays
        assert lecture.index == 2
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageUp)
        assert lecture.index == 1 and win.family == "rbm"
        item = lecture.pane.steps.item(0)
        lecture.pane.steps.itemClicked.emit(item)
        assert lecture.index == 0 and win.session.trainer.config.hidden == 16
        assert "σ" in lecture.pane.equations.text() and "<sub>" not in lecture.pane.text.text()
        win.enter_presentation()
        qtbot.waitUntil(win.isFullScreen, timeout=3000)
        assert lecture.dock.isVisible()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)
        assert lecture.index == 1 and win.presenting
        lecture.dock.close()  # closed: PgDown is the window's again, the settings come back
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)
        assert lecture.index == 1
    finally:
        win.leave_presentation()
        win.close()


def test_a_bad_lecture_or_step_is_a_notice_and_the_window_stays(qtbot, settings, tmp_path):
    settings.setValue("training/process", False)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    try:
        (tmp_path / "01.json").write_text("{")
        assert not win.open_lecture(tmp_path)
        assert win.notice.label.text().startswith(f"Could not open the lecture: {tmp_path / '01.json'}: not valid")
        assert win.family == "rbm" and win.session is not None
    finally:
        win.close()
