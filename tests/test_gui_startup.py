"""The start-up window: on screen before torch is loaded, replaced by the main window when the core is in."""

from __future__ import annotations

import subprocess
import sys

from PySide6 import QtWidgets

from explorer.gui.startup import CoreLoader, StartupWindow, core_module_names, start_when_loaded


def test_the_plain_launch_reaches_the_window_code_without_importing_torch():
    """``python -m explorer`` must not pay for torch before its first window: the plain launch goes straight
    to the window code, and the start-up window's modules never import it."""
    code = ("import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
            "import explorer.gui.app as app\n"
            "app.run_app = lambda **kw: print('window code reached', sorted(k for k in kw if kw[k])) or 0\n"
            "from explorer.cli import main\n"
            "sys.exit(main([]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "window code reached []" in r.stdout


def test_the_core_loader_names_torch_and_every_core_module():
    names = core_module_names()
    assert names.index("torch") < names.index("explorer.core.engine.session")
    assert {"explorer.core.families.registry", "explorer.core.persist.runfolder", "explorer.core.engine.timeline"} <= set(names)


def test_a_loaded_core_builds_the_main_window_and_the_start_up_window_goes(qtbot):
    shell = StartupWindow()
    qtbot.addWidget(shell)
    shell.show()
    loader = CoreLoader(["json", "explorer.core.sizes"])
    built: list[QtWidgets.QWidget] = []

    def build() -> QtWidgets.QWidget:
        w = QtWidgets.QLabel("main")
        qtbot.addWidget(w)
        w.show()
        built.append(w)
        return w

    loader.start()
    start_when_loaded(shell, loader, build, poll_ms=5)
    qtbot.waitUntil(lambda: bool(built) and not shell.isVisible(), timeout=10000)
    assert loader.error is None and loader.seconds >= 0


def test_a_failed_load_is_said_in_the_window_which_stays_open(qtbot):
    shell = StartupWindow()
    qtbot.addWidget(shell)
    shell.show()
    loader = CoreLoader(["json", "explorer.core.no_such_module"])
    built: list[int] = []
    loader.start()
    start_when_loaded(shell, loader, lambda: built.append(1), poll_ms=5)
    qtbot.waitUntil(lambda: "could not start" in shell.status.text(), timeout=10000)
    assert "explorer.core.no_such_module" in shell.status.text()
    assert "ModuleNotFoundError" in shell.status.text()
    assert shell.isVisible() and shell.busy.isHidden() and not built


def test_a_window_that_fails_to_build_is_said_in_the_start_up_window(qtbot):
    shell = StartupWindow()
    qtbot.addWidget(shell)
    shell.show()
    loader = CoreLoader(["json"])

    def build():
        raise RuntimeError("no display for you")

    loader.start()
    start_when_loaded(shell, loader, build, poll_ms=5)
    qtbot.waitUntil(lambda: "could not start" in shell.status.text(), timeout=10000)
    assert "RuntimeError while building the window: no display for you" in shell.status.text()
    assert shell.isVisible()
