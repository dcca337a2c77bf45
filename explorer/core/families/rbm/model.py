"""Restricted Boltzmann machine and contrastive divergence, exactly as the lecture writes them.

Notation follows the lecture: visible units x (binary), hidden units h (binary),
weights ``W`` of shape (n_visible, n_hidden), visible biases ``b``, hidden biases ``d``.

    E(x, h)   = -x'Wh - b'x - d'h
    p(h_j=1|x) = sigmoid(sum_i w_ij x_i + d_j)
    p(x_i=1|h) = sigmoid(sum_j w_ij h_j + b_i)

CD-k (k=1 is the lecture's algorithm):
    1. sample h^ from p(h | x)
    2. sample x~ from p(x | h^)
    3. sample h~ from p(h | x~)          (steps 2-3 repeated k times)
    w_ij += gamma (x_i h^_j - x~_i h~_j),  b_i += gamma (x_i - x~_i),  d_j += gamma (h^_j - h~_j)
averaged over the mini-batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from explorer.core.engine.threads import ALONE, ProductTeam
from explorer.core.engine.uniforms import UniformSource


class RBM(torch.nn.Module):
    """A binary-binary RBM. Parameters are updated by :class:`ContrastiveDivergence`, not autograd."""

    def __init__(self, n_visible: int, n_hidden: int, *, init_std: float = 0.01,
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"an RBM needs at least one visible and one hidden unit, got {n_visible}x{n_hidden}")
        self.n_visible = int(n_visible)
        self.n_hidden = int(n_hidden)
        w = torch.randn(n_visible, n_hidden, generator=generator) * init_std
        self.W = torch.nn.Parameter(w.to(device), requires_grad=False)
        self.b = torch.nn.Parameter(torch.zeros(n_visible, device=device), requires_grad=False)
        self.d = torch.nn.Parameter(torch.zeros(n_hidden, device=device), requires_grad=False)

    # -- conditionals -------------------------------------------------------------------------
    def p_h_given_x(self, x: torch.Tensor, team: ProductTeam = ALONE) -> torch.Tensor:
        return torch.sigmoid(team(torch.addmm, self.d, x, self.W))

    def p_x_given_h(self, h: torch.Tensor, team: ProductTeam = ALONE) -> torch.Tensor:
        return torch.sigmoid(team(torch.addmm, self.b, h, self.W.t()))

    # -- energies -----------------------------------------------------------------------------
    def energy(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(x,h) = -x'Wh - b'x - d'h, one value per row."""
        return -((x @ self.W) * h).sum(1) - x @ self.b - h @ self.d

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = -log sum_h exp(-E(x,h)) = -b'x - sum_j softplus(d_j + x'W_j)."""
        return -(x @ self.b) - F.softplus(torch.addmm(self.d, x, self.W)).sum(1)

    # -- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean-field reconstruction p(x | h = p(h|x)): what the model "sees" in x."""
        return self.p_x_given_h(self.p_h_given_x(x))

    @torch.no_grad()
    def gibbs_chain(self, x: torch.Tensor, steps: int, uniform: UniformSource) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``steps`` full Gibbs sweeps x -> h -> x from ``x``; return (x sample, p(x|h) of the last sweep)."""
        px = x
        for _ in range(max(0, steps)):
            h = uniform.bernoulli(self.p_h_given_x(x))
            px = self.p_x_given_h(h)
            x = uniform.bernoulli(px)
        return x, px

    @torch.no_grad()
    def pseudo_log_likelihood(self, x: torch.Tensor, bits: torch.Tensor | None = None,
                              max_elements: int = 8_000_000) -> torch.Tensor:
        """Pseudo-log-likelihood per sample: sum_i log p(x_i | x_-i) = sum_i log sigmoid(F(x^(i)) - F(x)).

        x^(i) is x with bit i flipped. Flipping bit i changes x'W by s_i W_i (s_i = 1 - 2 x_i), so every
        flip is computed from the same pre-activations, in chunks of at most ``max_elements``.
        With ``bits`` (a subset of visible indices) the sum runs over that subset and is scaled by
        n_visible / len(bits): an estimate that costs less and, for a fixed subset, gives smooth
        curves. ``x`` must be binary.
        """
        pre = torch.addmm(self.d, x, self.W)                     # n x H
        bx = x @ self.b                                            # n
        f0 = -bx - F.softplus(pre).sum(1)                          # F(x)
        idx = torch.arange(self.n_visible, device=x.device) if bits is None else bits.to(x.device)
        s = 1.0 - 2.0 * x[:, idx]                                  # +1 where a 0 becomes 1, -1 otherwise
        w, b = self.W[idx], self.b[idx]
        n, v = s.shape
        chunk = max(1, max_elements // max(1, n * self.n_hidden))
        total = torch.zeros(n, device=x.device, dtype=x.dtype)
        for start in range(0, v, chunk):
            sl = slice(start, min(v, start + chunk))
            pre_f = pre[:, None, :] + s[:, sl, None] * w[sl][None]              # n x c x H
            f_flip = -(bx[:, None] + s[:, sl] * b[sl]) - F.softplus(pre_f).sum(2)
            total += F.logsigmoid(f_flip - f0[:, None]).sum(1)
        return total * (self.n_visible / v)


@dataclass
class CDStats:
    """What one CD-k step saw; tensors stay on the model's device."""

    x0: torch.Tensor        # the data batch
    h_hat: torch.Tensor     # hidden sample from p(h|x0)
    px_hat: torch.Tensor    # p(x|h^): what x~ was sampled from (its error vs x0 is the training reconstruction error)
    x_tilde: torch.Tensor   # visible sample after k steps
    h_tilde: torch.Tensor   # hidden sample from p(h|x~)
    recon_error: torch.Tensor  # mean squared error per pixel between x0 and p(x|h^), 0-dim


