"""The timeline bar: a slider that scrubs back through the views kept during a run.

Each panel records its snapshots in a :class:`~explorer.core.engine.timeline.SnapshotTimeline`; this bar,
along the whole bottom of the window (a toolbar above the status bar, see :func:`timeline_toolbar`;
it stays on screen in presentation mode), shows how much is kept and lets the user go back: moving the
slider off its right end shows that kept snapshot in the panel's own views (training goes on, its
new snapshots are recorded but not drawn, the curves keep moving); the right end, or "● Live",
follows the live snapshots again. With the slider focused, Left/Right step one kept frame.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

MB = 1024 * 1024

# colours only: a font set in a style sheet would stop following the application's font (presentation mode
# makes every font larger), so bold type is set as a font attribute (see _bold)
STYLE = """
QFrame#timelineBar { border-top: 1px solid #3b4252; }
QSlider#timelineSlider::groove:horizontal { height: 8px; background: #3b4252; border-radius: 4px; }
QSlider#timelineSlider::sub-page:horizontal { background: #88c0d0; border-radius: 4px; }
QSlider#timelineSlider::handle:horizontal { background: #eceff4; border: 2px solid #88c0d0; width: 18px;
                                            margin: -7px 0; border-radius: 11px; }
QSlider#timelineSlider:focus { outline: none; }
QSlider#timelineSlider[scrubbed="true"]::sub-page:horizontal { background: #ebcb8b; }
QSlider#timelineSlider[scrubbed="true"]::handle:horizontal { border-color: #ebcb8b; background: #ebcb8b; }
QLabel#timelineWhere[scrubbed="true"] { color: #ebcb8b; }
QLabel#timelineKept { color: #9aa5b5; }
QPushButton#timelineLive:checked { color: #a3be8c; }
QPushButton#timelineLive[scrubbed="true"] { color: #1b1f24; background: #ebcb8b; border-color: #ebcb8b; }
"""


def _bold(widget: QtWidgets.QWidget) -> None:
    """Bold, with the size still inherited (and so still growing in presentation mode)."""
    font = QtGui.QFont()
    font.setBold(True)
    widget.setFont(font)


class _ElidedLabel(QtWidgets.QLabel):
    """A one-line label that gives up width once the slider has none left to give: its text ends in "…" when
    the bar is short of room, the whole text in its tooltip. ``whole``: it never does (the bar's short text in
    presentation mode)."""

    whole = False

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        text = self.text() if self.whole else "·  …"
        return QtCore.QSize(self.fontMetrics().horizontalAdvance(text) + 4, super().minimumSizeHint().height())

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        super().setText(text)
        self.setToolTip(f"{text}\n{self._why}" if text else self._why)

    _why = ("Views are kept every K steps; when they would take more memory than the bound, every second one is "
            "dropped and K doubles, so the whole run stays covered.")

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QtGui.QPainter(self)
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), QtCore.Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignLeft), text)


def _mb(n: int) -> str:
    v = n / MB
    return f"{v:.0f}" if v >= 10 or v == 0 else f"{v:.1f}"


class TimelineBar(QtWidgets.QFrame):
    """Slider + labels + Live button for the panel on show (``set_panel``), kept in step by ``refresh``.

    The panel owns the timeline and what is drawn (``timeline``, ``viewing``, ``view_kept``,
    ``go_live``); this bar only shows that state and turns user input into those calls.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("timelineBar")
        self.setStyleSheet(STYLE)
        self.panel = None
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(10)
        title = QtWidgets.QLabel("Timeline")
        title.setObjectName("timelineTitle")
        _bold(title)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setObjectName("timelineSlider")
        self.slider.setRange(0, 0)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(5)
        self.slider.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.slider.setMinimumWidth(240)
        self.slider.setToolTip("Drag back to see the views as they were at an earlier step; training goes on.\n"
                               "Left/Right: one kept view back/forward; the right end follows training live.")
        self.slider.valueChanged.connect(self._on_slider)
        self.where = QtWidgets.QLabel("")  # which step is on show (and where training is)
        self.where.setObjectName("timelineWhere")
        _bold(self.where)
        self.kept = _ElidedLabel("")  # how many views are kept, and their memory of the bound
        self.kept.setObjectName("timelineKept")
        self.live_button = QtWidgets.QPushButton("● Live")
        self.live_button.setObjectName("timelineLive")
        _bold(self.live_button)
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # Space stays Play/Pause
        self.live_button.setToolTip("Back to the live views of the model now in training")
        self.live_button.clicked.connect(self.go_live)
        lay.addWidget(title)
        # the slider takes the room left over, down to its least width, and only then does the label of what is
        # kept give way: with a share of the room of its own (a third of the slider's), scrubbed back at 1366 px
        # the label lost its memory part ("274 views kept every 200 steps  ·…") to a slider 500 px long
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.where)
        lay.addWidget(self.kept)
        lay.addWidget(self.live_button)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        self._scrubbed = False
        self.brief = False

    def set_brief(self, on: bool) -> None:
        """Presentation mode (``on``): the bar says only how many views are kept, whole, the slider giving
        way; their spacing and memory, in the large type, were cut to "186 views kept every 331 st…"."""
        self.brief = self.kept.whole = on
        self.refresh()
        self.kept.updateGeometry()

    # -- wiring -------------------------------------------------------------------------------------
    def set_panel(self, panel) -> None:
        """Follow ``panel`` (the panel on show); the bar's state comes from it at once."""
        self.panel = panel
        self.refresh()

    @property
    def scrubbed(self) -> bool:
        return self.panel is not None and self.panel.viewing is not None

    def go_live(self) -> None:
        if self.panel is not None:
            self.panel.go_live()
        self.refresh()

    def show_index(self, index: int) -> None:
        """Show kept frame ``index`` (the last one is live), as if the slider were moved there."""
        self.slider.setValue(int(index))
        self._on_slider(self.slider.value())

    def _on_slider(self, value: int) -> None:
        panel = self.panel
        if panel is None or self._syncing:
            return
        tl = panel.timeline
        if len(tl) == 0:
            return
        if value >= len(tl) - 1:  # the right end: follow training
            if panel.viewing is not None:
                panel.go_live()
        else:
            snap = tl.at(value)
            if snap is not panel.viewing:
                panel.view_kept(snap)
        self.refresh()

    _syncing = False

    # -- showing the state ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Slider range and position, label and Live button from the panel's timeline (every redraw tick)."""
        panel = self.panel
        tl = None if panel is None else panel.timeline
        n = 0 if tl is None else len(tl)
        viewing = None if panel is None else panel.viewing
        if viewing is not None:
            index = tl.index_of(viewing)
            if index < 0:  # thinned away since: the slider sits at the nearest kept frame
                index = tl.nearest_index(viewing.step)
            index = min(max(index, 0), max(n - 2, 0))
        else:
            index = max(n - 1, 0)
        self._syncing = True
        try:
            if self.slider.maximum() != max(n - 1, 0):
                self.slider.setMaximum(max(n - 1, 0))
            if self.slider.value() != index:
                self.slider.setValue(index)
        finally:
            self._syncing = False
        self.slider.setEnabled(n >= 2)
        scrubbed = viewing is not None
        self.live_button.setChecked(not scrubbed)
        where, kept = self.describe_parts()
        self.where.setText(where)
        if self.brief and kept:
            kept = self._kept_count()
        text = f"·   {kept}" if kept else ""
        if text != self.kept.text():
            self.kept.setText(text)
            if self.brief:
                self.kept.updateGeometry()  # (its least width is its text's)
        if scrubbed != self._scrubbed:
            self._scrubbed = scrubbed
            for w in (self.slider, self.where, self.live_button):
                w.setProperty("scrubbed", scrubbed)
                w.style().unpolish(w)
                w.style().polish(w)
            self.live_button.setText("● Back to live" if scrubbed else "● Live")

    def describe(self) -> str:
        """The whole label: where the views are, how many are kept and how much memory they take of the bound."""
        return "   ·   ".join(p for p in self.describe_parts() if p)

    def describe_parts(self) -> tuple[str, str]:
        """(which step the views show, and where training is; what is kept, and its memory of the bound)."""
        panel = self.panel
        if panel is None or panel.session is None:
            return "no training session", ""
        tl, s = panel.timeline, panel.session
        step = int(s.trainer.step)
        total = ""
        if s.epochs is not None:
            try:
                total = f" of {int(s.epochs) * int(s.trainer.steps_per_epoch):,}"
            except (TypeError, ValueError, AttributeError):
                total = ""
        if panel.viewing is not None:
            where = f"viewing step {panel.viewing.step:,} (training is at step {step:,}{total})"
        else:
            where = f"step {step:,}{total}"
        n = len(tl)
        kept = (f"{self._kept_count()} every {tl.spacing():,} step{'s' if tl.spacing() != 1 else ''}"
                if n else self._kept_count())
        memory = f"{_mb(tl.bytes_used)} of {_mb(tl.bound_bytes)} MB"
        return where, f"{kept}   ·   {memory}"

    def _kept_count(self) -> str:
        n = 0 if self.panel is None else len(self.panel.timeline)
        return f"{n} view{'s' if n != 1 else ''} kept" if n else "no views kept yet"


def timeline_toolbar(bar: TimelineBar, parent=None) -> QtWidgets.QToolBar:
    """``bar`` in a fixed toolbar, to go in the window's bottom toolbar area: the whole width of the window,
    above the status bar, under every family's views and docks."""
    tb = QtWidgets.QToolBar("Timeline", parent)
    tb.setObjectName("timelineToolbar")
    tb.setMovable(False)
    tb.setFloatable(False)
    tb.toggleViewAction().setVisible(False)  # not one of the bars the user hides: it belongs to every view
    tb.addWidget(bar)
    return tb


__all__ = ["TimelineBar", "timeline_toolbar"]
