"""The deep network panel: the vanishing gradient made visible, and layerwise pretraining.

A deep sigmoid network trained by backpropagation: the lecture's delta_j = [sum delta_(j+1) W] sigma'(net_j)
shrinks layer by layer, so the first layers hardly learn. The views show it as it happens:
gradient norm ||dloss/dW|| per layer over time (log scale) and as a layer x time heatmap, the
share of saturated units per layer, the distribution of activations per layer, and the stage
pipeline when the network is pretrained layer by layer (RBM or autoencoder) before fine-tuning.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.deep.trainer import INITS, NEEDS_RESET, MLPConfig
from explorer.core.persist.commands import call_trainer
from explorer.gui.panels.autoencoder_panel import AutoencoderViews
from explorer.gui.panels.base import DockSpec, LivePanel, bring_forward, settings_scroll, squeezable
from explorer.gui.panels.rbm_panel import RBMViews
from explorer.gui.widgets.hover import fmt
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import BarView, CurveView, HeatmapView, MosaicView, _caption_label, ordered_colours

_NOT_YET = object()  # no snapshot followed yet (see MLPPanel._follow_stage)
HEATMAP_COLUMNS = 300  # the layer x time heatmap keeps at most this many time columns
INIT_HELP = {
    "random": "sigmoid units, small random weights: the gradient vanishes in the first layers",
    "rbm": "sigmoid units, each hidden layer first trained as an RBM on the codes below (2006's answer)",
    "ae": "sigmoid units, each hidden layer first trained as an autoencoder on the codes below",
    "relu-he": "ReLU units with He initialisation, no pretraining (2014's answer: not always necessary)",
}


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise ValueError(f"hidden layers {text!r}: write sizes separated by commas, like 64,64,64") from None
    if not sizes or any(v < 1 for v in sizes):
        raise ValueError("hidden layers: at least one layer, every size at least 1")
    return sizes


class HiddenLayersSettings(SettingsForm):
    """A settings form with a "hidden layers" row (sizes separated by commas), for deep networks."""

    def add_hidden_layers_row(self) -> None:
        self.hidden_edit = QtWidgets.QLineEdit()
        self.hidden_edit.setToolTip("Hidden layer sizes, input side first, e.g. 64,64,64,64,64,64")
        self.hidden_edit.editingFinished.connect(self._on_hidden_edited)
        self.form.addRow("Hidden layers", self.hidden_edit)

    def set_config(self, config) -> None:
        super().set_config(config)
        self.hidden_edit.setText(",".join(str(v) for v in config.hidden))

    def _on_hidden_edited(self) -> None:
        try:
            sizes = parse_layers(self.hidden_edit.text())
        except ValueError as exc:
            self.pending_label.setText(str(exc))
            return
        self._changed("hidden", sizes)


class MLPSettings(HiddenLayersSettings):
    def __init__(self, config: MLPConfig, parent=None):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName("mlpSettings")
        form = self.form
        self.add_data_rows()
        self.section("Network")
        self.add_hidden_layers_row()
        self.init = QtWidgets.QComboBox()
        self.init.addItems(list(INITS))
        for i, name in enumerate(INITS):
            self.init.setItemData(i, INIT_HELP.get(name, name), QtCore.Qt.ItemDataRole.ToolTipRole)
        form.addRow("Start from", self.init)
        self.pretrain_epochs = self.int_row("Pretrain epochs/layer", 1, 1000)
        self.pretrain_lr = self.float_row("Pretrain learning rate", 0.0001, 10.0, decimals=4)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)
        self.section("Fine-tuning (applies live)")
        self.lr = self.float_row("Learning rate", 0.0001, 10.0, decimals=4, step=0.05)
        self.momentum = self.float_row("Momentum", 0.0, 0.99)
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.stats_every = self.int_row("Statistics every", 1, 1000)
        self.stats_every.setToolTip("Gradient and saturation statistics are recorded every N steps")
        self.add_reset_rows()
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"dataset": self.dataset, "upscale": self.upscale, "init": self.init,
                "pretrain_epochs": self.pretrain_epochs, "pretrain_lr": self.pretrain_lr, "seed": self.seed,
                "lr": self.lr, "momentum": self.momentum, "batch_size": self.batch_size,
                "stats_every": self.stats_every}


class MLPPanel(LivePanel):
    presentation_docks = ("mlpHeatDock", "mlpCurvesDock")
    family = "mlp"
    bottom_share = 0.26  # the gradient heatmap beside the plot needs the height
    right_split = (0.4, 0.24)  # the gradient heatmap, then saturation and the DBN's dreams
    title = "Deep network: vanishing gradient and pretraining"

    def __init__(self, config: MLPConfig, parent=None):
        super().__init__(MLPSettings(config), parent)
        self.grad_curve = CurveView(
            "Gradient norm per layer ‖∂loss/∂W‖ (log scale)",
            "∂loss/∂W<sub>ij</sub> = δ<sub>j</sub> x<sub>i</sub>, δ<sub>j</sub> = [Σ δ<sub>j+1</sub> W<sub>j(j+1)</sub>] "
            "σ'(net<sub>j</sub>): each layer down multiplies the error by the weights W and by σ' ≤ 1/4; with small "
            "weights both shrink it, so the first layers' gradients vanish.",
            ylabel="gradient norm", logy=True)
        self.grad_heat = HeatmapView(
            "Layer × time: log₁₀ gradient norm", "Rows: weight layers (1 = next to the input); columns: time.",
            xlabel="recorded step (oldest → newest)", ylabel="layer", levels=(-6.0, 0.0), colormap="viridis")
        self.saturation = BarView("Saturated units per layer",
                                  "Share of hidden units with σ < 0.05 or σ > 0.95 (σ' ≈ 0); for ReLU, units at 0.",
                                  xlabel="hidden layer", ylabel="share")
        self.act_hist = HeatmapView("Activations per layer", "Histogram of each hidden layer's activations on "
                                    "held-out examples (left: 0, right: 1 for sigmoid).",
                                    xlabel="activation bin", ylabel="hidden layer", levels=(0.0, 1.0),
                                    colormap="inferno")
        self.curves = CurveView("Loss and accuracy", "Pretraining: each stage's reconstruction error (mean squared, "
                                "per unit). Fine-tuning: cross-entropy per step (left axis), accuracy on training and "
                                "held-out data in % (right axis).", ylabel="loss, error")
        self.curves.set_right_axis("accuracy (%)")
        self.curves.add_series("pretrain", "pretraining: reconstruction error of the layer in training (per step)",
                               "#b48ead", width=1, per_step=True)
        self.curves.add_series("loss", "training loss (per step)", "#5c6b80", width=1, per_step=True)
        self.curves.add_series("train_acc", "training accuracy (%)", "#4fc3f7", width=2.5, symbol="o", right=True)
        self.curves.add_series("heldout_acc", "held-out accuracy (%)", "#ffb74d", width=2.5, symbol="s", right=True)
        self.filters = MosaicView("First-layer weights", "Rows of the first weight matrix, scaled per tile.",
                                  levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        self.dbn = MosaicView("Deep belief net dreams",
                              "With Start from = rbm: Gibbs sampling in the top RBM pretrained so far, then down "
                              "through the RBMs below with p(v|h). Stacked RBMs form a generative model.")
        self.pipeline = QtWidgets.QListWidget()
        self.pipeline.setObjectName("stagePipeline")
        self.end_stage_btn = QtWidgets.QPushButton("End this stage and go on")
        self.end_stage_btn.clicked.connect(self.end_stage)
        self._pipeline_widget = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(self._pipeline_widget)
        lay.addWidget(QtWidgets.QLabel("Layerwise pretraining, then fine-tuning"))
        lay.addWidget(self.pipeline, 1)
        lay.addWidget(self.end_stage_btn)
        self.pipeline_caption = _caption_label("Each layer learns P(x) of the codes below it, then all learn "
                                               "P(y|x).")
        lay.addWidget(self.pipeline_caption)
        self._build_stage_views()
        self._grad_history: list[np.ndarray] = []
        self._grad_steps: list[int] = []               # the step of each record in _grad_history
        self._last_grad: tuple | None = None  # the last measured gradient norms (see add_metrics)
        self._heat_columns: list[tuple[int, int, int]] = []  # per heatmap column: first step, last step, records
        self.grad_heat.set_hover_text(self.grad_heat_text)
        self._layers_seen = 0  # the layer count the gradient curves are made (and coloured) for
        self._stages: list[str] = []
        self._stage = -1
        self._shown_kind: object = _NOT_YET  # the stage kind the views last followed: "rbm", "ae" or None
        self._show_gradient_placeholders(pretraining=False)

    def _build_stage_views(self) -> None:
        """The layer being pretrained, watched with the RBM panel's or the autoencoder panel's own views."""
        self.rbm_views = RBMViews()
        self.ae_views = AutoencoderViews()
        self.stage_title = QtWidgets.QLabel("")
        self.stage_title.setObjectName("viewTitle")
        self.stage_title.setWordWrap(True)
        self.stage_stack = QtWidgets.QStackedWidget()
        self.stage_idle = idle = QtWidgets.QLabel("")
        idle.setObjectName("viewPlaceholder")  # looks like the empty views' texts
        idle.setWordWrap(True)
        idle.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.stage_stack.addWidget(idle)
        for views in ((self.rbm_views.recon, self.rbm_views.filters, self.rbm_views.hidden),
                      (self.ae_views.triptych, self.ae_views.filters, self.ae_views.codes)):
            page = QtWidgets.QWidget()
            grid = QtWidgets.QGridLayout(page)
            grid.setContentsMargins(0, 0, 0, 0)
            # the filters, square, take a column's full height; the wide input rows and the codes share the other
            grid.addWidget(views[0], 0, 0)
            grid.addWidget(views[2], 1, 0)
            grid.addWidget(views[1], 0, 1, 2, 1)
            grid.setColumnStretch(0, 3)  # the wide input rows take more of the width than the square filters
            grid.setColumnStretch(1, 2)
            self.stage_stack.addWidget(page)
        self.stage_widget = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(self.stage_widget)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.stage_title)
        lay.addWidget(self.stage_stack, 1)

    def _follow_stage(self, kind: str | None) -> None:
        """Bring the layer in pretraining forward when a pretraining stage starts, and the gradients when
        backpropagation does: the lesson moves on, and the view that shows it follows. Only at a change of
        stage, so a tab the user picks stays picked."""
        if kind == self._shown_kind:
            return
        self._shown_kind = kind
        bring_forward(self.stage_widget if kind else self.grad_curve)
        self._show_gradient_placeholders(pretraining=bool(kind))

    def _show_gradient_placeholders(self, pretraining: bool) -> None:
        """Before the first gradient is measured, the gradient views say when it will be (pretraining
        trains each layer on its own, with no backpropagation through the network)."""
        if self._grad_history:
            return
        text = ("No gradients during pretraining: each layer learns on its own, without backpropagation "
                "through the network. The gradient of every layer appears here when fine-tuning starts."
                if pretraining else
                "Press Play or Step: the gradient norm of each layer, ‖∂L/∂W‖, appears here as "
                "backpropagation trains the network.")
        self.grad_curve.set_placeholder(text)
        self.grad_heat.set_placeholder(text)

    def _show_stage_views(self, a: dict) -> None:
        kind = a.get("stage_kind")
        self._follow_stage(kind)
        if kind is None:
            done = len(self._stages) > 1 and self._stage >= len(self._stages) - 1
            self.stage_title.setText("Pretraining done: the whole network is fine-tuned by backpropagation."
                                     if done else "No pretraining: the network starts from its initial weights.")
            self.stage_idle.setText(
                "Each layer was first trained on its own, on the codes of the layers below; their weights are "
                "now the starting point of backpropagation." if done else
                "Layerwise pretraining shows each layer's RBM or autoencoder here while it trains. "
                "Set Start from = rbm or ae (and Reset) to pretrain.")
            self.stage_stack.setCurrentIndex(0)
            return
        k = int(a["stage_layer"])
        what = "the images x" if k == 1 else f"the codes of layer {k - 1} (frozen), one cell per unit"
        model = "an RBM by CD-1" if kind == "rbm" else "an autoencoder (squared loss)"
        self.stage_title.setText(f"Layer {k}, trained as {model}; its input: {what}")
        self.stage_stack.setCurrentIndex(1 if kind == "rbm" else 2)
        if self.stage_widget.isVisible():
            views = self.rbm_views if kind == "rbm" else self.ae_views
            views.show(a, a["stage_grid"], prefix="stage_")

    def central_widget(self) -> QtWidgets.QWidget:
        # the window's biggest place shows what the lesson is about now: the layer being pretrained while
        # pretraining runs (the gradients are still empty then), the gradients from fine-tuning on
        self.central_tabs = tabs = QtWidgets.QTabWidget()
        tabs.setObjectName("centralTabs")
        tabs.setDocumentMode(True)
        tabs.addTab(self.grad_curve, "Gradient norm per layer")
        tabs.addTab(squeezable(self.stage_widget), "Layer in pretraining")
        tabs.currentChanged.connect(lambda _i: self.redraw_shown())
        return self._central(tabs)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("mlpSettingsDock", "Settings", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec("mlpPipelineDock", "Stages", self._pipeline_widget, A.LeftDockWidgetArea),
            DockSpec("mlpHeatDock", "Gradient heatmap", self.grad_heat, A.RightDockWidgetArea),
            DockSpec("mlpSaturationDock", "Saturation", self.saturation, A.RightDockWidgetArea),
            DockSpec("mlpCurvesDock", "Loss and accuracy", self.curves, A.BottomDockWidgetArea),
            DockSpec("mlpActivationsDock", "Activations", self.act_hist, A.BottomDockWidgetArea),
            DockSpec("mlpFiltersDock", "First layer", self.filters, A.BottomDockWidgetArea),
            DockSpec("mlpDbnDock", "DBN dreams", self.dbn, A.RightDockWidgetArea, tab_with="mlpSaturationDock"),
        ]

    # -- controls ------------------------------------------------------------------------------------
    def end_stage(self) -> None:
        s = self.session
        if s is not None:
            # a failure is a notice from call_trainer; the run goes on in the stage it was in
            s.run_command(call_trainer, "end_stage", on_done=lambda _result, _error: None)
            s.request_snapshot()
            self.go_live()  # the next stage shows in the live views

    # -- feeding -----------------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.grad_curve.clear_data()
        self.curves.clear_data()
        self._grad_history = []
        self._grad_steps = []
        self._last_grad = None
        self._show_gradient_placeholders(pretraining=self._shown_kind not in (None, _NOT_YET))

    def _ensure_layer_series(self, n: int) -> None:
        """A curve per weight layer, coloured in order from layer 1 (purple) to the output (yellow)."""
        if n == self._layers_seen:
            return
        colours = ordered_colours(n)
        for layer in range(1, n + 1):
            if layer > self._layers_seen:
                self.grad_curve.add_series(f"g{layer}", f"layer {layer}", colours[layer - 1], width=2)
            else:
                self.grad_curve.set_series_colour(f"g{layer}", colours[layer - 1])
        for layer in range(n + 1, self._layers_seen + 1):  # a smaller network now: no empty legend rows
            self.grad_curve.remove_series(f"g{layer}")
        self._layers_seen = n

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        for part in self.metrics_parts(steps, evals):
            part()

    def metrics_parts(self, steps: list[dict], evals: list[dict]) -> list[Callable[[], None]]:
        """The gradient curves, their heatmap, then the loss and accuracy curves: 10, 2-3 and 4 ms of painting
        at a tick, drawn in three events while training runs (see LivePanel.snapshot_parts)."""
        grads: list[bool] = []
        return [lambda: grads.append(self._add_gradients(steps)),
                lambda: self._draw_heatmap() if any(grads) else None,
                lambda: self._add_losses(steps, evals)]

    def _add_gradients(self, steps: list[dict]) -> bool:
        """The new gradient norms on their curves; whether there were any (the heatmap is then due)."""
        grad_rows = [r for r in steps if "grad_norm_1" in r]
        if grad_rows:
            n = sum(1 for k in grad_rows[0] if k.startswith("grad_norm_"))
            # the trainer measures the statistics every "Statistics every" steps and repeats the last
            # measurement in between: only the measured rows are points (a tenth of them by default,
            # which the log-scale curve and the heatmap draw that much faster)
            fresh = []
            for r in grad_rows:
                key = tuple(r.get(f"grad_norm_{i}") for i in range(1, n + 1))
                if key != self._last_grad:
                    fresh.append(r)
                    self._last_grad = key
            grad_rows = fresh
        if grad_rows:
            self.grad_curve.set_placeholder("")
            self.grad_heat.set_placeholder("")
            self._ensure_layer_series(n)
            xs = [r["step"] for r in grad_rows]
            for layer in range(1, n + 1):
                self.grad_curve.append(f"g{layer}", xs, [max(r[f"grad_norm_{layer}"], 1e-12) for r in grad_rows])
            self._grad_history.extend(np.array([[r[f"grad_norm_{i}"] for i in range(1, n + 1)] for r in grad_rows]))
            self._grad_steps.extend(int(x) for x in xs)
            self.grad_curve.redraw()
            return True
        return False

    def _add_losses(self, steps: list[dict], evals: list[dict]) -> None:
        loss_rows = [r for r in steps if "loss" in r]
        if loss_rows:
            self.curves.append("loss", [r["step"] for r in loss_rows], [r["loss"] for r in loss_rows])
        pre_rows = [r for r in steps if "pretrain_error" in r]
        if pre_rows:
            self.curves.append("pretrain", [r["step"] for r in pre_rows], [r["pretrain_error"] for r in pre_rows])
            self.curves.redraw()
        fine = [r for r in evals if "heldout_accuracy" in r]
        if fine:
            xs = [r["step"] for r in fine]
            self.curves.append("train_acc", xs, [100 * r.get("train_accuracy", np.nan) for r in fine])
            self.curves.append("heldout_acc", xs, [100 * r["heldout_accuracy"] for r in fine])
        if loss_rows or fine:
            self.curves.redraw()

    def redraw_shown(self) -> None:
        super().redraw_shown()
        self._draw_heatmap()  # drawn from the curves' records, skipped while its tab was hidden

    def _draw_heatmap(self) -> None:
        if not self._grad_history or not self.grad_heat.isVisible():
            return
        hist = np.log10(np.maximum(np.asarray(self._grad_history[-50 * HEATMAP_COLUMNS:]), 1e-12))
        steps = self._grad_steps[-len(hist):]
        if len(hist) > HEATMAP_COLUMNS:  # average neighbouring records into at most HEATMAP_COLUMNS columns
            edges = np.linspace(0, len(hist), HEATMAP_COLUMNS + 1).astype(int)
            hist = np.stack([hist[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:])])
            self._heat_columns = [(steps[a], steps[b - 1], b - a) for a, b in zip(edges[:-1], edges[1:])]
        else:
            self._heat_columns = [(s, s, 1) for s in steps]
        lo, hi = float(np.floor(hist.min())), float(np.ceil(hist.max()))
        if hi <= lo:
            hi = lo + 1
        if (lo, hi) != self.grad_heat.levels:
            self.grad_heat.set_levels((lo, hi))
        self.grad_heat.set_matrix(hist.T, first_row=1)  # rows: layers 1..L

    def grad_heat_text(self, info: dict) -> str | None:
        """Layer l and a heatmap column: the steps it covers and the gradient norm ||dL/dW_l|| there."""
        col = int(info["col"])
        if col >= len(self._heat_columns):
            return None
        first, last, n = self._heat_columns[col]
        layer, v = info["y"], float(info["value"])
        when = f"step <b>{first}</b>" if n == 1 else f"steps <b>{first}–{last}</b> (geometric mean of {n} records)"
        return (f"layer <b>{layer}</b>, {when}<br>"
                f"‖∂L/∂W<sub>{layer}</sub>‖ = 10<sup>{fmt(v)}</sup> = <b>{fmt(10.0 ** v)}</b><br>"
                f"∂L/∂W<sub>ij</sub> = δ<sub>j</sub> x<sub>i</sub>,  δ<sub>j</sub> = [Σ δ<sub>j+1</sub> W] σ'(net<sub>j</sub>)")

    def stats_parts(self, s: Session) -> list[str]:
        tr = s.trainer
        parts = [f"stage: {tr.stages[tr.stage_index]}"] if getattr(tr, "stages", None) else []
        last = s.metrics.steps[-1] if s.metrics.steps else {}
        g1, gl = last.get("grad_norm_1"), last.get(f"grad_norm_{getattr(tr, 'n_layers', 0)}")
        if g1 is not None and gl:
            parts.append(f"‖∂L/∂W₁‖ / ‖∂L/∂W_out‖ = {g1 / gl:.2e}")
        if s.metrics.evals and "heldout_accuracy" in s.metrics.evals[-1]:
            parts.append(f"held-out accuracy {s.metrics.evals[-1]['heldout_accuracy']:.1%}")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        stages = list(a.get("stages", []))
        stage = int(a.get("stage", 0))
        if stages != self._stages or stage != self._stage:
            self._stages, self._stage = stages, stage
            self.pipeline.clear()
            for i, name in enumerate(stages):
                mark = "✔ " if i < stage else ("▶ " if i == stage else "  ")
                item = QtWidgets.QListWidgetItem(mark + name)
                if i == stage:
                    item.setSelected(True)
                self.pipeline.addItem(item)
            self.end_stage_btn.setEnabled(stage < len(stages) - 1)
        self._show_stage_views(a)
        if self.saturation.isVisible() and "saturation" in a:
            self.saturation.set_values(a["saturation"])
        if self.act_hist.isVisible() and "activation_hist" in a:
            h = np.asarray(a["activation_hist"], dtype=float)
            h = h / np.maximum(h.sum(1, keepdims=True), 1)
            self.act_hist.set_matrix(h / max(h.max(), 1e-9), first_row=1)
        if self.dbn.isVisible() and "dbn_samples" in a:
            self.dbn.set_images(a["dbn_samples"], a["image_shape"], cols=8)
        if self.filters.isVisible() and "filters" in a:
            self.filters.set_images(a["filters"][:100], a["image_shape"])
