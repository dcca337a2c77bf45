"""Feature maps of a stack of image layers, one mosaic row per layer, with clickable units; and the input
they came from, with a receptive field drawn on it.

``FeatureMapStack.set_maps(names, maps)``: ``maps[i]`` is layer i's output (C, H, W) for one input.
Each layer is one image item (its C maps tiled, at most ``cols`` per row), scaled per layer so the
maps of one layer compare with each other. A click on a unit emits ``sigUnitClicked(row, channel, y, x)``
(row = position in ``names``); ``mark_unit`` outlines it. Rows are rebuilt only when the layers change.

``InputView`` shows one input (grey or RGB), a box (e.g. a theoretical receptive field, solid where
it lies on the image, dashed where it reaches into the padding) and a heat overlay (e.g. |d unit / d input|).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.widgets.hover import HoverReadout, esc, fmt
from explorer.gui.widgets.views import GAP, _lut

MARK_COLOUR = "#ffb74d"


def layer_mosaic(maps: np.ndarray, cols: int) -> tuple[np.ndarray, int]:
    """Tile (C, H, W) maps into one array with 1-pixel NaN gaps, scaled into [0, 1] by the layer's range."""
    maps = np.asarray(maps, dtype=np.float32)
    c, h, w = maps.shape
    lo, hi = float(np.nanmin(maps)), float(np.nanmax(maps))
    scaled = (maps - lo) / (hi - lo) if hi > lo else np.zeros_like(maps)
    cols = max(1, min(cols, c))
    rows = int(math.ceil(c / cols))
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), GAP, dtype=np.float32)
    for i in range(c):
        r, k = divmod(i, cols)
        out[r * (h + 1): r * (h + 1) + h, k * (w + 1): k * (w + 1) + w] = scaled[i]
    return out, cols


class _ClickableViewBox(pg.ViewBox):
    sigClicked = QtCore.Signal(float, float)   # view coordinates

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph name)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            p = self.mapSceneToView(ev.scenePos())
            self.sigClicked.emit(p.x(), p.y())
            ev.accept()
        else:
            ev.ignore()


