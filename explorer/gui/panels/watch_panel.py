"""The "Your model" panel: a model the user trains in a script of their own (``explorer.watch(model)``), live.

No family of the app made this model, so the panel knows it only from its description (the layers, their
kinds, output shapes and geometry) and from the arrays each snapshot carries, named by layer (``act/``,
``weight/``, ``hist/``, ``gates/``, ``seg/``, ``erf/``; see ``explorer.core.watch.session``).

Left: the module tree (name, type, output shape, parameters) and what the run allows (its learning rate).
Centre: the selected layer, shown the way its kind is best seen: a convolution's or pooling's feature maps
beside the probe input (click a unit: its theoretical receptive field as a box, from the kernels, strides,
padding and dilation of the layers up to it, and its effective receptive field |∂unit/∂input| as heat,
which the script computes on request), a linear layer's activations and weights, a recurrent layer's gates
over time (every layer and direction), an activation's distribution with its saturated share. Right: the
model's output (or its segmentation) and the saturated units per layer. Bottom: the gradient norm of every
layer with parameters over time, as curves and as a layers x time heatmap (the vanishing gradient), and the
scalars the script passes to ``watcher.step``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import FINISHED, Snapshot
from explorer.core.watch.session import WatchSession, field_box, receptive_fields
from explorer.gui.panels.base import PRESENTATION_MIN_VIEW_PX, DockSpec, LivePanel, settings_scroll, squeezable
from explorer.gui.widgets.featuremaps import FeatureMapStack, InputView
from explorer.gui.widgets.hover import esc, fmt
from explorer.gui.widgets.segmentation import SegmentationView, upsample_nearest
from explorer.gui.widgets.sequence_views import TraceView, UnitHeatmapView
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import (
    LABEL_COLOURS,
    BarView,
    CurveView,
    HeatmapView,
    MosaicView,
    _caption_label,
    _title_label,
    ordered_colours,
)
from explorer.gui.widgets.views.plotting import mosaic_columns

HEATMAP_COLUMNS = 300     # the layers x time heatmap keeps at most this many time columns
MAX_HISTORY = 50 * HEATMAP_COLUMNS  # gradient records kept for it
GAP_FACTOR = 5.0          # records further apart than this many usual spacings: the gradient curves break there
GAP_SPACINGS = 20         # the usual spacing is the median of this many last ones
MAX_SCALARS = 12          # the script's scalars drawn as curves (more are left out, with a note)
SECONDARY_INTERVAL_S = 0.25  # the docks beside the central view redraw at most 4 times a second
INPUT_MIN_PX = 150
SEG_TILE_PX = 112         # a segmentation probe smaller than this is enlarged (by whole pixels) to about it
NOT_SCALARS = {"step", "time", "epoch"}

# pages of the central view
PAGE_NONE, PAGE_MAPS, PAGE_LINEAR, PAGE_GATES, PAGE_HIST = range(5)

GATES = {"lstm": "ifgoch", "gru": "rznh", "rnn": "h"}
GATE_NAMES = {"i": "input gate i<sub>t</sub>", "f": "forget gate f<sub>t</sub>", "g": "candidate g<sub>t</sub>",
              "o": "output gate o<sub>t</sub>", "c": "cell state c<sub>t</sub>", "h": "hidden state h<sub>t</sub>",
              "r": "reset gate r<sub>t</sub>", "z": "update gate z<sub>t</sub>", "n": "new state n<sub>t</sub>"}
GATE_PLAIN = {"i": "input gate i", "f": "forget gate f", "g": "candidate g", "o": "output gate o",
              "c": "cell state c", "h": "hidden state h", "r": "reset gate r", "z": "update gate z",
              "n": "new state n"}
SIGMOID_GATES = set("ifozr")  # in [0, 1]; the others (g, n, h: tanh) in [-1, 1], c unbounded
GATE_COLOURS = {"i": "#a3be8c", "f": "#4fc3f7", "g": "#b48ead", "o": "#ffb74d", "c": "#bf616a", "h": "#e5e9f0",
                "r": "#4fc3f7", "z": "#a3be8c", "n": "#b48ead"}
GATE_EQUATIONS = {
    "lstm": "i, f, o = σ(W<sub>i</sub> x<sub>t</sub> + U h<sub>t−1</sub> + b), g = tanh(…), c<sub>t</sub> = "
            "f ∘ c<sub>t−1</sub> + i ∘ g, h<sub>t</sub> = o ∘ tanh(c<sub>t</sub>)",
    "gru": "r, z = σ(W x<sub>t</sub> + U h<sub>t−1</sub> + b), n = tanh(W<sub>n</sub> x<sub>t</sub> + r ∘ "
           "(U<sub>n</sub> h<sub>t−1</sub>)), h<sub>t</sub> = (1 − z) ∘ n + z ∘ h<sub>t−1</sub>",
    "rnn": "h<sub>t</sub> = tanh(W x<sub>t</sub> + U h<sub>t−1</sub> + b)",
}


def shape_text(shape: list[int]) -> str:
    """An output shape without its batch dimension: [8, 16, 10, 10] -> "16×10×10"."""
    return "×".join(str(v) for v in shape[1:]) if len(shape) > 1 else ""


def display_image(chw: np.ndarray) -> np.ndarray:
    """A probe input (C, H, W) as a picture in [0, 1]: RGB for 3 channels, else the first channel; scaled by
    its own range (a script's inputs are often normalised to mean 0)."""
    a = np.asarray(chw, dtype=np.float32)
    pic = np.ascontiguousarray(a.transpose(1, 2, 0)) if a.ndim == 3 and a.shape[0] == 3 else (a[0] if a.ndim == 3 else a)
    finite = pic[np.isfinite(pic)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return np.nan_to_num((pic - lo) / (hi - lo) if hi > lo else np.zeros_like(pic))


def direction_label(key: str) -> str:
    """"l0" -> "layer 1", "l1r" -> "layer 2, reverse"."""
    reverse = key.endswith("r")
    try:
        n = int(key[1:-1] if reverse else key[1:]) + 1
    except ValueError:
        return key
    return f"layer {n}" + (", reverse" if reverse else "")


def _symmetric(a: np.ndarray) -> tuple[float, float]:
    top = float(np.nanmax(np.abs(a))) if a.size else 0.0
    top = top if math.isfinite(top) and top > 0 else 1.0
    return -top, top


def _range(a: np.ndarray) -> tuple[float, float]:
    finite = a[np.isfinite(a)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


class WatchSettings(SettingsForm):
    """What a watched run is, and the one thing the window may change of it: the learning rate (when the
    script gave ``watch`` its optimizer and allowed control)."""

    def __init__(self, model: dict | None = None, parent=None):
        super().__init__(set(), parent)
        self.setObjectName("watchSettings")
        self.section("Your model")
        self.info = QtWidgets.QLabel("")
        self.info.setObjectName("watchInfo")
        self.info.setWordWrap(True)
        self.info.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.form.addRow(self.info)
        self.section("Training (applies live)")
        self.lr = QtWidgets.QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 10.0)
        self.lr.setStepType(QtWidgets.QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.lr.setToolTip("Sets the learning rate of every parameter group of the script's optimizer, between "
                           "two of its steps")
        self.form.addRow("Learning rate", self.lr)
        self.lr_note = QtWidgets.QLabel("")
        self.lr_note.setObjectName("pendingNote")
        self.lr_note.setWordWrap(True)
        self.form.addRow(self.lr_note)
        self.set_config(model or {})
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"lr": self.lr}

    def set_config(self, config: Any) -> None:
        """Show a model description (a dict: see ``explorer.core.watch.session.clean_model``)."""
        m = config if isinstance(config, dict) else {}
        layers = m.get("layers", [])
        lines = [f"<b>{esc(m.get('name', 'model'))}</b>"]
        if m.get("framework"):
            lines.append(f"{esc(m['framework'])} on {esc(m.get('device', '?'))}")
        lines.append(f"{len(layers)} layers, {sum(layer.get('params', 0) for layer in layers):,} parameters")
        if m.get("input_shape"):
            lines.append(f"probe {shape_text(m['input_shape']) or '?'} → {shape_text(m.get('output_shape', [])) or '?'}")
        lines.append("the window may pause and step it" if m.get("control") else
                     "read-only: watch(model, control=True) lets the window pause it")
        self.info.setText("<br>".join(lines))
        lr = (m.get("hparams") or {}).get("lr")
        self.lr.blockSignals(True)
        if isinstance(lr, (int, float)) and lr > 0:
            self.lr.setValue(float(lr))
        self.lr.blockSignals(False)
        self.lr.setEnabled(bool(m.get("control")) and lr is not None)
        self.lr_note.setText("" if lr is not None else
                             "Pass the optimizer, explorer.watch(model, optimizer=opt, control=True), to set it here.")
        self._pending.clear()

    def _update_pending(self) -> None:
        """(Nothing waits for a Reset here.)"""


class WatchPanel(LivePanel):
    family = "watch"
    title = "Your model"
    presentation_docks = ("watchGradientsDock", "watchCurvesDock")
    presentation_split = (0.54, 0.46)  # the heatmap's title and caption take more of its dock than the curves'
    bottom_share = 0.3
    right_split = (0.4, 0.3)
    left_split = (0.5, 0.3)
    left_width = 360  # the tree's four columns

    def __init__(self, config: Any = None, parent=None):
        super().__init__(WatchSettings(config if isinstance(config, dict) else None), parent)
        self.model: dict[str, Any] = {}
        self._layers: dict[str, dict[str, Any]] = {}
        self._fields: dict[str, Any] = {}
        self.selected: str | None = None
        self.unit: tuple[str, int, int, int] | None = None  # (layer, channel, y, x) clicked
        self._erf: np.ndarray | None = None                  # the effective field of that unit, once it came
        self._erf_asked = False                              # ... asked of the script
        self._stats_state = ""                               # the run's state when the stats line was written
        self._items: dict[str, QtWidgets.QTreeWidgetItem] = {}  # layer or container name -> its tree row
        self._shown: Snapshot | None = None
        self._last_secondary_t = 0.0
        self._build_tree()
        self._build_pages()
        self._build_docks()
        self.clear_curves()

    # -- building -------------------------------------------------------------------------------------
    def _build_tree(self) -> None:
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setObjectName("watchLayers")
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Layer", "Type", "Output", "Parameters"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(14)
        header = self.tree.header()
        header.setStretchLastSection(False)
        # every column as wide as its text (a name cut to "…" says nothing); a narrow dock scrolls sideways
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._tree_choice)
        self._tree_widget = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(self._tree_widget)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(self.tree, 1)
        lay.addWidget(_caption_label("Every layer of your model, containers by their dotted names. Choose one to "
                                     "see it in the middle."))

    def _build_pages(self) -> None:
        self.layer_title = _title_label("")
        self.layer_title.setObjectName("watchLayerTitle")
        self.pages = QtWidgets.QStackedWidget()
        self.pages.setObjectName("watchPages")
        # nothing to show (yet)
        self.idle = QtWidgets.QLabel("")
        self.idle.setObjectName("viewPlaceholder")
        self.idle.setWordWrap(True)
        self.idle.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.pages.addWidget(self.idle)
        # feature maps, the probe with the receptive field, the kernels
        self.input_view = InputView()
        self.input_view.setMinimumHeight(INPUT_MIN_PX)
        self.input_title = _title_label("Probe input")
        self.unit_label = QtWidgets.QLabel("Click a unit in the maps: its receptive field shows on the input.")
        self.unit_label.setObjectName("unitLabel")
        self.unit_label.setWordWrap(True)
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(6, 4, 6, 4)
        ll.addWidget(self.input_title)
        ll.addWidget(self.input_view, 1)
        ll.addWidget(self.unit_label)
        ll.addWidget(_caption_label(
            "Box: the unit's <b>theoretical receptive field</b> (r<sub>l</sub> = r<sub>l−1</sub> + (k−1) "
            "j<sub>l−1</sub>, through kernels, strides, padding, dilation; dashed where it reaches into the "
            "padding). Heat: its <b>effective receptive field</b> |∂unit/∂input|, computed by your script."))
        self.maps = FeatureMapStack(cols=8, labels=False)  # one layer, named in the title above it
        self.maps.sigUnitClicked.connect(self._unit_clicked)
        self.maps_title = _title_label("Feature maps for the probe (click a unit)")
        self.kernels = MosaicView("Kernels", "Each tile a k×k kernel: rows are input channels, columns output "
                                  "channels (a single input channel's in reading order); red positive, blue "
                                  "negative, each scaled by its largest weight.",
                                  levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(6, 4, 6, 4)
        rl.addWidget(self.maps_title)
        rl.addWidget(self.maps, 1)
        rl.addWidget(_caption_label("Each map: one output channel of the layer for the probe, scaled by the "
                                    "layer's range (dark low, bright high)."))
        # the maps and the kernels take turns in one place: side by side or stacked, a 1366x768 screen left each
        # a strip too thin to read
        self.maps_tabs = QtWidgets.QTabWidget()
        self.maps_tabs.setObjectName("watchMapsTabs")
        self.maps_tabs.setDocumentMode(True)
        self.maps_tabs.addTab(squeezable(right), "Feature maps")
        self.maps_tabs.addTab(self.kernels, "Kernels")
        self.maps_tabs.currentChanged.connect(lambda _i: self._redraw_layer())
        maps_page = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        maps_page.addWidget(squeezable(left, whole_text=True))
        maps_page.addWidget(self.maps_tabs)
        maps_page.setStretchFactor(0, 2)
        maps_page.setStretchFactor(1, 3)
        self.pages.addWidget(maps_page)
        # a linear layer: activations and weights
        self.activations = HeatmapView("Activations", "One row per probe sample, one column per unit: the "
                                       "layer's output y = W x + b.", xlabel="unit", ylabel="probe sample",
                                       colormap="viridis")
        self.weights = HeatmapView("Weights W", "One row per output unit, one column per input (red positive, "
                                   "blue negative).", xlabel="input", ylabel="output unit", levels=(-1.0, 1.0),
                                   colormap="CET-D1")
        self.weight_tiles = MosaicView("Weights as images", "Each output unit's weights, laid out as the input "
                                       "image they multiply (red positive, blue negative, scaled per tile).",
                                       levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        linear_page = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        linear_page.addWidget(self.activations)
        self._weights_stack = QtWidgets.QStackedWidget()
        self._weights_stack.addWidget(self.weights)
        self._weights_stack.addWidget(self.weight_tiles)
        linear_page.addWidget(self._weights_stack)
        self.pages.addWidget(linear_page)
        # a recurrent layer: its gates over time
        self.direction = QtWidgets.QComboBox()
        self.direction.setObjectName("watchDirection")
        self.direction.setToolTip("Which stacked layer, and which direction of a bidirectional one")
        self.gate = QtWidgets.QComboBox()
        self.gate.setObjectName("watchGate")
        self.direction.currentIndexChanged.connect(lambda _i: self._redraw_layer())
        self.gate.currentIndexChanged.connect(lambda _i: self._redraw_layer())
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("Layer"))
        controls.addWidget(self.direction)
        controls.addSpacing(12)
        controls.addWidget(QtWidgets.QLabel("Gate"))
        controls.addWidget(self.gate)
        controls.addStretch(1)
        self.gate_map = UnitHeatmapView("Gate", "", levels=(0.0, 1.0), ylabel="unit (click one)")
        self.gate_map.sigUnitClicked.connect(self._gate_unit_clicked)
        self.gate_unit = 0
        self.gate_trace = TraceView("A unit over time", "Every gate of the unit chosen in the heatmap (click a row).",
                                    ylabel="value")
        for g in "ifgocrzn h".replace(" ", ""):
            self.gate_trace.add_series(g, g, GATE_COLOURS[g], width=2)
        gates_page = QtWidgets.QWidget()
        gl = QtWidgets.QVBoxLayout(gates_page)
        gl.setContentsMargins(6, 4, 6, 4)
        gl.addLayout(controls)
        # side by side: the centre is wider than tall on a laptop's screen
        self._gates_split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self._gates_split.addWidget(self.gate_map)
        self._gates_split.addWidget(self.gate_trace)
        self._gates_split.setStretchFactor(0, 3)
        self._gates_split.setStretchFactor(1, 2)
        gl.addWidget(self._gates_split, 1)
        self.pages.addWidget(gates_page)
        # an activation: its distribution
        self.hist = TraceView("Distribution of the activations", "Histogram of the layer's outputs over the whole "
                              "probe batch. Saturated: σ < 0.05 or > 0.95, |tanh| > 0.9 (σ' ≈ 0: the gradient "
                              "barely passes); for ReLU, units exactly 0 (dead).", xlabel="activation",
                              ylabel="count")
        self.hist.add_series("hist", "count", "#88c0d0", width=2, step=True, fill=True)
        self.pages.addWidget(self.hist)
        body = QtWidgets.QWidget()
        bl = QtWidgets.QVBoxLayout(body)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.layer_title)
        bl.addWidget(self.pages, 1)
        self._body = body

    def _build_docks(self) -> None:
        self.output = BarView("Output for the probe", "The model's output for the probe's first sample.",
                              xlabel="output", ylabel="value", y_range=None, colour="#a3be8c",
                              value_format="{:.3g}")
        self.segmentation = SegmentationView(
            "Segmentation of the probe", "Each pixel gets the class with the largest output, argmax<sub>k</sub> "
            "p(k | pixel). <b>prediction</b>: that map over the input; <b>truth</b> and <b>errors</b> when the "
            "script gave a probe target.")
        self._output_stack = QtWidgets.QStackedWidget()
        self._output_stack.addWidget(self.output)
        self._output_stack.addWidget(self.segmentation)
        self.saturation = BarView("Saturated units per layer", "Share of each activation layer's units that are "
                                  "saturated on the probe batch (sigmoid, tanh) or dead (ReLU): there the "
                                  "gradient stops.", xlabel="activation layer", ylabel="share")
        self.grad_curve = CurveView(
            "Gradient norm per layer ‖∂L/∂W‖ (log scale)",
            "Each layer with parameters, from the input (purple) to the output (yellow). Backpropagation multiplies "
            "the error by each layer's weights and σ' on its way down: a gap that grows is a vanishing gradient.",
            ylabel="gradient norm", logy=True)
        self.grad_heat = HeatmapView(
            "Layers × time: log₁₀ ‖∂L/∂W‖", "Rows: layers with parameters, the input's at the top; columns: time. "
            "Dark above, bright below: the gradient vanishes on its way down.",
            xlabel="recorded step (oldest → newest)", ylabel="layer", levels=(-6.0, 0.0), colormap="viridis")
        self.grad_heat.set_hover_text(self.grad_heat_text)
        self._gradients = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self._gradients.addWidget(self.grad_curve)
        self._gradients.addWidget(self.grad_heat)
        self._gradients.setStretchFactor(0, 3)
        self._gradients.setStretchFactor(1, 2)
        self.curves = CurveView("Loss and your scalars", "What your script passes to watcher.step(loss=…, …), "
                                "a point a call (a long run's kept as means of several).", ylabel="value")

    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self._body)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("watchLayersDock", "Layers", self._tree_widget, A.LeftDockWidgetArea),
            DockSpec("watchRunDock", "Run", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec("watchOutputDock", "Output", self._output_stack, A.RightDockWidgetArea),
            DockSpec("watchSaturationDock", "Saturation", self.saturation, A.RightDockWidgetArea),
            DockSpec("watchGradientsDock", "Gradients", self._gradients, A.BottomDockWidgetArea),
            DockSpec("watchCurvesDock", "Loss and scalars", self.curves, A.BottomDockWidgetArea),
        ]

    def set_presenting(self, on: bool) -> None:
        # the probe keeps a picture's height for the back row; its column scrolls to the caption below
        self.input_view.setMinimumHeight(PRESENTATION_MIN_VIEW_PX + 20 if on else INPUT_MIN_PX)
        # the gradients' dock shows the layers x time heatmap alone: beside the curves, in large type, each was
        # a strip 20 px tall at 1366x768 (its rows carry the layers' names, as the curves' legend does)
        self.grad_curve.setVisible(not on)
        if not on:
            QtCore.QTimer.singleShot(0, self.grad_curve.redraw)

    # -- the model ------------------------------------------------------------------------------------
    def new_run(self, session: Session) -> None:
        """A session to follow: its model's tree, its fields, and its first layer worth seeing."""
        model = session.trainer.config if isinstance(session.trainer.config, dict) else {}
        self.model = model
        self._layers = {layer["name"]: layer for layer in model.get("layers", [])}
        self._fields = receptive_fields(model) if model else {}
        self.unit, self._erf, self._shown = None, None, None
        self._fill_tree()
        self._output_stack.setCurrentIndex(1 if model.get("segmentation") else 0)
        # a segmentation's four pictures need the right column's height more than the saturation bars do
        self.right_split = (0.5, 0.22) if model.get("segmentation") else type(self).right_split
        first = next((n for n, layer in self._layers.items() if layer["kind"] in ("conv", "recurrent", "linear")),
                     next(iter(self._layers), None))
        self.select_layer(first)

    def _fill_tree(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        totals: dict[str, int] = {}
        for name, layer in self._layers.items():
            parts = name.split(".")
            parent: QtWidgets.QTreeWidgetItem | None = None
            for depth in range(1, len(parts)):  # containers, implied by the dotted names
                prefix = ".".join(parts[:depth])
                totals[prefix] = totals.get(prefix, 0) + layer["params"]
                if prefix not in items:
                    item = QtWidgets.QTreeWidgetItem([parts[depth - 1], "", "", ""])
                    item.setData(0, QtCore.Qt.ItemDataRole.UserRole, "")
                    item.setToolTip(0, prefix)
                    (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
                    items[prefix] = item
                parent = items[prefix]
            item = QtWidgets.QTreeWidgetItem([parts[-1], layer["type"], shape_text(layer["out_shape"]),
                                              f"{layer['params']:,}" if layer["params"] else ""])
            item.setData(0, QtCore.Qt.ItemDataRole.UserRole, name)
            item.setToolTip(0, name)
            for col in (2, 3):
                item.setTextAlignment(col, QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
            items[name] = item
        for prefix, total in totals.items():
            items[prefix].setText(3, f"{total:,}" if total else "")
            items[prefix].setTextAlignment(3, QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self._items = items
        self.tree.expandAll()
        self.tree.blockSignals(False)

    def _tree_choice(self, item: QtWidgets.QTreeWidgetItem | None, _previous=None) -> None:
        if item is None:
            return
        name = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        while not name and item.childCount():  # a container: its first layer
            item = item.child(0)
            name = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        if name:
            self.select_layer(name)

    def select_layer(self, name: str | None) -> None:
        """Show layer ``name`` in the centre (from the snapshot on show) and select it in the tree."""
        self.selected = name
        item = self._items.get(name) if name else None
        if item is not None and self.tree.currentItem() is not item:
            self.tree.blockSignals(True)
            self.tree.setCurrentItem(item)
            self.tree.blockSignals(False)
        if self.unit is not None and self.unit[0] != name:
            self.unit, self._erf = None, None
        self._fill_directions()
        self._redraw_layer()

    def _page_for(self, name: str, a: dict[str, Any]) -> int:
        """The page that shows layer ``name``: by the arrays the snapshot has for it, else by its kind."""
        layer = self._layers.get(name, {})
        if any(k.startswith(f"gates/{name}/") for k in a) or layer.get("kind") == "recurrent":
            return PAGE_GATES
        act = a.get(f"act/{name}")
        if act is not None:
            return PAGE_MAPS if np.ndim(act) == 3 else PAGE_LINEAR
        if f"hist/{name}" in a or layer.get("kind") == "activation":
            return PAGE_HIST
        if f"weight/{name}" in a:
            return PAGE_LINEAR if np.ndim(a[f"weight/{name}"]) == 2 else PAGE_MAPS
        if layer.get("kind") in ("conv", "pool") or len(layer.get("out_shape", [])) == 4:
            return PAGE_MAPS
        if layer.get("kind") == "linear":
            return PAGE_LINEAR
        return PAGE_NONE

    # -- drawing --------------------------------------------------------------------------------------
    def _redraw_layer(self) -> None:
        name = self.selected
        layer = self._layers.get(name or "")
        if name is None or layer is None:
            self.layer_title.setText("No layer chosen")
            self.idle.setText("Your model's layers are listed on the left: choose one to see it here.")
            self.pages.setCurrentIndex(PAGE_NONE)
            return
        params = f" · {layer['params']:,} parameters" if layer["params"] else ""
        out = f" · output {shape_text(layer['out_shape'])}" if layer["out_shape"] else ""
        self.layer_title.setText(f"{esc(name)} · {esc(layer['type'])}{out}{params}")
        snap = self._shown
        a = snap.arrays if snap is not None else {}
        page = self._page_for(name, a)
        if snap is None:
            self.idle.setText("Waiting for the first snapshot from your script: it comes with a probe "
                              "(explorer.watch(model, probe=x)) once a window is watching.")
            self.pages.setCurrentIndex(PAGE_NONE)
            return
        if page == PAGE_NONE or not self._draw_page(page, name, layer, a):
            kinds = "convolutions, poolings, linear and recurrent layers, activations"
            self.idle.setText(f"Nothing to draw for {esc(name)} ({esc(layer['type'])}) in this snapshot: the "
                              f"watcher sends arrays for {kinds}, and a probe is needed for all but the weights.")
            page = PAGE_NONE
        self.pages.setCurrentIndex(page)

    def _draw_page(self, page: int, name: str, layer: dict, a: dict[str, Any]) -> bool:
        """Draw ``name``'s views on ``page``; False when the snapshot has nothing for it."""
        if page == PAGE_MAPS:
            return self._draw_maps(name, layer, a)
        if page == PAGE_LINEAR:
            return self._draw_linear(name, a)
        if page == PAGE_GATES:
            return self._draw_gates(name, layer, a)
        return self._draw_hist(name, layer, a)

    def _draw_maps(self, name: str, layer: dict, a: dict[str, Any]) -> bool:
        act = a.get(f"act/{name}")
        w = a.get(f"weight/{name}")
        if act is None and w is None:
            return False
        if act is not None and np.ndim(act) == 3:
            shape = layer["out_shape"]
            channels = int(shape[1]) if len(shape) == 4 else int(act.shape[0])
            # the maps' own place, as laid out (the tabs' height less a guess at the title's and caption's
            # drew them a third smaller at 1366x768, where the title takes two lines)
            self.maps.set_columns(mosaic_columns(act.shape, self.maps.width() - self.maps.label_px(),
                                                 max(self.maps.height() - 2 * self.maps.frameWidth(), 40)))
            self.maps.set_maps([name], [act], [channels])
            shown = f"{act.shape[0]} of {channels}" if channels > act.shape[0] else f"{act.shape[0]}"
            self.maps_title.setText(f"{shown} maps of {act.shape[1]}×{act.shape[2]} for the probe (click a unit)")
        image = a.get("input")
        if image is not None and np.ndim(image) in (2, 3):
            self.input_view.set_image(display_image(image))
        self._show_unit(a)
        if w is not None and np.ndim(w) == 4 and self.maps_tabs.currentWidget() is self.kernels:
            oc, ic, kh, kw = w.shape
            if ic == 1:  # one input channel (a first layer's): the mosaic lays them out as large as fits
                self.kernels.title.setText(f"Kernels of {esc(name)}: {oc} of {kh}×{kw} (one input channel)")
            else:  # one row per input channel, one column per output channel: wide, as the place is
                self.kernels.title.setText(f"Kernels of {esc(name)}: {oc} × {ic} of {kh}×{kw}")
            self.kernels.set_images(np.asarray(w).transpose(1, 0, 2, 3).reshape(ic * oc, kh, kw), (kh, kw),
                                    cols=None if ic == 1 else oc)
            self.kernels.set_placeholder("")
        elif w is None or np.ndim(w) != 4:
            self.kernels.set_placeholder("No 2-d kernels for this layer (a pooling has none).")
        return True

    def _draw_linear(self, name: str, a: dict[str, Any]) -> bool:
        act, w = a.get(f"act/{name}"), a.get(f"weight/{name}")
        if act is None and w is None:
            return False
        if act is not None:
            m = np.asarray(act, dtype=np.float32).reshape(np.shape(act)[0], -1)
            # a linear layer's (samples, units); a 1-d convolution's (channels, positions) for the first sample
            spatial = self._layers.get(name, {}).get("kind") in ("conv", "pool")
            rows, cols = ("channel", "position") if spatial else ("probe sample", "unit")
            if (self.activations.ylabel, self.activations.xlabel) != (rows, cols):
                self.activations.ylabel, self.activations.xlabel = rows, cols
                self.activations.plot.setLabel("left", rows)
                self.activations.plot.setLabel("bottom", cols)
            self.activations.set_levels(_range(m))
            self.activations.set_matrix(m)
            self.activations.set_placeholder("")
            self.activations.title.setText(f"Activations of {esc(name)}: {m.shape[0]} {rows}s × {m.shape[1]} {cols}s")
        else:
            self.activations.set_placeholder("No activations: the script gave no probe.")
        if w is not None and np.ndim(w) == 2:
            w = np.asarray(w, dtype=np.float32)
            inp = self.model.get("input_shape") or []
            if len(inp) == 4 and inp[1] == 1 and w.shape[1] == inp[2] * inp[3]:  # weights on the image's pixels
                h, wd = inp[2], inp[3]
                self.weight_tiles.set_images(w[:100], (h, wd))
                self.weight_tiles.title.setText(f"Weights of {esc(name)} as images ({min(100, w.shape[0])} of "
                                                f"{w.shape[0]} units)")
                self._weights_stack.setCurrentIndex(1)
            else:
                self.weights.set_levels(_symmetric(w))
                self.weights.set_matrix(w)
                self.weights.set_placeholder("")
                self.weights.title.setText(f"Weights W of {esc(name)}: {w.shape[0]} × {w.shape[1]}")
                self._weights_stack.setCurrentIndex(0)
        else:
            self.weights.set_placeholder("No weight matrix to draw for this layer.")
            self._weights_stack.setCurrentIndex(0)
        return True

    def _fill_directions(self) -> None:
        """The recurrent layer's stacked layers and directions, and its gates, in the two choosers."""
        layer = self._layers.get(self.selected or "", {})
        keys: list[str] = []
        if layer.get("kind") == "recurrent":
            for k in range(layer.get("num_layers", 1)):
                keys.append(f"l{k}")
                if layer.get("bidirectional"):
                    keys.append(f"l{k}r")
        gates = GATES.get(layer.get("cell", "rnn"), "h") if keys else ""
        for combo, values, labels in ((self.direction, keys, [direction_label(k) for k in keys]),
                                      (self.gate, list(gates), [GATE_PLAIN[g] for g in gates])):
            if [combo.itemData(i) for i in range(combo.count())] == values:
                continue
            combo.blockSignals(True)
            combo.clear()
            for value, label in zip(values, labels):
                combo.addItem(label, value)
            combo.blockSignals(False)

    def _draw_gates(self, name: str, layer: dict, a: dict[str, Any]) -> bool:
        key, g = self.direction.currentData(), self.gate.currentData()
        if key is None or g is None:
            return False
        m = a.get(f"gates/{name}/{key}/{g}")
        if m is None:
            self.gate_map.set_placeholder("No gates in this snapshot: the script gave no probe.")
            return True
        m = np.asarray(m, dtype=np.float32)  # (T, H)
        self.gate_map.set_placeholder("")
        levels = (0.0, 1.0) if g in SIGMOID_GATES else ((-1.0, 1.0) if g != "c" else _symmetric(m))
        self.gate_map.set_levels(levels)
        self.gate_map.set_matrix(m.T)  # one row per unit
        cell = layer.get("cell", "rnn")
        self.gate_map.title.setText(f"{GATE_NAMES[g].capitalize()}, {direction_label(key)}: {m.shape[1]} units × "
                                    f"{m.shape[0]} steps")
        self.gate_map.set_caption(GATE_EQUATIONS.get(cell, ""))
        unit = min(self.gate_unit, m.shape[1] - 1)
        self.gate_map.mark_row(unit)
        if self.gate_trace.isVisibleTo(self._gates_split):
            for gate in GATE_COLOURS:
                series = a.get(f"gates/{name}/{key}/{gate}")
                if gate in GATES.get(cell, "h") and series is not None and np.shape(series)[1] > unit:
                    self.gate_trace.set_series(gate, np.arange(np.shape(series)[0]), np.asarray(series)[:, unit])
                else:
                    self.gate_trace.clear_series(gate)
            self.gate_trace.title.setText(f"Unit {unit} over time")
            self.gate_trace.done()
        return True

    def _gate_unit_clicked(self, row: int) -> None:
        self.gate_unit = int(row)
        self._redraw_layer()

    def _draw_hist(self, name: str, layer: dict, a: dict[str, Any]) -> bool:
        h = a.get(f"hist/{name}")
        if h is None or np.ndim(h) != 2 or np.shape(h)[0] != 2:
            return False
        self.hist.set_series("hist", np.asarray(h[0]), np.asarray(h[1]))
        sat = self._shown.scalars.get(f"saturated/{name}") if self._shown is not None else None
        what = "dead (exactly 0)" if layer["type"] in ("ReLU", "ReLU6") else "saturated"
        share = f"{sat:.0%} {what}" if sat is not None and math.isfinite(sat) else "units"
        self.hist.set_label("hist", share)
        self.hist.done()
        self.hist.title.setText(f"Activations of {esc(name)} ({esc(layer['type'])}) on the probe batch"
                                + (f": {share}" if sat is not None and math.isfinite(sat) else ""))
        return True

    # -- units and their receptive fields ---------------------------------------------------------------
    def _unit_clicked(self, _row: int, channel: int, y: int, x: int) -> None:
        name = self.selected
        if name is None:
            return
        self.unit, self._erf = (name, int(channel), int(y), int(x)), None
        s = self.session
        self._erf_asked = isinstance(s, WatchSession) and s.request_erf(name, channel, y, x)
        self._show_unit(self._shown.arrays if self._shown is not None else {})

    def _show_unit(self, a: dict[str, Any]) -> None:
        unit = self.unit
        if unit is None or unit[0] != self.selected:
            self.input_view.set_box(None)
            self.input_view.set_heat(None)
            self.maps.mark_unit(None)
            self.unit_label.setText("Click a unit in the maps: its receptive field shows on the input.")
            return
        name, ch, y, x = unit
        self.maps.mark_unit(0, ch, y, x)
        erf = a.get(f"erf/{name}")
        if erf is not None and np.ndim(erf) == 2:
            self._erf = np.asarray(erf, dtype=np.float32)
        inp = self.model.get("input_shape") or []
        field = self._fields.get(name)
        text = f"Unit: {esc(name)}, map {ch}, position ({y}, {x})."
        box = None
        if field is not None and len(inp) == 4:
            box, outer = field_box(field, y, x, (inp[2], inp[3]))
            (ry, rx), (jy, jx), _o = field
            self.input_view.set_box(box, outer)
            size = f"{ry}×{rx}"
            jump = f"{jy}" if jy == jx else f"{jy}×{jx}"
            text += (f" Receptive field {size} pixels (jump {jump}); on the image rows {box[0]}–{box[2]}, "
                     f"columns {box[1]}–{box[3]}.")
        else:
            self.input_view.set_box(None)
            text += " No receptive field: a layer before it has no geometry (the description says how)."
        if self._erf is not None:
            self.input_view.set_heat(self._erf)
            if box is not None and self._erf.shape == (inp[2], inp[3]):
                t, left, b, r = box
                total = float(np.abs(self._erf).sum())
                inside = float(np.abs(self._erf[t:b + 1, left:r + 1]).sum()) / total if total > 0 else 0.0
                text += f" Effective field: {inside:.0%} of |∂unit/∂input| inside the box."
        else:
            self.input_view.set_heat(None)
            if self._erf_asked:
                text += " Effective field: asked of your script, it comes with the next snapshot."
        self.unit_label.setText(text)

    # -- feeding --------------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.curves.clear_data()
        self.grad_curve.clear_data()
        self._grad_history: list[np.ndarray] = []
        self._grad_steps: list[int] = []
        self._grad_breaks_due: set[int] = set()  # layers whose curve breaks before their next value
        self._heat_columns: list[tuple[int, int, int]] = []
        self._grad_series: list[str] = []
        self._heat_ticks: list[str] = []
        self._scalar_keys: list[str] = []
        self._grad_from_snapshots = -1  # the step of the last snapshot's grad_norms taken (no grad rows seen)
        self._grad_rows_seen = False
        wait = ("The gradient norm of every layer with parameters, ‖∂L/∂W‖, appears here when your script calls "
                "watcher.step() after loss.backward().")
        self.grad_curve.set_placeholder(wait)
        self.grad_heat.set_placeholder(wait)
        self.curves.set_placeholder("The scalars your script passes to watcher.step(loss=…) appear here.")

    def _grad_layers(self) -> list[str]:
        return list(self.model.get("grad_layers", []))

    def _ensure_grad_series(self) -> None:
        names = self._grad_layers()
        if names == self._grad_series:
            return
        for i, _n in enumerate(self._grad_series):
            self.grad_curve.remove_series(f"g{i}")
        colours = ordered_colours(len(names))
        for i, n in enumerate(names):
            self.grad_curve.add_series(f"g{i}", n, colours[i], width=2)
        self._grad_series = names

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        names = self._grad_layers()
        grad_rows = [r for r in steps if any(k.startswith("grad/") for k in r)]
        if grad_rows and names:
            self._grad_rows_seen = True
            self._add_gradients([int(r["step"]) for r in grad_rows],
                                np.array([[r.get(f"grad/{n}", np.nan) for n in names] for r in grad_rows]))
        rows = [r for r in steps if not any(k.startswith("grad/") for k in r)]
        new = False
        for r in rows:
            for key in r:
                if key not in NOT_SCALARS and key not in self._scalar_keys and len(self._scalar_keys) < MAX_SCALARS:
                    self.curves.add_series(key, key, LABEL_COLOURS[len(self._scalar_keys) % len(LABEL_COLOURS)],
                                           width=1.5 if key == "loss" else 2)
                    self._scalar_keys.append(key)
        for key in self._scalar_keys:
            pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
            if pts:
                self.curves.append(key, [p[0] for p in pts], [p[1] for p in pts])
                new = True
        if new:
            self.curves.set_placeholder("")
            self.curves.redraw()

    def _add_gradients(self, steps: list[int], norms: np.ndarray) -> None:
        """Gradient norms (rows: records, columns: ``grad_layers``) at ``steps``: the curves and the heatmap."""
        self._ensure_grad_series()
        xs = np.asarray(steps, dtype=float)
        breaks = self._grad_gaps(steps)
        for i in range(norms.shape[1]):
            ok = np.isfinite(norms[:, i])
            # a NaN where nothing was recorded for a while (no window watched): the curve breaks there rather
            # than drawing a straight line across steps nobody measured. Each break goes before the first
            # record after it that has this layer's value (a layer without one right after the gap must not
            # be joined across it), in a later batch if this one has none
            wanted = ([0] if i in self._grad_breaks_due else []) + breaks
            kept = np.flatnonzero(ok)
            cut = np.unique(np.searchsorted(kept, wanted)) if wanted else np.zeros(0, dtype=np.intp)
            if len(cut) and cut[-1] >= len(kept):
                self._grad_breaks_due.add(i)
            else:
                self._grad_breaks_due.discard(i)
            cut = cut[cut < len(kept)]
            if len(kept):
                x = np.insert(xs[kept], cut, xs[kept[cut]] - 0.5)
                y = np.insert(np.maximum(norms[kept, i], 1e-12), cut, np.nan)
                self.grad_curve.append(f"g{i}", list(x), list(y))
        self._grad_history.extend(norms)
        self._grad_steps.extend(steps)
        del self._grad_history[:-MAX_HISTORY]
        del self._grad_steps[:-MAX_HISTORY]
        self.grad_curve.set_placeholder("")
        self.grad_heat.set_placeholder("")
        self.grad_curve.redraw()
        self._draw_heatmap()

    def _grad_gaps(self, steps: list[int]) -> list[int]:
        """Indices into ``steps`` of the records that come after a gap: more than GAP_FACTOR times the usual
        spacing of the records (their median, over the last ones) since the one before."""
        seen = self._grad_steps[-GAP_SPACINGS - 1:]
        breaks = []
        for k, step in enumerate(steps):
            if len(seen) > 2:
                usual = float(np.median(np.diff(seen)))
                if usual > 0 and step - seen[-1] > GAP_FACTOR * usual:
                    breaks.append(k)
            seen = [*seen[-GAP_SPACINGS:], step]
        return breaks

    def _draw_heatmap(self) -> None:
        if not self._grad_history or not self.grad_heat.isVisible():
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            hist = np.log10(np.maximum(np.asarray(self._grad_history, dtype=float), 1e-12))
        steps = self._grad_steps
        if len(hist) > HEATMAP_COLUMNS:  # neighbouring records averaged into at most HEATMAP_COLUMNS columns
            edges = np.linspace(0, len(hist), HEATMAP_COLUMNS + 1).astype(int)
            hist = np.stack([np.nanmean(hist[a:b], 0) if np.isfinite(hist[a:b]).any() else hist[a]
                             for a, b in zip(edges[:-1], edges[1:])])
            self._heat_columns = [(steps[a], steps[b - 1], b - a) for a, b in zip(edges[:-1], edges[1:])]
        else:
            self._heat_columns = [(s, s, 1) for s in steps]
        finite = hist[np.isfinite(hist)]
        lo, hi = (float(np.floor(finite.min())), float(np.ceil(finite.max()))) if finite.size else (-6.0, 0.0)
        if hi <= lo:
            hi = lo + 1
        if (lo, hi) != self.grad_heat.levels:
            self.grad_heat.set_levels((lo, hi))
        self.grad_heat.set_matrix(hist.T, first_row=1)  # rows: layers 1..L
        names = self._grad_layers()
        if names != self._heat_ticks:  # each row named by its layer (at most a dozen names, evenly spread)
            self._heat_ticks = names
            every = max(1, math.ceil(len(names) / 12))
            self.grad_heat.plot.getAxis("left").setTicks(
                [[(i + 1, n) for i, n in enumerate(names) if i % every == 0 or i == len(names) - 1]])

    def grad_heat_text(self, info: dict) -> str | None:
        """The layer's name and the steps a column covers, with the gradient norm there."""
        col, row = int(info["col"]), int(info["row"])
        names = self._grad_layers()
        if col >= len(self._heat_columns) or row >= len(names):
            return None
        first, last, n = self._heat_columns[col]
        v = float(info["value"])
        when = f"step <b>{first}</b>" if n == 1 else f"steps <b>{first}–{last}</b> (geometric mean of {n} records)"
        return (f"layer {row + 1}: <b>{esc(names[row])}</b>, {when}<br>"
                f"‖∂L/∂W‖ = 10<sup>{fmt(v)}</sup> = <b>{fmt(10.0 ** v)}</b>")

    def redraw_shown(self) -> None:
        super().redraw_shown()
        self._draw_heatmap()  # drawn from the records, skipped while its dock was hidden

    def refresh(self) -> bool:
        drawn = super().refresh()
        s = self.session
        if s is not None and s.state != self._stats_state:  # the run paused or ended: the line says so at once
            self._stats_state = s.state
            self._update_stats(s)
        return drawn

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        last = s.metrics.steps[-1] if s.metrics.steps else {}
        if "loss" in last and math.isfinite(last["loss"]):
            parts.append(f"loss {last['loss']:.4g}")
        if self._grad_history:
            g = np.asarray(self._grad_history[-1], dtype=float)
            if len(g) > 1 and np.isfinite(g[[0, -1]]).all() and g[-1] > 0:
                parts.append(f"‖∂L/∂W‖ first / last layer = {g[0] / g[-1]:.2e}")
        if s.state == FINISHED:
            parts.append("the run has ended: its last views stay")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        self._shown = snap
        a = snap.arrays
        if not self._grad_rows_seen and "grad_norms" in a and snap.step != self._grad_from_snapshots:
            norms = np.asarray(a["grad_norms"], dtype=float).reshape(1, -1)
            if norms.shape[1] == len(self._grad_layers()):
                self._grad_from_snapshots = snap.step
                self._add_gradients([snap.step], norms)
        self._redraw_layer()
        now = time.monotonic()
        if now - self._last_secondary_t < SECONDARY_INTERVAL_S and self.viewing is None:
            return
        self._last_secondary_t = now
        self._draw_output(a)
        self._draw_saturation(snap)

    def _draw_output(self, a: dict[str, Any]) -> None:
        if self.model.get("segmentation") and "seg/classes" in a:
            if not self.segmentation.isVisible():
                return
            classes = np.asarray(a["seg/classes"], dtype=np.int64)[None]
            k = int(np.shape(a["seg/probs"])[0]) if "seg/probs" in a else int(classes.max()) + 1
            image = a.get("input")
            grey = display_image(image) if image is not None else np.zeros(classes.shape[1:], np.float32)
            if grey.ndim == 3:
                grey = grey.mean(2)
            if grey.shape != classes.shape[1:]:
                grey = np.zeros(classes.shape[1:], np.float32)
            target = a.get("target")
            truth = (np.asarray(target, dtype=np.int64)[None] if target is not None
                     and np.shape(target) == classes.shape[1:] else None)
            # one probe's small picture, enlarged: its four kinds then fit side by side with their labels
            # (at 28x28 the view stacked them, each tile 48 px tall at 1600x1000)
            h, w = classes.shape[1:]
            f = max(1, math.ceil(SEG_TILE_PX / max(1, min(h, w))))

            def big(a: np.ndarray) -> np.ndarray:
                return upsample_nearest(a, h * f, w * f)

            classes = big(classes[0])[None]
            truth = big(truth[0])[None] if truth is not None else None
            rows = [("image", "image", None), ("prediction", "overlay", classes)]
            if truth is not None:
                rows += [("truth", "truth", None), ("errors", "error", classes)]
            self.segmentation.set_data(big(grey)[None], truth if truth is not None else np.zeros_like(classes), rows,
                                       [f"class {i}" for i in range(k)])
            return
        out = a.get("output")
        if out is None or not self.output.isVisible():
            if out is None:
                self.output.set_placeholder("The model's output for the probe shows here (a probe is needed).")
            return
        v = np.asarray(out, dtype=float).reshape(-1)[:64]
        self.output.set_placeholder("")
        self.output.set_values(v, labels=[str(i) for i in range(len(v))])  # numbered as the script numbers them
        if v.size and np.isfinite(v).any():
            self.output.title.setText(f"Output for the probe's first sample: largest at {int(np.nanargmax(v))}")

    def _draw_saturation(self, snap: Snapshot) -> None:
        if not self.saturation.isVisible():
            return
        names = [n for n, layer in self._layers.items() if layer["kind"] == "activation"
                 and f"saturated/{n}" in snap.scalars]
        if not names:
            self.saturation.set_placeholder("The share of saturated (or dead) units of each activation layer "
                                            "shows here (a probe is needed).")
            return
        self.saturation.set_placeholder("")
        self.saturation.set_values([snap.scalars[f"saturated/{n}"] for n in names], labels=names)
