"""The CNN panel: a convolutional network's feature maps for one input, live, and where its units look.

Centre: the probe input with the selected unit's receptive field (the theoretical box from kernels,
strides, padding and pooling; the effective field |d unit / d input| as heat) beside the feature maps
of every image layer (convolution, nonlinearity, pooling, LCN), one mosaic row per layer; click a
unit to select it. Docks: settings, the probe gallery and a drawing canvas, the prediction, the
filters, the receptive-field size by layer, LCN before/after, loss and accuracy curves, the held-out
confusion matrix and the misclassified held-out examples.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.data.datasets import find_idx_files
from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.cnn.trainer import NEEDS_RESET, CNNConfig, cnn_presets
from explorer.core.persist.commands import call_trainer, unit_view
from explorer.gui.panels.base import PRESENTATION_MIN_VIEW_PX, DockSpec, LivePanel, settings_scroll, squeezable
from explorer.gui.widgets.canvas import DrawingCanvas
from explorer.gui.widgets.featuremaps import FeatureMapStack, InputView
from explorer.gui.widgets.gallery import ImageGallery
from explorer.gui.widgets.hover import esc
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import (
    BarView,
    CurveView,
    HeatmapView,
    MosaicView,
    _caption_label,
    _title_label,
    tile_images,
)

_SHORT = {"Conv2d": "conv", "MaxPool2d": "max", "AvgPool2d": "avg", "LocalContrastNorm": "LCN", "ReLU": "relu",
          "Tanh": "tanh", "Sigmoid": "sigm", "Dropout": "drop", "Concat": "cat", "Softmax": "smax"}


# the settings' least rows in sight, the probe dock below giving way (at 1366x768 they showed two): the data
# set, its folder and the image folder, the network's preset, with their sections' titles
SETTINGS_LEAST_ROWS = 6
INPUT_MIN_PX = 150  # the probe input with its receptive field: never squeezed below this (it scrolls)
SECONDARY_INTERVAL_S = 0.25  # the docks beside the feature maps redraw at most 4 times a second


def short_name(name: str) -> str:
    """"AvgPool2d #3" -> "avg3" (axis ticks)."""
    kind, _, num = name.partition(" #")
    return f"{_SHORT.get(kind, kind.lower())}{num}"


def display_image(chw: np.ndarray) -> np.ndarray:
    """A network input (C, H, W) as an image to show: RGB (H, W, 3) for 3 channels, else the first channel."""
    a = np.asarray(chw, dtype=np.float32)
    return np.ascontiguousarray(a.transpose(1, 2, 0)) if a.shape[0] == 3 else a[0]


class CNNSettings(SettingsForm):
    sigImageFolderChosen = QtCore.Signal(str)

    def __init__(self, config: CNNConfig, parent=None):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName("cnnSettings")
        form = self.form
        self.add_data_rows()
        self.dataset.addItem("folder")
        self.dataset.setItemData(self.dataset.count() - 1, "your own images: one sub-folder per class",
                                 QtCore.Qt.ItemDataRole.ToolTipRole)
        form.setRowVisible(self.upscale, False)  # the images are resized to the network's input instead
        row = QtWidgets.QHBoxLayout()
        self.image_folder = QtWidgets.QLabel("(none)")
        self.image_folder.setObjectName("imageFolder")
        self.image_folder.setMinimumWidth(60)
        self.choose_images = QtWidgets.QPushButton("Choose…")
        self.choose_images.setToolTip("A folder with one sub-folder of images per class (PNG, JPEG, ...)")
        self.choose_images.clicked.connect(self._choose_image_folder)
        row.addWidget(self.image_folder, 1)
        row.addWidget(self.choose_images)
        form.addRow("Image folder", row)
        self.section("Network")
        self.preset = QtWidgets.QComboBox()
        self.preset.addItems(cnn_presets())
        self.preset.setPlaceholderText("(the builder's network)")
        self.preset.setToolTip("A CNN from the builder's presets (Build > Architecture builder designs others)")
        self.preset.currentTextChanged.connect(self._preset_changed)
        form.addRow("Preset", self.preset)
        self.network = QtWidgets.QLabel("")
        self.network.setWordWrap(True)
        self.network.setObjectName("networkName")
        form.addRow("Network", self.network)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)
        self.section("Training (applies live)")
        self.lr = self.float_row("Learning rate", 0.0001, 10.0, decimals=4, step=0.005)
        self.momentum = self.float_row("Momentum", 0.0, 0.99)
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.add_reset_rows()
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"dataset": self.dataset, "seed": self.seed, "lr": self.lr, "momentum": self.momentum,
                "batch_size": self.batch_size}

    def set_config(self, config: CNNConfig) -> None:
        super().set_config(config)
        self.preset.blockSignals(True)
        if config.spec is None:
            self.preset.setCurrentText(config.preset)
        else:  # the builder's network: no preset's name stands beside it
            self.preset.setCurrentIndex(-1)
        self.preset.blockSignals(False)
        self.network.setText(f"{config.network_name()}" + (" (from the builder)" if config.spec is not None else ""))
        self.image_folder.setText(config.image_folder or "(none)")
        self.image_folder.setToolTip(config.image_folder or "")

    def _preset_changed(self, name: str) -> None:
        self._changed("spec", None)
        self._changed("preset", name)
        self.network.setText(name)

    def _choose_image_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder with one sub-folder of images per class")
        if path:
            self.sigImageFolderChosen.emit(path)


class ConfusionView(HeatmapView):
    """Rows: true class, columns: predicted class; colour: share of the row; the counts written in."""

    def __init__(self, title: str, caption: str):
        super().__init__(title, caption, xlabel="predicted class", ylabel="true class", levels=(0.0, 1.0),
                         colormap="viridis")
        self._texts: list[pg.TextItem] = []
        self.counts: np.ndarray | None = None

    def set_counts(self, counts: np.ndarray, names) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        if self.counts is not None and self.counts.shape == counts.shape and np.array_equal(self.counts, counts):
            return
        self.counts = counts.copy()
        share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        self.set_matrix(share)
        k = counts.shape[0]
        if len(self._texts) != k * k:
            for t in self._texts:
                self.plot.removeItem(t)
            self._texts = [pg.TextItem("", anchor=(0.5, 0.5)) for _ in range(k * k)]
            for t in self._texts:
                self.plot.addItem(t)
            ticks = [(i + 0.5, str(names[i]) if i < len(names) else str(i)) for i in range(k)]
            self.plot.getAxis("bottom").setTicks([ticks])
            self.plot.getAxis("left").setTicks([ticks])
        for i in range(k):
            for j in range(k):
                t = self._texts[i * k + j]
                t.setText(str(counts[i, j]) if counts[i, j] else "")
                t.setColor("#15181d" if share[i, j] > 0.6 else "#e5e9f0")
                t.setPos(j + 0.5, i + 0.5)


LABEL_PT = (11.0, 10.0, 9.0, 8.0)  # the text under each labelled tile, bold: the largest that leaves the tiles
LABEL_TILE_LINES = 1.5  # ... at least this many of its lines high ("7→1" read from the back of a lecture room)
LABEL_GAP_PX = 3  # screen pixels between a tile and its text
LABEL_SPACING_PX = 8  # at least between two texts side by side


class LabelledMosaic(MosaicView):
    """Tiles each with a short text in a strip of its own below it (e.g. "7→1": true class → predicted class).

    The texts were drawn on the tiles' top left corners, over the digits they name. Text keeps its size on
    screen while the tiles scale with the view, so the strip's height, the space between tiles and the tiles
    to a row are worked out in screen pixels for the view's size (again at each resize): the tiles are drawn
    as large as the place allows with every text below its own tile, clear of it and of its neighbours'.
    The type steps down (to LABEL_PT's last) where a full gallery in a small dock would leave only slivers
    of digits between large texts (32 at 1366x768)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._texts: list[pg.TextItem] = []
        self._labelled: tuple | None = None  # (images (n, h, w), (h, w), texts, most tiles to a row or None)
        self.label_font = QtGui.QFont()
        self.label_font.setPointSizeF(LABEL_PT[0])
        self.label_font.setBold(True)
        self.viewbox.sigResized.connect(self._lay_out)

    def set_labelled(self, images: np.ndarray, image_shape, texts, cols: int | None = None) -> None:
        """Show ``images`` (n, h, w) with ``texts[i]`` under tile i; ``cols``: at most this many to a row
        (None: as many as draw the tiles largest)."""
        h, w = int(image_shape[0]), int(image_shape[1])
        imgs = np.asarray(images, dtype=np.float32).reshape(-1, h, w)
        self._labelled = (imgs, (h, w), [str(t) for t in texts][:len(imgs)], cols)
        self._lay_out()

    def _hover_default(self, info: dict) -> str:
        """The tile's text first (true → predicted): it names the example also where the texts are not drawn."""
        text = super()._hover_default(info)
        tile, labelled = info.get("tile"), self._labelled
        if tile is not None and labelled is not None and tile < len(labelled[2]):
            text = f"<b>{esc(labelled[2][tile])}</b> · {text}"
        return text

    def text_size(self, texts, font: QtGui.QFont | None = None) -> tuple[float, float]:
        """Screen pixels that the widest of ``texts`` takes, and a line's height (in ``font``, or the labels')."""
        fm = QtGui.QFontMetricsF(font or self.label_font)
        return max((fm.horizontalAdvance(t) for t in texts), default=0.0), fm.height()

    @staticmethod
    def tile_layout(n: int, h: int, w: int, text_w: float, text_h: float, width: float, height: float,
                    most: int | None = None) -> tuple[int, float]:
        """(tiles to a row, screen pixels per image pixel) that draw ``n`` h x w tiles largest in a ``width`` x
        ``height`` place, each with a ``text_w`` x ``text_h`` text below it; texts side by side never touch."""
        best_cols, best_scale = 1, 0.0
        for cols in range(1, max(1, min(n, most or n)) + 1):
            if cols > 1 and cols * (text_w + LABEL_SPACING_PX) > width:
                break  # the texts would run into each other (more tiles to a row only make it worse)
            rows = math.ceil(n / cols)
            scale = min(width / (cols * (w + 1)),
                        max(height - rows * (text_h + LABEL_GAP_PX + 1), 0.2 * height) / (rows * (h + 1)))
            if scale > best_scale:
                best_cols, best_scale = cols, scale
        return best_cols, best_scale

    def _lay_out(self) -> None:
        if self._labelled is None:
            return
        imgs, (h, w), texts, most = self._labelled
        n = len(imgs)
        for t in self._texts[n:]:
            self.viewbox.removeItem(t)
        del self._texts[n:]
        if n == 0:
            self.set_images(np.zeros((0, h, w)), (h, w))
            return
        size = self.viewbox.size()
        wp, hp = (size.width(), size.height()) if size.width() > 1 and size.height() > 1 else (400.0, 200.0)
        wp, hp = wp * 0.97, hp * 0.97  # (a margin to the view's edges)
        font = QtGui.QFont(self.label_font)
        for pt in LABEL_PT:
            font.setPointSizeF(pt)
            text_w, text_h = self.text_size(texts, font)
            cols, scale = self.tile_layout(n, h, w, text_w, text_h, wp, hp, most)
            if scale * h >= LABEL_TILE_LINES * text_h:
                break
        self.label_font = font
        rows = math.ceil(n / cols)
        # in image pixels: the gap between tiles side by side (room for a text wider than its tile), and the
        # strip below each tile for its text
        gap_x = max(1, math.ceil((text_w + LABEL_SPACING_PX) / scale) - w)
        strip = max(1, math.ceil((text_h + LABEL_GAP_PX + 1) / scale))
        # tiles too small for their texts (many examples in a small dock): the gaps in image pixels grew as
        # 1/scale, the picture as its square (1000 examples: 15,000 x 13,000 pixels, 800 MB). The texts go and
        # the tiles are tiled plainly (the readout names each example's classes under the pointer).
        texts_shown = gap_x <= 2 * w and strip <= 2 * h
        if not texts_shown:
            gap_x, strip = 1, 1
        py, px = h + strip, w + gap_x
        mosaic = tile_images(imgs, (h, w), cols=cols, pad=(strip, gap_x))
        self._row_texts = []
        self._rows_fit = False
        self._pitch = (py, px)
        self._show(mosaic, (imgs.reshape(n, h * w), (h, w), cols))
        while len(self._texts) < n:
            t = pg.TextItem("", color="#ffb74d", anchor=(0.5, 0.0))
            t.textItem.document().setDocumentMargin(0)
            self.viewbox.addItem(t)
            self._texts.append(t)
        for i, (t, text) in enumerate(zip(self._texts, texts)):
            r, c = divmod(i, cols)
            if t.textItem.font() != font:
                t.setFont(font)
            t.setText(text)
            t.setPos(c * px + w / 2, r * py + h + LABEL_GAP_PX / scale)
            t.setVisible(texts_shown)
        side = (gap_x - 1) / 2  # a text wider than its tile reaches past the first and last tiles
        self.viewbox.setRange(xRange=(-side, mosaic.shape[1] + side), yRange=(0, rows * py), padding=0.01)


class CNNPanel(LivePanel):
    sigOwnUnit = QtCore.Signal(object)  # (unit, its view or None, error): an answer for a follower's click
    presentation_docks = ("cnnPredictionDock", "cnnCurvesDock")
    family = "cnn"
    title = "CNN: feature maps and receptive fields"
    right_split = (0.2, 0.42)  # ten bars need little height; the filters and the LCN rows need more
    left_split = (0.24, 0.4)  # the settings in sight too, not only the probe's examples and canvas
    bottom_share = 0.33  # (the settings keep SETTINGS_LEAST_ROWS: the probe's examples below get this height)

    def __init__(self, config: CNNConfig, parent=None):
        super().__init__(CNNSettings(config), parent)
        self.settings.sigImageFolderChosen.connect(self.use_image_folder)
        # centre: the probe with the receptive field, and the feature maps of every layer
        self.input_view = InputView()
        self.input_title = _title_label("Probe input")
        self.input_caption = _caption_label(
            "Box: the selected unit's <b>theoretical receptive field</b> (r<sub>l</sub> = r<sub>l−1</sub> + "
            "(k−1) j<sub>l−1</sub>, through kernels, strides, padding and pooling; dashed where it reaches into the "
            "padding). Heat: its <b>effective receptive field</b> |∂unit/∂input| for this input.")
        self.unit_label = QtWidgets.QLabel("")
        self.unit_label.setObjectName("unitLabel")
        self.unit_label.setWordWrap(True)
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(6, 4, 6, 4)
        ll.addWidget(self.input_title)
        ll.addWidget(self.input_view, 1)
        ll.addWidget(self.unit_label)
        ll.addWidget(self.input_caption)
        self.maps = FeatureMapStack(cols=16)
        self.maps.sigUnitClicked.connect(self._unit_clicked)
        # a window that follows a run read-only shows the unit its user clicked, asked of the run (its own
        # selection there is the run's window's): the unit, the answer, when it was asked, for which session
        self._own_unit: tuple[int, int, int, int] | None = None
        self._own_view: dict | None = None
        self._own_asked = 0.0
        self._own_session: object | None = None
        self.sigOwnUnit.connect(self._own_unit_answered)
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(6, 4, 6, 4)
        rl.addWidget(_title_label("Feature maps of every layer for the probe (click a unit)"))
        rl.addWidget(self.maps, 1)
        rl.addWidget(_caption_label(
            "Convolution with learned kernels shared by all pixels, a nonlinearity, then <b>pooling</b> of responses "
            "at nearby locations (robust to the exact position; the next layer sees a larger region). Each row: one "
            "layer's maps, scaled by that layer's range (dark low, bright high)."))
        self.input_view.setMinimumHeight(INPUT_MIN_PX)
        self._split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        # each half scrolls when short of room (1366x768): the deeper layers' maps stay reachable (each row
        # keeps its label's height) and the captions whole, never cut mid-sentence
        self._split.addWidget(squeezable(left, whole_text=True))
        self._split.addWidget(squeezable(right, whole_text=True))
        self._split.setStretchFactor(0, 2)
        self._split.setStretchFactor(1, 3)
        # the probe: gallery and canvas
        self.gallery = ImageGallery(thumb=48)
        self.gallery.sigPicked.connect(self.pick_probe)
        self.canvas = DrawingCanvas(28, 28)
        self.canvas.sigDrawn.connect(self.use_drawing)
        self.clear_button = QtWidgets.QPushButton("Clear drawing")
        self.clear_button.setObjectName("clearDrawing")
        self.clear_button.setToolTip("Clear the drawing (a right click on it does too)")
        self.clear_button.clicked.connect(self.canvas.clear)
        self._probe_widget = QtWidgets.QWidget()
        pl = QtWidgets.QVBoxLayout(self._probe_widget)
        pl.setContentsMargins(6, 4, 6, 4)
        pl.addWidget(_title_label("Held-out examples: click one to probe the network"))
        pl.addWidget(self.gallery, 2)
        pl.addWidget(_title_label("…or draw one (at the network's input size)"))
        # the button beside the canvas, never over it (below it, a squeezed dock drew it across the canvas)
        canvas_row = QtWidgets.QHBoxLayout()
        canvas_row.addWidget(self.canvas, 1)
        canvas_row.addWidget(self.clear_button, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        pl.addLayout(canvas_row, 3)
        pl.addWidget(_caption_label("The one clicked or drawn is the probe all the other views show."))
        # docks
        self.prediction = BarView("Prediction for the probe", "Softmax of the output layer: p(class | input).",
                                  xlabel="class", ylabel="probability", colour="#a3be8c")
        self.filters = MosaicView("First-layer filters", "The learned kernels of the first convolution (red "
                                  "positive, blue negative, each scaled by its largest weight).",
                                  levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        self.deep_filters = MosaicView("Deeper filters: channel grid", "Column: an output map; row: the input map it "
                                       "reads; each tile a k×k kernel (at most 16×16 shown).",
                                       levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        self.deep_layer = QtWidgets.QComboBox()
        self.deep_layer.setObjectName("deepFilterLayer")
        self.deep_layer.currentIndexChanged.connect(lambda _i: self._draw_deep_filters())
        # side by side: the dock is wide and short, and each mosaic gets its full height (stacked, the
        # first layer's six 5x5 kernels were 60 px tall at 1600x1000)
        self._filters_widget = QtWidgets.QWidget()
        fl = QtWidgets.QHBoxLayout(self._filters_widget)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.filters, 1)
        deeper = QtWidgets.QVBoxLayout()
        deeper.addWidget(self.deep_layer)
        deeper.addWidget(self.deep_filters, 1)
        fl.addLayout(deeper, 1)
        self.rf_chart = BarView("Receptive field size by layer", "Side of the input region one unit sees "
                                "(pixels): each k×k kernel adds (k−1)·jump, and pooling multiplies the jump, so "
                                "the layers after a pooling grow faster.", xlabel="layer", ylabel="pixels",
                                y_range=None, colour="#ebcb8b", value_format="{:.0f}")
        self.lcn = MosaicView("Local contrast normalisation", "h' = (h − m(N)) / max(ε, σ(N)) per map: subtract "
                              "the neighbourhood mean, divide by its standard deviation; equalizes the responses. "
                              "Top: before, bottom: after (each tile scaled to its range).", normalize="minmax")
        self.lcn_note = QtWidgets.QLabel("")
        self.lcn_note.setWordWrap(True)
        self._lcn_widget = QtWidgets.QWidget()
        nl = QtWidgets.QVBoxLayout(self._lcn_widget)
        nl.setContentsMargins(0, 0, 0, 0)
        nl.addWidget(self.lcn, 1)
        nl.addWidget(self.lcn_note)
        self.curves = CurveView("Loss and accuracy", "Cross-entropy of the logits per step (left axis), and "
                                "accuracy on the training and held-out data at each evaluation, in % (right axis).",
                                ylabel="cross-entropy")
        self.curves.set_right_axis("accuracy (%)")
        self.curves.add_series("loss", "training loss (per step)", "#5c6b80", width=1, per_step=True)
        self.curves.add_series("train_loss", "training loss", "#81a1c1", width=2, symbol="t")
        self.curves.add_series("heldout_loss", "held-out loss", "#d08770", width=2, symbol="t")
        self.curves.add_series("train_acc", "training accuracy (%)", "#4fc3f7", width=2.5, symbol="o", right=True)
        self.curves.add_series("heldout_acc", "held-out accuracy (%)", "#ffb74d", width=2.5, symbol="s", right=True)
        self.confusion = ConfusionView("Held-out confusion matrix", "Counts of held-out examples by true class "
                                       "(row) and predicted class (column); colour: share of the row.")
        self.misclassified = LabelledMosaic("Misclassified held-out examples", "true → predicted, from the last "
                                            "evaluation (at most 32).")
        self._structure: tuple = ()
        self._gallery_version = -1
        self._snap_arrays: dict | None = None
        self._geometry: list[tuple[int, int, int]] = []
        self._feature_index: list[int] = []
        self._last_secondary_t = 0.0
        self._shown_key: tuple = ()      # (probe, unit) last drawn in the docks: a change redraws them at once
        self._eval_shown: tuple = ()
        self._rf_shown: tuple = ()

    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self._split)

    def set_presenting(self, on: bool) -> None:
        # the probe keeps a picture's height for the back row; its column scrolls to the caption below
        self.input_view.setMinimumHeight(PRESENTATION_MIN_VIEW_PX + 20 if on else INPUT_MIN_PX)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("cnnSettingsDock", "Settings", settings_scroll(self.settings, SETTINGS_LEAST_ROWS),
                     A.LeftDockWidgetArea),
            DockSpec("cnnProbeDock", "Probe input", squeezable(self._probe_widget, whole_text=True),
                     A.LeftDockWidgetArea),
            DockSpec("cnnPredictionDock", "Prediction", self.prediction, A.RightDockWidgetArea),
            DockSpec("cnnFiltersDock", "Filters", self._filters_widget, A.RightDockWidgetArea),
            DockSpec("cnnLcnDock", "LCN", self._lcn_widget, A.RightDockWidgetArea, tab_with="cnnFiltersDock"),
            # a tab too: a third dock in the column left the chart 15 px tall at 1600x1000
            DockSpec("cnnRfDock", "Receptive fields", self.rf_chart, A.RightDockWidgetArea,
                     tab_with="cnnFiltersDock"),
            DockSpec("cnnCurvesDock", "Loss and accuracy", self.curves, A.BottomDockWidgetArea),
            DockSpec("cnnConfusionDock", "Confusion matrix", self.confusion, A.BottomDockWidgetArea),
            DockSpec("cnnMisclassifiedDock", "Misclassified", self.misclassified, A.BottomDockWidgetArea),
        ]

    # -- user actions (each goes to the training thread) -----------------------------------------------
    def _in_thread(self, method: str, *args, **kwargs) -> None:
        """Call the trainer's ``method`` between steps; a refused value becomes a notice, not a failed run."""
        s = self.session
        if s is None:
            return

        # a failure is a notice from call_trainer; a reply (even an empty one) keeps it from failing the run
        s.run_command(call_trainer, method, *args, on_done=lambda _result, _error: None, **kwargs)
        s.request_snapshot()
        self.go_live()  # what the user just asked for shows in the live views

    def pick_probe(self, index: int) -> None:
        """Probe the network with gallery entry ``index``."""
        self._in_thread("set_probe", index=int(index))

    def use_drawing(self, image: np.ndarray) -> None:
        """Probe the network with a drawn image (H, W) at its input size."""
        self.gallery.select(None)
        self._in_thread("set_probe", image=np.asarray(image, dtype=np.float32))

    def _unit_clicked(self, row: int, channel: int, y: int, x: int) -> None:
        if 0 <= row < len(self._feature_index):
            layer = self._feature_index[row]
            if getattr(self.session, "read_only", False):  # following: this window's unit, asked of the run
                self._own_unit, self._own_view, self._own_session = (layer, channel, y, x), None, self.session
                self._ask_own_unit()
                self.go_live()
                return
            self._in_thread("select_unit", (layer, channel, y, x))

    def _ask_own_unit(self) -> None:
        s, unit = self.session, self._own_unit
        if s is None or unit is None:
            return
        self._own_asked = time.monotonic()
        # (answered on the session's reader thread: the signal brings it to this one)
        s.run_command(unit_view, unit, on_done=lambda result, error: self.sigOwnUnit.emit((unit, result, error)))

    def _own_unit_answered(self, answer: tuple) -> None:
        unit, result, error = answer
        if unit != self._own_unit or self._own_session is not self.session:
            return  # another click, or another session, since
        if error is not None:
            self.unit_label.setText(f"Unit {unit}: {error}")
            return
        self._own_view = result
        if self.viewing is None:
            self._show_unit(result)

    def _shown_unit(self, a: dict) -> dict:
        """The unit to show with snapshot ``a``: a follower's own (asked again each second while live, so
        that its effective field follows the training), else the one the snapshot has."""
        if self._own_unit is None or self._own_session is not self.session or self.viewing is not None:
            return a
        if time.monotonic() - self._own_asked > 1.0:
            self._ask_own_unit()
        return self._own_view if self._own_view is not None else a

    def use_image_folder(self, path: str) -> None:
        """Train on the user's images in ``path`` (one sub-folder per class) now."""
        if self.session is None:
            return
        self.session.set_hparams(dataset="folder", image_folder=path)
        self.session.reset()

    def use_data_folder(self, path: str) -> None:
        """File > Open data folder: IDX files mean MNIST (or Fashion-MNIST when chosen); else an image folder."""
        if self.session is None:
            return
        cfg = self.session.trainer.config
        name = cfg.dataset if cfg.dataset in ("mnist", "fashion-mnist") else "mnist"
        if find_idx_files(name, Path(path)):
            self.settings.set_data_dir(path)
            self.session.set_hparams(dataset=name, data_dir=path)
            self.session.reset()
        else:
            self.use_image_folder(path)

    # -- feeding -----------------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.curves.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        rows = [r for r in steps if "loss" in r]
        if rows:
            self.curves.append("loss", [r["step"] for r in rows], [r["loss"] for r in rows])
        ev = [r for r in evals if "heldout_accuracy" in r]
        if ev:
            xs = [r["step"] for r in ev]
            for key, name, scale in (("train_loss", "train_loss", 1), ("heldout_loss", "heldout_loss", 1),
                                     ("train_acc", "train_accuracy", 100), ("heldout_acc", "heldout_accuracy", 100)):
                self.curves.append(key, xs, [scale * r.get(name, np.nan) for r in ev])
        if rows or ev:
            self.curves.redraw()

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        if s.metrics.evals and "heldout_accuracy" in s.metrics.evals[-1]:
            e = s.metrics.evals[-1]
            parts.append(f"held-out accuracy {e['heldout_accuracy']:.1%}")
            parts.append(f"training accuracy {e.get('train_accuracy', float('nan')):.1%}")
        note = getattr(s.trainer.dataset, "note", "")
        if "skipped" in note:
            parts.append(note[note.index("skipped"):])
        return parts

    def redraw_shown(self) -> None:
        self._shown_key = ()  # the docks beside the maps too, however recently they were drawn
        super().redraw_shown()

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        self._snap_arrays = a
        names = list(a.get("class_names", []))
        c, h, w = a["input_shape"]
        if self.canvas.image.shape != (h, w):
            self.canvas.set_resolution(h, w)
        if a["gallery_version"] != self._gallery_version:
            self._gallery_version = a["gallery_version"]
            self.gallery.set_images([display_image(g) for g in a["gallery"]],
                                    [names[k] if k < len(names) else str(k) for k in a["gallery_labels"]])
        self.gallery.select(a["probe_index"] if a["probe_index"] >= 0 else None)
        self.input_view.set_image(display_image(a["probe"]))
        self._feature_index = [int(i) for i in a["feature_index"]]
        self._geometry = list(zip(a["rf_size"].tolist(), a["rf_jump"].tolist(), a["rf_offset"].tolist()))
        self.maps.set_maps(a["feature_layers"], a["feature_maps"], a["feature_channels"])
        probs = a["probabilities"]
        pred = int(np.argmax(probs))
        label = int(a["probe_label"])
        title = f"Probe input: predicted {names[pred] if pred < len(names) else pred} ({probs[pred]:.0%})"
        if label >= 0:
            title += f", true {names[label] if label < len(names) else label}"
        else:
            title += " (drawn)"
        self.input_title.setText(title)
        self._show_unit(self._shown_unit(a))
        if (snap.run_id, a["eval_version"]) != self._eval_shown:
            self._eval_shown = (snap.run_id, a["eval_version"])
            self._show_evaluation(a, names, h, w)
        rf = (tuple(a["feature_layers"]), tuple(a["rf_size"].tolist()))
        # drawn in its tab even while another tab is up: it changes only with the network, and costs little
        if len(a["rf_size"]) and rf != self._rf_shown:
            self._rf_shown = rf
            self.rf_chart.set_values(a["rf_size"], labels=[short_name(n) for n in a["feature_layers"]])
        # the docks beside the maps move slowly: a few redraws a second, at once when the probe or unit changes
        key = (snap.run_id, int(a["probe_index"]), tuple(a["unit"].tolist()) if "unit" in a else (),
               None if self.viewing is None else snap.seq)  # a frame of the timeline is drawn whole, at once
        now = time.monotonic()
        if key == self._shown_key and now - self._last_secondary_t < SECONDARY_INTERVAL_S:
            return
        self._shown_key, self._last_secondary_t = key, now
        if self.prediction.isVisible():
            self.prediction.set_values(probs, labels=[names[k] if k < len(names) else str(k) for k in range(len(probs))])
            self.prediction.title.setText(f"Prediction for the probe: {names[pred] if pred < len(names) else pred}")
        if self._filters_widget.isVisible() and "filters" in a:
            f = a["filters"]
            oc, ic, k, _ = f.shape
            self.filters.title.setText(f"First-layer filters ({a['filters_layer']}: {oc} kernels {k}×{k}"
                                       + (f", columns: {ic} input channels)" if ic > 1 else ")"))
            self.filters.set_images(f.reshape(oc * ic, k, k), (k, k), cols=ic if ic > 1 else None)
            layers = list(a.get("deep_filters_layers", []))
            if [self.deep_layer.itemText(i) for i in range(self.deep_layer.count())] != layers:
                self.deep_layer.blockSignals(True)
                self.deep_layer.clear()
                self.deep_layer.addItems(layers)
                self.deep_layer.blockSignals(False)
            self.deep_layer.setVisible(bool(layers))
            self.deep_filters.setVisible(bool(layers))
            self._draw_deep_filters()
        if self._lcn_widget.isVisible() and "lcn_before" in a:
            b, af = a["lcn_before"], a["lcn_after"]
            self.lcn.set_rows([b, af], b.shape[1:], labels=["before", "after"])
            self.lcn_note.setText(a.get("lcn_note", ""))

    def _show_evaluation(self, a: dict, names: list, h: int, w: int) -> None:
        """The views that change only with an evaluation: confusion matrix and misclassified examples."""
        self.confusion.set_counts(a["confusion"], names)
        if "misclassified" in a:
            imgs = [display_image(m) for m in a["misclassified"]]
            texts = [f"{names[t] if t < len(names) else t}→{names[p] if p < len(names) else p}"
                     for t, p in zip(a["misclassified_true"], a["misclassified_pred"])]
            shape = imgs[0].shape[:2] if imgs else (h, w)
            grey = np.asarray([i if i.ndim == 2 else i.mean(2) for i in imgs]) if imgs else np.zeros((0, h, w))
            self.misclassified.set_labelled(grey, shape, texts)
            self.misclassified.title.setText(f"Misclassified held-out examples: {len(a['misclassified_true'])}"
                                             f"{'+' if len(imgs) >= 32 else ''} of {a['heldout_evaluated']}")

    def _show_unit(self, a: dict) -> None:
        if "unit" not in a:
            self.input_view.set_box(None)
            self.input_view.set_heat(None)
            self.maps.mark_unit(None)
            self.unit_label.setText("")
            return
        layer, ch, y, x = (int(v) for v in a["unit"])
        row = self._feature_index.index(layer) if layer in self._feature_index else None
        if row is not None:
            self.maps.mark_unit(row, ch, y, x)
            size, jump, offset = self._geometry[row]
            top, left = offset + y * jump, offset + x * jump
            outer = (top, left, top + size - 1, left + size - 1)
        else:
            outer, size, jump = None, 0, 0
        self.input_view.set_box(a["rf_box"].tolist(), outer)
        self.input_view.set_heat(a["erf"])
        top, left, bottom, right = a["rf_box"].tolist()
        erf = np.asarray(a["erf"])
        inside = erf[top:bottom + 1, left:right + 1].sum() / max(float(erf.sum()), 1e-30)
        self.unit_label.setText(
            f"Unit: {a['unit_layer']}, map {ch}, position ({y}, {x}). Receptive field {size}×{size} pixels "
            f"(jump {jump}); on the image: rows {top}–{bottom}, columns {left}–{right}. Effective field: {inside:.0%} of "
            f"|∂unit/∂input| inside the box.")

    def _draw_deep_filters(self) -> None:
        a = self._snap_arrays
        if a is None or not a.get("deep_filters"):
            return
        i = max(0, self.deep_layer.currentIndex())
        wts = a["deep_filters"][min(i, len(a["deep_filters"]) - 1)]
        oc, ic, k, _ = wts.shape  # one row per input map, one column per output map: wide, like the dock
        self.deep_filters.set_images(wts.transpose(1, 0, 2, 3).reshape(ic * oc, k, k), (k, k), cols=oc)
