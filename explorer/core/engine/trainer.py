"""The :class:`Trainer` interface: what a model family supplies to the engine (:mod:`.session` runs it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class Trainer(ABC):
    """What a model family supplies to the engine. All methods run on the training thread."""

    family: str = "?"
    step: int = 0          # optimisation steps done
    epoch: int = 0         # complete passes over the training set
    batch_size: int = 1
    # parts of the names of metrics measured every few steps and repeated in between (a deep network's gradient
    # statistics): a row that stands for a window of steps keeps the last value, not a mean of old and new
    held_metrics: tuple[str, ...] = ()

    @abstractmethod
    def train_step(self) -> dict[str, torch.Tensor]:
        """One mini-batch update. Returns scalar metrics as 0-dim tensors (not yet synchronised)."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Metrics on held-out (and training) data, as plain floats."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The views' data: numpy arrays copied to the CPU, never live tensors."""

    @abstractmethod
    def reset(self) -> None:
        """Re-initialise the model from the seed in the configuration."""

    @abstractmethod
    def apply_hparams(self, changes: dict[str, Any]) -> list[str]:
        """Apply hyper-parameter changes between steps; return notices for the user."""

    @abstractmethod
    def to_device(self, device: torch.device) -> None:
        """Move the model, optimiser state and data to ``device``."""

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int: ...

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Weights (and optimiser state) to save."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError(f"{self.family} cannot load weights")

    def config_dict(self) -> dict[str, Any]:
        return {}


# -- counting samples -------------------------------------------------------------------------------------
def training_set_size(trainer) -> int | None:
    """The examples one epoch of ``trainer`` goes through (its data set's training part), or None when it
    has no data set of its own (a run watched in someone's script)."""
    ds = getattr(trainer, "dataset", None)
    if ds is None:
        return None
    n = getattr(ds, "n_train", None)  # a SequenceData says it; a Dataset's is its rows
    if n is not None:
        return int(n)
    train_x = getattr(ds, "train_x", None)
    return int(train_x.shape[0]) if train_x is not None else None


def _batch_and_runs(trainer) -> tuple[int, int]:
    """One network's batch size, and the networks that each take one per step (the side-by-side comparisons)."""
    config = getattr(trainer, "config", None)
    total = int(getattr(trainer, "batch_size", 0) or 0)
    batch = int(getattr(config, "batch_size", 0) or total or 1)
    return batch, max(1, round((total or batch) / batch))


def samples_trained(trainer, steps: int) -> int:
    """The examples the first ``steps`` steps of a run trained on (its batch size fixed). A step takes the next
    batch of the epoch's shuffled order and the end of the order ends the epoch (the families'
    ``_next_indices``): the last batch of an epoch is what is left of it, and a batch larger than the training
    set is the training set. Steps times the batch size counted 2,000 samples a step on 1,438 digits."""
    batch, runs = _batch_and_runs(trainer)
    n = training_set_size(trainer)
    if n is None or n <= 0:
        return int(steps) * batch * runs
    epochs, rest = divmod(int(steps), max(1, -(-n // batch)))
    return (epochs * n + min(rest * batch, n)) * runs


def samples_per_step(trainer) -> float:
    """The examples a step trains on, on average over an epoch (what a rate over many steps counts)."""
    batch, runs = _batch_and_runs(trainer)
    n = training_set_size(trainer)
    if n is None or n <= 0:
        return float(batch * runs)
    return n / max(1, -(-n // batch)) * runs
