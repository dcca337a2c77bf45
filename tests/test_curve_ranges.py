"""CurveView sets its own ranges: x grows along a "nice" ladder, y moves only when the data needs it.

pyqtgraph's auto-range re-fits (and repaints both axes) on every new point; these ranges change
rarely, so the cached axes are repainted rarely. A user's zoom is respected until "A" is pressed.
"""

import numpy as np
import pytest
from PySide6 import QtWidgets

from explorer.gui.widgets.views import CurveView, nice_ceiling


@pytest.mark.parametrize("value, expected", [(1, 1), (1.2, 1.5), (95, 100), (101, 150), (2500, 3000),
                                             (7000, 8000), (8001, 10000), (0.03, 0.03), (0.031, 0.04)])
def test_nice_ceiling(value, expected):
    assert nice_ceiling(value) == pytest.approx(expected)


def x_range(view):
    return view.plot.getPlotItem().vb.viewRange()[0]


def y_range(view):
    return view.plot.getPlotItem().vb.viewRange()[1]


@pytest.fixture
def view(qtbot):
    v = CurveView("loss", ylabel="error")
    v.add_series("a", "training", "#4fc3f7")
    qtbot.addWidget(v)
    v.resize(500, 300)
    v.show()
    return v


def test_x_grows_in_steps_and_y_only_when_needed(view):
    view.append("a", np.arange(96), np.linspace(1.0, 0.2, 96))
    view.redraw()
    lo, hi = x_range(view)
    assert lo < 0 < 96 < hi and hi == pytest.approx(100 + 0.02 * 100, rel=0.01)  # nice_ceiling(95) = 100, padded
    y0 = y_range(view)
    assert y0[0] < 0.2 and y0[1] > 1.0
    view.append("a", [96, 97, 98, 99], [0.5, 0.4, 0.3, 0.2])  # inside both ranges: nothing moves
    view.redraw()
    assert x_range(view) == [lo, hi] and y_range(view) == y0
    view.append("a", [130], [2.0])  # beyond both
    view.redraw()
    assert x_range(view)[1] == pytest.approx(150 + 0.02 * 150, rel=0.01)
    assert y_range(view)[1] > 2.0


def mark(view, side):
    item = view.ranges._marks.get(side)
    return item.toPlainText() if item is not None and item.isVisible() else None


def falling_loss(steps):
    """A loss like a classifier's: from 2.3 to about 0.05 in its first hundred steps, then slowly down."""
    return 0.05 + 2.25 * np.exp(-steps / 25.0) - 1e-5 * steps + 0.004 * np.sin(steps)


def test_first_steps_that_would_squash_the_rest_go_past_the_top_with_a_mark_saying_how_far(view):
    steps = np.arange(1, 3001)
    view.append("a", steps, falling_loss(steps))
    view.redraw()
    lo, hi = y_range(view)
    late = falling_loss(steps[steps >= 301])  # the later 90% of the steps drawn
    assert lo <= late.min() and late.max() <= hi < 0.1  # the later course fills the plot, not a tenth of it
    assert view.ranges.off_scale == (pytest.approx(falling_loss(1.0)), None)
    assert mark(view, "above") == f"▲ {falling_loss(1.0):.3g}" and mark(view, "below") is None
    assert view.ranges._marks["above"].pos().y() == pytest.approx(hi)  # at the top edge
    # a later spike (a learning rate too high) is part of the later course: the plot shows it, no mark
    view.append("a", [3001, 3002], [4.0, 0.05])
    view.redraw()
    assert y_range(view)[1] > 4.0 and mark(view, "above") is None and view.ranges.off_scale == (None, None)


def test_a_rising_accuracy_goes_past_the_bottom_and_a_gentle_curve_is_shown_whole(qtbot):
    v = CurveView("accuracy", ylabel="%")
    v.add_series("acc", "held-out", "#4fc3f7")
    v.add_series("gentle", "gentle", "#ffb74d")
    qtbot.addWidget(v)
    steps = np.arange(0, 2000, 10.0)
    v.append("acc", steps, 97.0 - 87.0 * np.exp(-steps / 30.0))
    v.redraw()
    assert y_range(v)[0] > 80 and mark(v, "below") == "▼ 10" and v.ranges.off_scale == (None, 10.0)
    w = CurveView("error")
    w.add_series("e", "error", "#4fc3f7")
    qtbot.addWidget(w)
    w.append("e", steps, 150.0 - 0.03 * steps)  # the RBM's error: down by a third over the run
    w.redraw()
    assert y_range(w)[1] > 150 and mark(w, "above") is None and w.ranges.off_scale == (None, None)


