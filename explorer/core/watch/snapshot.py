"""A snapshot of a user's own model on its probe: what each layer does to a few fixed samples.

:func:`take_snapshot` runs one forward of the probe (see :func:`explorer.core.watch.discover.probe_mode`:
no gradients, eval mode, the random generators forked, each module's ``training`` flag restored) with
forward hooks on the described layers, registered for that forward only and removed after it, also when
it fails. The hooks keep, on the model's device, what the views need, and only that:

- ``act/<layer>``: a convolution's or pooling's maps of the probe's first sample (C, H, W), at most
  :data:`MAX_CHANNELS` channels (a 1-d convolution's (C, L)); a norm's or any other layer's 4-d output
  the same way; a linear layer's (N, F) outputs for the first :data:`MAX_SAMPLES` samples, at most
  :data:`MAX_FEATURES` features;
- ``hist/<layer>``: an activation's histogram over the whole probe batch, (2, :data:`HIST_BINS`): the bins'
  centres and their counts (sigmoid on [0, 1], tanh on [-1, 1], any other on the range it produced), and
  the scalar ``saturated/<layer>``: the share of σ < 0.05 or > 0.95, of |tanh| > 0.9, of a rectifier's
  outputs exactly 0 (dead);
- ``gates/<layer>/l<k>[r]/<g>``: a recurrent layer's gates over time (T, H) for the probe's first sample,
  every stacked layer ``l<k>`` and, bidirectional, its reverse ``l<k>r``: i, f, g, o, c, h of an LSTM,
  r, z, n, h of a GRU, h of an RNN, recomputed from the module's own weights (PyTorch computes them
  inside a fused kernel and returns none but h);
- ``weight/<layer>``: a convolution's kernels (out, in, k...) up to :data:`MAX_KERNELS`, a linear layer's
  (out, in) up to :data:`MAX_LINEAR_WEIGHT` (no probe needed);
- ``input`` (the probe's first sample), ``target`` (the probe target's, when given), ``output`` (the
  model's output for the first sample) or, for a segmentation, ``seg/probs`` (C, H, W) (softmax over the
  classes) and ``seg/classes`` (H, W) (int64 argmax);
- ``erf/<layer>`` on request: the effective receptive field of one unit, |∂unit/∂input| summed over the
  input's channels (H, W), differentiated with respect to a copy of the probe's first sample only (the
  parameters' gradients are never touched).

Every array is float32 (``seg/classes``, and an integer ``target``, int64). They are copied to the CPU in
one go at the end, one copy per device and dtype, never one per layer while the forward runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from explorer.core.watch.discover import (
    RECURRENT_TYPES,
    activation_family,
    base_type,
    first_tensor,
    layer_kind,
    model_device,
    modules_by_name,
    probe_args,
    probe_mode,
    unwrap,
)

MAX_CHANNELS = 64             # maps of a convolution's (or pooling's) output
MAX_SAMPLES = 64              # probe samples of a linear layer's activations
MAX_FEATURES = 1024           # units of a linear layer's activations (and positions of a 1-d map)
MAX_KERNELS = (64, 16)        # output x input channels of a convolution's kernels
MAX_LINEAR_WEIGHT = (256, 1024)  # output x input units of a linear layer's weights
HIST_BINS = 41
FLAT_SPAN = 2.0 ** -20        # the bins of a constant activation v span v +- max(0.5, |v| * FLAT_SPAN)
SIGMOID_SATURATED = (0.05, 0.95)
TANH_SATURATED = 0.9
GATE_STEPS = 512              # a longer sequence's gates are recomputed for its first GATE_STEPS steps
GATE_UNITS = 256              # hidden units kept of each gate
MAX_OUTPUT_VALUES = 1 << 16   # an output larger than this is sent flat, its first values
MAX_SNAPSHOT_BYTES = 48 << 20  # arrays past this (in the order listed above, layer by layer) are left out
MAX_SNAPSHOT_ARRAYS = 4000    # the wire carries 4096 arrays a frame: room for what the watcher adds
MAX_ARRAY_NAME = 200          # the wire's limit on an array's name

# the series kept per step of each cell, its gates in PyTorch's order of the stacked weights first
CELL_SERIES = {"lstm": ("i", "f", "g", "o", "c", "h"), "gru": ("r", "z", "n", "h"), "rnn": ("h",)}


class _UnitReached(Exception):
    """Raised by the effective-field hook once the unit's layer has run: the rest of the forward is not
    needed (and may not even take a batch of one)."""

    def __init__(self, output: Any):
        super().__init__("reached")
        self.output = output


# -- what one layer gives ---------------------------------------------------------------------------------

def activation_histogram(y: torch.Tensor, family: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(2, HIST_BINS) float32 on y's device: the bins' centres and the counts of y's finite values (over
    all of y), and the saturated (or dead) share as a 0-d tensor (None for an activation without one).

    The bins are counted with ``bincount`` (no weights): deterministic on every device, unlike ``histc``,
    which fails on CUDA under ``torch.use_deterministic_algorithms(True)``."""
    hist, saturated = _histogram(y, family)
    return hist, torch.tensor(saturated, dtype=torch.float32) if isinstance(saturated, float) else saturated


