"""Export a trained model for use outside the app: an ONNX graph, or its weights as safetensors.

ONNX: the network's forward pass with its current weights, runnable by any ONNX runtime. What each
family exports (inputs and outputs are float32; the batch axis, and the time axis of a sequence, may
have any length):

    rbm          x (N, n_visible)  ->  p_h = p(h=1|x) = sigmoid(x W + d),  reconstruction = p(x|p_h)
    autoencoder  x (N, n_visible)  ->  code h = sigmoid(W x + b),  reconstruction
    mlp          x (N, n_visible)  ->  logits (N, classes)
    compare      x (N, n_visible)  ->  <start>_logits for each of the networks compared (one graph)
    cnn          x (N, C, H, W)    ->  probabilities (a final Softmax layer) or logits (N, outputs)
    fcn          x (N, C, H, W)    ->  logits (N, classes, H, W)
    fcn-compare  x (N, C, H, W)    ->  skips_logits, noskips_logits (both networks, one graph)
    lstm, rnn    x (N, T, n_in)    ->  outputs o_t = V s_t (N, T, n_out), or (N, n_out) for tasks scored
                                       at the last step; states s_t (N, T, hidden)

The LSTM/RNN trainer's second network (the other kind, kept for the gradient comparison) is not
exported. Each family's plan lives next to it (``explorer/core/families/<family>/export.py``) and is
named by its record in ``explorer.core.families.registry``; a family without one cannot be exported
to ONNX. safetensors: the trainer's ``state_tensors()`` -- weights and optimiser state, named as in a
run folder's ``weights.safetensors``.

Export never touches the live model: it works on a CPU copy in eval mode. Call it on the training
thread between steps (``session.call_in_thread``) or while the session is paused, so the copy is
never taken half-way through an update. Files are written atomically.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from explorer.core.atomic import atomic_write, atomic_write_bytes
from explorer.core.families.export_plan import ExportPlan
from explorer.core.families.registry import FAMILIES
from explorer.core.persist.runfolder import RUN_FORMAT, cpu_state_tensors
from explorer.core.sizes import format_bytes

ONNX_OPSET = 17


class ExportError(ValueError):
    """Export is impossible here (a missing package, an unknown family, an operator ONNX lacks); one line.

    A ValueError, so the command line reports it as one line with exit status 2, like bad input."""


def export_plan(trainer) -> ExportPlan:
    """The family's :class:`ExportPlan` (CPU copies taken now: call between steps), by the plan its record in
    the registry names."""
    family = FAMILIES.get(trainer.family)
    plan = family.export_plan if family is not None else None
    if plan is None:
        raise ExportError(f"the {trainer.family} family cannot be exported to ONNX")
    return plan(trainer)


ONNX_MISSING = ('ONNX export needs the onnx package, which is not installed: pip install "onnx>=1.16" '
                '(or pip install "network-explorer[export]")')


def require_onnx():
    """The ``onnx`` module (an optional dependency, the ``[export]`` extra), or an ExportError that names
    the package and the command that installs it."""
    try:
        import onnx
    except ImportError:
        raise ExportError(ONNX_MISSING) from None
    return onnx


# -- the two formats -----------------------------------------------------------------------------------
def export_onnx(trainer, path: str | Path) -> Path:
    """Write the trainer's network with its current weights as an ONNX graph at ``path``; returns it."""
    onnx = require_onnx()
    plan = export_plan(trainer)
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes are not for the user
            # the TorchScript exporter (dynamo=False) writes to a file object too; torch annotates f as a path only
            torch.onnx.export(plan.module, (plan.example,), buf,  # type: ignore[arg-type]
                              input_names=plan.input_names,
                              output_names=plan.output_names, dynamic_axes=plan.dynamic_axes,
                              opset_version=ONNX_OPSET, dynamo=False)
    except Exception as exc:  # noqa: BLE001 - an operator ONNX lacks, say: one line for the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"the {trainer.family} network could not be converted to ONNX: {first}") from exc
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name = "Network Explorer"
    describe = getattr(trainer, "describe", None)
    meta = {"family": trainer.family, "step": str(int(trainer.step)), "epoch": str(int(trainer.epoch))}
    if describe is not None:
        meta["description"] = describe()
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:  # a converter fault: never write a graph runtimes reject
        raise ExportError(f"the {trainer.family} ONNX graph failed its check: {str(exc).splitlines()[0]}") from exc
    return atomic_write_bytes(path, model.SerializeToString())


def export_safetensors(trainer, path: str | Path) -> Path:
    """Write the trainer's ``state_tensors()`` (weights and optimiser state) as safetensors at ``path``."""
    from safetensors.torch import save_file

    tensors = cpu_state_tensors(trainer)
    meta = {"family": trainer.family, "format": RUN_FORMAT, "step": str(int(trainer.step))}
    return atomic_write(path, lambda p: save_file(tensors, str(p), metadata=meta))


def export_run_safetensors(run, path: str | Path) -> Path:
    """Write a saved run's weights and optimiser state (a ``RunFolder``'s tensors, as its weights.safetensors
    holds them: what :func:`export_safetensors` writes of the trainer restored from it) at ``path``.

    Why: no model is built and no data read, so a run whose training images moved, or whose MNIST files are
    elsewhere, exports all the same. Check the tensors against the run's model first
    (``explorer.core.persist.inspect.weights_unchecked``)."""
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in run.tensors.items()}
    meta = {"family": run.family, "format": RUN_FORMAT, "step": str(int(run.step))}
    return atomic_write(path, lambda p: save_file(tensors, str(p), metadata=meta))


def file_size_text(path: str | Path) -> str:
    """A file's size for people: "812 bytes", "29.6 kB", "2.2 MB"."""
    return format_bytes(Path(path).stat().st_size)


EXPORTERS: dict[str, Callable[..., Path]] = {"onnx": export_onnx, "safetensors": export_safetensors}
LABELS = {"onnx": "ONNX", "safetensors": "safetensors"}


__all__ = ["ExportError", "ExportPlan", "export_plan", "export_onnx", "export_safetensors", "export_run_safetensors",
           "require_onnx", "EXPORTERS", "LABELS", "ONNX_OPSET", "file_size_text"]
