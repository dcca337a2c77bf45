"""The RBM's ONNX export: p(h=1|x) and the mean-field reconstruction."""

from __future__ import annotations

import torch

from explorer.core.families.export_plan import ExportPlan, batch_axes, cpu_copy, example_input, vector_input


class RBMProbabilities(torch.nn.Module):
    """p(h=1|x) and the mean-field reconstruction p(x=1|h=p(h|x)), the lecture's conditionals."""

    def __init__(self, rbm: torch.nn.Module):
        super().__init__()
        self.rbm = rbm

    def forward(self, x):
        p_h = self.rbm.p_h_given_x(x)
        return p_h, self.rbm.p_x_given_h(p_h)


def export_plan(trainer) -> ExportPlan:
    """x (N, n_visible) -> p_h, reconstruction."""
    outs = ["p_h", "reconstruction"]
    return ExportPlan(RBMProbabilities(cpu_copy(trainer.rbm)), example_input(vector_input(trainer)), ["x"], outs,
                      batch_axes(["x", *outs]))
