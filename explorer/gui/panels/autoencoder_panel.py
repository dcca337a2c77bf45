"""The autoencoder panel: watch an autoencoder (or a denoising one) learn to reconstruct, live.

Views: the clean / corrupted / reconstructed triptych for fixed held-out probes, the encoder
filters (rows of W), the hidden code as a heatmap, the loss curves (training per step, training
and held-out on clean input, held-out on corrupted input), and, when the code has two units,
a scatter of held-out codes coloured by their label. The noise type and level act at once on
the running training.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.autoencoder.trainer import NEEDS_RESET, NOISE_KINDS, AutoencoderConfig
from explorer.gui.panels.base import DockSpec, LivePanel, settings_scroll
from explorer.gui.widgets.hover import fmt
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import CurveView, HeatmapView, MosaicView, ScatterView

MAX_FILTERS = 100
NOISE_LABELS = {"none": "none (plain autoencoder)", "gaussian": "gaussian: x + level·N(0,1)",
                "masking": "masking: zero a fraction", "salt_pepper": "salt and pepper"}


CODES_MIN_PX = 110  # the hidden-code heatmap's least height with its axis (at 1366x768 its map was 30 px)

class AutoencoderSettings(SettingsForm):
    def __init__(self, config: AutoencoderConfig, parent=None):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName("autoencoderSettings")
        form = self.form
        self.add_data_rows()

        self.section("Model")
        self.hidden = self.int_row("Hidden units", 1, 4096)
        self.hidden.setToolTip("Code size. 2 units show the code space as a scatter plot")
        self.tied = QtWidgets.QCheckBox("Tied weights (W' = Wᵀ)")
        form.addRow("", self.tied)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)

        self.section("Denoising (applies live)")
        self.noise = QtWidgets.QComboBox()
        self.noise.addItems(list(NOISE_KINDS))
        for i, kind in enumerate(NOISE_KINDS):
            self.noise.setItemData(i, NOISE_LABELS.get(kind, kind), QtCore.Qt.ItemDataRole.ToolTipRole)
        form.addRow("Noise", self.noise)
        level_row = QtWidgets.QHBoxLayout()
        self.noise_level = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.noise_level.setRange(0, 100)
        self.noise_level.setToolTip("Gaussian: standard deviation; masking / salt and pepper: the fraction of pixels")
        self.noise_value = QtWidgets.QLabel("0.30")
        self.noise_value.setMinimumWidth(34)
        self.noise_level.valueChanged.connect(lambda v: self.noise_value.setText(f"{v / 100:.2f}"))
        level_row.addWidget(self.noise_level, 1)
        level_row.addWidget(self.noise_value)
        form.addRow("Noise level", level_row)

        self.section("Training (applies live)")
        self.lr = self.float_row("Learning rate", 0.0001, 10.0, decimals=4, step=0.01)
        self.momentum = self.float_row("Momentum", 0.0, 0.99, step=0.1)
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.add_reset_rows()
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"dataset": self.dataset, "upscale": self.upscale, "hidden": self.hidden, "tied": self.tied,
                "seed": self.seed, "noise": self.noise, "noise_level": self.noise_level, "lr": self.lr,
                "momentum": self.momentum, "batch_size": self.batch_size}

    def set_config(self, config) -> None:
        super().set_config(config)
        self.noise_value.setText(f"{float(config.noise_level):.2f}")

    def connect_editors(self) -> None:
        super().connect_editors()
        # the slider works in hundredths; the engine wants the level itself
        self.noise_level.valueChanged.disconnect()
        self.noise_level.valueChanged.connect(lambda v: self.noise_value.setText(f"{v / 100:.2f}"))
        self.noise_level.valueChanged.connect(lambda v: self._changed("noise_level", v / 100))


class AutoencoderViews:
    """The autoencoder's model views: clean / corrupted / reconstructed rows, the encoder filters, the code.

    One class for every place an autoencoder is watched: the autoencoder panel, and the deep network panel
    while a layer is pretrained as an autoencoder (inputs are then the codes of the layer below, on a grid,
    and there is no corruption: the rows are x and x'). ``show`` reads the autoencoder trainer's snapshot
    keys, optionally under a prefix (``stage_``).
    """

    def __init__(self) -> None:
        self._a: dict = {}        # the snapshot shown, for the readouts under the mouse
        self._prefix = ""
        self.triptych = MosaicView(
            "Clean, corrupted, reconstructed",
            "Rows: held-out inputs <b>x</b>; corrupted <b>x~</b> = x + noise (the input the encoder sees); "
            "reconstruction <b>x'</b> = σ(W'h + d) with h = σ(W x~ + b). The loss compares x' with the "
            "<i>clean</i> x.")
        self.filters = MosaicView(
            "Encoder filters: rows of W",
            "Each tile is one hidden unit's weights (red +, blue −, scaled per tile): what makes h<sub>j</sub> fire.",
            levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        self.codes = HeatmapView(
            "Hidden code h = σ(W x + b)", "One row per held-out example, one column per hidden unit.",
            xlabel="hidden unit j", ylabel="example", levels=(0.0, 1.0), colormap="viridis")
        self.filters.set_hover_text(self.filter_text)
        self.triptych.set_hover_text(self.triptych_text)
        self.codes.set_hover_text(self.code_text)

    # -- readouts under the mouse: the lecture's equations with the numbers of the snapshot shown -------------
    def filter_text(self, info: dict) -> str | None:
        if info.get("tile") is None:
            return None
        j, i = int(info["tile"]), int(info["pixel"])
        return (f"hidden unit <b>j = {j}</b>, input pixel <b>i = {i}</b> (row {info['row']}, col {info['col']})<br>"
                f"encoder weight W<sub>ji</sub> = <b>{fmt(info['value'])}</b><br>"
                f"h<sub>j</sub> = σ(Σ<sub>i</sub> W<sub>ji</sub> x&#771;<sub>i</sub> + b<sub>j</sub>)")

    def triptych_text(self, info: dict) -> str | None:
        """Pixel i of example m: x, the corrupted x~ and the reconstruction x', and its term of the loss."""
        if info.get("tile") is None or "row_label" not in info:
            return None
        p = self._prefix
        clean, recon = self._a.get(p + "probe_clean"), self._a.get(p + "probe_recon")
        m, i, label = int(info["example"]), int(info["pixel"]), info["row_label"]
        if clean is None or recon is None or m >= len(clean):
            return None
        x, xr = float(clean[m, i]), float(recon[m, i])
        head = f"example <b>{m}</b>, pixel <b>i = {i}</b> (row {info['row']}, col {info['col']})<br>"
        loss = float(np.sum((clean[m].astype(np.float64) - recon[m]) ** 2))
        term = (f"(x<sub>i</sub> − x'<sub>i</sub>)² = ({fmt(x)} − {fmt(xr)})² = <b>{fmt((x - xr) ** 2)}</b><br>"
                f"of this example's loss Σ<sub>i</sub> (x<sub>i</sub> − x'<sub>i</sub>)² = {fmt(loss)}")
        if label == "x~":
            return head + (f"corrupted input x&#771;<sub>i</sub> = <b>{fmt(info['value'])}</b> "
                           f"(clean x<sub>i</sub> = {fmt(x)})")
        if label == "x'":
            return head + f"x'<sub>i</sub> = σ(W'h + d)<sub>i</sub> = <b>{fmt(xr)}</b> vs x<sub>i</sub> = {fmt(x)}<br>" + term
        return head + f"x<sub>i</sub> = <b>{fmt(x)}</b>, reconstructed x'<sub>i</sub> = {fmt(xr)}<br>" + term

    def code_text(self, info: dict) -> str:
        return (f"example <b>{info['y']}</b>, hidden unit <b>j = {info['col']}</b><br>"
                f"h<sub>j</sub> = σ(Σ<sub>i</sub> W<sub>ji</sub> x<sub>i</sub> + b<sub>j</sub>) = <b>{fmt(info['value'])}</b>")

    def show(self, a: dict, shape, prefix: str = "") -> None:
        self._a, self._prefix = a, prefix
        if self.triptych.isVisible():
            if prefix + "probe_noisy" in a:
                self.triptych.set_rows([a[prefix + "probe_clean"], a[prefix + "probe_noisy"], a[prefix + "probe_recon"]],
                                       shape, labels=["x", "x~", "x'"])
            else:
                self.triptych.set_rows([a[prefix + "probe_clean"], a[prefix + "probe_recon"]], shape,
                                       labels=["x", "x'"])
        if self.filters.isVisible():
            filters = a[prefix + "filters"]
            self.filters.set_images(filters[:MAX_FILTERS], shape)
            n = filters.shape[0]
            self.filters.title.setText(f"Encoder filters: rows of W ({min(n, MAX_FILTERS)} of {n} hidden units)")
        if self.codes.isVisible():
            self.codes.set_matrix(a[prefix + "codes"])


class AutoencoderPanel(LivePanel):
    presentation_docks = ("aeFiltersDock", "aeCurvesDock")
    family = "autoencoder"
    title = "Autoencoder / denoising autoencoder"

    def __init__(self, config: AutoencoderConfig, parent=None):
        super().__init__(AutoencoderSettings(config), parent)
        self.views = AutoencoderViews()
        self.triptych, self.filters, self.codes = self.views.triptych, self.views.filters, self.views.codes
        self.codes._body.setMinimumHeight(CODES_MIN_PX)  # (its dock takes the height from the filters' above)
        self.loss_curve = CurveView(
            "Reconstruction loss", "Σ<sub>i</sub> (x<sub>i</sub> − x'<sub>i</sub>)² per example (the lecture's "
            "loss, averaged over examples).", ylabel="squared error per example")
        self.loss_curve.add_series("step", "training (per step, noisy input)", "#5c6b80", width=1, per_step=True)
        self.loss_curve.add_series("train", "training (clean input)", "#4fc3f7", width=2.5, symbol="o")
        self.loss_curve.add_series("heldout", "held-out (clean input)", "#ffb74d", width=2.5, symbol="s")
        self.loss_curve.add_series("heldout_noisy", "held-out (corrupted input)", "#bf616a", width=2, symbol="t")
        self.scatter = ScatterView("Code space (2 hidden units)", "Held-out codes (h₁, h₂), coloured by digit.",
                                   xlabel="h₁", ylabel="h₂")

    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self.triptych)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("aeSettingsDock", "Settings", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec("aeFiltersDock", "Encoder filters", self.filters, A.RightDockWidgetArea),
            DockSpec("aeCodesDock", "Hidden code", self.codes, A.RightDockWidgetArea),
            DockSpec("aeCurvesDock", "Loss curves", self.loss_curve, A.BottomDockWidgetArea),
            DockSpec("aeScatterDock", "Code space", self.scatter, A.BottomDockWidgetArea),
        ]

    def clear_curves(self) -> None:
        self.loss_curve.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        if steps:
            self.loss_curve.append("step", [r["step"] for r in steps], [r.get("loss", np.nan) for r in steps])
        if evals:
            xs = [r["step"] for r in evals]
            for key, name in (("train", "train_loss"), ("heldout", "heldout_loss"),
                              ("heldout_noisy", "heldout_loss_noisy")):
                self.loss_curve.append(key, xs, [r.get(name, np.nan) for r in evals])
        self.loss_curve.redraw()

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        if s.metrics.steps:
            parts.append(f"batch loss {s.metrics.steps[-1].get('loss', float('nan')):.3f}")
        if s.metrics.evals:
            e = s.metrics.evals[-1]
            parts.append(f"held-out loss {e.get('heldout_loss', float('nan')):.3f}")
            parts.append(f"held-out MSE/pixel {e.get('heldout_mse', float('nan')):.4f}")
        cfg = s.trainer.config
        parts.append("no noise" if cfg.noise == "none" else f"{cfg.noise} noise {cfg.noise_level:.2f}")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        shape = a["image_shape"]
        self.views.show(a, shape)
        if self.scatter.isVisible():
            if "scatter_codes" in a:
                self.scatter.set_points(a["scatter_codes"], a.get("scatter_labels"))
            elif self.scatter.updates or not self.scatter.hint.toPlainText():
                self.scatter.updates = 0
                self.scatter.show_hint("Set Hidden units to 2 (and Reset) to see the code space")
