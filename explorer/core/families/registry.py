"""The model families the engine knows, each declared once: a :class:`Family` record in ``FAMILIES``.

Everything else that needs a table of families derives it from here: the families a network spec may
name (those with a spec converter, told to ``explorer.core.spec.network``, a layer below, when this
module is imported), the builder's conversion of a spec to a family's settings, and the ONNX export
plans (``explorer.core.persist.export``). Only the window's panels (``explorer.gui.panels.PANELS``, Qt
code the core must not import) and the command line's sub-parsers are kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from explorer.core.engine.session import Trainer
from explorer.core.engine.settings import Settings
from explorer.core.families.autoencoder import export as autoencoder_export
from explorer.core.families.autoencoder import trainer as autoencoder
from explorer.core.families.base import SettingsTrainer
from explorer.core.families.cnn import export as cnn_export
from explorer.core.families.cnn import trainer as cnn
from explorer.core.families.deep import export as deep_export
from explorer.core.families.deep import trainer as deep
from explorer.core.families.deep.compare import CompareConfig, InitComparison
from explorer.core.families.export_plan import ExportPlan
from explorer.core.families.fcn import export as fcn_export
from explorer.core.families.fcn import trainer as fcn
from explorer.core.families.rbm import export as rbm_export
from explorer.core.families.rbm import trainer as rbm
from explorer.core.families.recurrent import export as recurrent_export
from explorer.core.families.recurrent import trainer as recurrent
from explorer.core.spec.network import NetworkSpec, accept_spec_families


@dataclass(frozen=True)
class Family:
    """One model family: its name (as run folders, specs, lectures and the command line write it), its
    settings and trainer classes, and what it can do beyond training.

    ``config_from_spec(spec, base)`` makes the family's settings from a builder spec (``base``: settings to
    keep what the spec does not say, or None); a family without one cannot be built from a spec.
    ``export_plan(trainer)`` says what its ONNX graph is; a family without one exports weights only.
    """

    name: str
    config_cls: type[Settings]
    trainer_cls: type[SettingsTrainer]
    config_from_spec: Callable[[NetworkSpec, Any], Settings] | None = None
    export_plan: Callable[[Any], ExportPlan] | None = None


def _declare(*families: Family) -> dict[str, Family]:
    return {f.name: f for f in families}


# in the order the window, the builder and the messages list them
FAMILIES: dict[str, Family] = _declare(
    Family("rbm", rbm.RBMConfig, rbm.RBMTrainer, rbm.config_from_spec, rbm_export.export_plan),
    Family("autoencoder", autoencoder.AutoencoderConfig, autoencoder.AutoencoderTrainer,
           autoencoder.config_from_spec, autoencoder_export.export_plan),
    Family("mlp", deep.MLPConfig, deep.MLPTrainer, deep.config_from_spec, deep_export.export_plan),
    Family("compare", CompareConfig, InitComparison, None, deep_export.compare_export_plan),
    Family("cnn", cnn.CNNConfig, cnn.CNNTrainer, cnn.config_from_spec, cnn_export.export_plan),
    Family("fcn", fcn.FCNConfig, fcn.FCNTrainer, fcn.config_from_spec, fcn_export.export_plan),
    Family("fcn-compare", fcn.FCNCompareConfig, fcn.SkipComparison, None, fcn_export.compare_export_plan),
    Family("lstm", recurrent.LSTMConfig, recurrent.RecurrentTrainer, recurrent.config_from_spec,
           recurrent_export.export_plan),
    Family("rnn", recurrent.RNNConfig, recurrent.RecurrentTrainer, recurrent.config_from_spec,
           recurrent_export.export_plan),
)


def spec_families(families: Mapping[str, Family] = FAMILIES) -> tuple[str, ...]:
    """The families a network spec may name: those that can be built from one, in registry order."""
    return tuple(name for name, f in families.items() if f.config_from_spec is not None)


def check_trainable(spec: NetworkSpec, families: Mapping[str, Family] = FAMILIES) -> None:
    """ValueError unless the spec's family can train it with its settings (its hparams), as ``train`` and
    the builder's Train do: a spec whose layers fit together may still be refused there (a LeNet-5 labelled
    an RBM, a batch size of 0), and a checker that calls it valid is wrong."""
    family = families.get(spec.family)
    if family is not None and family.config_from_spec is not None:
        family.config_from_spec(spec, None)


def family_of_config(config: Any, families: Mapping[str, Family] = FAMILIES) -> str | None:
    """The family whose settings class is exactly ``type(config)``; None when no family's is."""
    return next((name for name, f in families.items() if type(config) is f.config_cls), None)


def make_trainer(family: str, config: dict[str, Any] | Any) -> Trainer:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}: known are {', '.join(sorted(FAMILIES))}")
    record = FAMILIES[family]
    if isinstance(config, dict):
        config = record.config_cls.from_dict(config)
    return record.trainer_cls(config)


# the spec checker (a layer below, which cannot import this module) learns here which families it accepts
accept_spec_families(spec_families())
