"""Deep multilayer perceptrons: the vanishing gradient, greedy layerwise pretraining, and ReLU + He init.

The lecture's deep architecture, trained by backpropagation on the cross-entropy of a softmax output:

    net_j = sum_i W_ij x_i + b_j,      x_(j) = sigma(net_j)          (hidden layers)
    dloss/dW_ij = delta_j x_i,         delta_j = [sum delta_(j+1) W] sigma'(net_j)

With sigmoid units sigma' <= 1/4, so with small weights every layer shrinks delta: the lower layers
hardly learn (the vanishing gradient). Four ways to start (``INITS``):

* ``random``: sigmoid net, weights N(0, 0.01^2) (std 0.01), biases 0 -- shows the vanishing gradient;
* ``rbm``: sigmoid net, each hidden layer first trained greedily as an RBM by CD-1 (layer 1 on x,
  layer 2 on the codes p(h|x) of layer 1, ...), then fine-tuned by backprop;
* ``ae``: the same with one-hidden-layer autoencoders (codes h = sigmoid(W x + b));
* ``relu-he``: ReLU hidden layers with He (kaiming normal) weights, no pretraining ("Is it always
  necessary? Answer in 2014: No!").

Lower layers' codes are computed on the fly from each mini-batch through the already pretrained
(frozen) layers; the grey levels/probabilities are used as they are (no binarisation). A pretrained
layer's weights are copied into the MLP's Linear layer as soon as its stage ends
(RBM: weight = W^T, bias = d; autoencoder: weight = W, bias = b). The output layer always starts random.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F

from explorer.core.data.datasets import Dataset
from explorer.core.engine.settings import setting
from explorer.core.engine.threads import ProductTeam
from explorer.core.families.autoencoder.trainer import Autoencoder
from explorer.core.families.backward import mm_input_grad, mm_weight_grad
from explorer.core.families.base import DataSettings, MiniBatchTrainer, SavedParameter
from explorer.core.families.rbm.model import RBM, ContrastiveDivergence
from explorer.core.limits import FLOAT_BYTES, check_memory

INITS = ("random", "rbm", "ae", "relu-he")
RANDOM_STD = 0.01
SATURATION_LOW, SATURATION_HIGH = 0.05, 0.95
HIST_BINS = 20
# held-out examples whose hidden activations the panel's saturation and histograms count (with 128-unit
# layers, 16,384 values a layer for 20 bins); 256 doubled the snapshot's forward and count (2.4 -> 1.4 ms
# on one thread for 784-128x5-10), which held the panel to 12-14 snapshots a second within its 5% share of
# the training process (docs/performance.md)
N_SNAPSHOT = 128
_N_CLASSES = {"digits": 10, "mnist": 10, "fashion-mnist": 10, "bars": 2}


N_STAGE_PROBES = 8


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) with rows * cols == n and rows <= cols as close to square as n allows (64 -> 8x8,
    500 -> 20x25, a prime p -> 1 x p): how a layer's code units are laid out as a picture."""
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows, n // rows


# -- model ----------------------------------------------------------------------------------------
class Backprop(NamedTuple):
    """One mini-batch through :meth:`DeepMLP.backprop`: the forward pass and every layer's gradients."""

    logits: torch.Tensor
    loss: torch.Tensor
    hiddens: list[torch.Tensor]          # the L-1 hidden layers' activations
    weight_grads: list[torch.Tensor]     # dloss/dW_l, bottom layer first
    bias_grads: list[torch.Tensor]       # dloss/db_l
    deltas: list[torch.Tensor]           # dloss/dnet_l (the lecture's delta), (batch, units)


