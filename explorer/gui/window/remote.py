"""Training > Connect to a training server…: the model on show moves to a server (``python -m explorer
serve``) with its weights and curves, and every model trained after it trains there until Training >
Train on this computer brings it back.

Why a part of its own: it is the window's one place that knows a session can live on another machine.
Everything else works on the session as on a local training process (``RemoteSession`` is one, over a
socket): panels, Play/Pause/Step/Reset, live settings, the timeline; saving, autosave and export write
where the window is (the session fetches the files). A dropped connection is the session's notice; it
connects again by itself with back-off, or at once from Training > Connect again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from explorer.core.engine.devices import available_devices
from explorer.core.engine.session import RUNNING
from explorer.core.families.registry import FAMILIES
from explorer.core.persist import commands
from explorer.core.remote.client import FollowSession, RemoteSession, ServerAddress, read_server_file
from explorer.core.safe_read import escape_text, one_line
from explorer.core.watch.attach import parse_address
from explorer.core.wire.frame import WireError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 120.0  # a model's files, from the training process or the server


class ConnectDialog(QtWidgets.QDialog):
    """The server's address HOST:PORT and token (or the token file ``serve`` wrote, which holds both), and
    whether it speaks TLS (with the certificate that signed the server's, when the system does not trust it)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Connect to a training server")
        self.setObjectName("connectDialog")
        self.setMinimumWidth(560)
        form = QtWidgets.QFormLayout()
        self.address = QtWidgets.QLineEdit()
        self.address.setObjectName("connectAddress")
        self.address.setPlaceholderText("127.0.0.1:7100 (through ssh -L 7100:127.0.0.1:7100 gpu-host)")
        self.address.setToolTip("Where `python -m explorer serve` listens, as it printed it")
        form.addRow("Server", self.address)
        self.token_edit = QtWidgets.QLineEdit()
        self.token_edit.setObjectName("connectToken")
        self.token_edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.PasswordEchoOnEdit)
        self.token_edit.setToolTip("The token the server printed (it is also in its token file)")
        self.from_file = QtWidgets.QPushButton("From token file…")
        self.from_file.setToolTip("The token file `serve` wrote (copy it from the server): address, token, TLS")
        self.from_file.clicked.connect(self._choose_token_file)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.token_edit, 1)
        row.addWidget(self.from_file)
        form.addRow("Token", row)
        self.tls_box = QtWidgets.QCheckBox("TLS (the server was started with --tls-cert)")
        self.tls_box.setObjectName("connectTls")
        form.addRow("", self.tls_box)
        self.cafile = QtWidgets.QLineEdit()
        self.cafile.setObjectName("connectCafile")
        self.cafile.setPlaceholderText("the certificate that signed the server's, if not one this system trusts")
        self.cafile_browse = QtWidgets.QPushButton("Browse…")
        self.cafile_browse.clicked.connect(self._choose_cafile)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.cafile, 1)
        row.addWidget(self.cafile_browse)
        form.addRow("Certificate", row)
        self.file_note = QtWidgets.QLabel("")
        self.file_note.setObjectName("connectFileNote")
        self.file_note.setWordWrap(True)
        form.addRow("", self.file_note)
        self.follow_box = QtWidgets.QCheckBox("Follow its run read-only (a class following the teacher's run)")
        self.follow_box.setObjectName("connectFollow")
        self.follow_box.setToolTip("Show the run the server trains now, without controlling it: the viewer token "
                                   "the server printed is enough. Your timeline, views and clicks are your own")
        form.addRow("", self.follow_box)
        self.note = QtWidgets.QLabel("")
        self.note.setObjectName("connectNote")
        self.note.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.note)
        lay.addWidget(buttons)
        for edit in (self.address, self.token_edit):
            edit.textChanged.connect(self._changed)
        self.tls_box.toggled.connect(self._changed)
        self.follow_box.toggled.connect(self._changed)
        self._changed()

    def follow(self) -> bool:
        return self.follow_box.isChecked()

    def fill(self, server: ServerAddress) -> None:
        self.address.setText(f"[{server.host}]:{server.port}" if ":" in server.host else f"{server.host}:{server.port}")
        self.token_edit.setText(server.token)
        self.tls_box.setChecked(server.tls)
        self.cafile.setText(server.cafile or "")

    def load_token_file(self, path: str | Path) -> bool:
        """Fill the fields from a token file; False, with the fault under the fields, if it is not one."""
        try:
            self.fill(read_server_file(path))
        except WireError as exc:
            self.file_note.setText(f"<span style='color:#e57373'>{escape_text(exc)}</span>")
            return False
        self.file_note.setText(f"From {escape_text(path)}.")
        return True

    def _choose_token_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "The token file the server wrote")
        if path:
            self.load_token_file(path)

    def _choose_cafile(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "The certificate that signed the server's",
                                                        filter="Certificates (*.pem *.crt);;All files (*)")
        if path:
            self.cafile.setText(path)

    def _changed(self) -> None:
        self.cafile.setEnabled(self.tls_box.isChecked())
        self.cafile_browse.setEnabled(self.tls_box.isChecked())
        self.ok_button.setEnabled(parse_address(self.address.text()) is not None and bool(self.token_edit.text().strip()))
        self.ok_button.setText("Follow" if self.follow_box.isChecked() else "Connect")
        self.note.setText("The window shows the run the server trains now, read-only, and the next one when it "
                          "ends; the window that trains it controls it." if self.follow_box.isChecked() else
                          "The model on show moves to the server with its weights and curves; "
                          "Training > Train on this computer brings it back.")

    def server(self) -> ServerAddress | None:
        """What was chosen, or None while the address is not HOST:PORT or the token is empty."""
        address = parse_address(self.address.text())
        token = self.token_edit.text().strip()
        if address is None or not token:
            return None
        cafile = self.cafile.text().strip() if self.tls_box.isChecked() else ""
        return ServerAddress(address[0], address[1], token, tls=self.tls_box.isChecked(), cafile=cafile or None)


