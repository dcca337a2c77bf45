"""What a user's own model is made of: its layers, their kinds, shapes and geometry (the model description).

``explorer.watch(model)`` knows nothing of the model it is given but that it is a ``torch.nn.Module``.
:func:`describe_model` walks its modules and, with a probe, runs one forward with hooks to learn each
layer's output shape. The description (a plain dict, sent to every window that attaches) lists the leaf
modules, and each LSTM, GRU and RNN as a whole, by their dotted names; the containers are implied by those
names. Each layer has a *kind* that says how a window shows it: ``conv``, ``pool``, ``linear``,
``recurrent``, ``activation``, ``norm`` or ``other``.

Everything that runs the user's model here goes through :func:`probe_forward`: no gradients, every module
in eval mode for the forward and its own ``training`` flag back after, the random generators forked (a
dropout left in train mode or a model that draws noise leaves the user's random stream as it was), so
watching never changes what the training does.

A model wrapped in ``DataParallel``/``DistributedDataParallel`` (or compiled) is described and run through
its inner module: names without the ``module.`` prefix, and no collective operation of the wrapper.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

# -- kinds --------------------------------------------------------------------------------------------

CONV_TYPES = frozenset({"Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"})
POOL_TYPES = frozenset({"MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                        "LPPool1d", "LPPool2d"})
ADAPTIVE_POOL_TYPES = frozenset({"AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
                                 "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"})
LINEAR_TYPES = frozenset({"Linear", "Bilinear"})
RECURRENT_TYPES = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
NORM_TYPES = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LayerNorm", "GroupNorm",
                        "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "RMSNorm"})
# activations by how their saturation is measured: in [0, 1] (saturated below 0.05 or above 0.95), in [-1, 1]
# (saturated where |y| > 0.9), rectifiers (dead where exactly 0); the others only get their histogram
SIGMOID_TYPES = frozenset({"Sigmoid", "Hardsigmoid"})
TANH_TYPES = frozenset({"Tanh", "Hardtanh", "Softsign"})
RECTIFIER_TYPES = frozenset({"ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "CELU", "SELU", "GELU", "SiLU",
                             "Mish", "Softplus", "Hardswish", "Threshold"})
OTHER_ACTIVATION_TYPES = frozenset({"Softmax", "Softmax2d", "LogSoftmax", "Softmin", "LogSigmoid", "Hardshrink",
                                    "Softshrink", "Tanhshrink", "GLU"})
ACTIVATION_TYPES = SIGMOID_TYPES | TANH_TYPES | RECTIFIER_TYPES | OTHER_ACTIVATION_TYPES

WRAPPER_TYPES = ("DataParallel", "DistributedDataParallel")


KNOWN_TYPES = (CONV_TYPES | POOL_TYPES | ADAPTIVE_POOL_TYPES | LINEAR_TYPES | NORM_TYPES | ACTIVATION_TYPES
               | frozenset(RECURRENT_TYPES))


_BASE_TYPES: dict[type, str] = {}  # class -> its base_type (a snapshot asks it of every layer, each time)


def base_type(module: nn.Module) -> str:
    """The name of the torch class a module is (or derives from): a user's ``class MyReLU(nn.ReLU)`` is a
    ReLU to the views. The module's own class name when it derives from none that is known. Worked out
    once a class: the answer depends on the class alone."""
    module_type = type(module)
    found = _BASE_TYPES.get(module_type)
    if found is None:
        found = next((cls.__name__ for cls in module_type.__mro__
                      if cls.__module__.startswith("torch.") and cls.__name__ in KNOWN_TYPES), module_type.__name__)
        if len(_BASE_TYPES) < 4096:
            _BASE_TYPES[module_type] = found
    return found


def layer_kind(module: nn.Module) -> str:
    """How a window shows the module: conv, pool, linear, recurrent, activation, norm or other."""
    t = base_type(module)
    if t in CONV_TYPES:
        return "conv"
    if t in POOL_TYPES or t in ADAPTIVE_POOL_TYPES:
        return "pool"
    if t in LINEAR_TYPES:
        return "linear"
    if t in RECURRENT_TYPES and isinstance(module, nn.RNNBase):
        return "recurrent"
    if t in ACTIVATION_TYPES:
        return "activation"
    if t in NORM_TYPES:
        return "norm"
    return "other"


def activation_family(module: nn.Module) -> str:
    """"sigmoid", "tanh", "rectifier" or "other": the range of an activation's histogram and what its
    saturated share counts."""
    t = base_type(module)
    if t in SIGMOID_TYPES:
        return "sigmoid"
    if t in TANH_TYPES:
        return "tanh"
    if t in RECTIFIER_TYPES:
        return "rectifier"
    return "other"


# -- the model's modules ----------------------------------------------------------------------------------

def unwrap(model: nn.Module) -> nn.Module:
    """The module that does the work: ``model.module`` of a (Distributed)DataParallel wrapper, the original
    of a compiled model; the model itself otherwise."""
    for _ in range(8):  # wrappers of wrappers, at most a few
        kind = type(model).__name__
        inner = getattr(model, "module" if kind in WRAPPER_TYPES else "_orig_mod", None)
        if kind not in WRAPPER_TYPES + ("OptimizedModule",) or not isinstance(inner, nn.Module):
            break
        model = inner
    return model


def root_name(inner: nn.Module) -> str:
    """The name the root module goes by where it must be named (a model that is one layer, or a root that owns
    parameters itself): its class name, which no child's attribute name is likely to be."""
    return _root_name_among(inner, {n for n, _ in inner.named_modules()})