class DeepMLP(torch.nn.Module):
    """Linear layers with sigmoid or ReLU hidden units; the output layer gives logits (softmax in the loss)."""

    def __init__(self, sizes: Sequence[int], activation: str = "sigmoid", device: str | torch.device = "cpu"):
        super().__init__()
        if activation not in ("sigmoid", "relu"):
            raise ValueError(f"activation must be sigmoid or relu, got {activation!r}")
        self.sizes = [int(s) for s in sizes]
        self.activation = activation
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b, device=device) for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def linears(self) -> list[torch.nn.Linear]:
        """The layers as the Linear layers they are (a ModuleList hands them out as plain Modules)."""
        return [cast(torch.nn.Linear, layer) for layer in self.layers]

    def act(self, net: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(net) if self.activation == "sigmoid" else torch.relu(net)

    def forward_all(self, x: torch.Tensor, retain: bool = False
                    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """(logits, pre-activations net_l of all L layers, activations of the L-1 hidden layers).

        ``retain``: keep dloss/dnet_l (the lecture's delta) in ``net.grad`` after ``backward``.
        """
        nets, hiddens = [], []
        h = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.linears):
            # F.linear, not layer(h): the same product without a module call's bookkeeping (no hooks are
            # set on these layers), a microsecond or two each in a step of a millisecond
            net = F.linear(h, layer.weight, layer.bias)
            if retain and net.requires_grad:
                net.retain_grad()
            nets.append(net)
            if i < last:
                h = self.act(net)
                hiddens.append(h)
            else:
                h = net
        return h, nets, hiddens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[0]

    @torch.no_grad()
    def backprop(self, x: torch.Tensor, y: torch.Tensor) -> Backprop:
        """The cross-entropy of a mini-batch and its gradients, by the lecture's delta rule written out.

        From the top: delta_L = dloss/dlogits (softmax minus one-hot, over the batch size); for each layer
        dloss/dW = delta^T x_in and dloss/db = the sum of delta over the batch; the layer below gets
        delta = (delta W) sigma'(net), with sigma' = h (1 - h) for sigmoid and [h > 0] for ReLU. The
        products are those autograd would pick (:mod:`explorer.core.families.backward`).

        Why by hand: autograd records a graph in the forward pass and walks it back, and on a CPU that
        bookkeeping costs as much as some of this network's small matrix products (a step of the
        784-128x5-10 net at batch 64, one thread: 1.05-1.15 ms with autograd, 0.96-1.02 ms like this;
        ``benchmarks/backprop_cost.py``, 2026-12-06). The deltas, which the vanishing-gradient view
        shows, come with it. Each line calls the kernel that autograd's own backward of
        ``F.cross_entropy``, ``F.linear`` and the activation calls, so every gradient is autograd's,
        bit for bit (``tests/test_deep.py``).
        """
        logits, _, hiddens = self.forward_all(x)
        logp = torch.log_softmax(logits, 1)
        loss, total_weight = torch.ops.aten.nll_loss_forward(logp, y, None, 1, -100)  # 1: the mean
        ones = torch.ones((), dtype=loss.dtype, device=loss.device)
        g = torch.ops.aten.nll_loss_backward(ones, logp, y, None, 1, -100, total_weight)
        delta = torch.ops.aten._log_softmax_backward_data(g, logp, 1, logp.dtype)
        inputs = [x, *hiddens]
        weight_grads, bias_grads, deltas = [], [], []  # from the top layer down; reversed at the end
        for i in range(len(self.layers) - 1, -1, -1):
            deltas.append(delta)
            weight_t = self.linears[i].weight.t()  # F.linear is addmm(bias, input, weight^T)
            weight_grads.append(mm_weight_grad(delta, inputs[i], weight_t).t())
            bias_grads.append(delta.sum(0))
            if i:
                back = mm_input_grad(delta, inputs[i], weight_t)
                if self.activation == "sigmoid":
                    delta = torch.ops.aten.sigmoid_backward(back, inputs[i])
                else:
                    delta = torch.ops.aten.threshold_backward(back, inputs[i], 0)
        return Backprop(logits, loss, hiddens, weight_grads[::-1], bias_grads[::-1], deltas[::-1])


def saturation(h: torch.Tensor, activation: str) -> torch.Tensor:
    """Share (0-dim tensor) of the unit activations in ``h`` that are saturated.

    Sigmoid: below 0.05 or above 0.95 (sigma' < 0.05: almost no gradient passes). ReLU: exactly 0 ("dead").
    """
    if activation == "relu":
        bad = h == 0
    else:
        bad = (h < SATURATION_LOW) | (h > SATURATION_HIGH)
    return bad.float().mean()


def grad_stats(layers: Sequence[torch.nn.Linear], nets: Sequence[torch.Tensor],
               hiddens: Sequence[torch.Tensor], activation: str,
               deltas: Sequence[torch.Tensor | None] | None = None) -> dict[str, torch.Tensor]:
    """Per-layer statistics after the backward pass.

    grad_norm_l: ||dloss/dW_l|| (Frobenius), delta_mean_l: mean |dloss/dnet_l| over batch and units,
    saturation_l (hidden layers only): see :func:`saturation`. Layers are numbered from 1 at the input.
    ``deltas``: dloss/dnet_l of each layer (as ``torch.autograd.grad`` hands them back); None: the
    pre-activations' ``.grad`` (kept with ``retain_grad``). All values are detached 0-dim tensors on the
    layers' device (no synchronisation).

    Each statistic is taken for all layers in one call (``torch._foreach_norm``: the L2 norm of each
    weight gradient, the L1 norm of each delta, the count of saturated units): on the CPU a step's
    small operations cost more in dispatch than in arithmetic, and one measurement was 43 operations.
    The grad norms and saturations are the same numbers as those of :func:`saturation` and
    ``linalg.vector_norm`` bit for bit; the delta means sum in another order than ``abs().mean()``
    (agreeing to float32 rounding, a few parts in a million).
    """
    dev = layers[0].weight.device
    grads = [layer.weight.grad for layer in layers]
    if deltas is None:
        deltas = [net.grad for net in nets]
    out: dict[str, torch.Tensor] = {}
    if all(g is not None for g in grads):
        norms: Sequence[torch.Tensor] = torch._foreach_norm([cast(torch.Tensor, g).detach() for g in grads])
    else:
        norms = [torch.zeros((), device=dev) if g is None else torch.linalg.vector_norm(g.detach()) for g in grads]
    for i, norm in enumerate(norms, 1):
        out[f"grad_norm_{i}"] = norm
    if all(d is not None for d in deltas):
        ds = [cast(torch.Tensor, d).detach() for d in deltas]
        means: Sequence[torch.Tensor] = torch._foreach_div(torch._foreach_norm(ds, 1),
                                                           [float(d.numel()) for d in ds])
    else:
        means = [torch.zeros((), device=dev) if d is None else d.detach().abs().mean() for d in deltas]
    for i, mean in enumerate(means, 1):
        out[f"delta_mean_{i}"] = mean
    for i, share in enumerate(saturations([h.detach() for h in hiddens], activation), 1):
        out[f"saturation_{i}"] = share
    return out


def saturations(hiddens: Sequence[torch.Tensor], activation: str) -> list[torch.Tensor]:
    """:func:`saturation` of each of ``hiddens`` (0-dim tensors), the same numbers in a few calls for all.

    A unit counts where clamping it into [0.05, 0.95] changes it (sigmoid), or where it is 0 (ReLU);
    the count is an L0 norm (the number of non-zeros), divided by the number of units. Exact: the
    difference of two floats is 0 only where they are equal, and counts below 2^24 are exact in float32.
    (A NaN unit, which :func:`saturation` does not count, counts here: the run has diverged then.)
    """
    if not hiddens:
        return []
    sizes = [float(h.numel()) for h in hiddens]
    hs = list(hiddens)
    if activation == "relu":
        nonzero = torch._foreach_norm(hs, 0)
        counts = torch._foreach_add(torch._foreach_mul(nonzero, -1.0), sizes)  # units - non-zero units
    else:
        inside = torch._foreach_clamp_max(torch._foreach_clamp_min(hs, SATURATION_LOW), SATURATION_HIGH)
        counts = torch._foreach_norm(torch._foreach_sub(hs, inside), 0)
    return list(torch._foreach_div(counts, sizes))


def unit_histograms(hiddens: Sequence[torch.Tensor], bins: int = HIST_BINS) -> torch.Tensor:
    """Counts of each layer's activations in ``bins`` equal bins over [0, 1], (layers, bins) float32: what
    ``torch.histc(h, bins, 0, 1)`` counts for each h, bin for bin, in one count for all the layers.

    For sigmoid units, whose values lie in [0, 1]: a value's bin is floor(value * bins), 1.0 in the last,
    as histc places it (checked against histc at every bin edge and its float neighbours in
    ``tests/test_deep.py``). A NaN (a run that has diverged) counts in the first bin, where histc would
    leave it out. Why not histc: five calls took 0.91 ms for the deep MLP's five layers of 256 x 128
    values (128 x 128 since: ``N_SNAPSHOT``), this 0.35 ms (one thread, ``benchmarks/backprop_cost.py``,
    2026-12-06), and the MLP panel's snapshot must stay under 2.5 ms to be taken 20 times a second within its
    5% share of the training process.
    """
    n = len(hiddens)
    if not n:
        return torch.zeros((0, bins))
    # layer l's values count in keys [l * bins, (l + 1) * bins); int32 keys: half the memory traffic of int64
    keys = torch.cat([h.reshape(-1).mul(bins).int().clamp_(0, bins - 1).add_(layer * bins)
                      for layer, h in enumerate(hiddens)])
    return torch.bincount(keys, minlength=n * bins).reshape(n, bins).float()


def model_bytes(sizes: Sequence[int], batch_size: int) -> int:
    """Memory a fully connected stack of ``sizes`` needs to train: weights with their gradients, momentum,
    pretraining copies and snapshot copies (about 5 of each), and a batch's activations and deltas."""
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return FLOAT_BYTES * (5 * params + 4 * batch_size * sum(sizes))


# -- configuration --------------------------------------------------------------------------------
@dataclass
class MLPConfig(DataSettings):
    """Everything that defines a deep MLP run; saved as JSON in a run folder."""

    hidden: tuple[int, ...] = setting((64, 64, 64, 64, 64, 64), reset=True)
    init: str = setting("random", choices=INITS, reset=True)
    pretrain_epochs: int = setting(5, kind="int", lo=1, hi=100_000, label="pretraining epochs (per layer)",
                                   reset=True)
    pretrain_lr: float = setting(0.1, kind="number", lo=0, above=True, label="pretraining learning rate",
                                 reset=True)
    lr: float = setting(0.5, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.0, kind="number", lo=0, hi=1, below=True, live=True)
    batch_size: int = setting(32, kind="int", lo=1, live=True)
    seed: int = setting(0, kind="int", lo=0, data=True)
    device: str = "auto"
    download: bool = False
    stats_every: int = setting(10, kind="int", lo=1, hi=1_000_000, live=True)
    eval_samples: int = setting(1000, kind="int", lo=1, hi=1_000_000)

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):
            self.hidden = tuple(self.hidden)

    def check(self) -> None:
        h = self.hidden
        if (not isinstance(h, (tuple, list)) or not h
                or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= 20000
                           for k in h)):
            raise ValueError(f"hidden layers must be a list of whole numbers between 1 and 20000, got {h!r}")

    @property
    def activation(self) -> str:
        return "relu" if self.init == "relu-he" else "sigmoid"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLPConfig:
        d = dict(d)
        if isinstance(d.get("hidden"), (list, tuple)):
            d["hidden"] = tuple(int(k) for k in d["hidden"])
        return super().from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = [int(k) for k in self.hidden]
        return d


