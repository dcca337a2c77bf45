"""Every model family of the core has its panel, declared in one place (explorer.gui.panels.PANELS)."""

from explorer.core.families.registry import FAMILIES
from explorer.gui.panels import PANELS
from explorer.gui.panels.base import LivePanel


def test_every_core_family_has_a_panel_that_shows_it():
    assert set(PANELS) == set(FAMILIES)
    for family, panel_cls in PANELS.items():
        assert issubclass(panel_cls, LivePanel)
        assert panel_cls.family == family and panel_cls.title != LivePanel.title

