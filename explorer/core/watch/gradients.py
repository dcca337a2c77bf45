"""The gradient norm of every layer with parameters, read from the ``.grad`` the user's backward left.

Read at ``watcher.step()`` time, after the user's ``loss.backward()`` (and ``opt.step()``): the gradients
are still there. One ``torch._foreach_norm`` over all of them (a fused kernel per device and dtype) and one
copy of the norms to the CPU, then combined per layer as sqrt(Σ norm²): a layer is the module that owns
the parameters directly (``grad_layers`` of the model description). Nothing is written: the gradients, the
parameters and the optimizer stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from explorer.core.watch.discover import modules_by_name


def _dense(grad: torch.Tensor) -> torch.Tensor:
    """A sparse gradient (an ``Embedding(sparse=True)``'s) by its values: the same norm."""
    return grad.coalesce().values() if grad.is_sparse else grad


def grad_norms(model: nn.Module, grad_layers: list[str], modules: dict[str, nn.Module] | None = None) -> np.ndarray:
    """(L,) float32: the L2 norm of the gradients of each module of ``grad_layers`` (its own parameters,
    not its children's), NaN for a module none of whose parameters has a gradient (or no such module).
    ``modules``: the model's :func:`modules_by_name`, when the caller keeps it."""
    if modules is None:
        modules = modules_by_name(model)
    grads: list[torch.Tensor] = []
    owner: list[int] = []
    for index, name in enumerate(grad_layers):
        module = modules.get(name)
        if module is None:
            continue
        # the module's own parameters, as parameters(recurse=False) lists them, read from its dict (the
        # generator behind parameters() costs more than the norms of a small model)
        own: Iterable[torch.Tensor | None] = module._parameters.values()
        if len(module._parameters) > 1:  # one parameter registered under two names counts once, as parameters() lists it
            own = list({id(p): p for p in own}.values())
        for p in own:
            grad = p.grad if p is not None else None
            if grad is not None:
                grads.append(_dense(grad))
                owner.append(index)
    out = np.full(len(grad_layers), np.nan, dtype=np.float32)
    if not grads:
        return out
    with torch.no_grad():  # (a backward with create_graph=True leaves gradients that have a history)
        norms = torch._foreach_norm(grads, 2, dtype=torch.float32)
        try:
            stacked = torch.stack(norms)
        except RuntimeError:  # the parameters are on several devices
            stacked = torch.stack([n.to(norms[0].device) for n in norms])
    flat = stacked.cpu().numpy()
    if len(set(owner)) == len(owner):  # one parameter per layer: its norm is the layer's
        out[owner] = flat
        return out
    flat = flat.astype(np.float64)
    owners = np.asarray(owner)
    squares = np.bincount(owners, weights=flat * flat, minlength=len(grad_layers))
    out[owners] = np.sqrt(squares[owners])
    return out
