"""The autoencoder's ONNX export: the code and the reconstruction."""

from __future__ import annotations

from explorer.core.families.export_plan import ExportPlan, batch_axes, cpu_copy, example_input, vector_input


def export_plan(trainer) -> ExportPlan:
    """x (N, n_visible) -> code h = sigmoid(W x + b), reconstruction."""
    outs = ["code", "reconstruction"]
    return ExportPlan(cpu_copy(trainer.model), example_input(vector_input(trainer)), ["x"], outs,
                      batch_axes(["x", *outs]))