class ContrastiveDivergence:
    """CD-k training of an :class:`RBM`, with the lecture's update rule.

    Options that go beyond the lecture are off by default and clearly named:
    ``momentum`` (classical momentum on the update), ``weight_decay`` (L2 pull on W),
    ``persistent`` (PCD: the negative chain continues from where the last step left it
    instead of restarting at the data).
    """

    def __init__(self, rbm: RBM, *, lr: float = 0.05, k: int = 1, momentum: float = 0.0,
                 weight_decay: float = 0.0, persistent: bool = False,
                 uniform: UniformSource | None = None):
        self.rbm = rbm
        self.lr = float(lr)
        self.k = int(k)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.persistent = bool(persistent)
        self.uniform = uniform or UniformSource()
        # momentum buffers of W, b and d (zero while momentum is off)
        self.velocity = [torch.zeros_like(p) for p in (rbm.W, rbm.b, rbm.d)]
        self._chain_h: torch.Tensor | None = None  # persistent chain state (hidden sample)
        # the last step's samples (references to tensors the step made anyway) and the settings it ran
        # with: what :meth:`last_update` explains, at snapshot time only
        self.last: CDStats | None = None
        self._last_settings: tuple[float, int, float, float] = (self.lr, self.k, 0.0, 0.0)

    def validate(self) -> None:
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.k < 1:
            raise ValueError(f"CD-k needs k >= 1, got {self.k}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay}")

    def _sample(self, p: torch.Tensor) -> torch.Tensor:
        return self.uniform.bernoulli(p)

    @torch.no_grad()
    def step(self, x0: torch.Tensor, team: ProductTeam = ALONE) -> CDStats:
        """One CD-k update on the mini-batch ``x0`` (rows are binary visible vectors); its matrix products
        on ``team`` (a :class:`ProductTeam` the caller has entered), everything else as it comes."""
        rbm = self.rbm
        # 1. h^ ~ p(h | x0)
        ph0 = rbm.p_h_given_x(x0, team)
        h_hat = self._sample(ph0)
        # 2.-3. x~ ~ p(x | h), h~ ~ p(h | x~), k times (PCD starts from the persistent chain)
        h = h_hat
        if self.persistent and self._chain_h is not None and self._chain_h.shape == h_hat.shape:
            h = self._chain_h
        px_hat = None
        for _ in range(self.k):
            px = rbm.p_x_given_h(h, team)
            if px_hat is None:
                px_hat = px
            x_tilde = self._sample(px)
            ph = rbm.p_h_given_x(x_tilde, team)
            h = self._sample(ph)
        h_tilde = h
        assert px_hat is not None, "validate() keeps k >= 1, so the chain ran at least once"
        if self.persistent:
            self._chain_h = h_tilde
        # the lecture's update, averaged over the batch
        n = x0.shape[0]
        if not self.momentum and not self.weight_decay:
            # w += gamma/n (x'h^ - x~'h~), accumulated in place: no 784x500 temporaries
            scale = self.lr / n
            team(rbm.W.addmm_, x0.t(), h_hat, alpha=scale)
            team(rbm.W.addmm_, x_tilde.t(), h_tilde, alpha=-scale)
            rbm.b.add_(x0.sum(0) - x_tilde.sum(0), alpha=scale)
            rbm.d.add_(h_hat.sum(0) - h_tilde.sum(0), alpha=scale)
        else:
            # (on the whole team: besides its products, a few passes over the weights, large enough for it)
            team(self._update_with_momentum_or_decay, x0, h_hat, x_tilde, h_tilde)
        # the training error comes for free: p(x|h^) was computed for step 2 (with PCD it is computed here)
        if self.persistent:
            px_hat = rbm.p_x_given_h(h_hat, team)
        recon = F.mse_loss(px_hat, x0)
        self.last = CDStats(x0, h_hat, px_hat, x_tilde, h_tilde, recon)
        self._last_settings = (self.lr, self.k, self.momentum, self.weight_decay)
        return self.last

    def _update_with_momentum_or_decay(self, x0: torch.Tensor, h_hat: torch.Tensor, x_tilde: torch.Tensor,
                                       h_tilde: torch.Tensor) -> None:
        rbm, n = self.rbm, x0.shape[0]
        dW = (x0.t() @ h_hat - x_tilde.t() @ h_tilde) / n
        db = (x0 - x_tilde).mean(0)
        dd = (h_hat - h_tilde).mean(0)
        if self.weight_decay:
            dW = dW - self.weight_decay * rbm.W
        for param, vel, grad in zip((rbm.W, rbm.b, rbm.d), self.velocity, (dW, db, dd)):
            if self.momentum:
                vel.mul_(self.momentum).add_(grad, alpha=self.lr)
                param.add_(vel)
            else:
                param.add_(grad, alpha=self.lr)

    @torch.no_grad()
    def last_update(self) -> dict[str, np.ndarray | float]:
        """What the last step's update of W was made of, as CPU numpy arrays (empty before the first step).

        The lecture's update was w_ij += gamma (<x_i h^_j> - <x~_i h~_j>), the averages over the batch.
        The step adds x0'h^ and x~'h~ into W in place and never forms them, so this hands out the step's
        samples instead: ``cd_x`` (x0), ``cd_h_hat``, ``cd_x_tilde``, ``cd_h_tilde`` (batch x units; uint8
        when binary, as they are in CD, which keeps a snapshot small: 80 kB for a 784-500 RBM and a batch
        of 32, against 3 MB for the two products). :func:`cd_averages` forms the averages from them, for
        one weight or all. ``cd_lr`` = gamma, ``cd_k``, ``cd_batch``, ``cd_momentum``, ``cd_weight_decay``:
        the settings the step ran with.
        """
        st = self.last
        if st is None:
            return {}
        lr, k, momentum, decay = self._last_settings

        def compact(t: torch.Tensor) -> np.ndarray:
            a = t.detach().to("cpu", torch.float32).numpy()
            return a.astype(np.uint8) if ((a == 0) | (a == 1)).all() else a.copy()

        return {"cd_x": compact(st.x0), "cd_h_hat": compact(st.h_hat), "cd_x_tilde": compact(st.x_tilde),
                "cd_h_tilde": compact(st.h_tilde), "cd_lr": float(lr), "cd_k": int(k),
                "cd_batch": int(st.x0.shape[0]), "cd_momentum": float(momentum), "cd_weight_decay": float(decay)}

    def reset_state(self) -> None:
        for v in self.velocity:
            v.zero_()
        self._chain_h = None
        self.last = None

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer state worth saving (momentum buffers)."""
        return dict(zip(VELOCITY_NAMES, self.velocity))

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take the momentum buffers of :meth:`state_tensors` where they are there and fit; the others stay."""
        for i, name in enumerate(VELOCITY_NAMES):
            t = tensors.get(name)
            if t is not None and t.shape == self.velocity[i].shape:
                self.velocity[i] = t.to(self.velocity[i].device, torch.float32).clone()

    def to(self, device: torch.device) -> None:
        """Move the training state (momentum buffers, the persistent chain) after the RBM moved to ``device``."""
        self.velocity = [v.to(device) for v in self.velocity]
        if self._chain_h is not None:
            self._chain_h = self._chain_h.to(device)


