"""Training processes forked from one that imported PyTorch once (``explorer.core.process.zygote``): they
train as a process started on its own does, take the window's environment and folder as they are when
forked, share the forking process's memory, report how they ended, and when the forking process is
gone the window starts them on their own. Headless, Linux (where forking is used)."""

import os
import signal
import sys
import time

import pytest

from explorer.core.process import worker
from explorer.core.process.session import ProcessSession
from tests.helpers import tiny_rbm_config, wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="training processes are forked on Linux only")


def private_and_rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) / 1024
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Rss"]


def session():
    return ProcessSession(tiny_rbm_config(), threads=1)


def test_sessions_train_in_forked_processes_that_share_the_forking_processes_memory():
    first = session()
    try:
        assert isinstance(first._process, worker.ForkedWorker)
        forker = worker._forker
        assert forker is not None and forker.state == "ready"
        started = time.monotonic()
        second = session()
        took = time.monotonic() - started
        try:
            assert isinstance(second._process, worker.ForkedWorker) and worker._forker is forker
            assert second._process.pid != first._process.pid
            for s in (first, second):
                s.step(3)
                assert s.wait(30) and s.trainer.step == 3
            assert took < 10  # (no import of its own: about 0.1 s here, against a second or more alone)
            private, rss = private_and_rss_mb(second._process.pid)
            assert private < 0.6 * rss, (private, rss)  # most of it is the forking process's, shared
        finally:
            second.close()
    finally:
        first.close()
    for s in (first, second):
        wait_for(lambda s=s: not s._process.is_alive(), timeout=10, what="the process's end")
        assert s._process.exitcode == 0


def test_a_forked_process_takes_the_windows_environment_and_folder_of_the_moment(tmp_path, monkeypatch):
    session().close()  # the forking process is up, started before the changes below
    monkeypatch.setenv("NETWORK_EXPLORER_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    s = session()
    try:
        assert os.readlink(f"/proc/{s._process.pid}/cwd") == str(tmp_path)
        wait_for(lambda: (tmp_path / "logs" / "explorer.log").exists(), timeout=10, what="the child's log")
        assert "training process" in (tmp_path / "logs" / "explorer.log").read_text()
    finally:
        s.close()


def test_a_killed_forked_process_says_so_and_a_new_one_trains():
    s = session()
    try:
        os.kill(s._process.pid, signal.SIGKILL)
        wait_for(lambda: s.error is not None, timeout=20, what="the session's error")
        assert "exit code -9" in s.error
        assert not s._process.is_alive() and s._process.exitcode == -9
    finally:
        s.close()
    again = session()
    try:
        again.step(2)
        assert again.wait(30) and again.trainer.step == 2
    finally:
        again.close()


def test_without_the_forking_process_training_processes_start_on_their_own(monkeypatch):
    session().close()
    forker = worker._forker
    forker.popen.kill()  # the forking process dies
    forker.popen.wait(10)
    wait_for(lambda: forker.state == "gone", timeout=10, what="the window to see it gone")
    s = session()  # a new forking process is started
    try:
        assert isinstance(s._process, worker.ForkedWorker) and worker._forker is not forker
        s.step(1)
        assert s.wait(30) and s.trainer.step == 1
    finally:
        s.close()
    monkeypatch.setenv(worker.FORK_ENV, "0")  # turned off: each starts on its own
    alone = session()
    try:
        assert isinstance(alone._process, worker.WorkerProcess)
        alone.step(1)
        assert alone.wait(30) and alone.trainer.step == 1
    finally:
        alone.close()


def test_a_request_the_forking_process_never_answered_starts_on_its_own():
    """A fork asked for while the forking process dies: the same socket is served by a process of its own."""
    session().close()
    forker = worker._forker
    forker.popen.send_signal(signal.SIGSTOP)  # stopped: it answers nothing
    try:
        pending = forker.fork()
        assert pending is not None and not pending._started.is_set() and pending.is_alive()
    finally:
        forker.popen.kill()
        forker.popen.wait(10)
    wait_for(lambda: pending._started.is_set(), timeout=10, what="the start on its own")
    assert pending._alone is not None and pending.is_alive()
    pending.conn.close()  # its socket closed: it ends, as a training process does
    pending.join(30)
    assert not pending.is_alive()


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1] for line in f if "/" in line}


def test_after_its_first_child_the_forking_process_takes_the_first_optimisers_imports_for_all():
    """torch's first optimiser imports torch._dynamo (1.5 s, about 70 MB here): every training process paid it
    while the window waited for its model (a lecture step, a family chosen). A new forking process does it
    once, after its first child, with no thread of torch's started (it must stay safe to fork), and the
    children forked after it inherit what it loaded."""
    from explorer.core.families.autoencoder.trainer import AutoencoderConfig

    session().close()
    old = worker._forker
    old.popen.kill()  # a new forking process: its state before its first child can be read
    old.popen.wait(10)
    wait_for(lambda: old.state == "gone", timeout=10, what="the window to see it gone")
    forker = worker._the_forker()
    assert forker is not None and forker is not old
    wait_for(lambda: forker.state == "ready", timeout=60, what="the new forking process")
    pid = forker.popen.pid
    threads, files = len(os.listdir(f"/proc/{pid}/task")), mapped_files(pid)
    assert not forker.warmed
    session().close()  # its first child
    wait_for(lambda: forker.warmed, timeout=60, what="the forking process's warm-up")
    assert len(os.listdir(f"/proc/{pid}/task")) <= threads  # no thread started
    warmed_files = mapped_files(pid)
    assert warmed_files > files  # the warm-up loaded code (torch._dynamo's extension modules)
    worker.discard_spare()  # (one forked before, by an earlier test, would be taken first)
    s = ProcessSession(AutoencoderConfig(dataset="bars", bars_size=4, hidden=4, batch_size=10, device="cpu"),
                       threads=1)  # (an optimiser's family)
    try:
        assert isinstance(s._process, worker.ForkedWorker)
        assert warmed_files <= mapped_files(s._process.pid)  # ... which its children have from the start
        s.step(3)
        assert s.wait(30) and s.trainer.step == 3 and s.error is None
    finally:
        s.close()


@pytest.mark.parametrize("pending, warm, expected", [(False, True, 1), (True, True, 0), (False, False, 0)])
def test_a_spare_takes_the_first_optimisers_imports_while_it_waits(monkeypatch, pending, warm, expected):
    """A training process started on its own (no forking process: a GPU build of PyTorch, another system)
    takes them while it waits as a spare; not when its request is already there (it would only delay it),
    nor as the forking process's child (that one has them)."""
    import threading
    from multiprocessing import Pipe

    from explorer.core.process import session as process_session

    calls = []
    monkeypatch.setattr(process_session, "warm_first_optimizer", lambda: calls.append(1))
    ours, theirs = Pipe()
    if pending:
        process_session.send(ours, None)  # (a spare no longer needed: the shortest request there is)
    child = threading.Thread(target=process_session.serve_child, args=(theirs,), kwargs={"warm": warm})
    child.start()
    if not pending:
        time.sleep(0.05)
        process_session.send(ours, None)
    child.join(10)
    assert not child.is_alive() and len(calls) == expected
