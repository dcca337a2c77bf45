"""The frame every view shares (:class:`_ViewFrame`: title, plot, caption, hover, export) and the
rich-text helpers for its title and caption."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.widgets.hover import HoverReadout, HoverText
from explorer.gui.widgets.views.legend import ViewLegend

# the tags the captions and titles use; any other "<" is text (σ < 0.05 is a comparison, not a tag)
_RICH_TAGS = ("sub", "sup", "b", "i", "u", "br", "span", "div", "p", "font", "em", "strong", "a", "code", "tt")
_NOT_A_TAG = re.compile(r"<(?!/?(?:{})[\s>/])".format("|".join(_RICH_TAGS)))


def rich_text(text: str) -> str:
    """``text`` for a rich-text label: every "<" that opens none of the tags we write becomes "&lt;".

    Qt reads "σ < 0.05 or σ > 0.95" as the start of a tag and drops "< 0.05 or σ >": the caption said
    "σ 0.95". The equations in the captions keep their <sub>, <sup>, <b>... tags.
    """
    return _NOT_A_TAG.sub("&lt;", text)


WRAP_MIN_WIDTH_PX = 150  # a label narrower than this is not laid out yet: its lines are not asked for


class WrappedLabel(QtWidgets.QLabel):
    """A word-wrapped label that, once :attr:`reserve_lines` is set, asks for the height of its lines at its
    width (up to two lines) as its least height.

    Why: a dock or a main window's layout asks a label for its minimum size, never its height for a
    width, and a wrapped QLabel answers with one line. A view with a plot that may not give way (a least
    height of its own) and a caption of two lines at 1366x768 was given room for one, and its plot's
    axis was drawn over the caption's first line. The height is looked at again whenever the width or
    the type changes. Off by default: counted for every view, the captions of the LSTM's heatmap grid
    took 65 px from the docks below it at 1600x1000, where the grid had room to spare."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None):
        super().__init__(text, parent)
        self._lines_h = 0
        self._reserve = False
        self._whole = text  # the text as set: what is shown, unless max_lines cuts it
        self._max_lines = 0
        self._tip_is_ours = False

    @property
    def reserve_lines(self) -> bool:
        return self._reserve

    @reserve_lines.setter
    def reserve_lines(self, on: bool) -> None:
        self._reserve = bool(on)
        self._measure(self.width())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        hint = super().minimumSizeHint()
        if self.wordWrap() and self._lines_h > hint.height():
            hint.setHeight(self._lines_h)
        return hint

    def _measure(self, width: int) -> None:
        lines_h = self.heightForWidth(width) if self._reserve and self.wordWrap() and width >= WRAP_MIN_WIDTH_PX \
            else 0
        # at most two lines: more, asked for by every caption of a column, made a 1366x768 window too short
        # for its docks (the views then give way, as before, under a longer caption)
        lines_h = min(lines_h, 2 * self.fontMetrics().lineSpacing() + 6)
        if lines_h != self._lines_h:
            self._lines_h = lines_h
            self.updateGeometry()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            if self._max_lines:
                self._cut()
            else:
                self._measure(event.size().width())

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        self._whole = text
        self._cut()

    def whole_text(self) -> str:
        """The text as set (:meth:`text` is what is shown: cut to :attr:`max_lines`, if they cut it)."""
        return self._whole

    @property
    def max_lines(self) -> int:
        """At most this many lines are shown, the last ending in "…" where the text goes on, and the whole text
        is the label's tooltip (0, the default: every line). For a short window, where a caption of four lines
        left its plot 40 px of height (see :meth:`_ViewFrame.set_caption_lines`)."""
        return self._max_lines

    @max_lines.setter
    def max_lines(self, n: int) -> None:
        self._max_lines = max(0, int(n))
        self._cut()

    def _cut(self) -> None:
        """Show the text, cut to :attr:`max_lines` at the label's width (it is looked at again as that changes)."""
        shown = self._whole
        cut = None
        if self._max_lines and self.wordWrap() and self.width() >= WRAP_MIN_WIDTH_PX and self._whole:
            rich = self.textFormat() != QtCore.Qt.TextFormat.PlainText
            cut = cut_to_lines(self._whole if rich else html.escape(self._whole), self.font(),
                               self.contentsRect().width(), self._max_lines)
            if cut is not None and not rich:
                cut = QtGui.QTextDocumentFragment.fromHtml(cut).toPlainText()
        if cut is not None:
            shown = cut
            self.setToolTip(f"<p>{self._whole}</p>" if rich else self._whole)  # (<p>: a tooltip that wraps)
            self._tip_is_ours = True
        elif self._tip_is_ours:
            self.setToolTip("")
            self._tip_is_ours = False
        if shown != super().text():
            super().setText(shown)
        self._measure(self.width())

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().changeEvent(event)
        # other type (presentation mode's large type, and back): other lines, even at the same width
        if event.type() in (QtCore.QEvent.Type.FontChange, QtCore.QEvent.Type.StyleChange):
            self._cut()


