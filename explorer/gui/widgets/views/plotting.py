"""Shared plot helpers: pyqtgraph's settings, the views' constants, image tiling, axis labels that stay
whole, colour-bar spacing, :class:`RangeKeeper` (ranges that grow and follow), colour tables and fonts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6 import QtGui, QtWidgets

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="#15181d", foreground="#d8dee9")

DENSE_CURVE_POINTS = 150  # above this, a curve wider than 1 pixel is drawn without antialiasing (2-3x faster)
CURVE_POINTS_PER_PIXEL = 2.0  # a longer curve is averaged down to this many points per pixel of width
GAP = np.nan  # mosaic separators: NaN renders transparent, so tiles stand apart on the dark background
HOVER_MARK = "#ffb74d"  # outline of the pixel / line at the step under the mouse
VIEWED_MARK = "#ebcb8b"  # the step the timeline shows while scrubbed back (the timeline bar's amber)
OFF_SCALE_MARK = "#9aa5b5"  # "▲ 2.31": how far a curve's first steps go past the plot's edge
OFF_SCALE_PT, OFF_SCALE_LARGE_PT = 9.0, 14.0  # its type, and in presentation mode (the legend's sizes)
EARLY_SHARE = 0.1  # a curve's first steps, as a share of the steps drawn, that may go past y's range ...
SQUASH_FACTOR = 4.0  # ... when they would widen it more than this many times what the later steps span
EARLY_MIN_LATE_POINTS = 20  # (and only once there are this many later points to fit)
OFF_SCALE_CLEAR_PX = 4  # the mark keeps this far from the curves (their markers are 6 px across)


def mosaic_columns(shape: tuple[int, ...], width: float, height: float) -> int:
    """How many of C maps (C, H, W) to put in a mosaic row so that the maps are drawn largest in a
    ``width`` x ``height`` place."""
    c, h, w = (int(v) for v in shape[:3])
    best, best_scale = 1, 0.0
    for cols in range(1, max(1, c) + 1):
        rows = math.ceil(c / cols)
        scale = min(max(width, 1.0) / (cols * (w + 1)), max(height, 1.0) / (rows * (h + 1)))
        if scale > best_scale:
            best, best_scale = cols, scale
    return best


def tile_images(images: np.ndarray, image_shape: Sequence[int], cols: int | None = None,
                pad: int | tuple[int, int] = 1, normalize: str = "none") -> np.ndarray:
    """Arrange ``n`` flat (or 2-D) images into one 2-D mosaic with ``pad``-pixel NaN gaps (one number, or the
    gaps between rows and between columns: room for a text under each tile).

    ``normalize``: ``"none"`` keeps values; ``"symmetric"`` scales each tile by its largest
    absolute value into [-1, 1] (filters: sign and shape matter, not their overall size);
    ``"minmax"`` scales each tile into [0, 1].
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    imgs = np.asarray(images, dtype=np.float32).reshape(-1, h, w)
    n = imgs.shape[0]
    if n == 0:
        return np.full((h, w), GAP, dtype=np.float32)
    if normalize == "symmetric":
        scale = np.abs(imgs).reshape(n, -1).max(1)
        imgs = imgs / np.where(scale > 0, scale, 1.0)[:, None, None]
    elif normalize == "minmax":
        lo = imgs.reshape(n, -1).min(1)[:, None, None]
        hi = imgs.reshape(n, -1).max(1)[:, None, None]
        imgs = (imgs - lo) / np.where(hi > lo, hi - lo, 1.0)
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    pad_y, pad_x = (pad, pad) if isinstance(pad, int) else pad
    py, px = h + pad_y, w + pad_x
    out = np.full((rows * py - pad_y, cols * px - pad_x), GAP, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * py: r * py + h, c * px: c * px + w] = imgs[i]
    return out


