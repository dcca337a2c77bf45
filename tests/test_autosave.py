"""Autosave and crash recovery: whole saves, a stale lock after a crash, the offer to restore."""

import json
import os
import subprocess
import sys

import pytest
from PySide6 import QtCore

from explorer.core.persist.autosave import AutosaveSlot, save_whole
from explorer.core.engine.session import TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.runfolder import load_run
from explorer.gui.main_window import MainWindow


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def session():
    s = TrainingSession(RBMTrainer(RBMConfig(dataset="digits", hidden=8, device="cpu")))
    s.step(3)
    s.wait(30)
    yield s
    s.close()


def test_a_save_replaces_the_previous_one_whole(tmp_path, session, monkeypatch):
    folder = tmp_path / "slot"
    save_whole(session, folder)
    assert load_run(folder).step == 3
    session.step(2)
    session.wait(30)

    import explorer.core.persist.autosave as autosave

    def broken(s, path, extra=None):  # the disk fills up halfway through the next save
        os.makedirs(path)
        (path / "weights.safetensors").write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(autosave, "save_run", broken)
    with pytest.raises(OSError):
        save_whole(session, folder)
    assert load_run(folder).step == 3  # the last good save is intact...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slot"]  # ...and nothing half-written is left
    monkeypatch.undo()
    save_whole(session, folder)
    assert load_run(folder).step == 5


def test_save_run_never_mixes_with_other_files(tmp_path):
    from explorer.core.persist.runfolder import save_target

    assert save_target(tmp_path / "new") == tmp_path / "new"  # a new folder: the run is the folder
    (tmp_path / "empty").mkdir()
    assert save_target(tmp_path / "empty") == tmp_path / "empty"
    run = tmp_path / "run"
    run.mkdir()
    for name in ("run.json", "weights.safetensors", "metrics.csv", "evals.csv"):
        (run / name).write_text("x")
    assert save_target(run) == run  # an earlier run, and nothing else: replaced whole
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine")
    target = save_target(home)  # somebody's folder: the run goes into a new sub-folder of it
    assert target.parent == home and target.name.startswith("network-explorer-run-") and not target.exists()
    target.mkdir()
    assert save_target(home) != target


def test_save_run_from_the_window_is_whole_and_survives_a_close(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.autosave = None  # this test is about the user's own save
    win.step_once()
    qtbot.waitUntil(lambda: win.session.trainer.step == 1, timeout=5000)
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    assert win.save_run(home).wait(10)
    (saved,) = [p for p in home.iterdir() if p.is_dir()]
    assert load_run(saved).step == 1 and (home / "notes.txt").read_text() == "mine"

    win.session.start()
    qtbot.waitUntil(lambda: win.session.trainer.step > 5, timeout=5000)
    done = win.save_run(tmp_path / "at-close")  # then the window closes at once, mid-training
    win.close()
    assert done.is_set()  # the close waited for the save the user asked for
    run = load_run(tmp_path / "at-close")
    assert run.step > 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no half-written folder


def test_stale_lock_means_a_crash(tmp_path, session):
    slot = AutosaveSlot(tmp_path)
    assert slot.stale() is None
    slot.acquire()
    slot.save(session)
    assert slot.stale() is None  # our own, living process: not a crash
    info = json.loads(slot.lock.read_text())
    slot.lock.write_text(json.dumps({**info, "pid": dead_pid()}))
    stale = AutosaveSlot(tmp_path).stale()
    assert stale == {"path": str(slot.folder), "family": "rbm", "step": 3, "saved_at": stale["saved_at"]}
    slot.lock.write_text("garbage")  # an unreadable lock is not offered
    assert AutosaveSlot(tmp_path).stale() is None


def test_window_autosaves_and_a_crash_is_offered_back(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.autosave_interval_s = 0.0  # autosave at every tick once something changed
    win.step_once()
    qtbot.waitUntil(lambda: (win.autosave.folder / "run.json").exists(), timeout=10000)
    assert load_run(win.autosave.folder).step == 1
    # the app "crashes": its lock stays behind with a process that is gone
    lock = win.autosave.lock
    info = json.loads(lock.read_text())
    win.autosave = None  # (so that closing this window below neither saves nor removes the lock)
    lock.write_text(json.dumps({**info, "pid": dead_pid()}))
    win.close()

    win2 = MainWindow(RBMConfig(dataset="digits", hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win2)
    try:
        assert "ended unexpectedly" in win2.notice.label.text() and "step 1" in win2.notice.label.text()
        assert win2.notice.action_button.text() == "Restore autosave"
        qtbot.mouseClick(win2.notice.action_button, QtCore.Qt.MouseButton.LeftButton)
        assert win2.session.trainer.step == 1 and win2.session.trainer.config.hidden == 8
    finally:
        win2.close()
    assert not lock.exists()  # a clean exit removes the lock: nothing is offered next time
    win3 = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win3)
    assert "ended unexpectedly" not in win3.notice.label.text()
    win3.close()
