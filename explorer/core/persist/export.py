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
exported. safetensors: the trainer's ``state_tensors()`` -- weights and optimiser state, named as in a
run folder's ``weights.safetensors``.

Export never touches the live model: it works on a CPU copy in eval mode. Call it on the training
thread between steps (``session.call_in_thread``) or while the session is paused, so the copy is
never taken half-way through an update. Files are written atomically.
"""

from __future__ import annotations

import copy
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.core.atomic import atomic_write, atomic_write_bytes
from explorer.core.persist.runfolder import RUN_FORMAT, cpu_state_tensors
from explorer.core.sizes import format_bytes

ONNX_OPSET = 17
EXAMPLE_BATCH = 2  # the example input's batch size (any other works in the exported graph)


class ExportError(ValueError):
    """Export is impossible here (a missing package, an unknown family, an operator ONNX lacks); one line.

    A ValueError, so the command line reports it as one line with exit status 2, like bad input."""


@dataclass
class ExportPlan:
    """What one family exports: a CPU copy of its network in eval mode, an example input, names and
    which axes may vary (``dynamic_axes`` in ``torch.onnx.export``'s format)."""

    module: torch.nn.Module
    example: torch.Tensor
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def _cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy on the CPU in eval mode, without gradients: the live module is left as it is."""
    cpu = copy.deepcopy(module).to("cpu").eval()
    for p in cpu.parameters():
        p.grad = None
        p.requires_grad_(False)
    return cpu


def _batch_axes(names: list[str]) -> dict[str, dict[int, str]]:
    return {n: {0: "batch"} for n in names}


def _example(shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed example input with values in [0, 1] like the data (tracing only needs its shape)."""
    g = torch.Generator().manual_seed(0)
    return torch.rand((EXAMPLE_BATCH, *shape), generator=g)


def _names(name: str) -> str:
    """An ONNX-friendly identifier ("relu-he" -> "relu_he")."""
    return re.sub(r"\W", "_", name)


# -- what each family exports ---------------------------------------------------------------------------
class _RBMProbabilities(torch.nn.Module):
    """p(h=1|x) and the mean-field reconstruction p(x=1|h=p(h|x)), the lecture's conditionals."""

    def __init__(self, rbm: torch.nn.Module):
        super().__init__()
        self.rbm = rbm

    def forward(self, x):
        p_h = self.rbm.p_h_given_x(x)
        return p_h, self.rbm.p_x_given_h(p_h)


class _SideBySide(torch.nn.Module):
    """Several networks on the same input, one output each (the comparison families)."""

    def __init__(self, nets: dict[str, torch.nn.Module]):
        super().__init__()
        self.nets = torch.nn.ModuleDict({_names(k): v for k, v in nets.items()})

    def forward(self, x):
        return tuple(net(x) for net in self.nets.values())


class _SequenceOutputs(torch.nn.Module):
    """o_t = V s_t on every step, or only the last one (as the task is scored), and the states s_t."""

    def __init__(self, model: torch.nn.Module, every_step: bool):
        super().__init__()
        self.model = model
        self.every_step = bool(every_step)

    def forward(self, x):
        states, _ = self.model(x)
        out = self.model.V(states if self.every_step else states[:, -1])
        return out, states


def _vector_input(trainer) -> tuple[int]:
    return (int(trainer.dataset.n_visible),)


def _plan_rbm(trainer) -> ExportPlan:
    outs = ["p_h", "reconstruction"]
    return ExportPlan(_RBMProbabilities(_cpu_copy(trainer.rbm)), _example(_vector_input(trainer)), ["x"], outs,
                      _batch_axes(["x", *outs]))


def _plan_autoencoder(trainer) -> ExportPlan:
    outs = ["code", "reconstruction"]
    return ExportPlan(_cpu_copy(trainer.model), _example(_vector_input(trainer)), ["x"], outs,
                      _batch_axes(["x", *outs]))


def _plan_mlp(trainer) -> ExportPlan:
    return ExportPlan(_cpu_copy(trainer.model), _example(_vector_input(trainer)), ["x"], ["logits"],
                      _batch_axes(["x", "logits"]))


def _plan_compare(trainer) -> ExportPlan:
    nets = {name: _cpu_copy(run.model) for name, run in trainer.runs.items()}
    outs = [f"{_names(name)}_logits" for name in nets]
    return ExportPlan(_SideBySide(nets), _example(_vector_input(trainer)), ["x"], outs, _batch_axes(["x", *outs]))


def _plan_cnn(trainer) -> ExportPlan:
    out = "probabilities" if trainer.spec.layers[-1].type == "Softmax" else "logits"
    return ExportPlan(_cpu_copy(trainer.model), _example(tuple(trainer.input_shape)), ["x"], [out],
                      _batch_axes(["x", out]))


def _plan_fcn(trainer) -> ExportPlan:
    shape = (trainer.channels, trainer.height, trainer.width)
    return ExportPlan(_cpu_copy(trainer.model), _example(shape), ["x"], ["logits"], _batch_axes(["x", "logits"]))


def _plan_fcn_compare(trainer) -> ExportPlan:
    nets = {name: _cpu_copy(run.model) for name, run in trainer.runs.items()}
    first = trainer.runs["skips"]
    outs = [f"{_names(name)}_logits" for name in nets]
    return ExportPlan(_SideBySide(nets), _example((first.channels, first.height, first.width)), ["x"], outs,
                      _batch_axes(["x", *outs]))


def _plan_recurrent(trainer) -> ExportPlan:
    data = trainer.dataset
    seq = {0: "batch", 1: "time"}
    axes = {"x": seq, "states": seq, "outputs": seq if data.every_step else {0: "batch"}}
    return ExportPlan(_SequenceOutputs(_cpu_copy(trainer.model), data.every_step),
                      _example((int(data.length), int(data.n_in))), ["x"], ["outputs", "states"], axes)


PLANS: dict[str, Callable[..., ExportPlan]] = {
    "rbm": _plan_rbm,
    "autoencoder": _plan_autoencoder,
    "mlp": _plan_mlp,
    "compare": _plan_compare,
    "cnn": _plan_cnn,
    "fcn": _plan_fcn,
    "fcn-compare": _plan_fcn_compare,
    "lstm": _plan_recurrent,
    "rnn": _plan_recurrent,
}


def export_plan(trainer) -> ExportPlan:
    """The family's :class:`ExportPlan` (CPU copies taken now: call between steps)."""
    plan = PLANS.get(trainer.family)
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


def file_size_text(path: str | Path) -> str:
    """A file's size for people: "812 bytes", "29.6 kB", "2.2 MB"."""
    return format_bytes(Path(path).stat().st_size)


EXPORTERS: dict[str, Callable[..., Path]] = {"onnx": export_onnx, "safetensors": export_safetensors}
LABELS = {"onnx": "ONNX", "safetensors": "safetensors"}


__all__ = ["ExportError", "ExportPlan", "export_plan", "export_onnx", "export_safetensors", "require_onnx",
           "EXPORTERS", "LABELS", "ONNX_OPSET", "PLANS", "file_size_text"]
