"""Views shared by every panel: an image mosaic, a heatmap and a curve plot.

Each view creates its pyqtgraph items once and updates them in place
(``ImageItem.setImage(..., autoLevels=False)`` with fixed levels, ``PlotDataItem.setData``):
rebuilding items on every update is slow and leaks. Tiling many small images into one
mosaic array keeps a 500-filter view at a single image item.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.widgets.hover import HoverReadout, HoverText, esc, fmt

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="#15181d", foreground="#d8dee9")

DENSE_CURVE_POINTS = 150  # above this, a curve wider than 1 pixel is drawn without antialiasing (2-3x faster)
CURVE_POINTS_PER_PIXEL = 2.0  # a longer curve is averaged down to this many points per pixel of width
GAP = np.nan  # mosaic separators: NaN renders transparent, so tiles stand apart on the dark background
HOVER_MARK = "#ffb74d"  # outline of the pixel / line at the step under the mouse
VIEWED_MARK = "#ebcb8b"  # the step the timeline shows while scrubbed back (the timeline bar's amber)


def tile_images(images: np.ndarray, image_shape: Sequence[int], cols: int | None = None, pad: int = 1,
                normalize: str = "none") -> np.ndarray:
    """Arrange ``n`` flat (or 2-D) images into one 2-D mosaic with ``pad``-pixel NaN gaps.

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
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), GAP, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = imgs[i]
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
    return plot


