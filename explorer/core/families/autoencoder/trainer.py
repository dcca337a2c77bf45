"""The autoencoder family for the engine: (denoising) autoencoders exactly as the lecture writes them.

    encoder   h  = sigmoid(W x~ + b)          x~ = x (plain) or a corrupted x (denoising)
    decoder   x' = sigmoid(W' h + d)          W' = W_dec, or W^T with tied weights
    loss      sum over examples of (x - x')^2  -- always against the CLEAN x

Trained by plain backpropagation (autograd) and SGD with momentum. The per-step loss is the sum of
squared errors per example averaged over the mini-batch, i.e. the lecture's loss divided by the
batch size. Grey levels in [0, 1] are used as they are (no binarisation).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explorer.core.engine.settings import setting
from explorer.core.engine.uniforms import NumpyUniforms, UniformSource
from explorer.core.families.backward import mm_input_grad, mm_weight_grad
from explorer.core.families.base import DataSettings, MiniBatchTrainer
from explorer.core.limits import FLOAT_BYTES, check_memory

NOISE_KINDS = ("none", "gaussian", "masking", "salt_pepper")
MAX_GAUSSIAN_LEVEL = 10.0


# -- corruption -----------------------------------------------------------------------------------
def normals(uniform: UniformSource, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws of ``shape`` on ``like``'s device/dtype, deterministic under ``uniform``'s seed.

    A source with a ``normal(shape, like)`` method is used as is; numpy's PCG64 (``NumpyUniforms``) on the
    CPU; torch.randn with the source's generator for a plain ``UniformSource``; otherwise (e.g. fixed
    draws in a test) Box-Muller from two uniform draws.
    """
    shape = tuple(int(s) for s in shape)
    if hasattr(uniform, "normal"):
        return uniform.normal(shape, like)
    if isinstance(uniform, NumpyUniforms) and like.device.type == "cpu":
        z = torch.from_numpy(uniform.rng.standard_normal(shape, dtype=np.float32))
        return z if like.dtype == torch.float32 else z.to(like.dtype)
    if type(uniform) in (UniformSource, NumpyUniforms):
        gen = uniform.generator
        if gen is None or gen.device.type == like.device.type:
            return torch.randn(shape, generator=gen, device=like.device, dtype=like.dtype)
    u1 = uniform(shape, like)
    u2 = uniform(shape, like)
    return torch.sqrt(-2.0 * torch.log1p(-u1.clamp(max=1.0 - 1e-7))) * torch.cos(2.0 * math.pi * u2)


def corrupt(x: torch.Tensor, kind: str, level: float, uniform: UniformSource) -> torch.Tensor:
    """The denoising autoencoder's noisy input x~ (a new tensor; ``x`` is never modified).

    * ``none``: x itself
    * ``gaussian``: x + level * N(0, 1) (the lecture's additive noise, not clamped)
    * ``masking``: each pixel set to 0 with probability ``level``
    * ``salt_pepper``: each pixel, with probability ``level``, replaced by 0 or 1 (half each)
    """
    if kind == "none":
        return x
    level = float(level)
    if kind == "gaussian":
        return x + level * normals(uniform, x.shape, x)
    if kind == "masking":
        keep = uniform(x.shape, x).ge_(level)
        return x * keep
    if kind == "salt_pepper":
        u = uniform(x.shape, x)
        # one draw decides both: u < level/2 -> pepper (0), level/2 <= u < level -> salt (1)
        hit = u < level
        value = (u >= 0.5 * level).to(x.dtype)
        return torch.where(hit, value, x)
    raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")


