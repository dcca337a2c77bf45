"""Lecture mode in the window, as a teacher uses it: one window walks every step of the bundled lecture,
each opening its panel within 10 s with its views drawn; PgDown/PgUp and the step list move through it; it
works in presentation mode; a bad step is a notice and the lecture stays; a step file opens its lecture at
that step; the docks a step may name (declared Qt-free for the lecture's check) are the panels' own."""

import html
import json
import shutil
import time
from pathlib import Path

from PySide6 import QtCore

from explorer.core.families.registry import FAMILIES
from explorer.core.lecture import DOCKS
from explorer.core.lecture.steps import default_lecture_folder, load_lecture
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import PANELS
from tests.helpers import open_window

STEP_SECONDS = 10.0


def drawn(win) -> bool:
    snap = win.session.latest_snapshot() if win.session is not None else None
    return snap is not None and win.panel._last_seq == snap.seq


def test_every_step_opens_its_panel_with_its_views_drawn_within_ten_seconds(qtbot, settings):
    settings.setValue("training/process", False)
    win = open_window(qtbot, settings, None, size=(1600, 1000))
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
            assert lecture.pane.equations.equations == list(step.equations_html)
            listed = lecture.pane.steps
            qtbot.wait(20)  # (the list scrolls once it is laid out)
            shown, row = listed.viewport().rect(), listed.visualItemRect(listed.item(k))
            assert shown.top() <= row.top() and row.bottom() <= shown.bottom(), (k, shown, row)  # in the list's view
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
            "open": {"family": family, "settings": {"hidden": hidden}}, "next": "Press Play.",
            **({"dock": "rbmHiddenDock"} if k == 1 else {})}))
    win = open_window(qtbot, settings, None, size=(1366, 768))
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
        assert "σ" in lecture.pane.equations.equations[0] and "<sub>" not in lecture.pane.text.text()
        win.enter_presentation()
        qtbot.waitUntil(win.isFullScreen, timeout=3000)
        assert lecture.dock.isVisible()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)
        assert lecture.index == 1 and win.presenting
        # the step's view is not one of the RBM's presentation views: it takes the lower one's place
        assert "rbmHiddenDock" not in win.panel.presentation_docks
        hidden = win.docks["rbmHiddenDock"]
        qtbot.waitUntil(hidden.isVisible, timeout=3000)
        assert win.dockWidgetArea(hidden) == QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        assert win.docks[win.panel.presentation_docks[0]].isVisible()
        lecture.dock.close()  # closed: PgDown is the window's again, the settings come back
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)
        assert lecture.index == 1
    finally:
        win.leave_presentation()
        win.close()


def test_a_clickers_pgdown_goes_through_the_step_through_and_from_the_builders_window(qtbot, settings, tmp_path):
    """A presenter's clicker sends only PgDown/PgUp: the CD-1 step-through a step opens walks its stages with
    them and, past its last, closes and goes on; the builder a step opens (a window of its own, which takes
    the focus) passes them to the lecture instead of turning its Preset list."""
    settings.setValue("training/process", False)
    folder = tmp_path / "lecture"
    folder.mkdir()
    pages = ({"open": {"family": "rbm", "settings": {"hidden": 16}}, "walkthrough": True},
             {"open": {"family": "rbm", "settings": {"hidden": 24}}, "builder": "lenet5"},
             {"open": {"family": "autoencoder", "settings": {"hidden": 12}}})
    for k, page in enumerate(pages):
        (folder / f"0{k}.json").write_text(json.dumps({"title": f"Step {k}", "text": "Words.", **page}))
    win = open_window(qtbot, settings, None, size=(1366, 768))
    K = QtCore.Qt.Key
    try:
        assert win.open_lecture(folder)
        lecture = win.lecture
        dialog = win.panel.walkthrough
        assert dialog is not None and dialog.isVisible() and dialog.data is not None
        for stage in range(1, 5):
            qtbot.keyClick(dialog, K.Key_PageDown)
            assert dialog.stage == stage and lecture.index == 0
        qtbot.keyClick(dialog, K.Key_PageDown)  # past the last stage: the dialog closes, the lecture goes on
        assert not dialog.isVisible() and lecture.index == 1
        assert win.session.trainer.config.hidden == 24
        builder = win.builder_window
        assert builder is not None and builder.isVisible()
        builder.activateWindow()
        qtbot.waitUntil(builder.isActiveWindow, timeout=3000)
        combo = builder.builder.preset_combo
        combo.setFocus()
        preset = combo.currentText()
        qtbot.keyClick(combo, K.Key_PageDown)
        assert lecture.index == 2 and win.family == "autoencoder" and combo.currentText() == preset
        builder.activateWindow()
        qtbot.waitUntil(builder.isActiveWindow, timeout=3000)
        qtbot.keyClick(combo, K.Key_PageUp)
        assert lecture.index == 1 and win.family == "rbm" and combo.currentText() == preset
        qtbot.keyClick(combo, K.Key_PageUp)  # back to the step-through's step: it opens again at its first stage
        dialog = win.panel.walkthrough
        assert lecture.index == 0 and dialog.isVisible() and dialog.stage == 0
        qtbot.keyClick(dialog, K.Key_PageDown)
        assert dialog.stage == 1 and lecture.index == 0  # inside the dialog, the keys are its own
        qtbot.keyClick(dialog, K.Key_PageUp)
        qtbot.keyClick(dialog, K.Key_PageUp)  # before its first stage: closes; there is no step before
        assert not dialog.isVisible() and lecture.index == 0
    finally:
        if win.builder_window is not None:
            win.builder_window.close()
        win.close()


