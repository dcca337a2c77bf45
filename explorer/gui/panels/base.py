"""What every live panel shares: following a session, reading its metrics and snapshots, the docks.

A panel subclass builds its views and settings, and implements ``central_widget``, ``dock_specs``,
``clear_curves``, ``add_metrics``, ``stats_parts`` and ``show_snapshot``. This base does the
bookkeeping: curves start over after a reset, curves redraw a few times a second, a snapshot is
drawn once, and only if it belongs to the current run. Every snapshot drawn is also offered to the
panel's :class:`~explorer.core.engine.timeline.SnapshotTimeline`, so the timeline bar can scrub back: while a
kept snapshot is on show (``viewing``), new ones are recorded but not drawn, and the curves go on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.engine.timeline import SnapshotTimeline
from explorer.gui.pacing import PROCESS_SNAPSHOT_SHARE, VIEW_SHARE, ViewPacer
from explorer.gui.widgets.settings_form import SettingsForm

CURVE_INTERVAL_S = 0.25  # curves and the stats line redraw at most 4 times a second
PART_GAP_MS = 1          # between two parts of a drawing (a snapshot's, the curves'): Qt paints in between
PRESENTATION_MIN_VIEW_PX = 200  # in presentation mode, no view's picture or plot is shorter (1366x768 screen)


SHORT_WINDOW_PX = 880  # a window shorter than this (a 1366x768 screen) is short: see LivePanel.set_short


@dataclass
class DockSpec:
    object_name: str
    title: str
    widget: QtWidgets.QWidget
    area: QtCore.Qt.DockWidgetArea
    tab_with: str = ""  # object name of an earlier dock of the same panel to share a tabbed space with


def bring_forward(widget: QtWidgets.QWidget) -> None:
    """Make a view visible in its place: the current tab of a tabbed dock, or the raised tab of docks."""
    child, parent = widget, widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QtWidgets.QTabWidget) and parent.indexOf(child) >= 0:
            parent.setCurrentWidget(child)
            return
        if isinstance(parent, QtWidgets.QStackedWidget) and isinstance(parent.parentWidget(), QtWidgets.QTabWidget):
            tabs = parent.parentWidget()
            if tabs.indexOf(child) >= 0:
                tabs.setCurrentWidget(child)
                return
        if isinstance(parent, QtWidgets.QDockWidget):
            parent.raise_()
            return
        child, parent = parent, parent.parentWidget()


class _FillNoWrap(QtWidgets.QWidget):
    """Holds one widget and fills itself with it, and has no height-for-width of its own.

    A scroll area whose widget has a height-for-width layout (any word-wrapped label in it) makes that
    widget as tall as its layout's *preferred* height for the width, not the viewport's: the deep
    network's stage views, 455 px of room, became 1,124 px tall, so they scrolled and centred their
    pictures out of sight. Through this holder the scroll area sees only the minimum size: the widget
    fills the viewport, and scrolls only when the viewport is below that minimum.
    """

    def __init__(self, child: QtWidgets.QWidget, whole_text: bool = False):
        super().__init__()
        self._child = child
        self._whole_text = whole_text
        child.setParent(self)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        least = self._child.minimumSizeHint().expandedTo(self._child.minimumSize())
        lay = self._child.layout()
        if self._whole_text and lay is not None and lay.hasHeightForWidth() and self.width() > 0:
            # word-wrapped text needs more lines when narrow: the least height for the width it has, so
            # that it scrolls instead of cutting a caption mid-sentence (the minimum, never the preferred,
            # height: the views' preferred heights are what made the stages 1,124 px tall)
            least.setHeight(max(least.height(), lay.minimumHeightForWidth(self.width())))
        return least

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        return self._child.sizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._child.setGeometry(self.rect())
        if self._whole_text and event.oldSize().width() != event.size().width():
            self.updateGeometry()  # the least height for this width (minimumSizeHint) may differ

    def event(self, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.LayoutRequest:  # the child's minimum may have changed
            self.updateGeometry()
            scroll = self.parentWidget().parentWidget() if self.parentWidget() else None
            if isinstance(scroll, QtWidgets.QScrollArea):
                QtCore.QCoreApplication.postEvent(scroll, QtCore.QEvent(QtCore.QEvent.Type.LayoutRequest))
        return super().event(event)


def squeezable(view: QtWidgets.QWidget, whole_text: bool = False) -> QtWidgets.QScrollArea:
    """``view`` in a frameless scroll area: full size when its dock has room, scrolling when squeezed.

    A dock's minimum height is its widget's, and the docks of a column add up: the deep network's
    stage views (272 px at least, in a dock then) and the LSTM's Text tab (271, which held the probe
    sequence's dock at 302) made the window 903 and 786 px tall at the least, taller than a 1366x768
    laptop screen. In a scroll area they give way instead.

    ``whole_text``: it scrolls before its word-wrapped texts get fewer lines than they need at its width
    (else they are cut when squeezed; for a column of pictures with long captions, as the CNN's).
    """
    scroll = QtWidgets.QScrollArea()
    scroll.setWidget(_FillNoWrap(view, whole_text))
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    scroll.setMinimumHeight(60)
    return scroll


def settings_scroll(settings: QtWidgets.QWidget, least_rows: int = 0) -> QtWidgets.QScrollArea:
    """The settings in a scroll area; ``least_rows``: it shows at least the form's first rows (sections
    count as rows) however short its column, the other docks of the column giving way instead."""
    scroll = squeezable(settings)
    scroll.setMinimumWidth(300)
    scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    form = settings.layout()
    if least_rows and isinstance(form, QtWidgets.QFormLayout):
        scroll.setMinimumHeight(max(scroll.minimumHeight(), form_rows_height(form, least_rows)))
    return scroll


def form_rows_height(form: QtWidgets.QFormLayout, rows: int) -> int:
    """The height the first ``rows`` shown rows of ``form`` take at their size hints, with the form's spacing
    and top margin: what a scroll area needs to show them whole."""
    owner = form.parentWidget()
    if owner is not None:
        owner.ensurePolished()  # (the style sheet's sizes, not the plain style's)
    roles = (QtWidgets.QFormLayout.ItemRole.LabelRole, QtWidgets.QFormLayout.ItemRole.FieldRole,
             QtWidgets.QFormLayout.ItemRole.SpanningRole)
    heights = []
    for row in range(form.rowCount()):
        if len(heights) == rows:
            break
        if not form.isRowVisible(row):
            continue
        items = [form.itemAt(row, role) for role in roles]
        heights.append(max((item.sizeHint().height() for item in items if item is not None), default=0))
    spacing = max(0, form.verticalSpacing())
    return form.contentsMargins().top() + sum(heights) + spacing * max(0, len(heights) - 1)


class LivePanel(QtCore.QObject):
    family = "?"
    title = "?"
    # the share of the window's height the bottom row of docks starts with (curves, mostly); a panel whose
    # side column holds the views that matter more gives it less
    bottom_share = 0.36
    right_split = (0.36, 0.24)  # the first two docks on the right, as shares of the window's height
    left_split: tuple[float, float] | None = None  # the same for the left column (None: as Qt lays it out)
    left_width = 300  # the left column's first width, in pixels
    # presentation mode (a projector, large type): the docks on show, by object name, one above the other in
    # a column right of the central view; every other dock (the settings first) is hidden. At most two, so
    # that each view keeps room to be read from the back row (at least PRESENTATION_MIN_VIEW_PX tall on a
    # 1366x768 screen: tests/test_gui_presentation.py)
    presentation_docks: tuple[str, ...] = ()
    presentation_right = 0.42  # that column's share of the screen's width
    presentation_split: tuple[float, float] | None = None  # its two docks' shares of its height (None: equal)
    # the step of the kept snapshot on show (the timeline scrubbed back), or None when the views are live
    sigViewing = QtCore.Signal(object)
    # a family's configuration to train next (say, the FCN's side-by-side comparison of this network): the
    # window starts that session and shows its family's panel; a panel never calls into the window itself
    sigNewSessionRequested = QtCore.Signal(object)

    def __init__(self, settings: SettingsForm, parent=None):
        super().__init__(parent)
        self.session: Session | None = None  # on a thread or in a training process: the panel never asks
        self.settings = settings
        self.stats = QtWidgets.QLabel("")
        self.stats.setObjectName("panelStats")
        self.description = QtWidgets.QLabel("")
        self.description.setObjectName("panelDescription")
        for lab in (self.stats, self.description):  # long lines wrap instead of widening the window
            lab.setWordWrap(True)
            lab.setMinimumWidth(200)
        self._steps_read = 0
        self._evals_read = 0
        self._last_seq = -1
        self._last_run = -1
        self._last_curves_t = 0.0
        self.timeline = SnapshotTimeline()
        self._viewing: Snapshot | None = None  # a kept snapshot on show instead of the live ones (None: live)
        self.pacer = ViewPacer()  # how often the views take a snapshot while training runs (see pacing.py)
        # the parts of drawings still to come, each in an event of its own: (session, its run, the parts in
        # order, each with whether a kept snapshot put on show drops it: see _draw_in_parts), or None
        self._parts_due: tuple[Session, int, deque[tuple[Callable[[], None], bool]]] | None = None
        self.snapshots_drawn = 0  # live snapshots drawn (or begun, part by part) since the panel was built

    # -- for subclasses ---------------------------------------------------------------------------------
    def central_widget(self) -> QtWidgets.QWidget:
        raise NotImplementedError

    def dock_specs(self) -> list[DockSpec]:
        raise NotImplementedError

    def clear_curves(self) -> None:
        raise NotImplementedError

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        """Append new metric rows to the curves (and redraw them)."""
        raise NotImplementedError

    def stats_parts(self, s: Session) -> list[str]:
        return []

    def new_run(self, session: Session) -> None:
        """A reset began a new run (its curves are cleared already): a panel clears or redraws the views
        that would otherwise keep the last run's picture until they are drawn again."""

    def show_snapshot(self, snap: Snapshot) -> None:
        raise NotImplementedError

    def metrics_parts(self, steps: list[dict], evals: list[dict]) -> list[Callable[[], None]]:
        """As :meth:`snapshot_parts`, for the curves: parts that together do :meth:`add_metrics` (by default,
        one part)."""
        return [lambda: self.add_metrics(steps, evals)]

    def snapshot_parts(self, snap: Snapshot) -> list[Callable[[], None]]:
        """The drawing of ``snap`` as parts that together do what :meth:`show_snapshot` does. While training
        runs, the window draws a new snapshot one part per event, and Qt paints each part's views before the
        next part begins: a panel whose views take long to paint all at once (the LSTM panel's: 30-40 ms)
        then never holds the GUI thread for their sum, and a click or a timer waits at most for one part.
        By default one part: the whole :meth:`show_snapshot`."""
        return [lambda: self.show_snapshot(snap)]

    def set_presenting(self, on: bool) -> None:
        """Presentation mode begins (``on``) or ends: a panel whose central view needs another arrangement
        for large type changes it here, and puts it back when ``on`` is False."""

    def set_short(self, short: bool) -> None:
        """The window became shorter than ``SHORT_WINDOW_PX`` (``short``: a 1366x768 laptop or projector) or
        taller again: a panel whose central view would leave its views too short to read there arranges
        them otherwise. The window's height decides, never the view's own: the arrangement changes the
        view's sizes, and deciding on them could go round in a loop."""

    # -- shared ------------------------------------------------------------------------------------------
    def _central(self, view: QtWidgets.QWidget) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.description)
        lay.addWidget(view, 1)
        lay.addWidget(self.stats)
        return w

    def attach(self, session: Session) -> None:
        """Follow ``session`` from now on (curves restart from its metrics log)."""
        self.session = session
        self.pacer.reset()  # another session: another cost clock
        self._steps_read = self._evals_read = 0
        self._last_seq = -1
        self._last_run = session.run_id
        self.timeline.clear()
        self.viewing = None
        self.clear_curves()
        tr = session.trainer
        self.settings.set_config(tr.config)
        self._show_description(session)
        self.new_run(session)
        self._update_stats(session)
        session.subscribe(pull=True)  # each snapshot is drawn (or skipped on purpose) before the next

    def detach(self) -> None:
        if self.session is not None:
            self.session.unsubscribe()
        self.session = None
        self._parts_due = None
        self.timeline.clear()  # another session follows: its memory goes back now
        self.viewing = None

    def refresh(self) -> bool:
        """Called by the window's redraw timer. Returns whether anything new was drawn."""
        s = self.session
        if s is None:
            return False
        drawn = False
        if s.run_id != self._last_run:  # a reset: curves start over
            self._last_run = s.run_id
            self._steps_read = self._evals_read = 0
            self.timeline.clear()
            self.viewing = None
            self.clear_curves()
            self.settings.clear_pending()
            self.settings.set_config(s.trainer.config)
            self._show_description(s)
            self.new_run(s)
        now = time.monotonic()
        training = not s.thread_idle()
        if training:
            self.pacer.set_rate(s.snapshot_hz)
            # what the views cost training: the drawing itself when it shares training's process (Python's
            # lock), else only the snapshots the training process takes for them (see pacing.py)
            process = s.in_own_process
            self.pacer.share = PROCESS_SNAPSHOT_SHARE if process else VIEW_SHARE
            self.pacer.update(now, s.snapshot_seconds if process else time.thread_time())
        else:
            self.pacer.reset()
        # curves move slowly: a few redraws a second (not while a drawing in parts goes on: a tick later)
        if now - self._last_curves_t >= CURVE_INTERVAL_S and self._parts_due is None:
            self._last_curves_t = now
            steps, self._steps_read = s.metrics.steps_since(self._steps_read)
            evals, self._evals_read = s.metrics.evals_since(self._evals_read)
            if steps or evals:
                if training:
                    self._draw_in_parts(s, self.metrics_parts(steps, evals), live_only=False)
                else:
                    self.add_metrics(steps, evals)
                self._update_stats(s)
                drawn = True
        snap = s.latest_snapshot()
        fresh = snap is not None and snap.seq != self._last_seq and snap.run_id == s.run_id
        if fresh and self._snapshot_parts_due():
            return drawn  # the last one is still being drawn, part by part: this one waits a tick
        if fresh and training and self.viewing is None and not self.pacer.allow(now):
            return drawn  # not yet: the views' share of the GUI thread is spent (see pacing.py)
        if fresh:
            self._last_seq = snap.seq
            s.snapshot_taken(snap.seq)
            self.timeline.offer(snap)  # a CPU copy already: kept by reference
            if self.viewing is None:  # scrubbed back: recorded, not drawn
                if training:
                    # the curves took this tick: its parts follow theirs, each in an event of its own, so no
                    # single event does both. (It waited for the next tick before, and with a window that
                    # takes the next snapshot only once it has drawn this one, each curve tick cost a
                    # snapshot: 20 ticks a second drew 16.)
                    self._draw_in_parts(s, self.snapshot_parts(snap), first_now=not drawn)
                else:
                    self.show_snapshot(snap)
                self.snapshots_drawn += 1
                self.pacer.drew(now)
                drawn = True
        elif snap is not None and snap.run_id != s.run_id:
            s.snapshot_taken(snap.seq)  # from before a reset: never drawn, and not waited for
        return drawn

    def _snapshot_parts_due(self) -> bool:
        """Whether a live snapshot's parts are still to be drawn (the curves' do not hold the next snapshot)."""
        return self._parts_due is not None and any(live_only for _part, live_only in self._parts_due[2])

    def _draw_in_parts(self, s: Session, parts: list[Callable[[], None]], live_only: bool = True,
                       first_now: bool = True) -> None:
        """Do the first part now (``first_now``, and nothing else is waiting) and the others each in an event
        of its own, after the parts already waiting (see snapshot_parts). ``live_only``: a snapshot's parts,
        left undone when a kept snapshot is put on show meanwhile (the curves' parts are done whatever is on
        show: their points would be missing for good)."""
        if not parts:
            return
        items = deque((part, live_only) for part in parts)
        due = self._parts_due
        if due is not None and due[0] is s and due[1] == s.run_id:
            due[2].extend(items)  # (their timer is on its way)
            return
        if first_now:
            items.popleft()[0]()
            if not items:
                return
        self._parts_due = (s, s.run_id, items)
        if due is None:  # (else the stale queue's timer is on its way: it finds this one)
            QtCore.QTimer.singleShot(PART_GAP_MS, self, self._draw_next_part)

    def _draw_next_part(self) -> None:
        due = self._parts_due
        if due is None:
            return
        s, run_id, queue = due
        if self.session is not s or s.run_id != run_id:
            self._parts_due = None  # another session or a reset: the rest is stale
            return
        if self.viewing is not None:  # a kept snapshot on show: the live snapshots' parts left are stale
            for item in [item for item in queue if item[1]]:
                queue.remove(item)
            if not queue:
                self._parts_due = None
                return
        part, _live_only = queue.popleft()
        if not queue:
            self._parts_due = None
        try:
            part()
        except BaseException:
            self._parts_due = None  # (a part that failed must not hold back every later snapshot)
            raise
        if self._parts_due is not None:
            QtCore.QTimer.singleShot(PART_GAP_MS, self, self._draw_next_part)

    # -- the timeline ------------------------------------------------------------------------------------
    @property
    def viewing(self) -> Snapshot | None:
        return self._viewing

    @viewing.setter
    def viewing(self, snap: Snapshot | None) -> None:
        before = None if self._viewing is None else self._viewing.step
        self._viewing = snap
        after = None if snap is None else snap.step
        if after != before:
            self.sigViewing.emit(after)
            if self.session is not None:
                self._update_stats(self.session)  # (it says which step the views show)

    def shown_step(self) -> int | None:
        """The step the views show, where it is certain: the kept one scrubbed back to, or the last snapshot
        while training stands still; None while it runs (the views change under an export). A view's ⤓ export
        names its file by it (a view exported scrubbed back did not say which step it showed)."""
        if self._viewing is not None:
            return int(self._viewing.step)
        s = self.session
        snap = s.latest_snapshot() if s is not None else None
        if snap is None or s is None or snap.run_id != s.run_id or not s.thread_idle():
            return None
        return int(snap.step)

    def view_kept(self, snap: Snapshot) -> None:
        """Show a kept snapshot (from ``timeline``) in this panel's views until :meth:`go_live`."""
        self.viewing = snap
        self.show_snapshot(snap)

    def redraw_shown(self) -> None:
        """Draw the snapshot on show once more, for views that were hidden when it came: a panel draws
        only its visible views, so a tab opened while training is paused would stay empty until Play."""
        snap = self.viewing
        if snap is None:
            s = self.session
            snap = s.latest_snapshot() if s is not None else None
            if snap is None or s is None or snap.run_id != s.run_id or snap.seq != self._last_seq:
                return  # nothing drawn yet, or a newer one that the next refresh draws anyway
        self.show_snapshot(snap)

    def go_live(self) -> None:
        """Follow the live snapshots again, starting with the newest at once."""
        if self.viewing is None:
            return
        self.viewing = None
        s = self.session
        snap = s.latest_snapshot() if s is not None else None
        if snap is not None and snap.run_id == s.run_id:
            if snap.seq != self._last_seq:
                self._last_seq = snap.seq
                s.snapshot_taken(snap.seq)
                self.timeline.offer(snap)
            self.show_snapshot(snap)
        elif self.timeline.newest is not None:
            self.show_snapshot(self.timeline.newest)

    def _show_description(self, s: Session) -> None:
        tr = s.trainer
        text = tr.describe() if hasattr(tr, "describe") else tr.family
        if text != self.description.text():
            self.description.setText(text)

    def _update_stats(self, s: Session) -> None:
        """The line under the centre view: the run now (its step, epoch and latest figures). Scrubbed back, it
        first says which step the views show: the pictures of step 573 stood over "step 1901 · held-out
        accuracy 98.6%", the figures of the run now, as if they were theirs."""
        parts = [f"step {s.trainer.step}", f"epoch {s.trainer.epoch}"] + self.stats_parts(s)
        if self._viewing is not None:
            parts = [f"views of step {self._viewing.step}, scrubbed back", f"now: {parts[0]}"] + parts[1:]
        self.stats.setText("   ·   ".join(parts))

    def wire_settings(self, on_change: Callable[[str, Any], None], on_reset: Callable[[], None],
                      on_choose_folder: Callable[[], None]) -> None:
        self.settings.sigChanged.connect(on_change)
        self.settings.sigApplyReset.connect(on_reset)
        self.settings.sigChooseDataFolder.connect(on_choose_folder)