LABEL_ROOM = 8  # px: a hidden side label returns only with this much room to spare (no flicker)


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
    """

    def __init__(self, plot: pg.PlotWidget, grow_x: bool):
        self.plot = plot
        self.grow_x = grow_x
        self.follow = True
        self.x: tuple[float, float] | None = None
        self.y: tuple[float, float] | None = None
        self._data: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        plot.disableAutoRange()
        plot.getPlotItem().vb.sigRangeChangedManually.connect(self._stop_following)
        plot.getPlotItem().autoBtn.clicked.connect(self._follow_again)

    def fit(self, xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        """Fit the ranges to these series (if following), moving them only when needed."""
        self._data = (xs, ys)
        if self.follow:
            self._fit()

    def forget(self) -> None:
        """A new run: the next fit starts afresh (a range may shrink)."""
        self.x = self.y = None

    def _fit(self) -> None:
        xs = [np.asarray(a, dtype=float) for a in self._data[0] if len(a)]
        ys = [np.asarray(b, dtype=float) for b in self._data[1] if len(b)]
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
        y = np.concatenate(ys) if ys else np.zeros(0)
        if self.plot.getPlotItem().getAxis("left").logMode:  # (the user may switch it in the plot's menu)
            y = np.log10(y[y > 0])
        y = y[np.isfinite(y)]
        if not len(y):
            return
        lo, hi = float(y.min()), float(y.max())
        cur = self.y
        if cur is None or lo < cur[0] or hi > cur[1] or (hi - lo) < 0.5 * (cur[1] - cur[0]):
            pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.05)
            self.y = (lo - pad, hi + pad)
            self.plot.setYRange(*self.y, padding=0)

    def _stop_following(self, *_args) -> None:
        self.follow = False

    def _follow_again(self, *_args) -> None:
        self.follow = True
        self.forget()
        self.plot.disableAutoRange()  # the "A" button turned pyqtgraph's on: the ranges are ours again
        self._fit()


# the tags the captions and titles use; any other "<" is text (σ < 0.05 is a comparison, not a tag)
_RICH_TAGS = ("sub", "sup", "b", "i", "u", "br", "span", "div", "p", "font", "em", "strong", "a", "code", "tt")
_NOT_A_TAG = re.compile(r"<(?!/?(?:{})[\s>/])".format("|".join(_RICH_TAGS)))


def rich_text(text: str) -> str:
    """``text`` for a rich-text label: every "<" that opens none of the tags we write becomes "&lt;".

    Qt reads "σ < 0.05 or σ > 0.95" as the start of a tag and drops "< 0.05 or σ >": the caption said
    "σ 0.95". The equations in the captions keep their <sub>, <sup>, <b>... tags.
    """
    return _NOT_A_TAG.sub("&lt;", text)


def _title_label(text: str) -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel(text)
    lab.setObjectName("viewTitle")
    lab.setWordWrap(True)  # a long title wraps instead of widening its dock (large type on a projector)
    return lab


def _caption_label(text: str) -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel(rich_text(text))
    lab.setObjectName("viewCaption")
    lab.setWordWrap(True)
    lab.setTextFormat(QtCore.Qt.TextFormat.RichText)
    return lab


def shown_text(label: QtWidgets.QLabel) -> str:
    """What a (rich-text) label shows, as plain text: what a reader sees, tags gone and entities read."""
    if label.textFormat() == QtCore.Qt.TextFormat.PlainText:
        return label.text()
    doc = QtGui.QTextDocument()
    doc.setHtml(label.text())
    return doc.toPlainText()


LEGEND_BRUSH = (21, 24, 29, 175)  # the plots' background, translucent: the curves show through the legend
LEGEND_PEN = (216, 222, 233, 60)
LEGEND_PLACE_EVERY_S = 1.0  # a legend looks for the emptiest corner at most this often
_CORNERS = {  # name: (the legend's point, the plot's point, offset in pixels)
    "top-right": ((1, 0), (1, 0), (-10, 10)), "top-left": ((0, 0), (0, 0), (10, 10)),
    "bottom-right": ((1, 1), (1, 1), (-10, -10)), "bottom-left": ((0, 1), (0, 1), (10, -10)),
}


class ViewLegend(pg.LegendItem):
    """A legend that keeps off the data: on a translucent panel, in the corner of the plot that the data
    cover least (looked for again as the data change), or where the user drags it (the plot's "A" button
    puts it back in the emptiest corner). A legend in a fixed corner covered the curves in most plots."""

    def __init__(self):
        super().__init__(offset=_CORNERS["top-right"][2], brush=pg.mkBrush(*LEGEND_BRUSH),
                         pen=pg.mkPen(*LEGEND_PEN), labelTextColor="#d8dee9")
        self.corner = "top-right"
        self.moved_by_user = False
        self._placed_t = 0.0
        self.setToolTip("Drag the legend to move it; the plot's A button puts it back")

    def paint(self, p, *args) -> None:
        if self.items:  # an empty legend draws nothing, not an empty frame
            super().paint(p, *args)

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self.moved_by_user = True
        super().mouseDragEvent(ev)

    def relabel(self, item, text: str) -> None:
        """Rename ``item``'s entry; the legend takes its new size at once, and is placed again at the next
        :meth:`place` (a legend laid out in two columns for short names overflowed its plot with long ones)."""
        for sample, label in self.items:
            if sample.item is item and label.text != text:
                label.setText(text)
                self.layout.activate()
                self.updateSize()
                self._placed_t = 0.0

    def follow_again(self, *_args) -> None:
        self.moved_by_user = False
        self._placed_t = 0.0
        self.place()

    def set_corner(self, corner: str) -> None:
        item_pos, parent_pos, offset = _CORNERS[corner]
        self.corner = corner
        self.anchor(item_pos, parent_pos, offset)

    def place(self, force: bool = False) -> None:
        """Move to the corner where the plotted data cover the least of the legend (at most once a second)."""
        now = time.monotonic()
        if self.moved_by_user or not self.items or not self.isVisible():
            return
        if not force and now - self._placed_t < LEGEND_PLACE_EVERY_S:
            return
        self._placed_t = now
        vb = self.parentItem()
        if vb is None:
            return
        area = vb.sceneBoundingRect()
        size = self.sceneBoundingRect().size()
        if area.width() < 2 or size.width() < 1:
            return
        size = self._fit_columns(area, size)
        # taller than the plot: a top corner, so its first entries show
        corners = [c for c in _CORNERS if c.startswith("top")] if size.height() > area.height() else list(_CORNERS)
        scores = {}
        for corner in corners:
            item_pos, _parent_pos, offset = _CORNERS[corner]
            x0 = area.left() + offset[0] if item_pos[0] == 0 else area.right() + offset[0] - size.width()
            y0 = area.top() + offset[1] if item_pos[1] == 0 else area.bottom() + offset[1] - size.height()
            scores[corner] = self._covered(QtCore.QRectF(x0, y0, size.width(), size.height()))
        best = min(scores, key=lambda c: (scores[c], c != self.corner))
        # a clearly emptier corner only: a legend that hops back and forth is worse than one that overlaps
        if best != self.corner and (self.corner not in scores or scores[best] < 0.5 * scores[self.corner]):
            self.set_corner(best)

    def _fit_columns(self, area: QtCore.QRectF, size: QtCore.QSizeF) -> QtCore.QSizeF:
        """Entries in up to three columns when one column is taller than half the plot and the plot is wide
        enough (a short docked plot showed three of five entries); back to one column when there is room."""
        n = len(self.items)
        cols = max(1, int(self.columnCount))
        rows = math.ceil(n / cols)
        row_h, col_w = size.height() / max(1, rows), size.width() / cols
        want = 1
        while want < 3 and want < n and math.ceil(n / want) * row_h > 0.5 * area.height() \
                and (want + 1) * col_w <= 0.9 * area.width():
            want += 1
        if want != cols:
            self.setColumnCount(want)
            return QtCore.QSizeF(col_w * want, row_h * math.ceil(n / want))
        return size

    def _covered(self, scene_rect: QtCore.QRectF) -> float:
        """How much of the plotted data ``scene_rect`` would hide: 1 for each curve that runs inside it across
        its whole width, less for part of it (a dense per-step curve counts no more than a sparse one), and a
        quarter for each marker (a measurement) or free point inside it."""
        total = 0.0
        for sample, _label in self.items:
            item = sample.item
            vb = item.getViewBox() if hasattr(item, "getViewBox") else None
            if vb is None or not hasattr(item, "getData"):
                continue
            x, y = item.getData()
            if x is None or y is None or not len(x) or not len(y):
                continue
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            if len(x) == len(y) + 1:  # a step curve: bin edges
                x = (x[:-1] + x[1:]) / 2
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            if not len(x):
                continue
            r = vb.mapSceneToView(scene_rect).boundingRect()
            x0, x1, y0, y1 = r.left(), r.right(), r.top(), r.bottom()
            line = len(x) > 1 and bool(np.all(np.diff(x) >= 0)) and item.opts.get("pen") is not None
            if line:
                lo, hi = max(x0, x[0]), min(x1, x[-1])
                if hi > lo and x1 > x0:
                    xq = np.linspace(lo, hi, 48)
                    yq = np.interp(xq, x, y)
                    total += np.count_nonzero((yq >= y0) & (yq <= y1)) / 48 * (hi - lo) / (x1 - x0)
            if not line or item.opts.get("symbol") is not None:
                inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
                total += 0.25 * np.count_nonzero(inside)
        return total


def add_legend(plot: pg.PlotWidget) -> ViewLegend:
    """A :class:`ViewLegend` on ``plot``: series plotted with a name join it, as with ``addLegend``."""
    pi = plot.getPlotItem()
    legend = ViewLegend()
    legend.setParentItem(pi.vb)
    pi.legend = legend
    pi.autoBtn.clicked.connect(legend.follow_again)
    pi.vb.sigResized.connect(lambda *_: legend.place(force=True))  # another size: perhaps another corner
    return legend


class _ViewFrame(QtWidgets.QWidget):
    """Title above, plot in the middle, a caption (what it shows, the lecture's equation) below."""

    def __init__(self, title: str, caption: str = "", parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.setContentsMargins(6, 4, 6, 4)
        self._layout.setSpacing(2)
        self.title = _title_label(title)
        head = QtWidgets.QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title, 1)
        self.export_button = QtWidgets.QToolButton()
        self.export_button.setObjectName("viewExport")
        self.export_button.setText("⤓")
        self.export_button.setAutoRaise(True)
        self.export_button.setToolTip("Export this view (PNG, SVG" + (", CSV)" if self._has_csv() else ")"))
        self.export_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.export_button)
        menu.addAction("Save as PNG image…", lambda: self._export_dialog("png"))
        menu.addAction("Save as SVG drawing…", lambda: self._export_dialog("svg"))
        if self._has_csv():
            menu.addAction("Save the data as CSV…", lambda: self._export_dialog("csv"))
        self.export_button.setMenu(menu)
        head.addWidget(self.export_button, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        self._layout.addLayout(head)
        self.caption = _caption_label(caption)

    # -- exports -------------------------------------------------------------------------------------
    def _has_csv(self) -> bool:
        return type(self).export_csv is not _ViewFrame.export_csv

    def _export_dialog(self, kind: str) -> None:
        name = "".join(c if c.isalnum() else "-" for c in self.title.text().lower()).strip("-")[:40] or "view"
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "csv": "CSV table (*.csv)"}
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view", f"{name}.{kind}", filters[kind])
        if not path:
            return
        try:
            {"png": self.export_png, "svg": self.export_svg, "csv": self.export_csv}[kind](path)
        except (OSError, ValueError) as exc:
            QtWidgets.QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc}")

    def _without_export_button(self):
        """For an export: the ⤓ button is not drawn (its room stays, so nothing moves)."""
        view = self

        class Hidden:
            def __enter__(self):
                self.shown = view.export_button.isVisibleTo(view)
                policy = view.export_button.sizePolicy()
                policy.setRetainSizeWhenHidden(True)
                view.export_button.setSizePolicy(policy)
                view.export_button.hide()

            def __exit__(self, *exc):
                view.export_button.setVisible(self.shown)

        return Hidden()

    def export_png(self, path: str) -> None:
        """The view as it looks on screen (title, plot, caption, not the ⤓ button), written atomically."""
        with self._without_export_button():
            image = self.grab()
        _atomic_qt_write(path, lambda tmp: image.save(tmp, "PNG"))

    def export_svg(self, path: str) -> None:
        """The view as a scalable drawing (text and curves stay vectors), written atomically."""
        from PySide6.QtSvg import QSvgGenerator

        def write(tmp: str) -> bool:
            gen = QSvgGenerator()
            gen.setFileName(tmp)
            gen.setSize(self.size())
            gen.setViewBox(self.rect())
            gen.setTitle(self.title.text())
            painter = QtGui.QPainter()
            if not painter.begin(gen):
                return False
            try:
                with self._without_export_button():
                    self.render(painter, QtCore.QPoint(0, 0))
            finally:
                painter.end()
            return True

        _atomic_qt_write(path, write)

    def export_csv(self, path: str) -> None:
        raise ValueError("this view has no table to export")

    def _set_body(self, widget: QtWidgets.QWidget) -> None:
        # the body shares its place with a placeholder text (set_placeholder): an empty plot's made-up
        # axes (0..1, -0.4..0.4) say nothing, a sentence saying what will appear there, and when, does
        self._body = QtWidgets.QStackedWidget()
        self._body.addWidget(widget)
        self.placeholder = QtWidgets.QLabel("")
        self.placeholder.setObjectName("viewPlaceholder")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setMargin(12)
        self._body.addWidget(self.placeholder)
        self._layout.addWidget(self._body, 1)
        self._layout.addWidget(self.caption)
        self.caption.setVisible(bool(self.caption.text()))
        if isinstance(widget, pg.PlotWidget):
            for axis in widget.getPlotItem().axes.values():
                # values as they are: pyqtgraph's own "(x0.001)" label made an accuracy of 0.114 read "114",
                # and a narrow plot cut that label to "(x0.0", so the numbers read 1000 times too large
                axis["item"].enableAutoSIPrefix(False)

    def set_caption(self, text: str) -> None:
        """Say what the view shows (rich text; a "<" that opens no tag is shown as it is)."""
        text = rich_text(text)
        if text != self.caption.text():
            self.caption.setText(text)
        self.caption.setVisible(bool(text))

    def set_placeholder(self, text: str) -> None:
        """Show ``text`` in place of the plot until there is something to plot; "" shows the plot again."""
        if text != self.placeholder.text():
            self.placeholder.setText(text)
        self._body.setCurrentIndex(1 if text else 0)

    @property
    def showing_placeholder(self) -> bool:
        return self._body.currentIndex() == 1

    # -- the readout under the mouse -----------------------------------------------------------------
    hover: HoverReadout | None = None

    def set_hover_text(self, hover_text: HoverText | None) -> None:
        """A panel's ``hover_text(info) -> str`` (rich text; None or "" falls back to the plain readout)."""
        if self.hover is not None:
            self.hover.hover_text = hover_text
            self.hover.refresh()

    def _refresh_hover(self) -> None:
        if self.hover is not None:
            self.hover.refresh()