VELOCITY_NAMES = ("velocity.W", "velocity.b", "velocity.d")  # the momentum buffers' names in a weights file


def cd_averages(arrays: dict, i: int | None = None, j: int | None = None,
                prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """<x_i h^_j> and <x~_i h~_j> of the last CD step from a snapshot's ``cd_`` samples (see
    :meth:`ContrastiveDivergence.last_update`): numbers for one weight (i, j), else (visible x hidden)
    matrices. w_ij changed by cd_lr * (first - second) in that step (without momentum or weight decay)."""
    x, h = arrays[prefix + "cd_x"], arrays[prefix + "cd_h_hat"]
    xt, ht = arrays[prefix + "cd_x_tilde"], arrays[prefix + "cd_h_tilde"]
    n = x.shape[0]
    if i is not None and j is not None:
        pos = np.dot(x[:, i].astype(np.float64), h[:, j]) / n
        neg = np.dot(xt[:, i].astype(np.float64), ht[:, j]) / n
        return np.float64(pos), np.float64(neg)
    return (x.T.astype(np.float64) @ h) / n, (xt.T.astype(np.float64) @ ht) / n


def binarize(x: torch.Tensor, mode: str, uniform: UniformSource | None = None) -> torch.Tensor:
    """Make grey-level inputs binary, as the lecture's RBM expects.

    ``sample``: each pixel is a Bernoulli draw with its grey level as probability (fresh each time);
    ``threshold``: pixel > 0.5.
    """
    if mode == "threshold":
        return (x > 0.5).to(x.dtype)
    if mode == "sample":
        return (uniform or UniformSource()).bernoulli(x)
    raise ValueError(f"unknown binarization {mode!r}: choose 'sample' or 'threshold'")


BINARIZE_MODES = ("sample", "threshold")
