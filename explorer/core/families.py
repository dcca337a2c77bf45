"""The model families the engine knows, by name. Later families register here."""

from __future__ import annotations

from typing import Any

from .autoencoder import AutoencoderConfig, AutoencoderTrainer
from .compare import CompareConfig, InitComparison
from .deep import MLPConfig, MLPTrainer
from .engine import Trainer
from .rbm_trainer import RBMConfig, RBMTrainer

FAMILIES: dict[str, tuple[type, type]] = {
    "rbm": (RBMConfig, RBMTrainer),
    "autoencoder": (AutoencoderConfig, AutoencoderTrainer),
    "mlp": (MLPConfig, MLPTrainer),
    "compare": (CompareConfig, InitComparison),
}


def make_trainer(family: str, config: dict[str, Any] | Any) -> Trainer:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}: known are {', '.join(sorted(FAMILIES))}")
    config_cls, trainer_cls = FAMILIES[family]
    if isinstance(config, dict):
        config = config_cls.from_dict(config)
    return trainer_cls(config)
