"""Small stand-ins for the model's description, snapshot and gradient norms (discover.py, snapshot.py,
gradients.py), with their signatures and the contract's array names, for the watcher's tests while those
modules are not in this branch. ``install()`` puts a stand-in in place only of a module that is missing."""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import torch
from torch import nn

KINDS = {nn.Conv2d: "conv", nn.Conv1d: "conv", nn.MaxPool2d: "pool", nn.Linear: "linear", nn.ReLU: "activation",
         nn.Tanh: "activation", nn.Sigmoid: "activation"}


def _leaves(model: nn.Module):
    return [(name, m) for name, m in model.named_modules() if name and not list(m.children())]


def _forward(model: nn.Module, probe, hooks_for):
    outs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o.detach()))
               for n, m in hooks_for]
    was = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            out = model(*probe) if isinstance(probe, tuple) else model(probe)
    finally:
        for h in handles:
            h.remove()
        for m, t in was.items():
            m.training = t
    return out, outs


def describe_model(model: nn.Module, probe=None, *, name: str | None = None) -> dict:
    leaves = _leaves(model)
    shapes: dict[str, list[int]] = {}
    out_shape = None
    if probe is not None:
        out, outs = _forward(model, probe, leaves)
        shapes = {n: list(o.shape) for n, o in outs.items()}
        out_shape = list(out.shape)
    layers = [{"name": n, "type": type(m).__name__, "kind": KINDS.get(type(m), "other"),
               "params": sum(p.numel() for p in m.parameters()), "out_shape": shapes.get(n),
               "depth": n.count(".") + 1} for n, m in leaves]
    first = probe[0] if isinstance(probe, tuple) else probe
    return {"name": name or type(model).__name__, "framework": f"torch {torch.__version__}", "device": "cpu",
            "input_shape": list(first.shape) if first is not None else None, "output_shape": out_shape,
            "segmentation": False, "layers": layers,
            "grad_layers": [n for n, m in model.named_modules() if n and list(m.parameters(recurse=False))]}


def take_snapshot(model: nn.Module, probe, description: dict, *, target=None, erf=None):
    leaves = dict(_leaves(model))
    arrays: dict[str, np.ndarray] = {}
    for n, m in leaves.items():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            arrays[f"weight/{n}"] = m.weight.detach().cpu().numpy().astype(np.float32)
    if probe is None:
        return arrays, {}
    out, outs = _forward(model, probe, list(leaves.items()))
    first = probe[0] if isinstance(probe, tuple) else probe
    arrays["input"] = first[0].cpu().numpy().astype(np.float32)
    for n, o in outs.items():
        arrays[f"act/{n}"] = (o[0] if o.dim() == 4 else o).cpu().numpy().astype(np.float32)
    arrays["output"] = out[0].cpu().numpy().astype(np.float32)
    if erf is not None:
        arrays[f"erf/{erf['layer']}"] = np.ones(tuple(first.shape[-2:]), np.float32)
    return arrays, {"saturated/relu": float((outs["relu"] == 0).float().mean())} if "relu" in outs else {}


def grad_norms(model: nn.Module, grad_layers: list[str]) -> np.ndarray:
    modules = dict(model.named_modules())
    out = np.full(len(grad_layers), np.nan, np.float32)
    for i, n in enumerate(grad_layers):
        grads = [p.grad for p in modules[n].parameters(recurse=False) if p.grad is not None]
        if grads:
            out[i] = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
    return out


STANDINS = {"explorer.core.watch.discover": {"describe_model": describe_model},
            "explorer.core.watch.snapshot": {"take_snapshot": take_snapshot},
            "explorer.core.watch.gradients": {"grad_norms": grad_norms}}


def install() -> list[str]:
    """Put a stand-in module in place of each of the three that cannot be imported; their names."""
    installed = []
    for module_name, names in STANDINS.items():
        try:
            importlib.import_module(module_name)
        except ImportError:
            module = types.ModuleType(module_name)
            module.__dict__.update(names)
            sys.modules[module_name] = module
            installed.append(module_name)
    return installed
