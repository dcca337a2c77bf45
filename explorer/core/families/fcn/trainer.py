"""Fully convolutional networks for semantic segmentation: a label for every pixel.

The lecture: an FCN compresses the image on a down-sampling path (convolution and pooling: context,
"what"), recovers a segmentation map of the input's size on an up-sampling path (deconvolution, i.e.
transposed convolution: "where"), uses no fully connected layer, and often concatenates feature maps
of the down path into the up path (skip connections) to recover the fine spatial detail lost by
pooling.

The network is a builder spec (family "fcn", default preset ``unet-small``). Training minimises the
per-pixel cross-entropy of the logits (the layer before the spec's final Softmax) with Adam (or SGD).
Metrics, over all pixels of an evaluation set:

    pixel accuracy = correctly labelled pixels / all pixels
    IoU_k          = |pred = k and truth = k| / |pred = k or truth = k|      (intersection over union)
    mean IoU       = mean of IoU_k over the classes present in the truth or the prediction

:class:`SkipComparison` trains the same network with and without its skip connections in lockstep,
on the same data, batches and seed, so the sharper boundaries that skips give can be seen side by side.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from explorer.core.data.datasets import Dataset
from explorer.core.data.scenes import SHAPE_CLASSES, load_mask_folder, scenes_dataset
from explorer.core.engine.devices import place_image_model
from explorer.core.engine.settings import Settings, setting
from explorer.core.families.base import MiniBatchTrainer, SideBySideTrainer
from explorer.core.spec.layers import LayerStack
from explorer.core.spec.network import (
    NetworkSpec,
    SpecError,
    infer,
    load_preset,
    spec_from_dict,
    spec_to_dict,
    validate,
)

DATASETS = ("scenes", "folder")
OPTIMIZERS = ("adam", "sgd")
NOT_FULLY_CONVOLUTIONAL = ("Linear", "Flatten", "RBM", "RNN", "LSTM", "SequenceLast")
UP_TYPES = ("ConvTranspose2d", "Upsample")
ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh")
EVAL_CHUNK = 64


# -- metrics ------------------------------------------------------------------------------------------
def confusion_matrix(pred, target, n_classes: int) -> torch.Tensor:
    """(K, K) int64 pixel counts: row = true class, column = predicted class. Accepts arrays or tensors
    of any (equal) shape; labels outside 0..K-1 are not counted."""
    p = torch.as_tensor(pred).reshape(-1).long()
    t = torch.as_tensor(target).reshape(-1).long().to(p.device)
    ok = (t >= 0) & (t < n_classes) & (p >= 0) & (p < n_classes)
    idx = t[ok] * n_classes + p[ok]
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def ious_from_confusion(conf) -> np.ndarray:
    """IoU per class from a confusion matrix: C_kk / (row_k + column_k - C_kk); NaN where the class is
    in neither the truth nor the prediction (it has no union)."""
    c = torch.as_tensor(conf).double().cpu()
    inter = torch.diagonal(c)
    union = c.sum(0) + c.sum(1) - inter
    out = torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))
    return out.numpy()


def iou_per_class(pred, target, n_classes: int) -> np.ndarray:
    """Intersection over union of each class over all the pixels given (NaN for a class absent from both)."""
    return ious_from_confusion(confusion_matrix(pred, target, n_classes))


def mean_iou(ious) -> float:
    """Mean of the defined (non-NaN) IoUs; NaN if none is defined."""
    a = np.asarray(ious, dtype=float)
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def pixel_accuracy(pred, target) -> float:
    """Share of pixels whose predicted class equals the true class."""
    p = torch.as_tensor(pred).reshape(-1)
    t = torch.as_tensor(target).reshape(-1).to(p.device)
    if p.numel() != t.numel():
        raise ValueError(f"prediction has {p.numel()} pixels, the truth {t.numel()}")
    return float((p.long() == t.long()).float().mean()) if p.numel() else float("nan")


def batch_pixel_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of pixels whose true class has the largest logit (0-dim tensor, no synchronisation).

    The same figure as ``(logits.argmax(1) == y).float().mean()`` but for a tie, which counts as right.
    It costs a tenth as much on the CPU: argmax over the class axis of a (16, 4, 32, 32) batch took
    ~3 ms, a tenth of a training step, whereas K - 1 elementwise maxima take 0.2 ms.
    """
    best = logits[:, 0]
    for k in range(1, logits.shape[1]):
        best = torch.maximum(best, logits[:, k])
    return (logits.gather(1, y.unsqueeze(1)).squeeze(1) >= best).float().mean()


