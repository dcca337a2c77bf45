"""Creating the application: style, icon, main window."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ..core.rbm_trainer import RBMConfig

# resources/ sits beside the package in a source checkout (the README's editable install)
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


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
            builder: str | None = None) -> int:
    from .main_window import MainWindow

    app = make_app()
    win = MainWindow(config, run_dir=run_dir)
    if not win.has_saved_geometry():
        screen = app.primaryScreen().availableGeometry()
        win.resize(min(1600, screen.width()), min(1000, screen.height()))
        win.move(screen.center() - win.rect().center())
    win.show()
    probe = os.environ.get("NETWORK_EXPLORER_STARTUP_PROBE")
    if probe:  # the start-up benchmark: note when the first frame has been painted, then quit
        _report_first_paint(win, probe)
    if start:
        win.toggle_play()
    if builder:
        b = win.show_builder().builder
        if Path(builder).suffix == ".json":
            b.open_file(builder)
        else:
            b.load_preset(builder)
    return app.exec()


class _FirstPaint(QtCore.QObject):
    """Writes the wall-clock time of the window's first paint to a file and quits (start-up benchmark)."""

    def __init__(self, path: str, parent: QtCore.QObject):
        super().__init__(parent)
        self.path = path
        self.done = False

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if not self.done and event.type() == QtCore.QEvent.Type.Paint:
            self.done = True
            # after this paint event has been handled, the frame is on screen
            QtCore.QTimer.singleShot(0, self._finish)
        return False

    def _finish(self) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(repr(time.time()))
        QtWidgets.QApplication.instance().quit()


def _report_first_paint(win: QtWidgets.QWidget, path: str) -> None:
    probe = _FirstPaint(path, win)
    win.installEventFilter(probe)
    win._first_paint_probe = probe
