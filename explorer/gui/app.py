"""Creating the application: style, icon, main window."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.logs import configure_logging
from explorer.gui.resources import RESOURCES
from explorer.gui.settings import byte_array_setting, open_settings, process_training_wanted
from explorer.gui.startup import CoreLoader, StartupWindow, start_when_loaded

if TYPE_CHECKING:
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.core.watch.attach import Opened

# this module is imported before torch (see startup.py): it must not import the core at its top


def make_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Network Explorer")
    app.setOrganizationName("NetworkExplorer")
    app.setStyle("Fusion")
    qss = RESOURCES / "style.qss"
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    icon = RESOURCES / "icon.svg"
    if icon.exists():
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    font = app.font()
    font.setPointSize(max(font.pointSize(), 10))
    app.setFont(font)
    return app


def run_app(config: RBMConfig | None = None, run_dir: str | None = None, start: bool = False,
            builder: str | None = None, attach: Opened | None = None, lecture: str | None = None) -> int:
    """Show the start-up window at once, load the core (torch) on a plain thread meanwhile, then
    build the main window in its place (see startup.py). ``attach``: a watched run, opened already
    (``explorer attach``), to show instead of a new model. ``lecture``: a folder of lecture steps to open."""
    configure_logging(role="gui")
    app = make_app()
    close_on_signals(app)
    settings = open_settings()  # its file scrubbed of anything but plain values before Qt parses it
    shell = StartupWindow(app.windowIcon())
    geometry = byte_array_setting(settings, "window/geometry")
    if geometry is None or not shell.restoreGeometry(geometry):
        screen = app.primaryScreen().availableGeometry()
        shell.resize(min(1600, screen.width()), min(1000, screen.height()))
        shell.move(screen.center() - shell.rect().center())
    probe_path = os.environ.get("NETWORK_EXPLORER_STARTUP_PROBE")
    probe = _FirstPaint(probe_path, app) if probe_path else None
    if probe:  # the start-up benchmark: when the first window, then the main window, are painted
        shell.installEventFilter(probe)
    shell.show()
    if process_training_wanted(settings):
        from explorer.core.process import worker  # (standard library only: no torch here)

        worker.prepare()  # the training process imports torch beside the window's own import
    loader = CoreLoader()
    loader.start()
    windows: list[QtWidgets.QWidget] = []  # holds the main window: nothing else keeps it alive

    def build() -> QtWidgets.QWidget:
        from explorer.gui.main_window import MainWindow

        win = MainWindow(config, run_dir=run_dir, settings=settings, attach=attach)
        if not win.has_saved_geometry():
            win.setGeometry(shell.geometry())
        if probe:
            probe.main = win
            win.installEventFilter(probe)
        win.show()
        windows.append(win)
        if start:
            win.toggle_play()
        if lecture is not None:
            win.open_lecture(lecture)
        if builder:
            b = win.show_builder().builder
            if Path(builder).suffix == ".json":
                b.open_file(builder)
            else:
                b.load_preset(builder)
        return win

    start_when_loaded(shell, loader, build)  # its polling timer is a child of the start-up window
    return app.exec()


CLOSING_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


def close_on_signals(app: QtWidgets.QApplication) -> None:
    """SIGTERM (``kill``, a logout), SIGHUP (its terminal closed) and SIGINT (Ctrl+C there) close the windows
    as their close button does, then quit: the run on screen is autosaved and its training stopped. Killed
    by the default handler, the app lost what it had trained since the last periodic autosave, and the next
    start offered an older run of another model as the one that "ended unexpectedly".

    Python runs a signal handler only when the interpreter gets control; in Qt's event loop that needs a
    wake-up: the signal writes a byte to a socket pair whose reading end a QSocketNotifier watches."""
    import signal
    import socket

    if getattr(app, "_signal_wakeup", None) is not None:
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    try:
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread (an embedding): the default handlers stay
        reader.close()
        writer.close()
        return
    notifier = QtCore.QSocketNotifier(reader.fileno(), QtCore.QSocketNotifier.Type.Read, app)

    def drain() -> None:
        try:
            while reader.recv(256):
                pass
        except OSError:  # nothing left to read
            pass

    notifier.activated.connect(drain)

    def close_all(signum: int, _frame) -> None:
        logging.getLogger(__name__).info("%s: closing the windows", signal.Signals(signum).name)
        QtCore.QTimer.singleShot(0, lambda: (app.closeAllWindows(), app.quit()))

    for name in CLOSING_SIGNALS:
        signal.signal(getattr(signal, name), close_all)
    app._signal_wakeup = (reader, writer, notifier)  # kept alive as long as the application


class _FirstPaint(QtCore.QObject):
    """The start-up benchmark's probe: writes, as JSON, the wall-clock times of the first painted window
    (``window``: the start-up window) and of the main window's first paint (``ready``), then quits."""

    def __init__(self, path: str, parent: QtCore.QObject):
        super().__init__(parent)
        self.path = path
        self.times: dict[str, float] = {}
        self.main: QtWidgets.QWidget | None = None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.Paint:
            key = "ready" if obj is self.main and self.main is not None else "window"
            if key not in self.times:
                # after this paint event has been handled, the frame is on screen
                self.times[key] = -1.0
                QtCore.QTimer.singleShot(0, lambda k=key: self._painted(k))
        return False

    def _painted(self, key: str) -> None:
        self.times[key] = time.time()
        if key == "ready":
            self.times.setdefault("window", self.times["ready"])
            with open(self.path, "w", encoding="utf-8") as f:
                json.dump(self.times, f)
            QtWidgets.QApplication.instance().quit()
