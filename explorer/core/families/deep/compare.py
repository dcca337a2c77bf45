"""The lecture's argument in one run: the same deep network from four starting points, side by side.

"Is layerwise pretraining always necessary? Answer in 2006: yes! Answer in 2014: no!" Four
:class:`~explorer.core.families.deep.trainer.MLPTrainer` runs share the data, its split, the batch order and the
seed, and differ only in how they start: small random weights (sigmoid), RBM-pretrained,
autoencoder-pretrained, and ReLU with He initialisation. One engine step advances each of them
by one step, so their curves stay aligned in steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from explorer.core.data.datasets import Dataset, load_dataset
from explorer.core.families.deep.trainer import INITS, MLPConfig, MLPTrainer
from explorer.core.engine.session import Trainer


@dataclass
class CompareConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    upscale: int = 1
    hidden: tuple[int, ...] = (64, 64, 64, 64, 64, 64)
    inits: tuple[str, ...] = INITS
    pretrain_epochs: int = 2
    pretrain_lr: float = 0.1
    lr: float = 0.5               # fine-tuning rate of the three sigmoid networks
    relu_lr: float = 0.05         # and of the ReLU one (ReLU nets want a smaller step; each start gets a fair one)
    momentum: float = 0.0
    batch_size: int = 32
    stats_every: int = 10
    seed: int = 0
    device: str = "auto"
    download: bool = False

    def mlp_config(self, init: str) -> MLPConfig:
        names = {f.name for f in dataclasses.fields(MLPConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        lr = self.relu_lr if init == "relu-he" else self.lr
        return MLPConfig(**{**values, "hidden": tuple(self.hidden), "init": init, "lr": lr})

    def validate(self) -> None:
        if not self.inits or any(i not in INITS for i in self.inits):
            raise ValueError(f"inits must be chosen from {', '.join(INITS)}")
        for init in self.inits:
            self.mlp_config(init).validate()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"], d["inits"] = list(self.hidden), list(self.inits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CompareConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        vals = {k: v for k, v in d.items() if k in names}
        for key in ("hidden", "inits"):
            if key in vals:
                vals[key] = tuple(vals[key])
        return cls(**vals)


NEEDS_RESET = {"dataset", "data_dir", "upscale", "hidden", "inits", "pretrain_epochs", "pretrain_lr", "seed"}
LIVE = {"lr", "relu_lr", "momentum", "batch_size", "stats_every"}


class InitComparison(Trainer):
    """Four deep networks trained in lockstep; metrics are prefixed with their start, e.g. ``relu-he/loss``."""

    family = "compare"

    def __init__(self, config: CompareConfig, dataset: Dataset | None = None):
        config.validate()
        self.config = config
        self.dataset = dataset or self._load()
        self._loaded = self._data_key()
        self._build()

    def _data_key(self) -> tuple:
        c = self.config
        return (c.dataset, c.data_dir, c.upscale, c.seed)

    def _load(self) -> Dataset:
        c = self.config
        return load_dataset(c.dataset, c.data_dir, upscale=c.upscale, seed=c.seed, download=c.download)

    def _build(self) -> None:
        self.runs = {init: MLPTrainer(self.config.mlp_config(init), dataset=self.dataset)
                     for init in self.config.inits}
        self.step = 0
        self.epoch = 0

    # -- engine interface ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(iter(self.runs.values())).device

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.config.batch_size * len(self.runs)

    @property
    def steps_per_epoch(self) -> int:
        return next(iter(self.runs.values())).steps_per_epoch

    def train_step(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for init, run in self.runs.items():
            for key, value in run.train_step().items():
                out[f"{init}/{key}"] = value
        self.step += 1
        self.epoch = min(run.epoch for run in self.runs.values())
        return out

    def evaluate(self) -> dict[str, float]:
        return {f"{init}/{k}": v for init, run in self.runs.items() for k, v in run.evaluate().items()}

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image_shape": tuple(self.dataset.image_shape), "inits": list(self.runs)}
        for init, run in self.runs.items():
            snap = run.snapshot()
            for key in ("stage", "stages", "grad_norm", "saturation"):
                if key in snap:
                    out[f"{init}/{key}"] = snap[key]
        return out

    def reset(self) -> None:
        """Re-initialise all four from the seed; reloads the data first if its settings changed."""
        if self._data_key() != self._loaded:
            self.dataset = self._load()
            self._loaded = self._data_key()
        self._build()

    def apply_hparams(self, changes: dict[str, Any]) -> list[str]:
        unknown = set(changes) - {f.name for f in dataclasses.fields(CompareConfig)}
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        trial = dataclasses.replace(self.config, **changes)
        trial.validate()
        notices = []
        for key, value in changes.items():
            if getattr(self.config, key) == value:
                continue
            setattr(self.config, key, value)
            if key in ("lr", "relu_lr"):
                for init, run in self.runs.items():
                    if (init == "relu-he") == (key == "relu_lr"):
                        run.apply_hparams({"lr": value})
                notices.append(f"{key} = {value} (applied now)")
            elif key in LIVE:
                for run in self.runs.values():
                    run.apply_hparams({key: value})
                notices.append(f"{key} = {value} (applied now, to all four)")
            else:
                notices.append(f"{key} = {value}: takes effect after Reset (the networks must be re-initialised)")
        return notices

    def to_device(self, device: torch.device) -> None:
        for run in self.runs.values():
            run.to_device(device)
        self.config.device = device.type

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"{init}/{k}": v for init, run in self.runs.items() for k, v in run.state_tensors().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for init, run in self.runs.items():
            prefix = f"{init}/"
            run.load_state_tensors({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def describe(self) -> str:
        ds = self.dataset
        sizes = "-".join(str(v) for v in (ds.n_visible, *self.config.hidden))
        return (f"Deep network {sizes}-classes on {ds.name}, four starts side by side: "
                f"{', '.join(self.runs)}")


__all__ = ["CompareConfig", "InitComparison", "NEEDS_RESET", "LIVE"]
