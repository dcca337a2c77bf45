"""The FCN panel: a network labels every pixel, and you watch the segmentation sharpen, live.

The lecture's FCN: a down-sampling path (convolution and pooling) captures what is in the image,
an up-sampling path (transposed convolution, "deconvolution") recovers where, with no fully
connected layer, and skip concatenations carry the fine detail from the down path to the up path.
Views: fixed held-out probe images with the predicted class map blended over them (opacity slider,
true outline), the true map and the error map; the per-class probability maps; the feature maps of
the up-sampling path; per-class IoU and pixel-accuracy curves (training and held-out). One click
opens the same network with and without its skip connections side by side (:class:`FCNComparePanel`).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.fcn.trainer import (
    DATASETS,
    NEEDS_RESET,
    OPTIMIZERS,
    RUN_LABELS,
    RUN_NAMES,
    FCNCompareConfig,
    FCNConfig,
    compare_config_from,
)
from explorer.gui.panels.base import DockSpec, LivePanel, settings_scroll
from explorer.gui.widgets.segmentation import CLASS_PALETTE, SegmentationView, feature_rows
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import CurveView, MosaicView

DATA_HELP = {"scenes": "generated scenes: circles, squares and triangles over a noisy, textured background",
             "folder": "your own images/NAME.png + masks/NAME.png pairs (or NAME.png + NAME_mask.png)"}
RUN_COLOURS = {"skips": "#4fc3f7", "noskips": "#ff8a65"}


def _last(rows: list[dict], key: str) -> float | None:
    for r in reversed(rows):
        if key in r:
            return r[key]
    return None


class FCNSettings(SettingsForm):
    """Data (scenes or a mask folder), the network's skip connections, the optimiser, live rates."""

    sigFolderChosen = QtCore.Signal(str)

    def __init__(self, config, parent=None, *, with_skips_box: bool = True):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName("fcnSettings")
        form = self.form
        self.section("Data")
        self.dataset = QtWidgets.QComboBox()
        self.dataset.addItems(list(DATASETS))
        for i, name in enumerate(DATASETS):
            self.dataset.setItemData(i, DATA_HELP[name], QtCore.Qt.ItemDataRole.ToolTipRole)
        form.addRow("Data", self.dataset)
        folder_row = QtWidgets.QHBoxLayout()
        self.data_dir = QtWidgets.QLabel("(none)")
        self.data_dir.setObjectName("dataDir")
        self.data_dir.setMinimumWidth(60)
        self.choose_dir = QtWidgets.QPushButton("…")
        self.choose_dir.setToolTip("Choose a folder of image/mask pairs:\nimages/NAME.png + masks/NAME.png, "
                                   "or NAME.png + NAME_mask.png\n(mask values = class numbers 0, 1, 2, ...)")
        self.choose_dir.setMaximumWidth(36)
        self.choose_dir.clicked.connect(self._choose_folder)
        folder_row.addWidget(self.data_dir, 1)
        folder_row.addWidget(self.choose_dir)
        form.addRow("Mask folder", folder_row)
        self.n_train = self.int_row("Training scenes", 1, 100000)
        self.n_test = self.int_row("Held-out scenes", 1, 100000)
        self.max_shapes = self.int_row("Shapes (max)", 1, 20)
        self.noise = self.float_row("Noise (std)", 0.0, 1.0, decimals=2, step=0.05)
        self.texture = QtWidgets.QCheckBox("Textured background")
        self.texture.setToolTip("Stripes and blobs behind the shapes instead of a flat grey")
        form.addRow("", self.texture)

        self.section("Network")
        self.network = QtWidgets.QLabel("")
        self.network.setObjectName("fcnNetwork")
        self.network.setWordWrap(True)
        self.network.setToolTip("The network comes from the architecture builder (Ctrl+B): "
                                "load unet-small or build your own, then press Train")
        form.addRow("Network", self.network)
        self.skips = QtWidgets.QCheckBox("Skip connections")
        self.skips.setToolTip("Off: the same network without its Concat layers; the following convolutions "
                              "get fewer input channels")
        if with_skips_box:
            form.addRow("", self.skips)
        self.optimizer = QtWidgets.QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        form.addRow("Optimizer", self.optimizer)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)

        self.section("Training (applies live)")
        self.lr = self.float_row("Learning rate", 0.00001, 10.0, decimals=5, step=0.0005)
        self.momentum = self.float_row("Momentum (SGD)", 0.0, 0.99, step=0.1)
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.add_reset_rows()
        self._with_skips_box = with_skips_box
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        w = {"dataset": self.dataset, "n_train": self.n_train, "n_test": self.n_test, "max_shapes": self.max_shapes,
             "noise": self.noise, "texture": self.texture, "optimizer": self.optimizer, "seed": self.seed,
             "lr": self.lr, "momentum": self.momentum, "batch_size": self.batch_size}
        if getattr(self, "_with_skips_box", True):
            w["skips"] = self.skips
        return w

    def set_config(self, config) -> None:
        super().set_config(config)
        try:
            spec = config.network_spec()
            shape = "x".join(str(s) for s in spec.input_shape)
            self.network.setText(f"{spec.name or 'custom'}, {shape}")
        except ValueError as exc:
            self.network.setText(f"invalid: {exc}")
        self._update_data_rows(config.dataset)

    def set_data_dir(self, path: str | None) -> None:
        self.data_dir.setText(path or "(none)")
        self.data_dir.setToolTip(path or "images/NAME.png + masks/NAME.png, or NAME.png + NAME_mask.png")

    def _update_data_rows(self, dataset: str) -> None:
        scenes = dataset == "scenes"
        for w in (self.n_train, self.n_test, self.max_shapes, self.noise, self.texture):
            w.setEnabled(scenes)

    def _changed(self, key, value) -> None:
        if key == "dataset":
            self._update_data_rows(value)
        super()._changed(key, value)

    def _choose_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder with image/mask pairs")
        if path:
            self.sigFolderChosen.emit(path)


