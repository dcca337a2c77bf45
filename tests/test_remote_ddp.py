"""A training server with ``ranks=2`` (``serve --gpus 2``): a cnn run from a window trains one model over 2
gloo processes on the CPU, in lockstep with the window's controls; the weights follow a single process
taking the same global batches; other families train on one process; closing a run leaves no process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors

from explorer.core.engine.session import ERROR
from explorer.core.families.registry import make_trainer
from explorer.core.persist import commands
from explorer.core.remote.client import RemoteSession, ServerAddress
from explorer.core.remote.server import TrainingServer
from tests.helpers import tiny_rbm_config, wait_for
from tests.test_ddp_training import DDP_ATOL

TOKEN = "d" * 32
CNN = {"batch_size": 8, "lr": 0.05, "momentum": 0.9, "seed": 3, "device": "cpu", "eval_samples": 50}
FCN = {"batch_size": 8, "lr": 0.05, "seed": 3, "device": "cpu", "eval_samples": 50}


@pytest.fixture(scope="module")
def server():
    s = TrainingServer(token=TOKEN, hello_timeout=2.0, keep_detached=60.0, ranks=2)
    s.start()
    yield s
    s.close()


def session(server, config, family):
    return RemoteSession(config, family=family, threads=1,
                         server=ServerAddress(server.address[0], server.address[1], TOKEN))


def command(s, fn, *args):
    done, out = threading.Event(), []
    s.run_command(fn, *args, on_done=lambda result, error: (out.append((result, error)), done.set()))
    assert done.wait(60), f"{fn.__name__} did not finish"
    return out[0]


def weights(s) -> dict[str, torch.Tensor]:
    files, error = command(s, commands.run_files)
    assert error is None, error
    return {k: v for k, v in load_safetensors(files["weights.safetensors"].tobytes()).items()
            if k.startswith("model.")}


def single_process(steps_then_lr: list[tuple[int, float | None]], losses: list[float] | None = None,
                   family: str = "cnn", **config) -> dict[str, torch.Tensor]:
    """The weights one process trains with the whole global batch: (steps, lr set before them) pairs;
    each step's loss goes to ``losses``."""
    trainer = make_trainer(family, dict(CNN if family == "cnn" else FCN, **config))
    for steps, lr in steps_then_lr:
        if lr is not None:
            trainer.apply_hparams({"lr": lr})
        for _ in range(steps):
            loss = float(trainer.train_step()["loss"])
            if losses is not None:
                losses.append(loss)
    return {k: v for k, v in trainer.state_tensors().items() if k.startswith("model.")}


