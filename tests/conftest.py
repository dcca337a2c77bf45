import os
import subprocess
import sys
import tempfile
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# downloads and autosaves go to a throw-away folder, never the user's cache; one per test process (with
# `-n 2` the two processes inherit the first one's environment, and one's tests would find the other's
# autosaved builder network)
if "PYTEST_XDIST_WORKER" in os.environ or "NETWORK_EXPLORER_CACHE" not in os.environ:
    os.environ["NETWORK_EXPLORER_CACHE"] = tempfile.mkdtemp(prefix="explorer-test-cache-")
# windows train on a thread of the test process unless a test asks for a training process (each costs
# a process start); the tests of the process session and one per family in test_gui_process.py do
os.environ["NETWORK_EXPLORER_TRAINING"] = "thread"
# OpenMP waits passively, as the app sets it where it starts (explorer/cli/__init__.py), before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

# The tests' models are tiny: one intra-op thread is as fast, and on a loaded machine (a shared CI
# runner) two spinning OpenMP threads per process can make them a hundred times slower.
torch.set_num_threads(1)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item):
    """Delete the widgets a test leaves for deletion. pytest-qt closes a test's windows and calls their
    deleteLater(), but outside a running event loop Qt never does it (processEvents leaves deferred deletions
    alone): every window of every test stayed alive, 17,000 widgets by the presentation tests, and each
    change of the application's style sheet or font then went through all of them (those tests ran 3x slower
    in the whole suite than alone)."""
    result = yield
    if "PySide6.QtWidgets" in sys.modules:  # (the core's tests run without Qt)
        from PySide6 import QtCore, QtWidgets

        app = QtWidgets.QApplication.instance()
        if app is not None:
            QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    return result


@pytest.fixture
def settings(tmp_path):
    """A window's QSettings in a throw-away file: no test reads or writes the user's layout."""
    from PySide6 import QtCore  # here, not at the top: the core's tests run without Qt

    return QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)


@pytest.fixture(autouse=True)
def no_unsaved_builder_network():
    """Every test's builder starts on its preset: a network another test edited and did not save is kept in the
    autosave folder (they share it) and a builder opened later would bring it back."""
    from pathlib import Path

    (Path(os.environ["NETWORK_EXPLORER_CACHE"]) / "autosave" / "builder-network.json").unlink(missing_ok=True)
    yield


@pytest.fixture(autouse=True)
def no_dangling_training_threads():
    """Fail a test that leaves a training thread running (the engine names them '*-thread')."""
    before = {t.ident for t in threading.enumerate()}
    yield
    leftover = [t for t in threading.enumerate()
                if t.ident not in before and t.name.endswith("-thread") and t.is_alive()]
    for t in leftover:
        t.join(5)
    leftover = [t.name for t in leftover if t.is_alive()]
    assert not leftover, f"training threads left running: {leftover}"


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, the count before restored after: small models are fastest so, and
    immune to a busy machine's other load. A file asks for it with ``pytestmark = pytest.mark.usefixtures``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    """The bundled 8x8 digits, split with seed 0 (loaded once per test file)."""
    from explorer.core.data.datasets import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture
def app_look(qapp):
    """The app's own style sheet and font (what sizes depend on, and what leaving presentation mode must
    restore), put back afterwards."""
    from explorer.gui.app import make_app

    sheet, font, style = qapp.styleSheet(), qapp.font(), qapp.style().name()
    make_app()
    yield
    qapp.setStyleSheet(sheet)
    qapp.setFont(font)
    qapp.setStyle(style)


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1, made here with the openssl command: (cert, key) paths."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
