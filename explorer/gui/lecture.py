"""Lecture mode: the lecture's steps in a pane beside the live panel, one key press a step.

The steps are data (``samples/lecture/*.json``, checked by ``explorer.core.lecture``); this module shows a
step (its title, text, typeset equations and what to do next) and has the window open what the step asks
for: a model with settings or a run folder, a few quick training steps, a dock brought forward, the
builder or the CD-1 step-through. PgDown/PgUp (what a presenter's clicker sends) go to the next and
previous step while the pane is open, from the builder's window too; in the CD-1 step-through they walk its
stages, and past its last (before its first) close it and go on. The list jumps to any step. A step that cannot be carried out is
a notice; the lecture and the window stay.

What a step says is on the pane: opening its run folder is no notice of the window's (a path is noise to a
class, and "Opened run ... at step 225" stayed up through the steps after it, where it was no longer true),
and a notice a step left (its run could not be opened, say) goes when the step changes. In a short window
(a 1366x768 projector) the curves' captions are one line each, the whole caption their tooltip: under
captions of three or four lines their plots were 40-60 px tall.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.lecture import LectureError, Step, load_lecture_at
from explorer.core.safe_read import escape_text
from explorer.gui.widgets.equations import EquationView
from explorer.gui.widgets.sequence_views import TraceView
from explorer.gui.widgets.views import CurveView
from explorer.gui.window.remote import off_gui_thread

log = logging.getLogger(__name__)

SHORT_WINDOW_PX = 900  # a window less tall than this (a 1366x768 screen): the curves' captions take one line
CURVE_VIEWS = (CurveView, TraceView)  # the views that plot curves (over steps, over time)


class LecturePane(QtWidgets.QWidget):
    """The step on show (title, text, equations, next) over the list of steps and Previous/Next."""

    sigStepChosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lecturePane")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        self.counter = QtWidgets.QLabel("")
        self.counter.setObjectName("lectureCounter")
        self.counter.setWordWrap(True)
        self.title = QtWidgets.QLabel("")
        self.title.setObjectName("lectureTitle")
        self.title.setWordWrap(True)
        self.title.setTextFormat(QtCore.Qt.TextFormat.RichText)  # sizes relative to the type on show, so
        # presentation mode's larger type makes them larger too
        self.text = QtWidgets.QLabel("")
        self.text.setObjectName("lectureText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.equations = EquationView()  # drawn whole, one line each, shrunk to fit rather than wrapped
        self.equations.setObjectName("lectureEquations")
        self.next_label = QtWidgets.QLabel("")
        self.next_label.setObjectName("lectureNext")
        self.next_label.setWordWrap(True)
        self.steps = QtWidgets.QListWidget()
        self.steps.setObjectName("lectureSteps")
        self.steps.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.steps.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        self.steps.setMaximumHeight(220)  # the step on show has the height; the list scrolls
        self.steps.installEventFilter(self)
        self.steps.viewport().installEventFilter(self)
        self.steps.itemActivated.connect(lambda item: self.sigStepChosen.emit(self.steps.row(item)))
        self.steps.itemClicked.connect(lambda item: self.sigStepChosen.emit(self.steps.row(item)))
        self.prev_btn = QtWidgets.QPushButton("◀ Previous (PgUp)")
        self.next_btn = QtWidgets.QPushButton("Next (PgDn) ▶")
        self.prev_btn.setObjectName("lecturePrev")
        self.next_btn.setObjectName("lectureNextButton")
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.prev_btn)
        buttons.addWidget(self.next_btn)
        body = QtWidgets.QWidget()
        body_lay = QtWidgets.QVBoxLayout(body)
        body_lay.setContentsMargins(0, 0, 0, 0)
        # the equations under the title, above the words: on a projector they are what the room reads first,
        # and a long text would push them below the fold of a 768-pixel screen
        for w in (self.counter, self.title, self.equations, self.text, self.next_label):
            body_lay.addWidget(w)
        body_lay.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the text wraps
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(scroll)
        split.addWidget(self.steps)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        lay.addWidget(split, 1)
        lay.addLayout(buttons)

    def keep_current_step_in_view(self) -> None:
        """Scroll the list to the step on show (step 17 of 19 is below a short list's fold)."""
        item = self.steps.currentItem()
        if item is not None:
            self.steps.scrollToItem(item, QtWidgets.QAbstractItemView.ScrollHint.PositionAtCenter)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        # presentation mode's larger type re-lays the list out and leaves it scrolled where it was: once the
        # list has its new size, bring the step on show back into view
        if event.type() in (QtCore.QEvent.Type.Resize, QtCore.QEvent.Type.FontChange,
                            QtCore.QEvent.Type.StyleChange):
            QtCore.QTimer.singleShot(0, self, self.keep_current_step_in_view)  # (not once the pane is gone)
        return False

    def set_steps(self, steps: list[Step]) -> None:
        self.steps.clear()
        for k, step in enumerate(steps, 1):
            self.steps.addItem(f"{k}. {step.title}")

    def show_step(self, index: int, step: Step, total: int) -> None:
        self.counter.setText(f"Step {index + 1} of {total}" + (f"  ·  {step.section}" if step.section else ""))
        self.title.setText(f"<span style='font-size:x-large; font-weight:bold'>{html.escape(step.title)}</span>")
        self.text.setText(step.text)
        self.equations.set_equations(list(step.equations_html))
        self.equations.setVisible(bool(step.equations_html))
        self.next_label.setText(f"<b>Now:</b> {html.escape(step.next)}" if step.next else "")
        self.next_label.setVisible(bool(step.next))
        self.steps.blockSignals(True)
        self.steps.setCurrentRow(index)
        self.keep_current_step_in_view()
        self.steps.blockSignals(False)
        self.prev_btn.setEnabled(index > 0)
        self.next_btn.setEnabled(index < total - 1)


class Lecture(QtCore.QObject):
    """The lecture of one window: its dock, its steps and the step on show. ``go(k)`` opens step k."""

    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.steps: list[Step] = []
        self.index = -1
        self.folder: Path | None = None
        self.pane = LecturePane()
        self.pane.sigStepChosen.connect(self.go)
        self.pane.prev_btn.clicked.connect(self.previous)
        self.pane.next_btn.clicked.connect(self.next)
        self.dock = QtWidgets.QDockWidget("Lecture", window)
        self.dock.setObjectName("lectureDock")
        self.dock.setWidget(self.pane)
        self.dock.setMinimumWidth(300)
        window.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        self.dock.hide()
        # a presenter's clicker sends PgDown/PgUp; they go to the lecture only while its pane is open, from
        # any of the app's windows (the builder a step opens takes the focus: its Preset list took the keys
        # and the lecture was stuck); a modal dialog still keeps them (Qt blocks the shortcut behind it)
        self.shortcuts = []
        for key, slot in ((QtCore.Qt.Key.Key_PageDown, self.next), (QtCore.Qt.Key.Key_PageUp, self.previous)):
            sc = QtGui.QShortcut(QtGui.QKeySequence(key), window)
            sc.setContext(QtCore.Qt.ShortcutContext.ApplicationShortcut)
            sc.activated.connect(slot)
            sc.setEnabled(False)
            self.shortcuts.append(sc)
        self.dock.visibilityChanged.connect(self._dock_shown)
        self.dock.visibilityChanged.connect(self._closed)
        self._set_aside: list[QtWidgets.QDockWidget] = []  # the panels' left docks hidden for the lecture
        self._step_notice: str | None = None  # the notice the step on show left in the window's bar
        self._captions_due = False
        window.installEventFilter(self)  # (its height decides the captions' lines: see _fit_captions)

    def _dock_shown(self, visible: bool) -> None:
        for sc in self.shortcuts:
            sc.setEnabled(visible or self.dock.isVisible())

    def open(self, folder: str | Path) -> bool:
        """Load the lecture in ``folder`` and open its first step (``folder`` a step file: its folder's lecture,
        at that step); False, with a notice, if any of it cannot be used."""
        # its run folders are checked against their models first: the first time, building a model's optimiser
        # loads a part of PyTorch (1.5 s on a small machine). Off the GUI thread: the window goes on painting
        # (the views, the busy pointer) instead of standing still, and takes no clicks or keys meanwhile
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            steps, start = off_gui_thread(lambda: load_lecture_at(folder))
        except LectureError as exc:
            self.window.notice.show_message(f"Could not open the lecture: {escape_text(exc)}", error=True)
            return False
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.steps, self.folder, self.index = steps, steps[start].path.parent, -1
        self.pane.set_steps(steps)
        self.dock.show()
        self.dock.raise_()
        for sc in self.shortcuts:
            sc.setEnabled(True)
        self.go(start)
        return True

    def next(self) -> None:
        if self.index < len(self.steps) - 1:
            self.go(self.index + 1)

    def previous(self) -> None:
        if self.index > 0:
            self.go(self.index - 1)

    def go(self, index: int) -> bool:
        """Show step ``index`` and have the window open what it asks for. False if that failed (the window
        then shows why, as when the user does the same by hand)."""
        if not 0 <= index < len(self.steps):
            return False
        notice = self.window.notice
        if self._step_notice is not None and notice.isVisible() and notice.label.text() == self._step_notice:
            notice.hide()  # the step before's (its run could not be opened, say): not about this one
        before = (notice.isVisible(), notice.label.text())
        try:
            return self._open(index)
        finally:
            after = (notice.isVisible(), notice.label.text())
            self._step_notice = after[1] if after[0] and after != before else None

    def _open(self, index: int) -> bool:
        self.index = index
        step = self.steps[index]
        self.pane.show_step(index, step, len(self.steps))
        win = self.window
        if step.run is not None:
            ok = win.open_run(step.run, quiet=True)  # (the pane says what the step shows)
        else:
            ok = win.start_model(step.make_config())
        if not ok:
            return False
        if step.train_steps:
            win.session.step(step.train_steps)
        if step.play and win.session.state != RUNNING:
            win.toggle_play()
        if step.dock:
            dock = win.docks.get(step.dock)
            if dock is None:
                log.warning("lecture step %s: no dock %r on the %s panel", step.path, step.dock, win.family)
            else:
                if win.presenting:
                    self._present_dock(dock)
                dock.show()
                dock.raise_()
        if step.builder:
            win.show_builder().builder.load_preset(step.builder)  # (an unsaved network of the user's stays kept)
        if step.walkthrough and hasattr(win.panel, "open_walkthrough"):
            dialog = win.panel.open_walkthrough()
            if dialog is not None:  # the clicker's PgDown past its last stage goes on with the lecture
                dialog.sigPastEnd.connect(lambda: self._leave_walkthrough(dialog, self.next))
                dialog.sigBeforeStart.connect(lambda: self._leave_walkthrough(dialog, self.previous))
        self.dock.raise_()
        QtCore.QTimer.singleShot(0, self._give_room)
        return True

    def _leave_walkthrough(self, dialog: QtWidgets.QDialog, then) -> None:
        """Close the step's CD-1 step-through and go to the next or previous step (``then``)."""
        dialog.close()
        if self.dock.isVisible():
            then()

    def _present_dock(self, dock: QtWidgets.QDockWidget) -> None:
        """In presentation mode the right column shows the panel's own few views: the step's view, if it is not
        one of them, takes the lower one's place there (leaving presentation mode puts every dock back)."""
        win = self.window
        shown = [win.docks[name] for name in win.panel.presentation_docks if name in win.docks]
        if dock in shown or not shown:
            return
        if len(shown) > 1:
            shown[-1].hide()
        win.present_in_column(dock, shown[0])  # (as V does: its place in the column, its title bar off)

    def _give_room(self) -> None:
        """The left column for the lecture: the panel's own left docks (its settings among them) step aside
        while the lecture is open, and come back when it is closed (View lists them meanwhile)."""
        win = self.window
        if not self.dock.isVisible():
            return
        left = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
        wanted = self.steps[self.index].dock if 0 <= self.index < len(self.steps) else ""
        for dock, area in win.family_docks():
            if area == left and dock.isVisible() and dock.objectName() != wanted:  # (not the step's own)
                dock.hide()
                self._set_aside.append(dock)
        if win.dockWidgetArea(self.dock) == left:
            win.resizeDocks([self.dock], [max(320, int(win.width() * 0.24))], QtCore.Qt.Orientation.Horizontal)
        self._fit_captions()

    def _fit_captions(self) -> None:
        """While the lecture is open in a short window, the captions of the curves take one line each (cut
        off with "…", the whole caption their tooltip), so that the curves have the height: at 1366x768 the
        RBM's pseudo-log-likelihood, under its four lines, was a plot 40 px tall. Whole again in a taller
        window (1600x1000) and once the lecture is closed."""
        self._captions_due = False
        short = self.dock.isVisible() and self.window.height() < SHORT_WINDOW_PX
        for cls in CURVE_VIEWS:
            for view in self.window.findChildren(cls):
                view.set_caption_lines(1 if short else 0)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.window and event.type() == QtCore.QEvent.Type.Resize and not self._captions_due:
            self._captions_due = True  # (once the resizes of a move to full screen and back are over)
            QtCore.QTimer.singleShot(0, self, self._fit_captions)
        return False

    def _closed(self, visible: bool) -> None:
        if visible or self.dock.isVisible():
            return
        family_docks = {d for d, _a in self.window.family_docks()}
        for dock in self._set_aside:
            if dock in family_docks:
                dock.show()
        self._set_aside.clear()
        self._fit_captions()


__all__ = ["Lecture", "LecturePane"]