def _atomic_qt_write(path: str, write) -> None:
    """Let ``write(tmp_path) -> bool`` (Qt's savers answer with a bool) produce the file beside ``path``,
    then move it into place (``explorer.core.atomic.atomic_write``)."""
    from explorer.core.atomic import atomic_write

    def produce(tmp: Path) -> None:
        if not write(str(tmp)):
            raise OSError(f"{path}: the file could not be written")

    atomic_write(path, produce, suffix=Path(path).suffix or ".tmp")


class MosaicView(_ViewFrame):
    """Many small images as one tiled image, optionally in labelled rows (e.g. input / reconstruction)."""

    def __init__(self, title: str, caption: str = "", *, levels=(0.0, 1.0), colormap: str = "grey",
                 normalize: str = "none", hover_text: HoverText | None = None, parent=None):
        super().__init__(title, caption, parent)
        self.levels = levels
        self.normalize = normalize
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.viewbox = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.viewbox.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.image.setLevels(levels)
        self.image.setLookupTable(_lut(colormap))
        self.viewbox.addItem(self.image)
        self._row_labels: list[pg.TextItem] = []
        self._row_texts: list[str] = []
        # what the tiles hold before normalising: (n, h*w) images, their shape, tiles per row
        self._raw: np.ndarray | None = None
        self._tile_shape: tuple[int, int] = (0, 0)
        self._cols = 1
        self.updates = 0
        self._set_body(self.graphics)
        self._mark = _pixel_mark(self.viewbox)
        self.hover = HoverReadout(self, self.graphics, self._hover_info, self._hover_default, hover_text,
                                  on_show=self._mark_pixel, on_hide=self._mark.hide)

    def set_images(self, images: np.ndarray, image_shape: Sequence[int], cols: int | None = None) -> None:
        h, w = int(image_shape[0]), int(image_shape[1])
        raw = np.asarray(images).reshape(-1, h * w)
        n = raw.shape[0]
        mosaic = tile_images(images, image_shape, cols=cols, normalize=self.normalize)
        self._row_texts = []
        self._show(mosaic, (raw, (h, w), cols or max(1, int(math.ceil(math.sqrt(max(n, 1)))))))

    def set_rows(self, rows: Sequence[np.ndarray], image_shape: Sequence[int], labels: Sequence[str] = ()) -> None:
        """One row of tiles per array in ``rows`` (all with the same number of images)."""
        n = max(len(np.asarray(r).reshape(len(r), -1)) for r in rows)
        h = int(image_shape[0])
        stacked = np.concatenate([np.asarray(r, dtype=np.float32).reshape(-1, h * int(image_shape[1]))
                                  for r in rows])
        mosaic = tile_images(stacked, image_shape, cols=n, normalize=self.normalize)
        reshaped = self.image.image is None or self.image.image.shape != mosaic.shape
        self._row_texts = list(labels)
        self._show(mosaic, (stacked, (h, int(image_shape[1])), n))
        if reshaped and labels:  # leave room on the left for the row labels
            w = int(image_shape[1])
            self.viewbox.setRange(xRange=(-1.6 * w, mosaic.shape[1]), yRange=(0, mosaic.shape[0]), padding=0.02)
        if list(labels) != [t.textItem.toPlainText() for t in self._row_labels]:
            for t in self._row_labels:
                self.viewbox.removeItem(t)
            self._row_labels = []
            for i, text in enumerate(labels):
                item = pg.TextItem(text, color="#d8dee9", anchor=(1.0, 0.5))
                font = item.textItem.font()
                font.setPointSize(12)
                font.setBold(True)
                item.setFont(font)
                item.setPos(-1.5, i * (h + 1) + h / 2)
                self.viewbox.addItem(item)
                self._row_labels.append(item)

    def _show(self, mosaic: np.ndarray, tiles: tuple | None = None) -> None:
        """Draw ``mosaic``; ``tiles`` = (raw images (n, h*w), (h, w), tiles per row) for the readout
        (None: the mosaic is one picture, read as it is)."""
        first = self.image.image is None or self.image.image.shape != mosaic.shape
        self.image.setImage(mosaic, autoLevels=False, levels=self.levels)
        if tiles is None:
            self._raw, self._tile_shape, self._cols = None, tuple(mosaic.shape), 1
            self._row_texts = []
        else:
            self._raw, self._tile_shape, self._cols = tiles
        if first:
            self.viewbox.autoRange(padding=0.02)
        self.updates += 1
        self._refresh_hover()

    def current_image(self) -> np.ndarray | None:
        return None if self.image.image is None else np.array(self.image.image)

    # -- the readout -------------------------------------------------------------------------------------
    def pixel_scene_pos(self, tile: int, row: int, col: int) -> QtCore.QPointF:
        """Scene point at the centre of pixel (row, col) of tile ``tile`` (for tests and scripted demos)."""
        h, w = self._tile_shape
        tr, tc = divmod(int(tile), self._cols)
        return self.viewbox.mapViewToScene(QtCore.QPointF(tc * (w + 1) + col + 0.5, tr * (h + 1) + row + 0.5))

    def _hover_info(self, scene_pos) -> dict | None:
        """``tile`` (index in the images given), ``row``/``col`` in the tile, ``pixel`` = row*w + col (the
        index into the flat image), ``value`` (before any normalising), ``shown`` (the value drawn),
        ``image_shape``; with labelled rows also ``row_label`` and ``example`` (position in the row)."""
        img = self.image.image
        if img is None or not self.viewbox.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.image.mapFromScene(scene_pos)
        x, y = int(math.floor(p.x())), int(math.floor(p.y()))
        if not (0 <= y < img.shape[0] and 0 <= x < img.shape[1]):
            return None
        h, w = self._tile_shape
        info: dict = {"view": self, "shown": float(img[y, x]), "image_shape": (h, w)}
        if self._raw is None:  # one picture
            info.update(tile=None, row=y, col=x, pixel=y * w + x, value=float(img[y, x]))
            return info
        tr, r = divmod(y, h + 1)
        tc, c = divmod(x, w + 1)
        k = tr * self._cols + tc
        if r >= h or c >= w or tc >= self._cols or k >= self._raw.shape[0]:
            return None  # a gap between tiles
        info.update(tile=k, row=r, col=c, pixel=r * w + c, value=float(self._raw[k, r * w + c]),
                    x0=tc * (w + 1), y0=tr * (h + 1))
        if self._row_texts:
            info.update(row_label=self._row_texts[tr] if tr < len(self._row_texts) else "", example=tc)
        return info

    def _hover_default(self, info: dict) -> str:
        where = f"row {info['row']}, col {info['col']}"
        if info.get("tile") is None:
            head = where
        elif "row_label" in info:
            head = f"{esc(info['row_label'])}, example {info['example']} · {where}"
        else:
            head = f"tile {info['tile']} · {where}"
        text = f"{head}<br>value <b>{fmt(info['value'])}</b>"
        if self.normalize != "none" and info.get("tile") is not None:
            text += f" <span style='color:#9aa5b5'>(drawn as {fmt(info['shown'], 3)} after scaling the tile)</span>"
        return text

    def _mark_pixel(self, info: dict) -> None:
        x0, y0 = info.get("x0", 0), info.get("y0", 0)
        self._mark.setRect(QtCore.QRectF(x0 + info["col"], y0 + info["row"], 1.0, 1.0))
        self._mark.show()


