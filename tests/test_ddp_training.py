"""Data-parallel training (explorer.core.engine.distributed): 2 gloo ranks on the CPU train the same
weights as one process with the whole batch, and the ranks agree with each other."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from explorer.core.engine import distributed
from explorer.core.families.registry import make_trainer

STEPS = 3
# Two ranks sum their gradients in another order than one process does over the whole batch, and Adam (the
# FCN's) divides each update by the gradient's own size: the weights may differ by float32 rounding made
# large. On one machine the FCN's came 1.5e-5 apart after 3 steps that moved them 0.15 (1e-4 of the move;
# 1e-5 was too tight there). A rank that trained on half the batch alone, or missed an all-reduce, differs
# by about the move itself.
DDP_ATOL = 5e-5
CONFIGS = {
    "cnn": {"batch_size": 8, "lr": 0.05, "momentum": 0.9, "seed": 3, "device": "cpu", "eval_samples": 50},
    "fcn": {"batch_size": 8, "lr": 0.05, "seed": 3, "device": "cpu", "eval_samples": 50},
}


def _weights(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in trainer.distributed_module().state_dict().items()}


def train_rank(rank: int, world: int, device: torch.device, payload: dict) -> None:
    """One rank: the same trainer from the same seed, wrapped, STEPS steps; its weights to a file."""
    trainer = make_trainer(payload["family"], dict(payload["config"]))
    distributed.wrap(trainer, rank, world, device)
    for _ in range(STEPS):
        trainer.train_step()
    save_file(_weights(trainer), str(Path(payload["dir"]) / f"rank{rank}.safetensors"))


def fail_on_rank_one(rank: int, world: int, device: torch.device, payload: dict) -> None:
    if rank == 1:
        raise ValueError("rank one refuses")
    torch.distributed.barrier()  # rank 0 waits for the others: spawn must end it, not hang


def _own_sockets() -> list[tuple[str, str, str]]:
    """This process's TCP sockets as (state, local address, remote address), from /proc (Linux)."""
    import os

    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])

    def address(field: str) -> str:
        host = field.split(":")[0]
        if len(host) == 8:
            return ".".join(str(b) for b in bytes.fromhex(host)[::-1])
        if host.upper() == "0000000000000000FFFF0000" + host[-8:].upper():  # IPv4 in IPv6
            return ".".join(str(b) for b in bytes.fromhex(host[-8:])[::-1])
        return "::1" if host == "00000000000000000000000001000000" else ("::" if set(host) == {"0"} else host)

    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    found.append(("listen" if cols[3] == "0A" else cols[3], address(cols[1]), address(cols[2])))
    return found


def record_sockets(rank: int, world: int, device: torch.device, payload: dict) -> None:
    """One rank, once the group is up: its TCP sockets to a file."""
    torch.distributed.barrier()
    import json

    (Path(payload["dir"]) / f"rank{rank}.json").write_text(json.dumps(_own_sockets()))
    torch.distributed.barrier()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the sockets from Linux's /proc")
def test_the_ranks_meet_and_talk_on_loopback_only(tmp_path):
    """torch's tcp:// meeting point listened on every interface (its store binds '*'), and gloo took the
    interface the host name resolves to: on a served network anyone could have reached the ranks."""
    import json

    distributed.launch(distributed.plan(2, "cpu"), record_sockets, {"dir": str(tmp_path)})
    sockets = [s for r in range(2) for s in json.loads((tmp_path / f"rank{r}.json").read_text())]
    listening = [local for state, local, _remote in sockets if state == "listen"]
    assert listening, sockets  # rank 0's store at least (and gloo's own)
    assert all(local == "127.0.0.1" for _state, local, _remote in sockets), sockets
    assert all(remote in ("127.0.0.1", "0.0.0.0") for _state, _local, remote in sockets), sockets


@pytest.mark.parametrize("family", ["cnn", "fcn"])
def test_two_gloo_ranks_train_the_single_process_weights(family, tmp_path):
    single = make_trainer(family, dict(CONFIGS[family]))
    for _ in range(STEPS):
        single.train_step()
    expected = _weights(single)

    distributed.launch(distributed.plan(2, "cpu"), train_rank,
                       {"family": family, "config": CONFIGS[family], "dir": str(tmp_path)})
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    assert set(ranks[0]) == set(expected)
    for name, value in expected.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name          # the ranks hold the same weights
        assert torch.allclose(ranks[0][name], value, rtol=1e-4, atol=DDP_ATOL), name   # ... the single run's
    moved = any(not torch.equal(value, make_trainer(family, dict(CONFIGS[family])).distributed_module()
                                .state_dict()[name]) for name, value in expected.items())
    assert moved  # the steps changed the weights: the comparison is not of two initial states


