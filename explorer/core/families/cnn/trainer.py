"""Convolutional networks from the builder, trained live: feature maps, filters, receptive fields, LCN.

The lecture's CNN: convolution with learned kernels whose parameters are shared by all pixels, a
nonlinearity (ReLU u = max(0, x), or LeNet-5's tanh), pooling of filter responses at nearby locations
(robustness to the exact position, a larger receptive field for the next layer), optionally local
contrast normalisation

    h'(x, y) = (h(x, y) - m(N(x, y))) / max(eps, sigma(N(x, y)))

and fully connected layers at the end. The network is a builder :class:`~explorer.core.spec.network.NetworkSpec`
of family ``cnn`` (a preset such as ``lenet5``, or the user's own), built with ``build_module``.
Trained by backpropagation on the cross-entropy of the logits (the spec's final Softmax is left out
of the loss and used only for the probabilities shown), SGD with momentum.

The data adapts to the network's input (C, H, W): images are resized once at load (bilinear) to
H x W, and grey images are repeated to C channels per batch, so LeNet-5 (1x28x28) trains on the 8x8
digits enlarged and alexnet-small (3x32x32) trains on grey digits too.

Receptive fields (:func:`layer_geometry`, :func:`rf_box`): a unit of layer l at (y, x) sees the input
pixels [o_l + y j_l, o_l + y j_l + r_l - 1] (and the same in x), with

    r_l = r_(l-1) + (k - 1) j_(l-1),   j_l = j_(l-1) s,   o_l = o_(l-1) - p j_(l-1),   r_0 = j_0 = 1, o_0 = 0

for a layer with kernel k, stride s and padding p (LCN: k = size, s = 1, p = size // 2; activations keep
all three). The box is clipped to the image (padding pixels are not pixels). The effective receptive
field of a unit for one input is |d unit / d input| (summed over the input channels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from explorer.core.data.datasets import DATASET_NAMES, DataError, Dataset
from explorer.core.data.imagefolder import load_image_folder
from explorer.core.engine.devices import place_image_model
from explorer.core.engine.settings import Settings, setting
from explorer.core.families.base import MiniBatchTrainer
from explorer.core.spec.layers import Concat, LayerStack, LocalContrastNorm

DATASETS = tuple(DATASET_NAMES) + ("folder",)
DEFAULT_PRESET = "lenet5"
EVAL_CHUNK = 500          # held-out examples per forward pass in evaluate (caps memory for big nets)
MAX_FILTERS = 64          # first-layer filters shipped in a snapshot
MAX_GRID = 16             # deeper filters: at most MAX_GRID output x MAX_GRID input channels
LCN_DEMO_SIZE, LCN_DEMO_EPS = 5, 1e-2
_SPATIAL = ("Conv2d", "MaxPool2d", "AvgPool2d", "LocalContrastNorm")
_SAME = ("ReLU", "Sigmoid", "Tanh", "Dropout", "Softmax")


def cnn_presets() -> list[str]:
    """Names of the builder's presets of family cnn."""
    from explorer.core.spec.network import PRESETS
    return [name for name, make in PRESETS.items() if make().family == "cnn"]


# -- receptive fields -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerGeometry:
    """Where the units of one image layer look in the input (see the module docstring)."""

    index: int                  # 1-based layer index in the spec
    name: str                   # "Conv2d #1"
    shape: tuple[int, int, int]  # (C, H, W) of the layer's output
    size: int                   # r: side of the receptive field, in input pixels
    jump: int                   # j: input pixels between neighbouring units
    offset: int                 # o: input coordinate of the first pixel of unit (0, 0)'s field (< 0: padding)


def _params(layer) -> dict[str, Any]:
    from explorer.core.spec.network import LAYER_TYPES
    return {**{p.name: p.default for p in LAYER_TYPES[layer.type].params}, **(layer.params or {})}


