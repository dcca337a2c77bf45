"""Views for per-pixel class maps (segmentation): a class palette, a legend, and an overlay mosaic.

The palette is the Okabe-Ito set (distinct for colour-blind viewers, saturated enough for a
projector); class 0 (background) is left uncoloured in overlays. Composition is plain numpy on the
GUI thread from snapshot arrays: class maps blended over the grey image with an opacity, true-class
outlines, and error maps. The overlay view keeps its last arrays, so moving the opacity slider or
toggling the outline redraws at once, also while training is paused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.widgets.views import _ViewFrame

# class 0 first (background: dark slate in a plain class map, untinted in an overlay)
CLASS_PALETTE = ("#3b4252", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#CC79A7", "#D55E00", "#0072B2",
                 "#ffffff", "#999999")
OUTLINE_COLOUR = "#ffffff"
ERROR_COLOUR = "#ff3b30"
GAP_COLOUR = "#15181d"


def _rgb(hex_colour: str) -> np.ndarray:
    c = QtGui.QColor(hex_colour)
    return np.array([c.red(), c.green(), c.blue()], dtype=np.float32)


def palette_rgb(n_classes: int) -> np.ndarray:
    """(n_classes, 3) float32 colours 0..255 (the palette repeats beyond its length)."""
    return np.stack([_rgb(CLASS_PALETTE[k % len(CLASS_PALETTE)]) for k in range(n_classes)])


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) grey in [0, 1] or (H, W, 3) RGB in [0, 1] as (H, W, 3) float32 0..255."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.clip(a, 0.0, 1.0) * 255.0


def colorize(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """A class map (H, W) as colours (H, W, 3) float32, background included."""
    pal = palette_rgb(max(n_classes, int(np.max(labels)) + 1 if np.size(labels) else 1))
    return pal[np.asarray(labels, dtype=np.int64)]


def blend(image: np.ndarray, labels: np.ndarray, opacity: float, n_classes: int) -> np.ndarray:
    """The class map over the image: each non-background pixel mixes (1 - opacity) image + opacity colour."""
    base = grey_rgb(image)
    lab = np.asarray(labels, dtype=np.int64)
    col = colorize(lab, n_classes)
    a = np.where(lab > 0, float(opacity), 0.0)[:, :, None]
    return base * (1.0 - a) + col * a


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another class (and those neighbours): the outlines."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, dtype=bool)
    dx = lab[:, 1:] != lab[:, :-1]
    dy = lab[1:, :] != lab[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge


def outline_of_objects(labels: np.ndarray) -> np.ndarray:
    """Boundary pixels that belong to an object (class > 0): a one-pixel line on the object's edge."""
    lab = np.asarray(labels)
    return boundaries(lab) & (lab > 0)


