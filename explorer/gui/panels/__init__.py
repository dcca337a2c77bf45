"""The live panels: one per model family, and the one place that says which panel shows which family.

``PANELS`` is keyed by the family names of ``explorer.core.families.registry.FAMILIES`` (every family
has a panel: tests/test_gui_panels.py); its order is the Model menu's, the lecture's order. The window
builds a family's panel from it and never names a family itself.
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
