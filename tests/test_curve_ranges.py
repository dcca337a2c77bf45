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
    view.append("a", np.arange(96), 1.0 / (1 + np.arange(96)))
    view.redraw()
    lo, hi = x_range(view)
    assert lo < 0 < 96 < hi and hi == pytest.approx(100 + 0.02 * 100, rel=0.01)  # nice_ceiling(95) = 100, padded
    y0 = y_range(view)
    assert y0[0] < 1.0 / 96 and y0[1] > 1.0
    view.append("a", [96, 97, 98, 99], [0.5, 0.4, 0.3, 0.2])  # inside both ranges: nothing moves
    view.redraw()
    assert x_range(view) == [lo, hi] and y_range(view) == y0
    view.append("a", [130], [2.0])  # beyond both
    view.redraw()
    assert x_range(view)[1] == pytest.approx(150 + 0.02 * 150, rel=0.01)
    assert y_range(view)[1] > 2.0


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
