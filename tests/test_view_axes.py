"""Axes read in plain numbers, legends keep off the data, exports leave out the ⤓ button."""

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.families.registry import FAMILIES
from explorer.gui.panels import PANELS
from explorer.gui.widgets.views import (
    LEGEND_BRUSH,
    CurveView,
    MosaicView,
    ViewLegend,
    _ViewFrame,
)
from explorer.gui.widgets.views import legend as legend_module
from explorer.gui.widgets.views.plotting import OFF_SCALE_LARGE_PT, OFF_SCALE_PT


def shown(view: QtWidgets.QWidget, qtbot, size=(600, 360)) -> None:
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)


# -- no SI prefixes -------------------------------------------------------------------------------------------------
def test_no_axis_of_any_panel_scales_its_numbers_by_an_si_prefix(qtbot):
    for family, cls in PANELS.items():
        panel = cls(FAMILIES[family].config_cls())
        roots = [panel.central_widget()] + [spec.widget for spec in panel.dock_specs()]
        for root in roots:
            for plot in root.findChildren(pg.PlotWidget):
                for name, axis in plot.getPlotItem().axes.items():
                    assert not axis["item"].autoSIPrefix, f"{family}: the {name} axis scales by an SI prefix"


def test_small_values_read_as_they_are(qtbot):
    """An MSE of 0.074 read "74.0" under an "(x0.001)" label that a narrow plot cut to "(x0.0"."""
    v = CurveView("Reconstruction error", "caption", ylabel="MSE per pixel")
    v.add_series("heldout", "held-out", "#ffb74d")
    v.append("heldout", [0, 100, 200], [0.0745, 0.0738, 0.0735])
    v.redraw()
    shown(v, qtbot)
    left = v.plot.getAxis("left")
    qtbot.waitUntil(lambda: left.autoSIPrefixScale == 1.0)
    assert left.labelString().startswith("<span") and "x0.001" not in left.labelString()
    assert "MSE per pixel" in left.labelString()
    ticks = left.tickStrings([0.0735, 0.074, 0.0745], 1.0, 0.0005)
    assert ticks == ["0.0735", "0.0740", "0.0745"]


# -- legends ----------------------------------------------------------------------------------------------------------
def test_a_legend_is_translucent_and_moves_to_the_emptiest_corner(qtbot):
    v = CurveView("Loss", "caption", ylabel="loss")
    v.add_series("loss", "training loss", "#4fc3f7")
    x = np.arange(200.0)
    v.append("loss", x, 1.0 - x / 200)  # from the top left down to the bottom right
    v.redraw()
    shown(v, qtbot)
    legend = v.legend
    assert isinstance(legend, ViewLegend)
    assert legend.opts["brush"].color().alpha() == LEGEND_BRUSH[3] < 255
    legend.set_corner("top-left")  # on the curve
    legend.place(force=True)
    assert legend.corner in ("top-right", "bottom-left")  # the corners the line never passes
    corner = legend.corner
    # a user who drags it keeps it where they put it, until the plot's A button
    legend.moved_by_user = True
    legend.set_corner("top-left")
    legend.place(force=True)
    assert legend.corner == "top-left"
    v.plot.getPlotItem().autoBtn.clicked.emit(v.plot.getPlotItem().autoBtn)
    assert not legend.moved_by_user and legend.corner == corner


def test_a_legend_taller_than_half_a_short_plot_takes_more_columns_and_a_top_corner(qtbot, monkeypatch):
    monkeypatch.setattr(legend_module, "LEGEND_COVER_LIMIT", math.inf)  # kept over the data (no band): its columns
    v = CurveView("Loss", "caption", ylabel="loss")
    for k in range(5):
        v.add_series(f"s{k}", f"series number {k}", "#4fc3f7")
        v.append(f"s{k}", [0, 10], [k, k])
    v.redraw()
    shown(v, qtbot, (900, 170))
    v.legend.place(force=True)
    assert v.legend.columnCount > 1
    assert v.legend.corner.startswith("top") or v.legend.sceneBoundingRect().height() <= \
        v.plot.getPlotItem().vb.sceneBoundingRect().height()
    v.resize(900, 700)  # room again: one column
    qtbot.waitUntil(lambda: v.legend.columnCount == 1, timeout=3000)


