"""The live panels: one per model family, and the one place that says which panel shows which family.

``PANELS`` is keyed by the family names of ``explorer.core.families.registry.FAMILIES`` (every family
has a panel: tests/test_gui_panels.py); its order is the Model menu's, the lecture's order. The window
builds a family's panel from it and never names a family itself.

``EXTERNAL_PANELS`` show sessions the window attaches to rather than creates: a model trained in the
user's own script (``explorer.watch``) has no family of the registry, no settings to train it from and
no place in the Model menu; its session's ``trainer.family`` names its panel here.
"""

from __future__ import annotations

from explorer.gui.panels.autoencoder_panel import AutoencoderPanel
from explorer.gui.panels.base import LivePanel
from explorer.gui.panels.cnn_panel import CNNPanel
from explorer.gui.panels.compare_panel import ComparePanel
from explorer.gui.panels.deep_panel import MLPPanel
from explorer.gui.panels.fcn_panel import FCNComparePanel, FCNPanel
from explorer.gui.panels.rbm_panel import RBMPanel
from explorer.gui.panels.recurrent_panel import LSTMPanel, RNNPanel
from explorer.gui.panels.watch_panel import WatchPanel

PANELS: dict[str, type[LivePanel]] = {
    "rbm": RBMPanel,
    "autoencoder": AutoencoderPanel,
    "mlp": MLPPanel,
    "compare": ComparePanel,
    "cnn": CNNPanel,
    "fcn": FCNPanel,
    "fcn-compare": FCNComparePanel,
    "lstm": LSTMPanel,
    "rnn": RNNPanel,
}

EXTERNAL_PANELS: dict[str, type[LivePanel]] = {
    "watch": WatchPanel,
}


def panel_class(family: str) -> type[LivePanel]:
    """The panel that shows sessions of ``family`` (a family of the registry, or an external kind)."""
    return PANELS[family] if family in PANELS else EXTERNAL_PANELS[family]