class FeatureMapStack(pg.GraphicsLayoutWidget):
    sigUnitClicked = QtCore.Signal(int, int, int, int)   # row (layer position), channel, y, x

    def __init__(self, cols: int = 16, colormap: str = "grey", parent=None, labels: bool = True):
        super().__init__(parent)
        self.setObjectName("featureMapStack")
        self.cols = int(cols)
        # each row's layer named beside it; without (one layer, named above the stack), the maps get the width
        self.labels = bool(labels)
        self._lut = _lut(colormap)
        self._structure: tuple = ()
        self.rows: list[dict] = []
        self._mark = QtWidgets.QGraphicsRectItem()
        self._mark.setPen(pg.mkPen(MARK_COLOUR, width=2, cosmetic=True))
        self._mark.setZValue(10)
        self._mark_row: int | None = None
        self._maps: list[np.ndarray] = []   # each layer's maps as given (the readout's values, unscaled)
        self.updates = 0
        # under the mouse: layer, channel, position and the activation there
        self.hover = HoverReadout(self, self, self._hover_info, self._hover_default)

    def set_hover_text(self, hover_text) -> None:
        """A panel's ``hover_text(info) -> str`` (None or "" falls back to the plain readout)."""
        self.hover.hover_text = hover_text
        self.hover.refresh()

    def _hover_info(self, scene_pos) -> dict | None:
        """``layer`` (name), ``row`` (position in the stack), ``channel``, ``y``, ``x`` and ``value``."""
        for row, r in enumerate(self.rows):
            vb = r["viewbox"]
            if not vb.sceneBoundingRect().contains(scene_pos) or row >= len(self._maps):
                continue
            p = vb.mapSceneToView(scene_pos)
            hit = self.unit_at(row, p.x(), p.y())
            if hit is None:
                return None
            ch, y, x = hit
            return {"view": self, "layer": r["name"], "row": row, "channel": ch, "y": y, "x": x,
                    "value": float(self._maps[row][ch, y, x])}
        return None

    def _hover_default(self, info: dict) -> str:
        return (f"layer <b>{esc(info['layer'])}</b>, channel <b>{info['channel']}</b>, "
                f"position (y {info['y']}, x {info['x']})<br>activation <b>{fmt(info['value'])}</b>")

    def unit_scene_pos(self, row: int, channel: int, y: int, x: int) -> QtCore.QPointF:
        """Scene point at the centre of a unit (for tests and scripted demos)."""
        return self.rows[row]["viewbox"].mapViewToScene(self.unit_position(row, channel, y, x))

    def set_columns(self, cols: int) -> None:
        """At most ``cols`` maps per mosaic row from the next ``set_maps`` on (one layer in a wide place wants
        more than a stack of layers does)."""
        cols = max(1, int(cols))
        if cols != self.cols:
            self.cols = cols
            self._structure = ()  # the rows are laid out afresh

    def set_maps(self, names: Sequence[str], maps: Sequence[np.ndarray], channels: Sequence[int] | None = None) -> None:
        """Show each layer's maps; ``channels[i]``: the layer's true channel count (maps may be capped)."""
        shapes = tuple(tuple(np.asarray(m).shape) for m in maps)
        structure = (tuple(names), shapes)
        if structure != self._structure:
            self._rebuild(names, shapes, channels)
            self._structure = structure
        for row, m in zip(self.rows, maps):
            mosaic, _ = layer_mosaic(m, self.cols)
            row["image"].setImage(mosaic, autoLevels=False, levels=(0.0, 1.0))
        self._maps = [np.asarray(m) for m in maps]
        self.updates += 1
        self.hover.refresh()

    def _rebuild(self, names, shapes, channels) -> None:
        if self._mark_row is not None and self._mark_row < len(self.rows):
            self.rows[self._mark_row]["viewbox"].removeItem(self._mark)
        self._mark_row = None
        self.clear()
        self.rows = []
        for i, (name, shape) in enumerate(zip(names, shapes)):
            c, h, w = shape
            total = int(channels[i]) if channels is not None else c
            shown = f"{c} of {total}" if total > c else f"{c}"
            label = None
            if self.labels:
                label = self.addLabel(f"<b>{name}</b><br>{shown} × {h}×{w}", row=i, col=0, justify="right")
                label.setMaximumWidth(self.label_px())
            vb = _ClickableViewBox(lockAspect=True, invertY=True, enableMouse=False)
            vb.setMenuEnabled(False)
            img = pg.ImageItem()
            img.setLookupTable(self._lut)
            vb.addItem(img)
            self.addItem(vb, row=i, col=1 if self.labels else 0)
            cols = max(1, min(self.cols, c))
            vb.sigClicked.connect(lambda x, y, i=i: self._clicked(i, x, y))
            n_rows = int(math.ceil(c / cols))
            vb.setRange(xRange=(0, cols * (w + 1) - 1), yRange=(0, n_rows * (h + 1) - 1), padding=0.02)
            self.rows.append({"name": name, "shape": shape, "cols": cols, "image": img, "viewbox": vb,
                              "label": label})
        self.ci.layout.setColumnStretchFactor(1 if self.labels else 0, 10)
        self._fit_rows()

    def label_px(self) -> int:
        """The row labels' width: a layer's name in bold in the widget's font (110 px cut "Conv2d #1" to
        "onv2d #1" in presentation mode's large type); 0 without labels."""
        if not self.labels:
            return 0
        font = self.font()
        font.setBold(True)
        return max(110, QtGui.QFontMetrics(font).horizontalAdvance("AvgPool2d #10") + 12)

    def _fit_rows(self) -> None:
        """Every row keeps its label's height: the stack is as tall as its rows need, and a scroll area
        around it reaches the deeper layers (squeezed into a short place, Conv2d #4 to AvgPool2d #6 of
        LeNet-5 were drawn outside the view at 1366x768, out of reach)."""
        for r in self.rows:
            if r["label"] is not None:
                r["label"].setMaximumWidth(self.label_px())
        least = self.ci.effectiveSizeHint(QtCore.Qt.SizeHint.MinimumSize).height() if self.rows else 0
        self.setMinimumHeight(int(math.ceil(least)) + 2 * self.frameWidth())

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().changeEvent(event)
        if event.type() == QtCore.QEvent.Type.FontChange:
            for r in self.rows:  # a label keeps the type it was made in (presentation mode's large type
                if r["label"] is not None:  # stayed after leaving it) and measures its text when it is set:
                    r["label"].item.setFont(self.font())  # in the new type, once more
                    r["label"].setText(r["label"].text)
            self._fit_rows()

    def unit_at(self, row: int, x: float, y: float) -> tuple[int, int, int] | None:
        """(channel, y, x) of the unit under view position (x, y) of ``row``'s mosaic, or None (a gap)."""
        c, h, w = self.rows[row]["shape"]
        cols = self.rows[row]["cols"]
        if x < 0 or y < 0:
            return None
        tc, ux = divmod(int(math.floor(x)), w + 1)
        tr, uy = divmod(int(math.floor(y)), h + 1)
        if ux >= w or uy >= h or tc >= cols:
            return None
        ch = tr * cols + tc
        return (ch, uy, ux) if ch < c else None

    def unit_position(self, row: int, channel: int, y: int, x: int) -> QtCore.QPointF:
        """View position of the centre of a unit (inverse of :meth:`unit_at`)."""
        c, h, w = self.rows[row]["shape"]
        tr, tc = divmod(channel, self.rows[row]["cols"])
        return QtCore.QPointF(tc * (w + 1) + x + 0.5, tr * (h + 1) + y + 0.5)

    def _clicked(self, row: int, x: float, y: float) -> None:
        hit = self.unit_at(row, x, y)
        if hit is not None:
            self.mark_unit(row, *hit)
            self.sigUnitClicked.emit(row, *hit)

    def mark_unit(self, row: int | None, channel: int = 0, y: int = 0, x: int = 0) -> None:
        """Outline one unit (None: no outline)."""
        if row is None or not 0 <= row < len(self.rows):
            self._mark.hide()
            return
        vb = self.rows[row]["viewbox"]
        if self._mark_row != row:
            if self._mark_row is not None:
                self.rows[self._mark_row]["viewbox"].removeItem(self._mark)
            vb.addItem(self._mark)
            self._mark_row = row
        p = self.unit_position(row, channel, y, x)
        self._mark.setRect(QtCore.QRectF(p.x() - 0.5, p.y() - 0.5, 1.0, 1.0))
        self._mark.show()

    def click_unit(self, row: int, channel: int, y: int, x: int) -> None:
        """What a mouse click on that unit does (for scripted demos and tests that bypass the mouse)."""
        p = self.unit_position(row, channel, y, x)
        self._clicked(row, p.x(), p.y())


