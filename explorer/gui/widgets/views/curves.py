"""CurveView: named series against training steps, one PlotDataItem per series updated in place."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from explorer.gui.widgets.hover import HoverReadout, HoverText, esc, fmt
from explorer.gui.widgets.views.endlabels import CurveEndLabels, chip_room, prominent_curves
from explorer.gui.widgets.views.frame import _ViewFrame
from explorer.gui.widgets.views.legend import LEGEND_BRUSH, add_legend
from explorer.gui.widgets.views.plotting import (
    CURVE_POINTS_PER_PIXEL,
    DENSE_CURVE_POINTS,
    HOVER_MARK,
    VIEWED_MARK,
    RangeKeeper,
    _whole,
    plot_widget,
)


class CurveView(_ViewFrame):
    """Named series against training steps; each series is one PlotDataItem updated with setData."""

    def __init__(self, title: str, caption: str = "", *, xlabel: str = "step", ylabel: str = "",
                 logy: bool = False, hover_text: HoverText | None = None, parent=None):
        super().__init__(title, caption, parent)
        self._plain_caption = caption
        self._per_step: set[str] = set()   # series with a value a step (see _note_windows)
        self._steps_a_point = 1
        self.xlabel = xlabel
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
        self._right: pg.ViewBox | None = None  # the right axis's view (see add_series' ``right``)
        self._right_keys: set[str] = set()
        self._right_range = (0.0, 100.0)
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # what the last redraw drew (the readout's)
        self._set_body(self.plot)
        self.ranges = RangeKeeper(self.plot, grow_x=True)  # x along a nice ladder, y only when needed
        self._cursor = pg.InfiniteLine(angle=90, movable=False,
                                       pen=pg.mkPen(HOVER_MARK, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        self._cursor.setZValue(20)
        self._cursor.hide()
        self.plot.addItem(self._cursor, ignoreBounds=True)
        self.hover = HoverReadout(self, self.plot, self._hover_info, self._hover_default, hover_text,
                                  on_show=self._mark_step, on_hide=self._cursor.hide)
        # the step on show while the timeline is scrubbed back (the views show that step, the curves go on)
        self.viewed_step: float | None = None
        self._viewed = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(VIEWED_MARK, width=2),
                                       label="viewing step {value:.0f}",
                                       # (its text hangs from the top edge, right of the line: it stood on a
                                       # point 92% up, and in a short plot its top half was past the edge)
                                       labelOpts={"position": 0.98, "color": VIEWED_MARK, "anchors": [(0, 0), (0, 0)],
                                                  "fill": pg.mkBrush(*LEGEND_BRUSH)})
        self._viewed.setZValue(19)
        self._viewed.hide()
        self.plot.addItem(self._viewed, ignoreBounds=True)

    def set_viewed_step(self, step: float | None) -> None:
        """Mark ``step`` (the timeline's view on show) with a line, or remove the mark (None: live)."""
        self.viewed_step = None if step is None else float(step)
        if step is None:
            self._viewed.hide()
        else:
            self._viewed.show()  # first: pyqtgraph's line label skips its text while the line is hidden
            self._viewed.setPos(float(step))

    def set_right_axis(self, label: str, y_range: tuple[float, float] = (0.0, 100.0)) -> None:
        """A second y axis on the right, with a fixed range, for the series added with ``right=True`` (an
        accuracy in % beside a loss: one axis for both squashed one of them, or mixed their units)."""
        self._right_range = (float(y_range[0]), float(y_range[1]))
        vb = self._right_box()
        vb.setYRange(*self._right_range, padding=0.02)
        self.plot.getPlotItem().setLabel("right", label)

    def _right_box(self) -> pg.ViewBox:
        if self._right is None:
            pi = self.plot.getPlotItem()
            vb = pg.ViewBox(enableMenu=False)
            vb.setMouseEnabled(False, False)
            pi.showAxis("right")
            pi.scene().addItem(vb)
            pi.getAxis("right").linkToView(vb)
            vb.setXLink(pi.vb)
            vb.setYRange(*self._right_range, padding=0.02)

            def follow() -> None:  # the right axis's view lies over the main one
                vb.setGeometry(pi.vb.sceneBoundingRect())
                vb.linkedViewChanged(pi.vb, vb.XAxis)

            pi.vb.sigResized.connect(follow)
            follow()
            self._right = vb
        return self._right

    def add_series(self, key: str, label: str, color: str, width: float = 2.0, style=None,
                   symbol: str | None = None, right: bool = False, per_step: bool = False) -> None:
        """A named series; ``right``: read on the right axis (see :meth:`set_right_axis`); ``per_step``: a
        value a step, whose points a long run keeps as means of several steps (the caption then says so)."""
        if per_step:
            self._per_step.add(key)
        pen = pg.mkPen(color=color, width=width, style=style or QtCore.Qt.PenStyle.SolidLine)
        if right:
            item = pg.PlotDataItem([], [], pen=pen, name=label, symbol=symbol, symbolSize=6,
                                   symbolBrush=color, symbolPen=None)
            self._right_box().addItem(item)
            self.legend.addItem(item, label)
            self._right_keys.add(key)
        else:
            item = self.plot.plot([], [], pen=pen, name=label, symbol=symbol, symbolSize=6,
                                  symbolBrush=color, symbolPen=None)
        item.setClipToView(True)
        item.setDownsampling(auto=True, method="mean")
        # pyqtgraph keeps ~5 points per pixel of width; 2 look the same on a noisy per-step curve and paint
        # 2-3x faster (a 2-pixel pen is stroked segment by segment: 6 curves of 5,000 steps took 22-26 ms)
        item.opts["autoDownsampleFactor"] = CURVE_POINTS_PER_PIXEL
        if width > 1 and pen.style() == QtCore.Qt.PenStyle.SolidLine:
            # an antialiased curve stroked as one path is slow (Qt outlines the whole self-crossing
            # zig-zag first): as separate segments 300 noisy points paint 3x faster, 1,000 5x
            item.curve.setSegmentedLineMode("on")
        self._items[key] = item
        self._data[key] = ([], [])

    def remove_series(self, key: str) -> None:
        """Take series ``key`` off the plot and its legend (a network with fewer layers after a reset)."""
        item = self._items.pop(key)
        self._per_step.discard(key)
        self._data.pop(key, None)
        self._drawn.pop(key, None)
        if key in self._right_keys:
            self._right_keys.discard(key)
            self.legend.removeItem(item)
            self._right.removeItem(item)
        else:
            self.plot.removeItem(item)

    def set_series_colour(self, key: str, color: str) -> None:
        """Give series ``key`` another colour (its line, its symbols and its legend entry)."""
        item = self._items[key]
        pen = pg.mkPen(item.opts["pen"])
        pen.setColor(pg.mkColor(color))
        item.setPen(pen)
        if item.opts.get("symbol") is not None:
            item.setSymbolBrush(color)

    def append(self, key: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        if key not in self._items or not len(xs):
            return
        dx, dy = self._data[key]
        dx.extend(float(x) for x in xs)
        dy.extend(float(y) for y in ys)

    def redraw(self) -> None:
        for key, item in self._items.items():
            dx, dy = self._data[key]
            drawn = self._drawn.get(key)
            if dx and drawn is not None and len(drawn[0]) == len(dx):
                continue  # unchanged since the last redraw (held-out points come rarely): no setData, no repaint
            if dx:
                # Qt's raster engine strokes a wide antialiased zig-zag (a noisy per-step curve) very slowly:
                # 5,000 points at width 2 took ~40x longer to paint than without antialiasing. Dense
                # curves are drawn without it; sparse ones (evaluations, with symbols) keep it.
                aa = len(dx) <= DENSE_CURVE_POINTS or item.opts["pen"].widthF() <= 1.0
                ax, ay = np.asarray(dx), np.asarray(dy)
                item.setData(ax, ay, antialias=aa)
                self._drawn[key] = (ax, ay)
            elif drawn is not None:
                item.setData([], [])
                self._drawn.pop(key, None)
        self._note_windows()
        left = [xy for k, xy in self._drawn.items() if k not in self._right_keys]
        self.ranges.fit([a for a, _ in self._drawn.values()], [b for _, b in left], [a for a, _ in left])
        self.legend.place()
        self._place_end_labels()
        self._refresh_hover()

    def _note_windows(self) -> None:
        """A long run keeps its per-step rows as means of windows of steps (``explorer.core.engine.metrics``):
        past the first 20,000 a point of a per-step curve is the mean of 2, 4, 8... steps, and the caption
        says how many where the curve ends (it said "per step" of points that were not)."""
        gaps = [0.0]
        for key in self._per_step:
            xs = self._data[key][0] if key in self._data else []
            gaps.extend(b - a for a, b in zip(xs[-5:], xs[-4:]))  # (a window cut short shows a smaller gap)
        steps = max(1, int(round(max(gaps))))
        if steps == self._steps_a_point:
            return
        self._steps_a_point = steps
        note = f" Per-step curve: each point the mean of {steps:,} steps." if steps > 1 else ""
        self.set_caption(self._plain_caption + note)

    def _place_end_labels(self, *_args) -> None:
        """Name the prominent curves at their ends while the legend is folded into its chip and not opened (a
        projector's audience never points at the chip); the thin per-step traces behind them go unnamed."""
        show = self.legend.folded and not self.legend.isVisible()
        curves = prominent_curves(self._items, self._drawn, self.legend, self._right, self._right_keys) if show else []
        log_y = bool(self.plot.getPlotItem().getAxis("left").logMode)
        self.end_labels.place(show, curves, log_y, chip_room(self.legend))

    @property
    def follow(self) -> bool:
        """Whether the view sets its own ranges (False after the user zoomed or panned, until "A")."""
        return self.ranges.follow

    # -- the readout -------------------------------------------------------------------------------------
    def step_scene_pos(self, x: float, y: float | None = None) -> QtCore.QPointF:
        """Scene point at data x (and y, default: the middle of the view) (for tests and scripted demos)."""
        vb = self.plot.getPlotItem().vb
        if y is None:
            y = float(np.mean(vb.viewRange()[1]))
        return vb.mapViewToScene(QtCore.QPointF(float(x), y))

    def _hover_info(self, scene_pos) -> dict | None:
        """``x`` under the mouse, ``step`` (the nearest recorded x of any series) and ``series``: one dict per
        series with data: ``key``, ``label``, ``colour``, ``step`` (its nearest x) and ``value`` there."""
        vb = self.plot.getPlotItem().vb
        if not self._drawn or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        x = vb.mapSceneToView(scene_pos).x()
        if self.plot.getPlotItem().ctrl.logXCheck.isChecked():
            x = 10 ** x
        rows = []
        for key, item in self._items.items():
            if key not in self._drawn:
                continue
            xs, ys = self._drawn[key]
            finite = np.isfinite(ys)
            if not finite.all():  # (a NaN is where the curve breaks: no value to read there)
                xs, ys = xs[finite], ys[finite]
                if not len(xs):
                    continue
            i = int(np.searchsorted(xs, x))
            if i >= len(xs) or (i > 0 and abs(xs[i - 1] - x) <= abs(xs[i] - x)):
                i -= 1
            i = max(i, 0)
            rows.append({"key": key, "label": item.name() or key, "colour": item.opts["pen"].color().name(),
                         "step": float(xs[i]), "value": float(ys[i])})
        if not rows:
            return None
        step = min((r["step"] for r in rows), key=lambda s: abs(s - x))
        return {"view": self, "x": float(x), "step": _whole(step), "series": rows, "xlabel": self.xlabel}

    def _hover_default(self, info: dict) -> str:
        lines = [f"{esc(info['xlabel'] or 'x')} <b>{fmt(info['step'], 8)}</b>"]
        for r in info["series"]:
            at = "" if r["step"] == info["step"] else f" <span style='color:#9aa5b5'>(at {fmt(r['step'], 8)})</span>"
            lines.append(f"<span style='color:{r['colour']}'>■</span> {esc(r['label'])}: <b>{fmt(r['value'])}</b>{at}")
        return "<br>".join(lines)

    def _mark_step(self, info: dict) -> None:
        self._cursor.setPos(info["step"])
        self._cursor.show()

    def clear_data(self) -> None:
        for key in self._data:
            self._data[key] = ([], [])
        self.ranges.forget()  # a new run: the ranges fit it afresh
        self.redraw()

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = self._data[key]
        return np.asarray(dx), np.asarray(dy)

    def export_csv(self, path: str) -> None:
        """Every series as rows ``series,step,value`` (the legend's names), written atomically; the points
        where a curve breaks (NaN: nothing was measured there) are left out."""
        import csv
        import io

        from explorer.core.atomic import atomic_write_text

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["series", self.plot.getAxis("bottom").labelText or "x", "value"])
        for key, item in self._items.items():
            name = item.name() or key
            for x, y in zip(*self._data[key]):
                if y == y:  # (not NaN)
                    w.writerow([name, repr(float(x)), repr(float(y))])
        atomic_write_text(path, buf.getvalue())
