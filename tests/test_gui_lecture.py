"""Lecture mode in the window, as a teacher uses it: one window walks every step of the bundled lecture,
each opening its panel within 10 s with its views drawn; PgDown/PgUp and the step list move through it; it
works in presentation mode; a bad step is a notice and the lecture stays; a step file opens its lecture at
that step; the docks a step may name (declared Qt-free for the lecture's check) are the panels' own."""

import html
import json
import shutil
import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from explorer.core.families.registry import FAMILIES
from explorer.core.lecture import DOCKS
from explorer.core.lecture.steps import default_lecture_folder, load_lecture
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import PANELS
from explorer.gui.widgets.views.frame import shown_text
from tests.helpers import open_window

STEP_SECONDS = 10.0
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CURVE_MIN_PX = 120  # a curve plot (axes included) a class can read at 1366x768; under 4-line captions it was 80


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
            # the step's run folder opened with no notice of it: the pane says what the step shows
            assert not (win.notice.isVisible() and win.notice.label.text().startswith("Opened run")), k
            if step.run is not None:
                assert win.session.run_info and win.session.trainer.step > 0
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


def test_a_run_a_step_opens_is_no_notice_and_a_steps_notice_goes_with_the_step(qtbot, settings, tmp_path):
    """"Opened run <path> at step 225." was a notice of the window's that stayed up through the steps after it
    (a new model at step 5 still "opened run" the RBM's): in the lecture the pane says what a step shows. A
    notice a step leaves (its run could not be opened) goes when the teacher moves on."""
    settings.setValue("training/process", False)
    win = open_window(qtbot, settings, None, size=(1366, 768))
    notice = win.notice
    try:
        assert win.open_lecture(SAMPLES / "lecture" / "03-rbm-conditionals.json")
        lecture = win.lecture
        assert lecture.index == 2 and win.session.run_info and win.session.trainer.step > 0
        assert not (notice.isVisible() and "Opened run" in notice.label.text()), notice.label.text()
        steps = lecture.pane.steps
        steps.itemClicked.emit(steps.item(4))  # on to step 5 from the list: a new model
        assert lecture.index == 4 and not win.session.run_info and win.session.trainer.config.hidden == 100
        assert not (notice.isVisible() and "Opened run" in notice.label.text()), notice.label.text()
    finally:
        win.close()
    # a step whose run can no longer be opened: its notice says so, and goes at the next step
    shutil.copytree(SAMPLES / "lessons" / "rbm-digits-half-trained", tmp_path / "run")
    for k, page in enumerate(({"family": "rbm", "settings": {"hidden": 16}}, {"run": "run"},
                              {"family": "rbm", "settings": {"hidden": 24}})):
        (tmp_path / f"0{k}.json").write_text(json.dumps({"title": f"Step {k}", "text": "Words.", "open": page}))
    win = open_window(qtbot, settings, None, size=(1366, 768))
    notice = win.notice
    try:
        assert win.open_lecture(tmp_path / "00.json")
        (tmp_path / "run" / "weights.safetensors").write_bytes(b"broken")
        assert not win.lecture.go(1)
        assert notice.isVisible() and notice.label.text().startswith("Could not open run")
        win.lecture.next()
        assert win.lecture.index == 2 and win.session.trainer.config.hidden == 24
        assert not (notice.isVisible() and notice.label.text().startswith("Could not open run"))
    finally:
        win.close()


def _plot_parts(view):
    """(the plot widget, its data area, its bottom axis, its legend) of a curve view, as scene rectangles
    where they are items of the plot."""
    pi = view.plot.getPlotItem()
    return view.plot, pi.vb.sceneBoundingRect(), pi.mapRectToScene(pi.getAxis("bottom").geometry()), pi.legend


def test_at_1366x768_the_lectures_curves_have_the_height_and_their_captions_one_line(qtbot, settings, app_look):
    """At 1366x768 the RBM's pseudo-log-likelihood, under a caption of four lines, was a plot 80 px tall (its
    data 40 px) with its legend hanging over the x axis. In the lecture a short window's curves have one line
    of caption each (cut with "…", the whole of it in the tooltip); a 1600x1000 window shows them whole."""
    settings.setValue("training/process", False)
    win = open_window(qtbot, settings, None, size=(1366, 768))
    try:
        assert win.open_lecture(SAMPLES / "lecture" / "02-rbm-energy.json")
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=3000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown)  # step 3: the half-trained RBM's run, its curves drawn
        assert win.lecture.index == 2 and win.session.run_info
        panel = win.panel
        qtbot.waitUntil(lambda: drawn(win), timeout=int(STEP_SECONDS * 1000))
        qtbot.wait(1100)  # (the docks given their room; a legend is placed at most once a second)
        for view in (panel.pll_curve, panel.error_curve):
            plot, data, axis, legend = _plot_parts(view)
            legend.place(force=True)
            assert plot.height() >= CURVE_MIN_PX, (view.title.text(), plot.height())
            assert data.height() >= CURVE_MIN_PX / 2, (view.title.text(), data.height())
            shown_legend = legend.sceneBoundingRect() if legend.isVisible() else legend.chip.sceneBoundingRect()
            assert not shown_legend.intersects(axis), (view.title.text(), shown_legend, axis)
            caption = view.caption
            lines = caption.heightForWidth(caption.width()) / caption.fontMetrics().lineSpacing()
            assert lines < 1.5 and shown_text(caption).endswith("…"), shown_text(caption)
            assert shown_text(caption)[:-1].rstrip() in caption.toolTip().replace("<sub>", "").replace("</sub>", "")
        full = panel.pll_curve.caption.whole_text()
        assert "normaliser Z" in full and "normaliser Z" in panel.pll_curve.caption.toolTip()
        # a taller window: whole captions again (and when the lecture is closed)
        win.resize(1600, 1000)
        qtbot.waitUntil(lambda: panel.pll_curve.caption.text() == full, timeout=3000)
        assert panel.pll_curve.caption.toolTip() == ""
        win.resize(1366, 768)
        qtbot.waitUntil(lambda: shown_text(panel.pll_curve.caption).endswith("…"), timeout=3000)
        win.lecture.dock.close()
        qtbot.waitUntil(lambda: panel.pll_curve.caption.text() == full, timeout=3000)
        assert isinstance(panel.pll_curve.caption, QtWidgets.QLabel)
    finally:
        win.close()


def test_the_lectures_check_runs_off_the_gui_thread_which_keeps_painting(qtbot, settings, monkeypatch):
    """Ctrl+L checks every step's run against its model first (the first model's optimiser alone loads 1.5 s of
    PyTorch): the window stood still for 2-3 s. The check now runs on a thread; the window's timers go on."""
    import threading

    from explorer.gui import lecture as lecture_module

    settings.setValue("training/process", False)
    win = open_window(qtbot, settings, None, size=(1366, 768))
    ticks, checked_on = [], []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    real = lecture_module.load_lecture_at

    def slow_check(folder):
        checked_on.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.5)  # (a check that takes a while)
        return real(folder)

    monkeypatch.setattr(lecture_module, "load_lecture_at", slow_check)
    try:
        t0 = time.perf_counter()
        assert win.open_lecture(SAMPLES / "lecture" / "03-rbm-conditionals.json")
        during = [t for t in ticks if t0 + 0.1 < t < t0 + 0.45]
        assert checked_on == [False] and len(during) >= 5, (checked_on, len(during))
        assert win.lecture.index == 2
    finally:
        timer.stop()
        win.close()
