"""Training in a child process: the same behaviour as a thread's session, and what only a process can do
(die, be killed, be restarted). Headless: no Qt."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from explorer.core.data.datasets import DataError
from explorer.core.engine.session import ERROR, PAUSED, RUNNING, STOPPED, TrainingSession
from explorer.core.families.registry import make_trainer
from explorer.core.persist import commands
from explorer.core.persist.runfolder import load_run
from explorer.core.process import worker
from explorer.core.process.session import ProcessSession, TrainerMirror, TrainingProcessError
from tests import helpers
from tests.helpers import tiny_rbm_config


def open_session(kind, config=None, **kw):
    config = config or tiny_rbm_config()
    if kind == "thread":
        return TrainingSession(make_trainer("rbm", config), **kw)
    return ProcessSession(config, threads=1, **kw)


@pytest.fixture(params=["thread", "process"])
def session(request):
    s = open_session(request.param, snapshot_hz=50)
    yield s
    s.close()


def wait_until(pred, timeout=20.0):
    """A training process answers more slowly than a thread: a longer default wait."""
    return helpers.wait_until(pred, timeout)


def call(session, fn, *args, timeout=20.0, **kwargs):
    """run_command, waited for: (result, error)."""
    done, box = threading.Event(), {}

    def on_done(result, error):
        box.update(result=result, error=error)
        done.set()

    session.run_command(fn, *args, on_done=on_done, **kwargs)
    assert done.wait(timeout), "no reply"
    return box["result"], box["error"]


# -- the same behaviour either way ---------------------------------------------------------------------------
def test_starts_paused_and_steps_exactly(session):
    assert session.state == PAUSED and session.trainer.step == 0
    session.step(3)
    assert session.wait(20)
    assert session.trainer.step == 3
    assert [r["step"] for r in session.metrics.steps] == [1.0, 2.0, 3.0]
    assert session.metrics.evals and session.metrics.evals[0]["step"] == 0.0  # the untrained model's row


def test_play_runs_and_pause_holds(session):
    session.start()
    assert session.state == RUNNING  # at once, as the Play button shows it
    assert wait_until(lambda: session.trainer.step > 20)
    assert session.rates()[0] > 0
    session.pause()
    assert session.wait(20)
    frozen = session.trainer.step
    time.sleep(0.3)
    assert session.trainer.step == frozen and session.state == PAUSED
    assert len(session.metrics.steps) == frozen  # every step's row arrived, none twice


def test_pulled_snapshots_are_numpy_and_a_pause_shows_the_paused_step(session):
    session.subscribe(pull=True)
    session.start()

    def trained_snapshot():
        # a puller takes each snapshot it sees, as the window's timer does: the one asked for by subscribe
        # may show step 0 (taken before start arrived), and the next is computed only once it was taken
        snap = session.latest_snapshot()
        if snap is None:
            return False
        session.snapshot_taken(snap.seq)
        return snap.step > 0

    assert wait_until(trained_snapshot)
    first = session.latest_snapshot()
    assert isinstance(first.arrays["filters"], np.ndarray)
    session.snapshot_taken(first.seq)  # the next one may be computed
    assert wait_until(lambda: session.latest_snapshot().seq > first.seq)
    session.pause()
    assert session.wait(20)
    assert wait_until(lambda: session.latest_snapshot().step == session.trainer.step)
    # the time taken by snapshots is counted (the window paces a training process's views on it)
    assert wait_until(lambda: session.snapshot_seconds > 0)
    spent = session.snapshot_seconds
    time.sleep(0.3)
    assert session.snapshot_seconds == spent  # paused: no snapshot taken, no time counted


def test_reset_clears_curves_and_counts_a_new_run(session):
    session.step(5)
    assert session.wait(20)
    run = session.run_id
    session.reset()
    assert session.wait(20)
    assert session.run_id == run + 1 and session.trainer.step == 0
    assert session.metrics.steps == [] and len(session.metrics.evals) == 1


def test_settings_change_between_steps(session):
    session.set_hparams(lr=0.05)
    session.step(1)
    assert session.wait(20)
    assert wait_until(lambda: session.trainer.config.lr == 0.05)


def test_commands_reply_with_results_and_errors(session, tmp_path):
    session.step(4)
    assert session.wait(20)
    data, error = call(session, commands.call_trainer, "cd1_walkthrough", probe=0, seed=3)
    assert error is None and data["x"].shape[-1] == 16
    _, error = call(session, commands.call_trainer, "no_such_method")
    assert isinstance(error, AttributeError)
    target, error = call(session, commands.save_run_to, str(tmp_path / "run"))
    assert error is None and load_run(target).step == 4
    assert wait_until(lambda: any("saved run to" in n for n in session.pop_notices()))
    # a failed command says so itself, once, as a notice (the caller only learns that it failed)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _, error = call(session, commands.save_run_to, str(blocker / "run"))
    assert isinstance(error, OSError)
    notices: list[str] = []
    assert wait_until(lambda: notices.extend(session.pop_notices()) or notices)
    time.sleep(0.1)
    notices.extend(session.pop_notices())
    assert len(notices) == 1 and notices[0].startswith(f"could not save run to {blocker / 'run'}")
    assert session.state == PAUSED  # a failed command is the caller's to report: the run goes on


# -- what only a process does -----------------------------------------------------------------------------
def test_the_trainer_mirror_reads_like_the_trainer():
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        tr = s.trainer
        assert isinstance(tr, TrainerMirror)
        assert tr.family == "rbm" and tr.config == tiny_rbm_config() and tr.device.type == "cpu"
        assert tr.describe().startswith("RBM 16-8")
        assert getattr(tr, "class_names", None) is None  # an RBM has none: missing, as on the trainer
        assert s.threads == 1
    finally:
        s.close()


def test_the_thread_count_the_process_measured_is_mirrored():
    s = ProcessSession(tiny_rbm_config(), threads=2)
    try:
        assert s.threads == 2 and s.threads_in_use == 2 and s.thread_note == ""
        for _ in range(60):  # the training process times its first steps at 1 and 2 threads (0.5 s of them)
            s.step(1000)
            assert s.wait(20)
            if s.thread_note:
                break
        assert "1 thread" in s.thread_note and "2 threads" in s.thread_note
        assert s.threads == 2 and s.threads_in_use in (1, 2)
    finally:
        s.close()


def test_a_refused_start_raises_the_processes_error(tmp_path):
    with pytest.raises(DataError):
        ProcessSession(tiny_rbm_config(dataset="mnist", data_dir=str(tmp_path)), threads=1)


def test_closures_cannot_cross():
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        with pytest.raises(TypeError):
            s.call_in_thread(lambda: None)
    finally:
        s.close()


def test_a_killed_process_is_an_error_and_reset_starts_a_new_one():
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        s.start()
        assert wait_until(lambda: s.trainer.step > 10)
        pid = s._process.pid
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: s.state == ERROR)
        assert "ended unexpectedly" in s.error and not s.is_alive
        assert any("ended unexpectedly" in n for n in s.pop_notices())
        _, error = call(s, commands.evaluate_now)  # a command to a dead process is answered, never lost
        assert isinstance(error, TrainingProcessError)
        run = s.run_id
        s.reset()
        assert s.is_alive and s._process.pid != pid and s.state == PAUSED and s.error is None
        assert s.run_id > run and s.trainer.step == 0
        s.step(2)
        assert s.wait(20) and s.trainer.step == 2
    finally:
        s.close()


def test_close_mid_training_ends_the_process():
    s = ProcessSession(tiny_rbm_config(), threads=1)
    s.start()
    assert wait_until(lambda: s.trainer.step > 10)
    t0 = time.monotonic()
    assert s.close(timeout=10)
    assert time.monotonic() - t0 < 10
    assert s.state == STOPPED and not s._process.is_alive() and not s.is_alive
    s.start()  # a closed session ignores further calls
    assert s.state == STOPPED


def test_a_saved_run_reopens_in_a_process(tmp_path):
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        s.step(7)
        assert s.wait(20)
        target, error = call(s, commands.save_run_to, str(tmp_path / "run"))
        assert error is None
    finally:
        s.close()
    again = ProcessSession(run_dir=target, threads=1)
    try:
        assert again.trainer.step == 7 and again.run_info["family"] == "rbm"
        assert [r["step"] for r in again.metrics.steps] == [float(i) for i in range(1, 8)] or wait_until(
            lambda: len(again.metrics.steps) == 7)
    finally:
        again.close()


def test_a_spare_process_serves_the_next_session():
    worker.prepare()
    spare = worker._spare[0]
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        assert s._process is spare
        s.step(1)
        assert s.wait(20) and s.trainer.step == 1
    finally:
        s.close()
    worker.prepare()
    leftover = worker._spare[0]
    worker.discard_spare()
    assert worker._spare is None and not leftover.is_alive()


def test_a_restart_that_cannot_start_is_an_error_not_a_crash(tmp_path):
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        os.kill(s._process.pid, signal.SIGKILL)
        assert wait_until(lambda: s.state == ERROR)
        # the settings the window knew now point at data that is not there
        s.trainer._fields = {**s.trainer._fields, "config": tiny_rbm_config(dataset="mnist", data_dir=str(tmp_path))}
        s.reset()
        assert s.state == ERROR and s.error.startswith("could not start a new training process: DataError")
        assert not s.is_alive
        s.start()  # nothing to start: still the error, no exception
        assert s.state == ERROR
    finally:
        s.close()


def test_the_step_rate_crosses_to_the_training_process(session):
    assert session.step_rate is None
    session.set_step_rate(10)
    assert session.step_rate == 10.0
    session.start()
    assert wait_until(lambda: session.trainer.step >= 1, timeout=20)
    first, t0 = session.trainer.step, time.perf_counter()
    time.sleep(1.5)
    made, dt = session.trainer.step - first, time.perf_counter() - t0
    session.pause()
    assert session.wait(20)
    # the mirrored step count lags the process by a status or two (50 ms each)
    assert 0.6 * 10 * dt <= made <= 1.4 * 10 * dt + 2
    session.set_step_rate(None)
    assert session.step_rate is None


def test_a_reset_reports_its_new_configuration_with_its_run():
    s = ProcessSession(tiny_rbm_config(), threads=1)
    try:
        seen = []
        stop = threading.Event()

        def watch():  # what a window reading run_id, then the trainer's fields, sees
            while not stop.is_set():
                run, cfg, text = s.run_id, s.trainer.config, s.trainer.describe()
                seen.append((run, cfg.hidden, text))
                time.sleep(0.001)

        t = threading.Thread(target=watch)
        t.start()
        s.set_hparams(hidden=5)
        s.reset()
        assert wait_until(lambda: s.run_id == 1, timeout=20)
        time.sleep(0.05)
        stop.set()
        t.join()
        new_run = [(h, text) for run, h, text in seen if run == 1]
        assert new_run and all(h == 5 and text.startswith("RBM 16-5") for h, text in new_run)
    finally:
        s.close()


def test_a_large_array_that_stays_the_same_is_sent_once_apart_and_every_snapshot_arrives_whole():
    """The CNN's gallery of digits does not change from snapshot to snapshot: it crosses the pipe once, and
    each snapshot is rebuilt whole on the window's side, a changed array travelling in its snapshot again."""
    import dataclasses
    from multiprocessing import Pipe
    from types import SimpleNamespace

    from explorer.core.engine.session import Snapshot
    from explorer.core.process.session import STATIC_MIN_BYTES, ProcessSession, _ChildServer, receive

    child_end, window_end = Pipe()
    child = _ChildServer(child_end, SimpleNamespace(run_id=0))
    big = np.arange(STATIC_MIN_BYTES // 4, dtype=np.float32)  # exactly the size from which it counts
    changed = big + 1
    shots = [{"gallery": big.copy(), "maps": np.full(3, i, np.float32)} for i in range(2)]
    shots += [{"gallery": changed.copy(), "maps": np.full(3, 2, np.float32)},
              {"gallery": changed.copy(), "maps": np.full(3, 3, np.float32)}]
    snaps = [Snapshot(run_id=0, seq=i, step=i, epoch=0, time=0.0, arrays=a) for i, a in enumerate(shots)]
    sent = []
    for snap in snaps:
        child.send(("snapshot", *child._thin(snap)))
        while window_end.poll():
            sent.append(receive(window_end))
    kinds = [(m[0], sorted(m[1].arrays) if m[0] == "snapshot" else m[1]) for m in sent]
    assert kinds == [("snapshot", ["gallery", "maps"]),   # first seen: in its snapshot
                     ("static", "gallery"), ("snapshot", ["maps"]),  # the same again: apart once, then left out
                     ("snapshot", ["gallery", "maps"]),   # changed: in its snapshot again
                     ("static", "gallery"), ("snapshot", ["maps"])]
    window = ProcessSession.__new__(ProcessSession)  # the window's side, as its reader applies messages
    window._static, window._offset, window._mailbox, window._awaiting_resync = {}, (0, 0), None, False
    for message in sent:
        window._apply(message)
        if message[0] == "snapshot":
            got, want = window._mailbox, snaps[message[1].seq]
            assert sorted(got.arrays) == sorted(want.arrays)
            assert all(np.array_equal(got.arrays[k], want.arrays[k]) for k in want.arrays)
            assert dataclasses.replace(got, arrays={}) == dataclasses.replace(want, arrays={})
    # a window that connected again applies no snapshot until the process has started anew (its statics
    # may have changed unseen); nor one whose left-out arrays it never got (it would show nothing wrong)
    window._mailbox, window._awaiting_resync = None, True
    window._apply(sent[-1])
    assert window._mailbox is None
    fresh = ProcessSession.__new__(ProcessSession)
    fresh._static, fresh._offset, fresh._mailbox, fresh._awaiting_resync = {}, (0, 0), None, False
    fresh._apply(sent[-1])
    assert fresh._mailbox is None
    child_end.close()
    window_end.close()
