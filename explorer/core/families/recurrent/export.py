"""The LSTM's and RNN's ONNX export: the outputs o_t = V s_t and the states s_t.

The trainer's second network (the other kind, kept for the gradient comparison) is not exported."""

from __future__ import annotations

import torch

from explorer.core.families.export_plan import ExportPlan, cpu_copy, example_input


class SequenceOutputs(torch.nn.Module):
    """o_t = V s_t on every step, or only the last one (as the task is scored), and the states s_t."""

    def __init__(self, model: torch.nn.Module, every_step: bool):
        super().__init__()
        self.model = model
        self.every_step = bool(every_step)

    def forward(self, x):
        states, _ = self.model(x)
        out = self.model.V(states if self.every_step else states[:, -1])
        return out, states


def export_plan(trainer) -> ExportPlan:
    """x (N, T, n_in) -> outputs (N, T, n_out), or (N, n_out) for tasks scored at the last step; states."""
    data = trainer.dataset
    seq = {0: "batch", 1: "time"}
    axes = {"x": seq, "states": seq, "outputs": seq if data.every_step else {0: "batch"}}
    return ExportPlan(SequenceOutputs(cpu_copy(trainer.model), data.every_step),
                      example_input((int(data.length), int(data.n_in))), ["x"], ["outputs", "states"], axes)