def _root_name_among(inner: nn.Module, names: set[str]) -> str:
    name = type(inner).__name__
    return name if name not in names else f"{name} (root)"


def _named(inner: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every module of ``inner`` with its dotted name, the root under :func:`root_name` (worked out from the
    same walk through the tree: a snapshot looks its layers up this way, and a second walk for the root's
    name was half of that lookup's time)."""
    named = list(inner.named_modules())
    root = _root_name_among(inner, {name for name, _ in named})
    for name, module in named:
        yield (name if name else root), module


def is_layer(module: nn.Module) -> bool:
    """A module the description lists: a leaf, or a recurrent module as a whole."""
    return layer_kind(module) == "recurrent" or next(iter(module.children()), None) is None


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The listed layers of a model (unwrapped), in module order: leaf modules and recurrent modules, but no
    module inside a recurrent one; the root only when it is itself a leaf (a model that is one layer)."""
    out: list[tuple[str, nn.Module]] = []
    inside: list[str] = []  # names of the recurrent modules seen: their insides are not listed
    for name, module in _named(unwrap(model)):
        if any(name.startswith(prefix + ".") for prefix in inside):
            continue
        if is_layer(module):
            out.append((name, module))
            if layer_kind(module) == "recurrent":
                inside.append(name)
    return out


def grad_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules owning parameters directly (not through their children), in module order: the layers
    whose gradient norms are recorded."""
    return [(name, m) for name, m in _named(unwrap(model)) if next(iter(m.parameters(recurse=False)), None) is not None]


def modules_by_name(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module for every module of the (unwrapped) model, named as the description names them."""
    return dict(_named(unwrap(model)))


class LayerLookup:
    """:func:`modules_by_name` of a watched model, kept between calls and walked again only when a module is no
    longer where the walk found it (a layer replaced, added under a name it had, or deleted while the model
    trains): each call checks every parent's entry for each child, one dict lookup a module.

    Why: a snapshot and a gradient row each looked their layers up by walking the module tree, and right
    after a training step (the caches cold) that walk took 30-45 us of a small CNN's 2 ms snapshot."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._inner: nn.Module | None = None
        self._modules: dict[str, nn.Module] = {}
        self._places: list[tuple[nn.Module, str, nn.Module]] = []  # (parent, attribute, child) as walked

    def modules(self) -> dict[str, nn.Module]:
        inner = unwrap(self.model)
        if inner is not self._inner or any(parent._modules.get(attr) is not child
                                           for parent, attr, child in self._places):
            self._modules = modules_by_name(inner)
            self._places = [(parent, attr, child) for parent in self._modules.values()
                            for attr, child in parent._modules.items() if child is not None]
            self._inner = inner
        return self._modules


def own_parameter_count(module: nn.Module) -> int:
    """Parameters the module owns itself (not its children's); a lazy module not yet initialised has 0."""
    total = 0
    for p in module.parameters(recurse=False):
        if not isinstance(p, nn.parameter.UninitializedParameter):
            total += p.numel()
    return total


def model_device(model: nn.Module, probe: Any = None) -> torch.device:
    """Where the model's parameters (or buffers) are; the probe's device for a model with neither."""
    tensor: torch.Tensor | None = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    if tensor is not None:
        return tensor.device
    first = first_tensor(probe)
    return first.device if first is not None else torch.device("cpu")


def cuda_indices(model: nn.Module) -> list[int]:
    """The CUDA devices the model's parameters and buffers are on (their random generators are forked)."""
    if not torch.cuda.is_initialized():  # no tensor can be on a CUDA device yet (a snapshot asks each time)
        return []
    found: set[int] = set()
    for t in list(model.parameters()) + list(model.buffers()):
        if t.device.type == "cuda":
            found.add(t.device.index if t.device.index is not None else torch.cuda.current_device())
    return sorted(found)


# -- running the probe --------------------------------------------------------------------------------

def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in a model's output or a probe: itself, the first of a tuple or list (depth first),
    the first value of a dict (``{"out": ...}`` as torchvision's segmentation models return)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def probe_args(probe: Any, device: torch.device) -> tuple[Any, ...]:
    """The positional arguments of the model's call for ``probe`` (a tensor, or a tuple of them for
    ``model(*probe)``): copies of its tensors on ``device`` (the model's). Copies, so that a model that
    changes its input in place (``x /= 255``, a first ``ReLU(inplace=True)``) leaves the user's probe as it
    was."""
    items = tuple(probe) if isinstance(probe, (tuple, list)) else (probe,)
    return tuple(t.detach().to(device, copy=True) if isinstance(t, torch.Tensor) else t for t in items)


@contextlib.contextmanager
def probe_mode(model: nn.Module) -> Iterator[None]:
    """The conditions of every forward that watching runs: no gradients, each module in eval mode and its own
    ``training`` flag back afterwards, the CPU's and the model's CUDA devices' random generators forked."""
    flags = [(m, m.training) for m in model.modules()]
    devices = cuda_indices(model)
    plain = type(model).eval is nn.Module.eval and all(_plain_flag(type(m)) for m, _ in flags)
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda") if devices else \
                torch.random.fork_rng(devices=[]):
            if plain:
                # what eval() does to such a tree, without its recursion and Module.__setattr__'s checks: in a
                # training loop, with the caches cold, eval() and the flags' return took 0.12-0.17 ms of a
                # small CNN's snapshot
                for m, training in flags:
                    if training:
                        object.__setattr__(m, "training", False)
            else:  # a module with a train() or a __setattr__ of its own (a TorchScript module's flag is C++'s)
                model.eval()
            with torch.no_grad():
                yield
    finally:
        for m, training in flags:
            if m.training != training:
                if plain:
                    object.__setattr__(m, "training", training)
                else:
                    m.training = training


_PLAIN_FLAG: dict[type[nn.Module], bool] = {}


def _plain_flag(module_type: type[nn.Module]) -> bool:
    """Whether a module class's ``train()`` and ``__setattr__`` are nn.Module's own: then eval() only sets
    each module's ``training`` attribute, and writing the attribute directly does the same."""
    plain = _PLAIN_FLAG.get(module_type)
    if plain is None:
        plain = module_type.train is nn.Module.train and module_type.__setattr__ is nn.Module.__setattr__
        if len(_PLAIN_FLAG) < 4096:
            _PLAIN_FLAG[module_type] = plain
    return plain


def shape_list(t: torch.Tensor | None) -> list[int] | None:
    return [int(v) for v in t.shape] if t is not None else None


def geometry(module: nn.Module) -> dict[str, list[int]] | None:
    """A convolution's or pooling's kernel, stride, padding and dilation, one entry per spatial axis (a
    receptive field's arithmetic needs them); None for other modules and adaptive poolings."""
    t = base_type(module)
    if t not in CONV_TYPES and t not in POOL_TYPES:
        return None
    nd = 3 if t.endswith("3d") else (2 if t.endswith("2d") else 1)

    def axes(value: Any, default: int) -> list[int]:
        if value is None:
            return [default] * nd
        if isinstance(value, (int, float)):
            return [int(value)] * nd
        return [int(v) for v in value][:nd] if len(value) >= nd else [int(value[0])] * nd

    kernel = axes(getattr(module, "kernel_size", 1), 1)
    stride = axes(getattr(module, "stride", None), 1) if getattr(module, "stride", None) is not None else kernel
    dilation = axes(getattr(module, "dilation", 1), 1)
    padding_value = getattr(module, "padding", 0)
    if padding_value == "valid":
        padding = [0] * nd
    elif padding_value == "same":  # what is added before each axis (the odd one goes after)
        padding = [d * (k - 1) // 2 for d, k in zip(dilation, kernel)]
    else:
        padding = axes(padding_value, 0)
    return {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}


def layer_entry(name: str, module: nn.Module, out_shape: list[int] | None) -> dict[str, Any]:
    """One layer of the description (see the module's docstring)."""
    kind = layer_kind(module)
    entry: dict[str, Any] = {"name": name, "type": base_type(module), "kind": kind,
                             "params": own_parameter_count(module), "out_shape": out_shape,
                             "depth": name.count(".") + 1}
    geo = geometry(module)
    if geo is not None:
        entry["geometry"] = geo
    if kind == "recurrent":
        assert isinstance(module, nn.RNNBase)
        entry.update(cell=RECURRENT_TYPES[base_type(module)], num_layers=int(module.num_layers),
                     bidirectional=bool(module.bidirectional), hidden_size=int(module.hidden_size))
    if kind == "activation" and activation_family(module) in ("sigmoid", "tanh"):
        entry["saturating"] = True
    return entry


def is_segmentation(input_shape: Sequence[int] | None, output_shape: Sequence[int] | None) -> bool:
    """A model whose output is a class score per pixel: (N, C, H, W) at the input's H and W, with C >= 2
    (one channel at the input's size is a picture, as an autoencoder makes, not classes)."""
    return (input_shape is not None and output_shape is not None and len(input_shape) == 4
            and len(output_shape) == 4 and output_shape[1] >= 2 and list(output_shape[2:]) == list(input_shape[2:]))


def describe_model(model: nn.Module, probe: Any = None, *, name: str | None = None) -> dict[str, Any]:
    """The model description (a dict of plain values): name, framework, device, the probe's input and output
    shapes, whether it segments, its layers and the layers with parameters (``grad_layers``).

    With a probe, one forward of it (see :func:`probe_mode`) gives each layer's output shape (the first
    tensor of a tuple output; None for a layer the forward did not call) and lists the layers in the order
    the forward first calls them (the order a receptive field is followed in), those it did not call after,
    in module order. Without a probe the shapes are None and the layers in module order.
    ``control`` is False here: the watcher says whether the window may control the run.
    """
    inner = unwrap(model)
    layers = layer_modules(inner)
    device = model_device(inner, probe)
    out_shapes: dict[str, list[int]] = {}
    call_order: list[str] = []
    input_shape = output_shape = None
    if probe is not None:
        args = probe_args(probe, device)
        handles = []

        def recorder(layer_name: str):
            def hook(_module: nn.Module, _args: Any, output: Any) -> None:
                if layer_name not in out_shapes:
                    shape = shape_list(first_tensor(output))
                    if shape is not None:
                        out_shapes[layer_name] = shape
                        call_order.append(layer_name)
            return hook

        try:
            for layer_name, module in layers:
                handles.append(module.register_forward_hook(recorder(layer_name)))
            with probe_mode(model):
                output = inner(*args)
        finally:
            for h in handles:
                h.remove()
        input_shape = shape_list(first_tensor(args))
        output_shape = shape_list(first_tensor(output))
        position = {n: i for i, n in enumerate(call_order)}
        layers = sorted(layers, key=lambda item: position.get(item[0], len(position)))
    return {
        "name": name or type(inner).__name__,
        "framework": f"torch {torch.__version__.split('+')[0]}",
        "device": str(device),
        "control": False,
        "input_shape": input_shape,
        "output_shape": output_shape,
        "segmentation": is_segmentation(input_shape, output_shape),
        "layers": [layer_entry(n, m, out_shapes.get(n)) for n, m in layers],
        "grad_layers": [n for n, _ in grad_modules(inner)],
    }
