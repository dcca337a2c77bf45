"""Views for sequences: a unit x time heatmap whose rows can be clicked, curves against time, and text
coloured character by character by one unit's activation.

Like the views in the ``views`` package they create their items once and update them in place.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.widgets.views import HeatmapView, RangeKeeper, _ViewFrame, add_legend, monospace_font, plot_widget
from explorer.gui.widgets.views.endlabels import CurveEndLabels, chip_room, prominent_curves


class UnitHeatmapView(HeatmapView):
    """A (unit x time) heatmap; clicking a row selects that unit (``sigUnitClicked``), a line marks it."""

    sigUnitClicked = QtCore.Signal(int)

    def __init__(self, title: str, caption: str = "", **kw):
        kw.setdefault("xlabel", "time step t")
        kw.setdefault("ylabel", "unit")
        super().__init__(title, caption, **kw)
        self.marker = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#ffffff", width=1.5,
                                                                           style=QtCore.Qt.PenStyle.DashLine))
        self.marker.setZValue(10)
        self.marker.hide()
        self.plot.addItem(self.marker)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.n_rows = 0

    def set_matrix(self, m: np.ndarray, first_row: float = 0.0) -> None:
        self.n_rows = int(np.asarray(m).shape[0])
        super().set_matrix(m, first_row)

    def row_at(self, scene_pos: QtCore.QPointF) -> int | None:
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        row = int(np.floor(p.y()))
        return row if 0 <= row < self.n_rows else None

    def row_scene_pos(self, row: int, col: float = 0.5) -> QtCore.QPointF:
        """Where row ``row`` is on the scene (for tests that click like a user)."""
        return self.plot.getPlotItem().vb.mapViewToScene(QtCore.QPointF(col, row + 0.5))

    def _on_click(self, event) -> None:
        row = self.row_at(event.scenePos())
        if row is not None:
            self.sigUnitClicked.emit(row)

    def mark_row(self, row: int | None) -> None:
        if row is None or row >= max(self.n_rows, 1):
            self.marker.hide()
        else:
            self.marker.setPos(row + 0.5)
            self.marker.show()


class TraceView(_ViewFrame):
    """Named curves against a shared x axis (time step, distance...), replaced as a whole on each update."""

    def __init__(self, title: str, caption: str = "", *, xlabel: str = "time step t", ylabel: str = "",
                 logy: bool = False, parent=None):
        super().__init__(title, caption, parent)
        self.plot = plot_widget()
        self.plot.setMenuEnabled(True)
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLogMode(False, logy)
        self.legend = add_legend(self.plot)
        self.end_labels = CurveEndLabels(self.plot)  # the curves' names at their ends while the legend is folded
        self.end_labels.keep_placed(self.legend, self._place_end_labels)
        self._items: dict[str, pg.PlotDataItem] = {}
        self.updates = 0
        self._set_body(self.plot)
        self.ranges = RangeKeeper(self.plot, grow_x=False)  # x: the data's extent; y moves only when needed
        self._raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # as set (getData() is log-mapped, reduced)

    def add_series(self, key: str, label: str, color: str, width: float = 2.0, style=None, symbol=None,
                   step: bool = False, fill: bool = False) -> None:
        pen = None if width == 0 else pg.mkPen(color=color, width=width,
                                               style=style or QtCore.Qt.PenStyle.SolidLine)
        kw = {}
        if step:
            kw["stepMode"] = "center"
        if fill:
            c = QtGui.QColor(color)
            c.setAlpha(50)
            kw.update(fillLevel=0, brush=c)
        item = self.plot.plot([], [], pen=pen, name=label, symbol=symbol, symbolSize=7, symbolBrush=color,
                              symbolPen=None, **kw)
        if pen is not None and width > 1 and pen.style() == QtCore.Qt.PenStyle.SolidLine:
            # as CurveView's: Qt outlines a wide antialiased polyline as one self-crossing path first; as
            # separate segments a probe's 50 noisy values paint in half the time (4.2 ms instead of 7.8 at
            # 2 px), and the LSTM panel's traces repaint with every snapshot
            item.curve.setSegmentedLineMode("on")
        self._items[key] = item

    def set_series(self, key: str, x: Sequence[float], y: Sequence[float]) -> None:
        item = self._items[key]
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if item.opts.get("stepMode") and len(x) == len(y) and len(y):
            # step curves want the bin edges: one more x than y
            dx = x[1] - x[0] if len(x) > 1 else 1.0
            x = np.append(x - dx / 2, x[-1] + dx / 2)
        item.setData(x, y)
        self._raw[key] = (x, y)

    def set_label(self, key: str, label: str) -> None:
        """Rename a series in the legend (e.g. to add a figure that changes)."""
        self.legend.relabel(self._items[key], label)

    def clear_series(self, key: str) -> None:
        self._items[key].setData([], [])
        self._raw.pop(key, None)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._items[key].getData()
        return (np.array([]) if x is None else np.asarray(x)), (np.array([]) if y is None else np.asarray(y))

    def done(self) -> None:
        """All series of this update are set: fit the ranges (rarely moved, so the axes rarely repaint)."""
        data = [self._raw[k] for k in self._items if k in self._raw and len(self._raw[k][0])]
        self.ranges.fit([x for x, _ in data], [y for _, y in data])
        self.legend.place()
        self._place_end_labels()
        self.updates += 1

    def _place_end_labels(self, *_args) -> None:
        """As CurveView's: the curves named at their ends while the legend is folded and not opened."""
        show = self.legend.folded and not self.legend.isVisible()
        curves = prominent_curves(self._items, self._raw, self.legend) if show else []
        self.end_labels.place(show, curves, bool(self.plot.getPlotItem().getAxis("left").logMode),
                              chip_room(self.legend))


