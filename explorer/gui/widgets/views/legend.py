"""The curve plots' legend: :class:`ViewLegend`, which moves to the emptiest corner (or, where every corner
would hide the data, to a band above the plot, or in a plot too short for that, behind a :class:`LegendChip`),
and :func:`add_legend`."""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

DRAG_TIP = "Drag the legend to move it; the plot's A button puts it back"
LEGEND_TEXT, LEGEND_LARGE_TEXT = "9pt", "14pt"  # the names' type, and in presentation mode
LEGEND_BRUSH = (21, 24, 29, 175)  # the plots' background, translucent: the curves show through the legend
LEGEND_PEN = (216, 222, 233, 60)
LEGEND_PLACE_EVERY_S = 1.0  # a legend looks for the emptiest corner at most this often
LEGEND_COVER_LIMIT = 0.2    # a legend that would hide more data than this (a fifth of a curve) in every corner
BAND_GAP = 3                # pixels between a band legend and the plot's edge
BAND_KEEPS = 0.55           # ... moves to a band above the plot when the data keep this share of its height
BAND_MIN_DATA_PX = 50       # and at least this many pixels (a docked plot 60 px tall keeps its legend inside)
BAND_LEAVE_MARGIN_PX = 10   # a band leaves when the data have this much less than BAND_MIN_DATA_PX
FOLD_HEIGHT_SHARE = 0.7     # a legend that hides data, has no room for a band, and is taller than this share
FOLD_AREA_SHARE = 0.5       # of the data area (or covers this share of it) folds into a chip: see ViewLegend
UNFOLD_FACTOR = 0.85        # and unfolds when it is under these shares times this (not in and out at the line)
REPLACE_GROWTH_PX = 30      # an opened folded legend is placed afresh when its plot grows by this much
_CORNERS = {  # name: (the legend's point, the plot's point, offset in pixels)
    "top-right": ((1, 0), (1, 0), (-10, 10)), "top-left": ((0, 0), (0, 0), (10, 10)),
    "bottom-right": ((1, 1), (1, 1), (-10, -10)), "bottom-left": ((0, 1), (0, 1), (10, -10)),
}


