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

from explorer.core.data.datasets import Dataset, load_dataset
from explorer.core.engine.settings import Settings, apply_settings, setting
from explorer.core.families.base import SideBySideTrainer
from explorer.core.families.deep.trainer import INITS, MLPConfig, MLPTrainer


@dataclass
class CompareConfig(Settings):
    """The four starts' shared settings; each network's own checks (:class:`MLPConfig`) apply to them."""

    dataset: str = setting("digits", data=True)
    data_dir: str | None = setting(None, data=True)
    upscale: int = setting(1, kind="int", lo=1, hi=4, label="upscale factor", data=True)
    hidden: tuple[int, ...] = setting((64, 64, 64, 64, 64, 64), reset=True)
    inits: tuple[str, ...] = setting(INITS, reset=True)
    pretrain_epochs: int = setting(2, reset=True)
    pretrain_lr: float = setting(0.1, reset=True)
    lr: float = setting(0.5, live=True)          # fine-tuning rate of the three sigmoid networks
    # and of the ReLU one (ReLU nets want a smaller step; each start gets a fair one)
    relu_lr: float = setting(0.05, live=True)
    momentum: float = setting(0.0, live=True)
    batch_size: int = setting(32, live=True)
    stats_every: int = setting(10, live=True)
    seed: int = setting(0, data=True)
    device: str = "auto"
    download: bool = False

    def mlp_config(self, init: str) -> MLPConfig:
        names = {f.name for f in dataclasses.fields(MLPConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        lr = self.relu_lr if init == "relu-he" else self.lr
        return MLPConfig(**{**values, "hidden": tuple(self.hidden), "init": init, "lr": lr})

    def check(self) -> None:
        if not self.inits or any(i not in INITS for i in self.inits):
            raise ValueError(f"inits must be chosen from {', '.join(INITS)}")
        for init in self.inits:
            self.mlp_config(init).validate()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"], d["inits"] = list(self.hidden), list(self.inits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompareConfig:
        d = dict(d)
        for key in ("hidden", "inits"):
            if key in d:
                d[key] = tuple(d[key])
        return super().from_dict(d)


NEEDS_RESET = CompareConfig.reset_settings()
LIVE = CompareConfig.live_settings()


class InitComparison(SideBySideTrainer[MLPTrainer]):
    """Four deep networks trained in lockstep; metrics are prefixed with their start, e.g. ``relu-he/loss``."""

    family = "compare"
    held_metrics = MLPTrainer.held_metrics  # (under each run's prefix)

    def _load_configured_data(self) -> Dataset:
        c = self.config
        return load_dataset(c.dataset, c.data_dir, upscale=c.upscale, seed=c.seed, download=c.download)

    def _make_runs(self) -> dict[str, MLPTrainer]:
        return {init: MLPTrainer(self.config.mlp_config(init), dataset=self.dataset) for init in self.config.inits}

    def apply_hparams(self, changes: dict[str, Any]) -> list[str]:
        return apply_settings(self.config, changes, self._apply_live,
                              reset_reason="the networks must be re-initialised")

    def _apply_live(self, key: str, value: Any) -> str | None:
        """``lr`` goes to the three sigmoid networks, ``relu_lr`` to the ReLU one, the others to all four."""
        if key in ("lr", "relu_lr"):
            for init, run in self.runs.items():
                if (init == "relu-he") == (key == "relu_lr"):
                    run.apply_hparams({"lr": value})
            return None
        super()._apply_live(key, value)
        return "applied now, to all four"

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image_shape": tuple(self.dataset.image_shape), "inits": list(self.runs)}
        for init, run in self.runs.items():
            snap = run.snapshot()
            for key in ("stage", "stages", "grad_norm", "saturation"):
                if key in snap:
                    out[f"{init}/{key}"] = snap[key]
        return out

    def describe(self) -> str:
        ds = self.dataset
        first = next(iter(self.runs.values()))
        sizes = "-".join(str(s) for s in first.model.sizes)  # (the deep network panel's words: "784-...-10")
        return (f"Deep network {sizes} on {ds.name}, four starts side by side: "
                f"{', '.join(self.runs)}")


__all__ = ["CompareConfig", "InitComparison", "NEEDS_RESET", "LIVE"]
