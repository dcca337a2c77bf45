"""Network specs: a JSON-able description of a layer stack, its shape inference and validation,
building it as a torch module, and exporting it as a standalone Python file.

Shapes are per example (no batch dimension): (C, H, W) for images, (F,) for vectors and
(T, F) for sequences. Layer indices shown to users are 1-based ("Conv2d #3").

Receptive field (one side, in input pixels) of one output unit, for conv/pool/LCN layers:
    r_out = r_in + (k - 1) * j_in,   j_out = j_in * stride        (padding does not change it)
starting from r = j = 1 at the input image. Activations, Dropout, Softmax keep it; Concat takes
the larger of its two inputs. ConvTranspose2d and Upsample set it to None (an upsampled unit
has no single receptive field in this simple model), and so do Flatten, Linear and every layer
on a non-image input.

MACs (multiply-adds for one example): conv out_h*out_w*out_c*in_c*k*k; transposed conv
in_h*in_w*in_c*out_c*k*k; linear in*out (times T on a sequence); RBM in*hidden; RNN
hidden*(in+hidden)*T; LSTM 4*hidden*(in+hidden)*T; pooling, LCN and activations 0.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from explorer.core.atomic import atomic_write_text
from explorer.core.limits import FLOAT_BYTES, MAX_LAYERS, MEMORY_LIMIT_ENV, memory_limit
from explorer.core.safe_read import UnsafeFileError, read_json
from explorer.core.sizes import format_bytes

SPEC_FORMAT = "network-explorer-spec"
SPEC_VERSION = 1

MAX_SIZE = 65536                 # any one dimension, channel count, feature count
MAX_TOTAL_PARAMS = 250_000_000   # ~1 GB of float32 weights
MAX_INPUT_ELEMENTS = 1 << 26


class SpecError(ValueError):
    """A one-line message naming the layer: ``"Conv2d #3: kernel 7 is larger than its 5x5 input"``."""


# The families a spec may name. They are declared in explorer.core.families.registry (the families that
# can be built from a spec), a layer above this module, which tells them here when it is imported (and
# importing any family imports it: see explorer/core/families/__init__.py).
_spec_families: tuple[str, ...] = ()


def accept_spec_families(names: tuple[str, ...]) -> None:
    """Set the families a spec may name (the registry calls this; tests may, to try another registry)."""
    global _spec_families
    _spec_families = tuple(names)


def spec_families() -> tuple[str, ...]:
    """The families a spec may name, as the registry declared them."""
    return _spec_families


def _family_problem(family: Any) -> str | None:
    """Why ``family`` is not a family a spec may name; None when it is one."""
    if not _spec_families:  # a fault of the program, not of the spec: say how to fix it
        return "Network: no model families are loaded (import explorer.core.families.registry first)"
    if not isinstance(family, str) or family not in _spec_families:
        return f"Network: unknown family {family!r} (expected one of {', '.join(_spec_families)})"
    return None


@dataclass(frozen=True)
class ParamDef:
    name: str
    kind: str            # "int", "float", "bool", "choice", "ref" (index of an earlier layer, 1-based; 0 = input)
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class LayerType:
    name: str
    params: tuple[ParamDef, ...]
    help: str


def _int(name, default, minimum=1, maximum=MAX_SIZE, help=""):
    return ParamDef(name, "int", default, minimum, maximum, (), help)


_KERNEL = _int("kernel_size", 3, 1, 1024, "side of the square kernel")
_STRIDE = _int("stride", 1, 1, 1024, "step between kernel positions")
_PADDING = _int("padding", 0, 0, 1024, "zeros added on each side")

LAYER_TYPES: dict[str, LayerType] = {t.name: t for t in (
    LayerType("Linear", (_int("out_features", 64, help="output units"),
                         ParamDef("bias", "bool", True, help="learn a bias per output unit")),
              "Fully connected layer: every output unit sees every input unit (applied per time step on a sequence)."),
    LayerType("Conv2d", (_int("out_channels", 16, help="feature maps (learned kernels)"), _KERNEL, _STRIDE, _PADDING),
              "Convolution with learned kernels whose parameters are shared by all pixels."),
    LayerType("MaxPool2d", (_int("kernel_size", 2, 1, 1024, "side of the pooling window"),
                            _int("stride", 2, 1, 1024, "step between windows")),
              "Pooling (max) of filter responses at nearby locations: robustness to exact position, larger receptive field."),
    LayerType("AvgPool2d", (_int("kernel_size", 2, 1, 1024, "side of the pooling window"),
                            _int("stride", 2, 1, 1024, "step between windows")),
              "Pooling (average, subsampling) of filter responses at nearby locations."),
    LayerType("ReLU", (), "Rectified linear unit u = max(0, x): fast, reduces vanishing gradients, sparse."),
    LayerType("Sigmoid", (), "Logistic sigmoid 1 / (1 + exp(-x)): values between 0 and 1."),
    LayerType("Tanh", (), "Hyperbolic tangent: values between -1 and 1."),
    LayerType("LocalContrastNorm", (_int("size", 5, 1, 255, "odd side of the neighbourhood N(x, y)"),
                                    ParamDef("eps", "float", 1e-2, 1e-12, 1e6, (), "floor for the local std")),
              "Local contrast normalisation: equalizes feature maps, (h - m(N)) / max(eps, sigma(N)) per channel."),
    LayerType("Dropout", (ParamDef("p", "float", 0.5, 0.0, 1.0, (), "probability of zeroing a unit in training"),),
              "Dropout: randomly zeroes units with probability p during training."),
    LayerType("Flatten", (), "Flatten feature maps (or a sequence) into one vector, before fully connected layers."),
    LayerType("ConvTranspose2d", (_int("out_channels", 16, help="feature maps"),
                                  _int("kernel_size", 2, 1, 1024, "side of the kernel"),
                                  _int("stride", 2, 1, 1024, "upsampling factor"), _PADDING),
              "Upsampling via deconvolution (transposed convolution): H_out = (H - 1) * stride - 2 * padding + kernel."),
    LayerType("Upsample", (_int("scale_factor", 2, 1, 64, "size multiplier"),
                           ParamDef("mode", "choice", "nearest", None, None, ("nearest", "bilinear"), "interpolation")),
              "Upsampling by interpolation (no parameters): H_out = H * scale_factor."),
    LayerType("Concat", (ParamDef("source", "ref", 1, 0, None, (), "earlier layer (1-based; 0 = the input) to concatenate"),),
              "Skip connection: concatenates an earlier layer's output with this one along channels (same H, W)."),
    LayerType("RBM", (_int("hidden", 100, help="hidden units h"),),
              "Restricted Boltzmann machine: p(h_j = 1 | x) = sigmoid(sum_i w_ij x_i + d_j); must be the first layer."),
    LayerType("RNN", (_int("hidden_size", 32, help="hidden state size"),
                      ParamDef("nonlinearity", "choice", "tanh", None, None, ("tanh", "relu"), "activation"),
                      ParamDef("bias", "bool", True, help="learn a bias b in s_t = tanh(U x_t + W s_t-1 + b)")),
              "Recurrent layer: every step performs the same task with the same weights (U, V, W), keeping a memory."),
    LayerType("LSTM", (_int("hidden_size", 32, help="hidden state size"),
                       ParamDef("bias", "bool", True, help="learn gate biases")),
              "Long short-term memory: forget, input and output gates and a cell state c_t against long-term forgetting."),
    LayerType("SequenceLast", (), "Keep only the last time step of a sequence: (T, F) -> (F,)."),
    LayerType("Softmax", (), "Softmax output layer: probabilities over classes (over channels for images)."),
)}


def layer_types() -> dict[str, LayerType]:
    return dict(LAYER_TYPES)


@dataclass
class LayerSpec:
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetworkSpec:
    family: str
    input_shape: tuple[int, ...]
    layers: list[LayerSpec]
    hparams: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""

    def copy(self) -> NetworkSpec:
        return copy.deepcopy(self)


@dataclass
class LayerInfo:
    index: int
    type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    params: int
    macs: int
    rf_size: int | None
    rf_jump: int | None
    error: str | None


@dataclass
class Inference:
    layers: list[LayerInfo]
    total_params: int
    total_macs: int
    output_shape: tuple[int, ...] | None
    connections: list[tuple[int, int]] = field(default_factory=list)
    spec_error: str | None = None      # a network-level problem ("Network: ..."), not tied to one layer

    @property
    def valid(self) -> bool:
        return self.first_error is None

    @property
    def first_error(self) -> str | None:
        if self.spec_error:
            return self.spec_error
        for info in self.layers:
            if info.error:
                return info.error
        return None


def new_layer(type_name: str) -> LayerSpec:
    if type_name not in LAYER_TYPES:
        raise SpecError(f"unknown layer type {type_name!r}")
    return LayerSpec(type_name, {p.name: p.default for p in LAYER_TYPES[type_name].params})


# --------------------------------------------------------------------------------------------
# shape inference


class _LayerProblem(Exception):
    pass


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "x".join(str(s) for s in shape)


def _is_int(v: object) -> TypeGuard[int]:
    """A whole number that is not a bool (JSON's true/false load as bools, which are ints to Python)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num_text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _resolve_params(ltype: LayerType, raw) -> dict[str, Any]:
    """Defaults filled in, values checked and normalised; raises _LayerProblem with the reason."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _LayerProblem(f"parameters must be a mapping, got {type(raw).__name__}")
    known = {p.name for p in ltype.params}
    extra = [k for k in raw if k not in known]
    if extra:
        expected = ", ".join(sorted(known)) if known else "none"
        raise _LayerProblem(f"unknown parameter {extra[0]!r} (expected: {expected})")
    out: dict[str, Any] = {}
    for p in ltype.params:
        v = raw.get(p.name, p.default)
        if p.kind in ("int", "ref"):
            if isinstance(v, float) and math.isfinite(v) and v == int(v):
                v = int(v)
            if not _is_int(v):
                raise _LayerProblem(f"{p.name} must be a whole number, got {v!r}")
        elif p.kind == "float":
            if not _is_number(v) or not math.isfinite(v):
                raise _LayerProblem(f"{p.name} must be a number, got {v!r}")
            v = float(v)
        elif p.kind == "bool":
            if not isinstance(v, bool):
                raise _LayerProblem(f"{p.name} must be true or false, got {v!r}")
        elif p.kind == "choice":
            if not isinstance(v, str) or v not in p.choices:
                raise _LayerProblem(f"{p.name} must be one of {', '.join(p.choices)}, got {v!r}")
        if p.kind in ("int", "float"):
            lo, hi = p.minimum, p.maximum
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                if lo is not None and hi is not None and p.kind == "float":
                    raise _LayerProblem(f"{p.name} must be between {_num_text(lo)} and {_num_text(hi)}, got {_num_text(v)}")
                if lo is not None and v < lo:
                    raise _LayerProblem(f"{p.name} must be at least {_num_text(lo)}, got {_num_text(v)}")
                raise _LayerProblem(f"{p.name} must be at most {_num_text(hi)}, got {_num_text(v)}")
        out[p.name] = v
    return out


def _check_input_shape(shape) -> tuple[int, ...]:
    ok = isinstance(shape, (tuple, list)) and 1 <= len(shape) <= 3 and all(
        _is_int(s) and 1 <= s <= MAX_SIZE for s in shape)
    if ok and math.prod(shape) <= MAX_INPUT_ELEMENTS:
        return tuple(shape)
    shown = tuple(shape) if isinstance(shape, (tuple, list)) else shape
    raise _LayerProblem(
        f"Network: input shape must be (F,), (T, F) or (C, H, W) with whole numbers from 1 to {MAX_SIZE}, got {shown!r}")


def _layer_fields(layer) -> tuple[Any, Any]:
    if isinstance(layer, dict):
        return layer.get("type"), layer.get("params", {})
    return getattr(layer, "type", None), getattr(layer, "params", None)


def _need_rank(tname, shape, rank):
    if len(shape) == rank:
        return
    what = {1: "a vector input (F,)", 2: "a sequence input (T, F)", 3: "an image input (C, H, W)"}[rank]
    hint = ""
    if rank == 1 and len(shape) == 3:
        hint = "; add a Flatten first"
    raise _LayerProblem(f"needs {what} but gets {_shape_text(shape)}{hint}")


def _infer_layer(i, tname, p, shape, rf, outputs, rfs):
    """Returns (out_shape, params, macs, rf) for a valid layer; raises _LayerProblem otherwise."""
    r, j = rf if rf is not None else (None, None)
    spatial_rf = rf if len(shape) == 3 else None
    if tname in ("ReLU", "Sigmoid", "Tanh", "Dropout", "Softmax"):
        return shape, 0, 0, spatial_rf
    if tname == "Flatten":
        return (math.prod(shape),), 0, 0, None
    if tname == "SequenceLast":
        _need_rank(tname, shape, 2)
        return (shape[1],), 0, 0, None
    if tname == "Linear":
        if len(shape) == 3:
            _need_rank(tname, shape, 1)
        n_in, n_out = shape[-1], p["out_features"]
        steps = shape[0] if len(shape) == 2 else 1
        params = n_in * n_out + (n_out if p["bias"] else 0)
        return shape[:-1] + (n_out,), params, n_in * n_out * steps, None
    if tname == "RBM":
        if i != 1:
            raise _LayerProblem("an RBM layer must be the first layer of the network")
        _need_rank(tname, shape, 1)
        n_in, h = shape[0], p["hidden"]
        return (h,), n_in * h + n_in + h, n_in * h, None
    if tname in ("RNN", "LSTM"):
        _need_rank(tname, shape, 2)
        t, f = shape
        h = p["hidden_size"]
        gates = 4 if tname == "LSTM" else 1
        params = gates * h * (f + h)
        if p["bias"]:  # (torch keeps two bias vectors, b_ih and b_hh, per gate)
            params += 2 * gates * h
        return (t, h), params, gates * h * (f + h) * t, None
    if tname == "Concat":
        src = p["source"]
        if not 0 <= src < i:
            raise _LayerProblem(f"source must be an earlier layer (0 = the input, 1..{i - 1}), got {src}")
        other = outputs[src]
        if other is None:
            return None, 0, 0, None        # unknown: an earlier error is reported there
        from_text = "the input" if src == 0 else f"layer #{src}"
        if len(shape) != len(other) or len(shape) not in (1, 3):
            raise _LayerProblem(f"cannot concatenate {_shape_text(shape)} with {_shape_text(other)} from {from_text}"
                                " (both must be images (C, H, W) or both vectors (F,))")
        if len(shape) == 3 and shape[1:] != other[1:]:
            raise _LayerProblem(f"cannot concatenate {shape[1]}x{shape[2]} with {other[1]}x{other[2]} from {from_text}")
        out = (shape[0] + other[0],) + shape[1:]
        new_rf, other_rf = spatial_rf, rfs[src]
        if new_rf is not None and other_rf is not None and len(shape) == 3:
            new_rf = max(new_rf, other_rf)          # the larger receptive field (with its jump)
        elif len(shape) != 3 or other_rf is None:
            new_rf = None
        return out, 0, 0, new_rf
    # ---- image layers
    _need_rank(tname, shape, 3)
    c, h, w = shape
    if tname == "LocalContrastNorm":
        if p["size"] % 2 == 0:
            raise _LayerProblem(f"size must be odd, got {p['size']}")
        k = p["size"]
        return shape, 0, 0, (None if r is None else (r + (k - 1) * j, j))
    if tname == "Upsample":
        s = p["scale_factor"]
        if h * s > MAX_SIZE or w * s > MAX_SIZE:
            raise _LayerProblem(f"output {h * s}x{w * s} is larger than {MAX_SIZE}")
        return (c, h * s, w * s), 0, 0, None
    if tname == "ConvTranspose2d":
        k, s, pad, oc = p["kernel_size"], p["stride"], p["padding"], p["out_channels"]
        oh, ow = (h - 1) * s - 2 * pad + k, (w - 1) * s - 2 * pad + k
        if oh < 1 or ow < 1:
            raise _LayerProblem(f"output size {oh}x{ow} is less than 1 (padding {pad} is too large)")
        if oh > MAX_SIZE or ow > MAX_SIZE:
            raise _LayerProblem(f"output {oh}x{ow} is larger than {MAX_SIZE}")
        return (oc, oh, ow), c * oc * k * k + oc, h * w * c * oc * k * k, None
    k, s = p["kernel_size"], p["stride"]
    pad = p.get("padding", 0)
    if k > h + 2 * pad or k > w + 2 * pad:
        if pad:
            raise _LayerProblem(f"kernel {k} is larger than its {h}x{w} input padded to {h + 2 * pad}x{w + 2 * pad}")
        raise _LayerProblem(f"kernel {k} is larger than its {h}x{w} input")
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    new_rf = None if r is None else (r + (k - 1) * j, j * s)
    if tname == "Conv2d":
        oc = p["out_channels"]
        return (oc, oh, ow), c * oc * k * k + oc, oh * ow * oc * c * k * k, new_rf
    return (c, oh, ow), 0, 0, new_rf      # pooling


def training_bytes(batch_size: int, activations: int, params: int) -> int:
    """Memory training needs: a batch's activations (kept for the backward pass, with their gradients and
    the layers' temporaries: about 3 copies) and the weights (with gradients, optimiser state, copies: 5)."""
    return FLOAT_BYTES * (3 * batch_size * activations + 5 * params)


def _memory_problem(spec, outputs: list[tuple[int, ...] | None], total_params: int) -> str | None:
    """The spec error when training the network at its batch size would need more than the memory limit."""
    hparams = getattr(spec, "hparams", None)
    batch = hparams.get("batch_size") if isinstance(hparams, dict) else None
    batch_size = batch if _is_int(batch) and 1 <= batch <= MAX_SIZE else 32
    activations = sum(math.prod(o) for o in outputs[1:] if o is not None)
    need, limit = training_bytes(batch_size, activations, total_params), memory_limit()
    if need <= limit:
        return None
    return (f"Network: training it (batch size {batch_size}, {activations:,} activations per example) would "
            f"need about {format_bytes(need)} of memory, more than the limit of {format_bytes(limit)} "
            f"(set {MEMORY_LIMIT_ENV} to change it)")


def infer(spec: NetworkSpec) -> Inference:
    """Shapes, parameter counts, MACs and receptive fields layer by layer. Never raises:
    problems go into ``LayerInfo.error`` or ``Inference.spec_error``."""
    try:
        return _infer(spec)
    except Exception as exc:  # pragma: no cover - a safety net; _infer is meant to handle everything
        return Inference([], 0, 0, None, [], f"Network: cannot analyse this spec ({type(exc).__name__}: {exc})")


def _infer(spec) -> Inference:
    spec_errors: list[str] = []
    family_problem = _family_problem(getattr(spec, "family", None))
    if family_problem:
        spec_errors.append(family_problem)
    shape = None
    try:
        shape = _check_input_shape(getattr(spec, "input_shape", None))
    except _LayerProblem as exc:
        spec_errors.append(str(exc))
    layers = getattr(spec, "layers", None)
    if not isinstance(layers, (list, tuple)):
        spec_errors.append(f"Network: layers must be a list, got {type(layers).__name__}")
        layers = []
    elif not layers:
        spec_errors.append("Network: the network has no layers")
    elif len(layers) > MAX_LAYERS:
        spec_errors.append(f"Network: {len(layers):,} layers is more than the limit of {MAX_LAYERS:,}")
        layers = []  # not analysed: a spec that long is refused before anything is built from it

    rf = (1, 1) if shape is not None and len(shape) == 3 else None
    outputs: list[tuple[int, ...] | None] = [shape]
    rfs: list[tuple[int, int] | None] = [rf]
    infos: list[LayerInfo] = []
    connections: list[tuple[int, int]] = []
    total_params = total_macs = 0
    for i, layer in enumerate(layers, start=1):
        tname, raw = _layer_fields(layer)
        label = tname if isinstance(tname, str) and tname else "Layer"
        in_shape = shape
        out, n_params, macs, new_rf, error = None, 0, 0, None, None
        try:
            if not isinstance(tname, str) or tname not in LAYER_TYPES:
                raise _LayerProblem(f"unknown layer type {tname!r}")
            p = _resolve_params(LAYER_TYPES[tname], raw)
            if tname == "Concat" and 0 <= p["source"] < i:
                connections.append((p["source"], i))
            if tname == "RBM" and i != 1:
                raise _LayerProblem("an RBM layer must be the first layer of the network")
            if tname == "Concat" and not 0 <= p["source"] < i:
                raise _LayerProblem(f"source must be an earlier layer (0 = the input, 1..{i - 1}), got {p['source']}")
            if in_shape is not None:
                out, n_params, macs, new_rf = _infer_layer(i, tname, p, in_shape, rf, outputs, rfs)
        except _LayerProblem as exc:
            error = f"{label} #{i}: {exc}"
            out = None
        shape, rf = out, (new_rf if out is not None else None)
        outputs.append(out)
        rfs.append(rf)
        total_params += n_params
        total_macs += macs
        infos.append(LayerInfo(i, label, in_shape, out, n_params, macs,
                               rf[0] if rf else None, rf[1] if rf else None, error))
    if total_params > MAX_TOTAL_PARAMS:
        spec_errors.append(f"Network: {total_params:,} parameters is more than the limit of {MAX_TOTAL_PARAMS:,}")
    else:
        memory_error = _memory_problem(spec, outputs, total_params)
        if memory_error:
            spec_errors.append(memory_error)
    out_shape = outputs[-1] if infos else None
    return Inference(infos, total_params, total_macs, out_shape, connections,
                     spec_errors[0] if spec_errors else None)


def validate(spec: NetworkSpec) -> Inference:
    """``infer`` and raise ``SpecError(first_error)`` if anything is wrong."""
    inf = infer(spec)
    if not inf.valid:
        raise SpecError(inf.first_error)
    return inf


# --------------------------------------------------------------------------------------------
# building and exporting


def _module_expr(tname: str, p: dict[str, Any], shape: tuple[int, ...]) -> str:
    """Python source of the module for one valid layer (evaluated by build_module, written by export)."""
    if tname == "Linear":
        return f"torch.nn.Linear({shape[-1]}, {p['out_features']}, bias={p['bias']})"
    if tname == "Conv2d":
        return (f"torch.nn.Conv2d({shape[0]}, {p['out_channels']}, kernel_size={p['kernel_size']}, "
                f"stride={p['stride']}, padding={p['padding']})")
    if tname == "ConvTranspose2d":
        return (f"torch.nn.ConvTranspose2d({shape[0]}, {p['out_channels']}, kernel_size={p['kernel_size']}, "
                f"stride={p['stride']}, padding={p['padding']})")
    if tname in ("MaxPool2d", "AvgPool2d"):
        return f"torch.nn.{tname}(kernel_size={p['kernel_size']}, stride={p['stride']})"
    if tname in ("ReLU", "Sigmoid", "Tanh"):
        return f"torch.nn.{tname}()"
    if tname == "Softmax":
        return f"torch.nn.Softmax(dim={1 if len(shape) == 3 else -1})"
    if tname == "Dropout":
        return f"torch.nn.Dropout(p={p['p']!r})"
    if tname == "Flatten":
        return "torch.nn.Flatten()"
    if tname == "LocalContrastNorm":
        return f"LocalContrastNorm(size={p['size']}, eps={p['eps']!r})"
    if tname == "Upsample":
        extra = ", align_corners=False" if p["mode"] == "bilinear" else ""
        return f"torch.nn.Upsample(scale_factor={p['scale_factor']}, mode={p['mode']!r}{extra})"
    if tname == "Concat":
        return f"Concat(source={p['source']})"
    if tname == "RBM":
        return f"RBMLayer({shape[0]}, {p['hidden']})"
    if tname == "RNN":
        return (f"RNNLayer({shape[1]}, {p['hidden_size']}, nonlinearity={p['nonlinearity']!r}, "
                f"bias={p['bias']}, batch_first=True)")
    if tname == "LSTM":
        return f"LSTMLayer({shape[1]}, {p['hidden_size']}, bias={p['bias']}, batch_first=True)"
    if tname == "SequenceLast":
        return "SequenceLast()"
    raise SpecError(f"{tname}: no module for this layer type")  # pragma: no cover


def _layer_exprs(spec: NetworkSpec) -> tuple[Inference, list[str]]:
    inf = validate(spec)
    exprs = []
    for layer, info in zip(spec.layers, inf.layers):
        assert info.input_shape is not None, "a valid spec has the input shape of every layer"
        tname, raw = _layer_fields(layer)
        exprs.append(_module_expr(tname, _resolve_params(LAYER_TYPES[tname], raw), info.input_shape))
    return inf, exprs


def _namespace() -> dict[str, Any]:
    import torch

    from explorer.core.spec import layers as L
    return {"torch": torch, "math": math, **{n: getattr(L, n) for n in _EXPORTED_CLASSES}}


_EXPORTED_CLASSES = ("LocalContrastNorm", "RBMLayer", "Reshape", "SequenceLast", "Concat",
                     "RNNLayer", "LSTMLayer", "LayerStack")


def build_module(spec: NetworkSpec):
    """Validate and build a ``LayerStack``; its forward takes a batch (N, *input_shape)."""
    from explorer.core.spec.layers import LayerStack
    _, exprs = _layer_exprs(spec)
    ns = _namespace()
    module = LayerStack([eval(e, ns) for e in exprs])  # noqa: S307 - generated from validated values only
    # torch types every attribute it does not know as Tensor | Module; a plain attribute set here is neither.
    # (Declaring it on LayerStack would put the declaration into every exported file, which copies the class.)
    module.input_shape = tuple(spec.input_shape)  # type: ignore[assignment]
    return module


def _comment(text: str) -> str:
    """``text`` as Python comment lines (unprintable characters become spaces)."""
    lines = str(text).splitlines() or [""]
    return "\n".join(("# " + "".join(ch if ch.isprintable() else " " for ch in line)).rstrip() for line in lines)


def export_source(spec: NetworkSpec) -> str:
    """A standalone .py (imports only torch and math) with ``class Network`` and ``build()``.

    Parameter names and shapes equal ``build_module``'s, so a state_dict loads into either.
    """
    import inspect

    from explorer.core.spec import layers as L
    inf, exprs = _layer_exprs(spec)
    used = {e.split("(")[0] for e in exprs if not e.startswith("torch.")}
    parts = [
        f'"""Network exported by Network Explorer (family {spec.family}; standalone: needs only torch).',
        "",
        "Input per example: " + _shape_text(tuple(spec.input_shape)) + "; output: " + _shape_text(inf.output_shape)
        + f"; {inf.total_params:,} parameters.",
        'Use: net = build(); y = net(x) with x of shape (N, *INPUT_SHAPE)."""',
        "",
    ]
    if spec.name:
        parts += [_comment("Network: " + spec.name)]
    if spec.description:
        parts += [_comment(spec.description)]
    parts += [""] if spec.name or spec.description else []
    parts += ["import math", "", "import torch", "", "",
              f"INPUT_SHAPE = {tuple(spec.input_shape)!r}", ""]
    for name in _EXPORTED_CLASSES:
        if name in used or name in ("Concat", "LayerStack"):
            parts += ["", inspect.getsource(getattr(L, name)).rstrip(), ""]
    lines = []
    for info, e in zip(inf.layers, exprs):
        lines.append(f"            {e},  # #{info.index} {info.type} -> {_shape_text(info.output_shape)}")
    parts += ["", "class Network(LayerStack):",
              '    """The exported network; parameter names are layers.<i>.<name> (0-based i)."""', "",
              "    def __init__(self):", "        super().__init__([", *lines, "        ])", "", "",
              "def build():", "    return Network()", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# JSON


def spec_to_dict(spec: NetworkSpec) -> dict[str, Any]:
    layers = []
    for layer in spec.layers:
        tname, raw = _layer_fields(layer)
        layers.append({"type": tname, "params": dict(raw or {})})
    return {
        "format": SPEC_FORMAT,
        "version": SPEC_VERSION,
        "name": spec.name,
        "description": spec.description,
        "family": spec.family,
        "input_shape": list(spec.input_shape),
        "layers": layers,
        "hparams": dict(spec.hparams),
    }


_TOP_KEYS = {"format", "version", "name", "description", "family", "input_shape", "layers", "hparams"}
_SCALARS = (int, float, str, bool, type(None))


def spec_from_dict(d: Any) -> NetworkSpec:
    """Structure and types only (values are checked by ``infer``/``validate``); raises SpecError."""
    if not isinstance(d, dict):
        raise SpecError(f"a spec must be a JSON object, got {type(d).__name__}")
    if d.get("format") != SPEC_FORMAT:
        raise SpecError(f"not a network spec (format {d.get('format')!r}, expected {SPEC_FORMAT!r})")
    version = d.get("version")
    if not _is_int(version) or version < 1:
        raise SpecError(f"bad spec version {version!r}")
    if version > SPEC_VERSION:
        raise SpecError(f"spec version {version} is newer than this program reads (up to {SPEC_VERSION})")
    extra = sorted(str(k) for k in d if k not in _TOP_KEYS)
    if extra:
        raise SpecError(f"unknown field {extra[0]!r} in the spec")
    for key in ("family", "input_shape", "layers"):
        if key not in d:
            raise SpecError(f"missing field {key!r} in the spec")
    for key in ("name", "description"):
        if not isinstance(d.get(key, ""), str):
            raise SpecError(f"field {key!r} must be a string")
    family = d["family"]
    family_problem = _family_problem(family)
    if family_problem:
        raise SpecError(family_problem)
    shape = d["input_shape"]
    if not isinstance(shape, list) or not all(_is_int(s) for s in shape):
        raise SpecError(f"input_shape must be a list of whole numbers, got {shape!r}")
    hparams = d.get("hparams", {})
    if not isinstance(hparams, dict) or not all(isinstance(k, str) for k in hparams):
        raise SpecError("hparams must be an object with string keys")
    if not isinstance(d["layers"], list):
        raise SpecError("layers must be a list")
    if len(d["layers"]) > MAX_LAYERS:
        raise SpecError(f"layers: {len(d['layers']):,} layers is more than the limit of {MAX_LAYERS:,}")
    layers = []
    for i, item in enumerate(d["layers"], start=1):
        if not isinstance(item, dict):
            raise SpecError(f"Layer #{i}: must be an object with 'type' and 'params', got {type(item).__name__}")
        tname = item.get("type")
        label = tname if isinstance(tname, str) and tname else "Layer"
        if not isinstance(tname, str) or tname not in LAYER_TYPES:
            raise SpecError(f"{label} #{i}: unknown layer type {tname!r}")
        bad = sorted(str(k) for k in item if k not in ("type", "params"))
        if bad:
            raise SpecError(f"{label} #{i}: unknown field {bad[0]!r}")
        params = item.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise SpecError(f"{label} #{i}: params must be an object")
        for k, v in params.items():
            if not isinstance(v, _SCALARS):
                raise SpecError(f"{label} #{i}: parameter {k!r} must be a number, string or boolean")
        layers.append(LayerSpec(tname, dict(params)))
    return NetworkSpec(family=family, input_shape=tuple(shape), layers=layers, hparams=dict(hparams),
                       name=d.get("name", ""), description=d.get("description", ""))


MAX_SPEC_BYTES = 16 * 1024 * 1024  # a spec the builder writes is a few kB


def save_spec(spec: NetworkSpec, path) -> Path:
    try:
        text = json.dumps(spec_to_dict(spec), indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{path}: cannot save the spec as JSON ({exc})") from None
    return atomic_write_text(path, text)


def load_spec(path) -> NetworkSpec:
    """The spec in the JSON file ``path``: a regular file of at most MAX_SPEC_BYTES, nesting limited
    (a device or a pipe is refused, never read until it ends); SpecError naming the file otherwise."""
    path = Path(path)
    try:
        d = read_json(path, MAX_SPEC_BYTES)
    except UnsafeFileError as exc:
        raise SpecError(str(exc)) from None
    try:
        return spec_from_dict(d)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------------------------
# presets


def _L(tname: str, **params) -> LayerSpec:
    return LayerSpec(tname, params)


_CLASSIFIER_HP = {"lr": 0.01, "momentum": 0.9, "batch_size": 64, "epochs": 10, "loss": "cross_entropy"}


def _lenet5() -> NetworkSpec:
    return NetworkSpec("cnn", (1, 28, 28), [
        _L("Conv2d", out_channels=6, kernel_size=5, stride=1, padding=2), _L("Tanh"),
        _L("AvgPool2d", kernel_size=2, stride=2),
        _L("Conv2d", out_channels=16, kernel_size=5, stride=1, padding=0), _L("Tanh"),
        _L("AvgPool2d", kernel_size=2, stride=2),
        _L("Flatten"), _L("Linear", out_features=120), _L("Tanh"), _L("Linear", out_features=84), _L("Tanh"),
        _L("Linear", out_features=10), _L("Softmax"),
    ], dict(_CLASSIFIER_HP, dataset="mnist"), "lenet5",
        "LeNet-5 (LeCun et al., 1998) for 28x28 MNIST digits: two conv/subsampling stages, three fully connected layers.")


def _alexnet_small() -> NetworkSpec:
    return NetworkSpec("cnn", (3, 32, 32), [
        _L("Conv2d", out_channels=32, kernel_size=5, stride=1, padding=2), _L("ReLU"),
        _L("LocalContrastNorm", size=5, eps=0.01), _L("MaxPool2d", kernel_size=2, stride=2),
        _L("Conv2d", out_channels=64, kernel_size=5, stride=1, padding=2), _L("ReLU"),
        _L("LocalContrastNorm", size=5, eps=0.01), _L("MaxPool2d", kernel_size=2, stride=2),
        _L("Conv2d", out_channels=96, kernel_size=3, stride=1, padding=1), _L("ReLU"),
        _L("Conv2d", out_channels=96, kernel_size=3, stride=1, padding=1), _L("ReLU"),
        _L("Conv2d", out_channels=64, kernel_size=3, stride=1, padding=1), _L("ReLU"),
        _L("MaxPool2d", kernel_size=2, stride=2),
        _L("Flatten"), _L("Dropout", p=0.5), _L("Linear", out_features=256), _L("ReLU"),
        _L("Dropout", p=0.5), _L("Linear", out_features=128), _L("ReLU"),
        _L("Linear", out_features=10), _L("Softmax"),
    ], dict(_CLASSIFIER_HP, dataset="cifar10"), "alexnet-small",
        "A small AlexNet (Krizhevsky et al., 2012) for 32x32 colour images: 5 conv layers with ReLU, "
        "local contrast normalisation, max pooling, dropout and 3 fully connected layers.")


def _unet_small() -> NetworkSpec:
    return NetworkSpec("fcn", (1, 32, 32), [
        _L("Conv2d", out_channels=16, kernel_size=3, stride=1, padding=1), _L("ReLU"),          # 1-2: 16x32x32
        _L("MaxPool2d", kernel_size=2, stride=2),                                                # 3: 16x16x16
        _L("Conv2d", out_channels=32, kernel_size=3, stride=1, padding=1), _L("ReLU"),          # 4-5: 32x16x16
        _L("MaxPool2d", kernel_size=2, stride=2),                                                # 6: 32x8x8
        _L("Conv2d", out_channels=64, kernel_size=3, stride=1, padding=1), _L("ReLU"),          # 7-8 bottleneck
        _L("ConvTranspose2d", out_channels=32, kernel_size=2, stride=2, padding=0),             # 9: 32x16x16
        _L("Concat", source=5),                                                                  # 10: 64x16x16
        _L("Conv2d", out_channels=32, kernel_size=3, stride=1, padding=1), _L("ReLU"),          # 11-12
        _L("ConvTranspose2d", out_channels=16, kernel_size=2, stride=2, padding=0),             # 13: 16x32x32
        _L("Concat", source=2),                                                                  # 14: 32x32x32
        _L("Conv2d", out_channels=16, kernel_size=3, stride=1, padding=1), _L("ReLU"),          # 15-16
        _L("Conv2d", out_channels=4, kernel_size=1, stride=1, padding=0), _L("Softmax"),        # 17-18: 4x32x32
    ], {"lr": 0.001, "batch_size": 16, "epochs": 20, "optimizer": "adam", "classes": 4,
        "loss": "cross_entropy_per_pixel"}, "unet-small",
        "A small U-Net style FCN for segmentation: a conv/pool downsampling path, deconvolution upsampling "
        "with skip concatenations, and a 1x1 conv to 4 classes per pixel (output H, W = input H, W).")


def _deep_sigmoid_mlp() -> NetworkSpec:
    layers = []
    for _ in range(6):
        layers += [_L("Linear", out_features=64), _L("Sigmoid")]
    layers += [_L("Linear", out_features=10), _L("Softmax")]
    return NetworkSpec("mlp", (64,), layers, dict(_CLASSIFIER_HP, lr=0.1, momentum=0.0, epochs=30, dataset="digits"),
                       "deep-sigmoid-mlp",
                       "A deep sigmoid MLP (6 hidden layers of 64) on 8x8 digits: shows the vanishing gradient problem.")


def _rbm(name, n_in, hidden, dataset, desc) -> Callable[[], NetworkSpec]:
    def make() -> NetworkSpec:
        return NetworkSpec("rbm", (n_in,), [_L("RBM", hidden=hidden)],
                           {"dataset": dataset, "k": 1, "lr": 0.1, "momentum": 0.0, "batch_size": 32,
                            "epochs": 10, "persistent": False, "binarize": "sample"}, name, desc)
    return make


def _denoising_autoencoder() -> NetworkSpec:
    return NetworkSpec("autoencoder", (784,), [
        _L("Linear", out_features=256), _L("Sigmoid"), _L("Linear", out_features=784), _L("Sigmoid"),
    ], {"noise": "gaussian", "noise_level": 0.3, "lr": 0.1, "momentum": 0.9, "batch_size": 64, "epochs": 10,
        "loss": "mse", "dataset": "mnist"}, "denoising-autoencoder",
        "Denoising autoencoder: encoder h = sigmoid(W x~ + b) of a noisy input x~ = x + noise, "
        "decoder x' = sigmoid(W' h + d), trained to reconstruct the clean x.")


def _recurrent(kind) -> Callable[[], NetworkSpec]:
    def make() -> NetworkSpec:
        first = _L("LSTM", hidden_size=32, bias=True) if kind == "lstm" else _L("RNN", hidden_size=32,
                                                                                   nonlinearity="tanh")
        what = "an LSTM" if kind == "lstm" else "an Elman RNN"
        return NetworkSpec(kind, (50, 1), [first, _L("Linear", out_features=1)],
                           {"lr": 0.01, "batch_size": 32, "epochs": 20, "optimizer": "adam", "loss": "mse",
                            "task": "next-step prediction"}, kind,
                           f"{what} with 32 hidden units predicting the next value of a 50-step sequence at every step.")
    return make


PRESETS: dict[str, Callable[[], NetworkSpec]] = {
    "lenet5": _lenet5,
    "alexnet-small": _alexnet_small,
    "unet-small": _unet_small,
    "deep-sigmoid-mlp": _deep_sigmoid_mlp,
    "rbm-digits": _rbm("rbm-digits", 64, 100, "digits", "An RBM with 100 hidden units on 8x8 digits, trained by CD-1."),
    "rbm-mnist": _rbm("rbm-mnist", 784, 500, "mnist", "An RBM with 500 hidden units on 28x28 MNIST, trained by CD-1."),
    "denoising-autoencoder": _denoising_autoencoder,
    "lstm": _recurrent("lstm"),
    "rnn": _recurrent("rnn"),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def load_preset(name: str) -> NetworkSpec:
    if name not in PRESETS:
        raise SpecError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]()


def write_preset_samples(folder) -> list[Path]:
    """Write every preset as ``<folder>/<name>.json``; returns the paths."""
    folder = Path(folder)
    return [save_spec(load_preset(name), folder / f"{name}.json") for name in PRESETS]


# --------------------------------------------------------------------------------------------
# reports


def param_comparison(image_h: int, image_w: int, n_hidden: int, kernel: int) -> dict[str, int]:
    """The lecture's argument for convolution (200x200 image, 25K hidden units: ~1B fully
    connected weights; 10x10 local kernels: ~2.5M; one shared 10x10 kernel: 100 per feature map)."""
    return {
        "fully_connected": image_h * image_w * n_hidden,
        "locally_connected": n_hidden * kernel * kernel,
        "convolution_shared": kernel * kernel,
    }


def summary_table(spec: NetworkSpec) -> str:
    inf = infer(spec)
    rows = [("#", "layer", "output shape", "params", "RF (size/jump)", "MACs", "error")]
    ishape = getattr(spec, "input_shape", None)
    rows.append(("0", "input", _shape_text(tuple(ishape)) if isinstance(ishape, (tuple, list)) else "?", "", "", "", ""))
    for info in inf.layers:
        rf = f"{info.rf_size}/{info.rf_jump}" if info.rf_size is not None else "-"
        rows.append((str(info.index), info.type, _shape_text(info.output_shape), f"{info.params:,}", rf,
                     f"{info.macs:,}", info.error or ""))
    widths = [max(len(r[c]) for r in rows) for c in range(6)]
    right = {0, 3, 5}

    def fmt(r):
        cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c]) for c in range(6)]
        return ("  ".join(cells) + ("  " + r[6] if r[6] else "")).rstrip()

    lines = [fmt(rows[0]), "-" * (sum(widths) + 10)] + [fmt(r) for r in rows[1:]]
    lines.append(f"total: {inf.total_params:,} parameters, {inf.total_macs:,} MACs per example, "
                 f"output {_shape_text(inf.output_shape)}")
    if inf.spec_error:
        lines.append(inf.spec_error)
    lines.append("valid" if inf.valid else f"INVALID: {inf.first_error}")
    return "\n".join(lines)
