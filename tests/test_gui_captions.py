"""Every view has a caption, and each caption says what the lecture says, as a reader sees it rendered."""

import pytest
from PySide6 import QtWidgets

from explorer.core.families.recurrent.trainer import LSTMConfig, RNNConfig
from explorer.core.families.registry import FAMILIES
from explorer.gui.panels import PANELS
from explorer.gui.panels.recurrent_panel import LSTMPanel, RNNPanel
from explorer.gui.widgets.views import _ViewFrame, rich_text, shown_text


@pytest.fixture(scope="module")
def panels():
    """One panel of each family, with the widgets the window would put in its centre and its docks."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    built = {}
    for family, cls in PANELS.items():
        panel = cls(FAMILIES[family].config_cls())
        roots = [panel.central_widget()] + [spec.widget for spec in panel.dock_specs()]
        built[family] = (panel, roots)
    yield built
    del app


def views_of(roots) -> list[_ViewFrame]:
    found: dict[int, _ViewFrame] = {}
    for root in roots:
        for view in ([root] if isinstance(root, _ViewFrame) else []) + root.findChildren(_ViewFrame):
            found[id(view)] = view
    return list(found.values())


def caption_of(panels, family: str, title_start: str) -> str:
    _panel, roots = panels[family]
    for view in views_of(roots):
        if shown_text(view.title).startswith(title_start):
            return shown_text(view.caption)
    raise AssertionError(f"{family}: no view titled {title_start!r}")


# -- every view has one -------------------------------------------------------------------------------------------
def test_every_view_of_every_panel_has_a_caption_under_it(panels):
    seen = 0
    for family, (_panel, roots) in panels.items():
        views = views_of(roots)
        assert views, family
        for view in views:
            title = shown_text(view.title)
            assert shown_text(view.caption).strip(), f"{family}: {title!r} has no caption"
            assert view._layout.indexOf(view.caption) >= 0, f"{family}: {title!r} caption is not laid out"
            assert not view.caption.isHidden(), f"{family}: {title!r} caption is hidden"
            seen += 1
    assert seen >= 55


def test_every_titled_part_of_a_panel_has_a_caption_too(panels):
    """The parts that are no view of their own (the CNN's example gallery and drawing canvas, the deep network's
    stage list) carry a caption beside their title as well."""
    for family, (_panel, roots) in panels.items():
        for root in roots:
            for title in root.findChildren(QtWidgets.QLabel, "viewTitle"):
                box = title.parentWidget()
                captions = [shown_text(c) for c in box.findChildren(QtWidgets.QLabel, "viewCaption")]
                assert any(c.strip() for c in captions), f"{family}: {shown_text(title)!r} has no caption"


def test_the_deep_networks_stage_list_has_a_caption(panels):
    panel, _roots = panels["mlp"]
    assert shown_text(panel.pipeline_caption) == "Each layer learns P(x) of the codes below it, then all learn P(y|x)."
    assert panel._pipeline_widget.isAncestorOf(panel.pipeline_caption)


# -- rich text ------------------------------------------------------------------------------------------------------
def test_a_less_than_sign_is_text_not_a_tag():
    assert rich_text("σ < 0.05 or σ > 0.95") == "σ &lt; 0.05 or σ > 0.95"
    assert rich_text("x<sub>i</sub> < 1, <b>bold</b><br>") == "x<sub>i</sub> &lt; 1, <b>bold</b><br>"
    assert rich_text("a<b") == "a&lt;b" and rich_text("a<bc") == "a&lt;bc"  # no <b> tag either
    assert rich_text('<span style="color:red">x</span>') == '<span style="color:red">x</span>'


def test_saturated_reads_sigma_below_or_above_in_the_deep_and_lstm_panels(panels):
    deep = caption_of(panels, "mlp", "Saturated units per layer")
    assert "σ < 0.05 or σ > 0.95" in deep
    lstm = caption_of(panels, "lstm", "Gate saturation")
    assert "saturated: σ < 0.05 or σ > 0.95 (tanh: |v| > 0.9)" in lstm
    rnn = caption_of(panels, "rnn", "Hidden state saturation")
    assert "σ > 0.95" in rnn


# -- true to the lecture --------------------------------------------------------------------------------------------
def test_the_pseudo_log_likelihood_says_what_it_sums(panels):
    text = caption_of(panels, "rbm", "Pseudo-log-likelihood")
    assert text.startswith("Σi log p(xi | x−i) per example")
    assert "log σ(F(x with bit i flipped) − F(x))" in text
    assert "A stand-in for log P(x), whose normaliser Z cannot be computed" in text
    assert "log P(x) estimated" not in text


def test_the_vanishing_gradient_is_the_weights_and_sigma_prime(panels):
    text = caption_of(panels, "mlp", "Gradient norm per layer")
    assert "δj = [Σ δj+1 Wj(j+1)] σ'(netj)" in text
    assert "multiplies the error by the weights W and by σ' ≤ 1/4" in text


def test_the_gradient_through_time_is_a_matrix_product_with_a_diagonal(panels):
    for family in ("lstm", "rnn"):
        text = caption_of(panels, family, "‖∂L/∂s_t‖ against distance")
        assert "the RNN multiplies it by WT diag(tanh'(nett)) (a matrix product with a diagonal matrix, " \
               "not entry-wise)" in text
        assert "The LSTM's cell path ct = ft ∘ ct-1 + … multiplies by ft" in text
        assert "W∘tanh'" not in text and "∘tanh'" not in text


def test_iou_says_absent_classes_are_left_out_of_the_mean(panels):
    for family, title in (("fcn", "Intersection over union"), ("fcn-compare", "Mean IoU")):
        text = caption_of(panels, family, title)
        assert "absent from both the prediction and the truth" in text and "left out of the mean" in text


def test_the_probe_view_has_a_caption_that_follows_the_task(panels):
    assert caption_of(panels, "lstm", "Probe: input, target, output").startswith("The probe sequence")


@pytest.mark.parametrize("bias", [False, True])
def test_the_lstm_gate_captions_follow_the_bias_option(qtbot, bias):
    panel = LSTMPanel(LSTMConfig(bias=bias))
    forget = shown_text(panel.heatmaps["f"].caption)
    cand = shown_text(panel.heatmaps["c_tilde"].caption)
    if bias:
        assert forget.startswith("ft = σ(Uf xt + Wf st-1 + bf): 1 keeps ct-1")
        assert cand == "c~t = tanh(Uc xt + Wc st-1 + bc), in [-1, 1]"
    else:
        assert forget == "ft = σ(Uf xt + Wf st-1): 1 keeps ct-1, 0 forgets it"
        assert cand == "c~t = tanh(Uc xt + Wc st-1), in [-1, 1]"
    rnn = RNNPanel(RNNConfig(bias=bias))
    state = shown_text(rnn.heatmaps["s"].caption)
    assert state.startswith("st = tanh(U xt + W st-1 + b)" if bias else "st = tanh(U xt + W st-1),")


def test_the_lstm_readout_under_the_mouse_shows_the_bias_too(qtbot):
    panel = LSTMPanel(LSTMConfig(bias=True))
    text = panel.gate_text("i", {"y": 0, "col": 0, "value": 0.5})
    assert "σ(U<sub>i</sub> x<sub>t</sub> + W<sub>i</sub> s<sub>t-1</sub> + b<sub>i</sub>)" in text