def _line_count(doc: QtGui.QTextDocument) -> int:
    doc.size()  # (laid out)
    count, block = 0, doc.begin()
    while block.isValid():
        count += block.layout().lineCount() if block.layout() is not None else 0
        block = block.next()
    return count


def cut_to_lines(text: str, font: QtGui.QFont, width: int, lines: int) -> str | None:
    """Rich ``text`` cut to ``lines`` lines at ``width`` pixels in ``font``, ending in "…" (its sub- and
    superscripts kept), or None where it fits whole. It is cut after a word where one ends near the cut."""
    doc = QtGui.QTextDocument()
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    doc.setHtml(text)
    width = max(1, width - 1)  # (a pixel to spare: the label's own layout rounds its width down)
    doc.setTextWidth(width)
    if _line_count(doc) <= lines:
        return None

    def cut(k: int) -> QtGui.QTextDocument:
        part = doc.clone()
        part.setDefaultFont(font)
        part.setDocumentMargin(0)
        cursor = QtGui.QTextCursor(part)
        cursor.setPosition(k)
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End, QtGui.QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        cursor.insertText("…", QtGui.QTextCharFormat())  # (plain: not a subscript's)
        part.setTextWidth(width)
        return part

    plain = doc.toPlainText()
    lo, hi = 0, len(plain)  # the most characters kept whole that still fit with "…"
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _line_count(cut(mid)) <= lines:
            lo = mid
        else:
            hi = mid - 1
    space = max(plain.rfind(" ", 0, lo + 1), plain.rfind("\n", 0, lo + 1))
    if 0 < space and lo - space < 16 and not plain[lo:lo + 1].isspace():  # after the last whole word
        lo = space
    while lo > 0 and plain[lo - 1] in " \n,;:":
        lo -= 1
    return cut(lo).toHtml()


class TitleRows(QtCore.QObject):
    """Gives the titles of views that stand side by side one height, the tallest's: in presentation mode's
    large type "Forget gate f_t" wrapped to two lines and "Input gate i_t" kept one, and the LSTM's three
    heatmaps below them stood at three heights. ``rows()``: the rows of views, asked again at each change
    (views move between a grid and tabs)."""

    def __init__(self, rows, parent: QtCore.QObject):
        super().__init__(parent)
        self.rows = rows
        self._due = False

    def watch(self, views) -> None:
        for view in views:
            view.title.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() in (QtCore.QEvent.Type.Resize, QtCore.QEvent.Type.FontChange,
                            QtCore.QEvent.Type.StyleChange, QtCore.QEvent.Type.Show) and not self._due:
            self._due = True  # (once per round of layout: the heights set below resize the titles again)
            QtCore.QTimer.singleShot(0, self, self.align)
        return False

    def align(self) -> None:
        self._due = False
        for row in self.rows():
            titles = [view.title for view in row if view.isVisibleTo(view.window())]
            tallest = max((_text_height(t) for t in titles if t.width() > 0), default=0)
            for t in titles:
                if t.minimumHeight() != tallest:
                    t.setMinimumHeight(tallest)