def error_rgb(image: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The image dimmed, with wrongly labelled pixels in red."""
    out = grey_rgb(image) * 0.35
    wrong = np.asarray(pred) != np.asarray(truth)
    out[wrong] = _rgb(ERROR_COLOUR)
    return out


def tile_rgb(rows: Sequence[Sequence[np.ndarray]], pad: int = 1) -> np.ndarray:
    """Rows of equally sized (H, W, 3) tiles as one uint8 image with ``pad``-pixel gaps."""
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    out = np.empty((len(rows) * (h + pad) - pad, n_cols * (w + pad) - pad, 3), np.float32)
    out[:] = _rgb(GAP_COLOUR)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            out[i * (h + pad): i * (h + pad) + h, j * (w + pad): j * (w + pad) + w] = tile
    return np.clip(out, 0, 255).astype(np.uint8)


class ClassLegend(QtWidgets.QWidget):
    """A row of colour swatches with class names."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QtWidgets.QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(10)
        self._names: list[str] = []

    def set_classes(self, names: Sequence[str]) -> None:
        names = list(names)
        if names == self._names:
            return
        self._names = names
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for k, name in enumerate(names):
            colour = CLASS_PALETTE[k % len(CLASS_PALETTE)]
            lab = QtWidgets.QLabel(f"<span style='color:{colour}; font-size:16pt'>■</span> {name}")
            lab.setObjectName("classLegendEntry")
            self._layout.addWidget(lab)
        self._layout.addStretch(1)

    def names(self) -> list[str]:
        return list(self._names)


class SegmentationView(_ViewFrame):
    """Probe images against kinds of picture chosen by the caller from: the image, the predicted class
    map blended over it (opacity slider), the true map, the error map. The true outline can be drawn
    over the prediction. ``set_data`` takes snapshot arrays; controls redraw from the kept arrays.

    The kinds are rows (labelled on the left) or, where that draws the tiles larger, columns (labelled
    on top): the side-by-side FCN's six kinds of four probes filled a wide, short place as a tall,
    narrow block, its tiles 57 px at 1600x1000.
    """

    LABEL_W = 2.6   # room for the row labels, in tile widths
    LABEL_H = 1.2   # room for the column labels (two lines), in tile heights
    SWITCH = 1.1    # the other layout must draw the tiles this much larger before the view turns

    sigOptionsChanged = QtCore.Signal()

    def __init__(self, title: str, caption: str = "", *, opacity: float = 0.6, parent=None):
        super().__init__(title, caption, parent)
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("Opacity"))
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setObjectName("overlayOpacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(opacity * 100)))
        self.opacity.setMinimumWidth(90)  # (a narrow dock squeezed it to a few pixels, which no mouse can use)
        self.opacity.setMaximumWidth(220)
        self.opacity.setToolTip("How strongly the predicted class colours cover the image (0: image only)")
        self.opacity_value = QtWidgets.QLabel(f"{opacity:.0%}")
        self.opacity_value.setMinimumWidth(40)
        controls.addWidget(self.opacity)
        controls.addWidget(self.opacity_value)
        self.outline = QtWidgets.QCheckBox("Ground-truth outline")
        self.outline.setObjectName("overlayOutline")
        self.outline.setChecked(True)
        self.outline.setToolTip("Draw the true objects' edges (white) over the predictions")
        controls.addSpacing(12)
        controls.addWidget(self.outline)
        controls.addSpacing(12)
        self.legend = ClassLegend()
        controls.addWidget(self.legend, 1)
        self._layout.addLayout(controls)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.viewbox = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.viewbox.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.viewbox.addItem(self.image)
        self._labels: list[pg.TextItem] = []
        self._label_key: tuple = ()
        self._data: dict | None = None
        self.kinds_in_columns = False
        self.updates = 0
        self._set_body(self.graphics)
        self.opacity.valueChanged.connect(self._on_options)
        self.outline.toggled.connect(self._on_options)

    def _on_options(self, *_args) -> None:
        self.opacity_value.setText(f"{self.opacity.value()}%")
        self.redraw()
        self.sigOptionsChanged.emit()

    def set_data(self, images: np.ndarray, truth: np.ndarray, rows: Sequence[tuple[str, str, np.ndarray | None]],
                 class_names: Sequence[str]) -> None:
        """``rows``: (label, kind, class map) with kind "image", "overlay" (a class map blended over the
        image, with the outline option), "truth" (the true map blended) or "error" (class map vs truth)."""
        self._data = {"images": np.asarray(images), "truth": np.asarray(truth), "rows": list(rows),
                      "names": list(class_names)}
        self.legend.set_classes(class_names)
        self.redraw()

    def _scales(self) -> tuple[float, float]:
        """How large a tile would be drawn (pixels per image pixel) with the kinds as rows, and as columns."""
        d = self._data
        n_kinds, (n_probes, h, w) = len(d["rows"]), d["images"].shape[:3]
        W, H = max(1, self.graphics.width()), max(1, self.graphics.height())
        rows = min(W / (n_probes * (w + 1) + self.LABEL_W * w), H / (n_kinds * (h + 1)))
        cols = min(W / (n_kinds * (w + 1)), H / (n_probes * (h + 1) + self.LABEL_H * h))
        return rows, cols

    def _label_font(self) -> QtGui.QFont:
        font = QtGui.QFont(self.font())
        font.setPointSize(11)
        font.setBold(True)
        return font

    def _choose_layout(self) -> bool:
        rows, cols = self._scales()
        # a column's label sits above it, a word a line: its longest word must fit the tile's width
        words = [word for label, _kind, _l in self._data["rows"] for word in label.split()]
        widest = max((QtGui.QFontMetrics(self._label_font()).horizontalAdvance(word) for word in words), default=0)
        if cols * self._data["images"].shape[2] < widest + 6:
            return False
        if self.kinds_in_columns:
            return not rows > cols * self.SWITCH
        return cols > rows * self.SWITCH

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if self._data is not None and self._choose_layout() != self.kinds_in_columns:
            self.redraw()

    def kind_tiles(self, kind: int) -> list[np.ndarray]:
        """The probes' tiles of one kind (``set_data``'s rows order) as drawn now, whichever the layout."""
        pic = self.current_image()
        h, w = self._data["images"].shape[1:3]
        n = len(self._data["images"])
        if self.kinds_in_columns:
            return [pic[p * (h + 1): p * (h + 1) + h, kind * (w + 1): kind * (w + 1) + w] for p in range(n)]
        return [pic[kind * (h + 1): kind * (h + 1) + h, p * (w + 1): p * (w + 1) + w] for p in range(n)]

    def compose(self) -> np.ndarray | None:
        """The current picture (uint8 RGB) from the kept arrays and the controls."""
        d = self._data
        if d is None:
            return None
        k = len(d["names"])
        a = self.opacity.value() / 100.0
        outline = self.outline.isChecked()
        white = _rgb(OUTLINE_COLOUR)
        rows = []
        for _label, kind, labels in d["rows"]:
            tiles = []
            for i, img in enumerate(d["images"]):
                truth = d["truth"][i]
                if kind == "image":
                    t = grey_rgb(img)
                elif kind == "truth":
                    t = blend(img, truth, max(a, 0.6), k)
                elif kind == "error":
                    t = error_rgb(img, labels[i], truth)
                else:
                    t = blend(img, labels[i], a, k)
                    if outline:
                        t[outline_of_objects(truth)] = white
                tiles.append(t)
            rows.append(tiles)
        if self.kinds_in_columns:
            rows = [list(probe) for probe in zip(*rows)]
        return tile_rgb(rows)

    def redraw(self) -> None:
        if self._data is None:
            return
        self.kinds_in_columns = self._choose_layout()
        pic = self.compose()
        first = self.image.image is None or self.image.image.shape != pic.shape
        self.image.setImage(pic, autoLevels=False, levels=(0, 255))
        labels = [label for label, _kind, _l in self._data["rows"]]
        h, w = self._data["images"].shape[1:3]
        key = (tuple(labels), self.kinds_in_columns, h, w)
        if key != self._label_key:
            self._label_key = key
            for t in self._labels:
                self.viewbox.removeItem(t)
            self._labels = []
            for i, text in enumerate(labels):
                if self.kinds_in_columns:  # above its column, a word a line ("errors,", "without"), centred
                    item = pg.TextItem(text.replace(" ", "\n"), color="#d8dee9", anchor=(0.5, 1.0))
                    item.textItem.document().setDefaultTextOption(QtGui.QTextOption(QtCore.Qt.AlignmentFlag.AlignHCenter))
                    item.setPos(i * (w + 1) + w / 2, -1.0)
                else:  # left of its row
                    item = pg.TextItem(text, color="#d8dee9", anchor=(1.0, 0.5))
                    item.setPos(-1.5, i * (h + 1) + h / 2)
                item.setFont(self._label_font())
                self.viewbox.addItem(item)
                self._labels.append(item)
            first = True
        if first:
            if self.kinds_in_columns:
                self.viewbox.setRange(xRange=(0, pic.shape[1]), yRange=(-self.LABEL_H * h, pic.shape[0]), padding=0.02)
            else:
                self.viewbox.setRange(xRange=(-self.LABEL_W * w, pic.shape[1]), yRange=(0, pic.shape[0]), padding=0.02)
        self.updates += 1

    def current_image(self) -> np.ndarray | None:
        return None if self.image.image is None else np.array(self.image.image)


def upsample_nearest(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) -> (height, width) by repeating pixels (integer factors; else nearest index)."""
    h, w = a.shape
    rows = (np.arange(height) * h // height)
    cols = (np.arange(width) * w // width)
    return a[rows][:, cols]


def feature_rows(maps: Sequence[np.ndarray], height: int, width: int) -> tuple[np.ndarray, int]:
    """Feature maps of several layers (each (C_i, h_i, w_i)) as rows of tiles at one size, each tile
    scaled to [0, 1] on its own: (n_rows * cols, height * width) flat tiles and the column count.
    Missing tiles in short rows are NaN (drawn transparent)."""
    cols = max((m.shape[0] for m in maps), default=1)
    out = np.full((len(maps) * cols, height * width), np.nan, np.float32)
    for r, m in enumerate(maps):
        for c in range(m.shape[0]):
            t = upsample_nearest(np.asarray(m[c], np.float32), height, width)
            lo, hi = float(np.min(t)), float(np.max(t))
            out[r * cols + c] = ((t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)).reshape(-1)
    return out, cols


__all__ = ["CLASS_PALETTE", "palette_rgb", "colorize", "blend", "boundaries", "outline_of_objects", "error_rgb",
           "tile_rgb", "ClassLegend", "SegmentationView", "feature_rows", "upsample_nearest"]
