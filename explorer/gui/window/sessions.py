"""The window's training session: creating it (in a training process or on a thread), switching models,
the training controls, the autosave, saving and opening runs, networks from the builder, and attaching to a
model trained in the user's own script (a watched run: File > Attach to a training run…).

This is the one module of the window that names the kinds of session: everything else holds a
:class:`~explorer.core.engine.protocol.Session` and never asks which kind it is.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtWidgets

from explorer.core.data.datasets import DataError
from explorer.core.engine.devices import DeviceError
from explorer.core.engine.protocol import Session
from explorer.core.engine.session import RUNNING, TrainingSession
from explorer.core.families.registry import FAMILIES, make_trainer
from explorer.core.persist.autosave import AUTOSAVE_INTERVAL_S, AutosaveSlot
from explorer.core.persist.commands import autosave_to, save_run_to
from explorer.core.persist.commands import run_files as session_run_files
from explorer.core.persist.runfolder import RunFolderError, load_run, load_run_files, restore_session
from explorer.core.persist.runfolder import read_run_folder_files as run_folder_files_of
from explorer.core.process import worker
from explorer.core.process.session import ProcessSession, TrainingProcessError
from explorer.core.remote.client import RemoteRefused, RemoteSession, ServerAddress
from explorer.core.safe_read import escape_text, one_line
from explorer.core.watch.attach import AttachError, Opened, ServedRun, open_source
from explorer.core.watch.session import WatchSession
from explorer.gui.panels import PANELS
from explorer.gui.startup import warm_first_optimizer
from explorer.gui.window.docks import LAYOUT_VERSION
from explorer.gui.window.remote import off_gui_thread

if TYPE_CHECKING:
    from explorer.gui.panels.base import LivePanel
    from explorer.gui.window.notice import NoticeBar

# watching wants held-out curves, but each evaluation is training time lost: they may take up to 5% of
# it in the window (at 10% they cost the RBM, CNN and FCN panels 9-12% of their speed; at 5% the RBM's
# held-out curve still gets a point every 2-3 epochs, about every 2 s on MNIST)
WARM_UP_AFTER_MS = 500  # after the main window's first paint: the first optimiser's imports (gui/startup.py)
WINDOW_EVAL_FRACTION = 0.05
PARK_WAIT_S = 10.0  # the most a switch of model waits for the run it leaves to be kept (between two steps)

log = logging.getLogger(__name__)


class SaveFolderDialog(QtWidgets.QFileDialog):
    """File > Save run's folder dialog: an existing folder, or the typed name of one that does not exist yet.

    Qt's folder mode greys out its button for a name that does not exist (and a desktop's own folder picker
    refuses one), so this is always Qt's own dialog, and a new name is taken as it is: the save creates the
    folder, whole with the run or not at all (see ``save_run_to``)."""

    def __init__(self, parent: QtWidgets.QWidget | None, title: str):
        super().__init__(parent, title)
        self.setOption(QtWidgets.QFileDialog.Option.DontUseNativeDialog)
        self.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
        self.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
        self.setLabelText(QtWidgets.QFileDialog.DialogLabel.Accept, "&Save")
        self.name_edit = self.findChild(QtWidgets.QLineEdit, "fileNameEdit")
        self.save_button = self.findChild(QtWidgets.QDialogButtonBox, "buttonBox").button(
            QtWidgets.QDialogButtonBox.StandardButton.Save)
        # after Qt's own check of the name (connected first), which disables the button for a new one
        self.name_edit.textChanged.connect(self._allow_new_name)

    def new_folder(self) -> str | None:
        """The typed folder, if it does not exist yet (its parent folders need not exist either, but the nearest
        one that does must be a folder: "notes.txt/run" could never be made)."""
        files = self.selectedFiles()
        if not self.name_edit.text().strip() or len(files) != 1 or os.path.lexists(files[0]):
            return None
        nearest = Path(files[0]).parent
        while not os.path.lexists(nearest) and nearest != nearest.parent:
            nearest = nearest.parent
        return files[0] if nearest.is_dir() else None

    def _allow_new_name(self) -> None:
        if self.new_folder() is not None:
            self.save_button.setEnabled(True)

    def accept(self) -> None:
        if self.new_folder() is not None:
            QtWidgets.QDialog.accept(self)  # (Qt's own accept says "Directory not found")
        else:
            super().accept()


def family_of(config) -> str:
    """The family (a key of ``PANELS``) whose configuration ``config`` is."""
    for fam in PANELS:
        if isinstance(config, FAMILIES[fam].config_cls):
            return fam
    raise ValueError(f"no panel for settings of type {type(config).__name__}")


class SessionsMixin:
    """The session lifecycle of :class:`~explorer.gui.main_window.MainWindow` (a part of it: see that class
    for why the parts are mixins).

    Keeps ``session``, ``process_training``, ``_last_config`` (family -> its last settings), ``_parked``
    (family -> the files of the run left by switching to another model), ``autosave``,
    ``autosave_interval_s``, ``_saves`` and ``builder_window``. Uses from the other parts: ``panels``,
    ``panel`` and ``_show_family_ui`` (docks), ``device_combo``, ``refresh_spin``, ``act_keep_core``,
    ``act_train_process`` and ``_update_status`` (actions), ``timeline_bar``, ``notice``, ``_settings``
    and the window's ``sigSessionChanged``.
    """

    session: Session | None
    process_training: bool
    family: str
    panels: dict[str, LivePanel]
    notice: NoticeBar
    _settings: QtCore.QSettings
    _last_config: dict[str, Any]
    _parked: dict[str, dict]
    _saves: list[threading.Event]

    # -- creating and switching --------------------------------------------------------------------
    def switch_family(self, family: str) -> bool:
        """Train another kind of model: its panel shows, with the run it had when the user left it (its
        weights, optimiser state and curves, paused), or a new session from its last settings.

        Why: Ctrl+PgDown through the models (which presentation mode's banner offers) threw away a run
        trained for minutes, with no way back; now a run left this way is kept, in memory, one a model."""
        if family == self.family and self.session is not None:
            return True
        self._park_session()
        parked = self._parked.pop(family, None)
        if parked is not None and self._resume_parked(family, parked):
            return True
        config = self._last_config.get(family) or FAMILIES[family].config_cls()
        return self._new_session(config)

    def _park_session(self) -> None:
        """Keep the run on show (its run folder's files, in memory) to come back to from the Model box."""
        s = self.session
        if (s is None or s.trainer.family not in FAMILIES or s.trainer.step == 0 or not s.is_alive
                or getattr(s, "read_only", False)):
            return
        done, got = threading.Event(), {}

        def answered(files: dict | None, error: BaseException | None) -> None:
            got["files"] = files if error is None else None
            done.set()

        s.run_command(session_run_files, on_done=answered)  # between two steps, as a save is
        if done.wait(PARK_WAIT_S) and got.get("files"):
            self._parked[s.trainer.family] = got["files"]
        else:
            log.warning("the %s run could not be kept on leaving it", s.trainer.family)

    def _resume_parked(self, family: str, files: dict) -> bool:
        """Show the run kept for ``family`` again, paused where it was left; False if it cannot be restored."""
        try:
            session = self._make_session(run_files=files)
        except Exception:  # noqa: BLE001 - a new session from the settings takes its place; the log says why
            log.error("the kept %s run could not be restored", family, exc_info=True)
            return False
        self._set_session(session)
        self.notice.show_message(f"Back to the {PANELS[family].title} run as you left it, at step "
                                 f"{session.trainer.step:,}. Reset starts it afresh.")
        return True

    def start_model(self, config) -> bool:
        """Train ``config`` (of any family) from now on, as the Model box does: for helpers of the window
        such as the lecture, which drive it from outside."""
        return self._new_session(config)

    def family_docks(self, family: str | None = None) -> list[tuple[QtWidgets.QDockWidget, Any]]:
        """The docks of ``family`` (the family on show by default), each with its dock area."""
        return list(self._family_docks.get(self.family if family is None else family, []))

    def _new_session(self, config) -> bool:
        """Train ``config`` (of any family) from now on: the Model menu, the builder and a panel's
        ``sigNewSessionRequested`` come here. False, with a notice, if no session could start."""
        try:
            session = self._make_session(config)
        except (RemoteRefused, TrainingProcessError) as exc:  # the server: no fallback would reach it either
            self.notice.show_message(f"Could not start on the training server: {escape_text(exc)}", error=True)
            return False
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

    def _make_session(self, config=None, run_dir: str | Path | None = None,
                      run_files: dict[str, Any] | None = None) -> Session:
        """A session for ``config`` (or the saved run in ``run_dir``, or a model moved as its ``run_files``): on
        the training server when connected to one, else in a training process when the setting says so, and
        on a thread of this process if the training process cannot start."""
        hz = self.refresh_spin.value()
        if run_dir is not None:
            run_files = run_folder_files_of(run_dir) if self.remote_server is not None else None
        family = None if config is None else family_of(config)
        if self.remote_server is not None:  # (its faults go to the caller: the model on show stays)
            server = self.remote_server  # (connecting and the server's start: off the GUI thread, no freeze)
            return off_gui_thread(lambda: RemoteSession(config, family=family, run_files=run_files, server=server,
                                                        snapshot_hz=hz, eval_fraction=WINDOW_EVAL_FRACTION))
        if self.process_training:
            kwargs: dict[str, Any] = {"snapshot_hz": hz, "threads": self.training_threads()}
            try:
                if run_dir is not None:
                    session = ProcessSession(run_dir=str(run_dir), **kwargs)
                elif run_files is not None:
                    session = ProcessSession(run_files=run_files, eval_fraction=WINDOW_EVAL_FRACTION, **kwargs)
                else:
                    session = ProcessSession(config, family=family, eval_fraction=WINDOW_EVAL_FRACTION, **kwargs)
                worker.prepare()  # a spare for the next session, importing torch while this one trains
                return session
            except TrainingProcessError as exc:
                self.notice.show_message(f"Training runs in the window's process: {exc}.", error=True)
        if run_dir is not None:
            return restore_session(load_run(run_dir), snapshot_hz=hz)
        if run_files is not None:
            return restore_session(load_run_files(run_files), snapshot_hz=hz, eval_fraction=WINDOW_EVAL_FRACTION)
        return TrainingSession(make_trainer(family_of(config), config), snapshot_hz=hz,
                               eval_fraction=WINDOW_EVAL_FRACTION)

    def _set_session(self, session: Session) -> None:
        old = self.session
        if old is not None:
            old.close()
            self.panels[old.trainer.family].detach()
        self.session = session
        family = session.trainer.family
        if family in FAMILIES:  # (an attached run has no settings to train a new session from)
            self._last_config[family] = session.trainer.config
        if family != self.family:
            self._show_family_ui(family)
        self._forget_attached_models(family)
        self.panel.attach(session)
        self.timeline_bar.set_panel(self.panel)
        self._apply_threads()
        session.set_step_rate(self.step_rate)  # the speed chosen in the toolbar holds for every session
        device = getattr(session.trainer.config, "device", "auto")
        devices = self.session_devices()  # (a training server's own, when training there)
        self.device_combo.blockSignals(True)
        if [self.device_combo.itemText(i) for i in range(self.device_combo.count())] != devices:
            self.device_combo.clear()
            self.device_combo.addItems(devices)
        self.device_combo.setCurrentText(device if device in devices else "auto")
        self.device_combo.blockSignals(False)
        self._update_remote_actions()
        self._enable_training_controls(family in FAMILIES and not getattr(session, "read_only", False))
        self._update_status()
        self.sigSessionChanged.emit()

    def _enable_training_controls(self, own: bool) -> None:
        """What only a session the window trains itself can do (reset, speed, device, data, save, export):
        disabled while an attached run, trained in the user's script, or a followed run is on show."""
        read_only = getattr(self.session, "read_only", False)  # (a run followed on a training server)
        for widget in (self.act_play, self.act_step):
            widget.setEnabled(not read_only)
        # a followed run's settings are the teacher's; an attached script's panel greys its own editors and
        # keeps the text of its Run box readable
        self.panel.settings.setEnabled(not read_only or self.family not in FAMILIES)
        for widget in (self.act_reset, self.speed_combo, self.device_combo, self.act_faster, self.act_slower,
                       self.act_open_data, self.act_download, self.act_download_f, self.act_save_run,
                       self.model_exporter.menu):
            widget.setEnabled(own)
        # a server reads its own data only (a folder here is not there)
        self.act_open_data.setEnabled(own and self.remote_server is None)

    def _forget_attached_models(self, family: str) -> None:
        """The Model box lists an attached run's panel only while that run is on show."""
        combo = getattr(self, "family_combo", None)
        if combo is None:
            return
        combo.blockSignals(True)
        for i in reversed(range(combo.count())):
            if combo.itemData(i) not in PANELS and combo.itemData(i) != family:
                combo.removeItem(i)
        combo.blockSignals(False)

    # -- where and how training runs ---------------------------------------------------------------
    def training_threads(self) -> int | None:
        """The training thread's intra-op threads: one fewer than the cores while a core is kept for the
        window (its painting then never preempts one of torch's threads mid-operation), else torch's own."""
        if hasattr(self, "act_keep_core") and not self.act_keep_core.isChecked():
            return None
        if self.remote_server is not None:  # (a training server's cores are not the window's)
            return None
        return max(1, (os.cpu_count() or 1) - 1)

    def _on_process_training_toggled(self) -> None:
        self.process_training = self.act_train_process.isChecked()
        self._settings.setValue("training/process", bool(self.process_training))
        if not self.process_training:
            worker.discard_spare()
            warm_first_optimizer()  # the next models train here: their first optimiser's imports, off this thread
        where = "in a separate process" if self.process_training else "on a thread of the window's process"
        s = self.session
        if s is not None and s.trainer.family in FAMILIES and s.trainer.step == 0 and s.is_alive:
            # nothing learnt yet: move it now (an attached run trains in its own script: nothing to move)
            if self._new_session(s.trainer.config):
                self.notice.show_message(f"Training now runs {where}.")
                return
        self.notice.show_message(f"Training runs {where} from the next model, builder network or opened run on.")

    def _apply_threads(self) -> None:
        if self.session is not None:  # (on a GPU the CPU threads only launch kernels: it costs nothing)
            self.session.set_threads(self.training_threads())

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

    # -- training controls -------------------------------------------------------------------------
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
        for where, reason in self.autosave.set_aside:
            self.notice.show_message(f"The last session's autosave could not be restored ({escape_text(reason)}); "
                                     f"it was set aside as {escape_text(where)}.", error=True)
        if stale is not None:
            self.notice.show_message(
                f"The last session ended unexpectedly. Its autosave ({stale['family']}, step {stale['step']}, "
                f"saved {stale['saved_at']}) can be restored.", action=("Restore autosave",
                                                                      lambda: self.open_run(stale["path"])))

    def autosave_now(self) -> threading.Event:
        """Save the session into the autosave slot, whole, between two training steps."""
        done = threading.Event()
        s, slot = self.session, self.autosave
        if s is None or slot is None or s.trainer.step == 0 or not s.is_alive or getattr(s, "read_only", False):
            done.set()  # nothing to save, or no training thread left to save between its steps
            return done
        slot.last_time = time.monotonic()  # no second request while this one waits for its turn

        def saved(step: int | None, error: BaseException | None) -> None:
            if error is None:  # (a failure is a notice from the command itself)
                slot.saved(step)
            done.set()

        s.run_command(autosave_to, str(slot.folder), on_done=saved)
        return done

    # -- saved runs --------------------------------------------------------------------------------
    def choose_run_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a run folder")
        if path:
            self.open_run(path)

    def open_run(self, path: str | Path, quiet: bool = False) -> bool:
        """Show a saved run (weights, curves, settings); training can go on from it. ``quiet``: no notice
        that it opened (the lecture's step says what it shows); a run that cannot be opened is one still."""
        try:
            session = self._make_session(run_dir=path)
        except (RunFolderError, DataError, DeviceError, ValueError, OSError) as exc:
            # the message names the file and the fault; the model on show stays
            self.notice.show_message(f"Could not open run: {escape_text(str(exc).splitlines()[0])}", error=True)
            return False
        except Exception as exc:  # noqa: BLE001 - a fault no check foresaw: the window stays up, the log has it
            log.error("could not open the run %s", path, exc_info=True)
            self.notice.show_message(f"Could not open run {escape_text(path)}: {type(exc).__name__}: "
                                     f"{escape_text(str(exc).splitlines()[0] if str(exc) else '')} "
                                     f"(details in the log)", error=True)
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
        if not quiet:
            self.notice.show_message(f"Opened run {escape_text(path)} at step {session.trainer.step}.")
        return True

    def choose_save_folder(self) -> None:
        dialog = SaveFolderDialog(self, "Save the run into this folder, or type a new folder's name")
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.save_run(dialog.selectedFiles()[0])

    def save_run(self, path: str | Path) -> threading.Event:
        """Save on the training thread between steps (never mid-update). Returns an event set when done."""
        done = threading.Event()
        s = self.session
        if s is None:
            done.set()
            return done

        # the panel layout travels with the run, so reopening it shows the same views where they were
        extra = {"layout": bytes(self.layout_state().toBase64()).decode("ascii"),
                 "layout_version": LAYOUT_VERSION, "refresh_hz": self.refresh_spin.value()}

        self._saves = [e for e in self._saves if not e.is_set()] + [done]
        # whole or not at all; the outcome, saved or not, is a notice from the command itself
        s.run_command(save_run_to, str(path), extra, on_done=lambda _target, _error: done.set())
        return done

    # -- a run trained elsewhere (explorer.watch in the user's script) -------------------------------
    def choose_attach(self) -> None:
        """File > Attach to a training run…: an address or a watch folder, its token, read-only or not."""
        from explorer.gui.window.attach import AttachDialog

        dialog = AttachDialog(self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.attach_to(dialog.target(), token=dialog.token() or None, follow=dialog.follow())

    def attach_to(self, target: str, *, token: str | None = None, token_info: dict[str, Any] | None = None,
                  follow: bool = False) -> bool:
        """Show the run watched at ``target`` (HOST:PORT or a watch folder). False, with a notice naming the
        address or folder, when it cannot be opened; the session on show stays."""
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            opened = open_source(target, token=token, token_info=token_info, follow=follow)
        except AttachError as exc:
            self.notice.show_message(f"Could not attach: {escape_text(exc)}", error=True)
            return False
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        return self.attach_opened(opened)

    def attach_opened(self, opened: Opened) -> bool:
        """Show the run of an open source (see ``explorer.core.watch.attach``) in its panel."""
        if isinstance(opened.source, ServedRun):  # a run on a training server: followed read-only
            run = opened.source
            return self.follow_server(ServerAddress(run.host, run.port, run.token, tls=run.tls, cafile=run.cafile),
                                      greeted=(run.sock, run.welcome))
        try:
            session = WatchSession(opened.source, opened.welcome, where=opened.where, live=opened.live)
        except Exception as exc:  # noqa: BLE001 - a fault of the other side: the window stays, the log has it
            log.warning("could not follow the run at %s", opened.where, exc_info=True)
            try:
                opened.source.close()
            except Exception:  # noqa: BLE001 - closing what may already be gone
                log.debug("closing %s failed", opened.where, exc_info=True)
            self.notice.show_message(f"Could not attach to {escape_text(opened.where)}: "
                                     f"{one_line(exc)}",
                                     error=True)
            return False
        self._set_session(session)
        tr = session.trainer
        how = ("Space pauses and plays it, S steps it" if session.control else
               "read-only" + ("" if tr.config["control"] else ": the script did not give control (control=True)"))
        # (no step here: the notice stays while the run goes on, and the status bar counts its steps)
        self.notice.show_message(f"Watching {escape_text(tr.name)} at {escape_text(opened.where)} ({how}).")
        return True

    # -- the architecture builder ------------------------------------------------------------------
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

        family = FAMILIES.get(spec.family)
        config_from_spec = family.config_from_spec if family is not None else None
        if config_from_spec is None:
            return say(f"The {spec.family} panel is not part of this version yet: RBM, autoencoder and deep "
                       "MLP networks train here. The network is valid; save or export it.", error=True)
        base = self._last_config.get(spec.family)
        try:
            config = config_from_spec(spec, base)
        except ValueError as exc:
            return say(f"Cannot train this network: {exc}", error=True)
        if not self._new_session(config):
            return False
        self.raise_()
        return say(f"Training {spec.name or 'the network'} from the builder: {self.session.trainer.describe()}.")
