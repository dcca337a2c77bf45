"""HeatmapView: a matrix as colours, with labelled axes and a colour bar."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from explorer.gui.widgets.hover import HoverReadout, HoverText, esc, fmt
from explorer.gui.widgets.views.frame import _ViewFrame
from explorer.gui.widgets.views.plotting import _pixel_mark, plot_widget, space_colorbar_numbers, whole_number_ticks


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
        for side in ("bottom", "left"):  # (rows and columns are counted: each number under its cell's middle)
            whole_number_ticks(self.plot.getPlotItem().getAxis(side), centre=0.5)
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
        self.plot.getPlotItem().getAxis("left").cell_centre = 0.0 if first_row else 0.5  # (rows' middles)
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
