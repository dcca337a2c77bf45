"""Autosave and crash recovery: whole saves, a slot per window held by an OS lock, what a crashed window\nleft offered back."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore

from explorer.core.engine.session import TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.autosave import AutosaveSlot, SlotLock, save_whole, slot_folders
from explorer.core.persist.runfolder import load_run
from explorer.gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]


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

    monkeypatch.setattr(autosave, "write_run_files", broken)
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


HOLDER = """
import sys
from explorer.core.persist.autosave import AutosaveSlot
slot = AutosaveSlot(sys.argv[1])
slot.acquire()
print(slot.slot, flush=True)
sys.stdin.read()  # holds the slot until killed, or until its stdin closes
"""


@contextlib.contextmanager
def slot_held_by_another_process(root):
    """A process that takes a slot under ``root`` and holds it; yields (process, its slot folder)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=env)
    try:
        line = p.stdout.readline().strip()
        assert line, "the holding process did not take a slot"
        yield p, Path(line)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(30)
        p.stdin.close()
        p.stdout.close()


def crash(slot: AutosaveSlot) -> None:
    """What the death of a window's process does to its slot: the OS lock goes, running.json stays."""
    slot.os_lock.release()


def test_a_crashed_holders_autosave_is_offered_back_a_living_ones_is_not(tmp_path, session):
    assert AutosaveSlot(tmp_path).stale() is None  # nothing there yet
    with slot_held_by_another_process(tmp_path) as (holder, held):
        assert held.parent == tmp_path and (held / "running.json").exists()
        save_whole(session, held / "last-session")  # its autosave
        assert AutosaveSlot(tmp_path).stale() is None  # its window is alive: not a crash
        mine = AutosaveSlot(tmp_path)
        mine.acquire()
        assert mine.slot != held  # a living window's slot is never shared
        holder.kill()  # the window dies without closing
        holder.wait(30)
        stale = AutosaveSlot(tmp_path).stale()
        assert stale == {"path": str(held / "last-session"), "family": "rbm", "step": 3,
                         "saved_at": stale["saved_at"]}
        mine.release()


def test_the_offered_slot_is_reserved_and_taken_by_the_window_offered_it(tmp_path, session):
    crashed = []
    for _ in range(2):  # two windows crash, each with an autosave
        s = AutosaveSlot(tmp_path)
        s.acquire()
        s.save(session)
        crash(s)
        crashed.append(s.slot)
    first, second, third = AutosaveSlot(tmp_path), AutosaveSlot(tmp_path), AutosaveSlot(tmp_path)
    offers = [first.stale(), second.stale(), third.stale()]
    assert offers[2] is None  # two crashes, two offers: never the same one twice
    assert sorted(o["path"] for o in offers[:2]) == sorted(str(c / "last-session") for c in crashed)
    for s, offer in zip((first, second), offers):
        s.acquire()  # the window takes the slot it was offered
        assert str(s.folder) == offer["path"]
    third.acquire()
    assert third.slot not in crashed
    for s in (first, second, third):
        s.release()
    assert all(AutosaveSlot(tmp_path).stale() is None for _ in range(3))  # clean exits: nothing is offered


def test_two_slots_in_one_process_never_collide(tmp_path, session):
    a, b = AutosaveSlot(tmp_path), AutosaveSlot(tmp_path)
    a.acquire()
    b.acquire()
    assert a.slot != b.slot and a.folder != b.folder
    assert not SlotLock(a.lock).try_acquire() and not SlotLock(b.lock).try_acquire()  # real, exclusive locks
    a.save(session)
    assert load_run(a.folder).step == 3 and not b.folder.exists()
    assert b.stale() is None and AutosaveSlot(tmp_path).stale() is None  # both alive
    a.release()
    assert not a.marker.exists() and a.folder.exists()  # a clean exit keeps the autosave, unmarked
    c = AutosaveSlot(tmp_path)
    assert c.stale() is None  # a clean exit is not offered...
    c.acquire()
    assert c.slot == a.slot  # ...and its slot is free again
    c.release()
    b.release()
    assert [p.name for p in slot_folders(tmp_path)] == ["slot-1", "slot-2"]


def test_a_broken_autosave_is_not_offered_and_its_slot_is_reused(tmp_path, session):
    s = AutosaveSlot(tmp_path)
    s.acquire()
    s.save(session)
    (s.folder / "weights.safetensors").write_bytes(b"garbage")
    crash(s)
    fresh = AutosaveSlot(tmp_path)
    assert fresh.stale() is None
    fresh.acquire()
    assert fresh.slot == s.slot
    fresh.release()


def test_a_slot_is_only_an_autosave_folder_once_acquired(tmp_path):
    slot = AutosaveSlot(tmp_path)
    with pytest.raises(RuntimeError, match="acquire"):
        _ = slot.folder
    assert not tmp_path.joinpath("slot-1").exists()  # looking for stale slots writes nothing


def test_window_autosaves_and_a_crash_is_offered_back(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.autosave_interval_s = 0.0  # autosave at every tick once something changed
    win.step_once()
    qtbot.waitUntil(lambda: (win.autosave.folder / "run.json").exists(), timeout=10000)
    assert load_run(win.autosave.folder).step == 1
    # the app "crashes": the OS lets go of its lock, its running.json stays behind
    marker = win.autosave.marker
    crash(win.autosave)
    win.autosave = None  # (so that closing this window below neither saves nor removes the mark)
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
    assert not marker.exists()  # a clean exit removes the mark: nothing is offered next time
    win3 = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
    qtbot.addWidget(win3)
    assert "ended unexpectedly" not in win3.notice.label.text()
    win3.close()