class FCNPanel(LivePanel):
    presentation_docks = ("fcnIouDock",)  # (the centre shows the class map; one curve, tall, beside it)
    family = "fcn"
    title = "FCN: segmentation (every pixel labelled)"

    def __init__(self, config: FCNConfig, parent=None):
        super().__init__(FCNSettings(config), parent)
        self.compare_btn = QtWidgets.QPushButton("Skips vs no skips, side by side ▸")
        self.compare_btn.setObjectName("fcnCompareButton")
        self.compare_btn.setToolTip("Train this network with and without its Concat layers side by side, "
                                    "on the same data, batches and seed")
        self.compare_btn.clicked.connect(self.open_comparison)
        self.settings.sigFolderChosen.connect(self.use_data_folder)
        self.settings.form.addRow(self.compare_btn)
        self.overlay = SegmentationView(
            "Held-out probes: predicted classes over the image",
            "Each pixel gets the class with the largest output, argmax<sub>k</sub> p(k | pixel): the FCN's "
            "segmentation map has the input's size. <b>prediction</b>: that map blended over the image (white: "
            "true outline); <b>truth</b>: the true mask; <b>errors</b>: wrongly labelled pixels in red.")
        self.probs = MosaicView(
            "Per-class probability maps",
            "p(k | pixel) = softmax over the K output maps, one row per class (dark 0, bright 1). The boundaries "
            "are where the classes compete.", levels=(0.0, 1.0), colormap="inferno")
        self.maps = MosaicView(
            "Up-sampling path: feature maps",
            "From the coarse bottleneck (context: <i>what</i>) up through each transposed convolution "
            "(deconvolution) to the input's size (<i>where</i>). A Concat row shows its own maps, then the skip's "
            "copy of the down path (fine detail). Each tile scaled on its own.",
            levels=(0.0, 1.0), colormap="viridis")
        self.maps_probe = QtWidgets.QSpinBox()
        self.maps_probe.setObjectName("mapsProbe")
        self.maps_probe.setRange(1, 16)
        self.maps_probe.setPrefix("probe ")
        self.maps_probe.setToolTip("Whose feature maps to show (probe images numbered from the left)")
        self.maps_probe.valueChanged.connect(self._on_maps_probe)
        self._maps_box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(self._maps_box)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("  Feature maps of"))
        row.addWidget(self.maps_probe)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.maps, 1)
        self.iou = CurveView(
            "Intersection over union per class",
            "IoU<sub>k</sub> = |pred = k ∧ truth = k| / |pred = k ∨ truth = k| over all held-out pixels (thin: "
            "per class); mean IoU over the classes (thick: held-out, dashed: training). A class absent from both the "
            "prediction and the truth has no IoU (0/0) and is left out of the mean.", ylabel="IoU")
        self.accuracy = CurveView(
            "Pixel accuracy", "Share of pixels labelled correctly: per step on the training batch, and on training "
            "and held-out images. High even for an all-background guess: watch the IoU.",
            ylabel="pixel accuracy (%)")
        self.accuracy.add_series("step", "training batch (per step)", "#5c6b80", width=1, per_step=True)
        self.accuracy.add_series("train", "training", "#4fc3f7", width=2.5, symbol="o")
        self.accuracy.add_series("heldout", "held-out", "#ffb74d", width=2.5, symbol="s")
        self._classes: list[str] = []

    # -- layout -------------------------------------------------------------------------------------
    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self.overlay)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("fcnSettingsDock", "Settings", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec("fcnProbsDock", "Class probabilities", self.probs, A.RightDockWidgetArea),
            DockSpec("fcnMapsDock", "Up-sampling path", self._maps_box, A.RightDockWidgetArea, tab_with="fcnProbsDock"),
            DockSpec("fcnIouDock", "IoU curves", self.iou, A.BottomDockWidgetArea),
            DockSpec("fcnAccuracyDock", "Pixel accuracy", self.accuracy, A.BottomDockWidgetArea),
        ]

    def _ensure_classes(self, names: list[str]) -> None:
        if names == self._classes:
            return
        self._classes = list(names)
        self.iou.plot.clear()
        self.iou.legend.clear()
        self.iou._items.clear()
        self.iou._data.clear()
        for k, name in enumerate(names):
            self.iou.add_series(f"c{k}", name, CLASS_PALETTE[k % len(CLASS_PALETTE)], width=1.5)
        self.iou.add_series("miou", "mean IoU, held-out", "#ffffff", width=3, symbol="o")
        self.iou.add_series("miou_train", "mean IoU, training", "#ffffff", width=2,
                            style=QtCore.Qt.PenStyle.DashLine)

    def attach(self, session: Session) -> None:
        self._ensure_classes(list(session.trainer.class_names))
        self.maps_probe.blockSignals(True)
        self.maps_probe.setRange(1, max(1, session.trainer.config.n_probes))
        self.maps_probe.setValue(session.trainer.config.maps_probe + 1)
        self.maps_probe.blockSignals(False)
        super().attach(session)

    def refresh(self) -> bool:
        s = self.session
        if s is not None and list(getattr(s.trainer, "class_names", [])) != self._classes \
                and s.run_id != self._last_run:
            self._ensure_classes(list(s.trainer.class_names))  # a reset onto other data: other classes
        return super().refresh()

    # -- actions ------------------------------------------------------------------------------------
    def use_data_folder(self, path: str) -> None:
        """Train on the image/mask pairs in ``path`` now (File > Open data folder, or the … button)."""
        if self.session is None:
            return
        self.settings.set_data_dir(path)
        self.session.set_hparams(dataset="folder", data_dir=path)
        self.session.reset()

    def _on_maps_probe(self, value: int) -> None:
        if self.session is not None:
            self.session.set_hparams(maps_probe=int(value) - 1)
            self.session.request_snapshot()
            self.go_live()  # what the user just asked for shows in the live views

    def open_comparison(self) -> None:
        """Open the side-by-side comparison on this run's network, data and seed (one click): the window
        starts it on ``sigNewSessionRequested`` (and says so if it cannot)."""
        config = (compare_config_from(self.session.trainer.config) if self.session is not None
                  else FCNCompareConfig())
        self.sigNewSessionRequested.emit(config)

    # -- data ---------------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.iou.clear_data()
        self.accuracy.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        if steps:
            rows = [r for r in steps if "pixel_accuracy" in r]
            self.accuracy.append("step", [r["step"] for r in rows], [100 * r["pixel_accuracy"] for r in rows])
        if evals:
            xs = [r["step"] for r in evals]
            self.accuracy.append("train", xs, [100 * r.get("train_pixel_accuracy", np.nan) for r in evals])
            self.accuracy.append("heldout", xs, [100 * r.get("heldout_pixel_accuracy", np.nan) for r in evals])
            for k, name in enumerate(self._classes):
                self.iou.append(f"c{k}", xs, [r.get(f"heldout_iou_{name}", np.nan) for r in evals])
            self.iou.append("miou", xs, [r.get("heldout_miou", np.nan) for r in evals])
            self.iou.append("miou_train", xs, [r.get("train_miou", np.nan) for r in evals])
        self.accuracy.redraw()
        self.iou.redraw()

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        loss = _last(s.metrics.steps, "loss")
        if loss is not None:
            parts.append(f"batch loss {loss:.3f}")
        miou = _last(s.metrics.evals, "heldout_miou")
        if miou is not None:
            parts.append(f"held-out mean IoU {miou:.3f}")
        acc = _last(s.metrics.evals, "heldout_pixel_accuracy")
        if acc is not None:
            parts.append(f"held-out pixel accuracy {acc:.1%}")
        parts.append("skip connections on" if s.trainer.config.skips else "skip connections off")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        names = list(a["class_names"])
        if self.overlay.isVisible():
            self.overlay.set_data(a["probe_images"], a["probe_masks"],
                                  [("image", "image", None), ("prediction", "overlay", a["probe_pred"]),
                                   ("truth", "truth", None), ("errors", "error", a["probe_pred"])], names)
        h, w = a["image_shape"]
        if self.probs.isVisible():
            probs = a["probe_probs"]  # (P, K, H, W): one row per class
            rows = [probs[:, k].reshape(probs.shape[0], -1) for k in range(probs.shape[1])]
            self.probs.set_rows(rows, (h, w), labels=names)
        if self.maps.isVisible() and a["up_maps"]:
            tiles, cols = feature_rows(a["up_maps"], h, w)
            labels = [_short(n) for n in a["up_names"]]
            rows = [tiles[r * cols:(r + 1) * cols] for r in range(len(a["up_maps"]))]
            self.maps.set_rows(rows, (h, w), labels=labels)
            sizes = ", ".join(f"{m.shape[1]}x{m.shape[2]}" for m in a["up_maps"])
            self.maps.title.setText(f"Up-sampling path of probe {a['maps_probe'] + 1}: {sizes}")