def test_a_renamed_legend_entry_is_laid_out_again_and_stays_inside_its_plot(qtbot):
    from explorer.gui.widgets.sequence_views import TraceView

    v = TraceView("Gradient vs distance", "caption", xlabel="distance", logy=True)
    v.add_series("lstm", "LSTM", "#4fc3f7")
    v.add_series("rnn", "RNN", "#bf616a")
    shown(v, qtbot, (330, 150))
    for key in ("lstm", "rnn"):
        v.set_series(key, np.arange(50), np.exp(-np.arange(50) / 10.0))
    v.done()
    qtbot.wait(100)  # the short names fit in two columns
    v.set_label("lstm", "LSTM (this model, 1000 updates)")
    v.set_label("rnn", "RNN (trained alongside, 250 updates)")
    v.done()
    qtbot.wait(100)  # (the layouts settle)
    plot_area = v.plot.getPlotItem().vb.sceneBoundingRect()
    legend = v.legend.sceneBoundingRect()
    assert legend.width() <= plot_area.width()
    assert [lab.text for _s, lab in v.legend.items] == ["LSTM (this model, 1000 updates)",
                                                         "RNN (trained alongside, 250 updates)"]


def _noise_everywhere(v: CurveView, n_series: int = 3) -> None:
    """Series that zigzag across the whole plot: every corner of it has data."""
    x = np.arange(200.0)
    for k in range(n_series):
        v.add_series(f"s{k}", f"series {k}", "#4fc3f7")
        v.append(f"s{k}", x, (x + k) % 2)  # 0, 1, 0, 1... from the bottom to the top at every step
    v.redraw()


def _banded(qtbot) -> CurveView:
    """A plot 700x400 whose three curves fill every corner: its legend goes to the band above it."""
    v = CurveView("Loss", "caption", ylabel="loss")
    _noise_everywhere(v)
    shown(v, qtbot, (700, 400))
    v.legend.place(force=True)  # (placed when shown already)
    assert v.legend.in_band
    return v


def _folded(qtbot) -> CurveView:
    """A plot 420x140 (a docked trace at 1366x768) whose six curves fill it: its legend folds into a chip."""
    v = CurveView("Unit over time", "caption", ylabel="value")
    _noise_everywhere(v, n_series=6)
    shown(v, qtbot, (420, 140))
    v.legend.place(force=True)
    qtbot.waitUntil(lambda: v.legend.folded)
    return v


def test_a_legend_that_would_hide_data_in_every_corner_moves_to_a_band_above_the_plot(qtbot):
    v = _banded(qtbot)
    legend, pi = v.legend, v.plot.getPlotItem()
    assert legend.parentItem() is pi
    band, data = legend.sceneBoundingRect(), pi.vb.sceneBoundingRect()
    assert band.bottom() <= data.top() + 0.5  # above the data, hiding none of it
    assert legend.columnCount == 3  # side by side: the plot is wide enough for the three
    assert pi.layout.getContentsMargins()[1] >= band.height()
    # the plot grown shorter than a band leaves room for: the legend goes back over the data, in a corner
    v.resize(700, 150)
    qtbot.waitUntil(lambda: not legend.in_band, timeout=3000)
    assert legend.parentItem() is pi.vb and pi.layout.getContentsMargins()[1] == 1.0
    assert legend.corner in ("top-right", "top-left", "bottom-right", "bottom-left")


def test_a_legend_keeps_to_its_corner_where_a_band_would_leave_the_data_too_little_room(qtbot):
    v = CurveView("Loss", "caption", ylabel="loss")
    _noise_everywhere(v)
    shown(v, qtbot, (700, 130))
    v.legend.place(force=True)
    assert not v.legend.in_band and v.legend.parentItem() is v.plot.getPlotItem().vb


class Hover:
    """What pyqtgraph's scene gives an item the pointer comes onto (``exit``: leaves)."""

    def __init__(self, exit: bool = False):
        self.exit = exit

    def isExit(self):  # noqa: N802 (pyqtgraph's name)
        return self.exit

    def acceptDrags(self, _button):  # noqa: N802 (pyqtgraph's name)
        pass


