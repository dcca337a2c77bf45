"""Curve names at the curves' ends while a plot's legend is folded (:class:`CurveEndLabels`).

Why: a plot too short for its legend folds it into "≡ legend" (``legend.py``), which opens under the
pointer. At a projector nobody points: in presentation mode at 1366x768 the LSTM's loss plot showed an
orange and a red curve and no word of which was the LSTM and which the RNN trained beside it, the
lesson's point. A name written at the end of its curve, in its colour, says it without hiding the data.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from explorer.gui.widgets.views.legend import LEGEND_BRUSH
from explorer.gui.widgets.views.plotting import OFF_SCALE_LARGE_PT, OFF_SCALE_PT

END_LABEL_GAP_PX = 1.0  # between two names pushed apart


class EndLabel(pg.TextItem):
    """One curve's name, its bottom right corner at the curve's last point in view."""

    def __init__(self, text: str, colour):
        super().__init__(text, color=colour, anchor=(1.0, 1.0), fill=pg.mkBrush(*LEGEND_BRUSH))
        self.setZValue(14)
        self._large: bool | None = None
        self._heights: dict[bool, float] = {}  # in large type or not: a line's height, measured once
        self.set_large(False)

    def set_large(self, large: bool) -> None:
        if self._large is large:
            return
        self._large = large
        font = QtGui.QFont()
        font.setPointSizeF(OFF_SCALE_LARGE_PT if large else OFF_SCALE_PT)
        self.setFont(font)

    def height_in(self, large: bool) -> float:
        """The name's height in pixels in large type or not: measured once in each (a line's height does not
        change with its words), so that choosing one type at each redraw does not set the other and back."""
        if large not in self._heights:
            was = bool(self._large)
            self.set_large(large)
            self._heights[large] = self.textItem.boundingRect().height()
            self.set_large(was)
        return self._heights[large]


class CurveEndLabels(QtCore.QObject):
    """The names of a curve plot's prominent curves (not the thin per-step traces behind them) at their ends,
    shown while its legend is folded and not opened, pushed apart so that none covers another. A child of
    its plot widget, so that the window finds every one (presentation mode sets their type large)."""

    def __init__(self, plot: pg.PlotWidget):
        super().__init__(plot)
        self.plot = plot
        self.labels: dict[str, EndLabel] = {}
        self.large = False

    def keep_placed(self, legend, place) -> None:
        """Have ``place`` (the view's own, which knows its curves) name the curves again whenever the legend
        folds, unfolds or opens, the ranges move, or the plot takes another size (a paused run's plot, put in
        presentation mode's column, is resized without a redraw)."""
        legend.shown_changed = place
        vb = self.plot.getPlotItem().vb
        vb.sigRangeChanged.connect(place)
        vb.sigResized.connect(place)

    def set_large(self, large: bool) -> None:
        self.large = large
        for label in self.labels.values():
            label.set_large(large)

    def clear(self) -> None:
        for label in self.labels.values():
            self.plot.removeItem(label)
        self.labels.clear()

    def place(self, show: bool, curves: list[tuple[str, str, object, np.ndarray, np.ndarray, pg.ViewBox | None]],
              log_y: bool, top_px: float = 0.0) -> None:
        """``curves``: (key, name, colour, steps, values, the view box of a right axis or None) of the curves to
        name; ``show`` False hides every name (the legend is in sight); ``top_px``: room kept free at the top
        (the legend's chip, "≡ legend", in the top right corner). A plot too short for every name below the chip
        takes the usual type instead of presentation mode's large type, and names only the first of ``curves``
        that fit if it is shorter still (large type in a 70 px plot covered the chip)."""
        if not show:
            for label in self.labels.values():
                label.hide()
            return
        vb = self.plot.getPlotItem().vb
        (x0, x1), (y0, y1) = vb.viewRange()
        ends = []
        for key, name, colour, xs, ys, right in curves:
            end = _last_in_view(xs, ys, x0, x1, log_y and right is None)
            if end is None:
                continue
            x, y = end
            if right is not None:  # read on the right axis: where that point lies in the main view
                p = vb.mapSceneToView(right.mapViewToScene(QtCore.QPointF(x, y)))
                x, y = p.x(), p.y()
            label = self.labels.get(key)
            if label is None:
                label = self.labels[key] = EndLabel(name, colour)
                label.set_large(self.large)
                self.plot.addItem(label, ignoreBounds=True)
            elif label.toPlainText() != name:
                label.setText(name)
            label.setColor(colour)  # (a series may take another colour)
            ends.append([min(max(y, y0), y1), min(x, x1), label])
        named = {id(e[2]) for e in ends}
        for label in self.labels.values():
            label.setVisible(id(label) in named)
        if not ends:
            return
        px_h = vb.viewPixelSize()[1]
        if not px_h > 0:
            return
        room = (y1 - y0) - top_px * px_h
        large = self.large and sum(_heights(ends, px_h, True)) <= room  # presentation's large type where it fits
        heights = _heights(ends, px_h, large)
        for end in ends:
            end[2].set_large(large)
        kept = 0  # (the names left out are in the legend, which opens from its chip)
        while kept < len(ends) and sum(heights[:kept + 1]) <= room:
            kept += 1
        for _y, _x, label in ends[kept:]:
            label.hide()
        ends, heights = ends[:kept], heights[:kept]
        order = sorted(range(len(ends)), key=lambda i: -ends[i][0])  # top first
        # each name's bottom at its curve's end, below the top edge (and the chip) and the name above it ...
        top = y1 - top_px * px_h
        for i in order:
            ends[i][0] = min(ends[i][0], top - heights[i])
            top = ends[i][0]
        # ... and above the bottom edge (from the bottom up, pushing the names above it up as needed)
        floor = y0
        for i in reversed(order):
            ends[i][0] = max(ends[i][0], floor)
            floor = ends[i][0] + heights[i]
        for y, x, label in ends:
            label.setPos(x, y)


def _heights(ends: list, px_h: float, large: bool) -> list[float]:
    """The names' heights in the view's units (with the gap between two), in large type or not."""
    return [(end[2].height_in(large) + END_LABEL_GAP_PX) * px_h for end in ends]


def prominent_curves(items: dict, data: dict, legend, right: pg.ViewBox | None = None,
                     right_keys: set | frozenset = frozenset()) -> list:
    """What :meth:`CurveEndLabels.place` names of a view's curves ``items`` (key -> PlotDataItem) drawn with
    ``data`` (key -> (steps, values)): those in sight, drawn wider than 1 px or with symbols (a thin per-step
    trace is the noise behind them), each by its name in ``legend``."""
    names = {id(sample.item): label.text for sample, label in legend.items}
    curves = []
    for key, item in items.items():
        pen = item.opts["pen"]
        pen = pg.mkPen(pen) if pen is not None else None
        thin = pen is None or pen.style() == QtCore.Qt.PenStyle.NoPen or pen.widthF() <= 1.0
        if key not in data or not item.isVisible() or (thin and item.opts.get("symbol") is None):
            continue
        colour = pen.color() if not thin else pg.mkColor(item.opts.get("symbolBrush") or "w")
        xs, ys = data[key]
        curves.append((key, names.get(id(item), item.opts.get("name") or key), colour, xs, ys,
                       right if key in right_keys else None))
    return curves


def _last_in_view(xs: np.ndarray, ys: np.ndarray, x0: float, x1: float, log: bool) -> tuple[float, float] | None:
    """A curve's last point with a finite value at a step in view (log10 of it on a log axis), or None."""
    if len(xs) == len(ys) + 1:  # a step curve's bin edges: its values at the bins' middles
        xs = (np.asarray(xs[:-1]) + np.asarray(xs[1:])) / 2
    if not len(xs) or len(xs) != len(ys):
        return None
    k = int(np.searchsorted(xs, x1, side="right")) - 1
    for i in range(k, max(k - 64, -1), -1):  # (a few NaN steps back at most: a diverged run's tail)
        x, y = float(xs[i]), float(ys[i])
        if x < x0:
            return None
        if math.isfinite(y) and (not log or y > 0):
            return x, (math.log10(y) if log else y)
    return None


def chip_room(legend) -> float:
    """The height in pixels a folded legend's chip takes at the top of its plot, the gap above it included (0
    when it is not there)."""
    chip = getattr(legend, "chip", None)
    if chip is None or not chip.isVisible():
        return 0.0
    return chip.mapRectToParent(chip.boundingRect()).bottom() + 2.0  # (its parent: the plot's view box)


__all__ = ["CurveEndLabels", "EndLabel", "chip_room", "prominent_curves"]