def plot_widget() -> pg.PlotWidget:
    """A PlotWidget whose axes are painted from a cached pixmap.

    An axis with a grid covers the whole plot, so every new curve point repainted it: pyqtgraph replays
    its tick text (about 5-9 ms an axis, software-rendered) on every frame. With a device-coordinate
    cache Qt repaints an axis only when the axis itself changes (its range, its size, its font).
    """
    plot = pg.PlotWidget()
    for axis in plot.getPlotItem().axes.values():
        axis["item"].setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        keep_label_whole(axis["item"])
        label_decades_first(axis["item"])
    return plot


def decade_levels(ticks: list, lo: float, hi: float) -> list:
    """A log axis's tick levels (``AxisItem.logTickValues``'s: ``(spacing, values)`` in log10 units) with the
    whole decades in ``[lo, hi]`` as the first level whenever pyqtgraph gave none.

    Spanning fewer than about three decades, pyqtgraph puts every 2x..9x tick in its first level, whose
    labels it draws however crowded: on a short gradient plot "0.02 0.03 0.04 ..." were drawn on top of
    each other. With the decades first, the in-between ticks are a second level, labelled only where
    there is room."""
    if not ticks or ticks[0][0] is not None:
        return ticks
    decades = [float(v) for v in range(math.ceil(lo), math.floor(hi) + 1)]
    if not decades:  # less than a decade on show: its 2x..9x ticks are all there is to label
        return ticks
    rest = [v for v in ticks[0][1] if not any(abs(v - d) < 1e-9 for d in decades)]
    return [(1.0, decades), (None, rest), *ticks[1:]]


def label_decades_first(axis: pg.AxisItem) -> None:
    """Give ``axis`` (in log mode) :func:`decade_levels`; nothing changes on a linear axis."""
    original = axis.logTickValues

    def log_tick_values(min_val, max_val, size, std_ticks):
        return decade_levels(original(min_val, max_val, size, std_ticks), min_val, max_val)

    axis.logTickValues = log_tick_values


LABEL_ROOM = 8  # px: a hidden side label returns only with this much room to spare (no flicker)


def whole_number_ticks(axis: pg.AxisItem, centre: float = 0.0) -> None:
    """Ticks at whole numbers only, for an axis that counts units, rows or layers (a heatmap of 2 hidden units
    was ticked 0, 0.5, 1, 1.5, as if there were half units). ``centre``: where cell 0's middle lies (0.5 for
    cells drawn from 0 to 1): each tick then stands under a cell's middle, with that cell's number.
    ``axis.cell_centre`` may be changed later (a heatmap whose rows move)."""
    spacing, strings = axis.tickSpacing, axis.tickStrings  # (pyqtgraph asks the instance: this axis only)
    axis.cell_centre = float(centre)

    def whole(min_val: float, max_val: float, size: float):
        levels = [(step, axis.cell_centre % 1.0) for step, _offset in spacing(min_val, max_val, size) if step >= 1.0]
        return levels or [(1.0, axis.cell_centre % 1.0)]

    def numbers(values, scale, step):
        return strings([round(v - axis.cell_centre) for v in values], scale, max(step, 1.0))

    axis.tickSpacing = whole
    axis.tickStrings = numbers


