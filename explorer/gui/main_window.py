"""The main window: toolbar, dockable views, status bar, menus, and the redraw timer.

Threads: training runs on the engine's own thread (or in a training process). This window never calls
torch; a GUI-thread QTimer polls the session's snapshot mailbox and metrics log at the refresh rate
and redraws what is new. Closing the window stops the training thread and waits for it.

The window is made of parts by responsibility, each a module of ``explorer.gui.window``: ``actions``
(actions, toolbar, menus, status bar), ``docks`` (the panels, their docks, the layout, presentation
mode), ``sessions`` (creating and switching sessions, thread or process, training controls, autosave,
saved runs, builder networks), ``remote`` (training on a server), ``data`` (data folders and downloads) and ``notice`` (the notice bar).
This module composes them and keeps the redraw timer and the shutdown.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from explorer import __version__
from explorer.core.engine.protocol import Session
from explorer.core.engine.session import ERROR
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.process import worker
from explorer.core.watch.attach import Opened
from explorer.gui import gc_guard
from explorer.gui.panels import PANELS
from explorer.gui.panels.base import SHORT_WINDOW_PX, LivePanel
from explorer.gui.settings import byte_array_setting, open_settings, process_training_wanted
from explorer.gui.startup import warm_first_optimizer
from explorer.gui.widgets.timeline import TimelineBar, timeline_toolbar
from explorer.gui.window.actions import ActionsMixin
from explorer.gui.window.data import DataMixin
from explorer.gui.window.docks import LAYOUT_VERSION, DocksMixin, PageStack
from explorer.gui.window.notice import NoticeBar
from explorer.gui.window.remote import RemoteMixin
from explorer.gui.window.sessions import WARM_UP_AFTER_MS, WINDOW_EVAL_FRACTION, SessionsMixin, family_of

# names other code imported from this module before the window was split into parts
__all__ = ["MainWindow", "NoticeBar", "PANELS", "WINDOW_EVAL_FRACTION", "LAYOUT_VERSION",
           "family_of"]

STATUS_INTERVAL_S = 0.2  # the status bar and the timeline bar: at most 5 updates a second while training runs


class MainWindow(ActionsMixin, DocksMixin, SessionsMixin, RemoteMixin, DataMixin, QtWidgets.QMainWindow):
    """Network Explorer's window, showing one training session at a time.

    Its parts are mixins, one module each, rather than collaborator objects: every part works on the one
    QMainWindow (docks, toolbars, menus, saveState and the Qt event handlers belong to it, so a
    collaborator would hold the window and call into it anyway); the parts act in a fixed order within
    one call (a new session closes the old, detaches its panel, shows the new family's docks, attaches
    the panel, then sets the device box and the status line), which signals between objects would leave
    to connection order; and the tests, the recorder, the model exporter and the benchmarks read the
    window's attributes directly (``win.session``, ``win.panel``, ``win.docks``, ``win.act_play``...),
    which collaborators would each have to forward. Each mixin's docstring says what it keeps and what it
    uses from the others. Panels talk to the window by signals (``sigViewing``, ``sigNewSessionRequested``).
    """

    sigSessionChanged = QtCore.Signal()

    def __init__(self, config: RBMConfig | None = None, *, run_dir: str | None = None,
                 settings: QtCore.QSettings | None = None, refresh_hz: float = 20.0, attach: Opened | None = None):
        super().__init__()
        gc_guard.install()  # Qt objects are freed on this thread, never on a training thread
        self.setWindowTitle(f"Network Explorer {__version__}")
        self.setObjectName("mainWindow")
        self.setDockNestingEnabled(True)
        self._settings = settings if settings is not None else open_settings()
        self.session: Session | None = None  # on a thread or in a training process: never asked which
        self._download: dict[str, Any] | None = None
        self.builder_window = None
        self.lecture = None  # the lecture's pane and steps, made when first opened (gui/lecture.py)
        self.redraws = 0
        self._status_t = 0.0       # when the status bar and timeline bar were last updated by the timer
        self._status_state = ""
        self._saves: list[threading.Event] = []  # Save run requests not yet done (waited for on close)
        # train in a separate process (see core/process/session.py): the window's drawing then never
        # holds up training by holding Python's lock; the setting is read once, the menu can change it
        self.process_training = process_training_wanted(self._settings)
        if not self.process_training:  # its models train here: the first optimiser's imports, once it is painted
            QtCore.QTimer.singleShot(WARM_UP_AFTER_MS, self, warm_first_optimizer)

        config = config or RBMConfig(device="auto")
        self.family = family_of(config)
        # one panel per family, built the first time that family is shown (start-up builds only one)
        self.panels: dict[str, LivePanel] = {}
        self._stack_index: dict[str, int] = {}
        self.notice = NoticeBar()
        self.stack = PageStack()
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 0)
        lay.addWidget(self.notice)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        # scrubs back through the kept views: the window's whole width, above the status bar
        self.timeline_bar = TimelineBar()
        self.timeline_toolbar = timeline_toolbar(self.timeline_bar, self)
        self.addToolBar(QtCore.Qt.ToolBarArea.BottomToolBarArea, self.timeline_toolbar)
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self._family_docks: dict[str, list[tuple[QtWidgets.QDockWidget, QtCore.Qt.DockWidgetArea]]] = {}
        self._layout_restored = False
        self._ensure_panel(self.family, config)
        self._last_config: dict[str, Any] = {self.family: config}
        self._parked: dict[str, dict] = {}  # family -> the run left by switching model (see switch_family)
        self._sized = False
        self._short = False  # shorter than SHORT_WINDOW_PX: panels may arrange their views otherwise
        self._show_family_ui(self.family)
        self.resize(1280, 800)
        self._default_state = self.saveState(LAYOUT_VERSION)

        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_statusbar()

        self.timer = QtCore.QTimer(self)
        # precise: a coarse timer may fire up to 5% late and drifts; the views' rate is a promise to keep
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._on_tick)
        self.set_refresh_rate(refresh_hz)
        self._restore_layout()

        if attach is not None:  # a run the user's script trains, opened already (explorer attach)
            if not self.attach_opened(attach):
                self._new_session(config)
        elif run_dir:
            if not self.open_run(run_dir):
                self._new_session(config)
        else:
            self._new_session(config)
        if self.session is not None and not self.notice.isVisibleTo(self):  # (a message from start-up stays)
            self.notice.show_message("Press Space (or ▶ Play) to start training; S does one step, R resets.")
        self._start_autosave()
        self.timer.start()

    # -- the redraw timer --------------------------------------------------------------------------
    def set_refresh_rate(self, hz: float) -> None:
        hz = max(1, min(60, int(round(hz))))
        if self.refresh_spin.value() != hz:
            self.refresh_spin.blockSignals(True)
            self.refresh_spin.setValue(hz)
            self.refresh_spin.blockSignals(False)
        self.timer.setInterval(int(1000 / hz))
        if self.session is not None:
            self.session.set_snapshot_rate(hz)

    def _on_tick(self) -> None:
        s = self.session
        if s is None:
            return
        if self.panel.refresh():
            self.redraws += 1
        now = time.monotonic()
        if now - self._status_t >= STATUS_INTERVAL_S or s.state != self._status_state:
            # the bar and the status line change slowly: a few updates a second, at once on a new state
            self._status_t, self._status_state = now, s.state
            self.timeline_bar.refresh()
            self._update_status()
        for msg in s.pop_notices():
            action = more = None
            if s.out_of_memory and msg == s.error:
                action = ("Continue on the CPU", self.continue_on_cpu)
                batch = int(getattr(s.trainer.config, "batch_size", 1) or 1)
                if batch > 1:
                    more = (f"Halve the batch ({batch} → {batch // 2})", self.halve_batch)
            lost = bool(getattr(s, "dropped", False))  # a training server out of reach: the notice offers to retry
            if lost and action is None:
                action = ("Connect again", self.reconnect_server)
            self.notice.show_message(msg, error=(s.state == ERROR or lost), action=action, more=more)
            self.statusBar().showMessage(msg, 6000)
        self._poll_download()
        if self.autosave is not None and self.autosave.due(s.trainer.step, self.autosave_interval_s):
            self.autosave_now()

    def _on_viewing(self, family: str, step: int | None) -> None:
        """A panel went live or to a kept view: the curves' marks and the timeline bar follow at once
        (the bar's own refresh, a few times a second, would leave the Live button wrong for a moment,
        as after a Reset)."""
        self._mark_viewed_step(family, step)
        if self.timeline_bar.panel is self.panels.get(family):
            self.timeline_bar.refresh()

    def open_lecture(self, folder: str | Path | None = None) -> bool:
        """Open the lecture in ``folder`` (the one shipped in samples/lecture by default) at its first step."""
        from explorer.core.lecture.steps import default_lecture_folder
        from explorer.gui.lecture import Lecture

        if self.lecture is None:
            self.lecture = Lecture(self)
        return self.lecture.open(folder if folder is not None else default_lecture_folder())

    # -- Qt events and shutdown --------------------------------------------------------------------
    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        short = self.height() < SHORT_WINDOW_PX
        if short != self._short:
            self._short = short
            for panel in self.panels.values():
                panel.set_short(short)
        QtCore.QTimer.singleShot(0, self, self._update_status)  # the status line's length for the new width, laid out
        if self.presenting:
            # full screen with large type: the docks' proportions again for the screen's size (the docks
            # had kept their pixel heights, and the larger captions left the curves 40 px)
            QtCore.QTimer.singleShot(0, self._apply_default_sizes)

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            if byte_array_setting(self._settings, "window/state") is None or self._other_screen:
                QtCore.QTimer.singleShot(0, self._apply_default_sizes)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt name)
        try:
            self._shut_down()
        except Exception:  # an exception escaping a Qt override can take the process down: report it, close
            traceback.print_exc()
        super().closeEvent(event)

    def _shut_down(self) -> None:
        """Stop the training thread (after a last autosave), remember the layout, release the lock."""
        self.timer.stop()
        self.leave_presentation()  # the layout and geometry remembered are the user's, not the mode's
        if self.session is not None:
            if self.session.is_alive:
                for done in self._saves:  # a Save run the user asked for finishes before the thread stops
                    done.wait(10)
            if self.autosave is not None and self.session.is_alive and not self.session.error:
                self.autosave_now().wait(10)  # the save completes (or was never begun), never half
            self.session.close(timeout=10)
        worker.discard_spare()
        if self.autosave is not None:
            self.autosave.release()
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        width, height = self.screen_size()  # (what the layout's pixel sizes were made for)
        self._settings.setValue("window/screen_width", width)
        self._settings.setValue("window/screen_height", height)
        self._settings.setValue("view/refresh_hz", float(self.refresh_spin.value()))  # plain types only
        self._settings.sync()
