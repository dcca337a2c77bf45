"""A view's axis label is shown whole or not at all: a short docked plot clipped "probability" to
"probabil" (the CNN panel's prediction, at 1600x1000)."""

from explorer.gui.widgets.views import BarView


def test_a_side_label_gives_way_when_the_plot_is_too_short_and_returns_with_room(qtbot):
    v = BarView("Prediction", "caption", xlabel="class", ylabel="probability")
    qtbot.addWidget(v)
    v.set_values([0.1, 0.9])
    left = v.plot.getAxis("left")
    bottom = v.plot.getAxis("bottom")
    v.resize(400, 400)
    v.show()
    qtbot.waitUntil(lambda: left.size().height() > 200)
    assert left.label.isVisible() and bottom.label.isVisible()
    wide_axis = left.width()

    v.resize(400, 130)  # the plot part is now shorter than the word "probability"
    qtbot.waitUntil(lambda: left.size().height() < left.label.boundingRect().width())
    assert not left.label.isVisible()
    qtbot.waitUntil(lambda: left.width() < wide_axis, timeout=2000)  # the label's room goes to the plot
    assert bottom.label.isVisible()  # the bottom label still fits across

    v.resize(400, 400)
    qtbot.waitUntil(lambda: left.label.isVisible())
    assert left.size().height() >= left.label.boundingRect().width()


def test_an_axis_without_a_label_stays_without_one(qtbot):
    v = BarView("Bars", "", xlabel="", ylabel="")
    qtbot.addWidget(v)
    v.resize(300, 100)
    v.show()
    qtbot.wait(50)
    assert not v.plot.getAxis("left").label.isVisible()
    v.resize(300, 400)
    qtbot.wait(50)
    assert not v.plot.getAxis("left").label.isVisible()


def test_a_bar_carries_its_value_above_it_or_inside_its_top_when_tall(qtbot):
    v = BarView("Prediction", "", ylabel="probability")  # range 0-1
    qtbot.addWidget(v)
    v.set_values([0.99, 0.01, 0.5])
    texts = [t.toPlainText() for t in v._labels]
    assert texts == ["99%", "1%", "50%"]
    # a tall bar's value sits inside its top (anchored by its top edge), the others above theirs
    assert [tuple(t.anchor) for t in v._labels] == [(0.5, 0.0), (0.5, 1.0), (0.5, 1.0)]
    assert [(t.pos().x(), t.pos().y()) for t in v._labels] == [(1.0, 0.99), (2.0, 0.01), (3.0, 0.5)]


def test_an_auto_ranged_bar_chart_leaves_room_above_its_tallest_bar(qtbot):
    v = BarView("Receptive field size", "", ylabel="pixels", y_range=None, value_format="{:.0f}")
    qtbot.addWidget(v)
    v.set_values([5, 5, 6, 14, 14, 16])
    lo, hi = v.plot.getViewBox().viewRange()[1]
    assert lo <= 0 and hi >= 16 * 1.2
    assert [t.toPlainText() for t in v._labels] == ["5", "5", "6", "14", "14", "16"]


def test_a_label_longer_when_shown_than_hidden_settles_hidden(qtbot, monkeypatch):
    """pyqtgraph drops a hidden label's unit prefix: "MSE per pixel (x0.001)" measured "MSE per pixel"
    hidden, which fitted, and shown it did not fit: each choice undid the other on every layout pass, and
    the window froze. With the axis between the two lengths the label goes once and stays gone."""
    import pyqtgraph as pg

    from explorer.gui.widgets.views import CurveView

    calls = []
    show_label = pg.AxisItem.showLabel
    monkeypatch.setattr(pg.AxisItem, "showLabel", lambda axis, show=True: (calls.append(show),
                                                                           show_label(axis, show))[1])
    v = CurveView("Reconstruction error", "", ylabel="MSE per pixel")
    qtbot.addWidget(v)
    v.add_series("a", "a", "#ffffff")
    left = v.plot.getAxis("left")
    # the views switch pyqtgraph's unit prefix off (it read "accuracy 114"); on here, it makes the label's
    # length depend on whether it is shown, which is what any such label must survive
    left.enableAutoSIPrefix(True)
    v.append("a", [0, 1, 2], [0.0725, 0.0735, 0.0745])  # small values: the axis gets a unit prefix
    v.redraw()
    v.resize(500, 500)
    v.show()
    qtbot.waitUntil(lambda: left.label.isVisible() and "x0.001" in left.labelString(), timeout=2000)
    shown_length = left.label.boundingRect().width()
    left.showLabel(False)
    hidden_length = left.label.boundingRect().width()
    left.showLabel(True)
    assert hidden_length < shown_length  # (what made the choice flip)
    # the axis between the two lengths
    frame = v.height() - left.size().height()
    v.resize(500, int(frame + (hidden_length + shown_length) / 2))
    qtbot.waitUntil(lambda: not left.label.isVisible(), timeout=2000)
    calls.clear()
    qtbot.wait(300)
    assert calls == [] and not left.label.isVisible()
    v.resize(500, int(frame + shown_length + 40))  # room for the whole label: it comes back
    qtbot.waitUntil(lambda: left.label.isVisible(), timeout=2000)
    assert left.size().height() >= left.label.boundingRect().width()


