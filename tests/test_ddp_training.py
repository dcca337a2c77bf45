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
        assert torch.allclose(ranks[0][name], value, rtol=1e-4, atol=1e-5), name   # ... the single run's
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
    with pytest.raises(distributed.RankFailed, match="rank one refuses"):
        distributed.launch(distributed.plan(2, "cpu"), fail_on_rank_one, {})