def off_gui_thread(work: Callable[[], Any]) -> Any:
    """``work()``'s result (or its error, raised), run on a thread of its own while the GUI thread goes on
    painting and running its timers (the views keep drawing, the window never reads as frozen) but takes
    no clicks or keys until it is done: connecting to a server, moving a model, waiting for a timeout.
    Called off the GUI thread (or with no application), it simply runs ``work``."""
    app = QtWidgets.QApplication.instance()
    if app is None or QtCore.QThread.currentThread() is not app.thread():
        return work()
    loop = QtCore.QEventLoop()
    out: list[Any] = []

    def run() -> None:
        try:
            out.append((work(), None))
        except BaseException as exc:  # noqa: BLE001 - raised again on the GUI thread
            out.append((None, exc))
        finally:
            QtCore.QMetaObject.invokeMethod(loop, "quit", QtCore.Qt.ConnectionType.QueuedConnection)

    thread = threading.Thread(target=run, name="window-wait", daemon=True)
    thread.start()
    loop.exec(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    thread.join()
    result, error = out[0]
    if error is not None:
        raise error
    return result


def fetch(session: Any, fn: Callable[..., Any], *args: Any, timeout: float = FETCH_TIMEOUT_S) -> Any:
    """``fn``'s result, run by ``session`` between two steps (a command of ``explorer.core.persist.commands``),
    waited for here; its error raised."""
    done, out = threading.Event(), []

    def finished(result: Any, error: BaseException | None) -> None:
        out.append((result, error))
        done.set()

    session.run_command(fn, *args, on_done=finished)
    if not done.wait(timeout):
        raise TimeoutError(f"{fn.__name__} took more than {timeout:.0f} s")
    result, error = out[0]
    if error is not None:
        raise error
    return result


class RemoteMixin:
    """Training on a server: :meth:`connect_server`, :meth:`train_here`, :meth:`reconnect_server` (a part of
    :class:`~explorer.gui.main_window.MainWindow`).

    Keeps ``remote_server`` (the server new sessions start on, or None) and the actions ``act_connect``,
    ``act_reconnect`` and ``act_train_here``. Uses ``session``, ``notice``, ``_set_session``,
    ``_make_session`` and ``device_combo`` of the other parts."""

    remote_server: ServerAddress | None = None

    def _build_remote_actions(self) -> None:
        self.act_connect = self._action(
            "Connect to a training server…", self.choose_server, None,
            "Train on another machine (python -m explorer serve there): the model on show moves there with its "
            "weights; the views, controls, saving and export work as here")
        self.act_reconnect = self._action(
            "Connect again to the server", self.reconnect_server, None,
            "The connection dropped; the server trains on. Connect again now (the window also tries by itself)")
        self.act_train_here = self._action(
            "Train on this computer", self.train_here, None,
            "Bring the model on show back from the training server, with its weights and curves")
        self.act_reconnect.setEnabled(False)
        self.act_train_here.setEnabled(False)

    def _update_remote_actions(self) -> None:
        s = self.session
        if isinstance(s, FollowSession) and s.successor is not None:  # the followed run ended; the next trains
            successor, s.successor = s.successor, None
            self._show_followed(successor, f"The run on {s.server} ended; following the next one")
            s = self.session
        remote = isinstance(s, RemoteSession)
        self.act_reconnect.setEnabled(remote and s.dropped)
        self.act_train_here.setEnabled(self.remote_server is not None)

    def choose_server(self) -> None:
        dialog = ConnectDialog(self)
        if self.remote_server is not None:
            dialog.fill(self.remote_server)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted and dialog.server() is not None:
            if dialog.follow():
                self.follow_server(dialog.server())
            else:
                self.connect_server(dialog.server())

    def _moving_files(self) -> dict[str, Any] | None:
        """The files of the model on show, to go on from them elsewhere; None when there is nothing learnt."""
        s = self.session
        if s is None or not s.is_alive or s.trainer.step == 0 or s.trainer.family not in FAMILIES \
                or getattr(s, "read_only", False):  # (a followed run's weights are its window's: its settings start)
            return None
        return off_gui_thread(lambda: fetch(s, commands.run_files, None))

    def connect_server(self, server: ServerAddress) -> bool:
        """Move the model on show to ``server`` and train every next model there. False, with a notice naming
        the server and the fault, when it cannot: the model on show then stays where it was."""
        return self._move(server)

    def train_here(self) -> bool:
        """Bring the model on show back from the server; the next models train on this computer."""
        return self._move(None)

    def _move(self, server: ServerAddress | None) -> bool:
        old = self.session
        where = f"the training server {server}" if server is not None else "this computer"
        following = getattr(old, "read_only", False)
        if isinstance(old, RemoteSession) and old.dropped and not following:  # its weights are out of reach: moving would lose them
            self.notice.show_message(f"The connection to {escape_text(old.server)} is lost and the model is "
                                     f"there: connect again first (Training > Connect again to the server).",
                                     error=True, action=("Connect again", self.reconnect_server))
            return False
        was_running = old is not None and old.state == RUNNING and not following
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        previous = self.remote_server
        try:
            files = self._moving_files()
            self.remote_server = server
            config = None
            if files is None:  # nothing learnt to move: the same settings start there (an attached run's: the
                own = old is not None and old.trainer.family in FAMILIES  # last model's)
                config = old.trainer.config if own else None
                config = config or next(iter(self._last_config.values()), None) or FAMILIES["rbm"].config_cls()
            session = self._make_session(config, run_files=files)
        except Exception as exc:  # noqa: BLE001 - refused, unreachable, a fault in the files: the model stays
            self.remote_server = previous
            log.warning("could not move the model to %s", where, exc_info=True)
            self.notice.show_message(f"Could not train on {escape_text(where)}: "
                                     f"{one_line(exc)}",
                                     error=True)
            return False
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self._set_session(session)
        if was_running:
            session.start()
        if isinstance(session, RemoteSession):
            self.notice.show_message(
                f"Training on {escape_text(where)} (devices: {escape_text(', '.join(session.server_devices))}). "
                f"Training > Train on this computer brings the model back.")
        else:
            self.notice.show_message("Training on this computer again.")
        self._update_remote_actions()
        return True

    def reconnect_server(self) -> bool:
        s = self.session
        if not isinstance(s, RemoteSession):
            return False
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            ok = off_gui_thread(s.reconnect)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        if not ok and s.dropped:
            self.notice.show_message(f"The training server {escape_text(s.server)} cannot be reached yet; "
                                     f"the window keeps trying.", error=True)
        self._update_remote_actions()
        return ok

    def follow_server(self, server: ServerAddress,
                      greeted: tuple[Any, dict[str, Any]] | None = None) -> bool:
        """Follow the newest run ``server`` trains, read-only (``greeted``: a viewer connection opened
        already). False, with a notice naming the server and the fault, when there is none to follow."""
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            hz = self.refresh_spin.value()
            session = off_gui_thread(lambda: FollowSession(server=server, greeted=greeted, snapshot_hz=hz))
        except Exception as exc:  # noqa: BLE001 - refused, unreachable, no run there: the window stays as it was
            if greeted is not None:
                greeted[0].close()
            log.warning("could not follow a run on %s", server, exc_info=True)
            self.notice.show_message(f"Could not follow a run on {escape_text(server)}: "
                                     f"{one_line(exc)}",
                                     error=True)
            return False
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self._show_followed(session, "Following")
        return True

    def _show_followed(self, session: FollowSession, lead: str) -> None:
        self._set_session(session)
        self.notice.show_message(
            f"{escape_text(lead)}: {escape_text(session.trainer.describe())} on {escape_text(session.server)}, "
            f"read-only (its own window controls it). The timeline, the views and the units you click are yours.")

    def session_devices(self) -> list[str]:
        """The devices the session on show can train on: the server's for a remote one."""
        s = self.session
        return list(s.server_devices) if isinstance(s, RemoteSession) else available_devices()


__all__ = ["ConnectDialog", "RemoteMixin", "fetch", "off_gui_thread"]