def test_few_later_points_keep_the_whole_curve_in_view(view):
    view.append("a", np.arange(15), 1.0 / (1 + np.arange(15)))  # the first seconds of a run: the drop is the story
    view.redraw()
    assert y_range(view)[1] > 1.0 and mark(view, "above") is None


def test_on_a_log_scale_the_first_steps_are_left_out_in_decades_and_marked_in_values(qtbot):
    v = CurveView("grad", logy=True)
    v.add_series("g", "layer 1", "#4fc3f7")
    qtbot.addWidget(v)
    steps = np.arange(1, 1001)
    v.append("g", steps, 1e-5 * (1 + 0.5 * np.sin(steps)) + 10.0 ** (-steps / 4.0))  # 0.56 down to ~1e-5
    v.redraw()
    lo, hi = y_range(v)
    assert -5.5 < lo and hi < -4.5  # log10 units: the later steps' decade
    assert v.ranges.off_scale[0] == pytest.approx(10 ** -0.25 + 1e-5 * (1 + 0.5 * np.sin(1)), rel=1e-6)
    assert mark(v, "above") == "▲ 0.562"


def test_the_mark_keeps_clear_of_the_later_steps_that_start_at_its_edge(qtbot):
    """The RBM's pseudo-log-likelihood climbs from -28 to -20.5 in its first steps and on from there: y fits
    the later steps, which start at the plot's bottom edge, where "▼ -27.6" was drawn under them. The mark
    goes where no curve passes under it, and finds that place again when the plot takes another size."""
    v = CurveView("Pseudo-log-likelihood", ylabel="PLL")
    v.add_series("train", "training", "#4fc3f7", symbol="o")
    qtbot.addWidget(v)
    v.resize(460, 180)
    v.show()
    qtbot.waitExposed(v)
    steps = np.arange(0.0, 3000.0, 20.0)
    pll = np.where(steps < 300, -28.0 + 7.5 * steps / 300, -19.0 - 1.5 * np.exp(-(steps - 300) / 800))
    v.append("train", steps, pll)
    v.redraw()
    assert v.ranges.off_scale == (None, pytest.approx(-28.0)) and mark(v, "below") == "▼ -28"
    vb = v.plot.getPlotItem().vb

    def under_the_mark() -> int:
        r = vb.mapSceneToView(v.ranges._marks["below"].sceneBoundingRect()).boundingRect()
        xq = np.linspace(r.left(), r.right(), 64)
        yq = np.interp(xq, steps, pll)
        return int(np.count_nonzero((yq >= r.top()) & (yq <= r.bottom())))

    assert v.ranges._marks["below"].pos().y() == pytest.approx(y_range(v)[0])  # at the bottom edge
    assert under_the_mark() == 0
    v.resize(300, 140)
    qtbot.waitUntil(lambda: vb.width() < 250, timeout=3000)
    assert under_the_mark() == 0


def test_the_mark_keeps_clear_of_a_steep_noisy_curve_that_crosses_its_edge_between_points(qtbot):
    """The watched CNN's loss falls from 2.3 to 0.001 in its first 800 of 9,000 steps, noisily: y fits the
    later steps, and its line crossed "▲ 2.31" at the top edge between points that lay above the plot (a
    check of the points alone found the place clear)."""
    v = CurveView("Loss", ylabel="loss")
    v.add_series("loss", "loss", "#4fc3f7", width=2)
    qtbot.addWidget(v)
    v.resize(420, 200)
    v.show()
    qtbot.waitExposed(v)
    steps = np.arange(0.0, 9000.0, 1.0)
    noise = np.random.default_rng(0).random(len(steps))
    loss = 2.3 * np.exp(-steps / 120) * (0.2 + 1.6 * noise) + 0.001 * noise
    v.append("loss", steps, loss)
    v.redraw()
    assert v.ranges.off_scale[0] is not None and mark(v, "above").startswith("▲")
    vb = v.plot.getPlotItem().vb
    r = vb.mapSceneToView(v.ranges._marks["above"].sceneBoundingRect()).boundingRect()
    inside = (steps >= r.left()) & (steps <= r.right())
    values = np.concatenate([np.interp([r.left(), r.right()], steps, loss), loss[inside]])
    lo, hi = sorted((r.top(), r.bottom()))
    assert not (values.min() <= hi and values.max() >= lo), (r, values.min(), values.max())  # no line through it