def test_a_bad_lecture_or_step_is_a_notice_and_the_window_stays(qtbot, settings, tmp_path, monkeypatch):
    settings.setValue("training/process", False)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    try:
        (tmp_path / "01.json").write_text("{")
        assert not win.open_lecture(tmp_path)
        assert win.notice.label.text().startswith(f"Could not open the lecture: {tmp_path / '01.json'}: not valid")
        assert win.family == "rbm" and win.session is not None
        # Ctrl+L on a lecture whose run folder is corrupt, or whose step names a dock its panel lacks: a notice
        # naming the step and the field (they opened the lecture, and failed in class or went unseen in the log)
        samples = Path(__file__).resolve().parents[1] / "samples"
        shutil.copytree(samples / "lecture", tmp_path / "copy" / "lecture")
        shutil.copytree(samples / "lessons", tmp_path / "copy" / "lessons")
        lecture = tmp_path / "copy" / "lecture"
        monkeypatch.setattr("explorer.core.lecture.steps.default_lecture_folder", lambda: lecture)
        weights = tmp_path / "copy" / "lessons" / "rbm-digits-half-trained" / "weights.safetensors"
        good = weights.read_bytes()
        weights.write_bytes(good[: len(good) // 2])
        win.act_lecture.trigger()
        assert win.notice.label.text().startswith(
            f"Could not open the lecture: {lecture / '03-rbm-conditionals.json'}: open.run: {weights}: ")
        weights.write_bytes(good)
        step = lecture / "02-rbm-energy.json"
        step.write_text(json.dumps({**json.loads(step.read_text()), "dock": "nonexistentDock"}))
        win.act_lecture.trigger()
        assert win.notice.label.text().startswith(
            f"Could not open the lecture: {step}: dock: the rbm panel has no dock 'nonexistentDock'")
        assert win.lecture is None or not win.lecture.dock.isVisible()
        assert win.family == "rbm" and win.session is not None and not win.session.trainer.step
    finally:
        win.close()


def test_a_step_file_opens_its_lecture_at_that_step(qtbot, settings, tmp_path):
    settings.setValue("training/process", False)
    for k, hidden in enumerate((16, 24, 32)):
        (tmp_path / f"0{k}.json").write_text(json.dumps({
            "title": f"Step {k}", "text": "Words.", "open": {"family": "rbm", "settings": {"hidden": hidden}}}))
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    try:
        assert win.open_lecture(tmp_path / "01.json")
        lecture = win.lecture
        assert lecture.index == 1 and win.session.trainer.config.hidden == 24 and len(lecture.steps) == 3
        assert lecture.folder == tmp_path
        lecture.previous()
        assert lecture.index == 0 and win.session.trainer.config.hidden == 16
    finally:
        win.close()


def test_the_docks_a_step_may_name_are_the_docks_of_its_panel(qapp):
    """The lecture checks a step's dock before any window, without Qt, against explorer.core.lecture.DOCKS:
    that table must be the docks each panel makes, or a good step is refused (or a bad one is not)."""
    for family, panel_cls in PANELS.items():
        panel = panel_cls(FAMILIES[family].config_cls(), None)
        made = tuple(spec.object_name for spec in panel.dock_specs())
        assert DOCKS[family] == made, f"{family}: DOCKS in explorer/core/lecture/docks.py must be {made}"


def test_an_equation_is_drawn_whole_on_one_line_and_shrinks_to_a_narrow_pane(qtbot):
    from PySide6 import QtGui

    from explorer.core.lecture import equation_html
    from explorer.gui.widgets.equations import MIN_SCALE, EquationView

    view = EquationView()
    qtbot.addWidget(view)
    view.set_equations([equation_html(r"p(h_j = 1 | \mathbf{x}) = \sigma(c_j + \sum_i W_{ji} x_i)"),
                        equation_html(r"\frac{\partial L}{\partial s_{t-1}} = W^\top \frac{\partial L}{\partial s_t}")])
    line, fraction = view.natural_size(0), view.natural_size(1)
    assert fraction.height() > 1.8 * line.height()  # numerator over denominator, not side by side
    view.resize(int(line.width()) * 2, 200)
    view.show()
    qtbot.waitExposed(view)
    assert view.scale_for(0, view.width()) == 1.0
    assert view.heightForWidth(view.width()) == int(line.height() + fraction.height() + 6 + 0.999)
    narrow = int(line.width() * 0.7)  # a narrow pane: one line still, 70 % of the size
    assert abs(view.scale_for(0, narrow) - narrow / line.width()) < 1e-9
    assert view.heightForWidth(narrow) < view.heightForWidth(view.width())
    assert view.scale_for(0, 10) == MIN_SCALE
    image = view.grab().toImage()
    ink = QtGui.QColor(view.palette().color(QtGui.QPalette.ColorRole.WindowText))
    first_line = [image.pixelColor(x, y) for x in range(image.width()) for y in range(int(line.height()))]
    assert any(abs(c.lightness() - ink.lightness()) < 60 for c in first_line)  # the type is drawn
