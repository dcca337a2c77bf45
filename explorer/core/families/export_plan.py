"""What a family exports to ONNX (an :class:`ExportPlan`), and the pieces the families' plans share.

Each family's plan lives next to the family (``<family>/export.py``) and is named by its record in
``registry``; ``explorer.core.persist.export`` turns a plan into a file. Plans work on CPU copies in eval
mode, so the live model is never touched.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch

EXAMPLE_BATCH = 2  # the example input's batch size (any other works in the exported graph)


@dataclass
class ExportPlan:
    """What one family exports: a CPU copy of its network in eval mode, an example input, names and
    which axes may vary (``dynamic_axes`` in ``torch.onnx.export``'s format)."""

    module: torch.nn.Module
    example: torch.Tensor
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy on the CPU in eval mode, without gradients: the live module is left as it is."""
    cpu = copy.deepcopy(module).to("cpu").eval()
    for p in cpu.parameters():
        p.grad = None
        p.requires_grad_(False)
    return cpu


def batch_axes(names: list[str]) -> dict[str, dict[int, str]]:
    """Axis 0 of each named input or output is the batch (any length)."""
    return {n: {0: "batch"} for n in names}


def example_input(shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed example input with values in [0, 1] like the data (tracing only needs its shape)."""
    g = torch.Generator().manual_seed(0)
    return torch.rand((EXAMPLE_BATCH, *shape), generator=g)


def onnx_name(name: str) -> str:
    """An ONNX-friendly identifier ("relu-he" -> "relu_he")."""
    return re.sub(r"\W", "_", name)


def vector_input(trainer) -> tuple[int]:
    """The per-example input shape of a family trained on vectors (``dataset.n_visible`` features)."""
    return (int(trainer.dataset.n_visible),)


class SideBySide(torch.nn.Module):
    """Several networks on the same input, one output each (the comparison families)."""

    def __init__(self, nets: dict[str, torch.nn.Module]):
        super().__init__()
        self.nets = torch.nn.ModuleDict({onnx_name(k): v for k, v in nets.items()})

    def forward(self, x):
        return tuple(net(x) for net in self.nets.values())


def side_by_side_plan(trainer, shape: tuple[int, ...]) -> ExportPlan:
    """One graph of every network a comparison trainer runs (``trainer.runs``), ``<name>_logits`` each."""
    nets = {name: cpu_copy(run.model) for name, run in trainer.runs.items()}
    outs = [f"{onnx_name(name)}_logits" for name in nets]
    return ExportPlan(SideBySide(nets), example_input(shape), ["x"], outs, batch_axes(["x", *outs]))