def test_a_legend_too_big_for_a_short_plot_folds_into_a_chip_that_opens_it(qtbot):
    """At 1366x768 the LSTM's docked traces were 45-70 px tall and their legends covered most of the curves,
    cut off at the plot's edge; too short for a band above them, the legend now folds into "≡ legend"."""
    v = _folded(qtbot)
    legend = v.legend
    chip = legend.chip
    assert not legend.in_band and not legend.isVisible() and chip.isVisible()
    data = v.plot.getPlotItem().vb.sceneBoundingRect()
    assert data.contains(chip.sceneBoundingRect())  # the chip in the plot's top right corner
    assert chip.sceneBoundingRect().right() > data.center().x() and chip.sceneBoundingRect().top() < data.center().y()
    # the pointer onto the chip opens the legend over the data; off the legend, it folds again
    chip.hoverEvent(Hover())
    assert legend.isVisible() and not chip.isVisible() and legend.corner == "top-right"
    assert [label.text for _s, label in legend.items] == [f"series {k}" for k in range(6)]
    legend.hoverEvent(Hover(exit=True))
    assert not legend.isVisible() and chip.isVisible() and legend.folded
    # room again: the legend in sight for good (above the data: the curves fill every corner)
    v.resize(700, 600)
    qtbot.waitUntil(lambda: not legend.folded, timeout=3000)
    assert legend.isVisible() and not chip.isVisible()


class Click:
    """What pyqtgraph's scene gives an item clicked with the left button."""

    accepted = False

    def button(self):
        return QtCore.Qt.MouseButton.LeftButton

    def accept(self):
        self.accepted = True


def test_a_click_keeps_a_folded_legend_open_until_a_second_click(qtbot):
    """Opened only under the pointer, a folded legend could not be read on a classroom's touch screen, where a
    tap opens it and no pointer ever leaves, nor kept open while the teacher talks over it."""
    v = _folded(qtbot)
    legend, chip = v.legend, v.legend.chip
    chip.hoverEvent(Hover())  # the pointer (or a tap) on the chip opens it, over the chip...
    click = Click()
    legend.mouseClickEvent(click)  # ... where the click lands: it stays open
    assert click.accepted and legend.pinned
    legend.hoverEvent(Hover(exit=True))
    for _ in range(2):
        legend.place(force=True)
    assert legend.isVisible() and not chip.isVisible() and legend.folded
    legend.mouseClickEvent(Click())  # a second click folds it
    assert not legend.isVisible() and chip.isVisible() and not legend.pinned
    chip.mouseClickEvent(Click())  # a click that no hover came before (a touch screen's)
    assert legend.isVisible() and legend.pinned
    legend.hoverEvent(Hover(exit=True))
    assert legend.isVisible()
    v.resize(v.width() - 8, v.height())  # the axes' labels a little wider: it stays open where it is
    qtbot.wait(50)
    assert legend.isVisible() and legend.pinned
    v.resize(700, 600)  # room again: in sight for good, no longer pinned
    qtbot.waitUntil(lambda: not legend.folded, timeout=3000)
    assert legend.isVisible() and not legend.pinned and not chip.isVisible()


def test_the_a_button_on_a_band_legend_leaves_it_in_one_place_or_the_other(qtbot):
    """A review found the A button on a band legend left it over the data with the band still reserved: the
    margin given back resized the plot, which put the legend back in the band halfway through."""
    v = _banded(qtbot)
    legend, pi = v.legend, v.plot.getPlotItem()
    pi.autoBtn.clicked.emit(pi.autoBtn)
    qtbot.wait(50)
    assert legend.in_band and legend.parentItem() is pi  # (the curves still fill every corner)
    assert legend.sceneBoundingRect().bottom() <= pi.vb.sceneBoundingRect().top() + 0.5
    assert pi.layout.getContentsMargins()[1] >= legend.sceneBoundingRect().height()