def test_a_caption_of_two_lines_gets_room_for_both_when_its_view_is_squeezed(qtbot):
    """At 1366x768 the LSTM's "Chosen unit" plot, given the least its dock allowed, drew its axis over the
    first line of its caption: the dock had asked for one line of it (a wrapped label's minimum size)."""
    from PySide6 import QtWidgets

    from explorer.gui.widgets.sequence_views import TraceView

    box = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    v = TraceView("Unit 0 over time", "The selected unit's values along the probe sequence (click a heatmap row "
                  "to choose another); the cell state as tanh(c_t), the part s_t sees.", ylabel="value")
    v.keep_plot_height(90)
    lay.addWidget(v)
    qtbot.addWidget(box)
    box.resize(500, 400)
    box.show()
    qtbot.waitExposed(box)
    line = v.caption.fontMetrics().lineSpacing()
    qtbot.waitUntil(lambda: v.caption.minimumSizeHint().height() >= 2 * line)  # two lines at this width
    assert v.caption.heightForWidth(v.caption.width()) < 3 * line
    box.resize(500, box.minimumSizeHint().height())  # the least the layout asks for, as a crowded dock gives
    qtbot.waitUntil(lambda: box.height() == box.minimumSizeHint().height())
    qtbot.wait(50)
    body, caption = v._body.geometry(), v.caption.geometry()
    assert caption.top() > body.bottom()  # the caption below the plot, not under its axis
    assert caption.height() >= 2 * line

    wide = v.caption.minimumSizeHint().height()
    box.resize(1400, box.height())  # one line at this width: it asks for one
    qtbot.waitUntil(lambda: v.caption.minimumSizeHint().height() < wide)
    font = v.caption.font()
    font.setPointSizeF(font.pointSizeF() * 2)  # larger type at the same width: more lines again
    v.caption.setFont(font)
    qtbot.waitUntil(lambda: v.caption.minimumSizeHint().height() >= 2 * v.caption.fontMetrics().lineSpacing())


def test_a_caption_asks_for_one_line_unless_its_view_keeps_its_plot_height(qtbot):
    """Counted for every view, the wrapped captions of the LSTM's heatmap grid took 65 px from the docks
    below it at 1600x1000: only a view whose plot may not give way asks for its caption's lines."""
    from explorer.gui.widgets.sequence_views import TraceView

    v = TraceView("Title", "A caption long enough to take two lines or more in a view two hundred pixels wide.")
    qtbot.addWidget(v)
    v.resize(250, 300)
    v.show()
    qtbot.waitExposed(v)
    line = v.caption.fontMetrics().lineSpacing()
    assert v.caption.heightForWidth(v.caption.width()) >= 2 * line
    assert v.caption.minimumSizeHint().height() < 2 * line


def test_a_per_step_curve_kept_as_means_of_several_steps_says_so_in_its_caption(qtbot):
    """A long run keeps its per-step rows as means of windows of steps (explorer.core.engine.metrics): the
    caption said "per step" of points that were the means of 2, 4, 8... steps."""
    from explorer.gui.widgets.views import CurveView

    v = CurveView("Loss", "Training loss per step.")
    qtbot.addWidget(v)
    v.add_series("loss", "training loss (per step)", "#5c6b80", width=1, per_step=True)
    v.add_series("heldout", "held-out loss", "#d08770", symbol="s")
    v.append("loss", list(range(1, 11)), [1.0] * 10)
    v.append("heldout", [0, 500, 1000], [1.0, 0.5, 0.4])  # (sparse by nature: says nothing of the windows)
    v.redraw()
    assert v.caption.whole_text() == "Training loss per step."
    v.append("loss", [12, 14, 16, 18, 20], [0.9] * 5)
    v.redraw()
    assert v.caption.whole_text() == "Training loss per step. Per-step curve: each point the mean of 2 steps."
    v.append("loss", [21, 1045, 2069], [0.8] * 3)  # (a window cut short by an evaluation: the longest counts)
    v.redraw()
    assert v.caption.whole_text().endswith("each point the mean of 1,024 steps.")
    v.clear_data()  # a new run: a point a step again
    v.append("loss", [1, 2, 3], [1.0] * 3)
    v.redraw()
    assert v.caption.whole_text() == "Training loss per step."
