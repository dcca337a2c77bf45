"""The FCN's ONNX export, and the with/without skips comparison in one graph."""

from __future__ import annotations

from explorer.core.families.export_plan import ExportPlan, batch_axes, cpu_copy, example_input, side_by_side_plan


def export_plan(trainer) -> ExportPlan:
    """x (N, C, H, W) -> logits (N, classes, H, W)."""
    shape = (trainer.channels, trainer.height, trainer.width)
    return ExportPlan(cpu_copy(trainer.model), example_input(shape), ["x"], ["logits"], batch_axes(["x", "logits"]))


def compare_export_plan(trainer) -> ExportPlan:
    """x (N, C, H, W) -> skips_logits, noskips_logits."""
    first = trainer.runs["skips"]
    return side_by_side_plan(trainer, (first.channels, first.height, first.width))
