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


def test_sigterm_closes_the_window_as_its_close_button_does(tmp_path):
    """``kill`` (or a logout) ended the app at once: the run trained since the last periodic autosave was
    lost, and the next start offered an older run as the one that ended unexpectedly. Now the window closes
    as its close button does: the run on screen is autosaved, and the slot says it ended well."""
    import json
    import os
    import signal
    import time

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "NETWORK_EXPLORER_CACHE": str(tmp_path / "cache")}
    app = subprocess.Popen([sys.executable, "-m", "explorer", "gui", "--start", "--dataset", "digits",
                            "--hidden", "16"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    slot = tmp_path / "cache" / "autosave" / "slot-1"
    saved = slot / "last-session" / "run.json"
    try:
        deadline = time.monotonic() + 90
        while not saved.exists() and time.monotonic() < deadline:  # the first autosave, at 1,000 steps
            time.sleep(0.2)
        assert saved.exists(), "no first autosave"
        first = json.loads(saved.read_text())["step"]
        time.sleep(2)
        app.send_signal(signal.SIGTERM)
        assert app.wait(60) == 0, app.stderr.read()
    finally:
        if app.poll() is None:
            app.kill()
    assert json.loads(saved.read_text())["step"] > first  # saved on the way out
    assert not (slot / "running.json").exists()  # an end, not a crash, for the next start
    log = (tmp_path / "cache" / "logs" / "explorer.log").read_text()
    assert "SIGTERM: closing the windows" in log


def test_the_first_optimisers_import_is_done_on_a_plain_thread():
    """torch's first optimiser imports torch._dynamo (1.5 s here): the lecture's first step, a run opened or
    the builder's check froze the window that long. The app builds a throwaway one on a plain thread once
    its main window is up (``app.run_app``), so the first real one is quick."""
    code = ("import sys, threading, time\n"
            "import torch\n"
            "from explorer.gui.startup import warm_first_optimizer\n"
            "assert 'torch._dynamo' not in sys.modules\n"
            "imported_in = []\n"
            "class Finder:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch._dynamo': imported_in.append(threading.current_thread().name)\n"
            "sys.meta_path.insert(0, Finder())\n"
            "warm_first_optimizer().join()\n"
            "torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)\n"
            "print(imported_in, 'torch._dynamo' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['warm-optimizer'] True"
