"""MosaicView: many small images tiled into one image item, optionally in labelled rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from explorer.gui.widgets.hover import HoverReadout, HoverText, esc, fmt
from explorer.gui.widgets.views.frame import _ViewFrame
from explorer.gui.widgets.views.plotting import _lut, _pixel_mark, mosaic_columns, tile_images

ROW_LABEL_GAP_PX = 8  # screen pixels between a row's label and its first tile
ROW_MARGIN_PX = 4  # and around the labelled rows, to the view's edges


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
        # tile pitch (rows, columns) in image pixels, when not (h + 1, w + 1) (tiles with a strip of their own)
        self._pitch: tuple[int, int] | None = None
        self._rows_fit = False  # labelled rows on show: their range is fitted again to each new view size
        self.updates = 0
        self._set_body(self.graphics)
        self.viewbox.sigResized.connect(self._fit_rows)
        self._mark = _pixel_mark(self.viewbox)
        self.hover = HoverReadout(self, self.graphics, self._hover_info, self._hover_default, hover_text,
                                  on_show=self._mark_pixel, on_hide=self._mark.hide)

    def set_images(self, images: np.ndarray, image_shape: Sequence[int], cols: int | None = None) -> None:
        """Tile ``images`` (n, h, w) ``cols`` to a row; without ``cols``, as many to a row as draws them
        largest in the view's place (a square grid while the view has no size yet): 100 RBM filters in a
        wide, short dock were a 10 x 10 square of 11 px tiles at 1366x768."""
        h, w = int(image_shape[0]), int(image_shape[1])
        raw = np.asarray(images).reshape(-1, h * w)
        n = raw.shape[0]
        if cols is None:
            place = self.viewbox.size()
            cols = (mosaic_columns((n, h, w), place.width(), place.height())
                    if place.width() > 1 and place.height() > 1 and n > 0 else max(1, math.ceil(math.sqrt(max(n, 1)))))
        mosaic = tile_images(images, image_shape, cols=cols, normalize=self.normalize)
        self._row_texts = []
        self._rows_fit = False
        self._pitch = None
        self._show(mosaic, (raw, (h, w), cols))

    def set_rows(self, rows: Sequence[np.ndarray], image_shape: Sequence[int], labels: Sequence[str] = ()) -> None:
        """One row of tiles per array in ``rows`` (all with the same number of images)."""
        n = max(len(np.asarray(r).reshape(len(r), -1)) for r in rows)
        h = int(image_shape[0])
        stacked = np.concatenate([np.asarray(r, dtype=np.float32).reshape(-1, h * int(image_shape[1]))
                                  for r in rows])
        mosaic = tile_images(stacked, image_shape, cols=n, normalize=self.normalize)
        reshaped = self.image.image is None or self.image.image.shape != mosaic.shape
        self._row_texts = list(labels)
        self._pitch = None
        self._show(mosaic, (stacked, (h, int(image_shape[1])), n))
        relabelled = list(labels) != [t.textItem.toPlainText() for t in self._row_labels]
        if relabelled:
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
        self._rows_fit = bool(labels)
        if labels and (reshaped or relabelled):
            self._fit_rows()

    def _fit_rows(self) -> None:
        """Labelled rows centred in the view, their labels in sight on the left.

        The labels are text of a fixed size on screen, so their room is worked out in screen pixels for the
        view's size (again at each resize): the tiles as large as the view allows with the longest label on
        their left, and centred (as much room on their right) wherever that leaves the room. A room of 1.6 tile
        widths on the left only, as before, pushed a one-tile row (the CD-1 step-through's x) far to the right
        of its place, out of line with the stacks of the later steps, and cut long labels ("background")."""
        img = self.image.image
        if not self._rows_fit or not self._row_labels or img is None:
            return
        mh, mw = img.shape[:2]
        size = self.viewbox.size()
        wp, hp = size.width(), size.height()
        if wp < 2 or hp < 2:  # not laid out yet: fitted again at its first resize
            return
        label_px = max(t.textItem.boundingRect().width() for t in self._row_labels)
        side, m = label_px + ROW_LABEL_GAP_PX + ROW_MARGIN_PX, ROW_MARGIN_PX
        # the tiles as large as the labels on their left leave them, in screen pixels per image pixel ...
        scale = min(max(wp - side - m, 0.25 * wp) / mw, max(hp - 2 * m, 0.5 * hp) / mh)
        spare = max(wp - side - m - scale * mw, 0.0)
        if spare >= side - m:  # ... centred, where the labels' room fits on their right too
            left = right = side
        else:  # (a narrow place: the labels and tiles together centred, the tiles no smaller for it)
            left, right = side + spare / 2, m + spare / 2
        for t in self._row_labels:
            t.setPos(-ROW_LABEL_GAP_PX / scale, t.pos().y())
        self.viewbox.setRange(xRange=(-left / scale, mw + right / scale), yRange=(-m / scale, mh + m / scale),
                              padding=0)

    def _show(self, mosaic: np.ndarray, tiles: tuple | None = None) -> None:
        """Draw ``mosaic``; ``tiles`` = (raw images (n, h*w), (h, w), tiles per row) for the readout
        (None: the mosaic is one picture, read as it is)."""
        first = self.image.image is None or self.image.image.shape != mosaic.shape
        self.image.setImage(mosaic, autoLevels=False, levels=self.levels)
        if tiles is None:
            self._raw, self._tile_shape, self._cols = None, tuple(mosaic.shape), 1
            self._row_texts = []
            self._rows_fit = False
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
        py, px = self.tile_pitch()
        tr, tc = divmod(int(tile), self._cols)
        return self.viewbox.mapViewToScene(QtCore.QPointF(tc * px + col + 0.5, tr * py + row + 0.5))

    def tile_pitch(self) -> tuple[int, int]:
        """From one tile's top left to the next tile's below and to the right, in image pixels."""
        h, w = self._tile_shape
        return self._pitch if self._pitch is not None else (h + 1, w + 1)

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
        py, px = self.tile_pitch()
        tr, r = divmod(y, py)
        tc, c = divmod(x, px)
        k = tr * self._cols + tc
        if r >= h or c >= w or tc >= self._cols or k >= self._raw.shape[0]:
            return None  # a gap between tiles
        info.update(tile=k, row=r, col=c, pixel=r * w + c, value=float(self._raw[k, r * w + c]),
                    x0=tc * px, y0=tr * py)
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
