"""The window attached to a real training script: ``examples/watch_cnn_digits.py`` runs as a process of its
own, as a user runs it, and the window attaches to it over loopback as ``File > Attach`` does. The views fill
and change, Pause holds the script's loop and Play lets it go, a wrong token is refused, and a garbage frame
or an oversized one is refused while the script keeps training."""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.core.engine.session import RUNNING
from explorer.core.wire.auth import read_token_file
from explorer.core.wire.frame import MAGIC
from tests.helpers import open_window

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    """The CNN example, watched with control, training for long enough; its address from its first line."""
    tmp = tmp_path_factory.mktemp("watched")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["NETWORK_EXPLORER_RUNTIME"] = str(tmp / "runtime")
    log = (tmp / "script.log").open("w+")
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "watch_cnn_digits.py"), "--control",
                             "--epochs", "100000", "--listen", "127.0.0.1:0"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            found = re.search(r"explorer: watching .+ on (127\.0\.0\.1:\d+) \(token in (.+)\)$",
                              (tmp / "script.log").read_text(), re.M)
        assert found, f"the script did not start watching:\n{(tmp / 'script.log').read_text()}"
        yield found[1], Path(found[2]), proc, tmp
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


@pytest.fixture
def window(qtbot, settings, script, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(script[3] / "runtime"))
    settings.setValue("training/process", False)
    win = open_window(qtbot, settings, None, size=(1600, 1000))
    yield win
    win.close()


def attach(win, qtbot, address):
    assert win.attach_to(address), win.notice.label.text()  # its token from the script's token file
    assert win.family == "watch" and win.session.control
    qtbot.waitUntil(lambda: win.session.trainer.step > 0, timeout=20000)
    if win.session.state != RUNNING:
        win.session.start()
        qtbot.waitUntil(lambda: win.session.state == RUNNING, timeout=10000)


def advances(win, qtbot, timeout=20000) -> int:
    """Wait until the script's step moves past where it is now; the new step."""
    start = win.session.trainer.step
    qtbot.waitUntil(lambda: win.session.trainer.step > start, timeout=timeout)
    return win.session.trainer.step


def test_the_views_fill_and_change_with_the_scripts_training(window, qtbot, script):
    attach(window, qtbot, script[0])
    panel = window.panel
    assert panel.description.text().startswith("digits CNN at 127.0.0.1:")
    qtbot.waitUntil(lambda: panel._shown is not None, timeout=20000)
    first = panel._shown
    qtbot.waitUntil(lambda: panel._shown is not None and panel._shown.step > first.step, timeout=30000)
    assert panel._shown.arrays.keys() == first.arrays.keys()
    changed = [k for k in first.arrays
               if k.startswith("weight/") and (first.arrays[k] != panel._shown.arrays[k]).any()]
    assert changed, "the weights on show did not change while the script trained"
    qtbot.waitUntil(lambda: len(panel.maps.rows) > 0, timeout=10000)  # the first conv layer's maps drawn
    assert panel.selected == "features.0"
    rows, _n = window.session.metrics.steps_since(0)
    assert len(rows) > 0 and "loss" in rows[-1]


def test_pause_holds_the_scripts_loop_and_play_lets_it_go(window, qtbot, script):
    attach(window, qtbot, script[0])
    window.toggle_play()  # Pause
    qtbot.waitUntil(lambda: window.session.state != RUNNING, timeout=10000)
    held = window.session.trainer.step
    qtbot.wait(1500)  # ~700 steps at this script's speed, were the loop not held
    assert window.session.trainer.step == held
    window.step_once()
    qtbot.waitUntil(lambda: window.session.trainer.step == held + 1, timeout=10000)
    # the script says "running" for the one step, then "paused" again: Play is pressed on a paused run
    qtbot.waitUntil(lambda: window.session.state != RUNNING, timeout=10000)
    qtbot.wait(300)
    assert window.session.state != RUNNING and window.session.trainer.step == held + 1
    window.toggle_play()  # Play
    qtbot.waitUntil(lambda: window.session.state == RUNNING, timeout=10000)
    assert advances(window, qtbot) > held + 1


def test_a_wrong_token_is_refused_and_the_script_trains_on(window, qtbot, script):
    address = script[0]
    assert not window.attach_to(address, token="not-the-token")
    assert window.notice.label.text() == f"Could not attach: {address}: wrong token"
    assert window.family == "rbm"
    attach(window, qtbot, address)
    advances(window, qtbot)
    assert script[2].poll() is None


def refused(data: bytes, address: str) -> bytes:
    """Send ``data`` to the script's server as a peer would; what came back before it closed the connection."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        got = b""
        sock.settimeout(10)
        while True:
            chunk = sock.recv(65536)  # the server closes: b"" (a timeout here fails the test)
            if not chunk:
                return got
            got += chunk


@pytest.mark.parametrize("kind", ["garbage", "oversized", "wrong version"])
def test_a_bad_frame_is_refused_while_the_script_trains_on(window, qtbot, script, kind):
    attach(window, qtbot, script[0])
    token = read_token_file(script[1])["token"]
    if kind == "garbage":
        data = os.urandom(4096)
    elif kind == "oversized":  # a header that promises 64 GiB of arrays after a valid hello's magic
        head = b'{"kind": "hello", "v": 1, "fields": {}, "arrays": []}'
        data = struct.pack("<4sIQ", MAGIC, len(head), 1 << 36) + head
    else:
        head = json.dumps({"v": 99, "kind": "hello", "fields": {"token": token, "role": "control"},
                           "arrays": []}).encode()
        data = struct.pack("<4sIQ", MAGIC, len(head), 0) + head
    refused(data, script[0])
    before = advances(window, qtbot)
    assert advances(window, qtbot) > before  # the window's connection and the script go on
    assert script[2].poll() is None