def test_an_emptied_legend_gives_back_its_band_and_its_chip(qtbot):
    v = _banded(qtbot)
    legend, pi = v.legend, v.plot.getPlotItem()
    legend.clear()
    legend.place(force=True)
    assert not legend.in_band and pi.layout.getContentsMargins()[1] == 1.0 and legend.parentItem() is pi.vb

    small = _folded(qtbot)
    small.legend.clear()
    small.legend.place(force=True)
    assert not small.legend.folded and not small.legend.chip.isVisible()


def test_an_opened_legend_stays_put_under_the_pointer_and_covers_its_chip(qtbot):
    """Opened from its chip, the legend was placed again at the next redraw (measured against the whole
    plot, it unfolded into a corner, and folded a second later); and it lay 7 px off the chip's corner,
    so a pointer could come onto the chip without being on the legend, which then never closed."""
    v = _folded(qtbot)
    legend = v.legend
    chip = legend.chip.sceneBoundingRect()
    legend.chip.hoverEvent(Hover())
    for _ in range(3):
        legend.place(force=True)
        assert legend.folded and legend.isVisible()
    opened = legend.sceneBoundingRect()
    assert abs(opened.right() - chip.right()) <= 1 and abs(opened.top() - chip.top()) <= 1
    assert opened.contains(chip)


def test_a_folded_legend_is_opened_for_an_exported_picture(qtbot, tmp_path):
    v = _folded(qtbot)
    seen = []
    v.grab = lambda: (seen.append(v.legend.isVisible()), QtWidgets.QWidget.grab(v))[1]
    v.export_png(str(tmp_path / "unit.png"))
    assert seen == [True]  # in the picture
    assert not v.legend.isVisible() and v.legend.chip.isVisible() and (tmp_path / "unit.png").stat().st_size > 0


def test_a_legend_over_empty_space_stays_in_its_corner(qtbot):
    v = CurveView("Loss", "caption", ylabel="loss")
    for k in range(3):
        v.add_series(f"s{k}", f"series {k}", "#4fc3f7")
        v.append(f"s{k}", np.arange(200.0), np.linspace(0.0, 0.2, 200) + k * 0.01)  # along the bottom
    v.append("s0", [200.0], [1.0])  # the top reached at the last step only
    v.redraw()
    shown(v, qtbot, (700, 400))
    v.legend.place(force=True)
    assert not v.legend.in_band


def test_a_legend_its_data_area_cannot_hold_folds_rather_than_hang_over_the_x_axis(qtbot):
    """At 1366x768 the RBM's pseudo-log-likelihood had 40 px of data under 40 px of legend: in the emptiest
    corner it covered no data, so it stayed, and hung over the x axis's numbers. It folds into its chip."""
    v = CurveView("Pseudo-log-likelihood", "caption", ylabel="PLL")
    v.add_series("train", "training", "#4fc3f7", symbol="o")
    v.add_series("heldout", "held-out", "#ffb74d", symbol="s")
    x = np.arange(1800.0, 3000.0, 150.0)  # the right part of the plot only: its left corners are empty
    v.append("train", x, -28.0 + 0.001 * x)
    v.append("heldout", x, -28.2 + 0.001 * x)
    v.redraw()
    shown(v, qtbot, (460, 130))
    legend, pi = v.legend, v.plot.getPlotItem()
    legend.place(force=True)
    axis = pi.mapRectToScene(pi.getAxis("bottom").geometry())
    assert pi.vb.height() < legend.sceneBoundingRect().height() + 20  # (the short plot this is about)
    assert legend.folded and not legend.isVisible() and legend.chip.isVisible()
    assert not legend.chip.sceneBoundingRect().intersects(axis)
    v.resize(460, 300)  # room again: the legend in sight, in a corner inside the data area
    qtbot.waitUntil(lambda: not legend.folded, timeout=3000)
    assert pi.vb.sceneBoundingRect().contains(legend.sceneBoundingRect())


