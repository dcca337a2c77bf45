"""The model families the engine knows, by name. Later families register here."""

from __future__ import annotations

from typing import Any

from explorer.core.engine.session import Trainer
from explorer.core.engine.settings import Settings
from explorer.core.families.autoencoder.trainer import AutoencoderConfig, AutoencoderTrainer
from explorer.core.families.base import SettingsTrainer
from explorer.core.families.cnn.trainer import CNNConfig, CNNTrainer
from explorer.core.families.deep.compare import CompareConfig, InitComparison
from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer
from explorer.core.families.fcn.trainer import FCNCompareConfig, FCNConfig, FCNTrainer, SkipComparison
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.families.recurrent.trainer import LSTMConfig, RecurrentTrainer, RNNConfig

# family -> (its configuration's class, its trainer's class)
FAMILIES: dict[str, tuple[type[Settings], type[SettingsTrainer]]] = {
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