def test_a_users_zoom_hides_the_mark_and_A_brings_both_back(view):
    steps = np.arange(1, 3001)
    view.append("a", steps, falling_loss(steps))
    view.redraw()
    vb = view.plot.getPlotItem().vb
    vb.setYRange(0, 3, padding=0)
    vb.sigRangeChangedManually.emit([True, True])
    assert mark(view, "above") is None and view.ranges.off_scale == (None, None)
    button = view.plot.getPlotItem().autoBtn
    button.clicked.emit(button)
    assert y_range(view)[1] < 0.1 and mark(view, "above") is not None


def test_a_reset_fits_the_new_run(view):
    view.append("a", np.arange(5000), np.ones(5000))
    view.redraw()
    view.clear_data()
    view.append("a", [0, 1, 2], [3.0, 2.0, 1.0])
    view.redraw()
    assert x_range(view)[1] < 11  # at least 0..10, never the old run's 5000


def test_a_users_zoom_is_kept_until_A_is_pressed(view):
    view.append("a", np.arange(50), np.linspace(1, 0, 50))
    view.redraw()
    vb = view.plot.getPlotItem().vb
    vb.setXRange(10, 20, padding=0)
    vb.sigRangeChangedManually.emit([True, True])  # what a drag or a wheel turn emits
    assert not view.follow
    view.append("a", [400], [0.1])
    view.redraw()
    assert x_range(view) == pytest.approx([10, 20])
    button = view.plot.getPlotItem().autoBtn
    button.clicked.emit(button)  # what a click on the plot's "A" button emits
    assert view.follow
    assert x_range(view)[1] > 400


def test_log_scale_ranges_are_in_decades(qtbot):
    v = CurveView("grad", logy=True)
    v.add_series("a", "layer 1", "#4fc3f7")
    qtbot.addWidget(v)
    v.append("a", [0, 1, 2], [1e-4, 1e-2, 1.0])
    v.redraw()
    lo, hi = y_range(v)
    assert lo < -4 and hi > 0 and hi < 1  # log10 units


def test_axes_are_painted_from_a_cache(view):
    for axis in view.plot.getPlotItem().axes.values():
        assert axis["item"].cacheMode() == QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache


def test_a_trace_keeps_its_ranges_while_values_move_a_little(qtbot):
    from explorer.gui.widgets.sequence_views import TraceView

    v = TraceView("unit 0 over time")
    v.add_series("s", "s_t", "#4fc3f7")
    qtbot.addWidget(v)
    t = np.arange(50)
    v.set_series("s", t, np.sin(t / 5))
    v.done()
    x0, y0 = x_range(v), y_range(v)
    assert x0[0] < 0 < 49 < x0[1] < 51  # the time axis: the data's extent, padded
    v.set_series("s", t, 0.9 * np.sin(t / 5 + 0.1))  # the next update: a little different
    v.done()
    assert x_range(v) == x0 and y_range(v) == y0
    v.set_series("s", t, 3 * np.sin(t / 5))  # out of range: the view follows
    v.done()
    assert y_range(v)[1] > 2.9


def test_a_log_scale_trace_fits_its_decades(qtbot):
    from explorer.gui.widgets.sequence_views import TraceView

    v = TraceView("gradient norm", logy=True)
    v.add_series("g", "LSTM", "#4fc3f7")
    qtbot.addWidget(v)
    v.set_series("g", np.arange(10), 10.0 ** -np.arange(10))  # 1 ... 1e-9
    v.done()
    lo, hi = y_range(v)
    assert lo < -9 and 0 < hi < 1  # log10 units, every point inside


def test_the_mark_takes_presentation_modes_large_type(view):
    from PySide6 import QtGui

    big = QtGui.QFont()
    big.setPointSize(16)
    view.plot.getPlotItem().getAxis("left").setTickFont(big)  # what presentation mode does to every axis
    steps = np.arange(1, 3001)
    view.append("a", steps, falling_loss(steps))
    view.redraw()
    item = view.ranges._marks["above"]
    assert item.textItem.font().pointSizeF() == 14.0  # made in presentation mode: large at once
    item.set_large(False)  # and back, as the window does when presentation mode ends
    assert item.textItem.font().pointSizeF() == 9.0