def _text_height(label: QtWidgets.QLabel) -> int:
    """The height of ``label``'s lines at its width (a QLabel's height for a width counts its least height,
    which :class:`TitleRows` sets: asked with it, a title that once wrapped never got shorter)."""
    least = label.minimumHeight()
    label.setMinimumHeight(0)
    height = label.heightForWidth(label.width())
    label.setMinimumHeight(least)
    return height


def _title_label(text: str) -> QtWidgets.QLabel:
    lab = WrappedLabel(text)
    lab.setObjectName("viewTitle")
    lab.setWordWrap(True)  # a long title wraps instead of widening its dock (large type on a projector)
    return lab


def _caption_label(text: str) -> QtWidgets.QLabel:
    lab = WrappedLabel(rich_text(text))
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

    export_folder = ""  # the folder of the last view exported (the next export's dialog opens there)

    def export_name(self, kind: str) -> str:
        """The file name an export suggests: the view's title, and the step it shows where the window's panel
        knows it for certain (scrubbed back, or paused: ``shown_step``), "filters-step-5000.png"."""
        name = "".join(c if c.isalnum() else "-" for c in self.title.text().lower()).strip("-")[:40] or "view"
        panel = getattr(self.window(), "panel", None)
        step = panel.shown_step() if callable(getattr(panel, "shown_step", None)) else None
        return f"{name}-step-{step}.{kind}" if step is not None else f"{name}.{kind}"

    def _export_dialog(self, kind: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "csv": "CSV table (*.csv)"}
        start = str(Path(_ViewFrame.export_folder) / self.export_name(kind)) if _ViewFrame.export_folder \
            else self.export_name(kind)
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view", start, filters[kind])
        if not path:
            return
        try:
            {"png": self.export_png, "svg": self.export_svg, "csv": self.export_csv}[kind](path)
        except (OSError, ValueError) as exc:
            QtWidgets.QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc}")
            return
        _ViewFrame.export_folder = str(Path(path).parent)

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
                # a legend folded into its chip is opened for the picture: it is the picture's legend
                self.opened = [legend for legend in view._legends() if legend.folded and not legend.isVisible()]
                for legend in self.opened:
                    legend.peek(True)

            def __exit__(self, *exc):
                view.export_button.setVisible(self.shown)
                for legend in self.opened:
                    legend.peek(False)

        return Hidden()

    def _legends(self) -> list:
        """The plots' legends that place themselves (:class:`~explorer.gui.widgets.views.legend.ViewLegend`)."""
        legends = (getattr(plot.getPlotItem(), "legend", None) for plot in self.findChildren(pg.PlotWidget))
        return [legend for legend in legends if isinstance(legend, ViewLegend)]

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

    def keep_plot_height(self, px: int) -> None:
        """The plot never shorter than ``px``, and the title's and caption's lines (up to two each) asked
        for as they wrap, so that a squeezed dock does not draw the plot over them (see WrappedLabel)."""
        self._body.setMinimumHeight(px)
        for label in (self.title, self.caption):
            if isinstance(label, WrappedLabel):
                label.reserve_lines = True

    def set_caption(self, text: str) -> None:
        """Say what the view shows (rich text; a "<" that opens no tag is shown as it is)."""
        text = rich_text(text)
        if text != self.caption.whole_text():
            self.caption.setText(text)
        self.caption.setVisible(bool(text))

    def set_caption_lines(self, lines: int) -> None:
        """Show at most ``lines`` lines of the caption, the rest cut off with "…" and the whole caption its
        tooltip (0: every line). At 1366x768 a curve's caption of four lines left its plot 40 px tall."""
        self.caption.max_lines = lines

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
