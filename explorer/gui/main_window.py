"""The main window: toolbar, dockable views, status bar, menus, and the redraw timer.

Threads: training runs on the engine's own thread. This window never calls torch; a
GUI-thread QTimer polls the session's snapshot mailbox and metrics log at the refresh rate
and redraws what is new. Closing the window stops the training thread and waits for it.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from explorer import __version__
from explorer.core.data.datasets import DataError, download_dataset, default_cache_dir
from explorer.core.engine.devices import DeviceError, available_devices
from explorer.core.engine.session import ERROR, FINISHED, RUNNING, TrainingSession
from explorer.core.families.autoencoder import trainer as autoencoder
from explorer.core.families.deep import trainer as deep
from explorer.core.families.fcn import trainer as fcn
from explorer.core.families.rbm import trainer as rbm_trainer
from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.families.cnn.trainer import CNNConfig
from explorer.core.families.cnn.trainer import config_from_spec as cnn_config_from_spec
from explorer.core.families.deep.compare import CompareConfig
from explorer.core.families.deep.trainer import MLPConfig
from explorer.core.families.registry import make_trainer
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.families.recurrent import trainer as recurrent
from explorer.core.persist.autosave import AUTOSAVE_INTERVAL_S, AutosaveSlot
from explorer.core.process import worker
from explorer.core.engine.commands import autosave_to, save_run_to
from explorer.core.process.session import ProcessSession, TrainingProcessError
from explorer.core.persist.runfolder import RunFolderError, load_run, restore_session
from explorer.gui import gc_guard
from explorer.gui.app import SETTINGS_APP, SETTINGS_ORG, process_training_wanted
from explorer.gui.resources import RESOURCES
from explorer.gui.panels.autoencoder_panel import AutoencoderPanel
from explorer.gui.panels.cnn_panel import CNNPanel
from explorer.gui.panels.compare_panel import ComparePanel
from explorer.gui.panels.deep_panel import MLPPanel
from explorer.gui.panels.fcn_panel import FCNComparePanel, FCNPanel
from explorer.gui.panels.rbm_panel import RBMPanel
from explorer.gui.panels.recurrent_panel import LSTMPanel, RNNPanel
from explorer.gui.widgets.timeline import TimelineBar, timeline_toolbar
from explorer.gui.widgets.views import CurveView
from explorer.gui.model_export import ModelExporter
from explorer.gui.recorder import PanelRecorder

# watching wants held-out curves, but each evaluation is training time lost: they may take up to 5% of
# it in the window (at 10% they cost the RBM, CNN and FCN panels 9-12% of their speed; at 5% the RBM's
# held-out curve still gets a point every 2-3 epochs, about every 2 s on MNIST)
WINDOW_EVAL_FRACTION = 0.05
STATUS_INTERVAL_S = 0.2  # the status bar and the timeline bar: at most 5 updates a second while training runs

# family -> (panel, configuration); the order is the Model menu's (the lecture's order)
PANELS = {"rbm": (RBMPanel, RBMConfig), "autoencoder": (AutoencoderPanel, AutoencoderConfig),
          "mlp": (MLPPanel, MLPConfig), "compare": (ComparePanel, CompareConfig),
          "cnn": (CNNPanel, CNNConfig), "fcn": (FCNPanel, fcn.FCNConfig),
          "fcn-compare": (FCNComparePanel, fcn.FCNCompareConfig),
          "lstm": (LSTMPanel, recurrent.LSTMConfig), "rnn": (RNNPanel, recurrent.RNNConfig)}
# family -> how a builder spec becomes that family's configuration
SPEC_CONFIGS = {"rbm": rbm_trainer.config_from_spec, "autoencoder": autoencoder.config_from_spec,
                "mlp": deep.config_from_spec, "cnn": cnn_config_from_spec, "fcn": fcn.config_from_spec,
                "lstm": recurrent.config_from_spec, "rnn": recurrent.config_from_spec}


def family_of(config) -> str:
    for fam, (_panel, config_cls) in PANELS.items():
        if isinstance(config, config_cls):
            return fam
    raise ValueError(f"no panel for settings of type {type(config).__name__}")

LAYOUT_VERSION = 1


class NoticeBar(QtWidgets.QFrame):
    """A dismissable line at the top of the window for errors and notices (never a blocking dialog)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("noticeBar")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        # up to two offers (e.g. "Continue on the CPU" / "Halve the batch"); each runs once, then the bar hides
        self.action_buttons = []
        for i in range(2):
            button = QtWidgets.QPushButton("")
            button.setObjectName("noticeAction")
            button.hide()
            button.clicked.connect(lambda _=False, i=i: self._run_action(i))
            self.action_buttons.append(button)
        self.action_button = self.action_buttons[0]
        self._actions: list[Any] = []
        lay.addWidget(self.label, 1)
        for button in self.action_buttons:
            lay.addWidget(button)
        lay.addWidget(close)
        self.hide()

    def _run_action(self, i: int = 0) -> None:
        actions, self._actions = self._actions, []
        self.hide()
        if i < len(actions):
            actions[i]()

    def show_message(self, text: str, error: bool = False, action: tuple[str, Any] | None = None,
                     more: tuple[str, Any] | None = None) -> None:
        """Show ``text``; ``action`` (and ``more``) = (button label, callable) add buttons; one click runs one."""
        offers = [a for a in (action, more) if a]
        self._actions = [fn for _, fn in offers]
        for i, button in enumerate(self.action_buttons):
            button.setText(offers[i][0] if i < len(offers) else "")
            button.setVisible(i < len(offers))
        self.setProperty("error", error)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()


