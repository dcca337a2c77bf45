"""A readout that follows the mouse over a plot and says what is under it, with the numbers.

Every shared view (mosaic, heatmap, curve, feature maps) owns one :class:`HoverReadout`. The view knows
its geometry: ``locate(scene_pos)`` turns a scene point into an ``info`` dict (tile, pixel, value...)
or None where nothing is pointed at. The readout turns ``info`` into text, either the view's own plain
description (``default_text``) or a panel's ``hover_text(info)`` that gives the lecture's equation with
the current numbers. A panel's callback may return None or "" to fall back to the plain description.

The text box is a label laid over the window that holds the view (a child widget of the view's top-level
window, so a small dock does not squeeze it, and a view's exported picture never contains it). It sits
beside the cursor, never on the pointed-at point, flips to the other side near the window's edge, and
hides when the mouse leaves. Moves are throttled to ``RATE_HZ``: a burst of mouse events costs one lookup per frame, and a
hover never redraws the plot's image (only the small marker item moves). While the mouse rests on a
view that is updated live, ``refresh()`` re-reads the numbers at the same place.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

RATE_HZ = 30.0
OFFSET_PX = 18        # gap between the cursor and the box
FONT_POINTS = 13      # readable from the back of a lecture hall

HoverText = Callable[[dict], "str | None"]

READOUT_STYLE = (
    "QLabel#hoverReadout { background: rgba(21, 24, 29, 238); color: #e5e9f0; border: 1px solid #88c0d0;"
    " border-radius: 4px; padding: 5px 8px; }"
)


def fmt(value: Any, digits: int = 4) -> str:
    """A number as the readouts print it: ``digits`` significant digits (``{:.4g}``), NaN as "—"."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    return f"{v:.{digits}g}"


def esc(text: Any) -> str:
    """Plain text made safe for the rich-text readout (``<``, ``&``)."""
    return html.escape(str(text), quote=False)


class HoverReadout(QtCore.QObject):
    """Shows ``hover_text(info)`` (or ``default_text(info)``) beside the mouse over ``view``.

    ``owner``: the view's widget (the readout's QObject parent). The text box lives on ``view``'s top-level
    window, looked up when it is shown (docks move views between windows).
    ``locate(scene_pos) -> info | None``. ``on_show(info)`` / ``on_hide()``: move or hide a marker item.
    """

    def __init__(self, owner: QtWidgets.QWidget, view: QtWidgets.QGraphicsView,
                 locate: Callable[[QtCore.QPointF], dict | None], default_text: Callable[[dict], str],
                 hover_text: HoverText | None = None, on_show: Callable[[dict], None] | None = None,
                 on_hide: Callable[[], None] | None = None):
        super().__init__(owner)
        self.view = view
        self.locate = locate
        self.default_text = default_text
        self.hover_text = hover_text
        self._on_show = on_show
        self._on_hide = on_hide
        self.label = QtWidgets.QLabel(owner)
        self.label.setObjectName("hoverReadout")
        self.label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.label.setStyleSheet(READOUT_STYLE)
        font = self.label.font()
        font.setPointSize(FONT_POINTS)
        self.label.setFont(font)
        self.label.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.label.hide()
        owner.destroyed.connect(self.label.deleteLater)  # the label may live on another widget (the window)
        self.info: dict | None = None           # what is under the mouse now (None: nothing)
        self.scene_pos: QtCore.QPointF | None = None
        self._pending: QtCore.QPointF | None = None
        self._last_flush = -1.0
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)
        view.scene().sigMouseMoved.connect(self._moved)
        view.viewport().installEventFilter(self)

    # -- events -------------------------------------------------------------------------------------
    def _moved(self, scene_pos) -> None:
        self._pending = QtCore.QPointF(scene_pos)
        if self._timer.isActive():
            return
        wait = self._last_flush + 1.0 / RATE_HZ - time.monotonic()
        if wait <= 0:
            self._flush()
        else:
            self._timer.start(int(wait * 1000) + 1)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() in (QtCore.QEvent.Type.Leave, QtCore.QEvent.Type.Hide):  # left, or the view went away
            self.clear()
        return False

    def _flush(self) -> None:
        pos, self._pending = self._pending, None
        self._last_flush = time.monotonic()
        if pos is None:
            return
        self.show_at(pos)

    # -- showing ------------------------------------------------------------------------------------
    def text_for(self, info: dict) -> str:
        if self.hover_text is not None:
            text = self.hover_text(info)
            if text:
                return text
        return self.default_text(info)

    def show_at(self, scene_pos: QtCore.QPointF) -> None:
        """Read what is at ``scene_pos`` and show it there (what a mouse move does, without the throttle)."""
        info = self.locate(scene_pos)
        if info is None:
            self.clear()
            return
        self.scene_pos = QtCore.QPointF(scene_pos)
        self.info = info
        host = self.view.window()
        if self.label.parentWidget() is not host:
            self.label.setParent(host)
        self.label.setText(self.text_for(info))
        self.label.adjustSize()
        self._place(scene_pos)
        self.label.show()
        self.label.raise_()
        if self._on_show is not None:
            self._on_show(info)

    def refresh(self) -> None:
        """New data under a resting mouse: read the numbers again at the same place."""
        if not self.label.isHidden() and self.scene_pos is not None:
            self.show_at(self.scene_pos)

    def clear(self) -> None:
        self._timer.stop()
        self._pending = None
        self.info = None
        self.scene_pos = None
        self.label.hide()
        if self._on_hide is not None:
            self._on_hide()

    def _place(self, scene_pos: QtCore.QPointF) -> None:
        """Beside the cursor (below right), on the other side where that would leave the host."""
        host = self.label.parentWidget()
        cursor = self.view.viewport().mapTo(host, self.view.mapFromScene(scene_pos))
        size = self.label.sizeHint()
        max_w = max(120, host.width() - 8)
        if size.width() > max_w:  # a narrow view: wrap the text instead of running off the edge
            self.label.setWordWrap(True)
            self.label.setFixedWidth(max_w)
            self.label.adjustSize()
        else:
            self.label.setWordWrap(False)
            self.label.setMinimumWidth(0)
            self.label.setMaximumWidth(16777215)
            self.label.adjustSize()
        w, h = self.label.width(), self.label.height()
        x = cursor.x() + OFFSET_PX
        if x + w > host.width():
            x = cursor.x() - OFFSET_PX - w
        y = cursor.y() + OFFSET_PX
        if y + h > host.height():
            y = cursor.y() - OFFSET_PX - h
        x = max(0, min(x, host.width() - w))
        y = max(0, min(y, host.height() - h))
        self.label.move(int(x), int(y))

    # -- for tests and scripted demos ---------------------------------------------------------------
    def plain_text(self) -> str:
        """The readout as plain text ("" when hidden)."""
        if self.label.isHidden():
            return ""
        doc = QtGui.QTextDocument()
        doc.setHtml(self.label.text())
        return doc.toPlainText()

    def is_shown(self) -> bool:
        return not self.label.isHidden()