def test_plan_refuses_bad_counts():
    with pytest.raises(ValueError, match="--gpus"):
        distributed.plan(0)
    with pytest.raises(ValueError, match="--gpus"):
        distributed.plan(-2)
    p = distributed.plan(2, "cpu")
    assert (p.backend, p.cuda, p.world) == ("gloo", False, 2)


def test_a_failing_rank_ends_the_run_with_one_line():
    import time
    t0 = time.perf_counter()
    with pytest.raises(distributed.RankFailed) as failed:
        distributed.launch(distributed.plan(2, "cpu"), fail_on_rank_one, {})
    # the first rank to fail is reported: rank 1's own error, or rank 0 losing its peer in the barrier
    text = str(failed.value)
    assert text.startswith("a rank failed: ") and "\n" not in text
    assert time.perf_counter() - t0 < distributed.INIT_TIMEOUT_S / 2  # ended by spawn, not by a timeout


def _explorer(*argv: str, tmp_path: Path):
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)


def test_train_cnn_gpus_2_on_the_cpu_writes_one_run_that_inspect_reads(tmp_path):
    import json
    out = tmp_path / "run"
    done = _explorer("train", "cnn", "--gpus", "2", "--steps", "4", "--batch-size", "8", "--eval-samples", "50",
                     "--device", "cpu", "--json", "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 ranks over gloo on the CPU" in done.stderr           # it says where the ranks run
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1                                          # rank 0 alone prints
    result = json.loads(lines[0])
    assert (result["ranks"], result["backend"], result["steps"], result["out"]) == (2, "gloo", 4, str(out))
    assert 0.0 <= result["last_eval"]["heldout_accuracy"] <= 1.0
    shown = _explorer("inspect", str(out), "--json", tmp_path=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["family"] == "cnn"


@pytest.mark.parametrize("argv", [["cnn", "--gpus", "0"], ["fcn", "--gpus", "-1"], ["cnn", "--steps", "3"],
                                  ["rbm", "--gpus", "2"]])
def test_bad_gpus_is_one_line_naming_the_option_exit_2(argv, tmp_path):
    done = _explorer("train", *argv, tmp_path=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and ("--gpus" in lines[0] or "--steps" in lines[0]), done.stderr


def test_a_shard_without_examples_is_refused():
    trainer = make_trainer("cnn", dict(CONFIGS["cnn"], batch_size=trainer_tail_batch()))
    with pytest.raises(ValueError, match="every rank needs at least one example"):
        trainer.set_shard(0, 2, None)
    with pytest.raises(ValueError, match="a batch of 1"):
        make_trainer("cnn", dict(CONFIGS["cnn"], batch_size=1)).set_shard(0, 2, None)


def trainer_tail_batch() -> int:
    """A batch size whose epoch ends on a batch of one example (the digits' training set)."""
    n = make_trainer("cnn", dict(CONFIGS["cnn"]))._n_train
    return next(bs for bs in range(2, n) if n % bs == 1)


# a rank that waits 3 s per rank number before it joins, with a 2 s timeout for the steps; then rank 1 is
# 5 s late for a step on the default group or on the lockstep's control group, and rank 0 gives up on it
# after the step's 2 s
SLOW_RANK = """
import os, sys, time
import torch, torch.distributed as dist
from explorer.core.process import lockstep
rank, port, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
time.sleep(3.0 * rank)
_device, control = lockstep._join(rank, 2, port, "gloo", False, 2.0)
dist.barrier()
print("met", rank, flush=True)
if rank == 1:
    time.sleep(5.0)
t0 = time.monotonic()
try:
    dist.broadcast(torch.zeros(1), 0, group=control if which == "control" else None)
except RuntimeError:
    print(f"gave up after {time.monotonic() - t0:.1f}", flush=True)
os._exit(0)
"""


@pytest.mark.parametrize("group", ["default", "control"])
def test_a_rank_that_starts_after_a_short_step_timeout_still_meets_the_others(group):
    """A short timeout asked for the steps ($NETWORK_EXPLORER_RANK_TIMEOUT) bounded the meeting too: a follower
    that took longer to start (Python and torch on a busy machine) made rank 0 give up before it came. The
    steps keep the short timeout, on both of the lockstep's groups."""
    import subprocess
    import sys

    port = distributed.free_port()
    ranks = [subprocess.Popen([sys.executable, "-c", SLOW_RANK, str(r), str(port), group], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    try:
        outs = [p.communicate(timeout=60) for p in ranks]
    finally:
        for p in ranks:
            p.kill()
    lines = outs[0][0].split("\n")
    assert lines[0] == "met 0" and lines[1].startswith("gave up after "), outs[0][1][-400:]
    assert 2.0 <= float(lines[1].split()[-1]) < 4.5  # the step's 2 s, not the meeting's 120
    assert outs[1][0].startswith("met 1"), outs[1][1][-400:]