class InputView(pg.GraphicsLayoutWidget):
    """One input image with an optional box and heat overlay, in image pixel coordinates."""

    def __init__(self, heat_colormap: str = "CET-L3", parent=None):
        super().__init__(parent)
        self.setObjectName("inputView")
        self.viewbox = self.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.viewbox.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.image.setLookupTable(_lut("grey"))
        self.heat = pg.ImageItem()
        self.heat.setZValue(5)
        self._heat_lut = pg.colormap.get(heat_colormap).getLookupTable(nPts=256, alpha=False)
        self.box = QtWidgets.QGraphicsRectItem()
        self.box.setPen(pg.mkPen(MARK_COLOUR, width=2.5, cosmetic=True))
        self.box.setZValue(10)
        self.outer = QtWidgets.QGraphicsRectItem()
        self.outer.setPen(pg.mkPen(MARK_COLOUR, width=1.5, style=QtCore.Qt.PenStyle.DashLine, cosmetic=True))
        self.outer.setZValue(9)
        for item in (self.image, self.heat, self.box, self.outer):
            self.viewbox.addItem(item)
        self.box.hide()
        self.outer.hide()
        self._shape: tuple = ()
        self.updates = 0

    def set_image(self, image: np.ndarray) -> None:
        """(H, W) grey or (H, W, 3) colour in [0, 1]."""
        a = np.ascontiguousarray(image, dtype=np.float32)
        self.image.setImage(a, autoLevels=False, levels=(0.0, 1.0))
        if a.shape[:2] != self._shape:
            self._shape = a.shape[:2]
            h, w = self._shape
            self.viewbox.setRange(xRange=(-2, w + 2), yRange=(-2, h + 2), padding=0.0)
        self.updates += 1

    def set_heat(self, heat: np.ndarray | None, opacity: float = 0.75) -> None:
        """Overlay ``heat`` (H, W) >= 0, scaled by its maximum; transparent where it is 0. None hides it."""
        if heat is None:
            self.heat.hide()
            return
        h = np.asarray(heat, dtype=np.float32)
        top = float(h.max()) if h.size else 0.0
        v = h / top if top > 0 else np.zeros_like(h)
        rgba = np.empty(h.shape + (4,), np.uint8)
        rgba[..., :3] = self._heat_lut[np.clip((v * 255).astype(int), 0, 255)]
        rgba[..., 3] = (np.sqrt(v) * 255 * opacity).astype(np.uint8)
        self.heat.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.heat.show()

    def set_box(self, box: Sequence[int] | None, outer: Sequence[int] | None = None) -> None:
        """``box`` = (top, left, bottom, right) inclusive pixels (drawn around them); ``outer``: the same,
        unclipped (dashed, e.g. where a receptive field reaches into the padding). None hides them."""
        for item, b in ((self.box, box), (self.outer, outer)):
            if b is None:
                item.hide()
                continue
            top, left, bottom, right = (float(v) for v in b)
            item.setRect(QtCore.QRectF(left, top, right - left + 1, bottom - top + 1))
            item.show()
        if outer is not None and box is not None and tuple(outer) == tuple(box):
            self.outer.hide()
