"""The window's actions, toolbar, menus and status bar.

Every command is a window-wide QAction with its shortcut (so it works in presentation mode, with the
menus and toolbars hidden); the toolbar and menus show the same actions. The status bar says what
training does (state, rate, epoch, device).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.engine.devices import available_devices
from explorer.core.engine.session import ERROR, FINISHED, RUNNING
from explorer.gui.model_export import ModelExporter
from explorer.gui.panels import PANELS
from explorer.gui.recorder import PanelRecorder

if TYPE_CHECKING:
    from explorer.core.engine.protocol import Session
    from explorer.gui.panels.base import LivePanel

# the training speeds offered, fastest first (None: full speed, the default): from as fast as the machine goes
# down to one step a second, to follow an RBM's or a pretraining stage's steps one by one
STEP_RATES: tuple[float | None, ...] = (None, 1000, 500, 200, 100, 50, 20, 10, 5, 2, 1)


def step_rate_text(rate: float | None) -> str:
    if rate is None:
        return "full speed"
    return f"{rate:,g} step{'s' * (rate != 1)}/s"


class ActionsMixin:
    """The actions, toolbar, menus and status bar of :class:`~explorer.gui.main_window.MainWindow` (a part
    of it: see that class for why the parts are mixins).

    Makes the ``act_*`` actions, ``family_combo``, ``device_combo``, ``refresh_spin``, ``view_menu``,
    ``recorder``, ``model_exporter``, the ``status_*`` labels and ``progress``, ``speed_combo`` with
    ``act_faster``/``act_slower`` and ``step_rate`` (the training speed every session gets). Their slots are the
    other parts' (``toggle_play``, ``open_run``, ``switch_family``, ``toggle_presentation``...).
    """

    step_rate: float | None = None  # the most training steps a second (None: full speed)

    family: str
    session: Session | None
    panels: dict[str, LivePanel]
    process_training: bool

    # -- building them -----------------------------------------------------------------------------
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
        self.act_attach = self._action("Attach to a training run…", self.choose_attach, None,
                                       "Watch a model your own script trains (explorer.watch): its address "
                                       "HOST:PORT or its watch folder")
        self.act_save_run = self._action("Save run…", self.choose_save_folder, "Ctrl+S")
        self.act_open_data = self._action("Open data folder…", self.choose_data_folder)
        self.act_download = self._action("Download MNIST into cache", lambda: self.download("mnist"))
        self.act_download_f = self._action("Download Fashion-MNIST into cache",
                                           lambda: self.download("fashion-mnist"))
        self.act_quit = self._action("Quit", self.close, "Ctrl+Q")
        self.act_reset_layout = self._action("Reset layout", self.reset_layout)
        self.act_present = self._action("Presentation mode", self.toggle_presentation, "F5",
                                        "Full screen, large type, high contrast, settings hidden; "
                                        "keys: Space play/pause, S step, R reset, [ and ] slower/faster, "
                                        "Ctrl+PgDown/PgUp next/previous model, F5 or Esc to leave")
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
        self.act_next_view = self._action("Next view (presentation mode)", lambda: self.cycle_presented_view(1), "V",
                                          "In presentation mode: the lower view beside the centre becomes the "
                                          "panel's next one (Shift+V: the previous)")
        self.act_prev_view = self._action("Previous view (presentation mode)", lambda: self.cycle_presented_view(-1),
                                          "Shift+V")
        self.act_lecture = self._action("Lecture, step by step…", lambda: self.open_lecture(), "Ctrl+L",
                                        "The lecture in its order: each step opens its live panel; "
                                        "PgDown/PgUp (a presenter's clicker) for the next and previous step")
        self.act_builder = self._action("Architecture builder…", self.show_builder, "Ctrl+B",
                                        "Design a network: layers, shapes, parameters, presets, export")
        self.act_faster = self._action("Train faster", lambda: self.change_speed(-1), "]",
                                       "Train faster: the next speed up to full speed")
        self.act_slower = self._action("Train slower", lambda: self.change_speed(1), "[",
                                       "Train slower: the next speed down to one step a second, to watch each step")
        self.act_faster.setShortcuts([QtGui.QKeySequence("]"), QtGui.QKeySequence("+"), QtGui.QKeySequence("=")])
        self.act_slower.setShortcuts([QtGui.QKeySequence("["), QtGui.QKeySequence("-")])
        self._build_remote_actions()
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
        for fam, panel_cls in PANELS.items():
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
        tb.addWidget(QtWidgets.QLabel(" Speed "))
        self.speed_combo = QtWidgets.QComboBox()
        self.speed_combo.setObjectName("speedCombo")
        for rate in STEP_RATES:
            self.speed_combo.addItem(step_rate_text(rate), None if rate is None else float(rate))
        self.speed_combo.setToolTip("The most training steps a second: full speed, or slow enough to watch each step "
                                    "([ slower, ] faster)")
        self.speed_combo.currentIndexChanged.connect(
            lambda i: self.set_step_rate(self.speed_combo.itemData(i)))
        tb.addWidget(self.speed_combo)
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
        m.addAction(self.act_attach)
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
        m.addAction(self.act_faster)
        m.addAction(self.act_slower)
        m.addSeparator()
        m.addAction(self.act_keep_core)
        m.addAction(self.act_pace_views)
        m.addAction(self.act_train_process)
        m.addSeparator()
        m.addAction(self.act_connect)
        m.addAction(self.act_reconnect)
        m.addAction(self.act_train_here)
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
        m.addAction(self.act_lecture)
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
            # a label is as wide as its text at least, which made the window wider than a small screen and the
            # screen then cut the text; the line now shortens itself to fit (_update_status)
            w.setMinimumWidth(1)
            sb.addPermanentWidget(w)
        sb.addWidget(self.progress)

    # -- what they show and do ---------------------------------------------------------------------
    def _update_status(self) -> None:
        s = self.session
        if s is None:
            return
        state = s.state
        self.act_play.setText("❚❚  Pause" if state == RUNNING else "▶  Play")
        self.status_state.setText({RUNNING: "● training", ERROR: "■ stopped: error",
                                   FINISHED: "■ finished"}.get(state, "❚❚ paused"))
        self.status_state.setProperty("state", state)
        # the line says less when it would not fit whole: first without the samples' rate, then as briefly as in
        # presentation mode's large type (on a 1366-px screen, the views' rate was cut to "views 16/s (p")
        for level in ((2,) if self.presenting else (0, 1, 2)):
            rate_text, device_text = self._status_texts(s, level)
            if level == 2 or self._status_fits(rate_text, device_text):
                break
        self.status_rate.setText(rate_text)
        self.status_epoch.setText(f"epoch {s.trainer.epoch}  ·  step {s.trainer.step}")
        self.status_device.setText(device_text)
        self._update_remote_actions()
        note = f"Threads measured for this model: {s.thread_note}; the fastest is used." if s.thread_note else ""
        if self.status_device.toolTip() != note:
            self.status_device.setToolTip(note)

    def _status_texts(self, s, level: int) -> tuple[str, str]:
        """The rate and device parts of the status line: ``level`` 0 all of it, 1 without the samples' rate,
        2 brief (without the views' rate, the threads and "own process")."""
        state = s.state
        steps_s, samples_s = s.rates()
        pacer = self.panel.pacer
        brief = level >= 2
        views = ""
        if state == RUNNING and pacer.measured is not None and self.panel.viewing is None and not brief:
            views = f"  ·  views {pacer.draw_rate:.0f}/s" + (" (paced)" if pacer.pacing else "")
        limit = f" (at most {step_rate_text(self.step_rate)})" if self.step_rate is not None else ""
        rate = f"{steps_s:,.1f}" if 0 < steps_s < 10 else f"{steps_s:,.0f}"
        samples = "" if level >= 1 or not samples_s else f"  ·  {samples_s:,.0f} samples/s"  # (none when attached)
        threads = ""
        if s.trainer.device.type == "cpu" and s.threads and not brief:  # (an attached run's are its script's)
            used, most = s.threads_in_use, s.threads
            threads = f" · {used} thread{'s' if used != 1 else ''}" if used == most else f" · {used} of {most} threads"
        own = ""
        server = getattr(s, "server", None)  # a session on a training server
        if server is not None:
            where = f"following {server}, read-only" if getattr(s, "read_only", False) else f"on {server}"
            own = f" · connection to {server} lost, connecting again" if s.dropped else f" · {where}"
        elif s.in_own_process and not brief:
            own = " · own process" if s.trainer.family in PANELS else " · in your script"
        return (f"{rate} steps/s{limit}{samples}{views}" if steps_s else ""), f"device: {s.trainer.device}{threads}{own}"

    def _status_fits(self, rate_text: str, device_text: str) -> bool:
        """Whether the status line's labels with these texts fit the status bar's width whole."""
        sb = self.statusBar()
        if not sb.isVisible():  # not laid out yet: its first resize asks again
            return True
        labels = ((self.status_state, self.status_state.text()), (self.status_rate, rate_text),
                  (self.status_epoch, f"epoch {self.session.trainer.epoch}  ·  step {self.session.trainer.step}"),
                  (self.status_device, device_text))
        # each label's text, its margins and the bar's spacing between items (about 12 px at any type size)
        need = sum(lab.fontMetrics().horizontalAdvance(text) + 16 for lab, text in labels if text)
        if self.progress.isVisible():
            need += self.progress.width() + 16
        return need <= sb.width() - 24  # (the size grip)

    def set_step_rate(self, rate: float | None) -> None:
        """Train at most ``rate`` steps a second (None: full speed), this session and the next ones."""
        rate = None if rate is None or not float(rate) > 0 else float(rate)
        self.step_rate = rate
        i = self.speed_combo.findData(rate) if rate is not None else 0
        if i < 0:  # a rate not on the list: shown as a choice of its own
            self.speed_combo.blockSignals(True)
            self.speed_combo.addItem(step_rate_text(rate), rate)
            self.speed_combo.blockSignals(False)
            i = self.speed_combo.count() - 1
        if self.speed_combo.currentIndex() != i:
            self.speed_combo.blockSignals(True)
            self.speed_combo.setCurrentIndex(i)
            self.speed_combo.blockSignals(False)
        if self.session is not None:
            self.session.set_step_rate(rate)
        self.statusBar().showMessage(f"Training speed: {step_rate_text(rate)}  ([ slower, ] faster)", 4000)
        self._update_status()

    def change_speed(self, notches: int) -> None:
        """The next speed on the list: ``notches`` > 0 slower (down to 1 step/s), < 0 faster (up to full speed)."""
        rates = list(STEP_RATES)
        here = self.step_rate
        if here in rates:
            self.set_step_rate(rates[max(0, min(len(rates) - 1, rates.index(here) + notches))])
            return
        listed = [r for r in rates if r is not None]  # a speed between two listed ones: the next one that way
        if notches > 0:
            self.set_step_rate(max((r for r in listed if r < here), default=listed[-1]))
        else:
            self.set_step_rate(min((r for r in listed if r > here), default=None))

    def _cycle_family(self, step: int) -> None:
        fams = list(PANELS)
        here = fams.index(self.family) if self.family in fams else (-1 if step > 0 else 0)  # (an attached run)
        self.switch_family(fams[(here + step) % len(fams)])

    def _apply_pacing(self) -> None:
        for panel in self.panels.values():
            panel.pacer.enabled = self.act_pace_views.isChecked()
