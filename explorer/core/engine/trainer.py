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
