"""Accuracies read in %: on an axis of their own beside a loss, or on the only axis of an accuracy plot."""

import pytest

from explorer.core.families.registry import FAMILIES
from explorer.gui.panels.cnn_panel import CNNPanel
from explorer.gui.panels.compare_panel import ComparePanel
from explorer.gui.panels.deep_panel import MLPPanel
from explorer.gui.panels.fcn_panel import FCNPanel


def test_cnn_and_deep_accuracy_in_percent_on_a_right_axis_beside_the_loss(qtbot):
    cnn = CNNPanel(FAMILIES["cnn"].config_cls())
    cnn.add_metrics([{"step": 1.0, "loss": 2.3}],
                    [{"step": 0.0, "heldout_accuracy": 0.114, "train_accuracy": 0.5, "heldout_loss": 2.3,
                      "train_loss": 2.2}])
    assert list(cnn.curves.series("heldout_acc")[1]) == pytest.approx([11.4])
    assert list(cnn.curves.series("heldout_loss")[1]) == pytest.approx([2.3])
    item = cnn.curves.plot.getPlotItem()
    assert item.getAxis("right").isVisible() and "accuracy (%)" in item.getAxis("right").labelString()
    assert cnn.curves._right.viewRange()[1][0] <= 0 and cnn.curves._right.viewRange()[1][1] >= 100
    assert cnn.curves._items["heldout_acc"].getViewBox() is cnn.curves._right
    # the loss axis fits the loss alone, not the percentages
    assert cnn.curves.ranges.y[1] < 10
    deep = MLPPanel(FAMILIES["mlp"].config_cls())
    deep.add_metrics([], [{"step": 5.0, "heldout_accuracy": 0.9, "train_accuracy": 0.95}])
    assert list(deep.curves.series("heldout_acc")[1]) == pytest.approx([90.0])
    assert "accuracy (%)" in deep.curves.plot.getPlotItem().getAxis("right").labelString()


def test_accuracy_only_plots_read_in_percent(qtbot):
    compare = ComparePanel(FAMILIES["compare"].config_cls())
    compare._ensure_series(["random"])
    compare.add_metrics([], [{"step": 10.0, "random/heldout_accuracy": 0.114}])
    assert list(compare.accuracy.series("random")[1]) == pytest.approx([11.4])
    assert "held-out accuracy (%)" in compare.accuracy.plot.getAxis("left").labelString()
    assert compare.status.item(0, 2).text() == "11.4%"
    fcn = FCNPanel(FAMILIES["fcn"].config_cls())
    fcn.add_metrics([{"step": 1.0, "pixel_accuracy": 0.8}], [])
    assert list(fcn.accuracy.series("step")[1]) == pytest.approx([80.0])
    assert "pixel accuracy (%)" in fcn.accuracy.plot.getAxis("left").labelString()