def keep_label_whole(axis: pg.AxisItem) -> None:
    """Show a side axis's label only while the axis is tall enough for all of it.

    A docked view made short clipped its side label to "probabil" or "pixe", which reads as a fault on
    a projector; the caption under the view says what the axis is, so the label gives way instead.
    Only the side axes: their labels' visibility changes the plot's width, never an axis's height.

    The choice converges by construction. The text's length is the label's as shown: pyqtgraph drops the
    unit prefix of a hidden label ("MSE per pixel (x0.001)" becomes "MSE per pixel"), so measured while
    hidden it fitted, shown it did not, and each choice undid the other on every layout pass (the window
    froze at 1366x768). So the length as last shown is kept for the hidden label; the choice is made once
    for each (height, length), never while its own change is being laid out; and a label found too long
    right after it is shown goes again at once, its true length known from then on.
    """
    if axis.orientation not in ("left", "right"):
        return
    state = {"busy": False, "text": None, "need": 0.0, "decided": None}

    def fit() -> None:
        if state["busy"] or not shiboken6.isValid(axis) or not axis.labelText or axis.label is None:
            return  # (its own change relaid out; or a plot being torn down still sends geometry changes)
        if axis.labelText != state["text"]:  # another label: its length is not known yet
            state["text"], state["need"], state["decided"] = axis.labelText, 0.0, None
        shown = axis.label.isVisible()
        if shown:  # the text's length as shown (a side label is turned on end)
            state["need"] = axis.label.boundingRect().width()
        need = state["need"] or axis.label.boundingRect().width()
        have = axis.size().height()
        key = (round(have), round(need))
        if key == state["decided"]:
            return  # decided for this height and this length already
        state["decided"] = key
        want = have >= need + (0 if shown else LABEL_ROOM)
        if want == shown:
            return
        state["busy"] = True
        try:
            axis.showLabel(want)
            if want:  # shown, the text may be longer (its unit prefix back): measured now, it may go again
                state["need"] = axis.label.boundingRect().width()
                if have < state["need"]:
                    axis.showLabel(False)
                state["decided"] = (round(have), round(state["need"]))
        finally:
            state["busy"] = False

    axis.geometryChanged.connect(fit)
    # and when the text itself changes: the unit prefix comes with the data's range, not with a new size
    # (at 1366x768 "MSE per pixel (x0.001)" was cut to "MSE per pixel (x0.0")
    axis.label.document().contentsChanged.connect(fit)


COLORBAR_TEXT_GAP = 1.3  # a colour bar's numbers are at least this many text heights apart
COLORBAR_MOST_NUMBERS = 6  # and no more of them than pyqtgraph's own choice for 0..1 (0, 0.2, ..., 1)


