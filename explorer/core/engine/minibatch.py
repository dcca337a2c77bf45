"""What the families that step through a training set in shuffled mini-batches share.

A subclass sets ``self.config`` (with ``batch_size``), ``self._device``, ``self._gen`` (a torch
generator on that device), ``self._n_train``, ``self._order`` and ``self._pos``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch

from explorer.core.data.datasets import Dataset, load_dataset
from explorer.core.engine.devices import resolve_device
from explorer.core.engine.session import Trainer
from explorer.core.families.rbm.model import NumpyUniforms, UniformSource

# the settings a data set is made from: a change to any of them reloads the data on Reset
DATA_FIELDS = ("dataset", "data_dir", "upscale", "bars_size", "seed")


class MiniBatchTrainer(Trainer):
    def __init__(self, config: Any, dataset: Dataset | None = None):
        config.validate()
        self.config = config
        self.dataset = dataset or self._load_configured_data()
        self._device = resolve_device(config.device)
        self._build()

    def _load_configured_data(self) -> Dataset:
        c = self.config
        return load_dataset(c.dataset, c.data_dir, upscale=c.upscale, bars_size=c.bars_size, seed=c.seed,
                            download=c.download)

    def _data_key(self) -> tuple:
        return tuple(getattr(self.config, f) for f in DATA_FIELDS)

    def _build(self) -> None:
        raise NotImplementedError  # each family builds its model, optimiser and data tensors

    def reset(self) -> None:
        """Re-initialise from the seed; reloads the data first if its settings changed.

        ``_build`` records ``self._loaded = self._data_key()``. If the new data cannot be loaded, the
        settings go back to describing the data that is loaded, and the error is raised for the user.
        """
        if self._data_key() != self._loaded:
            try:
                self.dataset = self._load_configured_data()
            except Exception:
                for name, value in zip(DATA_FIELDS, self._loaded):
                    setattr(self.config, name, value)
                raise
        self._build()
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.config.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self._n_train / self.config.batch_size))

    @staticmethod
    def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        """Move an optimiser's buffers (momentum, Adam's moments) to ``device``, after its parameters.
        Adam's ``step`` count stays where it is: on the CPU, as a non-capturable Adam requires."""
        for state in optimizer.state.values():
            for k, v in list(state.items()):
                if isinstance(v, torch.Tensor) and k != "step":
                    state[k] = v.to(device)

    def _switch_device(self, device: torch.device) -> int:
        """Record the new device, and carry the shuffling generator over to it (reseeded from the old one,
        so a run stays reproducible across a move). Returns that seed, for the family's other streams."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._gen, device=self._device).item())
        self._device = device
        self.config.device = device.type
        self._gen = torch.Generator(device=device).manual_seed(seed)
        return seed

    def _uniforms(self, seed: int) -> UniformSource:
        """The fastest uniform generator for the device: numpy's PCG64 on the CPU, torch's elsewhere."""
        if self._device.type == "cpu":
            return NumpyUniforms(seed)
        return UniformSource(torch.Generator(device=self._device).manual_seed(seed))

    def _new_epoch(self) -> None:
        self._order = torch.randperm(self._n_train, generator=self._gen, device=self._device)
        self._pos = 0
        self.epoch += 1

    def _next_indices(self) -> torch.Tensor:
        """Indices of the next mini-batch; the end of the training set starts a new, reshuffled epoch."""
        bs = self.config.batch_size
        idx = self._order[self._pos:self._pos + bs]
        self._pos += bs
        if self._pos >= self._n_train:
            self._new_epoch()
        return idx


def apply_settings(config: Any, changes: dict[str, Any], live: set[str], needs_reset: set[str],
                   on_live: Callable[[str, Any], None] | None = None) -> list[str]:
    """Check ``changes`` on a copy of ``config`` (ValueError with a message if any is refused), then
    apply them: live ones at once (``on_live(key, value)`` passes them on), the others for Reset."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(config)}
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    dataclasses.replace(config, **changes).validate()
    notices: list[str] = []
    for key, value in changes.items():
        if getattr(config, key) == value:
            continue
        setattr(config, key, value)
        if key in live:
            if on_live is not None:
                on_live(key, value)
            notices.append(f"{key} = {value} (applied now)")
        elif key in needs_reset:
            notices.append(f"{key} = {value}: takes effect after Reset (the model must be re-initialised)")
    return notices