def _short(name: str) -> str:
    """Row labels that fit beside a tile: "#9 ConvTranspose2d" -> "ConvT #9"."""
    if name.startswith("bottleneck"):
        return "bottleneck"
    parts = name.split()
    if len(parts) >= 2 and parts[0].startswith("#"):
        kind = parts[1].replace("ConvTranspose2d", "ConvT").replace("Conv2d+ReLU", "Conv+ReLU")
        kind = kind.replace("Conv2d", "Conv").replace("Upsample", "Up")
        return f"{kind} {parts[0]}"
    return name


class FCNComparePanel(LivePanel):
    """With and without skip connections, side by side: the same probes, both predictions, both mIoU curves."""
    presentation_docks = ("fcnCompareMiouDock",)  # (the two class maps in the centre; their mean IoU beside)

    family = "fcn-compare"
    title = "FCN: skip connections or not? Side by side"
    bottom_share = 0.28  # six rows of probes in the centre: the curves below give up some height for them

    def __init__(self, config: FCNCompareConfig, parent=None):
        settings = FCNSettings(config, with_skips_box=False)
        settings.setObjectName("fcnCompareSettings")
        super().__init__(settings, parent)
        self.overlay = SegmentationView(
            "The same probes, both networks",
            "Same network, data, batches and seed; only the skip concatenations differ. Without them the up path "
            "must rebuild the detail from the coarse bottleneck alone: blurrier, rounder boundaries and corners. "
            "White: the true outline; red: wrong pixels.")
        self.miou = CurveView(
            "Mean IoU: with vs without skip connections",
            "Mean over classes of IoU<sub>k</sub> = |pred = k ∧ truth = k| / |pred = k ∨ truth = k| "
            "(solid: held-out, dashed: training); a class absent from both the prediction and the truth (0/0) is "
            "left out of the mean.", ylabel="mean IoU")
        self.accuracy = CurveView("Pixel accuracy (held-out)", "Share of held-out pixels labelled correctly, in %.",
                                  ylabel="pixel accuracy (%)")
        for name in RUN_NAMES:
            colour = RUN_COLOURS[name]
            self.miou.add_series(name, f"{RUN_LABELS[name]}, held-out", colour, width=3, symbol="o")
            self.miou.add_series(f"{name}_train", f"{RUN_LABELS[name]}, training", colour, width=1.5,
                                 style=QtCore.Qt.PenStyle.DashLine)
            self.accuracy.add_series(name, RUN_LABELS[name], colour, width=2.5, symbol="o")

    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self.overlay)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("fcnCompareSettingsDock", "Settings", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec("fcnCompareMiouDock", "Mean IoU, both networks", self.miou, A.BottomDockWidgetArea),
            DockSpec("fcnCompareAccuracyDock", "Pixel accuracy, both networks", self.accuracy,
                     A.BottomDockWidgetArea),
        ]

    def clear_curves(self) -> None:
        self.miou.clear_data()
        self.accuracy.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        if evals:
            xs = [r["step"] for r in evals]
            for name in RUN_NAMES:
                self.miou.append(name, xs, [r.get(f"{name}/heldout_miou", np.nan) for r in evals])
                self.miou.append(f"{name}_train", xs, [r.get(f"{name}/train_miou", np.nan) for r in evals])
                self.accuracy.append(name, xs, [100 * r.get(f"{name}/heldout_pixel_accuracy", np.nan)
                                                for r in evals])
        self.miou.redraw()
        self.accuracy.redraw()

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        for name in RUN_NAMES:
            v = _last(s.metrics.evals, f"{name}/heldout_miou")
            if v is not None and not math.isnan(v):
                parts.append(f"{RUN_LABELS[name]}: held-out mean IoU {v:.3f}")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        if self.overlay.isVisible():
            self.overlay.set_data(
                a["probe_images"], a["probe_masks"],
                [("image", "image", None), ("with skips", "overlay", a["skips/probe_pred"]),
                 ("without", "overlay", a["noskips/probe_pred"]), ("truth", "truth", None),
                 ("errors, with", "error", a["skips/probe_pred"]),
                 ("errors, without", "error", a["noskips/probe_pred"])], list(a["class_names"]))


__all__ = ["FCNPanel", "FCNComparePanel", "FCNSettings"]
