"""BarView (one bar per category) and ScatterView (2-D points coloured by label), with their colours."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from explorer.gui.widgets.views.frame import _ViewFrame
from explorer.gui.widgets.views.legend import add_legend
from explorer.gui.widgets.views.plotting import plot_widget

VALUE_HEADROOM = 0.2  # a bar chart's range reaches this share above its tallest bar, for the value on it
VALUE_INSIDE = 0.7    # bars at least this share of the range tall carry their value inside their top
VALUE_TEXT, VALUE_ON_BAR = "#e5e9f0", "#2e3440"


class BarView(_ViewFrame):
    """One bar per category (e.g. per layer), updated in place."""

    def __init__(self, title: str, caption: str = "", *, xlabel: str = "", ylabel: str = "", y_range=(0.0, 1.0),
                 colour: str = "#88c0d0", value_format: str | None = None, parent=None):
        super().__init__(title, caption, parent)
        self.value_format = value_format  # e.g. "{:.0f}" for counts; default: a share as %, else 3 digits
        self.plot = plot_widget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.plot.showGrid(y=True, alpha=0.15)
        self.y_range = y_range
        if y_range is not None:
            lo, hi = y_range
            self.plot.setYRange(lo, hi + VALUE_HEADROOM * (hi - lo), padding=0.02)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=colour, pen=None)
        self.plot.addItem(self.bars)
        self._labels: list[pg.TextItem] = []
        self._n = -1
        self.updates = 0
        self._set_body(self.plot)

    def set_values(self, values, labels=None) -> None:
        values = np.asarray(values, dtype=float)
        x = np.arange(1, len(values) + 1)
        self.bars.setOpts(x=x, height=values)
        if len(values) != self._n:
            self._n = len(values)
            ticks = [(int(i), str(lab)) for i, lab in zip(x, labels if labels is not None else x)]
            self.plot.getAxis("bottom").setTicks([ticks])
            self.plot.setXRange(0.4, len(values) + 0.6, padding=0)
            for t in self._labels:
                self.plot.removeItem(t)
            self._labels = [pg.TextItem("", color=VALUE_TEXT, anchor=(0.5, 1.0)) for _ in values]
            for t in self._labels:
                self.plot.addItem(t)
        if self.y_range is not None:
            top = float(self.y_range[1])
        else:
            top = max(float(values.max()), 0.0) if len(values) and np.isfinite(values).all() else 0.0
            top = top or 1.0
            self.plot.setYRange(min(float(np.nanmin(values, initial=0.0)), 0.0), top * (1.0 + VALUE_HEADROOM),
                                padding=0.02)
        for t, xi, v in zip(self._labels, x, values):  # the value on each bar: a 0 is visible too
            t.setText(self.value_format.format(v) if self.value_format
                      else (f"{v:.0%}" if 0 <= v <= 1 else f"{v:.3g}"))
            # above a bar, or inside the top of a tall one: a short plot has no room above it
            inside = v >= VALUE_INSIDE * top
            t.setAnchor((0.5, 0.0) if inside else (0.5, 1.0))
            t.setColor(VALUE_ON_BAR if inside else VALUE_TEXT)
            t.setPos(float(xi), float(v))
        self.updates += 1


def ordered_colours(n: int) -> list[str]:
    """``n`` colours in order, from purple to yellow (matplotlib's plasma, its darkest part left out for a
    dark background): for series that have an order, such as the layers of a network, so the order shows
    in the colours and no two look alike (a repeating palette gave layers 1 and 7 two similar blues)."""
    cmap = pg.colormap.get("plasma")
    stops = np.linspace(0.3, 0.95, n) if n > 1 else np.array([0.6])
    return [cmap.map(float(t), mode="qcolor").name() for t in stops]


LABEL_COLOURS = ("#4fc3f7", "#ffb74d", "#a3be8c", "#bf616a", "#b48ead", "#ebcb8b", "#88c0d0", "#d08770",
                 "#e5e9f0", "#5e81ac")


class ScatterView(_ViewFrame):
    """Points in 2-D coloured by class label (e.g. a 2-unit code layer), one item updated in place."""

    def __init__(self, title: str, caption: str = "", *, xlabel: str = "", ylabel: str = "", parent=None):
        super().__init__(title, caption, parent)
        self.plot = plot_widget()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.plot.addItem(self.scatter)
        self.legend = add_legend(self.plot)
        self._brushes = [pg.mkBrush(c) for c in LABEL_COLOURS]
        self._legend_labels: tuple = ()
        self.hint = pg.TextItem("", color="#9aa5b5", anchor=(0.5, 0.5))
        self.plot.addItem(self.hint)
        self.updates = 0
        self._set_body(self.plot)

    def set_points(self, xy: np.ndarray, labels: np.ndarray | None = None) -> None:
        xy = np.asarray(xy, dtype=float)
        self.hint.setText("")
        if labels is None:
            self.scatter.setData(pos=xy, brush=self._brushes[0])
        else:
            labels = np.asarray(labels, dtype=int)
            self.scatter.setData(pos=xy, brush=[self._brushes[int(label) % len(self._brushes)] for label in labels])
            present = tuple(sorted(set(labels.tolist())))
            if present != self._legend_labels:  # one legend entry per class, made once
                self.legend.clear()
                for lab in present:
                    self.legend.addItem(pg.ScatterPlotItem(brush=self._brushes[lab % len(self._brushes)], pen=None,
                                                           size=8), str(lab))
                self._legend_labels = present
        self.updates += 1

    def show_hint(self, text: str) -> None:
        self.scatter.setData([], [])
        self.hint.setText(text)
        self.hint.setPos(0.5, 0.5)
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1))