# Changes that only take effect after re-initialising the model, and those applied between two steps.
NEEDS_RESET = MLPConfig.reset_settings()
LIVE = MLPConfig.live_settings()


# -- trainer --------------------------------------------------------------------------------------
class MLPTrainer(MiniBatchTrainer):
    """Trains a :class:`DeepMLP` classifier, after greedy layerwise pretraining for init "rbm"/"ae".

    Stages: ``pretrain layer k (RBM|AE)`` for each hidden layer (rbm/ae only), then ``fine-tune``.
    A pretraining stage lasts ``pretrain_epochs`` epochs; its end (natural, or :meth:`end_stage`) is
    also an epoch end (a partial pass is counted as an epoch), so engine epochs never mix stages.

    Metrics per step: pretraining ``{"pretrain_error"}`` (mean squared error per unit of the current
    layer's reconstruction of its input codes); fine-tuning ``{"loss", "accuracy", grad_norm_l,
    delta_mean_l, saturation_l}``. The statistics are measured every ``stats_every`` fine-tuning steps
    (the first fine-tuning step always); the steps in between repeat the last measured (detached)
    tensors, so every fine-tuning row has the same keys.
    """

    family = "mlp"
    held_metrics = ("grad_norm_", "delta_mean_", "saturation_")  # measured every stats_every steps (see grad_stats)
    model: DeepMLP

    def _load_configured_data(self) -> Dataset:
        ds = super()._load_configured_data()
        if ds.train_y is None or ds.test_y is None:
            raise ValueError(f"the data set {ds.name} has no labels: an MLP classifier needs them")
        return ds

    # -- construction -------------------------------------------------------------------------
    def _build_model(self) -> None:
        cfg, ds, dev = self.config, self.dataset, self._device
        self._dbn_v: torch.Tensor | None = None  # the deep belief net's persistent chains (top RBM's visibles)
        self._dbn_uniform = self._uniforms(cfg.seed + 300)
        self.n_classes = int(max(int(ds.train_y.max()), int(ds.test_y.max())) + 1)
        sizes = [ds.n_visible, *[int(k) for k in cfg.hidden], self.n_classes]
        check_memory(f"hidden layers {','.join(str(int(k)) for k in cfg.hidden)}", model_bytes(sizes, cfg.batch_size),
                     "hidden")
        self.model = DeepMLP(sizes, cfg.activation, device=dev)
        gen = torch.Generator().manual_seed(cfg.seed)
        with torch.no_grad():
            for i, layer in enumerate(self.model.linears):
                fan_in = layer.in_features
                hidden_layer = i < len(self.model.layers) - 1
                if cfg.init == "relu-he":
                    # He: N(0, 2/fan_in) for ReLU layers; the output layer N(0, 1/fan_in)
                    std = math.sqrt((2.0 if hidden_layer else 1.0) / fan_in)
                else:
                    std = RANDOM_STD
                layer.weight.copy_((torch.randn(layer.weight.shape, generator=gen) * std).to(dev))
                layer.bias.zero_()
        self.optimizer = self._fine_tuning_optimizer()
        kind = {"rbm": "RBM", "ae": "AE"}.get(cfg.init)
        n_hidden = len(cfg.hidden)
        self.stages: list[str] = ([f"pretrain layer {k} ({kind})" for k in range(1, n_hidden + 1)] if kind else [])
        self.stages.append("fine-tune")
        self.pretrained: list[RBM | Autoencoder] = []  # the finished RBMs/autoencoders, bottom first
        self._finished_stage: tuple[int, RBM | Autoencoder] | None = None
        self._last_stats: dict[str, torch.Tensor] | None = None
        self._ft_step = 0
        self._enter_stage(0)

    def _load_data(self) -> None:
        ds = self.dataset
        self._load_labelled(ds.train_x, ds.test_x)
        self._snap_x = torch.from_numpy(ds.test_x[:N_SNAPSHOT]).to(self._device)

    # -- stages ---------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.model.layers)

    @property
    def n_pretrain_stages(self) -> int:
        return len(self.stages) - 1

    @property
    def fine_tuning(self) -> bool:
        return self.stage_index >= self.n_pretrain_stages

    @property
    def stage(self) -> str:
        return self.stages[self.stage_index]

    def _enter_stage(self, index: int) -> None:
        cfg, dev = self.config, self._device
        self.stage_index = index
        self._stage_steps = 0
        self._pre_module: RBM | Autoencoder | None = None
        self._cd: ContrastiveDivergence | None = None
        self._pre_opt: torch.optim.Optimizer | None = None
        if self.fine_tuning:
            return
        layer = self.model.linears[index]
        n_in, n_out = layer.in_features, layer.out_features
        gen = torch.Generator().manual_seed(cfg.seed + 100 + index)
        if cfg.init == "rbm":
            self._pre_module = RBM(n_in, n_out, init_std=RANDOM_STD, generator=gen, device=dev)
            # start from the autoencoder's sigmoid-Glorot scale, not Hinton's 0.01: with the few epochs a
            # lesson affords, CD from tiny weights learns too little and the stack stays as flat as a random one
            bound = 4.0 * math.sqrt(6.0 / (n_in + n_out))
            with torch.no_grad():
                self._pre_module.W.copy_((torch.rand(n_in, n_out, generator=gen) * 2 - 1).mul_(bound).to(dev))
            self._cd = ContrastiveDivergence(self._pre_module, lr=cfg.pretrain_lr,
                                             uniform=self._uniforms(cfg.seed + 200 + index))
        else:
            self._pre_module = Autoencoder(n_in, n_out, generator=gen, device=dev)
            self._pre_opt = torch.optim.SGD(self._pre_module.parameters(), lr=cfg.pretrain_lr)

    def _fine_tuning_optimizer(self) -> torch.optim.SGD:
        """SGD over the MLP's weights, fresh (no momentum yet). torch's default implementation: its
        ``foreach`` and ``fused`` forms were no faster for the deep MLP on a 2-core CPU (2026-12-05, 9
        interleaved rounds: 1,059, 1,060 and 1,045 us a step)."""
        return torch.optim.SGD(self.model.parameters(), lr=self.config.lr, momentum=self.config.momentum)

    def _stage_length(self) -> int:
        return self.config.pretrain_epochs * self.steps_per_epoch

    def _copy_pretrained(self, index: int, module: RBM | Autoencoder) -> None:
        layer = self.model.linears[index]
        with torch.no_grad():
            if isinstance(module, RBM):
                layer.weight.copy_(module.W.t())
                layer.bias.copy_(module.d)
            else:
                layer.weight.copy_(module.W)
                layer.bias.copy_(module.b)

    def _advance(self) -> None:
        """End the current pretraining stage: copy its weights into the MLP and start the next stage."""
        module = self._pre_module
        assert module is not None
        self._copy_pretrained(self.stage_index, module)
        self.pretrained.append(module)
        self._finished_stage = (self.stage_index, module)  # the next evaluation reports its final error
        if self._pos != 0:  # a stage ends with an epoch: count the partial pass and reshuffle
            self._new_epoch()
        self._enter_stage(self.stage_index + 1)
        if self.fine_tuning:
            # fine-tuning starts with fresh momentum on the copied weights
            self.optimizer = self._fine_tuning_optimizer()

    def end_stage(self) -> None:
        """Finish the current pretraining stage now and go on to the next (no-op while fine-tuning)."""
        if not self.fine_tuning:
            self._advance()

    def codes(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """The input of layer ``upto`` (0-based): ``x`` through the frozen hidden layers below it."""
        with torch.no_grad():
            for layer in self.model.layers[:upto]:
                x = self.model.act(layer(x))
        return x

    # -- engine interface -----------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next mini-batch (images, labels); a new epoch reshuffles."""
        idx = self._next_indices()
        return self._train.index_select(0, idx), self._train_y.index_select(0, idx)

    def _pretrain_step(self) -> dict[str, torch.Tensor]:
        x, _ = self.next_batch()
        v = self.codes(x, self.stage_index)
        if self._cd is not None:
            # the RBM's visible units are binary (the lecture): sample them from the codes' probabilities;
            # its products on the training thread's threads, the draws and sums on one (as the RBM family)
            with ProductTeam(self._device) as team:
                err = self._cd.step(self._cd.uniform.bernoulli(v), team).recon_error
        else:
            ae, opt = self._pre_module, self._pre_opt
            assert isinstance(ae, Autoencoder) and opt is not None, "a stage without CD trains an autoencoder"
            loss = ae.backprop(v, v)
            opt.step()
            err = loss / ae.n_in
        self.step += 1
        self._stage_steps += 1
        if self._stage_steps >= self._stage_length():
            self._advance()
        return {"pretrain_error": err}

    def _finetune_step(self) -> dict[str, torch.Tensor]:
        x, y = self.next_batch()
        measure = self._last_stats is None or self._ft_step % self.config.stats_every == 0
        # no autograd backward: were this family ever trained data-parallel (it is not, see
        # explorer.core.engine.distributed.FAMILIES), DDP would need one to average the gradients
        bp = self.model.backprop(x, y)
        for layer, weight_grad, bias_grad in zip(self.model.linears, bp.weight_grads, bp.bias_grads):
            layer.weight.grad = weight_grad
            layer.bias.grad = bias_grad
        if measure:
            self._last_stats = grad_stats(self.model.linears, [], bp.hiddens, self.model.activation,
                                          deltas=bp.deltas)
        self.optimizer.step()
        assert self._last_stats is not None, "the first fine-tuning step measures"
        acc = (bp.logits.argmax(1) == y).float().mean()
        self.step += 1
        self._ft_step += 1
        out = {"loss": bp.loss, "accuracy": acc}
        out.update(self._last_stats)
        return out

    def train_step(self) -> dict[str, torch.Tensor]:
        if self.fine_tuning:
            return self._finetune_step()
        return self._pretrain_step()

    @torch.no_grad()
    def _recon_error(self, v: torch.Tensor, module: RBM | Autoencoder | None = None) -> torch.Tensor:
        m = self._pre_module if module is None else module
        assert m is not None, "called during pretraining, or for a finished stage's module"
        recon = m.reconstruct(v) if isinstance(m, RBM) else m(v)[1]
        return F.mse_loss(recon, v)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Pretraining: the held-out reconstruction error of the layer in training; right after a stage
        ended (its last epoch's evaluation), that finished layer's. Fine-tuning: accuracy and loss."""
        out: dict[str, float] = {}
        finished = getattr(self, "_finished_stage", None)
        if finished is not None:
            self._finished_stage = None
            index, module = finished
            out["pretrain_heldout_error"] = float(self._recon_error(self.codes(self._test_eval, index), module).cpu())
        elif not self.fine_tuning:
            v = self.codes(self._test_eval, self.stage_index)
            return {"pretrain_heldout_error": float(self._recon_error(v).cpu())}
        if not self.fine_tuning:
            return out
        vals = []
        for x, y in ((self._test_eval, self._test_eval_y), (self._train_eval, self._train_eval_y)):
            logits = self.model(x)
            vals += [(logits.argmax(1) == y).float().mean(), F.cross_entropy(logits, y)]
        acc_te, loss_te, acc_tr, loss_tr = torch.stack(vals).cpu().tolist()
        return {**out, "heldout_accuracy": acc_te, "heldout_loss": loss_te,
                "train_accuracy": acc_tr, "train_loss": loss_tr}

    @torch.no_grad()
    def layer_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """(saturation (L-1,), activation histogram (L-1, 20)) of the hidden layers on held-out examples."""
        _, _, hiddens = self.model.forward_all(self._snap_x)
        act = self.model.activation
        sat = torch.stack(saturations(hiddens, act))
        if act == "sigmoid":
            hist = unit_histograms(hiddens)
        else:
            hist = torch.stack([torch.histc(h.float(), bins=HIST_BINS, min=0.0, max=max(float(h.max()), 1e-6))
                                for h in hiddens])
        return (sat.cpu().numpy().astype(np.float32), hist.cpu().numpy().astype(np.float32))

    @torch.no_grad()
    def snapshot(self) -> dict[str, Any]:
        def cpu(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy().copy()

        L = self.n_layers
        if self.stage_index == 0 and self._pre_module is not None:
            m = self._pre_module  # the first layer is being learned now: show it
            filters = m.W.t() if isinstance(m, RBM) else m.W
        else:
            filters = self.model.linears[0].weight
        sat, hist = self.layer_statistics()
        stats = self._last_stats
        if stats is None:
            delta = np.zeros(L, np.float32)
            gnorm = np.zeros(L, np.float32)
        else:
            delta = cpu(torch.stack([stats[f"delta_mean_{i}"] for i in range(1, L + 1)]))
            gnorm = cpu(torch.stack([stats[f"grad_norm_{i}"] for i in range(1, L + 1)]))
        return {
            **self.stage_views(),
            "image_shape": tuple(self.dataset.image_shape),
            "stage": int(self.stage_index),
            "stages": list(self.stages),
            "filters": cpu(filters),
            "saturation": sat,
            "activation_hist": hist,
            "delta_mean": delta,
            "grad_norm": gnorm,
            **({"dbn_samples": cpu(dream)} if (dream := self.dbn_sample()) is not None else {}),
        }

    def layer_grid(self, index: int) -> tuple[int, int]:
        """How layer ``index``'s (0-based) input units are laid out as a picture: the images themselves
        for the first layer, a near-square grid of the code units for the layers above."""
        if index == 0:
            return tuple(self.dataset.image_shape)
        return grid_shape(self.model.linears[index].in_features)

    @torch.no_grad()
    def stage_views(self, n_probe: int = N_STAGE_PROBES, n_heat: int = 32) -> dict[str, Any]:
        """What the RBM or autoencoder panel would show for the layer being pretrained, in the same keys
        as those panels' snapshots, under ``stage_`` (empty while fine-tuning).

        The inputs are the codes of the frozen layers below for fixed held-out examples (the images for
        layer 1), laid out by :meth:`layer_grid`. RBM: ``stage_probe_input``, ``stage_probe_recon``
        (mean-field p(x|p(h|x))), ``stage_probe_sample`` (one Gibbs step), ``stage_filters`` (columns of W),
        ``stage_hidden_probs``. Autoencoder: ``stage_probe_clean``, ``stage_probe_recon``, ``stage_filters``
        (rows of W), ``stage_codes``.
        """
        m = self._pre_module
        if self.fine_tuning or m is None:
            return {}

        def cpu(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy().copy()

        v = self.codes(self._snap_x[:max(n_probe, n_heat)], self.stage_index)
        probe, heat = v[:n_probe], v[:n_heat]
        out: dict[str, Any] = {"stage_layer": self.stage_index + 1, "stage_grid": self.layer_grid(self.stage_index)}
        if isinstance(m, RBM):
            x_tilde, _ = m.gibbs_chain(self._dbn_uniform.bernoulli(probe), 1, self._dbn_uniform)
            out.update(stage_kind="rbm", stage_probe_input=cpu(probe), stage_probe_recon=cpu(m.reconstruct(probe)),
                       stage_probe_sample=cpu(x_tilde), stage_filters=cpu(m.W.t()),
                       stage_hidden_probs=cpu(m.p_h_given_x(heat)), stage_hidden_bias=cpu(m.d),
                       stage_visible_bias=cpu(m.b))
            if self._cd is not None:  # the last CD step's parts, as the RBM panel's snapshot has them
                out.update({"stage_" + k: v for k, v in self._cd.last_update().items()})
        else:
            out.update(stage_kind="ae", stage_probe_clean=cpu(probe), stage_probe_recon=cpu(m(probe)[1]),
                       stage_filters=cpu(m.W), stage_codes=cpu(m.encode(heat)))
        return out

    @torch.no_grad()
    def dbn_sample(self, n: int = 16, sweeps: int = 1) -> torch.Tensor | None:
        """Dreams of the deep belief net formed by the RBMs pretrained so far (the lecture: "stacked RBMs
        ... a probabilistic generative model"): Gibbs sweeps in the top RBM, on persistent chains, then
        one pass down through the lower RBMs with p(v|h). Returns image probabilities (n, n_in), or None
        before the first RBM is trained."""
        rbms = [m for m in self.pretrained if isinstance(m, RBM)]
        if not rbms:
            return None
        top, u = rbms[-1], self._dbn_uniform
        if self._dbn_v is None or tuple(self._dbn_v.shape) != (n, top.n_visible):
            self._dbn_v = u.bernoulli(torch.full((n, top.n_visible), 0.5, device=self._device))
        self._dbn_v, p = top.gibbs_chain(self._dbn_v, max(1, sweeps), u)
        v = self._dbn_v
        for rbm in reversed(rbms[:-1]):  # down the stack: each layer's sample drives the one below
            p = rbm.p_x_given_h(v)
            v = u.bernoulli(p)
        return p

    def apply_hparams(self, changes: dict[str, Any]) -> list[str]:
        changes = dict(changes)
        if isinstance(changes.get("hidden"), list):
            changes["hidden"] = tuple(changes["hidden"])
        return super().apply_hparams(changes)

    # -- parts: the MLP, and the RBM or autoencoder being pretrained ---------------------------------------
    def _networks(self) -> list[torch.nn.Module]:
        return [self.model, *([self._pre_module] if self._pre_module is not None else []), *self.pretrained]

    def _other_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self._pre_opt] if self._pre_opt is not None else []

    def _moved(self, device: torch.device, seed: int) -> None:
        if self._cd is not None:
            self._cd.to(device)
            self._cd.uniform = self._uniforms(seed)
        if self._last_stats is not None:
            self._last_stats = {k: v.to(device) for k, v in self._last_stats.items()}

    def _saved_parameters(self) -> list[SavedParameter]:
        """The MLP's weights ``layer<i>.weight``/``.bias`` with their momentum ``opt.layer<i>.<name>.momentum``."""
        return [SavedParameter(f"layer{i}.{pname}", f"opt.layer{i}.{pname}", getattr(layer, pname), self.optimizer)
                for i, layer in enumerate(self.model.layers) for pname in ("weight", "bias")]

    def _extra_state(self) -> dict[str, torch.Tensor]:
        """The stage, and the module being pretrained (if any)."""
        out = {"stage": torch.tensor(self.stage_index), "stage_steps": torch.tensor(self._stage_steps)}
        if self._pre_module is not None:
            for name, p in self._pre_module.named_parameters():
                out[f"pretrain.{name}"] = p.data
        return out

    def _before_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        stage = int(tensors["stage"]) if "stage" in tensors else len(self.stages) - 1
        stage = min(max(stage, 0), len(self.stages) - 1)
        self.pretrained = []
        self._enter_stage(stage)
        if self.fine_tuning:
            self.optimizer = self._fine_tuning_optimizer()
        if "stage_steps" in tensors:
            self._stage_steps = int(tensors["stage_steps"])

    def _after_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        if self._pre_module is not None:
            for name, p in self._pre_module.named_parameters():
                t = tensors.get(f"pretrain.{name}")
                if t is not None and tuple(t.shape) == tuple(p.shape):
                    with torch.no_grad():
                        p.copy_(t.to(p.device, p.dtype))

    def describe(self) -> str:
        ds, cfg = self.dataset, self.config
        h, w = ds.image_shape
        sizes = "-".join(str(s) for s in self.model.sizes)
        how = {"random": f"sigmoid, random init N(0, {RANDOM_STD}^2)",
               "rbm": f"sigmoid, RBM-pretrained ({cfg.pretrain_epochs} epochs per layer)",
               "ae": f"sigmoid, autoencoder-pretrained ({cfg.pretrain_epochs} epochs per layer)",
               "relu-he": "ReLU, He init"}[cfg.init]
        return (f"Deep MLP {sizes} ({how}) on {ds.name} ({h}x{w}, {ds.train_x.shape[0]} train / "
                f"{ds.test_x.shape[0]} held-out)")


def config_from_spec(spec, base: MLPConfig | None = None) -> MLPConfig:
    """A deep-MLP configuration from a builder spec (family ``mlp``).

    Layers: (Linear(k), Sigmoid) or (Linear(k), ReLU) repeated -- one activation type throughout --
    then Linear(n_classes), optionally Softmax. ReLU layers mean init "relu-he"; sigmoid layers keep
    ``base.init`` (or "random" if that was "relu-he"); ``spec.hparams`` may set init and the other
    settings. The data set is chosen from the number of inputs as for the RBM.
    """
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.core.families.rbm.trainer import config_from_spec as rbm_config_from_spec
    from explorer.core.spec.network import LayerSpec, NetworkSpec, validate

    base = dataclasses.replace(base) if base is not None else MLPConfig()
    validate(spec)
    if spec.family != "mlp":
        raise ValueError(f"this is a {spec.family} network, not an MLP")
    layout = "(Linear(k), Sigmoid or ReLU) repeated, then Linear(classes) and optionally Softmax"
    layers = list(spec.layers)
    types = [layer.type for layer in layers]
    if types and types[-1] == "Softmax":
        layers = layers[:-1]
        types = types[:-1]
    if len(types) < 3 or len(types) % 2 == 0 or types[-1] != "Linear":
        raise ValueError(f"an MLP here is {layout}; this network has {', '.join(t.type for t in spec.layers) or 'no layers'}")
    acts = set(types[1::2])
    if any(t != "Linear" for t in types[0::2]) or not acts <= {"Sigmoid", "ReLU"}:
        raise ValueError(f"an MLP here is {layout}; this network has {', '.join(t.type for t in spec.layers)}")
    if len(acts) != 1:
        raise ValueError("all hidden layers must use the same activation (all Sigmoid or all ReLU)")
    if any(not layer.params.get("bias", True) for layer in layers[0::2]):
        raise ValueError("every Linear layer of the MLP needs its bias")
    if len(spec.input_shape) != 1:
        raise ValueError(f"an MLP takes a flat vector of pixels, not an input of shape {tuple(spec.input_shape)}")
    n = int(spec.input_shape[0])
    hidden = tuple(int(layer.params.get("out_features", 64)) for layer in layers[0:-1:2])
    n_out = int(layers[-1].params.get("out_features", 10))
    relu = acts == {"ReLU"}
    rbm_base = RBMConfig(dataset=base.dataset, data_dir=base.data_dir, upscale=base.upscale,
                         bars_size=base.bars_size, hidden=hidden[0], seed=base.seed)
    probe = NetworkSpec("rbm", (n,), [LayerSpec("RBM", {"hidden": hidden[0]})])
    rbm_cfg = rbm_config_from_spec(probe, rbm_base)
    init = "relu-he" if relu else ("random" if base.init == "relu-he" else base.init)
    cfg = dataclasses.replace(base, hidden=hidden, init=init, dataset=rbm_cfg.dataset, data_dir=rbm_cfg.data_dir,
                              upscale=rbm_cfg.upscale, bars_size=rbm_cfg.bars_size)
    known = {f.name for f in dataclasses.fields(MLPConfig)}
    overrides = {k: v for k, v in (spec.hparams or {}).items()
                 if k in known and k not in ("dataset", "data_dir", "hidden")}
    cfg = dataclasses.replace(cfg, **overrides)
    if relu != (cfg.init == "relu-he"):
        raise ValueError(f"init {cfg.init!r} needs {'ReLU' if cfg.init == 'relu-he' else 'Sigmoid'} hidden layers, "
                         f"but this network has {'ReLU' if relu else 'Sigmoid'}")
    n_classes = _N_CLASSES.get(cfg.dataset)
    if n_classes is not None and n_out != n_classes:
        raise ValueError(f"the output layer must have one unit per class: {cfg.dataset} has {n_classes} classes, "
                         f"this network has {n_out} outputs")
    cfg.validate()
    return cfg