class HeatmapView(_ViewFrame):
    """A matrix as colours, with labelled axes and a colour bar."""

    def __init__(self, title: str, caption: str = "", *, xlabel: str = "", ylabel: str = "",
                 levels=(0.0, 1.0), colormap: str = "viridis", hover_text: HoverText | None = None, parent=None):
        super().__init__(title, caption, parent)
        self.levels = levels
        self.xlabel, self.ylabel = xlabel, ylabel
        self._matrix: np.ndarray | None = None
        self._first_row = 0.0
        self.plot = plot_widget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.invertY(True)
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.image = pg.ImageItem()
        self.image.setLevels(levels)
        cmap = pg.colormap.get(colormap)
        self.image.setLookupTable(cmap.getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=cmap, interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        space_colorbar_numbers(self.colorbar.axis)
        self.updates = 0
        self._set_body(self.plot)
        self._mark = _pixel_mark(self.plot.getPlotItem().vb)
        self.hover = HoverReadout(self, self.plot, self._hover_info, self._hover_default, hover_text,
                                  on_show=self._mark_cell, on_hide=self._mark.hide)

    def set_levels(self, levels) -> None:
        """Change the colour scale (e.g. to follow the data's range); the colour bar follows."""
        self.levels = (float(levels[0]), float(levels[1]))
        self.colorbar.setLevels(self.levels)
        self.colorbar.axis.fit_numbers()

    def set_matrix(self, m: np.ndarray, first_row: float = 0.0) -> None:
        """Show ``m``; ``first_row`` is the y value of row 0 (e.g. 1 when rows are layers 1..L)."""
        m = np.ascontiguousarray(m, dtype=np.float32)
        first = self.image.image is None or self.image.image.shape != m.shape
        self.image.setImage(m, autoLevels=False, levels=self.levels)
        if first_row:
            self.image.setRect(QtCore.QRectF(0, first_row - 0.5, m.shape[1], m.shape[0]))
        self._matrix, self._first_row = m, float(first_row)
        if first:
            self.plot.getPlotItem().vb.autoRange(padding=0)
        self.updates += 1
        self._refresh_hover()

    # -- the readout -------------------------------------------------------------------------------------
    def cell_scene_pos(self, row: int, col: int) -> QtCore.QPointF:
        """Scene point at the centre of cell (row, col) of the matrix (for tests and scripted demos)."""
        vb = self.plot.getPlotItem().vb
        return vb.mapViewToScene(self.image.mapToParent(QtCore.QPointF(col + 0.5, row + 0.5)))

    def _hover_info(self, scene_pos) -> dict | None:
        """``row``/``col`` of the matrix, ``y`` = first_row + row (the row's label on the axis), ``value``,
        ``xlabel``/``ylabel``."""
        m = self._matrix
        if m is None or not self.plot.getPlotItem().vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.image.mapFromScene(scene_pos)
        col, row = int(math.floor(p.x())), int(math.floor(p.y()))
        if not (0 <= row < m.shape[0] and 0 <= col < m.shape[1]):
            return None
        y = self._first_row + row
        return {"view": self, "row": row, "col": col, "y": int(y) if float(y).is_integer() else y,
                "value": float(m[row, col]), "xlabel": self.xlabel, "ylabel": self.ylabel}

    def _hover_default(self, info: dict) -> str:
        ylab, xlab = esc(info["ylabel"] or "row"), esc(info["xlabel"] or "column")
        return (f"{ylab} <b>{info['y']}</b>, {xlab} <b>{info['col']}</b><br>"
                f"value <b>{fmt(info['value'])}</b>")

    def _mark_cell(self, info: dict) -> None:
        rect = self.image.mapRectToParent(QtCore.QRectF(info["col"], info["row"], 1.0, 1.0))
        self._mark.setRect(rect)
        self._mark.show()


class CurveView(_ViewFrame):
    """Named series against training steps; each series is one PlotDataItem updated with setData."""

    def __init__(self, title: str, caption: str = "", *, xlabel: str = "step", ylabel: str = "",
                 logy: bool = False, hover_text: HoverText | None = None, parent=None):
        super().__init__(title, caption, parent)
        self.xlabel = xlabel
        self.plot = plot_widget()
        self.plot.setMenuEnabled(True)
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLogMode(False, logy)
        self.legend = add_legend(self.plot)
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
                                       labelOpts={"position": 0.92, "color": VIEWED_MARK, "anchors": [(0, 1), (0, 1)]})
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
                   symbol: str | None = None, right: bool = False) -> None:
        """A named series; ``right``: read on the right axis (see :meth:`set_right_axis`)."""
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
        self.ranges.fit([a for a, _ in self._drawn.values()],
                        [b for k, (_, b) in self._drawn.items() if k not in self._right_keys])
        self.legend.place()
        self._refresh_hover()

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
        """Every series as rows ``series,step,value`` (the legend's names), written atomically."""
        import csv
        import io

        from explorer.core.atomic import atomic_write_text

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["series", self.plot.getAxis("bottom").labelText or "x", "value"])
        for key, item in self._items.items():
            name = item.name() or key
            for x, y in zip(*self._data[key]):
                w.writerow([name, repr(float(x)), repr(float(y))])
        atomic_write_text(path, buf.getvalue())


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