def test_an_empty_legend_draws_no_frame(qtbot):
    from explorer.gui.widgets.views import ScatterView

    v = ScatterView("Code space", "caption")
    shown(v, qtbot, (300, 300))
    v.show_hint("Set Hidden units to 2")
    image = QtGui.QImage(40, 40, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtGui.QColor(0, 0, 0, 0))
    painter = QtGui.QPainter(image)
    v.legend.paint(painter, None, None)
    painter.end()
    assert {image.pixel(x, y) for x in range(40) for y in range(40)} == {0}


def test_a_legend_dragged_by_the_user_moves_and_stays_where_it_was_put(qtbot):
    v = CurveView("Loss", "caption")
    v.add_series("loss", "training loss", "#4fc3f7")
    shown(v, qtbot)

    class Drag:  # what pyqtgraph's drag event gives a legend: a left-button move of 30 x 20 pixels
        def button(self):
            return QtCore.Qt.MouseButton.LeftButton

        def pos(self):
            return QtCore.QPointF(30, 20)

        def lastPos(self):
            return QtCore.QPointF(0, 0)

        def accept(self):
            pass

    before = v.legend.pos()
    v.legend.mouseDragEvent(Drag())
    assert v.legend.moved_by_user
    assert (v.legend.pos().x() - before.x(), v.legend.pos().y() - before.y()) == (30, 20)


# -- exports ----------------------------------------------------------------------------------------------------------
def test_exported_pictures_leave_out_the_export_button(qtbot, tmp_path):
    m = MosaicView("Filters", "caption")
    m.set_images(np.random.default_rng(0).random((4, 9)), (3, 3))
    shown(m, qtbot, (320, 320))
    button = m.export_button
    box = QtCore.QRect(button.mapTo(m, QtCore.QPoint(0, 0)), button.size())
    on_screen = m.grab().toImage().copy(box)
    colours = {on_screen.pixel(x, y) for x in range(on_screen.width()) for y in range(on_screen.height())}
    assert len(colours) > 1  # the window shows the ⤓ glyph there
    m.export_png(str(tmp_path / "view.png"))
    exported = QtGui.QImage(str(tmp_path / "view.png")).copy(box)
    colours = {exported.pixel(x, y) for x in range(exported.width()) for y in range(exported.height())}
    assert len(colours) == 1  # the picture has the background there, nothing else
    assert button.isVisible()  # and the window keeps its button
    m.export_svg(str(tmp_path / "view.svg"))
    svg = (tmp_path / "view.svg").read_text()
    assert "Filters" in svg and "⤓" not in svg and "&#10515;" not in svg.lower() and "&#x2913;" not in svg.lower()
    assert button.isVisible()


def test_every_view_class_hides_its_button_while_exporting(qtbot, tmp_path):
    seen = []
    v = CurveView("Loss", "caption")
    shown(v, qtbot)
    real = _ViewFrame.grab

    def spy(self, *a):
        seen.append(self.export_button.isVisible())
        return real(self, *a)

    _ViewFrame.grab = spy
    try:
        v.export_png(str(tmp_path / "a.png"))
    finally:
        _ViewFrame.grab = real
    assert seen == [False] and v.export_button.isVisible()


def test_a_legend_takes_presentation_modes_type_and_gives_it_back(qtbot):
    """In presentation mode the axes' numbers grew to 16 pt and the legends kept 9 pt."""
    v = CurveView("Loss", "caption", ylabel="loss")
    v.add_series("loss", "training loss", "#4fc3f7")
    v.append("loss", [0, 1, 2], [1.0, 0.5, 0.25])
    v.redraw()
    shown(v, qtbot, (700, 400))
    legend = v.legend
    normal = legend.sceneBoundingRect().height()
    legend.set_large(True)
    assert [label.opts["size"] for _s, label in legend.items] == ["14pt"]
    assert legend.sceneBoundingRect().height() > normal
    v.add_series("heldout", "held-out loss", "#ffb74d")  # an entry added while presenting: large too
    v.append("heldout", [0, 2], [1.0, 0.3])
    v.redraw()
    assert [label.opts["size"] for _s, label in legend.items] == ["14pt", "14pt"]
    legend.set_large(False)
    assert [label.opts["size"] for _s, label in legend.items] == ["9pt", "9pt"]


