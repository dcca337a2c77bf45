"""The CNN's ONNX export: probabilities when the spec ends in Softmax, else logits."""

from __future__ import annotations

from explorer.core.families.export_plan import ExportPlan, batch_axes, cpu_copy, example_input


def export_plan(trainer) -> ExportPlan:
    """x (N, C, H, W) -> probabilities or logits (N, outputs)."""
    out = "probabilities" if trainer.spec.layers[-1].type == "Softmax" else "logits"
    return ExportPlan(cpu_copy(trainer.model), example_input(tuple(trainer.input_shape)), ["x"], [out],
                      batch_axes(["x", out]))
