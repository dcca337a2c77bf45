"""Equations drawn with a painter, each on one line, scaled down to the width it is given.

Why not a word-wrapped label: rich text breaks an equation at its spaces, so ``σ(c_j + ∑_i W_ji x_i)``
ended up split across two lines in a narrow lecture pane, with ``x_i)`` alone on the second. Here each
equation (the rich text of ``explorer.core.lecture.equation_html``: sub/superscripts, Greek letters,
fractions with a rule) is laid out once at its natural width in a serif face and drawn whole; a pane
narrower than an equation shrinks that equation (down to ``MIN_SCALE``) rather than breaking it.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

MIN_SCALE = 0.55  # below this an equation is unreadable from the back of a room; the pane clips instead
SIZE_FACTOR = 1.25  # the equations' type relative to the pane's own
GAP = 6  # pixels between two equations


class EquationView(QtWidgets.QWidget):
    """A column of typeset equations; ``set_equations`` takes their rich text, one string each."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.equations: list[str] = []
        self._docs: list[QtGui.QTextDocument] = []
        sp = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred)
        sp.setHeightForWidth(True)
        self.setSizePolicy(sp)

    def set_equations(self, equations: list[str]) -> None:
        self.equations = list(equations)
        self._layout_documents()

    def _layout_documents(self) -> None:
        font = QtGui.QFont(self.font())
        font.setFamilies(["DejaVu Serif", "Times New Roman", "serif"])
        size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
        font.setPointSizeF(size * SIZE_FACTOR)
        self._docs = []
        for eq in self.equations:
            doc = QtGui.QTextDocument()
            doc.setDefaultFont(font)
            doc.setDocumentMargin(1)
            doc.setHtml(f"<span style='white-space:pre'>{eq}</span>")
            doc.setTextWidth(-1)  # no line breaking: the natural width
            doc.setTextWidth(doc.idealWidth())
            self._docs.append(doc)
        self.updateGeometry()
        self.update()

    def natural_size(self, k: int) -> QtCore.QSizeF:
        """Equation k's unscaled width and height, in pixels."""
        return self._docs[k].size()

    def scale_for(self, k: int, width: int) -> float:
        """How much equation k is shrunk to fit ``width`` (1 when it fits)."""
        natural = self._docs[k].size().width()
        return 1.0 if natural <= width or natural <= 0 else max(MIN_SCALE, width / natural)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        total = 0.0
        for k, doc in enumerate(self._docs):
            total += doc.size().height() * self.scale_for(k, width) + (GAP if k else 0)
        return int(total + 0.999)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        width = max((int(d.size().width()) for d in self._docs), default=0)
        return QtCore.QSize(width, self.heightForWidth(max(1, self.width() or width)))

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        return QtCore.QSize(40, self.heightForWidth(max(1, self.width())))

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() in (QtCore.QEvent.Type.FontChange, QtCore.QEvent.Type.PaletteChange,
                            QtCore.QEvent.Type.StyleChange):
            self._layout_documents()  # presentation mode's larger type reaches the equations

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self.height() != self.heightForWidth(self.width()):
            self.updateGeometry()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        ctx = QtGui.QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QtGui.QPalette.ColorRole.Text, self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        y = 0.0
        for k, doc in enumerate(self._docs):
            scale = self.scale_for(k, self.width())
            painter.save()
            painter.translate(0, y)
            painter.scale(scale, scale)
            doc.documentLayout().draw(painter, ctx)
            painter.restore()
            y += doc.size().height() * scale + GAP
        painter.end()


__all__ = ["EquationView", "MIN_SCALE"]
