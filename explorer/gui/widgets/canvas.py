"""A canvas to draw an input with the mouse, at the network's input resolution.

The drawing lives in a float array of exactly the input's H x W pixels in [0, 1] (white ink on black,
like the digits), so what is drawn is what the network gets. The brush is a soft disc a few input
pixels wide, so strokes look like the thick, blurred pen strokes of the data sets. A finished stroke
(mouse release) emits ``sigDrawn(array)``; ``Clear`` empties it.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.widgets.gallery import array_to_qimage


class DrawingCanvas(QtWidgets.QWidget):
    sigDrawn = QtCore.Signal(object)   # np.ndarray (H, W) float32 in [0, 1]

    def __init__(self, height: int = 28, width: int = 28, brush: float | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("drawingCanvas")
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setCursor(QtCore.Qt.CursorShape.CrossCursor)
        self._brush_px = brush
        self.set_resolution(height, width)
        self._last: tuple[float, float] | None = None
        self.strokes = 0

    # -- the array ----------------------------------------------------------------------------------
    def set_resolution(self, height: int, width: int) -> None:
        """Start a blank drawing of ``height`` x ``width`` pixels (the network's input size)."""
        self.image = np.zeros((int(height), int(width)), np.float32)
        # brush radius: about a tenth of the side (a pen stroke of a 28x28 digit is ~2-3 pixels wide)
        self.radius = float(self._brush_px) if self._brush_px else max(0.8, 0.09 * min(height, width))
        self.update()

    def clear(self) -> None:
        self.image[:] = 0.0
        self.update()

    def _square(self) -> QtCore.QRectF:
        h, w = self.image.shape
        side = min(self.width() / w, self.height() / h)
        return QtCore.QRectF((self.width() - side * w) / 2, (self.height() - side * h) / 2, side * w, side * h)

    def to_pixels(self, pos: QtCore.QPointF) -> tuple[float, float]:
        """Widget position -> (row, column) in image pixels (continuous)."""
        r = self._square()
        h, w = self.image.shape
        return ((pos.y() - r.top()) / r.height() * h, (pos.x() - r.left()) / r.width() * w)

    def dab(self, row: float, col: float) -> None:
        """Ink a soft disc centred at (row, col) in image pixels (max with what is there)."""
        h, w = self.image.shape
        yy, xx = np.mgrid[0:h, 0:w]
        d2 = (yy + 0.5 - row) ** 2 + (xx + 0.5 - col) ** 2
        ink = np.clip(1.5 - np.sqrt(d2) / self.radius, 0.0, 1.0).astype(np.float32)
        np.maximum(self.image, ink, out=self.image)

    def stroke_to(self, row: float, col: float) -> None:
        """Ink a line from the last point to (row, col), in steps of a fraction of the brush."""
        if self._last is None:
            self.dab(row, col)
        else:
            r0, c0 = self._last
            n = max(1, int(np.ceil(np.hypot(row - r0, col - c0) / (0.4 * self.radius))))
            for t in np.linspace(0.0, 1.0, n + 1)[1:]:
                self.dab(r0 + t * (row - r0), c0 + t * (col - c0))
        self._last = (row, col)
        self.update()

    # -- Qt events ---------------------------------------------------------------------------------
    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt name)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self._last = None
            self.stroke_to(*self.to_pixels(ev.position()))
        elif ev.button() == QtCore.Qt.MouseButton.RightButton:
            self.clear()

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if ev.buttons() & QtCore.Qt.MouseButton.LeftButton and self._last is not None:
            self.stroke_to(*self.to_pixels(ev.position()))

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if ev.button() == QtCore.Qt.MouseButton.LeftButton and self._last is not None:
            self._last = None
            self.strokes += 1
            self.sigDrawn.emit(self.image.copy())

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor("#15181d"))
        r = self._square()
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(r, array_to_qimage(self.image))
        p.setPen(QtGui.QPen(QtGui.QColor("#4c566a"), 1))
        p.drawRect(r)
        if not self.image.any():
            p.setPen(QtGui.QColor("#7b8594"))
            p.drawText(r, QtCore.Qt.AlignmentFlag.AlignCenter, "draw here\n(right click clears)")
        p.end()