def folded_loss_view(qtbot) -> CurveView:
    """A loss plot of a thin per-step trace and three prominent curves (keys heldout, compare, baseline), too
    short for its legend: folded into "≡ legend", room for three names."""
    v = CurveView("Loss", "caption", ylabel="loss")
    x = np.arange(200.0)
    v.add_series("loss", "training loss (per step)", "#5c6b80", width=1)
    v.append("loss", x, 0.2 + 0.1 * (x % 2))
    for key, name, colour, level in (("heldout", "held-out", "#ffb74d", 0.01), ("compare", "RNN alongside", "#bf616a", 0.16),
                                     ("baseline", "baseline", "#a3be8c", 0.158)):
        v.add_series(key, name, colour, width=2.5)
        v.append(key, x, np.full(200, level))
    v.redraw()
    shown(v, qtbot, (420, 190))
    v.legend.place(force=True)
    qtbot.waitUntil(lambda: v.legend.folded)  # (no redraw: a paused run's plot folds its legend on a resize)
    return v


def test_a_folded_legend_leaves_the_curves_named_at_their_ends(qtbot):
    """In presentation mode at 1366x768 the LSTM's loss plot folded its legend into "≡ legend", which opens
    under a pointer nobody moves at a projector: an orange and a red curve, and no word of which was the
    LSTM. The prominent curves are now named at their ends, in their colours, none over another; the thin
    per-step trace is not; the names go when the legend is in sight."""
    v = folded_loss_view(qtbot)
    labels = v.end_labels.labels
    assert {k for k, lab in labels.items() if lab.isVisible()} == {"heldout", "compare", "baseline"}
    assert {labels[k].toPlainText() for k in labels} == {"held-out", "RNN alongside", "baseline"}
    assert labels["compare"].color.name() == "#bf616a"
    area = v.plot.getPlotItem().vb.sceneBoundingRect()
    rects = [labels[k].sceneBoundingRect() for k in ("heldout", "compare", "baseline")]
    assert all(area.adjusted(-1, -1, 1, 1).contains(r) for r in rects)
    chip = v.legend.chip.sceneBoundingRect()
    assert not any(r.intersects(chip) for r in rects), (chip, rects, area)  # (the top one was cut by "≡ legend")
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    # each at its curve's end (its right edge at the last step), in the curves' order from the top
    end = v.plot.getPlotItem().vb.mapViewToScene(QtCore.QPointF(199, 0.01))
    assert all(abs(r.right() - end.x()) < 2 for r in rects)
    assert rects[1].bottom() <= rects[2].top() and rects[2].bottom() <= rects[0].top()
    v.legend.peek(True)  # opened from its chip: the legend names them
    assert not any(lab.isVisible() for lab in labels.values())
    v.legend.peek(False)
    assert labels["heldout"].isVisible()
    v.resize(700, 600)  # room again: the legend in sight for good
    qtbot.waitUntil(lambda: not v.legend.folded, timeout=3000)
    assert not any(lab.isVisible() for lab in labels.values())


def test_a_heatmap_of_two_units_is_ticked_at_whole_units(qtbot):
    """The autoencoder's code of 2 hidden units was ticked 0, 0.5, 1, 1.5 along "hidden unit j"."""
    from explorer.gui.widgets.views import HeatmapView

    v = HeatmapView("Hidden code", "caption", xlabel="hidden unit j", ylabel="example")
    v.set_matrix(np.random.default_rng(0).random((30, 2)))
    shown(v, qtbot, (400, 300))
    for side in ("bottom", "left"):
        axis = v.plot.getPlotItem().getAxis(side)
        lo, hi = axis.range
        ticks = [t for _spacing, values in axis.tickValues(lo, hi, 300) for t in values]
        # each number under its cell's middle (cell j spans j to j + 1), the cell's number
        assert ticks and all(float(t - 0.5).is_integer() for t in ticks), (side, ticks)
        assert axis.tickStrings(ticks, 1, 1) == [str(round(t - 0.5)) for t in ticks]
    bottom = v.plot.getPlotItem().getAxis("bottom")
    assert sorted(t for _s, values in bottom.tickValues(0, 2, 300) for t in values) == [0.5, 1.5]
    assert bottom.tickStrings([0.5, 1.5], 1, 1) == ["0", "1"]
    v.set_matrix(np.zeros((3, 2)), first_row=1)  # rows that are layers 1 to 3: numbered by themselves
    left = v.plot.getPlotItem().getAxis("left")
    assert sorted(t for _s, values in left.tickValues(0.5, 3.5, 300) for t in values) == [1, 2, 3]
    assert left.tickStrings([1.0, 2.0, 3.0], 1, 1) == ["1", "2", "3"]


