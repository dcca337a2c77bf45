"""What the families share: a trainer made from its settings, one that steps through a training set in
shuffled mini-batches, and several of those trained side by side on the same batches.

:class:`SettingsTrainer` holds the configuration (a :class:`~explorer.core.engine.settings.Settings`)
and the data set it names: Reset reloads the data when its settings changed, and a change of setting
is applied with the flags its field declares.

:class:`MiniBatchTrainer` adds a device, the shuffled order of the training examples, and the plumbing
every family needs in the same way: building from the seed, moving to another device, saving and
loading the weights with their optimiser state. A family supplies the parts that differ through hooks:
``_build_model`` and ``_load_data`` (what it builds and which tensors it keeps on the device),
``_networks``/``_optimizers`` (what moves, what the ``lr``/``momentum`` settings drive) and
``_saved_parameters`` (what is saved, under which names).

:class:`SideBySideTrainer` trains N such trainers in lockstep (the deep-network starts, the FCN with and
without skips): one engine step advances each by one step, so their curves stay aligned in steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np
import torch

from explorer.core.data.datasets import load_dataset
from explorer.core.engine.devices import resolve_device
from explorer.core.engine.session import Trainer
from explorer.core.engine.settings import Settings, apply_settings, setting
from explorer.core.engine.uniforms import NumpyUniforms, UniformSource


@dataclass
class DataSettings(Settings):
    """The settings :func:`load_dataset` makes a data set from: the first fields of the configurations of
    the families that train on the bundled or downloaded images (a subclass adds ``seed`` and ``download``)."""

    dataset: str = setting("digits", data=True)
    data_dir: str | None = setting(None, data=True)
    upscale: int = setting(1, kind="int", lo=1, hi=4, label="upscale factor", data=True)
    bars_size: int = setting(8, kind="int", lo=2, hi=64, label="bars size", data=True)


class SettingsTrainer(Trainer):
    """A trainer made from a :class:`Settings` configuration and the data set it names.

    A subclass loads its data (``_load_configured_data``) and builds itself from the seed (``_build``,
    which records ``self._loaded = self._data_key()``: what the loaded data set was made from).
    """

    config: Any        # the family's Settings dataclass (its own fields: batch_size, seed, device, ...)
    dataset: Any       # a Dataset, or the family's own kind of data (SequenceData)
    _loaded: tuple     # the data settings the loaded data set was made from

    def __init__(self, config: Any, dataset: Any | None = None):
        config.validate()
        self.config = config
        self.dataset = dataset or self._load_configured_data()
        self._build()

    def _load_configured_data(self) -> Any:
        """The data set the configuration names (loaded, generated or downloaded)."""
        c = self.config
        return load_dataset(c.dataset, c.data_dir, upscale=c.upscale, bars_size=c.bars_size, seed=c.seed,
                            download=c.download)

    def _build(self) -> None:
        raise NotImplementedError  # each family builds its model(s) from the seed

    def _data_key(self) -> tuple:
        return tuple(getattr(self.config, name) for name in self.config.data_settings())

    def _restore_data_settings(self) -> None:
        """Make the data settings describe the data set that is loaded again (after a failed reload)."""
        for name, value in zip(self.config.data_settings(), self._loaded):
            setattr(self.config, name, value)

    def reset(self) -> None:
        """Re-initialise from the seed; reloads the data first if its settings changed.

        If the new data cannot be loaded, the settings go back to describing the data that is loaded,
        and the error is raised for the user.
        """
        if self._data_key() != self._loaded:
            try:
                self.dataset = self._load_configured_data()
            except Exception:
                self._restore_data_settings()
                raise
        self._build()

    def apply_hparams(self, changes: dict[str, Any]) -> list[str]:
        return apply_settings(self.config, changes, self._apply_live)

    def _apply_live(self, key: str, value: Any) -> str | None:
        """A live setting changed (the configuration already holds it): pass it on where the model
        does not read it from the configuration. May return the words of its notice ("applied now")."""
        return None

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each tensor a weights file must hold for this model, by its name in the file."""
        raise NotImplementedError


class SavedParameter(NamedTuple):
    """One parameter as a weights file holds it."""

    name: str                                   # its tensor's name in the file
    state_prefix: str                           # its optimiser state's names start with this and a dot
    param: torch.nn.Parameter
    optimizer: torch.optim.Optimizer | None     # whose state is saved with it (None: none)