# -- model ----------------------------------------------------------------------------------------
class Autoencoder(torch.nn.Module):
    """One hidden layer autoencoder with sigmoid units; ``tied`` uses W^T as the decoder's weights."""

    def __init__(self, n_in: int, n_hidden: int, tied: bool = False, init_std: float | None = None,
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        super().__init__()
        if n_in < 1 or n_hidden < 1:
            raise ValueError(f"an autoencoder needs at least one input and one hidden unit, got {n_in}x{n_hidden}")
        self.n_in = int(n_in)
        self.n_hidden = int(n_hidden)
        self.tied = bool(tied)

        def init(rows: int, cols: int) -> torch.Tensor:
            if init_std is not None:
                return torch.randn(rows, cols, generator=generator) * float(init_std)
            # Glorot uniform, times 4 for sigmoid units
            r = 4.0 * math.sqrt(6.0 / (n_in + n_hidden))
            return (torch.rand(rows, cols, generator=generator) * 2.0 - 1.0) * r

        self.W = torch.nn.Parameter(init(n_hidden, n_in).to(device))
        self.b = torch.nn.Parameter(torch.zeros(n_hidden, device=device))
        self.d = torch.nn.Parameter(torch.zeros(n_in, device=device))
        if self.tied:
            self.W_dec = None
        else:
            self.W_dec = torch.nn.Parameter(init(n_in, n_hidden).to(device))

    def decoder_weight(self) -> torch.Tensor:
        return self.W.t() if self.W_dec is None else self.W_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.b, x, self.W.t()))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.d, h, self.decoder_weight().t()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encode(x)
        return h, self.decode(h)

    @torch.no_grad()
    def backprop(self, x_in: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x_in``, score it against ``target`` by :func:`sse_per_example`, and leave that
        loss's gradient in every parameter's ``.grad``; returns the loss (0-dim).

        The chain rule written out: with r = sigma(h W_dec^T + d), h = sigma(x W^T + b) and N examples,
        dloss/dr = 2 (r - target) / N; delta_r = dloss/dr r (1 - r); dloss/dW_dec = delta_r^T h;
        delta_h = (delta_r W_dec) h (1 - h); dloss/dW = delta_h^T x_in (plus delta_r^T h, transposed,
        when tied). Each line calls the kernel that autograd's backward calls, and each product is the
        one autograd would pick (:mod:`explorer.core.families.backward`), so the gradients are
        autograd's, bit for bit (``tests/test_autoencoder.py``).

        Why by hand: autograd's graph costs a few percent of this small network's step on a CPU
        (784-256-784 at batch 128, one thread: a median 4.17 ms against 4.01, within that machine's
        noise; ``benchmarks/backprop_cost.py``, 2026-12-06).
        """
        h = self.encode(x_in)
        recon = self.decode(h)
        diff = recon - target
        loss = diff.pow(2).sum(1).mean()
        delta_r = torch.ops.aten.sigmoid_backward(diff.mul(2.0 / target.shape[0]), recon)
        decoder_t = self.decoder_weight().t()  # decode is addmm(d, h, decoder^T); tied: W itself
        decoder_t_grad = mm_weight_grad(delta_r, h, decoder_t)
        delta_h = torch.ops.aten.sigmoid_backward(mm_input_grad(delta_r, h, decoder_t), h)
        encoder_grad = mm_weight_grad(delta_h, x_in, self.W.t()).t()
        if self.W_dec is None:
            self.W.grad = encoder_grad + decoder_t_grad
        else:
            self.W.grad = encoder_grad
            self.W_dec.grad = decoder_t_grad.t()
        self.b.grad = delta_h.sum(0)
        self.d.grad = delta_r.sum(0)
        return loss


def sse_per_example(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The lecture's loss divided by the number of examples: mean over rows of sum_i (x_i - x'_i)^2."""
    return ((recon - target) ** 2).sum(1).mean()


# -- configuration --------------------------------------------------------------------------------
@dataclass
class AutoencoderConfig(DataSettings):
    """Everything that defines an autoencoder run; saved as JSON in a run folder."""

    hidden: int = setting(64, kind="int", lo=1, hi=20000, label="hidden units", reset=True)
    tied: bool = setting(False, reset=True)
    noise: str = setting("none", choices=NOISE_KINDS, live=True)
    noise_level: float = setting(0.3, kind="number", lo=0, live=True)
    lr: float = setting(0.1, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.9, kind="number", lo=0, hi=1, below=True, live=True)
    batch_size: int = setting(32, kind="int", lo=1, live=True)
    init_std: float | None = setting(None, kind="number", lo=0, above=True, optional=True, label="init std",
                                     note="or empty for Glorot", reset=True)
    seed: int = setting(0, kind="int", lo=0, data=True)
    device: str = "auto"
    download: bool = False
    n_probes: int = setting(8, kind="int", lo=1, hi=256)
    n_heatmap: int = setting(32, kind="int", lo=1, hi=1024)
    n_scatter: int = setting(500, kind="int", lo=1, hi=100_000)
    eval_samples: int = setting(500, kind="int", lo=1, hi=1_000_000)

    def check(self) -> None:
        lvl = self.noise_level
        if self.noise in ("masking", "salt_pepper") and lvl > 1:
            raise ValueError(f"{self.noise} noise level is a probability in [0, 1], got {lvl}")
        if self.noise == "gaussian" and lvl > MAX_GAUSSIAN_LEVEL:
            raise ValueError(f"gaussian noise level (std) must be at most {MAX_GAUSSIAN_LEVEL}, got {lvl}")


# Changes that only take effect after re-initialising the model, and those applied between two steps.
NEEDS_RESET = AutoencoderConfig.reset_settings()
LIVE = AutoencoderConfig.live_settings()

class AutoencoderTrainer(MiniBatchTrainer):
    """Trains an :class:`Autoencoder` (denoising when ``config.noise`` is not "none") on a :class:`Dataset`."""

    family = "autoencoder"
    model: Autoencoder

    # -- construction -------------------------------------------------------------------------
    def _build_model(self) -> None:
        cfg, ds, dev = self.config, self.dataset, self._device
        init_gen = torch.Generator().manual_seed(cfg.seed)
        # two weight matrices with their gradients, velocities and snapshot copies
        check_memory(f"hidden units {cfg.hidden} on {ds.n_visible} inputs",
                     10 * FLOAT_BYTES * ds.n_visible * cfg.hidden, "hidden")
        self.model = Autoencoder(ds.n_visible, cfg.hidden, tied=cfg.tied, init_std=cfg.init_std,
                                 generator=init_gen, device=dev)
        # decoder biases start at the logit of the training pixel means: the untrained model
        # reconstructs the "average image" instead of grey
        p = torch.from_numpy(ds.train_x.mean(0)).clamp(0.01, 0.99)
        with torch.no_grad():
            self.model.d.copy_(torch.log(p / (1 - p)).to(dev))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        self.noise = self._uniforms(cfg.seed + 1)

    def _load_data(self) -> None:
        cfg, ds, dev = self.config, self.dataset, self._device
        self._train = torch.from_numpy(ds.train_x).to(dev)
        self._n_train = self._train.shape[0]
        n_eval = min(cfg.eval_samples, ds.test_x.shape[0])
        self._test_eval = torch.from_numpy(ds.test_x[:n_eval]).to(dev)
        self._train_eval = self._train[:n_eval]
        self._probe = torch.from_numpy(ds.test_x[:cfg.n_probes]).to(dev)
        self._heat = torch.from_numpy(ds.test_x[:cfg.n_heatmap]).to(dev)
        self._scatter = torch.from_numpy(ds.test_x[:cfg.n_scatter]).to(dev)
        self._scatter_labels = (None if ds.test_y is None
                                else np.asarray(ds.test_y[:cfg.n_scatter], dtype=np.int64).copy())

    # -- engine interface -----------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        """The next mini-batch of clean training images; a new epoch reshuffles."""
        return self._train.index_select(0, self._next_indices())

    def loss_step(self, x: torch.Tensor) -> torch.Tensor:
        """One SGD update on the clean batch ``x`` (corrupted first when noise is on); returns the loss."""
        cfg = self.config
        x_in = corrupt(x, cfg.noise, cfg.noise_level, self.noise)
        loss = self.model.backprop(x_in, x)  # against the clean input
        self.optimizer.step()
        return loss

    def train_step(self) -> dict[str, torch.Tensor]:
        loss = self.loss_step(self.next_batch())
        self.step += 1
        return {"loss": loss}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        cfg, m = self.config, self.model
        test_loss = sse_per_example(m(self._test_eval)[1], self._test_eval)
        train_loss = sse_per_example(m(self._train_eval)[1], self._train_eval)
        if cfg.noise == "none":
            noisy_loss = test_loss
        else:
            # the same corruption at every evaluation, so the curve compares like with like
            noisy = corrupt(self._test_eval, cfg.noise, cfg.noise_level, self._uniforms(cfg.seed + 2))
            noisy_loss = sse_per_example(m(noisy)[1], self._test_eval)
        vals = torch.stack([test_loss, train_loss, noisy_loss]).cpu().tolist()
        return {
            "heldout_loss": vals[0],
            "train_loss": vals[1],
            "heldout_loss_noisy": vals[2],
            "heldout_mse": vals[0] / m.n_in,
        }

    @torch.no_grad()
    def snapshot(self) -> dict[str, Any]:
        cfg, m = self.config, self.model
        # fixed draws per snapshot: the noisy probe stays still while the reconstruction changes
        noisy = corrupt(self._probe, cfg.noise, cfg.noise_level, self._uniforms(cfg.seed + 3))
        recon = m(noisy)[1]

        def cpu(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy().copy()

        out: dict[str, Any] = {
            "image_shape": tuple(self.dataset.image_shape),
            "probe_clean": cpu(self._probe),
            "probe_noisy": cpu(noisy),
            "probe_recon": cpu(recon),
            "filters": cpu(m.W),
            "codes": cpu(m.encode(self._heat)),
        }
        if m.n_hidden == 2:
            out["scatter_codes"] = cpu(m.encode(self._scatter))
            if self._scatter_labels is not None:
                out["scatter_labels"] = self._scatter_labels.copy()
        return out

    def _moved(self, device: torch.device, seed: int) -> None:
        self.noise = self._uniforms(seed)

    def describe(self) -> str:
        ds, cfg = self.dataset, self.config
        h, w = ds.image_shape
        n = ds.n_visible
        kind = "Autoencoder" if cfg.noise == "none" else "Denoising autoencoder"
        noise = "" if cfg.noise == "none" else f" ({cfg.noise.replace('_', ' & ')} noise {cfg.noise_level:g})"
        tied = ", tied weights" if cfg.tied else ""
        return (f"{kind} {n}-{cfg.hidden}-{n}{noise} on {ds.name} ({h}x{w}, {ds.train_x.shape[0]} train / "
                f"{ds.test_x.shape[0]} held-out){tied}")


def config_from_spec(spec, base: AutoencoderConfig | None = None) -> AutoencoderConfig:
    """An autoencoder configuration from a builder spec (family ``autoencoder``).

    The layers must be exactly Linear(k) + Sigmoid, Linear(n_in) + Sigmoid on a vector of n_in inputs;
    k becomes ``hidden``. The data set is chosen from n_in as for the RBM (``base``'s when it fits,
    else the bundled one with that many inputs). ``spec.hparams`` may set the other settings.
    Raises ValueError with a message for the user otherwise.
    """
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.core.families.rbm.trainer import config_from_spec as rbm_config_from_spec
    from explorer.core.spec.network import LayerSpec, NetworkSpec, validate

    base = dataclasses.replace(base) if base is not None else AutoencoderConfig()
    validate(spec)
    if spec.family != "autoencoder":
        raise ValueError(f"this is a {spec.family} network, not an autoencoder")
    layout = "Linear(k), Sigmoid, Linear(inputs), Sigmoid"
    types = [layer.type for layer in spec.layers]
    if types != ["Linear", "Sigmoid", "Linear", "Sigmoid"]:
        raise ValueError(f"an autoencoder here is exactly {layout}; this network has {', '.join(types) or 'no layers'}")
    if len(spec.input_shape) != 1:
        raise ValueError(f"an autoencoder takes a flat vector of pixels, not an input of shape {tuple(spec.input_shape)}")
    n = int(spec.input_shape[0])
    enc, dec = spec.layers[0].params, spec.layers[2].params
    hidden = int(enc.get("out_features", 64))
    n_out = int(dec.get("out_features", 64))
    if n_out != n:
        raise ValueError(f"the decoder must reconstruct all {n} inputs ({layout}), but it has {n_out} outputs")
    if not enc.get("bias", True) or not dec.get("bias", True):
        raise ValueError("both Linear layers of an autoencoder need their biases (b and d)")
    # the data set for n inputs: the RBM's choice, by asking it about the same input with the same data settings
    rbm_base = RBMConfig(dataset=base.dataset, data_dir=base.data_dir, upscale=base.upscale,
                         bars_size=base.bars_size, hidden=hidden, seed=base.seed)
    probe = NetworkSpec("rbm", (n,), [LayerSpec("RBM", {"hidden": hidden})])
    rbm_cfg = rbm_config_from_spec(probe, rbm_base)
    cfg = dataclasses.replace(base, hidden=hidden, dataset=rbm_cfg.dataset, data_dir=rbm_cfg.data_dir,
                              upscale=rbm_cfg.upscale, bars_size=rbm_cfg.bars_size)
    known = {f.name for f in dataclasses.fields(AutoencoderConfig)}
    overrides = {k: v for k, v in (spec.hparams or {}).items()
                 if k in known and k not in ("dataset", "data_dir", "hidden")}
    cfg = dataclasses.replace(cfg, **overrides)
    cfg.validate()
    return cfg