class MainWindow(QtWidgets.QMainWindow):
    """Network Explorer's window, showing one training session at a time."""

    sigSessionChanged = QtCore.Signal()

    def __init__(self, config: RBMConfig | None = None, *, run_dir: str | None = None,
                 settings: QtCore.QSettings | None = None, refresh_hz: float = 20.0):
        super().__init__()
        gc_guard.install()  # Qt objects are freed on this thread, never on a training thread
        self.setWindowTitle(f"Network Explorer {__version__}")
        self.setObjectName("mainWindow")
        self.setDockNestingEnabled(True)
        self._settings = settings or QtCore.QSettings(SETTINGS_ORG, SETTINGS_APP)
        self.session: TrainingSession | None = None
        self._download: dict[str, Any] | None = None
        self.builder_window = None
        self.redraws = 0
        self._status_t = 0.0       # when the status bar and timeline bar were last updated by the timer
        self._status_state = ""
        self._saves: list[threading.Event] = []  # Save run requests not yet done (waited for on close)
        # train in a separate process (see core/process_session.py): the window's drawing then never
        # holds up training by holding Python's lock; the setting is read once, the menu can change it
        self.process_training = process_training_wanted(self._settings)

        config = config or RBMConfig(device="auto")
        self.family = family_of(config)
        # one panel per family, built the first time that family is shown (start-up builds only one)
        self.panels: dict[str, Any] = {}
        self._stack_index: dict[str, int] = {}
        self.notice = NoticeBar()
        self.stack = QtWidgets.QStackedWidget()
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
        self._sized = False
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

        if run_dir:
            if not self.open_run(run_dir):
                self._new_session(config)
        else:
            self._new_session(config)
        if self.session is not None and not self.notice.isVisibleTo(self):  # (a message from start-up stays)
            self.notice.show_message("Press Space (or ▶ Play) to start training; S does one step, R resets.")
        self._start_autosave()
        self.timer.start()

    def continue_on_cpu(self) -> None:
        """After the GPU ran out of memory: move the model to the CPU and go on training."""
        self.device_combo.setCurrentText("cpu")  # moves the session (see _on_device_changed)
        if self.session is not None:
            self.session.start()

    def halve_batch(self) -> None:
        """After the device ran out of memory: go on where it was, with half the batch."""
        s = self.session
        if s is None:
            return
        batch = max(1, int(s.trainer.config.batch_size) // 2)
        s.set_hparams(batch_size=batch)
        editor = self.panel.settings._widgets().get("batch_size")
        if editor is not None:  # the form shows the new size at once (the change lands between steps)
            editor.blockSignals(True)
            editor.setValue(batch)
            editor.blockSignals(False)
        s.start()

    # -- presentation mode ---------------------------------------------------------------------------
    @property
    def presenting(self) -> bool:
        return getattr(self, "_present_state", None) is not None

    def toggle_presentation(self) -> None:
        if self.presenting:
            self.leave_presentation()
        else:
            self.enter_presentation()

    def enter_presentation(self) -> None:
        """For a class: full screen, large type, a black high-contrast theme, the settings and toolbars
        hidden. Everything stays reachable from the keyboard (Space, S, R, Ctrl+PgDown/PgUp, F5/Esc)."""
        if self.presenting:
            return
        app = QtWidgets.QApplication.instance()
        hidden = [d for name, d in self.docks.items() if "Settings" in name and d.isVisible()]
        self._present_state = {"style": app.styleSheet(), "font": QtGui.QFont(app.font()),
                               "maximized": self.isMaximized(), "geometry": self.saveGeometry(),
                               "hidden": hidden, "docks": self.saveState()}
        for d in hidden:
            d.hide()
        for w in (self.menuBar(), *self.findChildren(QtWidgets.QToolBar)):
            if w is not self.timeline_toolbar:  # the timeline stays: a teacher scrubs in class
                w.hide()
        qss = RESOURCES / "presentation.qss"
        app.setStyleSheet(app.styleSheet() + "\n" + (qss.read_text(encoding="utf-8") if qss.exists() else ""))
        font = QtGui.QFont(app.font())
        font.setPointSize(font.pointSize() + 6)
        app.setFont(font)
        self._style_plots(large=True)
        self.act_present.setChecked(True)
        self.showFullScreen()
        self.notice.show_message("Presentation mode: Space play/pause · S step · R reset · "
                                 "Ctrl+PgDown/PgUp other model · F5 or Esc to leave")

    def leave_presentation(self) -> None:
        st = getattr(self, "_present_state", None)
        if st is None:
            return
        self._present_state = None
        app = QtWidgets.QApplication.instance()
        app.setStyleSheet(st["style"])
        app.setFont(st["font"])
        self._style_plots(large=False)
        for w in (self.menuBar(), *self.findChildren(QtWidgets.QToolBar)):
            w.show()
        for d in st["hidden"]:
            d.show()
        self.act_present.setChecked(False)
        self.showNormal()
        if st["maximized"]:
            self.showMaximized()
        else:
            self.restoreGeometry(st["geometry"])
        self.restoreState(st["docks"])  # the docks as the user had them

    def _style_plots(self, large: bool) -> None:
        """Axis numbers and labels of every plot: large and white for a projector, or back to normal."""
        import pyqtgraph as pg

        font = QtGui.QFont(QtWidgets.QApplication.instance().font())
        font.setPointSize(16 if large else max(9, font.pointSize() - 1))
        pen = pg.mkPen("#ffffff" if large else "#d8dee9", width=2 if large else 1)
        for view in self.findChildren(pg.GraphicsView):
            for item in view.scene().items():
                if isinstance(item, pg.AxisItem):
                    item.setTickFont(font if large else None)
                    item.setPen(pen)
                    item.setTextPen(pen)
                    item.label.setFont(font)

    def _cycle_family(self, step: int) -> None:
        fams = list(PANELS)
        self.switch_family(fams[(fams.index(self.family) + step) % len(fams)])

    # -- autosave and recovery ---------------------------------------------------------------------
    def _start_autosave(self) -> None:
        """Offer what a crashed earlier run left, then mark this app as running."""
        self.autosave = AutosaveSlot()
        self.autosave_interval_s = AUTOSAVE_INTERVAL_S
        self.autosave.last_time = time.monotonic()  # the first autosave comes one interval from now
        try:
            stale = self.autosave.stale()
            self.autosave.acquire()
        except OSError as exc:  # a read-only cache: the app works, without autosave
            self.notice.show_message(f"Autosave is off: {exc}", error=True)
            self.autosave = None
            return
        if stale is not None:
            self.notice.show_message(
                f"The last session ended unexpectedly. Its autosave ({stale['family']}, step {stale['step']}, "
                f"saved {stale['saved_at']}) can be restored.", action=("Restore autosave",
                                                                      lambda: self.open_run(stale["path"])))

    def autosave_now(self) -> threading.Event:
        """Save the session into the autosave slot, whole, between two training steps."""
        done = threading.Event()
        s, slot = self.session, self.autosave
        if s is None or slot is None or s.trainer.step == 0 or not s.is_alive:
            done.set()  # nothing to save, or no training thread left to save between its steps
            return done
        slot.last_time = time.monotonic()  # no second request while this one waits for its turn

        def saved(step: int | None, error: BaseException | None) -> None:
            if error is None:  # (a failure is a notice from the command itself)
                slot.saved(step)
            done.set()

        s.run_command(autosave_to, str(slot.folder), on_done=saved)
        return done

    # -- construction ------------------------------------------------------------------------------
    def _ensure_panel(self, family: str, config: Any = None):
        """The family's panel, with its central view and docks, built on first use."""
        if family in self.panels:
            return self.panels[family]
        panel_cls, config_cls = PANELS[family]
        panel = panel_cls(config if config is not None else config_cls(), self)
        if hasattr(self, "act_pace_views"):  # (the first panel is built before the menus: pacing is on)
            panel.pacer.enabled = self.act_pace_views.isChecked()
        self.panels[family] = panel
        panel.sigViewing.connect(lambda step, fam=family: self._on_viewing(fam, step))
        self._stack_index[family] = self.stack.addWidget(panel.central_widget())
        self._family_docks[family] = []
        bottom: list[QtWidgets.QDockWidget] = []
        for spec in panel.dock_specs():
            if spec.tab_with in self.docks:  # shares its place: a tab inside the other view's dock
                leader = self.docks[spec.tab_with]
                tabs = leader.widget()
                if not isinstance(tabs, QtWidgets.QTabWidget) or tabs.objectName() != "dockTabs":
                    first = tabs
                    tabs = QtWidgets.QTabWidget()
                    tabs.setObjectName("dockTabs")
                    tabs.setDocumentMode(True)
                    tabs.addTab(first, leader.windowTitle())
                    leader.setWidget(tabs)
                    tabs.currentChanged.connect(lambda _i, p=panel: p.redraw_shown())  # the tab's views
                tabs.addTab(spec.widget, spec.title)
                leader.setWindowTitle(" · ".join(tabs.tabText(i) for i in range(tabs.count())))
                self.docks[spec.object_name] = leader
                continue
            dock = QtWidgets.QDockWidget(spec.title, self)
            dock.setObjectName(spec.object_name)
            dock.setWidget(spec.widget)
            dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
                             | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)
            self.addDockWidget(spec.area, dock)
            self.docks[spec.object_name] = dock
            self._family_docks[family].append((dock, spec.area))
            if spec.area == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea:
                bottom.append(dock)
        for a, b in zip(bottom, bottom[1:]):  # bottom views side by side
            self.splitDockWidget(a, b, QtCore.Qt.Orientation.Horizontal)
        restored = False
        if self._layout_restored:  # put the new docks where the saved layout had them
            for dock, _area in self._family_docks[family]:
                restored = self.restoreDockWidget(dock) or restored
        for dock, _area in self._family_docks[family]:
            dock.hide()  # _show_family_ui shows them
        if not restored and self.isVisible():  # a family never laid out before: the default proportions
            QtCore.QTimer.singleShot(0, lambda: self._apply_default_sizes() if self.family == family else None)
        panel.wire_settings(self._on_setting_changed, self.reset, self.choose_data_folder)
        self._rebuild_view_menu()
        return panel

    def _action(self, text: str, slot, shortcut: str | None = None, tip: str = "") -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        act.triggered.connect(slot)
        if shortcut:
            act.setShortcut(QtGui.QKeySequence(shortcut))
            act.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        if tip:
            act.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        self.act_play = self._action("▶  Play", self.toggle_play, "Space", "Start or pause training")
        self.act_step = self._action("Step", self.step_once, "S", "Pause and do exactly one training step")
        self.act_reset = self._action("Reset", self.reset, "R", "Re-initialise the model from the seed")
        self.act_open_run = self._action("Open run folder…", self.choose_run_folder, "Ctrl+O")
        self.act_save_run = self._action("Save run…", self.choose_save_folder, "Ctrl+S")
        self.act_open_data = self._action("Open data folder…", self.choose_data_folder)
        self.act_download = self._action("Download MNIST into cache", lambda: self.download("mnist"))
        self.act_download_f = self._action("Download Fashion-MNIST into cache",
                                           lambda: self.download("fashion-mnist"))
        self.act_quit = self._action("Quit", self.close, "Ctrl+Q")
        self.act_reset_layout = self._action("Reset layout", self.reset_layout)
        self.act_present = self._action("Presentation mode", self.toggle_presentation, "F5",
                                        "Full screen, large type, high contrast, settings hidden; "
                                        "keys: Space play/pause, S step, R reset, Ctrl+PgDown/PgUp next/previous "
                                        "model, F5 or Esc to leave")
        self.act_present.setCheckable(True)
        self.act_keep_core = self._action(
            "Keep a core for the window", self._apply_threads, None,
            "Train with one CPU thread fewer than the machine has, so the live views never stall training "
            "(on 2 cores: 1 thread, which trains about as fast here while the views refresh smoothly)")
        self.act_keep_core.setCheckable(True)
        self.act_keep_core.setChecked(True)
        self.act_pace_views = self._action(
            "Pace the views to keep training fast", self._apply_pacing, None,
            "While training runs, the views take new snapshots only as often as what they cost training "
            "allows: with training in its own process, the snapshots' own time (5% of training's); on a thread, "
            "the window's share of the CPU (drawing then holds Python's lock, which training needs between "
            "operations). Off: every snapshot up to the refresh rate, slower training on a small machine")
        self.act_pace_views.setCheckable(True)
        self.act_pace_views.setChecked(True)
        self.act_train_process = self._action(
            "Train in a separate process", self._on_process_training_toggled, None,
            "Training runs in its own process, so drawing the views never holds it up (in one process they "
            "share Python's lock); off: training runs on a thread of the window's process. A model at step 0 "
            "moves at once; one already trained keeps its place until the next model, builder network or run")
        self.act_train_process.setCheckable(True)
        self.act_train_process.setChecked(self.process_training)
        self.act_next_model = self._action("Next model", lambda: self._cycle_family(1), "Ctrl+PgDown")
        self.act_prev_model = self._action("Previous model", lambda: self._cycle_family(-1), "Ctrl+PgUp")
        self.act_leave_present = self._action("Leave presentation mode", self.leave_presentation, "Esc")
        self.act_builder = self._action("Architecture builder…", self.show_builder, "Ctrl+B",
                                        "Design a network: layers, shapes, parameters, presets, export")
        self.recorder = PanelRecorder(self)  # Ctrl+Shift+R: record the views, save a GIF or MP4
        self.act_record = self.recorder.action

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Training")
        tb.setObjectName("trainingToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addWidget(QtWidgets.QLabel(" Model "))
        self.family_combo = QtWidgets.QComboBox()
        self.family_combo.setObjectName("familyCombo")
        for fam, (panel_cls, _config_cls) in PANELS.items():
            self.family_combo.addItem(panel_cls.title, fam)
        self.family_combo.setCurrentIndex(list(PANELS).index(self.family))
        self.family_combo.currentIndexChanged.connect(
            lambda i: self.switch_family(self.family_combo.itemData(i)))
        tb.addWidget(self.family_combo)
        tb.addSeparator()
        tb.addAction(self.act_play)
        tb.addAction(self.act_step)
        tb.addAction(self.act_reset)
        tb.addAction(self.act_record)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Device "))
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setObjectName("deviceCombo")
        self.device_combo.addItems(available_devices())
        self.device_combo.setToolTip("Only the devices this machine's PyTorch reports are offered")
        self.device_combo.currentTextChanged.connect(self._on_device_changed)
        tb.addWidget(self.device_combo)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Refresh "))
        self.refresh_spin = QtWidgets.QSpinBox()
        self.refresh_spin.setObjectName("refreshSpin")
        self.refresh_spin.setRange(1, 60)
        self.refresh_spin.setSuffix(" /s")
        self.refresh_spin.setToolTip("How often the views redraw; training never waits for them")
        self.refresh_spin.valueChanged.connect(self.set_refresh_rate)
        tb.addWidget(self.refresh_spin)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open_run)
        m.addAction(self.act_save_run)
        self.model_exporter = ModelExporter(self)  # Export model ▸ ONNX… / safetensors…
        m.addMenu(self.model_exporter.menu)
        m.addSeparator()
        m.addAction(self.act_open_data)
        m.addAction(self.act_download)
        m.addAction(self.act_download_f)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Training")
        for a in (self.act_play, self.act_step, self.act_reset):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_keep_core)
        m.addAction(self.act_pace_views)
        m.addAction(self.act_train_process)
        m = mb.addMenu("&Build")
        m.addAction(self.act_builder)
        m = mb.addMenu("&View")
        self.view_menu = m
        self._view_dock_actions: list[QtGui.QAction] = []
        self._rebuild_view_menu()
        m.addSeparator()
        m.addAction(self.act_reset_layout)
        m.addSeparator()
        m.addAction(self.act_present)
        m.addAction(self.act_next_model)
        m.addAction(self.act_prev_model)
        m.addSeparator()
        m.addAction(self.act_record)

    def _rebuild_view_menu(self) -> None:
        """The View menu lists the docks of the family on show."""
        m = getattr(self, "view_menu", None)
        if m is None:
            return
        first = m.actions()[0] if m.actions() else None
        for a in self._view_dock_actions:
            m.removeAction(a)
        self._view_dock_actions = [d.toggleViewAction() for d, _a in self._family_docks.get(self.family, [])]
        for a in self._view_dock_actions:
            m.insertAction(first if first not in self._view_dock_actions else None, a)

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.status_state = QtWidgets.QLabel("paused")
        self.status_state.setObjectName("statusState")
        self.status_rate = QtWidgets.QLabel("")
        self.status_epoch = QtWidgets.QLabel("")
        self.status_device = QtWidgets.QLabel("")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        for w in (self.status_state, self.status_rate, self.status_epoch, self.status_device):
            sb.addPermanentWidget(w)
        sb.addWidget(self.progress)

    # -- sessions ----------------------------------------------------------------------------------
    @property
    def panel(self):
        """The panel of the family on show."""
        return self.panels[self.family]

    def _show_family_ui(self, family: str) -> None:
        """Show one family's central view and docks, hide the others' (remembering which were open)."""
        self._ensure_panel(family)
        prev = getattr(self, "_shown_family", None)
        for fam, docks in self._family_docks.items():
            if fam == family:
                continue
            for dock, _area in docks:
                if fam == prev:
                    dock.setProperty("wasVisible", dock.isVisible())
                dock.hide()
        for dock, _area in self._family_docks[family]:
            if dock.property("wasVisible") is not False:
                dock.show()
        self._shown_family = self.family = family
        self.stack.setCurrentIndex(self._stack_index[family])
        combo = getattr(self, "family_combo", None)
        if combo is not None and combo.currentData() != family:
            combo.blockSignals(True)
            combo.setCurrentIndex(list(PANELS).index(family))
            combo.blockSignals(False)
        self._rebuild_view_menu()

    def switch_family(self, family: str) -> bool:
        """Train another kind of model: its panel shows, a new session starts from its last settings."""
        if family == self.family and self.session is not None:
            return True
        config = self._last_config.get(family) or PANELS[family][1]()
        return self._new_session(config)

    def _new_session(self, config) -> bool:
        try:
            session = self._make_session(config)
        except (DataError, DeviceError, ValueError, OSError) as exc:
            self.notice.show_message(f"Could not start: {exc}", error=True)
            always_there = getattr(type(config), "FALLBACK_DATASET", "digits")  # a family's always-available data
            if config.dataset != always_there or config.device not in ("auto", "cpu"):
                # fall back to something that always works, keeping the user's other settings
                fallback = type(config).from_dict({**config.to_dict(), "dataset": always_there, "data_dir": None,
                                                   "device": "auto"})
                return self._new_session(fallback)
            return False
        self._set_session(session)
        return True

    def _make_session(self, config=None, run_dir: str | Path | None = None):
        """A session for ``config`` (or the saved run in ``run_dir``): in a training process when the
        setting says so, and on a thread of this process if the training process cannot start."""
        hz = self.refresh_spin.value()
        if self.process_training:
            kwargs: dict[str, Any] = {"snapshot_hz": hz, "threads": self.training_threads()}
            try:
                if run_dir is not None:
                    session = ProcessSession(run_dir=str(run_dir), **kwargs)
                else:
                    session = ProcessSession(config, family=family_of(config), eval_fraction=WINDOW_EVAL_FRACTION,
                                             **kwargs)
                worker.prepare()  # a spare for the next session, importing torch while this one trains
                return session
            except TrainingProcessError as exc:
                self.notice.show_message(f"Training runs in the window's process: {exc}.", error=True)
        if run_dir is not None:
            return restore_session(load_run(run_dir), snapshot_hz=hz)
        return TrainingSession(make_trainer(family_of(config), config), snapshot_hz=hz,
                               eval_fraction=WINDOW_EVAL_FRACTION)

    def _set_session(self, session: TrainingSession) -> None:
        old = self.session
        if old is not None:
            old.close()
            self.panels[old.trainer.family].detach()
        self.session = session
        family = session.trainer.family
        self._last_config[family] = session.trainer.config
        if family != self.family:
            self._show_family_ui(family)
        self.panel.attach(session)
        self.timeline_bar.set_panel(self.panel)
        self._apply_threads()
        self.device_combo.blockSignals(True)
        self.device_combo.setCurrentText(session.trainer.config.device
                                         if session.trainer.config.device in available_devices() else "auto")
        self.device_combo.blockSignals(False)
        self._update_status()
        self.sigSessionChanged.emit()

    def training_threads(self) -> int | None:
        """The training thread's intra-op threads: one fewer than the cores while a core is kept for the
        window (its painting then never preempts one of torch's threads mid-operation), else torch's own."""
        if hasattr(self, "act_keep_core") and not self.act_keep_core.isChecked():
            return None
        return max(1, (os.cpu_count() or 1) - 1)

    def _on_process_training_toggled(self) -> None:
        self.process_training = self.act_train_process.isChecked()
        self._settings.setValue("training/process", self.process_training)
        if not self.process_training:
            worker.discard_spare()
        where = "in a separate process" if self.process_training else "on a thread of the window's process"
        s = self.session
        if s is not None and s.trainer.step == 0 and s.is_alive:  # nothing learnt yet: move it now
            if self._new_session(s.trainer.config):
                self.notice.show_message(f"Training now runs {where}.")
                return
        self.notice.show_message(f"Training runs {where} from the next model, builder network or opened run on.")

    def _apply_pacing(self) -> None:
        for panel in self.panels.values():
            panel.pacer.enabled = self.act_pace_views.isChecked()

    def _apply_threads(self) -> None:
        if self.session is not None:  # (on a GPU the CPU threads only launch kernels: it costs nothing)
            self.session.set_threads(self.training_threads())

    # -- toolbar actions -----------------------------------------------------------------------------
    def toggle_play(self) -> None:
        s = self.session
        if s is None:
            return
        if s.state == RUNNING:
            s.pause()
        else:
            if not self.notice.property("error"):
                self.notice.hide()
            s.start()
        self._update_status()

    def step_once(self) -> None:
        if self.session is not None:
            self.session.step(1)
            self._update_status()

    def reset(self) -> None:
        if self.session is not None:
            self.notice.hide()
            self.session.reset()

    def set_refresh_rate(self, hz: float) -> None:
        hz = max(1, min(60, int(round(hz))))
        if self.refresh_spin.value() != hz:
            self.refresh_spin.blockSignals(True)
            self.refresh_spin.setValue(hz)
            self.refresh_spin.blockSignals(False)
        self.timer.setInterval(int(1000 / hz))
        if self.session is not None:
            self.session.set_snapshot_rate(hz)

    def _on_device_changed(self, name: str) -> None:
        if self.session is None:
            return
        try:
            self.session.set_device(name)
        except DeviceError as exc:
            self.notice.show_message(str(exc), error=True)

    def _on_setting_changed(self, key: str, value: Any) -> None:
        if self.session is not None:
            self.session.set_hparams(**{key: value})

    # -- the architecture builder ----------------------------------------------------------------------
    def show_builder(self):
        """Open (or raise) the builder window; its Train button hands the network to this window."""
        from explorer.gui.panels.builder_panel import BuilderWindow

        if self.builder_window is None:
            self.builder_window = BuilderWindow(self)
            self.builder_window.builder.sigTrain.connect(self.train_spec)
        self.builder_window.show()
        self.builder_window.raise_()
        return self.builder_window

    def train_spec(self, spec) -> bool:
        """Train a network from the builder in the panel of its family."""
        builder = self.builder_window.builder if self.builder_window is not None else None

        def say(text: str, error: bool = False) -> bool:
            if builder is not None:
                builder.show_message(text, error=error)
            self.notice.show_message(text, error=error)
            return not error

        if spec.family not in SPEC_CONFIGS:
            return say(f"The {spec.family} panel is not part of this version yet: RBM, autoencoder and deep "
                       "MLP networks train here. The network is valid; save or export it.", error=True)
        base = self._last_config.get(spec.family)
        try:
            config = SPEC_CONFIGS[spec.family](spec, base)
        except ValueError as exc:
            return say(f"Cannot train this network: {exc}", error=True)
        if not self._new_session(config):
            return False
        self.raise_()
        return say(f"Training {spec.name or 'the network'} from the builder: {self.session.trainer.describe()}.")

    # -- files ---------------------------------------------------------------------------------------
    def choose_data_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder with MNIST or Fashion-MNIST IDX files")
        if path:
            self.use_data_folder(path)

    def use_data_folder(self, path: str) -> None:
        """Train on the IDX files in ``path`` (MNIST unless Fashion-MNIST is already chosen)."""
        if self.session is None:
            return
        if hasattr(self.panel, "use_data_folder"):  # a family with its own kind of data folder
            self.panel.use_data_folder(path)
            return
        dataset = self.session.trainer.config.dataset
        if dataset not in ("mnist", "fashion-mnist"):
            dataset = "mnist"
        self.panel.settings.set_data_dir(path)
        self.session.set_hparams(dataset=dataset, data_dir=path)
        self.session.reset()
        self.notice.show_message(f"Loading {dataset} from {path}…")

    def choose_run_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a run folder")
        if path:
            self.open_run(path)

    def open_run(self, path: str | Path) -> bool:
        """Show a saved run (weights, curves, settings); training can go on from it."""
        try:
            session = self._make_session(run_dir=path)
        except (RunFolderError, DataError, DeviceError, ValueError, OSError) as exc:
            self.notice.show_message(f"Could not open run: {exc}", error=True)
            return False
        self._set_session(session)
        info = session.run_info
        gui = info.get("gui") if isinstance(info.get("gui"), dict) else {}
        if gui.get("layout_version") == LAYOUT_VERSION and isinstance(gui.get("layout"), str):
            self.restoreState(QtCore.QByteArray.fromBase64(gui["layout"].encode("ascii")), LAYOUT_VERSION)
            for fam, docks in self._family_docks.items():  # other families' docks stay hidden
                if fam != self.family:
                    for dock, _area in docks:
                        dock.hide()
        self.notice.show_message(f"Opened run {path} at step {session.trainer.step}.")
        return True

    def choose_save_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Save the run into this folder")
        if path:
            self.save_run(path)

    def save_run(self, path: str | Path) -> threading.Event:
        """Save on the training thread between steps (never mid-update). Returns an event set when done."""
        done = threading.Event()
        s = self.session
        if s is None:
            done.set()
            return done

        # the panel layout travels with the run, so reopening it shows the same views where they were
        extra = {"layout": bytes(self.saveState(LAYOUT_VERSION).toBase64()).decode("ascii"),
                 "layout_version": LAYOUT_VERSION, "refresh_hz": self.refresh_spin.value()}

        self._saves = [e for e in self._saves if not e.is_set()] + [done]
        # whole or not at all; the outcome, saved or not, is a notice from the command itself
        s.run_command(save_run_to, str(path), extra, on_done=lambda _target, _error: done.set())
        return done

    def download(self, name: str) -> None:
        """Download a data set into the user cache on a plain thread; progress shows in the status bar."""
        if self._download is not None:
            return
        state: dict[str, Any] = {"name": name, "done": 0, "total": 0, "result": None, "error": None}

        def work() -> None:
            try:
                state["result"] = str(download_dataset(
                    name, default_cache_dir() / name,
                    progress=lambda d, t: state.update(done=d, total=t)))
            except (DataError, OSError) as exc:
                state["error"] = str(exc)

        self._download = state
        self.progress.setRange(0, 0)
        self.progress.show()
        threading.Thread(target=work, name="download", daemon=True).start()

    def _poll_download(self) -> None:
        st = self._download
        if st is None:
            return
        if st["total"]:
            self.progress.setRange(0, int(st["total"]))
            self.progress.setValue(int(st["done"]))
        if st["result"] or st["error"]:
            self.progress.hide()
            self._download = None
            if st["error"]:
                self.notice.show_message(st["error"], error=True)
            else:
                self.notice.show_message(f"{st['name']} is in {st['result']}.")
                self.panel.settings.dataset.setCurrentText(st["name"])
                self.use_data_folder(st["result"])

    # -- the redraw timer ----------------------------------------------------------------------------
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
            self.notice.show_message(msg, error=(s.state == ERROR), action=action, more=more)
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

    def _mark_viewed_step(self, family: str, step: int | None) -> None:
        """While the timeline is scrubbed back, a line on every curve of the panel marks the step on show."""
        roots = [self.stack.widget(self._stack_index[family])]
        roots += [d.widget() for d, _area in self._family_docks.get(family, [])]
        for root in roots:
            if root is None:
                continue
            views = root.findChildren(CurveView)
            if isinstance(root, CurveView):
                views.append(root)
            for view in views:
                view.set_viewed_step(step)

    def _update_status(self) -> None:
        s = self.session
        if s is None:
            return
        state = s.state
        self.act_play.setText("❚❚  Pause" if state == RUNNING else "▶  Play")
        steps_s, samples_s = s.rates()
        self.status_state.setText({RUNNING: "● training", ERROR: "■ stopped: error",
                                   FINISHED: "■ finished"}.get(state, "❚❚ paused"))
        self.status_state.setProperty("state", state)
        pacer = self.panel.pacer
        views = ""
        if state == RUNNING and pacer.measured is not None and self.panel.viewing is None:
            views = f"  ·  views {pacer.draw_rate:.0f}/s" + (" (paced)" if pacer.pacing else "")
        self.status_rate.setText(f"{steps_s:,.0f} steps/s  ·  {samples_s:,.0f} samples/s{views}" if steps_s else "")
        self.status_epoch.setText(f"epoch {s.trainer.epoch}  ·  step {s.trainer.step}")
        threads = ""
        if s.trainer.device.type == "cpu":
            used, limit = s.threads_in_use, s.threads
            threads = f" · {used} thread{'s' if used != 1 else ''}" if used == limit else f" · {used} of {limit} threads"
        own = " · own process" if isinstance(s, ProcessSession) else ""
        self.status_device.setText(f"device: {s.trainer.device}{threads}{own}")
        note = f"Threads measured for this model: {s.thread_note}; the fastest is used." if s.thread_note else ""
        if self.status_device.toolTip() != note:
            self.status_device.setToolTip(note)

    # -- layout persistence and shutdown -------------------------------------------------------------
    def _restore_layout(self) -> None:
        geo = self._settings.value("window/geometry")
        state = self._settings.value("window/state")
        if geo is not None:
            self.restoreGeometry(geo)
        if state is not None:
            self.restoreState(state, LAYOUT_VERSION)
            self._layout_restored = True
            docks = [d for d, _a in self._family_docks[self.family]]
            if not any(d.isVisibleTo(self) for d in docks):  # saved while another family was on show
                for d in docks:
                    d.show()
            for fam, pairs in self._family_docks.items():
                if fam != self.family:
                    for d, _a in pairs:
                        d.hide()
        hz = self._settings.value("view/refresh_hz")
        if hz is not None:
            try:
                self.set_refresh_rate(float(hz))
            except (TypeError, ValueError):
                pass

    def has_saved_geometry(self) -> bool:
        return self._settings.value("window/geometry") is not None

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for fam, pairs in self._family_docks.items():
            for dock, _area in pairs:
                dock.setVisible(fam == self.family)
        self._apply_default_sizes()

    def _apply_default_sizes(self) -> None:
        """Proportions that suit a projector: big central views, curves along the bottom."""
        w, h = max(self.width(), 900), max(self.height(), 600)
        H, V = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        A = QtCore.Qt.DockWidgetArea
        docks = self._family_docks[self.family]
        left = [d for d, a in docks if a == A.LeftDockWidgetArea]
        right = [d for d, a in docks if a == A.RightDockWidgetArea]
        bottom = [d for d, a in docks if a == A.BottomDockWidgetArea]
        if left and right:
            self.resizeDocks([left[0], right[0]], [300, int(w * 0.36)], H)
        panel = self.panels[self.family]  # its proportions (LivePanel.bottom_share, right_split, left_split)
        if bottom:
            self.resizeDocks([bottom[0]], [int(h * panel.bottom_share)], V)
        if len(right) >= 2:
            first, second = panel.right_split
            self.resizeDocks(right[:2], [int(h * first), int(h * second)], V)
        if len(left) >= 2 and panel.left_split is not None:
            first, second = panel.left_split
            self.resizeDocks(left[:2], [int(h * first), int(h * second)], V)
        if len(bottom) >= 2:
            self.resizeDocks(bottom[:2], [int(w * 0.68), int(w * 0.32)], H)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if self.presenting:
            # full screen with large type: the docks' proportions again for the screen's size (the docks
            # had kept their pixel heights, and the larger captions left the curves 40 px)
            QtCore.QTimer.singleShot(0, self._apply_default_sizes)

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            if self._settings.value("window/state") is None:
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
        self._settings.setValue("view/refresh_hz", self.refresh_spin.value())
        self._settings.sync()