class MiniBatchTrainer(SettingsTrainer):
    """A family that steps through its training set in shuffled mini-batches, on one device.

    ``_build`` makes the model (``_build_model``), keeps the data on the device (``_load_data``, which
    sets ``_n_train``) and starts the first epoch from the seed. The default hooks take one ``model``
    trained by one ``optimizer``; a family with other parts overrides them.
    """

    # what a weights file keeps of the optimiser: "momentum" (SGD's momentum buffer, as ``<prefix>.momentum``)
    # or "all" (every tensor of its state under its own name: Adam's moments and step)
    saved_optimizer_state: ClassVar[str] = "momentum"

    model: torch.nn.Module                  # the default hooks' network ...
    optimizer: torch.optim.Optimizer        # ... and its optimiser
    _device: torch.device
    _gen: torch.Generator                   # shuffles the training set, on the device
    _n_train: int                           # training examples
    _order: torch.Tensor                    # this epoch's shuffled indices
    _pos: int                               # where the next mini-batch starts in _order

    def __init__(self, config: Any, dataset: Any | None = None):
        self._device = resolve_device(config.device)
        self._shard: tuple[int, int] | None = None         # (rank, world) under data-parallel training
        self._wrapped: torch.nn.Module | None = None       # the DistributedDataParallel wrapper then
        super().__init__(config, dataset)

    # -- building -----------------------------------------------------------------------------------
    def _build(self) -> None:
        """(Re)build from the seed: model, data tensors on the device, counters and the first order."""
        self._loaded = self._data_key()
        self._build_model()
        self._load_data()
        self._gen = torch.Generator(device=self._device).manual_seed(self.config.seed + 1)
        self.step = 0
        self.epoch = 0
        self._order = torch.randperm(self._n_train, generator=self._gen, device=self._device)
        self._pos = 0

    def _build_model(self) -> None:
        raise NotImplementedError  # each family builds its model and optimiser from the seed

    def _load_data(self) -> None:
        """Put the data set's tensors on ``self._device`` and set ``self._n_train`` (after a build or a move)."""
        raise NotImplementedError

    def _load_labelled(self, train_x: np.ndarray, test_x: np.ndarray) -> None:
        """A classifier's data on the device: the training images and labels (``_train``, ``_train_y``) and
        up to ``config.eval_samples`` held-out and training examples for the metrics (``_test_eval``,
        ``_test_eval_y``, ``_train_eval``, ``_train_eval_y``). ``train_x``/``test_x`` are the data set's
        images as the model takes them; the labels are the data set's."""
        ds, dev, n_eval = self.dataset, self._device, self.config.eval_samples
        self._train = torch.from_numpy(train_x).to(dev)
        self._train_y = torch.from_numpy(np.asarray(ds.train_y, dtype=np.int64)).to(dev)
        self._n_train = self._train.shape[0]
        n_te = min(n_eval, test_x.shape[0])
        self._test_eval = torch.from_numpy(test_x[:n_te]).to(dev)
        self._test_eval_y = torch.from_numpy(np.asarray(ds.test_y[:n_te], dtype=np.int64)).to(dev)
        n_tr = min(n_eval, self._n_train)
        self._train_eval = self._train[:n_tr]
        self._train_eval_y = self._train_y[:n_tr]

    # -- the engine's view ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.config.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self._n_train / self.config.batch_size))

    # -- parts: what moves, what the settings drive, what is saved ----------------------------------------
    def _networks(self) -> list[torch.nn.Module]:
        """The modules that move with the trainer to another device."""
        return [self.model]

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimisers the ``lr`` and ``momentum`` settings drive."""
        return [self.optimizer]

    def _other_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers with state on the device that follow other settings (e.g. a pretraining stage's)."""
        return []

    def _saved_parameters(self) -> list[SavedParameter]:
        """The parameters a weights file holds: ``model.<name>``, optimiser state ``opt.<name>.<key>``."""
        return [SavedParameter(f"model.{name}", f"opt.{name}", p, self.optimizer)
                for name, p in self.model.named_parameters()]

    def _apply_live(self, key: str, value: Any) -> str | None:
        """``lr`` and ``momentum`` go into the optimisers' parameter groups (momentum only where the
        optimiser has one: SGD, not Adam); the other live settings are read from the configuration."""
        if key in ("lr", "momentum"):
            for optimizer in self._optimizers():
                for group in optimizer.param_groups:
                    if key in group:
                        group[key] = value
        return None

    # -- devices --------------------------------------------------------------------------------------
    def to_device(self, device: torch.device) -> None:
        if device == self._device:
            return
        for network in self._networks():
            network.to(device)  # parameters move in place: the optimisers keep the same objects
        for optimizer in self._optimizers() + self._other_optimizers():
            self._move_optimizer_state(optimizer, device)
        seed = self._switch_device(device)
        self._order = self._order.to(device)
        self._moved(device, seed)
        self._load_data()

    def _moved(self, device: torch.device, seed: int) -> None:
        """The family's own state after a move to ``device`` (random streams from ``seed``, probes, chains)."""

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

    # -- weights --------------------------------------------------------------------------------------
    def _optimizer_tensors(self, saved: SavedParameter) -> dict[str, torch.Tensor]:
        """What a weights file keeps of ``saved``'s optimiser state, by key (see ``saved_optimizer_state``)."""
        if saved.optimizer is None:
            return {}
        state = saved.optimizer.state.get(saved.param, {})
        if self.saved_optimizer_state == "momentum":
            buf = state.get("momentum_buffer")
            return {} if buf is None else {"momentum": buf}
        return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for saved in self._saved_parameters():
            out[saved.name] = saved.param.data
            for key, value in self._optimizer_tensors(saved).items():
                out[f"{saved.state_prefix}.{key}"] = value
        out.update(self._extra_state())
        return out

    def _extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors a weights file keeps besides the parameters (a stage, a probe, a chain's velocity)."""
        return {}

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """What :meth:`load_state_tensors` requires: ``inspect`` checks a file against it without loading it."""
        return {saved.name: tuple(int(s) for s in saved.param.shape) for saved in self._saved_parameters()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Every saved parameter must be there with its shape (ValueError naming it otherwise); optimiser
        state is taken where it is there and fits."""
        for saved in self._saved_parameters():
            t = tensors.get(saved.name)
            if t is None:
                raise ValueError(f"weights file has no tensor {saved.name!r}")
            if tuple(t.shape) != tuple(saved.param.shape):
                raise ValueError(f"tensor {saved.name!r} has shape {tuple(t.shape)}, "
                                 f"the model needs {tuple(saved.param.shape)}")
            if saved.param.is_floating_point() and not t.is_floating_point():
                # copy_ would convert the integers: the weights' bytes read as something else
                raise ValueError(f"tensor {saved.name!r} holds {str(t.dtype).removeprefix('torch.')}, "
                                 f"the model needs floating-point numbers")
        self._before_loading(tensors)
        for saved in self._saved_parameters():  # asked again: _before_loading may make new optimisers
            p = saved.param
            with torch.no_grad():
                p.copy_(tensors[saved.name].to(p.device, p.dtype))
            if saved.optimizer is not None:
                self._load_optimizer_state(saved, tensors)
        self._after_loading(tensors)

    def _load_optimizer_state(self, saved: SavedParameter, tensors: dict[str, torch.Tensor]) -> None:
        p, optimizer = saved.param, saved.optimizer
        assert optimizer is not None
        # state the tensors do not hold is dropped, not kept: going back to weights saved before an optimiser
        # had stepped (after a divergence, say) must not keep that optimiser's later, NaN, state
        if self.saved_optimizer_state == "momentum":
            t = tensors.get(f"{saved.state_prefix}.momentum")
            if t is not None and tuple(t.shape) == tuple(p.shape):
                optimizer.state[p]["momentum_buffer"] = t.to(p.device, p.dtype).clone()
            else:
                optimizer.state.get(p, {}).pop("momentum_buffer", None)
            return
        prefix = f"{saved.state_prefix}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if state:
            optimizer.state[p] = {k: (v.clone() if k == "step" else v.to(p.device, p.dtype).clone())
                                  for k, v in state.items()}
        else:
            optimizer.state.pop(p, None)

    def _before_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        """After the checks, before the weights are copied (a fresh optimiser, the saved stage)."""

    def _after_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        """After the weights are copied (the extra state, caches to forget)."""

    # -- batches --------------------------------------------------------------------------------------
    def _new_epoch(self) -> None:
        self._order = torch.randperm(self._n_train, generator=self._gen, device=self._device)
        self._pos = 0
        self.epoch += 1

    def _next_indices(self) -> torch.Tensor:
        """Indices of the next mini-batch; the end of the training set starts a new, reshuffled epoch.
        Under data-parallel training (:meth:`set_shard`) this rank's slice of the global mini-batch."""
        bs = self.config.batch_size
        idx = self._order[self._pos:self._pos + bs]
        self._pos += bs
        if self._pos >= self._n_train:
            self._new_epoch()
        if self._shard is not None:
            rank, world = self._shard
            idx = torch.tensor_split(idx, world)[rank]
        return idx

    # -- data-parallel training (explorer.core.engine.distributed) ------------------------------------
    def set_shard(self, rank: int, world: int, wrapped: torch.nn.Module | None) -> None:
        """Train as rank ``rank`` of ``world``: take this rank's slice of every global mini-batch, and step
        through ``wrapped`` (the DistributedDataParallel wrapper of :meth:`distributed_module`)."""
        problem = self.shard_problem(self.config.batch_size, world)
        if problem:
            raise ValueError(problem)
        self._shard = (rank, world)
        self._wrapped = wrapped

    def shard_problem(self, batch_size: int, world: int) -> str | None:
        """Why ``world`` ranks cannot share global batches of ``batch_size`` (None when they can)."""
        bs = int(batch_size)
        tail = self._n_train % bs
        if bs < world or 0 < tail < world:  # a rank with no examples would take the mean of nothing (NaN)
            what = f"a batch of {bs}" if bs < world else f"the last batch of each epoch ({tail} of {self._n_train})"
            return f"{world} ranks cannot share {what}: every rank needs at least one example"
        return None

    def position_tensors(self) -> dict[str, torch.Tensor]:
        """Where the trainer is in its data, as CPU tensors: the counters (step, epoch, the next batch's
        start), this epoch's order and the shuffling generator's state. With :meth:`state_tensors`, what
        another rank needs to take the same next batches from the same weights."""
        counters = torch.tensor([int(self.step), int(self.epoch), int(self._pos)], dtype=torch.int64)
        return {"counters": counters, "order": self._order.detach().cpu(), "generator": self._gen.get_state()}

    def load_position_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take the position :meth:`position_tensors` gave (another rank's)."""
        step, epoch, pos = (int(v) for v in tensors["counters"].tolist())
        self.step, self.epoch, self._pos = step, epoch, pos
        self._order = tensors["order"].to(self._device)
        self._gen.set_state(tensors["generator"])

    def distributed_module(self) -> torch.nn.Module:
        """The module a training step's loss goes through (what data-parallel training wraps)."""
        return self.model

    def _trained(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module``, or its data-parallel wrapper when training is distributed (the step's forward pass)."""
        wrapped = self._wrapped
        return wrapped if wrapped is not None and module is self.distributed_module() else module


RunT = TypeVar("RunT", bound=MiniBatchTrainer)


class SideBySideTrainer(SettingsTrainer, Generic[RunT]):
    """N networks trained side by side: the same data, the same batches in the same order, the same seed.

    A subclass makes the runs from its configuration (``_make_runs``: name -> trainer, all on the
    shared ``self.dataset``). Metrics, snapshots and saved tensors are prefixed with the run's name,
    e.g. ``relu-he/loss``. A live setting is passed on to every run (``_apply_live``).
    """

    runs: dict[str, RunT]

    def _make_runs(self) -> dict[str, RunT]:
        raise NotImplementedError

    def _build(self) -> None:
        self._loaded = self._data_key()
        self.runs = self._make_runs()
        self.step = 0
        self.epoch = 0

    @property
    def first_run(self) -> RunT:
        return next(iter(self.runs.values()))

    @property
    def device(self) -> torch.device:
        return self.first_run.device

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.config.batch_size * len(self.runs)

    @property
    def steps_per_epoch(self) -> int:
        return self.first_run.steps_per_epoch

    def train_step(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, run in self.runs.items():
            for key, value in run.train_step().items():
                out[f"{name}/{key}"] = value
        self.step += 1
        self.epoch = min(run.epoch for run in self.runs.values())
        return out

    def evaluate(self) -> dict[str, float]:
        return {f"{name}/{k}": v for name, run in self.runs.items() for k, v in run.evaluate().items()}

    def _apply_live(self, key: str, value: Any) -> str | None:
        for run in self.runs.values():
            run.apply_hparams({key: value})
        return None

    def to_device(self, device: torch.device) -> None:
        for run in self.runs.values():
            run.to_device(device)
        self.config.device = device.type

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"{name}/{k}": v for name, run in self.runs.items() for k, v in run.state_tensors().items()}

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {f"{name}/{k}": shape for name, run in self.runs.items() for k, shape in run.parameter_shapes().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, run in self.runs.items():
            prefix = f"{name}/"
            run.load_state_tensors({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})


__all__ = ["DataSettings", "SettingsTrainer", "MiniBatchTrainer", "SideBySideTrainer", "SavedParameter"]
