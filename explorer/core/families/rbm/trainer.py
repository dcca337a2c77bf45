"""The RBM family for the engine: data, CD-k updates, metrics and the views' snapshots."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explorer.core.engine.settings import setting
from explorer.core.engine.threads import ProductTeam
from explorer.core.families.base import DataSettings, MiniBatchTrainer, SavedParameter
from explorer.core.families.rbm.model import BINARIZE_MODES, RBM, ContrastiveDivergence, binarize
from explorer.core.limits import FLOAT_BYTES, check_memory


@dataclass
class RBMConfig(DataSettings):
    """Everything that defines an RBM run; saved as JSON in a run folder."""

    hidden: int = setting(100, kind="int", lo=1, hi=20000, label="hidden units", reset=True)
    k: int = setting(1, kind="int", lo=1, hi=1000, label="k (the Gibbs steps of CD-k)", live=True)
    lr: float = setting(0.1, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.0, kind="number", lo=0, hi=1, below=True, live=True)
    weight_decay: float = setting(0.0, kind="number", lo=0, live=True)
    persistent: bool = setting(False, live=True)
    batch_size: int = setting(32, kind="int", lo=1, live=True)
    binarize: str = setting("sample", choices=BINARIZE_MODES, reset=True)
    init_std: float = setting(0.01, kind="number", lo=0, hi=10, label="init std", reset=True)
    seed: int = setting(0, kind="int", lo=0, data=True)
    device: str = "auto"
    download: bool = False
    # what the views show: bounded, so that a run.json cannot ask for gigabytes or an endless snapshot
    n_probes: int = setting(8, kind="int", lo=1, hi=256, label="probe images")
    n_heatmap: int = setting(32, kind="int", lo=1, hi=1024, label="heat-map images")
    n_dream: int = setting(16, kind="int", lo=1, hi=1024, label="dream chains")
    dream_steps: int = setting(1, kind="int", lo=1, hi=1000, label="dream steps", live=True)  # Gibbs sweeps
    # the dream chains advance per snapshot
    eval_samples: int = setting(500, kind="int", lo=1, hi=1_000_000, label="evaluation samples")  # all when fewer


PLL_SAMPLES = 200        # examples per data set in the pseudo-likelihood
PLL_BUDGET = 4_000_000  # elements of its sum per data set and evaluation (a few ms on a CPU)

# Changes that only take effect after re-initialising the model, and those applied between two steps.
NEEDS_RESET = RBMConfig.reset_settings()
LIVE = RBMConfig.live_settings()


class RBMTrainer(MiniBatchTrainer):
    """Trains an :class:`RBM` with :class:`ContrastiveDivergence` on a :class:`Dataset`."""

    family = "rbm"

    # -- construction -------------------------------------------------------------------------
    def _build_model(self) -> None:
        cfg, ds, dev = self.config, self.dataset, self._device
        torch.manual_seed(cfg.seed)
        init_gen = torch.Generator().manual_seed(cfg.seed)
        # the weights with their gradient, velocity, statistics and snapshot copies
        check_memory(f"hidden units {cfg.hidden} on {ds.n_visible} inputs",
                     6 * FLOAT_BYTES * ds.n_visible * cfg.hidden, "hidden")
        self.rbm = RBM(ds.n_visible, cfg.hidden, init_std=cfg.init_std, generator=init_gen, device=dev)
        # visible biases start at log(p/(1-p)) of the training pixel means (Hinton's practical guide):
        # the model starts from "average digit" instead of grey noise
        p = torch.from_numpy(ds.train_x.mean(0)).clamp(0.01, 0.99)
        with torch.no_grad():
            self.rbm.b.copy_(torch.log(p / (1 - p)).to(dev))
        self.cd = ContrastiveDivergence(self.rbm, lr=cfg.lr, k=cfg.k, momentum=cfg.momentum,
                                        weight_decay=cfg.weight_decay, persistent=cfg.persistent,
                                        uniform=self._uniforms(cfg.seed + 1))
        self.cd.validate()
        self.dream_x: torch.Tensor | None = None

    def _load_data(self) -> None:
        cfg, ds, dev = self.config, self.dataset, self._device
        self._train_grey = torch.from_numpy(ds.train_x).to(dev)
        self._n_train = self._train_grey.shape[0]
        if cfg.binarize == "threshold":
            self._train = binarize(self._train_grey, "threshold")
        else:
            self._train = self._train_grey
        n_eval = min(cfg.eval_samples, ds.test_x.shape[0])
        test_grey = torch.from_numpy(ds.test_x[:n_eval]).to(dev)
        train_grey = self._train_grey[:n_eval]
        # the "clean" held-out input: thresholded, or grey levels (the mean of what sampling gives)
        self._test_clean = binarize(test_grey, "threshold") if cfg.binarize == "threshold" else test_grey
        self._train_clean = binarize(train_grey, "threshold") if cfg.binarize == "threshold" else train_grey
        # binary versions for the pseudo-likelihood / free energy, fixed once so curves are comparable
        u = self._uniforms(cfg.seed + 2)
        self._test_bin = binarize(test_grey, cfg.binarize, u)
        self._train_bin = binarize(train_grey, cfg.binarize, u)
        self._probe_grey = test_grey[: cfg.n_probes]
        self._heat_grey = test_grey[: cfg.n_heatmap]

    # -- engine interface -----------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        """The next mini-batch of binary visible vectors; a new epoch reshuffles."""
        x = self._train.index_select(0, self._next_indices())
        if self.config.binarize == "sample":
            x = binarize(x, "sample", self.cd.uniform)
        return x

    def train_step(self) -> dict[str, torch.Tensor]:
        # the products on the training thread's threads, the draws and sums between them on one
        with ProductTeam(self._device) as team:
            x0 = self.next_batch()
            stats = self.cd.step(x0, team)
        self.step += 1
        return {"recon_error": stats.recon_error}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        rbm = self.rbm
        test_err = ((self._test_clean - rbm.reconstruct(self._test_clean)) ** 2).mean()
        train_err = ((self._train_clean - rbm.reconstruct(self._train_clean)) ** 2).mean()
        # the PLL costs n * bits * hidden: exact over every bit when that is cheap, else over a fixed
        # random subset of bits (the same for training and held-out data, so they compare fairly)
        n = min(self._test_bin.shape[0], PLL_SAMPLES)
        n_bits = max(1, min(rbm.n_visible, PLL_BUDGET // max(1, n * rbm.n_hidden)))
        bits = None
        if n_bits < rbm.n_visible:
            g = torch.Generator().manual_seed(self.config.seed + 3)
            bits = torch.randperm(rbm.n_visible, generator=g)[:n_bits].sort().values
        test_pll = rbm.pseudo_log_likelihood(self._test_bin[:n], bits).mean()
        train_pll = rbm.pseudo_log_likelihood(self._train_bin[:n], bits).mean()
        f_test = rbm.free_energy(self._test_bin).mean()
        f_train = rbm.free_energy(self._train_bin).mean()
        vals = torch.stack([test_err, train_err, test_pll, train_pll, f_test, f_train]).cpu().tolist()
        return {
            "heldout_recon_error": vals[0],
            "train_meanfield_recon_error": vals[1],
            "heldout_pll": vals[2],
            "train_pll": vals[3],
            "heldout_free_energy": vals[4],
            "train_free_energy": vals[5],
            # a growing gap (held-out free energy above training) is the sign of overfitting
            "free_energy_gap": vals[4] - vals[5],
        }

    @torch.no_grad()
    def cd1_walkthrough(self, probe: int = 0, seed: int | None = None) -> dict[str, Any]:
        """One CD-1 update for one held-out example, every intermediate kept, for a class to step through.

        Nothing is applied to the model: the update is computed on the current weights, with a random
        stream of its own (``seed``) so the training's random numbers are untouched. Keys (numpy, CPU):
        ``x`` (the binary input), ``p_h`` = p(h|x), ``h_hat`` ~ p(h|x), ``p_x`` = p(x|h^),
        ``x_tilde`` ~ p(x|h^), ``p_h_tilde`` = p(h|x~), ``h_tilde`` ~ p(h|x~), ``positive`` = x h^',
        ``negative`` = x~ h~', ``dW`` = lr (x h^' - x~ h~') (visible x hidden), ``db`` = lr (x - x~),
        ``dd`` = lr (h^ - h~), ``lr``, ``image_shape``.
        """
        rbm, cfg = self.rbm, self.config
        seed = cfg.seed + 7 + self.step if seed is None else seed
        u = self._uniforms(seed)
        grey = self._probe_grey[probe % self._probe_grey.shape[0]].unsqueeze(0)
        x = binarize(grey, cfg.binarize, u)
        p_h = rbm.p_h_given_x(x)
        h_hat = u.bernoulli(p_h)
        p_x = rbm.p_x_given_h(h_hat)
        x_tilde = u.bernoulli(p_x)
        p_h_tilde = rbm.p_h_given_x(x_tilde)
        h_tilde = u.bernoulli(p_h_tilde)
        positive = x.t() @ h_hat
        negative = x_tilde.t() @ h_tilde
        lr = float(self.cd.lr)

        def cpu(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy().copy()

        steps = (("x", x), ("p_h", p_h), ("h_hat", h_hat), ("p_x", p_x), ("x_tilde", x_tilde),
                 ("p_h_tilde", p_h_tilde), ("h_tilde", h_tilde))
        out: dict[str, Any] = {k: cpu(v[0]) for k, v in steps}  # arrays, and below the rate, shape and step
        out.update(positive=cpu(positive), negative=cpu(negative), dW=cpu(lr * (positive - negative)),
                   db=cpu(lr * (x - x_tilde)[0]), dd=cpu(lr * (h_hat - h_tilde)[0]), lr=lr,
                   image_shape=tuple(self.dataset.image_shape), probe=int(probe), step=int(self.step))
        return out

    @torch.no_grad()
    def snapshot(self) -> dict[str, Any]:
        rbm, cfg, uniform = self.rbm, self.config, self.cd.uniform
        probe_in = self._probe_grey if cfg.binarize == "sample" else binarize(self._probe_grey, "threshold")
        probe_bin = binarize(self._probe_grey, cfg.binarize, uniform)
        # dream: Gibbs chains that keep running from noise, a few sweeps per snapshot
        if self.dream_x is None or self.dream_x.shape != (cfg.n_dream, rbm.n_visible):
            self.dream_x = (torch.rand(cfg.n_dream, rbm.n_visible, generator=self._gen,
                                       device=self._device) < 0.5).float()
        # The probe's reconstruction, its one Gibbs sweep, the heat map and the dream's first sweep are each
        # a product with W, then with W': every row on its own, so all go through W at once, twice (each small
        # product read all of W, 1.5 MB for a 784-500 RBM: seven took about 1.5 ms after a training step, two
        # take 1.1-1.2). The draws are taken in the order the chains took them one after the other, so a
        # seeded run shows what it showed when they ran apart (up to the products' float rounding).
        n_probe, n_heat, n_dream = probe_in.shape[0], self._heat_grey.shape[0], self.dream_x.shape[0]
        n_h, n_v = rbm.n_hidden, rbm.n_visible
        u_probe_h, u_probe_x = uniform((n_probe, n_h), probe_bin), uniform((n_probe, n_v), probe_bin)
        u_dream_h, u_dream_x = uniform((n_dream, n_h), probe_bin), uniform((n_dream, n_v), probe_bin)
        p_h = rbm.p_h_given_x(torch.cat([probe_in, probe_bin, self._heat_grey, self.dream_x]))
        recon_h, probe_p_h, heat, dream_p_h = p_h.split([n_probe, n_probe, n_heat, n_dream])
        p_x = rbm.p_x_given_h(torch.cat([recon_h, u_probe_h.lt_(probe_p_h), u_dream_h.lt_(dream_p_h)]))
        recon, probe_p_x, dream_p = p_x.split([n_probe, n_probe, n_dream])
        x_tilde = u_probe_x.lt_(probe_p_x)
        self.dream_x = u_dream_x.lt_(dream_p)
        if cfg.dream_steps > 1:
            self.dream_x, dream_p = rbm.gibbs_chain(self.dream_x, cfg.dream_steps - 1, uniform)

        def cpu(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy().copy()

        return {
            "image_shape": tuple(self.dataset.image_shape),
            "probe_input": cpu(probe_in),
            "probe_recon": cpu(recon),
            "probe_sample": cpu(x_tilde),
            "filters": cpu(rbm.W.t()),
            "hidden_probs": cpu(heat),
            "dream": cpu(dream_p),
            "hidden_bias": cpu(rbm.d),
            "visible_bias": cpu(rbm.b),
            # the last CD step's samples and gamma: the filters' readout explains w_ij's last update with them
            **self.cd.last_update(),
        }

    # -- parts: the RBM is trained by contrastive divergence, not by an optimiser ----------------------
    def _networks(self) -> list[torch.nn.Module]:
        return [self.rbm]

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        return []

    def _apply_live(self, key: str, value: Any) -> str | None:
        if key in ("lr", "k", "momentum", "weight_decay", "persistent"):
            setattr(self.cd, key, value)
        return None

    def _moved(self, device: torch.device, seed: int) -> None:
        self.cd.to(device)
        self.cd.uniform = self._uniforms(seed)
        if self.dream_x is not None:
            self.dream_x = self.dream_x.to(device)

    def _saved_parameters(self) -> list[SavedParameter]:
        rbm = self.rbm
        return [SavedParameter(name, "", param, None) for name, param in (("W", rbm.W), ("b", rbm.b), ("d", rbm.d))]

    def _extra_state(self) -> dict[str, torch.Tensor]:
        return self.cd.state_tensors()

    def _after_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        self.cd.load_state_tensors(tensors)

    def describe(self) -> str:
        ds = self.dataset
        h, w = ds.image_shape
        return (f"RBM {ds.n_visible}-{self.config.hidden} on {ds.name} ({h}x{w}, {ds.train_x.shape[0]} train / "
                f"{ds.test_x.shape[0]} held-out), CD-{self.config.k}")


def _n_visible(config: RBMConfig) -> int | None:
    """Inputs of the data set a config names (known without loading it)."""
    if config.dataset == "digits":
        return 64 * config.upscale ** 2
    if config.dataset == "bars":
        return config.bars_size ** 2 * config.upscale ** 2
    if config.dataset in ("mnist", "fashion-mnist"):
        return 784 * config.upscale ** 2
    return None


def config_from_spec(spec, base: RBMConfig | None = None) -> RBMConfig:
    """An RBM configuration from a builder spec (family ``rbm``: one RBM layer on a vector input).

    The spec gives the hidden units and its hyper-parameters; the data set is ``base``'s when its
    number of inputs fits, else the bundled one that has that many inputs (digits, upscaled
    digits, bars, or MNIST). Raises ValueError with a message for the user otherwise.
    """
    from explorer.core.spec.network import validate

    base = dataclasses.replace(base) if base is not None else RBMConfig()
    validate(spec)
    if spec.family != "rbm":
        raise ValueError(f"this is a {spec.family} network, not an RBM")
    if len(spec.layers) != 1 or spec.layers[0].type != "RBM":
        raise ValueError("an RBM network is a single RBM layer here (stacks of RBMs come with layerwise pretraining)")
    n = int(np.prod(spec.input_shape))
    hidden = int(spec.layers[0].params.get("hidden", base.hidden))
    cfg = dataclasses.replace(base, hidden=hidden)
    if _n_visible(cfg) != n:
        # inputs -> (data set, upscale); MNIST keeps the base's data folder when the base reads MNIST or Fashion-MNIST
        options = {64: ("digits", 1), 256: ("digits", 2), 576: ("digits", 3), 1024: ("digits", 4), 784: ("mnist", 1)}
        side = int(round(math.sqrt(n)))
        if n in options:
            dataset, upscale = options[n]
            data_dir = cfg.data_dir
            if dataset == "mnist":
                data_dir = base.data_dir if base.dataset in ("mnist", "fashion-mnist") else None
            cfg = dataclasses.replace(cfg, dataset=dataset, upscale=upscale, data_dir=data_dir)
        elif side * side == n and 2 <= side <= 32:
            cfg = dataclasses.replace(cfg, dataset="bars", bars_size=side, upscale=1)
        else:
            raise ValueError(f"no data set has {n} inputs: digits have 64 (8x8; upscaled 256, 576 or 1024), "
                             "MNIST 784 (28x28), bars any square size up to 32x32")
    known = {f.name for f in dataclasses.fields(RBMConfig)}
    overrides = {k: v for k, v in (spec.hparams or {}).items() if k in known and k not in ("dataset", "data_dir")}
    cfg = dataclasses.replace(cfg, **overrides)
    cfg.validate()
    return cfg