def _diverging(v: float) -> tuple[int, int, int]:
    """-1 -> blue, 0 -> the dark background, +1 -> red."""
    v = float(np.clip(v, -1.0, 1.0))
    bg = np.array([0x15, 0x18, 0x1D], dtype=float)
    pos = np.array([0xE0, 0x5A, 0x4F], dtype=float)
    neg = np.array([0x4F, 0x9D, 0xE0], dtype=float)
    c = bg + (pos - bg) * v if v >= 0 else bg + (neg - bg) * (-v)
    return int(c[0]), int(c[1]), int(c[2])


def coloured_html(text: str, values: Sequence[float], scale: float) -> str:
    """``text`` as HTML, each character on a background coloured by its value / ``scale`` (diverging)."""
    parts = []
    for ch, v in zip(text, values):
        r, g, b = _diverging(v / scale if scale > 0 else 0.0)
        if ch == "\n":
            parts.append(f'<span style="background-color:rgb({r},{g},{b})">&#8629;</span><br>')
            continue
        shown = "&nbsp;" if ch == " " else ("&nbsp;&nbsp;&nbsp;&nbsp;" if ch == "\t" else html.escape(ch))
        parts.append(f'<span style="background-color:rgb({r},{g},{b})">{shown}</span>')
    return ('<div style="font-family:monospace; color:#e5e9f0; white-space:pre-wrap">'
            + "".join(parts) + "</div>")


class ColouredTextView(_ViewFrame):
    """Characters on backgrounds coloured by one unit's activation at that character (red +, blue -)."""

    def __init__(self, title: str, caption: str = "", parent=None):
        super().__init__(title, caption, parent)
        self.text = QtWidgets.QTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(monospace_font(11))
        self.text.setLineWrapMode(QtWidgets.QTextEdit.LineWrapMode.WidgetWidth)
        self.text.setStyleSheet("QTextEdit { background: #15181d; }")
        self.updates = 0
        self.values: np.ndarray = np.zeros(0)
        self._set_body(self.text)

    def set_values(self, text: str, values: Sequence[float], scale: float = 1.0) -> None:
        self.values = np.asarray(values, dtype=float)
        self.text.setHtml(coloured_html(text, self.values, scale))
        self.updates += 1

    def show_hint(self, text: str) -> None:
        self.text.setPlainText(text)

    def plain_text(self) -> str:
        return self.text.toPlainText()
