"""Creating the application: style, icon, main window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6 import QtGui, QtWidgets

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
    if start:
        win.toggle_play()
    if builder:
        b = win.show_builder().builder
        if Path(builder).suffix == ".json":
            b.open_file(builder)
        else:
            b.load_preset(builder)
    return app.exec()