class ViewLegend(pg.LegendItem):
    """A legend that keeps off the data: on a translucent panel, in the corner of the plot that the data
    cover least (looked for again as the data change), or where the user drags it (the plot's "A" button
    puts it back in the emptiest corner). A legend in a fixed corner covered the curves in most plots.

    Where even the emptiest corner would hide more than :data:`LEGEND_COVER_LIMIT` of the data (a short
    docked plot that its curves fill, a noisy trace across the whole plot), the legend leaves the data
    area for a *band* above it: the plot's layout gives up that many pixels at its top, and the entries
    sit there side by side, in as many columns as the plot's width holds. A projected plot is then
    smaller but every curve and every name can be read. Once in the band a legend stays there (a plot
    that jumped between the two as its data moved would be worse); the A button tries the corners again.

    In a plot too short for a band (a docked plot at 1366x768), a legend that would hide data and take
    most of the data area (:data:`FOLD_HEIGHT_SHARE`, :data:`FOLD_AREA_SHARE`), or that the data area cannot
    hold at all (it would hang over the x axis), *folds* into a small chip in
    the top right corner, "≡ legend": the curves are seen whole, and the pointer on the chip opens the
    legend over them until it leaves. It unfolds for good when the plot has room again. Before, such a
    legend covered most of the curves and was itself cut off at the plot's edge."""

    def __init__(self):
        super().__init__(offset=_CORNERS["top-right"][2], brush=pg.mkBrush(*LEGEND_BRUSH),
                         pen=pg.mkPen(*LEGEND_PEN), labelTextColor="#d8dee9")
        self.corner = "top-right"
        self.moved_by_user = False
        self.in_band = False
        self.plot_item: pg.PlotItem | None = None  # set by add_legend: where the band goes
        self._band_key: tuple = ()  # the plot's width and the names the band was laid out for (and their widths)
        self._top_margin: float | None = None  # the plot layout's own top margin, before a band
        self._band_refused = (0.0, 0.0)  # the plot's size when a band left it too little (not tried again within)
        self.folded = False
        self.chip: LegendChip | None = None  # shown while folded
        self._folded_at = (0.0, 0.0)  # the data area's size when it folded
        self.pinned = False  # a folded legend opened and clicked: open until clicked again (see mouseClickEvent)
        self.shown_changed = None  # called when it folds, unfolds, opens or closes (the curves' end labels follow)
        self._moving = False  # between parents: the resizes this causes place nothing
        self._z_over_data = 0.0
        self._placed_t = 0.0
        self.setToolTip(DRAG_TIP)

    def paint(self, p, *args) -> None:
        if self.items:  # an empty legend draws nothing, not an empty frame
            super().paint(p, *args)

    def hoverEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph's name)
        super().hoverEvent(ev)
        if self.folded and ev.isExit() and not self.pinned:  # opened from its chip: the pointer left it, it folds again
            self.peek(False)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph's name)
        """A click on a legend opened from its chip keeps it open when the pointer leaves (a tap on a touch
        screen, where the pointer never leaves, does the same); a second click folds it again."""
        if self.folded and self.isVisible() and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            if self.pinned:
                self.peek(False)
            else:
                self.pinned = True

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        if self.in_band or self.folded:  # its band is its place: nothing under it to uncover
            return
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self.moved_by_user = True
        super().mouseDragEvent(ev)

    def relabel(self, item, text: str) -> None:
        """Rename ``item``'s entry; the legend takes its new size at once, and is placed again at the next
        :meth:`place` (a legend laid out in two columns for short names overflowed its plot with long ones)."""
        for sample, label in self.items:
            if sample.item is item and label.text != text:
                label.setText(text)
                self._lay_out()
                self._placed_t = 0.0

    def follow_again(self, *_args) -> None:
        self.moved_by_user = False
        self._placed_t = 0.0
        self._band_refused = (0.0, 0.0)
        self.leave_band()
        self.unfold()
        self.place()

    def plot_resized(self, *_args) -> None:
        """The data area took another size: perhaps another corner, a band, or room to unfold. A legend opened
        from its chip stays put (and open) as the axes' labels widen or narrow by a few pixels; it is folded
        and placed afresh when the plot grew (left open, one kept open by a click would stay folded for good)."""
        vb = self._data_area()
        if self.folded and self.isVisible() and vb is not None and not self._moving:
            w, h = self._folded_at
            if vb.width() < w + REPLACE_GROWTH_PX and vb.height() < h + REPLACE_GROWTH_PX:
                return
            self.peek(False)
        self.place(force=True)

    def _lay_out(self, columns: int | None = None) -> None:
        """The entries laid out again (in ``columns``), and the legend's size taken from them at once."""
        if columns is not None:
            self.setColumnCount(columns)
        self.layout.activate()
        self.updateSize()

    def _data_area(self) -> pg.ViewBox | None:
        """The plot's data area (the legend's parent there, but not while in its band or opened from its chip)."""
        return self.plot_item.vb if self.plot_item is not None else self.parentItem()

    def set_corner(self, corner: str) -> None:
        item_pos, parent_pos, offset = _CORNERS[corner]
        self.corner = corner
        self.anchor(item_pos, parent_pos, offset)

    def place(self, force: bool = False) -> None:
        """Move to the corner where the plotted data cover the least of the legend (at most once a second)."""
        now = time.monotonic()
        if self._moving:  # (the layout's own resize, while the legend changes place: see enter_band)
            return
        if not self.items:  # emptied: no band kept, no chip
            self.leave_band()
            self.unfold()
            return
        if self.moved_by_user or not (self.isVisible() or self.folded):
            return
        if self.folded and self.isVisible():  # opened from its chip: it stays put until the pointer leaves
            return
        if not force and now - self._placed_t < LEGEND_PLACE_EVERY_S:
            return
        self._placed_t = now
        if self.in_band:
            self._fit_band()
            pi = self.plot_item
            # the plot shrank: back over the data (a margin under the least it entered with: its estimate of
            # the band's rows may be a few pixels short, and a legend that went in and out would be worse)
            if pi is not None and pi.vb.height() < BAND_MIN_DATA_PX - BAND_LEAVE_MARGIN_PX:
                self._band_refused = (pi.boundingRect().width(), pi.boundingRect().height())
                self.leave_band()
                self.place(force=True)
            return
        vb = self._data_area()
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
        if scores[best] > LEGEND_COVER_LIMIT and self._band_fits(area, size):
            self.unfold()
            self.enter_band()
            return
        height_share = size.height() / max(1.0, area.height())
        area_share = size.width() * size.height() / max(1.0, area.width() * area.height())
        # taller than the data area less its corner's margins, it hangs over the x axis's numbers, whatever it
        # covers (the RBM's pseudo-log-likelihood at 1366x768: 40 px of legend in 40 px of data)
        fits = size.height() + 2 * abs(_CORNERS["top-right"][2][1]) <= area.height()
        if self.folded:
            if fits and height_share < FOLD_HEIGHT_SHARE * UNFOLD_FACTOR and area_share < FOLD_AREA_SHARE * UNFOLD_FACTOR:
                self.unfold()
            else:
                return
        elif not fits or (scores[best] > LEGEND_COVER_LIMIT
                          and (height_share > FOLD_HEIGHT_SHARE or area_share > FOLD_AREA_SHARE)):
            self.fold()
            return
        # a clearly emptier corner only: a legend that hops back and forth is worse than one that overlaps
        if best != self.corner and (self.corner not in scores or scores[best] < 0.5 * scores[self.corner]):
            self.set_corner(best)

    def set_large(self, large: bool) -> None:
        """Presentation mode's type (``large``: for a projector, as the axes get) or the normal type back; the
        legend is then placed afresh (a band's columns, a fold, follow the names' new widths)."""
        size = LEGEND_LARGE_TEXT if large else LEGEND_TEXT
        if self.opts["labelTextSize"] == size:
            return
        self.opts["labelTextSize"] = size
        for _sample, label in self.items:
            label.setText(label.text, size=size)
        self._lay_out()
        if self.chip is not None:
            self.chip.set_large(large)
        self._placed_t = 0.0
        self.place(force=True)

    # -- folded into a chip ----------------------------------------------------------------------------------
    def fold(self) -> None:
        """Hide behind a chip in the top right corner (see the class's docstring)."""
        vb = self._data_area()
        if self.folded or vb is None:
            return
        if self.chip is None:
            self.chip = LegendChip(self)
        self.chip.setParentItem(vb)
        self.chip.anchor((1, 0), (1, 0), _CORNERS["top-right"][2])
        self.chip.setZValue(self.zValue() + 1)
        self.folded = True
        self._folded_at = (vb.width(), vb.height())
        self.setToolTip("")
        self.peek(False)
        self._tell()

    def unfold(self) -> None:
        """Back in sight for good (the plot has room again, or the A button)."""
        if not self.folded:
            return
        self.folded = self.pinned = False
        self.setToolTip(DRAG_TIP)
        if self.chip is not None:
            self.chip.hide()
        self._over_the_plot(False)
        self.show()
        self._tell()

    def _tell(self) -> None:
        if self.shown_changed is not None:
            self.shown_changed()

    def peek(self, on: bool) -> None:
        """A folded legend opened (``on``: the pointer came onto its chip) or closed again. Open, it lies
        over the whole plot, axes included, from its top right corner: over the chip, under the pointer
        (which closes it on leaving), and whole, not cut off at the data area's edge."""
        if not self.folded:
            return
        if not on:
            self.pinned = False
        self._over_the_plot(on)
        self.setVisible(on)
        if self.chip is not None:
            self.chip.setVisible(not on)
        self._tell()

    def _over_the_plot(self, on: bool) -> None:
        pi = self.plot_item
        if pi is None:
            return
        if on and self.parentItem() is not pi:
            self._z_over_data = self.zValue()
            self.setParentItem(pi)
            # its top right corner on the chip's, so that the pointer on the chip is on the legend
            offset = (-BAND_GAP, BAND_GAP)
            if self.chip is not None:
                corner = pi.mapFromScene(self.chip.sceneBoundingRect().topRight())
                offset = (corner.x() - pi.boundingRect().width(), corner.y())
            self.anchor((1, 0), (1, 0), offset)
            self.setZValue(1000)  # (above the axes, the plot item's other children)
        elif not on and self.parentItem() is pi and not self.in_band:
            self.setParentItem(pi.vb)
            self.setZValue(self._z_over_data)
            self.set_corner(self.corner)

    # -- the band above the plot ------------------------------------------------------------------------------
    def enter_band(self) -> None:
        """Leave the data area for a band above it (see the class's docstring)."""
        pi = self.plot_item
        if self.in_band or pi is None:
            return
        self.in_band = True
        self._top_margin = pi.layout.getContentsMargins()[1]
        self._moving = True
        try:
            self.setParentItem(pi)
            self.anchor((1, 0), (1, 0), (-BAND_GAP, BAND_GAP))
            self._band_key = ()
            self._fit_band()
        finally:
            self._moving = False
        self.setToolTip("")  # (not to be dragged in its band)

    def _band_fits(self, area: QtCore.QRectF, size: QtCore.QSizeF) -> bool:
        """Whether a band would leave the data enough of the plot's height: its rows, as many columns as
        the plot's width holds, take the rest."""
        pi = self.plot_item
        if pi is None:
            return False
        # (tried again once the plot is wider, fewer rows, or taller than when the band left it too little)
        w, h = pi.boundingRect().width(), pi.boundingRect().height()
        if w <= self._band_refused[0] + 20 and h <= self._band_refused[1] + 20:
            return False
        n = len(self.items)
        cols = max(1, int(self.columnCount))
        row_h, col_w = size.height() / max(1, math.ceil(n / cols)), size.width() / cols
        fit = max(1, min(n, int((pi.boundingRect().width() - 2 * BAND_GAP) // max(1.0, col_w))))
        band = row_h * math.ceil(n / fit) + 2 * BAND_GAP
        left = area.height() - band
        return left >= BAND_MIN_DATA_PX and left >= BAND_KEEPS * area.height()

    def leave_band(self) -> None:
        """Back over the data area, in a corner (the A button: the corners are tried again)."""
        pi = self.plot_item
        if not self.in_band or pi is None:
            return
        self.in_band = False
        self._moving = True  # (the margin given back resizes the data area: nothing is placed meanwhile)
        try:
            self.setParentItem(pi.vb)
            self.set_corner(self.corner)
            left, _top, right, bottom = pi.layout.getContentsMargins()
            pi.layout.setContentsMargins(left, self._top_margin or 0.0, right, bottom)
            pi.layout.activate()
        finally:
            self._moving = False
        self.setToolTip(DRAG_TIP)

    def _fit_band(self) -> None:
        """As many columns as the plot's width holds (fewest rows), and the plot's top margin made the band's
        height; laid out again only when the plot's width or the entries changed."""
        pi = self.plot_item
        if pi is None:
            return
        width = pi.boundingRect().width() - 2 * BAND_GAP
        # (a name's width too: presentation mode's large type keeps the names but widens them)
        key = (width, tuple((label.text, round(label.item.boundingRect().width())) for _sample, label in self.items))
        if key != self._band_key:
            self._band_key = key
            n = len(self.items)
            for cols in range(max(1, n), 0, -1):  # the most columns that fit
                self._lay_out(cols)
                if self.width() <= width or cols == 1:
                    break
            balanced = math.ceil(n / math.ceil(n / cols)) if n else 1  # as many rows, filled evenly (4 + 3, not 6 + 1)
            if balanced != cols:
                self._lay_out(balanced)
        left, top, right, bottom = pi.layout.getContentsMargins()
        want = (self._top_margin or 0.0) + self.height() + 2 * BAND_GAP
        if abs(top - want) > 0.5:
            pi.layout.setContentsMargins(left, want, right, bottom)
            pi.layout.activate()  # (the data area shrinks now, not at the plot's next resize)

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


class LegendChip(pg.GraphicsWidgetAnchor, pg.GraphicsWidget):
    """What a folded :class:`ViewLegend` leaves in sight: "≡ legend" on the legend's translucent panel.
    The pointer on it opens the legend until the pointer leaves; a click (or a tap on a classroom's touch
    screen, where no pointer ever leaves) keeps it open until the legend is clicked again."""

    TEXT = "≡ legend"

    def __init__(self, legend: ViewLegend):
        pg.GraphicsWidget.__init__(self)
        pg.GraphicsWidgetAnchor.__init__(self)
        self.legend = legend
        self.label = QtWidgets.QGraphicsSimpleTextItem(self.TEXT, self)
        self.label.setBrush(pg.mkBrush("#d8dee9"))
        self.label.setPos(5, 2)
        self._base_font = self.label.font()
        self.set_large(legend.opts["labelTextSize"] == LEGEND_LARGE_TEXT)
        self.setToolTip("The legend: point here to open it, or click to keep it open (a click on it closes it)")

    def set_large(self, large: bool) -> None:
        font = self.label.font()
        font.setPointSizeF(14.0 if large else self._base_font.pointSizeF())
        self.label.setFont(font)
        rect = self.label.boundingRect()
        self.setGeometry(0, 0, rect.width() + 10, rect.height() + 4)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt name)
        return QtCore.QRectF(0, 0, self.width(), self.height())

    def paint(self, p, *args) -> None:
        p.setPen(pg.mkPen(*LEGEND_PEN))
        p.setBrush(pg.mkBrush(*LEGEND_BRUSH))
        p.drawRect(self.boundingRect())

    def hoverEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph's name)
        if not ev.isExit():
            self.legend.peek(True)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph's name)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.legend.peek(True)
            self.legend.pinned = True


def add_legend(plot: pg.PlotWidget) -> ViewLegend:
    """A :class:`ViewLegend` on ``plot``: series plotted with a name join it, as with ``addLegend``."""
    pi = plot.getPlotItem()
    legend = ViewLegend()
    legend.plot_item = pi
    legend.setParentItem(pi.vb)
    pi.legend = legend
    pi.autoBtn.clicked.connect(legend.follow_again)
    pi.vb.sigResized.connect(legend.plot_resized)
    return legend
