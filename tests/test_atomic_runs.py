"""A run folder is written whole or not at all: a kill -9 at any stage of a save, a disk that fills part way
(injected, and a real small tmpfs where this machine can mount one) leave the old run or the new one,
complete, and nothing half-written beside it."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import explorer.core.atomic as atomic
from explorer.cli import main
from explorer.core.engine.session import TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.runfolder import load_run, save_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_session(steps):
    s = TrainingSession(RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=6, batch_size=20, device="cpu")))
    s.step(steps)
    s.wait(10)
    return s


@pytest.fixture
def session():
    s = small_session(3)
    yield s
    s.close()


def siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


# -- kill -9 in the middle of a save -----------------------------------------------------------------------

SAVER = textwrap.dedent("""
    import os, sys, time
    import explorer.core.atomic as atomic
    from explorer.core.engine.session import TrainingSession
    from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
    from explorer.core.persist.runfolder import save_run

    folder, stop_at, exchange = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    if not exchange:
        atomic._exchange = lambda a, b: False  # the two-rename swap of systems without an exchange
    s = TrainingSession(RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=6, batch_size=20, device="cpu")))
    s.step(3); assert s.wait(120)
    save_run(s, folder)  # the old run: step 3
    s.step(4); assert s.wait(120)

    def pause(stage):
        if stage == stop_at:
            print("at", stage, flush=True)
            time.sleep(60)

    atomic.stage_hook = pause
    save_run(s, folder)  # the new run: step 7, killed at the stage asked for
    print("done", flush=True)
""")


@pytest.mark.parametrize("stage, exchange", [("files", True), ("swap", True), ("cleanup", True),
                                             ("renamed", False), ("cleanup", False)])
def test_a_kill_at_any_stage_of_a_save_leaves_the_old_or_the_new_run_whole(tmp_path, stage, exchange):
    folder = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(folder), stage, "1" if exchange else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"at {stage}", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    leftovers = [n for n in siblings(folder) if n != "run"]
    if stage in ("files", "swap"):
        assert leftovers and load_run(folder).step == 3  # the swap had not happened: the old run, whole
    else:
        assert load_run(folder).step == 7  # the new run, whole (a crash between two renames is finished)
    # and the load put things right: no leftover beside the folder any more
    assert siblings(folder) == ["run"]
    assert sorted(p.name for p in folder.iterdir()) == ["evals.csv", "metrics.csv", "run.json",
                                                        "weights.safetensors"]


def test_leftovers_of_an_ended_process_are_removed_by_the_next_save(tmp_path, session):
    folder = tmp_path / "run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    for suffix in (".tmp", ".old"):
        (tmp_path / f".run.{dead}-0123abcd{suffix}").mkdir()
        (tmp_path / f".run.{dead}-0123abcd{suffix}" / "weights.safetensors").write_bytes(b"partial")
    save_run(session, folder)
    assert siblings(folder) == ["run"]
    assert load_run(folder).step == 3


def test_save_run_never_replaces_a_folder_of_other_files(tmp_path, session):
    from explorer.core.persist.runfolder import RunFolderError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(RunFolderError) as info:
        save_run(session, tmp_path / "mine")
    assert str(info.value) == (f"{tmp_path / 'mine'}: holds other files (thesis.tex); a run is saved into a new "
                               "or empty folder, or over a run")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


# -- a full disk -----------------------------------------------------------------------------------------

def disk_with_room_for(monkeypatch, free_bytes):
    """Make every file write of a folder save fail with ENOSPC once ``free_bytes`` have been written."""
    written = [0]
    real_write = atomic._os_write

    def write(fd, data):
        room = free_bytes - written[0]
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data[:room]))
        written[0] += n
        return n

    monkeypatch.setattr(atomic, "_os_write", write)


@pytest.mark.parametrize("free_bytes", [0, 100, 2000])
def test_a_full_disk_during_a_save_keeps_the_old_run(tmp_path, session, monkeypatch, free_bytes):
    folder = save_run(session, tmp_path / "run")
    session.step(2)
    session.wait(10)
    disk_with_room_for(monkeypatch, free_bytes)
    with pytest.raises(OSError) as info:
        save_run(session, folder)
    assert str(info.value) == f"{folder}: could not be written (the disk is full); its previous contents are unchanged"
    assert info.value.errno == errno.ENOSPC
    assert siblings(folder) == ["run"]
    assert load_run(folder).step == 3


def test_a_full_disk_during_a_first_save_leaves_nothing(tmp_path, session, monkeypatch):
    disk_with_room_for(monkeypatch, 500)
    with pytest.raises(OSError) as info:
        save_run(session, tmp_path / "first")
    assert str(info.value) == f"{tmp_path / 'first'}: could not be written (the disk is full); nothing was left behind"
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_reports_a_full_disk_in_one_line(tmp_path, monkeypatch, capsys):
    disk_with_room_for(monkeypatch, 1000)
    out = tmp_path / "run"
    rc = main(["train", "rbm", "--dataset", "bars", "--hidden", "6", "--epochs", "1", "--device", "cpu",
               "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == f"explorer: error: {out}: could not be written (the disk is full); nothing was left behind\n"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs, where this machine lets the tests mount one (as root, with mount(8))."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                              capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        pytest.skip("no tmpfs can be mounted here (the injected full disk above covers the case)")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=20)


def test_a_real_full_disk_keeps_the_old_run(small_tmpfs, session):
    folder = save_run(session, small_tmpfs / "run")
    (small_tmpfs / "filler").write_bytes(b"\0" * (1024 * 1024 - 8 * 4096 - folder_bytes(folder)))
    # a run too big for what is left: the RBM with many more units
    big = TrainingSession(RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=4000, batch_size=20,
                                               device="cpu")))
    try:
        with pytest.raises(OSError) as info:
            save_run(big, folder)
    finally:
        big.close()
    assert "could not be written (the disk is full); its previous contents are unchanged" in str(info.value)
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler", "run"]
    assert load_run(folder).step == 3


def folder_bytes(folder):
    return sum(p.stat().st_size for p in folder.iterdir())


def test_save_run_writes_valid_json_last_of_a_complete_folder(tmp_path, session):
    out = save_run(session, tmp_path / "run")
    assert json.loads((out / "run.json").read_text())["step"] == 3
    session.step(1)
    session.wait(10)
    save_run(session, out)
    assert load_run(out).step == 4 and siblings(out) == ["run"]
    assert time.time() - (out / "run.json").stat().st_mtime < 60
