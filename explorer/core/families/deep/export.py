"""The deep MLP's ONNX export, and the four starts compared in one graph."""

from __future__ import annotations

from explorer.core.families.export_plan import (
    ExportPlan,
    batch_axes,
    cpu_copy,
    example_input,
    side_by_side_plan,
    vector_input,
)


def export_plan(trainer) -> ExportPlan:
    """x (N, n_visible) -> logits (N, classes)."""
    return ExportPlan(cpu_copy(trainer.model), example_input(vector_input(trainer)), ["x"], ["logits"],
                      batch_axes(["x", "logits"]))


def compare_export_plan(trainer) -> ExportPlan:
    """x (N, n_visible) -> <start>_logits for each of the networks compared."""
    return side_by_side_plan(trainer, vector_input(trainer))