def test_a_plot_too_short_for_every_name_takes_the_usual_type_then_names_the_first_curves(qtbot):
    """In presentation mode at 1366x768 the LSTM's gradient view (about 70 px of plot) had its names in large
    type pushed up over "≡ legend". A short plot sets them in the usual type; a plot too short for that too names
    the first curves that fit below the chip, the legend the others."""
    v = folded_loss_view(qtbot)
    NAMED = ("heldout", "compare", "baseline")  # (in the order the curves were added)
    first, last = NAMED[0], NAMED[-1]
    labels = v.end_labels.labels
    v.legend.set_large(True)  # (as presentation mode sets the view's type)
    v.end_labels.set_large(True)
    v.resize(420, 260)  # room for three names in large type, not for the legend
    qtbot.waitUntil(lambda: labels[first].textItem.font().pointSizeF() == OFF_SCALE_LARGE_PT, timeout=3000)

    def check(sizes: dict) -> None:
        shown_keys = [k for k in NAMED if labels[k].isVisible()]
        assert {k: labels[k].textItem.font().pointSizeF() for k in shown_keys} == sizes
        area = v.plot.getPlotItem().vb.sceneBoundingRect()
        chip = v.legend.chip.sceneBoundingRect()
        rects = [labels[k].sceneBoundingRect() for k in shown_keys]
        assert all(area.adjusted(-1, -1, 1, 1).contains(r) and not r.intersects(chip) for r in rects), (area, chip, rects)
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])

    check(dict.fromkeys(NAMED, OFF_SCALE_LARGE_PT))
    v.resize(420, 215)  # (a resize alone places them: the run is paused)
    qtbot.waitUntil(lambda: labels[first].textItem.font().pointSizeF() == OFF_SCALE_PT, timeout=3000)
    check(dict.fromkeys(NAMED, OFF_SCALE_PT))
    v.resize(420, 175)
    qtbot.waitUntil(lambda: not labels[last].isVisible(), timeout=3000)
    shown_keys = [k for k in NAMED if labels[k].isVisible()]
    assert shown_keys and shown_keys == list(NAMED)[:len(shown_keys)]  # the first curves, in their order
    check(dict.fromkeys(shown_keys, OFF_SCALE_PT))
    v.resize(420, 260)
    qtbot.waitUntil(lambda: labels[last].isVisible(), timeout=3000)
    check(dict.fromkeys(NAMED, OFF_SCALE_LARGE_PT))


def test_the_viewed_step_mark_keeps_its_text_inside_a_short_plot(qtbot):
    """Scrubbed back at 1366x768, "viewing step 73336" stood on a point 92% up its line, and in a plot 100 px
    tall the top half of its text was past the plot's edge."""
    v = CurveView("Reconstruction error", "caption", ylabel="MSE")
    v.add_series("a", "training", "#4fc3f7", width=2)
    v.append("a", np.arange(100.0), np.linspace(1.0, 0.1, 100))
    v.redraw()
    shown(v, qtbot, (420, 170))
    v.set_viewed_step(40)
    QtWidgets.QApplication.processEvents()
    label = v._viewed.label
    label.updateTransform(force=True)
    area = v.plot.getPlotItem().vb.sceneBoundingRect()
    text = label.sceneBoundingRect()
    assert label.toPlainText() == "viewing step 40"
    assert area.adjusted(-1, -1, 1, 1).contains(text), (area, text)
    line_x = v.plot.getPlotItem().vb.mapViewToScene(QtCore.QPointF(40, 0)).x()
    assert text.left() >= line_x - 1  # beside its line, to the right