def he_init(model: torch.nn.Module) -> None:
    """He (Kaiming) normal weights, std sqrt(2 / fan_in), and zero biases for every (transposed)
    convolution: ReLU networks start with activations that neither vanish nor explode (the lecture's
    "ReLU + He"). PyTorch's default is smaller and lets a narrow FCN settle on "all background"."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            # fan_in of a transposed convolution: its input channels / stride^2 contribute to each output
            fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
            if isinstance(m, torch.nn.ConvTranspose2d):
                fan_in = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3] // max(1, m.stride[0] * m.stride[1])
            with torch.no_grad():
                m.weight.normal_(0.0, math.sqrt(2.0 / max(1, fan_in)))
                if m.bias is not None:
                    m.bias.zero_()


# -- specs --------------------------------------------------------------------------------------------
def without_skips(spec: NetworkSpec) -> NetworkSpec:
    """The same network with its skip connections (Concat layers) removed. Shape inference then gives
    the layer after each removed Concat fewer input channels; later Concat sources are renumbered."""
    out = spec.copy()
    layers, removed = [], []
    for i, layer in enumerate(out.layers, start=1):
        if layer.type == "Concat":
            removed.append(i)
            continue
        layers.append(layer)
    for layer in layers:  # (none is left here, but keep a general renumbering for partial removals)
        if layer.type == "Concat":
            src = int(layer.params.get("source", 1))
            layer.params["source"] = src - sum(1 for r in removed if r < src)
    out.layers = layers
    if removed:
        out.name = f"{spec.name or 'network'} (no skips)"
    return out


def has_skips(spec: NetworkSpec) -> bool:
    return any(layer.type == "Concat" for layer in spec.layers)


def logits_spec(spec: NetworkSpec) -> NetworkSpec:
    """The spec without its final Softmax: its output is the logits the cross-entropy takes."""
    out = spec.copy()
    if out.layers and out.layers[-1].type == "Softmax":
        out.layers = out.layers[:-1]
    return out


def check_fcn_spec(spec: NetworkSpec, dataset: str = "scenes") -> tuple[int, int, int, int]:
    """(channels, height, width, classes) of a network that can segment; ValueError with a message otherwise."""
    inf = validate(spec)  # the builder's own message for an impossible layer (e.g. an odd size at a Concat)
    shape = tuple(spec.input_shape)
    if len(shape) != 3:
        raise ValueError(f"an FCN takes an image (C, H, W), not an input of shape {shape}")
    c, h, w = shape
    if c not in (1, 3):
        raise ValueError(f"the input must have 1 (grey) or 3 (RGB) channels, got {c}")
    for info in inf.layers:
        if info.type in NOT_FULLY_CONVOLUTIONAL:
            raise ValueError(f"{info.type} #{info.index}: an FCN has no fully connected (or flattening) layer; "
                             "use convolutions all the way")
    out = inf.output_shape
    if out is None or len(out) != 3:
        raise ValueError(f"the output must be class maps (classes, H, W), got {out}")
    k, oh, ow = out
    if (oh, ow) != (h, w):
        raise ValueError(f"the output map is {oh}x{ow} but the input is {h}x{w}: a segmentation map must have "
                         "the input's size (check the pooling and up-sampling factors; an odd size cannot be "
                         "halved and doubled back)")
    if k < 2:
        raise ValueError(f"the output needs one channel per class (at least 2), got {k}")
    declared = (spec.hparams or {}).get("classes")
    if declared is not None and declared != k:
        raise ValueError(f"the spec says classes = {declared} but its last layer outputs {k} channels")
    if dataset == "scenes" and k != len(SHAPE_CLASSES):
        raise ValueError(f"generated scenes have {len(SHAPE_CLASSES)} classes ({', '.join(SHAPE_CLASSES)}); "
                         f"this network outputs {k}")
    return c, h, w, k


# -- configuration ------------------------------------------------------------------------------------
@dataclass
class _FCNSettings(Settings):
    """What an FCN run and the with/without-skips comparison share."""

    FALLBACK_DATASET: ClassVar[str] = "scenes"  # always available (the window falls back to it)

    # a builder spec (spec_to_dict); None: the preset below
    spec: dict | None = setting(None, data=True)
    preset: str = setting("unet-small", data=True)
    # "scenes" (generated) or "folder" (image/mask pairs in data_dir)
    dataset: str = setting("scenes", choices=DATASETS, data=True)
    data_dir: str | None = setting(None, data=True)
    n_train: int = setting(1000, kind="int", lo=1, hi=1_000_000, data=True)   # generated scenes for training
    n_test: int = setting(200, kind="int", lo=1, hi=1_000_000, data=True)     # and held out
    noise: float = setting(0.1, kind="number", lo=0, hi=1, label="noise (the scenes' pixel noise std)",
                           data=True)
    texture: bool = setting(True, data=True)                                   # textured (not flat) backgrounds
    max_shapes: int = setting(3, kind="int", lo=1, hi=20, data=True)           # shapes per scene: 1..max_shapes
    optimizer: str = setting("adam", choices=OPTIMIZERS, reset=True)
    lr: float = setting(0.001, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.9, kind="number", lo=0, hi=1, below=True, live=True)  # SGD only
    batch_size: int = setting(16, kind="int", lo=1, hi=65536, live=True)
    seed: int = setting(0, kind="int", lo=0, data=True)
    device: str = "auto"
    download: bool = False            # (no downloads here; kept for a uniform configuration)
    eval_samples: int = setting(200, kind="int", lo=1, hi=1_000_000, reset=True)
    n_probes: int = setting(4, kind="int", lo=1, hi=16, reset=True)          # fixed held-out images in the views
    maps_probe: int = setting(0, kind="int", lo=0, live=True)               # whose up-path maps the snapshot carries
    max_map_channels: int = setting(8, kind="int", lo=1, hi=64, reset=True)

    def network_spec(self) -> NetworkSpec:
        """The network as built in the builder (with its skips)."""
        if self.spec is not None:
            return spec_from_dict(self.spec)
        return load_preset(self.preset)

    def check(self) -> None:
        if self.dataset == "folder" and not self.data_dir:
            raise ValueError("the folder data set needs a folder of image/mask pairs (data_dir)")
        if self.maps_probe >= self.n_probes:
            raise ValueError(f"maps probe must be below the number of probes ({self.n_probes}), got {self.maps_probe}")


@dataclass
class FCNConfig(_FCNSettings):
    """Everything that defines an FCN run; saved as JSON in a run folder."""

    # keep the spec's skip concatenations (False: drop every Concat)
    skips: bool = setting(True, reset=True)

    def training_spec(self) -> NetworkSpec:
        spec = self.network_spec()
        return spec if self.skips else without_skips(spec)

    def check(self) -> None:
        super().check()
        check_fcn_spec(self.training_spec(), self.dataset)


@dataclass
class FCNCompareConfig(_FCNSettings):
    """The with/without-skips comparison: the same settings, both networks."""

    def fcn_config(self, skips: bool) -> FCNConfig:
        return FCNConfig(**{**dataclasses.asdict(self), "skips": skips})

    def check(self) -> None:
        super().check()
        spec = self.network_spec()
        check_fcn_spec(spec, self.dataset)
        if not has_skips(spec):
            raise ValueError("this network has no skip connections (Concat layers): nothing to compare")
        check_fcn_spec(without_skips(spec), self.dataset)


# Changes that take effect after re-initialising; the others apply between two steps.
NEEDS_RESET = FCNConfig.reset_settings()
LIVE = FCNConfig.live_settings()


def load_fcn_data(config: _FCNSettings) -> Dataset:
    """Generated scenes or the folder's pairs, at the network's input size."""
    c, h, w, k = _shape_of(config.network_spec())
    if config.dataset == "scenes":
        return scenes_dataset(config.n_train, config.n_test, h, w, seed=config.seed, noise=config.noise,
                              texture=config.texture, max_shapes=config.max_shapes)
    assert config.data_dir, "check() requires the folder for the folder data set"
    return load_mask_folder(config.data_dir, h, w, k, channels=c, seed=config.seed)


def _shape_of(spec: NetworkSpec) -> tuple[int, int, int, int]:
    c, h, w = spec.input_shape
    out = infer(spec).output_shape
    return int(c), int(h), int(w), int(out[0]) if out else 2


def class_names(dataset: Dataset, n_classes: int) -> list[str]:
    if dataset.name == "scenes":
        return list(SHAPE_CLASSES)
    return [f"class{k}" for k in range(n_classes)]


# -- trainer ------------------------------------------------------------------------------------------
class FCNTrainer(MiniBatchTrainer):
    """Trains a builder FCN on segmentation data. Metrics per step: ``loss`` (mean per-pixel
    cross-entropy of the batch) and ``pixel_accuracy`` (on the batch, before the update)."""

    family = "fcn"
    saved_optimizer_state = "all"  # Adam's moments and step
    model: LayerStack

    def _load_configured_data(self) -> Dataset:
        return load_fcn_data(self.config)

    # -- construction -------------------------------------------------------------------------------
    def _build_model(self) -> None:
        cfg, dev = self.config, self._device
        self.spec = cfg.training_spec()
        self.channels, self.height, self.width, self.n_classes = check_fcn_spec(self.spec, cfg.dataset)
        self.class_names = class_names(self.dataset, self.n_classes)
        self._logit_spec = logits_spec(self.spec)
        from explorer.core.spec.network import build_module
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = build_module(self._logit_spec)
            he_init(self.model)
        place_image_model(self.model, dev)
        self._make_optimizer()
        self._plan_maps()

    def _make_optimizer(self) -> None:
        cfg = self.config
        if cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)

    def _images(self, flat: np.ndarray) -> torch.Tensor:
        n = flat.shape[0]
        if self.channels == 3:
            if flat.shape[1] == self.height * self.width:  # grey scenes into an RGB network: repeat
                x = np.repeat(flat.reshape(n, 1, self.height, self.width), 3, axis=1)
            else:
                x = flat.reshape(n, self.height, self.width, 3).transpose(0, 3, 1, 2)
        else:
            x = flat.reshape(n, 1, self.height, self.width)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self._device)

    def _masks(self, flat: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(flat, dtype=np.int64).reshape(-1, self.height, self.width)
                                ).to(self._device)

    def _load_data(self) -> None:
        cfg, ds = self.config, self.dataset
        self._train_x, self._train_y = self._images(ds.train_x), self._masks(ds.train_y)
        self._test_x, self._test_y = self._images(ds.test_x), self._masks(ds.test_y)
        self._n_train = self._train_x.shape[0]
        n_te = min(cfg.eval_samples, self._test_x.shape[0])
        n_tr = min(cfg.eval_samples, self._n_train)
        self._eval_sets = {"heldout": (self._test_x[:n_te], self._test_y[:n_te]),
                           "train": (self._train_x[:n_tr], self._train_y[:n_tr])}
        n_p = min(cfg.n_probes, self._test_x.shape[0])
        self._probe_x, self._probe_y = self._test_x[:n_p], self._test_y[:n_p]
        self._probe_images = ds.test_x[:n_p].reshape((n_p, self.height, self.width) if ds.test_x.shape[1]
                                                     == self.height * self.width
                                                     else (n_p, self.height, self.width, 3)).copy()
        self._probe_masks = np.asarray(ds.test_y[:n_p], dtype=np.int64).reshape(n_p, self.height, self.width).copy()

    def _plan_maps(self) -> None:
        """Which layers' outputs the snapshot shows as the up-sampling path: the bottleneck (the layer
        just before the first ConvTranspose2d/Upsample), then every up-sampling, Concat and Conv2d (after
        its activation, if one follows) up to, not including, the final classifier convolution."""
        inf = infer(self._logit_spec)
        types = [info.type for info in inf.layers]
        first_up = next((i for i, t in enumerate(types) if t in UP_TYPES), None)
        self._maps: list[tuple[int, str, int]] = []  # (0-based layer index whose output is kept, label, up channels)
        if first_up is None:
            return
        last = len(types) - 1
        if first_up > 0:
            b = first_up - 1
            self._maps.append((b, f"bottleneck #{b + 1} {types[b]}", 0))
        i = first_up
        while i < last:
            t = types[i]
            if t in UP_TYPES or t == "Concat":
                up_c = 0
                if t == "Concat":
                    concat_in = inf.layers[i].input_shape
                    assert concat_in is not None, "the network was built, so its spec is valid"
                    up_c = concat_in[0]
                self._maps.append((i, f"#{i + 1} {t}", up_c))
            elif t == "Conv2d":
                if i + 1 < last and types[i + 1] in ACTIVATIONS:
                    self._maps.append((i + 1, f"#{i + 1} Conv2d+{types[i + 1]}", 0))
                    i += 1
                else:
                    self._maps.append((i, f"#{i + 1} Conv2d", 0))
            i += 1

    # -- engine interface ---------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._next_indices()
        return self._train_x.index_select(0, idx), self._train_y.index_select(0, idx)

    def train_step(self) -> dict[str, torch.Tensor]:
        x, y = self.next_batch()
        with torch.enable_grad():
            logits = self._trained(self.model)(x)
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        acc = batch_pixel_accuracy(logits.detach(), y)
        self.step += 1
        return {"loss": loss.detach(), "pixel_accuracy": acc}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class map (N, H, W) of a batch of images (N, C, H, W)."""
        return torch.cat([self.model(x[i:i + EVAL_CHUNK]).argmax(1) for i in range(0, x.shape[0], EVAL_CHUNK)])

    @torch.no_grad()
    def _measure(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.n_classes
        conf = torch.zeros(k, k, dtype=torch.int64, device=self._device)
        loss = torch.zeros((), device=self._device)
        for i in range(0, x.shape[0], EVAL_CHUNK):
            logits = self.model(x[i:i + EVAL_CHUNK])
            yy = y[i:i + EVAL_CHUNK]
            loss = loss + F.cross_entropy(logits, yy, reduction="sum")
            conf += confusion_matrix(logits.argmax(1), yy, k)
        return conf, loss / max(1, y.numel())

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out and training: ``<set>_loss``, ``<set>_pixel_accuracy``, ``<set>_miou`` and
        ``<set>_iou_<class>`` (IoU over all pixels of up to ``eval_samples`` images)."""
        out: dict[str, float] = {}
        for name, (x, y) in self._eval_sets.items():
            conf, loss = self._measure(x, y)
            conf_cpu = conf.cpu()
            ious = ious_from_confusion(conf_cpu)
            total = int(conf_cpu.sum())
            out[f"{name}_loss"] = float(loss.cpu())
            out[f"{name}_pixel_accuracy"] = float(torch.diagonal(conf_cpu).sum()) / total if total else float("nan")
            out[f"{name}_miou"] = mean_iou(ious)
            for cname, v in zip(self.class_names, ious):
                out[f"{name}_iou_{cname}"] = float(v)
        return out

    @torch.no_grad()
    def _forward_with_maps(self, x: torch.Tensor, row: int) -> tuple[torch.Tensor, list[np.ndarray]]:
        """Logits of ``x`` and, for example ``row``, the planned up-path maps (capped channel counts)."""
        from explorer.core.spec.layers import Concat

        stack = self.model
        keep_at = {i: (label, up_c) for i, label, up_c in self._maps}
        saved: dict[int, torch.Tensor] = {}
        if 0 in stack.keep:
            saved[0] = x
        maps: list[np.ndarray] = []
        cap = self.config.max_map_channels
        h = x
        for i, layer in enumerate(stack.layers, start=1):
            h = layer(h, saved[layer.source]) if isinstance(layer, Concat) else layer(h)
            if i in stack.keep:
                saved[i] = h
            if i - 1 in keep_at:
                fm = h[row]
                up_c = keep_at[i - 1][1]
                if up_c and fm.shape[0] > up_c:  # a Concat: half its own (up-path) maps, half the skip's
                    half = max(1, cap // 2)
                    fm = torch.cat([fm[:min(half, up_c)], fm[up_c:up_c + min(cap - min(half, up_c),
                                                                            fm.shape[0] - up_c)]])
                else:
                    fm = fm[:cap]
                maps.append(fm.to("cpu", torch.float32).numpy().copy())
        return h, maps

    @torch.no_grad()
    def snapshot(self) -> dict[str, Any]:
        """Probe images, truth, prediction, per-class probabilities, errors, and the up path's maps."""
        row = min(self.config.maps_probe, self._probe_x.shape[0] - 1)
        logits, maps = self._forward_with_maps(self._probe_x, row)
        probs = torch.softmax(logits, 1)
        pred = logits.argmax(1)
        pred_np = pred.cpu().numpy().astype(np.int64)
        out: dict[str, Any] = {
            "image_shape": (self.height, self.width),
            "class_names": list(self.class_names),
            "probe_images": self._probe_images.copy(),
            "probe_masks": self._probe_masks.copy(),
            "probe_pred": pred_np,
            "probe_probs": probs.to("cpu", torch.float32).numpy().copy(),
            "probe_error": (pred_np != self._probe_masks).astype(np.uint8),
            "up_maps": maps,
            "up_names": [label for _, label, _ in self._maps],
            "maps_probe": int(row),
            "skips": bool(self.config.skips),
        }
        return out

    def _before_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        self._make_optimizer()  # a fresh optimiser: the file's state (Adam's moments and step) replaces it

    def describe(self) -> str:
        ds, cfg = self.dataset, self.config
        inf = infer(self.spec)
        name = self.config.network_spec().name or "FCN"
        skips = "with skip connections" if cfg.skips and has_skips(cfg.network_spec()) else "without skip connections"
        data = ("generated scenes (circles, squares, triangles)" if cfg.dataset == "scenes"
                else f"image/mask pairs from {cfg.data_dir}")
        return (f"FCN {name}, {skips}: {self.channels}x{self.height}x{self.width} image -> {self.n_classes} class "
                f"maps of the same size, {inf.total_params:,} parameters; {data}, "
                f"{ds.train_x.shape[0]} train / {ds.test_x.shape[0]} held-out")


def config_from_spec(spec: NetworkSpec, base: FCNConfig | None = None) -> FCNConfig:
    """An FCN configuration from a builder spec (family ``fcn``): the spec itself is stored; ``lr``,
    ``batch_size`` and ``optimizer`` come from its hparams. ValueError with a message if it cannot segment."""
    base = dataclasses.replace(base) if isinstance(base, FCNConfig) else FCNConfig()
    try:
        validate(spec)
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    if spec.family != "fcn":
        raise ValueError(f"this is a {spec.family} network, not an FCN")
    hp = spec.hparams or {}
    overrides = {k: hp[k] for k in ("lr", "batch_size", "optimizer", "momentum") if k in hp}
    cfg = dataclasses.replace(base, spec=spec_to_dict(spec), preset=spec.name or base.preset, **overrides)
    cfg.validate()
    return cfg


def compare_config_from(config: FCNConfig) -> FCNCompareConfig:
    """The comparison's settings from an FCN run's (same network, data, seed, optimiser)."""
    d = config.to_dict()
    d.pop("skips", None)
    return FCNCompareConfig.from_dict(d)


# -- with and without skips, side by side -----------------------------------------------------------------
RUN_NAMES = ("skips", "noskips")
RUN_LABELS = {"skips": "with skip connections", "noskips": "without skip connections"}


class SkipComparison(SideBySideTrainer[FCNTrainer]):
    """The same FCN with and without its skip connections, trained in lockstep: the same data, the same
    batches in the same order, the same seed. Metrics are prefixed ``skips/`` and ``noskips/``."""

    family = "fcn-compare"

    def _load_configured_data(self) -> Dataset:
        return load_fcn_data(self.config)

    def _make_runs(self) -> dict[str, FCNTrainer]:
        return {name: FCNTrainer(self.config.fcn_config(name == "skips"), dataset=self.dataset)
                for name in RUN_NAMES}

    @property
    def class_names(self) -> list[str]:
        return self.first_run.class_names

    def snapshot(self) -> dict[str, Any]:
        snaps = {name: run.snapshot() for name, run in self.runs.items()}
        first = snaps["skips"]
        out: dict[str, Any] = {k: first[k] for k in ("image_shape", "class_names", "probe_images", "probe_masks")}
        out["runs"] = list(RUN_NAMES)
        for name, snap in snaps.items():
            for key in ("probe_pred", "probe_probs", "probe_error"):
                out[f"{name}/{key}"] = snap[key]
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        for run in self.runs.values():
            run.step, run.epoch = self.step, self.epoch

    def describe(self) -> str:
        run = self.runs["skips"]
        p_with = sum(p.numel() for p in run.model.parameters())
        p_without = sum(p.numel() for p in self.runs["noskips"].model.parameters())
        name = self.config.network_spec().name or "FCN"
        return (f"FCN {name} with ({p_with:,} parameters) and without ({p_without:,}) its skip connections, "
                f"trained side by side on the same {run.dataset.train_x.shape[0]} training images ({run.dataset.name}), "
                f"batches and seed")


__all__ = ["FCNConfig", "FCNCompareConfig", "FCNTrainer", "SkipComparison", "config_from_spec",
           "compare_config_from", "without_skips", "has_skips", "logits_spec", "check_fcn_spec",
           "confusion_matrix", "ious_from_confusion", "iou_per_class", "mean_iou", "pixel_accuracy",
           "NEEDS_RESET", "LIVE", "RUN_NAMES", "RUN_LABELS"]
