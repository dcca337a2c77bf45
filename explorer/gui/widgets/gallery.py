"""A clickable gallery of small images (e.g. held-out examples to probe a network with).

Any panel can use it: ``set_images(images, labels)`` with grey (n, H, W) or colour (n, H, W, 3) arrays in
[0, 1]; a click emits ``sigPicked(index)``. Thumbnails are enlarged with nearest-neighbour pixels so small
inputs (8x8 digits) stay sharp.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


def array_to_qimage(image: np.ndarray) -> QtGui.QImage:
    """A grey (H, W) or colour (H, W, 3) float array in [0, 1] as a QImage (a copy, safe to keep)."""
    a = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float32)), 0.0, 1.0)
    a = np.ascontiguousarray((a * 255.0 + 0.5).astype(np.uint8))
    h, w = a.shape[:2]
    if a.ndim == 3:
        return QtGui.QImage(a.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
    return QtGui.QImage(a.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()


class ImageGallery(QtWidgets.QListWidget):
    """Thumbnails in a wrapping grid, with a caption under each (e.g. the label); click to pick one."""

    sigPicked = QtCore.Signal(int)

    def __init__(self, thumb: int = 56, parent=None):
        super().__init__(parent)
        self.setObjectName("imageGallery")
        self.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.setMovement(QtWidgets.QListView.Movement.Static)
        self.setWrapping(True)
        self.setSpacing(4)
        self.setUniformItemSizes(True)
        self.thumb = int(thumb)
        self.setIconSize(QtCore.QSize(self.thumb, self.thumb))
        self.itemClicked.connect(lambda item: self.sigPicked.emit(self.row(item)))

    def set_images(self, images: np.ndarray, labels: Sequence[str] = ()) -> None:
        """Replace the thumbnails (the current pick is kept when the count stays the same)."""
        current = self.currentRow()
        self.blockSignals(True)
        self.clear()
        for i, img in enumerate(np.asarray(images)):
            pix = QtGui.QPixmap.fromImage(array_to_qimage(img)).scaled(
                self.thumb, self.thumb, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                QtCore.Qt.TransformationMode.FastTransformation)
            item = QtWidgets.QListWidgetItem(QtGui.QIcon(pix), str(labels[i]) if i < len(labels) else "")
            item.setToolTip(f"#{i}" + (f": {labels[i]}" if i < len(labels) else ""))
            self.addItem(item)
        if 0 <= current < self.count():
            self.setCurrentRow(current)
        self.blockSignals(False)

    def select(self, index: int | None) -> None:
        """Show ``index`` as the current pick (None: no pick, e.g. a drawn input) without emitting."""
        self.blockSignals(True)
        if index is None or not 0 <= index < self.count():
            self.clearSelection()
            self.setCurrentRow(-1)
        else:
            self.setCurrentRow(index)
        self.blockSignals(False)

    def item_center(self, index: int) -> QtCore.QPoint:
        """Viewport position of a thumbnail's centre (for clicking it in tests and scripted demos)."""
        return self.visualItemRect(self.item(index)).center()