def descendants(pid: int) -> list[int]:
    """The processes under ``pid`` (from /proc: their parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # (a zombie waiting for its parent counts)
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assert_close(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert torch.allclose(got[name], value, rtol=1e-4, atol=DDP_ATOL), name


@contextlib.contextmanager
def two_ranks(server, family):
    """A run of ``family`` on the server's two ranks, its rank 1 checked started by the training process;
    after it (stopped as a window stops it), every rank ended and the run forgotten by the server."""
    s = session(server, dict(CNN if family == "cnn" else FCN), family)
    try:
        child = server._runs[s.server_run].process.pid
        wait_for(lambda: any("2 ranks over gloo" in n for n in s.pop_notices()), what="the notice of the ranks")
        followers = descendants(child)
        assert len(followers) == 1 and alive(followers[0])   # rank 1, started by the training process
        yield s
    finally:
        s.stop()
    wait_for(lambda: not alive(child) and not any(alive(p) for p in followers), timeout=30,
             what="every rank to end")
    wait_for(lambda: s.server_run not in server.runs(), what="the server to forget the run")


def test_a_cnn_run_trains_on_two_ranks_in_lockstep_with_the_window(server):
    with two_ranks(server, "cnn") as s:
        s.step(3)
        assert s.wait(60)
        assert s.trainer.step == 3
        # the average of the two ranks' gradients: the weights one process takes from the whole batches
        losses: list[float] = []
        assert_close(weights(s), single_process([(3, None)], losses))
        # the loss curve is the whole batch's (the mean of the ranks' equal shares), step by step
        wait_for(lambda: len(s.metrics.steps) >= 3, what="the steps' rows")
        assert [r["loss"] for r in s.metrics.steps[:3]] == pytest.approx(losses, rel=1e-4)

        s.set_hparams(lr=0.01)                                # reaches rank 1 before the next step
        s.step(3)
        assert s.wait(60)
        assert_close(weights(s), single_process([(3, None), (3, 0.01)]))

        s.start()
        wait_for(lambda: s.trainer.step >= 10, what="training")
        s.pause()
        assert s.wait(60)
        held = s.trainer.step
        time.sleep(1.5)                                       # paused: no step on any rank
        assert s.trainer.step == held and s.state != ERROR
        assert_close(weights(s), single_process([(3, None), (held - 3, 0.01)]))

        s.reset()                                             # both ranks from the seed again (lr kept)
        s.step(2)
        assert s.wait(60)
        assert s.trainer.step == 2
        assert_close(weights(s), single_process([(2, None)], lr=0.01))


def test_an_fcn_run_trains_on_two_ranks_in_lockstep_with_the_window(server):
    with two_ranks(server, "fcn") as s:
        s.step(3)
        assert s.wait(60)
        assert s.trainer.step == 3
        losses: list[float] = []
        got = weights(s)
        assert_close(got, single_process([(3, None)], losses, family="fcn"))
        start = {k: v for k, v in make_trainer("fcn", dict(FCN)).state_tensors().items() if k.startswith("model.")}
        assert any(not torch.equal(got[name], start[name]) for name in start)  # the steps moved the weights
        wait_for(lambda: len(s.metrics.steps) >= 3, what="the steps' rows")
        assert [r["loss"] for r in s.metrics.steps[:3]] == pytest.approx(losses, rel=1e-4)

        s.set_hparams(lr=0.01)                                # reaches rank 1 before the next step
        s.step(2)
        assert s.wait(60)
        assert s.trainer.step == 5 and s.state != ERROR
        assert_close(weights(s), single_process([(3, None), (2, 0.01)], family="fcn"))


def test_a_failing_follower_ends_the_run_with_one_line(server, capfd):
    s = session(server, dict(CNN), "cnn")
    try:
        child = server._runs[s.server_run].process.pid
        wait_for(lambda: any("2 ranks over gloo" in n for n in s.pop_notices()), what="the notice of the ranks")
        os.kill(descendants(child)[0], 9)                     # rank 1 dies
        s.step(1)
        wait_for(lambda: s.state == ERROR, what="the error")
        wait_for(lambda: s.error and "rank 1 of 2" in s.error, what="rank 1 named")
        time.sleep(0.5)
        lines = [n for n in s.pop_notices() if "rank" in n or "gloo" in n.lower()]
        assert len(lines) == 1 and "\n" not in lines[0], lines
        s.step(1)                                             # the run has ended: no step, no new line
        time.sleep(0.5)
        assert s.state == ERROR and s.trainer.step == 0 and not s.pop_notices()
    finally:
        s.stop()
    wait_for(lambda: not alive(child), timeout=30, what="the training process to end")
    assert "rank 1 of 2" in capfd.readouterr().err            # the server's terminal has the line too


def test_another_family_trains_on_one_process_and_says_so(server):
    s = session(server, tiny_rbm_config(), "rbm")
    try:
        wait_for(lambda: any("trains on one process" in n for n in s.pop_notices()), what="the notice")
        child = server._runs[s.server_run].process.pid
        assert descendants(child) == []
        s.step(5)
        assert s.wait(60)
        assert s.trainer.step == 5
    finally:
        s.stop()


def test_a_pause_longer_than_the_ranks_timeout_holds_the_group(server, monkeypatch):
    from explorer.core.process.lockstep import RANK_TIMEOUT_ENV

    # the ranks give up on each other after 6 s (2 s failed now and then on a busy machine: a rank that
    # builds its trainer there can be 2 s late for the first step) ...
    monkeypatch.setenv(RANK_TIMEOUT_ENV, "6")
    s = session(server, dict(CNN), "cnn")
    try:
        s.step(2)
        assert s.wait(60)
        time.sleep(10)                                        # ... but a paused run's heartbeat keeps them
        s.step(2)
        assert s.wait(60)
        assert s.state != ERROR and s.trainer.step == 4, s.error
        assert_close(weights(s), single_process([(4, None)]))
    finally:
        s.stop()


def test_a_model_moved_to_the_server_trains_on_from_its_state_on_both_ranks(server):
    from explorer.core.engine.session import TrainingSession
    from explorer.core.persist.runfolder import load_run_files, restore_session

    local = TrainingSession(make_trainer("cnn", dict(CNN)))
    local.step(3)
    assert local.wait(60)
    files = command(local, commands.run_files)[0]
    local.stop()
    s = RemoteSession(server=ServerAddress(server.address[0], server.address[1], TOKEN), run_files=files,
                      threads=1)
    try:
        s.step(3)
        assert s.wait(60) and s.trainer.step == 6
        got = weights(s)
    finally:
        s.stop()
    alone = restore_session(load_run_files(files))          # the same moved state, on one process
    alone.step(3)
    assert alone.wait(60)
    expected = {k: v for k, v in alone.trainer.state_tensors().items() if k.startswith("model.")}
    alone.stop()
    assert_close(got, expected)


def test_closing_rank_0_ends_its_follower(server):
    s = session(server, dict(CNN), "cnn")
    try:
        child = server._runs[s.server_run].process.pid
        wait_for(lambda: any("2 ranks over gloo" in n for n in s.pop_notices()), what="the notice of the ranks")
        follower = descendants(child)[0]
        os.kill(child, 9)                                     # rank 0 killed: no time to say STOP
        wait_for(lambda: not alive(follower), timeout=15, what="rank 1 to leave")
    finally:
        s.stop()


class AskingForRanks(RemoteSession):
    """A window that puts ``ranks`` in its session request."""

    def _start(self, timeout):
        self._spec["ranks"] = 4
        super()._start(timeout)


def test_a_client_cannot_choose_the_ranks():
    alone = TrainingServer(token=TOKEN, hello_timeout=2.0)  # one rank: the server's choice
    alone.start()
    try:
        s = AskingForRanks(dict(CNN), family="cnn", threads=1,
                           server=ServerAddress(alone.address[0], alone.address[1], TOKEN))
        try:
            child = alone._runs[s.server_run].process.pid
            s.step(2)
            assert s.wait(60) and s.trainer.step == 2
            assert descendants(child) == []                   # no follower started
            assert not any("ranks" in n for n in s.pop_notices())
        finally:
            s.stop()
    finally:
        alone.close()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_serve_gpus_below_one_is_one_line_exit_2(value, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "explorer", "serve", "--gpus", value], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--gpus" in lines[0], done.stderr
