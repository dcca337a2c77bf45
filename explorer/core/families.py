"""The model families the engine knows, by name. Later families register here."""

from __future__ import annotations

from typing import Any

from .autoencoder import AutoencoderConfig, AutoencoderTrainer
from .cnn import CNNConfig, CNNTrainer
from .compare import CompareConfig, InitComparison
from .deep import MLPConfig, MLPTrainer
from .engine import Trainer
from .fcn import FCNCompareConfig, FCNConfig, FCNTrainer, SkipComparison
from .rbm_trainer import RBMConfig, RBMTrainer
from .recurrent import LSTMConfig, RecurrentTrainer, RNNConfig

FAMILIES: dict[str, tuple[type, type]] = {
    "rbm": (RBMConfig, RBMTrainer),
    "autoencoder": (AutoencoderConfig, AutoencoderTrainer),
    "mlp": (MLPConfig, MLPTrainer),
    "compare": (CompareConfig, InitComparison),
    "cnn": (CNNConfig, CNNTrainer),
    "fcn": (FCNConfig, FCNTrainer),
    "fcn-compare": (FCNCompareConfig, SkipComparison),
    "lstm": (LSTMConfig, RecurrentTrainer),
    "rnn": (RNNConfig, RecurrentTrainer),
}


def make_trainer(family: str, config: dict[str, Any] | Any) -> Trainer:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}: known are {', '.join(sorted(FAMILIES))}")
    config_cls, trainer_cls = FAMILIES[family]
    if isinstance(config, dict):
        config = config_cls.from_dict(config)
    return trainer_cls(config)