def _histogram(y: torch.Tensor, family: str) -> tuple[torch.Tensor, torch.Tensor | float | None]:
    """:func:`activation_histogram`, its saturated share a float on the CPU (a tensor left on a device, to
    be copied with the snapshot's other arrays, not on its own)."""
    v = y.detach().reshape(-1).float()
    if v.device.type == "cpu" and v.numel():
        return _cpu_histogram(v.numpy(), family)
    return _device_histogram(v, family)


def _device_histogram(v: torch.Tensor, family: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`activation_histogram` of the flat float32 ``v`` in tensor operations that never wait for the
    device (no value is read back to decide anything)."""
    finite = torch.isfinite(v)
    if family == "sigmoid":
        lo, hi = torch.tensor(0.0, device=v.device), torch.tensor(1.0, device=v.device)
    elif family == "tanh":
        lo, hi = torch.tensor(-1.0, device=v.device), torch.tensor(1.0, device=v.device)
    else:
        inf = torch.tensor(math.inf, device=v.device)
        lo, hi = torch.where(finite, v, inf).amin(), torch.where(finite, v, -inf).amax()
        lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo))  # no finite value at all
        hi = torch.where(torch.isfinite(hi), hi, lo)
        flat = hi <= lo
        half = torch.clamp(lo.abs() * FLAT_SPAN, min=0.5)  # (see _cpu_histogram)
        lo, hi = torch.where(flat, lo - half, lo), torch.where(flat, hi + half, hi)
    width = (hi - lo) / HIST_BINS
    index = torch.nan_to_num((v - lo) / width, nan=0.0).floor().clamp(0, HIST_BINS - 1).long()
    index = torch.where(finite, index, torch.full_like(index, HIST_BINS))  # non-finite values: a bin of their own
    counts = torch.bincount(index, minlength=HIST_BINS + 1)[:HIST_BINS].float()
    centres = lo + (torch.arange(HIST_BINS, device=v.device, dtype=torch.float32) + 0.5) * width
    hist = torch.stack([centres, counts])
    if family == "sigmoid":
        saturated: torch.Tensor | None = ((v < SIGMOID_SATURATED[0]) | (v > SIGMOID_SATURATED[1])).float().mean()
    elif family == "tanh":
        saturated = (v.abs() > TANH_SATURATED).float().mean()
    elif family == "rectifier":
        saturated = (v == 0).float().mean()
    else:
        saturated = None
    return hist, saturated


def _cpu_histogram(v: np.ndarray, family: str) -> tuple[torch.Tensor, float | None]:
    """:func:`activation_histogram` on the CPU, in numpy: the same bins and counts in a few passes over the
    values instead of the dozen small tensor operations the device path needs to avoid syncs (on a
    2-core CPU, a CNN's two ReLU histograms took half of its snapshot's time). The saturated share comes
    back as a float (no tensor to make for it).

    The passes: min and max (which also tell whether every value is finite: a NaN or an infinity shows in
    one of them), the bin of each value in one float32 buffer (subtract, divide, clip, all in place), its
    truncation to integers (the floor: the buffer is >= 0 by then) and ``bincount``; a rectifier whose
    lowest value is 0 has its zeros counted apart and the others binned. The bins are those of
    ``np.histogram(v, HIST_BINS, (lo, hi))`` (the tests compare them)."""
    vmin, vmax = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    seen = v if math.isfinite(vmin) and math.isfinite(vmax) else v[np.isfinite(v)]
    if family == "sigmoid":
        lo, hi = 0.0, 1.0
    elif family == "tanh":
        lo, hi = -1.0, 1.0
    elif seen.size:
        lo, hi = (vmin, vmax) if seen is v else (float(seen.min()), float(seen.max()))
        if hi <= lo:
            # one value: the bins 1 wide around it, wider for a value so large that +-0.5 would not move it
            half = max(0.5, abs(lo) * FLAT_SPAN)
            lo, hi = lo - half, hi + half
    else:
        lo, hi = -0.5, 0.5
    zeros: int | None = None
    if family == "rectifier" and lo == 0.0 and seen is v:
        # a rectifier's zeros (often most of its outputs) all fall in the first bin: counted as one number,
        # the rest binned. Counting them one by one is the slow part of bincount, each adding to the
        # counter the last one just wrote (a CNN's first ReLU took 190 us this way, 80 us the other)
        seen = v[v != 0]
        zeros = v.size - seen.size
    lo32, hi32 = np.float32(lo), np.float32(hi)
    with np.errstate(over="ignore", under="ignore"):
        width = (hi32 - lo32) / np.float32(HIST_BINS)
    # a span whose bins float32 cannot tell apart (a width under float32's smallest normal number, about
    # 1e-38: subnormal or 0, and the bins come out wrong) or cannot hold (over about 3e38: inf) is binned
    # in float64 instead
    exact = np.float32 if np.finfo(np.float32).tiny <= width < np.inf else np.float64
    if exact is np.float64:
        lo32, width = np.float64(lo), (np.float64(hi) - np.float64(lo)) / HIST_BINS
    if zeros is not None and exact is np.float32:
        # a rectifier's values left are all > 0 = lo: the subtraction and the lower clip change nothing
        position = np.divide(seen, width, dtype=exact)
        np.minimum(position, HIST_BINS - 1, out=position)
    else:
        position = np.subtract(seen, lo32, dtype=exact)
        np.divide(position, width, out=position)
        np.clip(position, 0, HIST_BINS - 1, out=position)
    counts = np.bincount(position.astype(np.intp), minlength=HIST_BINS)[:HIST_BINS]
    if zeros:
        counts[0] += zeros
    hist = np.empty((2, HIST_BINS), np.float32)
    hist[0] = (np.arange(HIST_BINS, dtype=exact) + exact(0.5)) * width + lo32
    hist[1] = counts
    if family == "sigmoid":
        share: float | None = float(np.count_nonzero((v < SIGMOID_SATURATED[0]) | (v > SIGMOID_SATURATED[1]))) / v.size
    elif family == "tanh":
        share = float(np.count_nonzero(np.abs(v) > TANH_SATURATED)) / v.size
    elif family == "rectifier":
        share = float(zeros if zeros is not None else np.count_nonzero(v == 0)) / v.size
    else:
        share = None
    return torch.from_numpy(hist), share


def _sample_maps(y: torch.Tensor, kind: str) -> torch.Tensor | None:
    """The ``act/`` array of a layer's output y (batch first), or None for outputs no view shows."""
    if kind == "linear":
        flat = y.reshape(y.shape[0], -1) if y.dim() > 1 else y.reshape(1, -1)
        return flat[:MAX_SAMPLES, :MAX_FEATURES].float().clone()
    if kind in ("activation", "recurrent"):
        return None
    if y.dim() == 4:
        return y[0, :MAX_CHANNELS].float().clone()
    if y.dim() == 3 and kind in ("conv", "pool"):
        return y[0, :MAX_CHANNELS, :MAX_FEATURES].float().clone()
    return None


def weight_array(module: nn.Module, kind: str) -> torch.Tensor | None:
    """The ``weight/`` array of a layer: a convolution's kernels as (out, in, k...) (a transposed
    convolution's, stored (in, out, k...), turned that way), a linear layer's (out, in); capped."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or isinstance(w, nn.parameter.UninitializedParameter):
        return None
    w = w.detach()
    if kind == "conv" and w.dim() in (3, 4):
        if base_type(module).startswith("ConvTranspose"):
            w = w.transpose(0, 1)
        return w[:MAX_KERNELS[0], :MAX_KERNELS[1]].float()
    if kind == "linear" and w.dim() == 2:
        return w[:MAX_LINEAR_WEIGHT[0], :MAX_LINEAR_WEIGHT[1]].float()
    return None


# -- recurrent layers --------------------------------------------------------------------------------------

def _first_sequence(module: nn.RNNBase, inp: Any, hx: Any) -> tuple[torch.Tensor, Any] | None:
    """The probe's first sequence (T, F) given to a recurrent module, and its initial state for that sample
    ((layers x directions, H), a pair for an LSTM; None when the module starts from zeros)."""
    if isinstance(inp, nn.utils.rnn.PackedSequence):
        padded, lengths = nn.utils.rnn.pad_packed_sequence(inp, batch_first=True)
        x, batched = padded[0, :int(lengths[0])], True
    elif isinstance(inp, torch.Tensor) and inp.dim() == 3:
        x, batched = (inp[0] if module.batch_first else inp[:, 0]), True
    elif isinstance(inp, torch.Tensor) and inp.dim() == 2:  # one unbatched sequence
        x, batched = inp, False
    else:
        return None

    def sample(state: Any) -> Any:
        if isinstance(state, torch.Tensor):
            return (state[:, 0] if batched else state).detach().float().clone()
        if isinstance(state, (tuple, list)):
            return tuple(sample(s) for s in state)
        return None

    return x[:GATE_STEPS].detach().float().clone(), sample(hx)


def _first_output(module: nn.RNNBase, output: Any) -> torch.Tensor | None:
    """The module's own output sequence (T, directions x H) for the probe's first sample."""
    out = output[0] if isinstance(output, tuple) and not isinstance(output, nn.utils.rnn.PackedSequence) else output
    if isinstance(out, nn.utils.rnn.PackedSequence):
        padded, lengths = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        return padded[0, :int(lengths[0])]
    if isinstance(out, torch.Tensor) and out.dim() == 3:
        return out[0] if module.batch_first else out[:, 0]
    if isinstance(out, torch.Tensor) and out.dim() == 2:
        return out
    return None


def recurrent_gates(module: nn.RNNBase, x: torch.Tensor, hx: Any = None) -> dict[str, torch.Tensor]:
    """The gates of every stacked layer and direction of a recurrent module over one sequence x (T, F),
    recomputed from its own weights in float32: ``{"l0/i": (T, H), ..., "l0r/h": ...}``.

    PyTorch's equations and gate order: an LSTM's stacked weights are i, f, g, o
    (i, f, o = σ(W x + b + U h + b'), g = tanh(...), c = f c + i g, h = o tanh(c)); a GRU's r, z, n
    (r, z = σ(...), n = tanh(W_n x + b_n + r (U_n h + b'_n)), h = (1 - z) n + z h); an RNN's
    h = tanh(W x + b + U h + b') (or ReLU). A reverse direction runs from the last step to the first and
    its gates are listed by step. A stacked layer's input is the previous layer's h, both directions
    concatenated (dropout between layers is off in eval mode)."""
    cell = RECURRENT_TYPES[base_type(module)]
    directions = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    steps = x.shape[0]
    h0, c0 = (hx if isinstance(hx, tuple) else (hx, None)) if hx is not None else (None, None)
    out: dict[str, torch.Tensor] = {}
    layer_input = x
    for k in range(module.num_layers):
        outputs = []
        for d in range(directions):
            suffix = "_reverse" if d else ""
            w_ih = getattr(module, f"weight_ih_l{k}{suffix}").detach().float()
            w_hh = getattr(module, f"weight_hh_l{k}{suffix}").detach().float()
            if module.bias:
                b_ih = getattr(module, f"bias_ih_l{k}{suffix}").detach().float()
                b_hh = getattr(module, f"bias_hh_l{k}{suffix}").detach().float()
            else:
                b_ih = b_hh = torch.zeros(w_ih.shape[0], device=x.device)
            state = k * directions + d
            h = h0[state] if h0 is not None else torch.zeros(hidden, device=x.device)
            c = c0[state] if c0 is not None else torch.zeros(hidden, device=x.device)
            driven = layer_input @ w_ih.T + b_ih  # (T, gates x H): every step's input part at once
            order = range(steps - 1, -1, -1) if d else range(steps)
            series: dict[str, list[torch.Tensor]] = {gate: [] for gate in CELL_SERIES[cell]}
            for t in order:
                recurrent = h @ w_hh.T + b_hh
                if cell == "lstm":
                    gi, gf, gg, go = (driven[t] + recurrent).chunk(4)
                    i, f, g, o = torch.sigmoid(gi), torch.sigmoid(gf), torch.tanh(gg), torch.sigmoid(go)
                    c = f * c + i * g
                    h = o * torch.tanh(c)
                    values: tuple[torch.Tensor, ...] = (i, f, g, o, c, h)
                elif cell == "gru":
                    xr, xz, xn = driven[t].chunk(3)
                    hr, hz, hn = recurrent.chunk(3)
                    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                    n = torch.tanh(xn + r * hn)
                    h = (1 - z) * n + z * h
                    values = (r, z, n, h)
                else:
                    pre = driven[t] + recurrent
                    h = torch.relu(pre) if module.nonlinearity == "relu" else torch.tanh(pre)
                    values = (h,)
                for gate, value in zip(CELL_SERIES[cell], values):
                    series[gate].append(value)
            key = f"l{k}" + ("r" if d else "")
            for gate, kept in series.items():
                if d:
                    kept.reverse()
                out[f"{key}/{gate}"] = torch.stack(kept) if kept else torch.zeros(0, hidden, device=x.device)
            outputs.append(out[f"{key}/h"])
        layer_input = torch.cat(outputs, dim=1)
    return out


def _recurrent_pieces(name: str, module: nn.RNNBase, seen_input: Any, output: Any) -> dict[str, torch.Tensor]:
    """The ``gates/`` arrays of a recurrent layer from the input its pre-hook saw and its output. A module
    with projections (``proj_size``) gets only its last layer's h, as the module returns it."""
    pieces: dict[str, torch.Tensor] = {}
    last = module.num_layers - 1
    directions = 2 if module.bidirectional else 1
    if getattr(module, "proj_size", 0) > 0 or seen_input is None:
        seq = _first_output(module, output)
        if seq is None:
            return pieces
        width = seq.shape[-1] // directions
        for d in range(directions):
            h = seq[:GATE_STEPS, d * width:(d + 1) * width]
            pieces[f"gates/{name}/l{last}{'r' if d else ''}/h"] = h[:, :GATE_UNITS].float().clone()
        return pieces
    x, hx = seen_input
    for key, values in recurrent_gates(module, x, hx).items():
        pieces[f"gates/{name}/{key}"] = values[:, :GATE_UNITS]
    return pieces


# -- the snapshot ---------------------------------------------------------------------------------------------

class _Hooks:
    """The forward hooks of one snapshot: what each described layer gives, on its first call.

    One global forward hook (``register_module_forward_hook``) looks each module that ran up among the
    described layers, instead of a hook registered on each layer: registering and removing a dozen hooks
    took 0.1 ms of a small CNN's snapshot in the training loop. It lives for the snapshot's forward only
    (process-wide: a forward of the same layers in another thread meanwhile would be seen too, as it would by
    hooks on the layers). A recurrent layer also gets a pre-hook of its own (its input and
    initial state are passed as keywords, which a global pre-hook is not given); a layer with forward hooks
    of its own a forward hook after them (a global hook runs before them, and one may change the output)."""

    def __init__(self) -> None:
        self.pieces: dict[str, dict[str, torch.Tensor]] = {}   # layer -> array name -> tensor
        self.scalars: dict[str, torch.Tensor | float] = {}
        self.rnn_inputs: dict[str, Any] = {}
        self.handles: list[Any] = []
        self._layers: dict[int, tuple[str, str]] = {}         # id(module) -> (layer, kind)

    def add(self, name: str, module: nn.Module) -> None:
        kind = layer_kind(module)
        if kind == "recurrent":
            self.handles.append(module.register_forward_pre_hook(self._pre_hook(name), with_kwargs=True))
        if module._forward_hooks:
            self.handles.append(module.register_forward_hook(
                lambda m, _args, output: self._take(name, kind, m, output)))
        else:
            self._layers.setdefault(id(module), (name, kind))

    def start(self) -> None:
        """Listen to the forward that follows (after the layers were added)."""
        if self._layers:
            self.handles.append(register_module_forward_hook(self._on_output))

    def _on_output(self, module: nn.Module, args: Any, output: Any) -> None:
        layer = self._layers.get(id(module))
        if layer is not None:
            self._take(layer[0], layer[1], module, output)

    def _pre_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if name in self.rnn_inputs or not isinstance(module, nn.RNNBase):
                return
            inp = args[0] if args else kwargs.get("input")
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            self.rnn_inputs[name] = _first_sequence(module, inp, hx)
        return hook

    def _take(self, name: str, kind: str, module: nn.Module, output: Any) -> None:
        if name in self.pieces:
            return
        if kind == "recurrent" and isinstance(module, nn.RNNBase):
            self.pieces[name] = _recurrent_pieces(name, module, self.rnn_inputs.get(name), output)
            return
        y = first_tensor(output)
        got: dict[str, torch.Tensor] = {}
        if y is not None and y.dim() > 0:
            if kind == "activation" and y.numel() > 0:
                hist, saturated = _histogram(y, activation_family(module))
                got[f"hist/{name}"] = hist
                if saturated is not None:
                    self.scalars[f"saturated/{name}"] = saturated
            maps = _sample_maps(y, kind)
            if maps is not None:
                got[f"act/{name}"] = maps
        self.pieces[name] = got

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def effective_field(inner: nn.Module, args: tuple[Any, ...], module: nn.Module, channel: int, y: int,
                    x: int) -> torch.Tensor:
    """|∂ unit / ∂ input| of unit (channel, y, x) of ``module``'s output for the probe's first sample, summed
    over the input's channels: (H, W) on the device.

    The derivative is taken with ``torch.autograd.grad`` with respect to a detached copy of the sample, so
    no parameter's ``.grad`` is touched (the model gets a copy of that copy: a model that changes its input
    in place may); the forward stops at the unit's layer. Other tensors of a tuple probe whose first axis is
    the batch are cut to their first sample too."""
    index = next((i for i, a in enumerate(args) if isinstance(a, torch.Tensor)), None)
    if index is None or args[index].dim() != 4 or not args[index].is_floating_point():
        raise ValueError("an effective receptive field needs a probe of images (N, C, H, W) of floats")
    batch = args[index].shape[0]
    image = args[index][0:1].detach().clone().requires_grad_(True)
    rest = [a[0:1] if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == batch else a for a in args]

    def stop(_module: nn.Module, _args: Any, output: Any) -> None:
        raise _UnitReached(output)

    handle = module.register_forward_hook(stop)
    try:
        with torch.enable_grad():
            rest[index] = image.clone()
            try:
                inner(*rest)
            except _UnitReached as reached:
                out = first_tensor(reached.output)
            else:
                raise ValueError("the forward did not pass the layer asked for")
            if out is None or out.dim() != 4:
                raise ValueError("an effective receptive field needs a layer with maps (N, C, H, W)")
            if not (0 <= channel < out.shape[1] and 0 <= y < out.shape[2] and 0 <= x < out.shape[3]):
                raise ValueError(f"unit ({channel}, {y}, {x}) is outside the layer's output {tuple(out.shape[1:])}")
            if not out.requires_grad:
                raise ValueError("the layer's output does not depend on the input")
            (grad,) = torch.autograd.grad(out[0, channel, y, x], image)
    finally:
        handle.remove()
    return grad[0].abs().sum(0).float()


def _erf_request(erf: Any, modules: dict[str, nn.Module]) -> tuple[str, nn.Module, int, int, int]:
    """The layer and unit of an ``erf`` request, checked (ValueError with the reason)."""
    if not isinstance(erf, dict):
        raise ValueError("an effective-field request is a dict with layer, channel, y, x")
    layer, unit = erf.get("layer"), [erf.get(k) for k in ("channel", "y", "x")]
    if not isinstance(layer, str) or layer not in modules:
        raise ValueError(f"no layer {layer!r} in the model")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in unit):
        raise ValueError("an effective-field request's channel, y and x are integers")
    channel, y, x = (int(v) for v in unit if isinstance(v, int))
    return layer, modules[layer], channel, y, x


def _sample_zero(t: torch.Tensor) -> torch.Tensor:
    return t[0] if t.dim() > 0 else t.reshape(1)


def _within_limits(arrays: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The arrays, in their order, as many as the limits on bytes, count and names allow."""
    kept: dict[str, torch.Tensor] = {}
    total = 0
    for name, t in arrays.items():
        size = t.numel() * t.element_size()
        if len(name) > MAX_ARRAY_NAME or total + size > MAX_SNAPSHOT_BYTES or len(kept) >= MAX_SNAPSHOT_ARRAYS:
            continue
        kept[name] = t
        total += size
    return kept


def to_numpy(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors (on any devices) as CPU numpy arrays: one ``torch.cat`` of the flattened tensors and one copy
    per device and dtype, then split (a copy per tensor would wait on the device once per tensor)."""
    groups: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    for name, t in tensors.items():
        groups.setdefault((t.device, t.dtype), []).append(name)
    out: dict[str, np.ndarray] = {}
    for names in groups.values():
        flat = torch.cat([tensors[n].detach().reshape(-1) for n in names]).cpu().numpy()
        start = 0
        for n in names:
            size = tensors[n].numel()
            out[n] = flat[start:start + size].reshape(tuple(tensors[n].shape))
            start += size
    return {n: out[n] for n in tensors}


def take_snapshot(model: nn.Module, probe: Any, description: dict[str, Any], *, target: Any = None,
                  erf: dict[str, Any] | None = None, modules: dict[str, nn.Module] | None = None,
                  ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The arrays and scalars of a snapshot of ``model`` on ``probe`` (a tensor, or a tuple of tensors given as
    ``model(*probe)``) for the layers of ``description`` (:func:`~explorer.core.watch.discover.describe_model`'s).

    Without a probe only the weights are taken. ``erf`` = {"layer", "channel", "y", "x"} adds that unit's
    effective receptive field. An exception of the model's forward, or a request that cannot be met (a
    layer that is not in the model, a unit outside its output), is raised as it is: the caller tells the
    window. The gradient norms are not part of it (see :mod:`explorer.core.watch.gradients`). ``modules``:
    the model's :func:`~explorer.core.watch.discover.modules_by_name`, when the caller keeps it.
    """
    inner = unwrap(model)
    if modules is None:
        modules = modules_by_name(inner)
    layers = [(entry["name"], modules[entry["name"]]) for entry in description.get("layers", [])
              if isinstance(entry, dict) and entry.get("name") in modules]
    request = _erf_request(erf, modules) if erf is not None and probe is not None else None
    arrays: dict[str, torch.Tensor] = {}
    per_layer: dict[str, dict[str, torch.Tensor]] = {}
    scalars: dict[str, torch.Tensor | float] = {}
    with torch.no_grad():
        weights = {name: weight_array(module, layer_kind(module)) for name, module in layers}
    if probe is not None:
        device = model_device(inner, probe)
        image = first_tensor(probe)
        if image is not None:  # as given (the forward gets a copy, which the model may change in place)
            arrays["input"] = _sample_zero(image.detach()).to(device).float()
        hooks = _Hooks()
        with probe_mode(model):
            args = probe_args(probe, device)
            try:
                for name, module in layers:
                    hooks.add(name, module)
                hooks.start()
                output = inner(*args)
            finally:
                hooks.remove()
            per_layer, scalars = hooks.pieces, hooks.scalars
            if target is not None:
                t = torch.as_tensor(target)
                t = _sample_zero(t.detach())
                arrays["target"] = t.long() if not t.is_floating_point() and not t.is_complex() else t.float()
            out = first_tensor(output)
            if out is not None:
                shapes_segment = (image is not None and image.dim() == 4 and out.dim() == 4
                                  and out.shape[1] >= 2 and out.shape[2:] == image.shape[2:])
                if description.get("segmentation") and shapes_segment:
                    scores = out[0].detach().float()
                    arrays["seg/probs"] = torch.softmax(scores, dim=0)
                    arrays["seg/classes"] = scores.argmax(0).long()
                else:
                    sample = _sample_zero(out.detach()).float()
                    arrays["output"] = sample if sample.numel() <= MAX_OUTPUT_VALUES else \
                        sample.reshape(-1)[:MAX_OUTPUT_VALUES]
            if request is not None:
                layer, module, channel, y, x = request
                erf_map = effective_field(inner, probe_args(probe, device), module, channel, y, x)
    for name, _module in layers:
        arrays.update(per_layer.get(name, {}))
        weight = weights.get(name)
        if weight is not None:
            arrays[f"weight/{name}"] = weight
    if probe is not None and request is not None:
        arrays[f"erf/{request[0]}"] = erf_map
    arrays = _within_limits(arrays)
    on_device = {f"scalar:{k}": v.reshape(()) for k, v in scalars.items() if isinstance(v, torch.Tensor)}
    values = to_numpy({**arrays, **on_device})
    scalar_values = {k: float(values.pop(f"scalar:{k}")) if isinstance(v, torch.Tensor) else float(v)
                     for k, v in scalars.items()}
    return values, scalar_values