def colorbar_step(lo: float, hi: float, room: float, text_height: float) -> float:
    """The step between a colour bar's numbers: the smallest of 1, 2, 5 x 10^k whose multiples in [lo, hi]
    fit ``room`` px at ``COLORBAR_TEXT_GAP`` text heights apart, ``COLORBAR_MOST_NUMBERS`` at most (at least one
    number is shown)."""
    span = abs(hi - lo)
    if not span > 0 or not math.isfinite(span):
        return 1.0
    most = max(1, min(COLORBAR_MOST_NUMBERS, int(room // (text_height * COLORBAR_TEXT_GAP))))
    low, high = min(lo, hi), max(lo, hi)
    exponent = math.floor(math.log10(span)) - 2
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0 ** exponent
            count = math.floor(high / step + 1e-9) - math.ceil(low / step - 1e-9) + 1
            if count <= most or step >= span:
                return step
        exponent += 1


def space_colorbar_numbers(axis: pg.AxisItem) -> None:
    """A colour bar's numbers as far apart as their text needs, however short the bar: pyqtgraph always
    draws its first level of numbers, six for 0..1, and on a 25-px bar (the RBM's hidden units at 1366x768)
    they lay over each other. The step is chosen again when the bar's height or type changes (minor ticks
    carry no numbers)."""
    axis.setStyle(maxTextLevel=0)
    chosen: list[float] = []

    def fit() -> None:
        if not shiboken6.isValid(axis):
            return
        lo, hi = axis.range
        font = axis.style.get("tickFont") or axis.font()
        # (pyqtgraph measures a number at 0.8 of its font's height)
        step = colorbar_step(lo, hi, axis.size().height(), QtGui.QFontMetricsF(font).height() * 0.8)
        if chosen != [step]:
            chosen[:] = [step]
            axis.setTickSpacing(step, step / 2)

    axis.geometryChanged.connect(fit)
    axis.fit_numbers = fit  # for a change of range or type, which moves no geometry
    fit()


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 4, 5, 6, 8 (times a power of ten) at or above ``value`` (> 0)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if value <= m * exp * (1 + 1e-12):
            return m * exp
    return 10.0 * exp


class RangeKeeper:
    """Sets a plot's ranges itself, and rarely, instead of pyqtgraph's auto-range.

    Auto-range re-fits on every new point, so both (cached) axes are repainted on every update. Here
    x grows along a "nice" ladder (``grow_x``, for curves over training steps) or follows the data's
    extent (a fixed time axis), and y moves only when the data leaves it or fills under half of it.
    Zooming or panning by hand stops this until the plot's "A" button is pressed.

    Over training steps (``grow_x``), y leaves out the first steps when they would squash the rest: a loss
    that falls from 2.3 to 0.05 in its first hundred steps drew every later step as a flat line on the
    floor of the plot, where nothing of the run's later course (the gap between training and held-out
    data, a slow descent, the noise) could be seen. When the values of the first :data:`EARLY_SHARE` of
    the steps drawn widen y more than :data:`SQUASH_FACTOR` times what the later steps span, y fits the
    later steps, and a mark at the edge says how far the first steps go beyond it ("▲ 2.31"): beside the
    step where they go furthest, or where it is nearest that step with no curve passing under it (the
    later steps start at that edge: the RBM's pseudo-log-likelihood drew its first points over "▼ -27.5").
    """

    def __init__(self, plot: pg.PlotWidget, grow_x: bool):
        self.plot = plot
        self.grow_x = grow_x
        self.follow = True
        self.x: tuple[float, float] | None = None
        self.y: tuple[float, float] | None = None
        # how far the first steps go past y's range, above and below (None: they do not): see _fit
        self.off_scale: tuple[float | None, float | None] = (None, None)
        self._data: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._y_xs: list[np.ndarray] | None = None
        self._marks: dict[str, pg.TextItem] = {}
        self._marked_at: dict[str, float] = {}  # side: the step its mark is for (placed again on a resize)
        plot.disableAutoRange()
        plot.getPlotItem().vb.sigRangeChangedManually.connect(self._stop_following)
        plot.getPlotItem().vb.sigResized.connect(self._place_marks)
        plot.getPlotItem().autoBtn.clicked.connect(self._follow_again)

    def fit(self, xs: list[np.ndarray], ys: list[np.ndarray], y_xs: list[np.ndarray] | None = None) -> None:
        """Fit the ranges to these series (if following), moving them only when needed. ``y_xs``: the
        steps of each of ``ys`` (where ``xs`` holds more series than ``ys``); by default ``xs``."""
        self._data = (xs, ys)
        self._y_xs = y_xs
        if self.follow:
            self._fit()

    def forget(self) -> None:
        """A new run: the next fit starts afresh (a range may shrink)."""
        self.x = self.y = None
        self._mark(None, None)

    def _fit(self) -> None:
        xs = [np.asarray(a, dtype=float) for a in self._data[0] if len(a)]
        if not xs:
            return
        x_min = min(float(np.nanmin(a)) for a in xs)
        x_max = max(float(np.nanmax(a)) for a in xs)
        if self.grow_x:
            lo, hi = min(0.0, x_min), max(10.0, nice_ceiling(x_max))
            moved = self.x is None or hi > self.x[1] or lo < self.x[0] or hi < self.x[1] / 4
        else:
            lo, hi = (x_min, x_max) if x_max > x_min else (x_min - 0.5, x_max + 0.5)
            moved = self.x != (lo, hi)
        if moved:
            self.x = (lo, hi)
            self.plot.setXRange(lo, hi, padding=0.02)
        log = self.plot.getPlotItem().getAxis("left").logMode  # (the user may switch it in the plot's menu)
        y_xs = self._y_xs if self._y_xs is not None else self._data[0]
        cut = x_min + EARLY_SHARE * (x_max - x_min) if self.grow_x else -math.inf
        parts = [_split_extent(sx, sy, cut, log) for sx, sy in zip(y_xs, self._data[1]) if len(sy)]
        extents = [e for part in parts for e in part[:2] if e is not None]
        if not extents:
            self._mark(None, None)
            return
        lo, hi = min(e[0] for e in extents), max(e[1] for e in extents)
        above = below = None
        late = [p[1] for p in parts if p[1] is not None]
        early = [p[0] for p in parts if p[0] is not None]
        if self.grow_x and late and early and sum(p[2] for p in parts) >= EARLY_MIN_LATE_POINTS:
            late_lo, late_hi = min(e[0] for e in late), max(e[1] for e in late)
            if hi - lo > SQUASH_FACTOR * (late_hi - late_lo):  # the first steps would squash the rest
                top = max(early, key=lambda e: e[1])
                bottom = min(early, key=lambda e: e[0])
                above = (top[3], top[1]) if top[1] > late_hi else None
                below = (bottom[2], bottom[0]) if bottom[0] < late_lo else None
                lo, hi = late_lo, late_hi
        cur = self.y
        if cur is None or lo < cur[0] or hi > cur[1] or (hi - lo) < 0.5 * (cur[1] - cur[0]):
            pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.05)
            self.y = (lo - pad, hi + pad)
            self.plot.setYRange(*self.y, padding=0)
        self._mark(above if above is not None and above[1] > self.y[1] else None,
                   below if below is not None and below[1] < self.y[0] else None, log)

    def _mark(self, above: tuple[float, float] | None, below: tuple[float, float] | None,
              log: bool = False) -> None:
        """Show at the plot's top (bottom) edge, beside the step where they go furthest, how far the first
        steps go past y's range: ``above``/``below`` are (step, value in the axis's units) or None."""
        def shown(v: float) -> float:
            return float(10.0 ** v) if log else float(v)

        self.off_scale = (None if above is None else shown(above[1]), None if below is None else shown(below[1]))
        for side, where in (("above", above), ("below", below)):
            mark = self._marks.get(side)
            if where is None:
                if mark is not None:
                    mark.hide()
                continue
            if mark is None:
                mark = OffScaleMark(side)
                # (made in presentation mode, it takes the large type that the axes already have)
                mark.set_large(self.plot.getPlotItem().getAxis("left").style.get("tickFont") is not None)
                self.plot.addItem(mark, ignoreBounds=True)
                self._marks[side] = mark
            value = shown(where[1])
            mark.setText(f"{'▲' if side == 'above' else '▼'} {value:.3g}")
            self._marked_at[side] = where[0]
            mark.setPos(self._clear_step(side, where[0], mark), self.y[1] if side == "above" else self.y[0])
            mark.show()

    def _place_marks(self, *_args) -> None:
        """The plot took another size: each mark shown finds its place clear of the curves again."""
        for side, mark in self._marks.items():
            if mark.isVisible() and side in self._marked_at and self.y is not None:
                mark.setPos(self._clear_step(side, self._marked_at[side], mark),
                            self.y[1] if side == "above" else self.y[0])

    def _clear_step(self, side: str, step: float, mark: pg.TextItem) -> float:
        """Where along its edge the mark for ``step`` goes: ``step``, unless a curve passes under its text
        there; then the place nearest ``step`` where none does (or, with none free, the least covered)."""
        vb = self.plot.getPlotItem().vb
        (x0, x1), (y0, y1) = vb.viewRange()
        w_px, h_px = vb.width(), vb.height()
        text = mark.textItem.boundingRect()
        if w_px < 2 or h_px < 2 or x1 <= x0 or y1 <= y0 or text.width() < 1:
            return step  # (not laid out yet)
        per_x, per_y = (x1 - x0) / w_px, (y1 - y0) / h_px
        pad = OFF_SCALE_CLEAR_PX
        width, height = (text.width() + 2 * pad) * per_x, (text.height() + pad) * per_y
        lo, hi = (y0, y0 + height) if side == "below" else (y1 - height, y1)
        if self.plot.getPlotItem().getAxis("left").logMode:  # (the band in the values' own units: no log of them)
            lo, hi = 10.0 ** lo, 10.0 ** hi
        series = []
        for sx, sy in zip(self._y_xs if self._y_xs is not None else self._data[0], self._data[1]):
            sx, sy = np.asarray(sx, dtype=float), np.asarray(sy, dtype=float)
            if len(sx) == len(sy) and len(sx):
                series.append((sx, sy))  # (steps in order, as every curve's are)

        def covered_at(left: float) -> int:
            """How many curves pass under the text with its left edge at ``left``: a line drawn through its
            points passes the text's band where its lowest and highest values there straddle it (a steep, noisy
            loss crosses it between points that lie above the plot)."""
            hits = 0
            for sx, sy in series:
                a, b = np.searchsorted(sx, left, "left"), np.searchsorted(sx, left + width, "right")
                ends = np.interp([left, left + width], sx, sy, left=np.nan, right=np.nan)
                vals = np.concatenate([ends, sy[a:b]])
                hits += bool(np.nanmin(vals, initial=np.inf) <= hi and np.nanmax(vals, initial=-np.inf) >= lo)
            return hits

        first = min(max(step - pad * per_x, x0), x1 - width)
        first_hits = covered_at(first)
        if not first_hits:  # (the usual case: its own step is clear)
            return float(first + pad * per_x)
        last = mark.pos().x() - pad * per_x  # (where it stands: kept while clear)
        if x0 <= last <= x1 - width and not covered_at(last):
            return float(last + pad * per_x)
        # every place along the edge, a quarter of the text's width apart: each curve's lowest and highest
        # values in quarter-width bins (one pass over its points), four bins to a place
        quarter = width / 4
        n_bins = max(4, int(np.ceil((x1 - x0) / quarter)))
        edges = x0 + quarter * np.arange(n_bins + 1)
        hits = np.zeros(n_bins - 3, dtype=np.int64)
        for sx, sy in series:
            idx = np.searchsorted(sx, edges, "left")
            padded = np.append(sy, np.nan)  # (a bin past the last point reduces over this NaN only)
            with np.errstate(invalid="ignore"):
                low = np.fmin.reduceat(padded, idx)[:-1]
                high = np.fmax.reduceat(padded, idx)[:-1]
            empty = idx[1:] <= idx[:-1]
            low[empty], high[empty] = np.nan, np.nan
            at_edges = np.interp(edges, sx, sy, left=np.nan, right=np.nan)  # (the line between two points)
            low = np.fmin(low, np.fmin(at_edges[:-1], at_edges[1:]))
            high = np.fmax(high, np.fmax(at_edges[:-1], at_edges[1:]))
            w_low = np.fmin(np.fmin(low[:-3], low[1:-2]), np.fmin(low[2:-1], low[3:]))
            w_high = np.fmax(np.fmax(high[:-3], high[1:-2]), np.fmax(high[2:-1], high[3:]))
            hits += (w_low <= hi) & (w_high >= lo)
        places = np.minimum(edges[:n_bins - 3], x1 - width)
        best = int(np.lexsort((np.abs(places - first), hits))[0])
        if hits[best] >= first_hits:  # (none clearer than its own step's place)
            return float(first + pad * per_x)
        return float(places[best] + pad * per_x)

    def _stop_following(self, *_args) -> None:
        self.follow = False
        self._mark(None, None)  # the user's own range: the points past it are theirs to see or not

    def _follow_again(self, *_args) -> None:
        self.follow = True
        self.forget()
        self.plot.disableAutoRange()  # the "A" button turned pyqtgraph's on: the ranges are ours again
        self._fit()



class OffScaleMark(pg.TextItem):
    """"▲ 2.31" at a curve plot's top edge (▼ at its bottom): how far the first steps go past the range
    that :class:`RangeKeeper` fitted to the later ones. Presentation mode sets its type large."""

    def __init__(self, side: str):
        super().__init__(color=OFF_SCALE_MARK, anchor=(0.0, 0.0) if side == "above" else (0.0, 1.0))
        self.setZValue(15)
        self.setToolTip("The first steps go past this edge: the range fits the later steps so that they are "
                        "not squashed flat. Zoom out with the mouse wheel to see them all.")

    def set_large(self, large: bool) -> None:
        font = QtGui.QFont()
        font.setPointSizeF(OFF_SCALE_LARGE_PT if large else OFF_SCALE_PT)
        self.setFont(font)


def _split_extent(steps: np.ndarray, values: np.ndarray, cut: float, log: bool):
    """One series' extent before the step ``cut`` and from it on, in the axis's units (log10 on a log
    axis, where values <= 0 are left out), with no copy of a long series: ``(early, late, late_count)``,
    ``early`` as (lo, hi, step of lo, step of hi) and ``late`` as (lo, hi), each None without a finite
    value. The steps are taken as increasing (a series is appended step by step); values without steps
    (of another length) all count as late ones."""
    values = np.asarray(values, dtype=float)
    steps = np.asarray(steps, dtype=float)
    if log and not np.fmin.reduce(values) > 0:  # (NaN, a zero or a negative value: only then a copy)
        values = np.where(values > 0, values, np.nan)
    k = int(np.searchsorted(steps, cut, side="left")) if len(steps) == len(values) else 0
    early, late = values[:k], values[k:]
    late_extent = _finite_extent(late)
    early_extent = None
    e = _finite_extent(early)
    if e is not None:
        with np.errstate(invalid="ignore"):
            i_lo = int(np.nanargmin(np.where(np.isfinite(early), early, np.nan)))
            i_hi = int(np.nanargmax(np.where(np.isfinite(early), early, np.nan)))
        early_extent = (e[0], e[1], float(steps[i_lo]), float(steps[i_hi]))
    if log:
        late_extent = None if late_extent is None else (math.log10(late_extent[0]), math.log10(late_extent[1]))
        if early_extent is not None:
            early_extent = (math.log10(early_extent[0]), math.log10(early_extent[1])) + early_extent[2:]
    return early_extent, late_extent, len(late)


def _finite_extent(values: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values, or None: NaN is passed over in one pass each (``fmin``/``fmax``);
    only an infinite value (a run that diverged) costs a masked copy."""
    if not len(values):
        return None
    lo, hi = float(np.fmin.reduce(values)), float(np.fmax.reduce(values))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = values[np.isfinite(values)]
        if not len(finite):
            return None
        lo, hi = float(finite.min()), float(finite.max())
    return lo, hi


def _whole(v: float):
    """A step number as an int when it is one (steps are counted, not measured)."""
    return int(v) if float(v).is_integer() else float(v)


def _pixel_mark(viewbox) -> QtWidgets.QGraphicsRectItem:
    """The outline of the pixel or cell under the mouse: a separate item, so a hover never redraws the image."""
    mark = QtWidgets.QGraphicsRectItem()
    mark.setPen(pg.mkPen(HOVER_MARK, width=2, cosmetic=True))
    mark.setZValue(20)
    mark.hide()
    viewbox.addItem(mark, ignoreBounds=True)
    return mark


def _lut(name: str) -> np.ndarray:
    if name == "grey":
        ramp = np.linspace(0, 255, 256).astype(np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    return pg.colormap.get(name).getLookupTable(nPts=256)


def monospace_font(size: int = 10) -> QtGui.QFont:
    f = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    f.setPointSize(size)
    return f
