"""The window shown while PyTorch loads, so that the app answers within a second of its launch.

Importing torch takes two seconds or more on a small machine, and the main window needs the core
(so torch) before it can be built. Rather than show nothing for four seconds, the app paints this
window first, at the place and size the main window will have, and loads the core on a plain
thread meanwhile (the core never imports Qt, so loading it off the GUI thread is safe). The event
loop keeps running during the load: the window repaints, moves and shows a busy bar. When the core
is in, the main window is built on the GUI thread and takes this window's place.

This module imports only PySide6: importing it must stay cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
import traceback
from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets


def core_module_names() -> list[str]:
    """Every module of ``explorer.core`` (all Qt-free), torch first: what the main window needs."""
    from explorer import core

    names = [m.name for m in pkgutil.walk_packages(core.__path__, f"{core.__name__}.")
             if not m.ispkg and not m.name.rsplit(".", 1)[-1].startswith("_")]
    return ["numpy", "torch", *sorted(names)]


class CoreLoader:
    """Imports the core on a plain thread; ``done()`` says when, ``error`` what went wrong."""

    def __init__(self, names: list[str] | None = None):
        self.names = names if names is not None else core_module_names()
        self.error: str | None = None
        self.current = ""
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="load-core", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            for name in self.names:
                self.current = name
                importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - shown in the window, which stays open
            self.error = f"{type(exc).__name__} while loading {self.current}: {exc}\n\n{traceback.format_exc()}"
        self.seconds = time.perf_counter() - t0


class StartupWindow(QtWidgets.QWidget):
    """Title, what is loading, and a busy bar; or, if loading fails, the error in words."""

    def __init__(self, icon: QtGui.QIcon | None = None):
        super().__init__()
        self.setWindowTitle("Network Explorer")
        lay = QtWidgets.QVBoxLayout(self)
        lay.addStretch(3)
        if icon is not None and not icon.isNull():
            logo = QtWidgets.QLabel()
            logo.setPixmap(icon.pixmap(96, 96))
            logo.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            lay.addWidget(logo)
        title = QtWidgets.QLabel("Network Explorer")
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        title.setStyleSheet("font-size: 28pt; font-weight: bold; color: #88c0d0;")
        lay.addWidget(title)
        sub = QtWidgets.QLabel("build a network, then watch it learn")
        sub.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        sub.setStyleSheet("font-size: 13pt; color: #9aa5b5;")
        lay.addWidget(sub)
        lay.addSpacing(24)
        self.status = QtWidgets.QLabel("Loading PyTorch…")
        self.status.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.status.setStyleSheet("font-size: 12pt;")
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.busy = QtWidgets.QProgressBar()
        self.busy.setRange(0, 0)  # a busy bar: animated by Qt itself
        self.busy.setTextVisible(False)
        self.busy.setFixedWidth(320)
        self.busy.setFixedHeight(8)
        lay.addWidget(self.busy, alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        lay.addStretch(4)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def show_error(self, text: str) -> None:
        """The app could not start: say why, in the window, and leave it open to be read (and copied)."""
        self.busy.hide()
        first, _, detail = text.partition("\n\n")
        self.status.setStyleSheet("font-size: 12pt; color: #bf616a;")
        self.status.setText(f"Network Explorer could not start.\n{first}\n\n"
                            "Check the installation (pip install -e .) and try again.")
        if detail:
            self.status.setToolTip(detail)


def warm_first_optimizer() -> threading.Thread:
    """The imports of torch's first optimiser on a plain thread (started; returned for a test to join).

    Whatever first built a model with an optimiser in the window's own process froze the window 1.5 s for
    them (:mod:`explorer.core.process.warmup`). Started once the main window is up, where its models train on
    a thread of it, and when the user moves training there; an action that needs them meanwhile waits only
    for what is left. Not where training has a process of its own (the default): the imports take about
    100 MB, and there only the lecture's check of its runs, at Ctrl+L, builds models in the window."""
    from explorer.core.process.warmup import warm_first_optimizer as warm

    thread = threading.Thread(target=warm, name="warm-optimizer", daemon=True)
    thread.start()
    return thread


def start_when_loaded(shell: StartupWindow, loader: CoreLoader,
                      build: Callable[[], QtWidgets.QWidget], poll_ms: int = 25) -> QtCore.QTimer:
    """Poll ``loader`` from the GUI thread; when it is done, call ``build`` (which shows the main
    window) and close ``shell``. A failure to load or to build is shown in ``shell``."""
    timer = QtCore.QTimer(shell)
    timer.setInterval(poll_ms)

    def poll() -> None:
        if not loader.done():
            return
        timer.stop()
        if loader.error:
            shell.show_error(loader.error)
            return
        shell.set_status("Building the window…")
        shell.repaint()
        try:
            build()
        except Exception as exc:  # noqa: BLE001 - shown in the window
            shell.show_error(f"{type(exc).__name__} while building the window: {exc}\n\n{traceback.format_exc()}")
            return
        shell.close()

    timer.timeout.connect(poll)
    timer.start()
    return timer