def layer_geometry(spec) -> list[LayerGeometry]:
    """Receptive-field size, jump and offset of every layer whose output is an image (C, H, W), in order.

    Stops at the first layer that has no receptive field in this model (Flatten, Linear, ConvTranspose2d,
    Upsample). Sizes and jumps equal ``spec.infer``'s ``rf_size`` / ``rf_jump``; the offset adds padding.
    """
    from explorer.core.spec.network import validate
    inf = validate(spec)
    out: list[LayerGeometry] = []
    r, j, o = 1, 1, 0
    geoms: dict[int, tuple[int, int, int]] = {0: (1, 1, 0)}
    for layer, info in zip(spec.layers, inf.layers):
        t = layer.type
        if info.output_shape is None or len(info.output_shape) != 3:
            break
        p = _params(layer)
        if t in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            k, s, pad = p["kernel_size"], p["stride"], p.get("padding", 0)
            o, r, j = o - pad * j, r + (k - 1) * j, j * s
        elif t == "LocalContrastNorm":
            k = p["size"]
            o, r = o - (k // 2) * j, r + (k - 1) * j
        elif t == "Concat":
            other = geoms.get(p["source"])
            if other is None:
                break
            if other[0] > r:
                r, j, o = other
        elif t not in _SAME:
            break
        geoms[info.index] = (r, j, o)
        c, h, w = info.output_shape
        out.append(LayerGeometry(info.index, f"{t} #{info.index}", (c, h, w), r, j, o))
    return out


def rf_box(geom: LayerGeometry, y: int, x: int, image_hw: Sequence[int]) -> tuple[int, int, int, int]:
    """Theoretical receptive field of unit (y, x) of a layer: (top, left, bottom, right), inclusive, in
    input pixels, clipped to the image of size ``image_hw`` = (H, W)."""
    h, w = int(image_hw[0]), int(image_hw[1])
    top, left = geom.offset + y * geom.jump, geom.offset + x * geom.jump
    bottom, right = top + geom.size - 1, left + geom.size - 1
    return max(top, 0), max(left, 0), min(bottom, h - 1), min(right, w - 1)


def forward_upto(stack: LayerStack, x: torch.Tensor, upto: int) -> torch.Tensor:
    """The output of layer ``upto`` (1-based) of a :class:`LayerStack` for the batch ``x`` (skips kept)."""
    saved = {0: x} if 0 in stack.keep else {}
    for i, layer in enumerate(stack.layers, start=1):
        x = layer(x, saved[layer.source]) if isinstance(layer, Concat) else layer(x)
        if i in stack.keep:
            saved[i] = x
        if i == upto:
            return x
    return x


def effective_rf(stack: LayerStack, image: torch.Tensor, layer: int, channel: int, y: int, x: int) -> torch.Tensor:
    """|d unit / d input| for one input ``image`` (C, H, W), summed over channels: (H, W), on its device.

    The unit is (channel, y, x) of layer ``layer`` (1-based). Runs with gradients on whatever the caller's
    grad mode; the model's parameters get no gradient (only the input is differentiated).
    """
    inp = image.detach().unsqueeze(0).clone().requires_grad_(True)
    with torch.enable_grad():
        out = forward_upto(stack, inp, layer)
        (grad,) = torch.autograd.grad(out[0, channel, y, x], inp)
    return grad[0].abs().sum(0)


def lcn(h: torch.Tensor, size: int = LCN_DEMO_SIZE, eps: float = LCN_DEMO_EPS) -> torch.Tensor:
    """The lecture's local contrast normalisation of maps ``h`` (N, C, H, W) (see :class:`LocalContrastNorm`)."""
    return LocalContrastNorm(size, eps)(h)


# -- data -----------------------------------------------------------------------------------------
def adapt_images(x: np.ndarray, src_channels: int, src_hw: Sequence[int], dst_chw: Sequence[int]) -> np.ndarray:
    """Rows of flat images (N, Cs*H*W) resized (bilinear) to the network's H x W: (N, C', H2, W2) float32.

    Colour is kept when the network takes 3 channels; for a 1-channel network RGB becomes grey
    (0.299 R + 0.587 G + 0.114 B). Grey stays 1 channel here and is repeated to C channels per batch
    (:meth:`CNNTrainer.to_input`), so the data set is never stored C times.
    """
    h, w = int(src_hw[0]), int(src_hw[1])
    c_dst, h2, w2 = (int(v) for v in dst_chw)
    out = []
    for start in range(0, max(len(x), 1), 2048):
        t = torch.from_numpy(np.ascontiguousarray(x[start:start + 2048], dtype=np.float32)).reshape(-1, src_channels, h, w)
        if src_channels == 3 and c_dst != 3:
            t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if (h, w) != (h2, w2) and len(t):
            t = F.interpolate(t, size=(h2, w2), mode="bilinear", align_corners=False,
                              antialias=h2 < h or w2 < w).clamp_(0.0, 1.0)
        out.append(t.numpy())
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


# -- configuration --------------------------------------------------------------------------------
@dataclass
class CNNConfig(Settings):
    """Everything that defines a CNN run; saved as JSON in a run folder.

    The network is ``spec`` (a builder spec as a dict, from ``spec_to_dict``) when set, else the preset
    named ``preset``. ``dataset`` "folder" reads the user's images from ``image_folder``.
    """

    dataset: str = setting("digits", choices=DATASETS, label="data set", data=True)
    data_dir: str | None = setting(None, data=True)
    image_folder: str | None = setting(None, reset=True)
    upscale: int = setting(1, kind="int", lo=1, hi=4, label="upscale factor", data=True)
    bars_size: int = setting(8, kind="int", lo=2, hi=64, label="bars size", data=True)
    preset: str = setting(DEFAULT_PRESET, reset=True)
    spec: dict | None = setting(None, reset=True)
    lr: float = setting(0.03, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.9, kind="number", lo=0, hi=1, below=True, live=True)
    batch_size: int = setting(32, kind="int", lo=1, live=True)
    seed: int = setting(0, kind="int", lo=0, data=True)
    device: str = "auto"
    download: bool = False
    eval_samples: int = setting(1000, kind="int", lo=1, hi=1_000_000, reset=True)
    n_gallery: int = setting(20, kind="int", lo=1, hi=1000, reset=True)
    n_misclassified: int = setting(32, kind="int", lo=1, hi=1000, reset=True)
    max_channels: int = setting(32, kind="int", lo=1, hi=1024, reset=True)

    def network_spec(self):
        """The builder spec this configuration trains (a fresh object each call)."""
        from explorer.core.spec.network import load_preset, spec_from_dict
        return spec_from_dict(self.spec) if self.spec is not None else load_preset(self.preset)

    def network_name(self) -> str:
        if self.spec is not None:
            return str(self.spec.get("name") or "network from the builder")
        return self.preset

    def check(self) -> None:
        from explorer.core.spec.network import SpecError, validate
        if self.dataset == "folder" and not self.image_folder:
            raise ValueError("data set 'folder' needs an image folder (one sub-folder of images per class)")
        if self.spec is None and self.preset not in cnn_presets():
            raise ValueError(f"preset must be a CNN preset ({', '.join(cnn_presets())}), got {self.preset!r}")
        try:
            spec = self.network_spec()
            inf = validate(spec)
        except SpecError as exc:
            raise ValueError(f"network: {exc}") from None
        check_cnn_spec(spec, inf)


def check_cnn_spec(spec, inf=None) -> None:
    """A CNN here takes an image (C, H, W) with 1 or 3 channels and ends in class scores (K,)."""
    from explorer.core.spec.network import validate
    inf = inf or validate(spec)
    if spec.family != "cnn":
        raise ValueError(f"this is a {spec.family} network, not a CNN")
    shape = tuple(spec.input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ValueError(f"a CNN here takes a grey or colour image (1 or 3, H, W), not an input of shape {shape}")
    out = inf.output_shape
    if out is None or len(out) != 1 or out[0] < 2:
        raise ValueError(f"a CNN here ends in one score per class (a vector of at least 2), not {out}")


# Changes that only take effect after re-initialising the model, and those applied between two steps.
NEEDS_RESET = CNNConfig.reset_settings()
LIVE = CNNConfig.live_settings()


# -- trainer --------------------------------------------------------------------------------------
class CNNTrainer(MiniBatchTrainer):
    """Trains a builder CNN on images; snapshots show what it computes for one probe input.

    Metrics per step: ``loss`` (cross-entropy of the mini-batch), ``accuracy`` (of the mini-batch).
    Evaluation: ``heldout_accuracy``, ``heldout_loss``, ``train_accuracy``, ``train_loss`` (on at most
    ``eval_samples`` examples each); it also keeps the held-out confusion matrix and misclassified
    examples for the snapshot.
    """

    family = "cnn"

    # -- data -------------------------------------------------------------------------------------
    def _folder_mode(self) -> str:
        try:
            c = int(self.config.network_spec().input_shape[0])
        except Exception:  # noqa: BLE001 - an invalid spec is reported by validate, not here
            c = 1
        return "RGB" if c == 3 else "L"

    def _load_configured_data(self) -> Dataset:
        c = self.config
        if c.dataset == "folder":
            return load_image_folder(c.image_folder, mode=self._folder_mode(), seed=c.seed)
        ds = super()._load_configured_data()
        if ds.train_y is None or ds.test_y is None:
            raise DataError(f"the data set {ds.name} has no labels: a CNN classifier needs them")
        return ds

    def _data_key(self) -> tuple:
        c = self.config
        return super()._data_key() + (c.image_folder if c.dataset == "folder" else None,
                                      self._folder_mode() if c.dataset == "folder" else None)

    def _restore_data_settings(self) -> None:
        folder = self._loaded[len(self.config.data_settings())]
        super()._restore_data_settings()
        self.config.image_folder = folder if folder is not None else self.config.image_folder

    # -- construction -------------------------------------------------------------------------
    def _build_model(self) -> None:
        from explorer.core.spec.network import validate
        cfg, ds, dev = self.config, self.dataset, self._device
        self.spec = cfg.network_spec()
        self.inference = validate(self.spec)
        check_cnn_spec(self.spec, self.inference)
        self.input_shape = tuple(int(v) for v in self.spec.input_shape)
        assert self.inference.output_shape is not None, "validate() passed: every shape is known"
        self.n_outputs = int(self.inference.output_shape[0])
        self.n_classes = int(max(int(ds.train_y.max()), int(ds.test_y.max())) + 1)
        if self.n_outputs < self.n_classes:
            raise ValueError(f"the network has {self.n_outputs} outputs but {ds.name} has {self.n_classes} classes: "
                             "set the last Linear layer's out_features to the number of classes")
        self.class_names = tuple(getattr(ds, "class_names", ()) or (str(k) for k in range(self.n_classes)))
        from explorer.core.spec.network import build_module
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, the global generator untouched
            torch.manual_seed(cfg.seed)
            self.model: LayerStack = build_module(self.spec)
        place_image_model(self.model, dev).train()
        layers = list(self.model.layers)
        self._softmax_last = self.spec.layers[-1].type == "Softmax"
        # the loss takes the logits: the layers before a final Softmax (the same modules, not copies)
        self.net = LayerStack(layers[:-1]) if self._softmax_last else self.model
        self._has_dropout = any(isinstance(m, torch.nn.Dropout) for m in layers)
        self.geometry = layer_geometry(self.spec)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)

    def _build(self) -> None:
        super()._build()
        self._confusion = np.zeros((self.n_outputs, self.n_outputs), np.int64)
        self._eval_pred: np.ndarray | None = None
        self.eval_version = 0  # counts evaluations: the confusion matrix and misclassified list change with it
        self.gallery_version = getattr(self, "gallery_version", 0) + 1
        self._snapshot_parts: dict[str, tuple[Any, Any]] = {}  # see _kept
        self.set_probe(index=0)
        self.unit: tuple[int, int, int, int] | None = None
        self.select_unit(None)

    def _prepare_data(self) -> None:
        """Resize the data set to the network's input once (kept across resets with the same data and input)."""
        ds = self.dataset
        key = (ds, self.input_shape)
        old = getattr(self, "_prepared_key", None)
        if old is not None and old[0] is ds and old[1] == self.input_shape:
            return
        src_c = int(getattr(ds, "channels", 1))
        self._train_np = adapt_images(ds.train_x, src_c, ds.image_shape, self.input_shape)
        self._test_np = adapt_images(ds.test_x, src_c, ds.image_shape, self.input_shape)
        self._prepared_key = key

    def _load_data(self) -> None:
        self._prepare_data()
        self._load_labelled(self._train_np, self._test_np)
        self.gallery_indices = self._pick_gallery(np.asarray(self.dataset.test_y), self.config.n_gallery)

    @staticmethod
    def _pick_gallery(labels: np.ndarray, n: int) -> np.ndarray:
        """A fixed set of held-out examples, every class in turn (round robin), so each class is there."""
        by_class = [np.flatnonzero(labels == k).tolist() for k in range(int(labels.max()) + 1)]
        picked: list[int] = []
        rank = 0
        while len(picked) < min(n, len(labels)):
            added = False
            for idx in by_class:
                if rank < len(idx) and len(picked) < n:
                    picked.append(idx[rank])
                    added = True
            if not added:
                break
            rank += 1
        return np.asarray(picked, dtype=np.int64)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of stored images as the network's input: grey repeated to C channels when needed."""
        c = self.input_shape[0]
        return x if x.shape[1] == c else x.expand(-1, c, -1, -1)

    # -- probe and unit (call on the training thread) ---------------------------------------------
    def set_probe(self, index: int | None = None, image: np.ndarray | None = None) -> None:
        """The input whose feature maps are shown: gallery entry ``index`` or a drawn ``image``.

        ``image``: (H, W) grey or (C, H, W), values in [0, 1], at the network's input size (a drawing on
        the canvas is made at that size).
        """
        c, h, w = self.input_shape
        if image is not None:
            a = np.asarray(image, dtype=np.float32)
            if a.ndim == 2:
                a = a[None]
            if a.ndim != 3 or a.shape[1:] != (h, w) or a.shape[0] not in (1, c):
                raise ValueError(f"a drawn probe must be {h}x{w} pixels (the network's input), got {a.shape}")
            t = torch.from_numpy(np.clip(a, 0.0, 1.0)).to(self._device)
            self.probe = t.expand(c, h, w).contiguous()
            self.probe_index, self.probe_label = None, None
            return
        n = len(self.gallery_indices)
        index = int(index or 0)
        if not 0 <= index < n:
            raise ValueError(f"gallery index must be between 0 and {n - 1}, got {index}")
        row = int(self.gallery_indices[index])
        t = torch.from_numpy(self._test_np[row:row + 1]).to(self._device)
        self.probe = self.to_input(t)[0].contiguous()
        self.probe_index, self.probe_label = index, int(self.dataset.test_y[row])

    def _image_geometry(self, layer: int) -> LayerGeometry | None:
        return next((g for g in self.geometry if g.index == layer), None)

    def unit_view(self, unit: Sequence[int]) -> dict[str, Any]:
        """The receptive field of ``unit`` = (layer, channel, y, x) for the probe on show, as a snapshot has
        it for the selected unit (``unit``, ``unit_layer``, ``rf_box``, ``erf``), the selection left as it
        is: a window that follows the run read-only asks for the units its user clicks. Out of range
        raises ValueError."""
        (layer, ch, y, x), g = self._checked_unit(unit)
        erf = self.feature_maps(self.probe, (layer, ch, y, x))[3]
        assert erf is not None
        return {"unit": np.asarray((layer, ch, y, x), dtype=np.int64), "unit_layer": g.name,
                "rf_box": np.asarray(rf_box(g, y, x, self.input_shape[1:]), dtype=np.int64),
                "erf": erf.detach().cpu().numpy()}

    def select_unit(self, unit: Sequence[int] | None) -> None:
        """Select unit (layer, channel, y, x) of an image layer (layer 1-based); None: the centre unit of
        channel 0 of the last image layer. Out of range raises ValueError."""
        if unit is None:
            if not self.geometry:
                self.unit = None
                return
            last = self.geometry[-1]
            self.unit = (last.index, 0, last.shape[1] // 2, last.shape[2] // 2)
            return
        self.unit = self._checked_unit(unit)[0]

    def _checked_unit(self, unit: Sequence[int]) -> tuple[tuple[int, int, int, int], LayerGeometry]:
        """``unit`` = (layer, channel, y, x) as ints, and its layer's geometry; ValueError when out of range."""
        layer, ch, y, x = (int(v) for v in unit)
        g = self._image_geometry(layer)
        if g is None:
            raise ValueError(f"layer {layer} has no feature maps with a receptive field")
        c, h, w = g.shape
        if not (0 <= ch < c and 0 <= y < h and 0 <= x < w):
            raise ValueError(f"{g.name} has {c} maps of {h}x{w}; unit ({ch}, {y}, {x}) is outside")
        return (layer, ch, y, x), g

    # -- engine interface -----------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._next_indices()
        return self.to_input(self._train.index_select(0, idx)), self._train_y.index_select(0, idx)

    def train_step(self) -> dict[str, torch.Tensor]:
        x, y = self.next_batch()
        with torch.enable_grad():
            logits = self._trained(self.net)(x)
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.step += 1
        acc = (logits.detach().argmax(1) == y).float().mean()
        return {"loss": loss.detach(), "accuracy": acc}

    def distributed_module(self) -> torch.nn.Module:
        return self.net

    @torch.no_grad()
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(self.to_input(x[i:i + EVAL_CHUNK])) for i in range(0, len(x), EVAL_CHUNK)])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        switched = self._eval_mode()
        try:
            lt = self._logits(self._test_eval)
            lr_ = self._logits(self._train_eval)
        finally:
            if switched:
                self.model.train()
        yt, yr = self._test_eval_y, self._train_eval_y
        pred = lt.argmax(1)
        k = self.n_outputs
        conf = torch.bincount(yt * k + pred, minlength=k * k)
        vals = torch.stack([(pred == yt).float().mean(), F.cross_entropy(lt, yt),
                            (lr_.argmax(1) == yr).float().mean(), F.cross_entropy(lr_, yr)]).cpu().tolist()
        self._confusion = conf.reshape(k, k).cpu().numpy()
        self._eval_pred = pred.cpu().numpy()
        self.eval_version += 1
        return {"heldout_accuracy": vals[0], "heldout_loss": vals[1],
                "train_accuracy": vals[2], "train_loss": vals[3]}

    def layer_names(self) -> list[str]:
        return [f"{layer.type} #{i}" for i, layer in enumerate(self.spec.layers, start=1)]

    def _eval_mode(self) -> bool:
        """Switch to eval mode if any layer behaves differently in training (Dropout); returns whether it did."""
        if self._has_dropout:
            self.model.eval()
        return self._has_dropout

    def feature_maps(self, image: torch.Tensor, unit: Sequence[int] | None = None
                     ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Every layer of ``self.net``'s output and input for one input (C, H, W) (1-based layer numbers; a
        final Softmax is not run: ``self.net`` stops at the logits), the logits, and --
        when ``unit`` = (layer, channel, y, x) is given -- that unit's effective receptive field
        |d unit / d input| (H, W) from the same forward pass. Runs in eval mode (no dropout).

        The layers are run one by one here (as ``LayerStack.forward`` runs them), not through forward hooks:
        thirteen hooks registered and removed for each snapshot, and each layer's call through the hooked
        path, were a tenth of LeNet-5's snapshot. Only the layers up to the unit's are recorded for its
        gradient."""
        outputs: dict[int, torch.Tensor] = {}
        inputs: dict[int, torch.Tensor] = {}
        stack = self.net
        layers = list(stack.layers)
        switched = self._eval_mode()
        inp = image.detach().unsqueeze(0).clone().requires_grad_(unit is not None)
        saved = {0: inp} if 0 in stack.keep else {}
        h = inp

        def run(first: int, last: int) -> None:
            nonlocal h
            for i in range(first, last + 1):
                layer = layers[i - 1]
                inputs[i] = h
                h = layer(h, saved[layer.source]) if isinstance(layer, Concat) else layer(h)
                outputs[i] = h
                if i in stack.keep:
                    saved[i] = h

        erf = None
        try:
            through = 0 if unit is None else min(int(unit[0]), len(layers))
            with torch.enable_grad():
                run(1, through)  # (nothing when no unit is selected)
            with torch.no_grad():
                run(through + 1, len(layers))
            if unit is not None:
                layer, ch, y, x = unit
                (grad,) = torch.autograd.grad(outputs[layer][0, ch, y, x], inp)
                erf = grad[0].abs().sum(0)
        finally:
            if switched:
                self.model.train()
        return ({k: v.detach() for k, v in outputs.items()}, {k: v.detach() for k, v in inputs.items()},
                h[0].detach(), erf)

    def snapshot(self) -> dict[str, Any]:
        outputs, inputs, logits, erf = self.feature_maps(self.probe, self.unit)
        with torch.no_grad():
            return self._snapshot_arrays(outputs, inputs, logits, erf)

    def _kept(self, key: str, version: Any, make: Callable[[], Any]) -> Any:
        """What ``make`` gives, made again only when ``version`` changes: ints (or a tuple of them) compared by
        value, anything else (a tensor, a module, an array) by identity.

        A snapshot's parts that change only with the run (names, geometry), the gallery, the probe or an
        evaluation (the confusion matrix, the misclassified digits) are the same objects from one
        snapshot to the next until they change: copying them again was a tenth of LeNet-5's snapshot.
        Arrays kept are made read-only, so no reader can change what later snapshots share."""
        got = self._snapshot_parts.get(key)
        if got is not None and (got[0] is version or (type(version) in (int, tuple) and got[0] == version)):
            return got[1]
        value = make()

        def read_only(v: Any) -> None:
            if isinstance(v, np.ndarray):
                v.flags.writeable = False
            elif isinstance(v, dict):
                for item in v.values():
                    read_only(item)

        read_only(value)
        self._snapshot_parts[key] = (version, value)
        return value

    def _run_parts(self) -> dict[str, Any]:
        """The snapshot's parts fixed by the network (made once a run)."""
        names = self.layer_names()
        fm_idx = [g.index for g in self.geometry]
        convs = [(i, m) for i, m in enumerate(self.model.layers, start=1) if isinstance(m, torch.nn.Conv2d)]
        lcn_layers = [i for i, layer in enumerate(self.spec.layers, start=1) if layer.type == "LocalContrastNorm"]
        parts: dict[str, Any] = {
            "input_shape": self.input_shape,
            "class_names": list(self.class_names),
            "feature_layers": [names[i - 1] for i in fm_idx],
            "feature_index": np.asarray(fm_idx, dtype=np.int64),
            "feature_channels": np.asarray([g.shape[0] for g in self.geometry], dtype=np.int64),
            "rf_size": np.asarray([g.size for g in self.geometry], dtype=np.int64),
            "rf_jump": np.asarray([g.jump for g in self.geometry], dtype=np.int64),
            "rf_offset": np.asarray([g.offset for g in self.geometry], dtype=np.int64),
        }
        if convs:
            parts["filters_layer"] = names[convs[0][0] - 1]
            parts["deep_filters_layers"] = [names[i - 1] for i, _ in convs[1:]]
        if lcn_layers:
            i = lcn_layers[0]
            m = self.model.layers[i - 1]
            parts["lcn_note"] = (f"{names[i - 1]} (N = {m.size}x{m.size}, ε = {m.eps:g}): its input (the maps of "
                                 f"{names[i - 2]}) and its output, first {{n}} maps")
        elif convs:
            parts["lcn_note"] = (f"This network has no LCN layer: the formula (N = {LCN_DEMO_SIZE}x{LCN_DEMO_SIZE}, "
                                 f"ε = {LCN_DEMO_EPS:g}) applied to the maps of {names[convs[0][0] - 1]} to show what it does")
        return {"parts": parts, "fm_idx": fm_idx, "convs": convs, "lcn_layer": lcn_layers[0] if lcn_layers else None}

    def _eval_parts(self) -> dict[str, Any]:
        """The snapshot's parts that change with an evaluation: the confusion matrix and the misclassified."""
        parts: dict[str, Any] = {"confusion": self._confusion.copy()}
        if self._eval_pred is not None:
            yt = np.asarray(self.dataset.test_y[:len(self._eval_pred)], dtype=np.int64)
            wrong = np.flatnonzero(self._eval_pred != yt)[:self.config.n_misclassified]
            parts["misclassified"] = self._test_np[wrong].copy()
            parts["misclassified_true"] = yt[wrong].copy()
            parts["misclassified_pred"] = self._eval_pred[wrong].astype(np.int64)
            parts["heldout_evaluated"] = int(len(yt))
        return parts

    def _snapshot_arrays(self, outputs, inputs, logits, erf) -> dict[str, Any]:
        cfg = self.config

        def cpu(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy().copy()

        run = self._kept("run", self.model, self._run_parts)
        fm_idx, convs = run["fm_idx"], run["convs"]
        out: dict[str, Any] = dict(run["parts"])
        out.update({
            "probe": self._kept("probe", self.probe, lambda: cpu(self.probe)),
            "probe_index": -1 if self.probe_index is None else int(self.probe_index),
            "probe_label": -1 if self.probe_label is None else int(self.probe_label),
            "probabilities": cpu(torch.softmax(logits.float(), 0)),
            "feature_maps": [cpu(outputs[i][0, :cfg.max_channels]) for i in fm_idx],
            "gallery_version": int(self.gallery_version),
            "eval_version": int(self.eval_version),
        })
        # (the gallery's indices are picked again when the data is loaded again, also on a device move)
        out.update(self._kept("gallery", self.gallery_indices, lambda: {
            "gallery": self._test_np[self.gallery_indices].copy(),
            "gallery_labels": np.asarray(self.dataset.test_y, dtype=np.int64)[self.gallery_indices].copy()}))
        out.update(self._kept("eval", (self.eval_version, cfg.n_misclassified), self._eval_parts))
        if convs:
            out["filters"] = cpu(convs[0][1].weight[:MAX_FILTERS])
            out["deep_filters"] = [cpu(m.weight[:MAX_GRID, :MAX_GRID]) for _, m in convs[1:]]
        if self.unit is not None:
            layer, ch, y, x = self.unit
            g = self._image_geometry(layer)
            assert g is not None, "select_unit keeps only units of layers with a receptive field"
            out["unit"] = np.asarray(self.unit, dtype=np.int64)
            out["unit_layer"] = g.name
            out["rf_box"] = np.asarray(rf_box(g, y, x, self.input_shape[1:]), dtype=np.int64)
            out["erf"] = cpu(erf)
        i = run["lcn_layer"]
        if i is not None:
            out["lcn_before"] = cpu(inputs[i][0, :4])
            out["lcn_after"] = cpu(outputs[i][0, :4])
            out["lcn_note"] = out["lcn_note"].format(n=out["lcn_before"].shape[0])
        elif convs:
            # the first maps alone, contiguous: the pooling's windows over a slice of channels-last maps are
            # a third slower
            before = outputs[convs[0][0]][:, :4].contiguous()
            out["lcn_before"] = cpu(before[0])
            out["lcn_after"] = cpu(lcn(before)[0])
        return out

    def _moved(self, device: torch.device, seed: int) -> None:
        self.probe = self.probe.to(device)

    def _extra_state(self) -> dict[str, torch.Tensor]:
        """The probe the views show (a gallery entry, or what the user drew) and the chosen unit travel with
        the session, so a reopened run shows the same feature maps and receptive field."""
        return {"probe.image": self.probe,
                "probe.index": torch.tensor(-1 if self.probe_index is None else int(self.probe_index)),
                "probe.unit": torch.tensor(list(self.unit) if self.unit is not None else [-1, -1, -1, -1])}

    def _after_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the saved probe and unit; a run saved without them (or for another input) keeps the defaults."""
        try:
            index = int(tensors["probe.index"]) if "probe.index" in tensors else None
            if index is not None and index >= 0:
                self.set_probe(index=index)
            elif "probe.image" in tensors:
                self.set_probe(image=tensors["probe.image"].float().cpu().numpy())
            unit = tensors.get("probe.unit")
            if unit is not None and int(unit[0]) >= 0:
                self.select_unit(unit.tolist())
        except (ValueError, TypeError):
            pass

    def describe(self) -> str:
        ds, cfg = self.dataset, self.config
        c, h, w = self.input_shape
        sh, sw = ds.image_shape
        resized = "" if (sh, sw) == (h, w) else f", resized from {sh}x{sw}"
        return (f"CNN {cfg.network_name()} ({len(self.spec.layers)} layers, {self.inference.total_params:,} "
                f"parameters, input {c}x{h}x{w}) on {ds.name} ({ds.train_x.shape[0]} train / "
                f"{ds.test_x.shape[0]} held-out{resized})")


def config_from_spec(spec, base: CNNConfig | None = None) -> CNNConfig:
    """A CNN configuration from a builder spec (family ``cnn``): the spec is stored as a dict (a preset by
    name when it equals the preset); ``spec.hparams`` lr, momentum and batch_size override ``base``'s.
    Raises ValueError with a message for the user when the network is not a CNN classifier."""
    from explorer.core.spec.network import PRESETS, SpecError, spec_to_dict, validate

    base = dataclasses.replace(base) if base is not None else CNNConfig()
    try:
        inf = validate(spec)
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    check_cnn_spec(spec, inf)
    d = spec_to_dict(spec)
    if spec.name in PRESETS and spec_to_dict(PRESETS[spec.name]()) == d:
        cfg = dataclasses.replace(base, preset=spec.name, spec=None)
    else:
        cfg = dataclasses.replace(base, spec=d)
    hp = spec.hparams or {}
    overrides = {k: hp[k] for k in ("lr", "momentum", "batch_size") if k in hp}
    cfg = dataclasses.replace(cfg, **overrides)
    cfg.validate()
    return cfg
