"""Where the random numbers for Bernoulli sampling come from, for every family that samples.

Sampling a binary unit is ``u < p`` with ``u ~ U(0, 1)``; every draw goes through one
:class:`UniformSource`, so a trainer can draw fast on the CPU (:class:`NumpyUniforms`) and a test can
fix the draws (:class:`FixedDraws`) to check a step by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class UniformSource:
    """Where the random numbers for Bernoulli sampling come from.

    Sampling a binary unit is ``u < p`` with ``u ~ U(0, 1)``. Routing every draw through one
    object lets a test replace the draws with fixed numbers and check a CD update against a
    hand computation, and lets the CPU use a faster generator than the GPU.
    """

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator

    def __call__(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """Fresh uniforms in [0, 1) of ``shape``, on ``like``'s device and dtype (a new tensor)."""
        return torch.rand(tuple(shape), generator=self.generator, device=like.device, dtype=like.dtype)

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        """Binary samples (as ``p``'s dtype) that are 1 with probability ``p``."""
        return self(p.shape, p).lt_(p)


class NumpyUniforms(UniformSource):
    """CPU uniforms from numpy's PCG64: about twice as fast as torch's CPU generator (mt19937),
    which matters because a CD-1 step draws a uniform for every visible and hidden unit three times.
    Other devices fall back to torch's generator on that device.
    """

    def __init__(self, seed: int, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.rng = np.random.default_rng(seed)

    def __call__(self, shape, like):
        if like.device.type != "cpu":
            return super().__call__(shape, like)
        u = torch.from_numpy(self.rng.random(tuple(shape), dtype=np.float32))
        return u if like.dtype == torch.float32 else u.to(like.dtype)


class FixedDraws(UniformSource):
    """Hands out pre-set uniform draws in order (for exact tests)."""

    def __init__(self, draws: Sequence[torch.Tensor]):
        super().__init__(None)
        self._draws = list(draws)

    def __call__(self, shape, like):
        if not self._draws:
            raise RuntimeError("FixedDraws: ran out of draws")
        u = self._draws.pop(0)
        if tuple(u.shape) != tuple(shape):
            raise RuntimeError(f"FixedDraws: expected a draw of shape {tuple(shape)}, got {tuple(u.shape)}")
        return u.to(device=like.device, dtype=like.dtype).clone()
