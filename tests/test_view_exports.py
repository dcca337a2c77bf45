"""Every view exports itself: PNG and SVG pictures, and curves as CSV, each written atomically."""

import csv

import numpy as np
import pytest

from explorer.gui.widgets.views import BarView, CurveView, HeatmapView, MosaicView


@pytest.fixture
def curve(qtbot):
    v = CurveView("Loss", "caption", ylabel="loss")
    qtbot.addWidget(v)
    v.add_series("step", "training (per step)", "#ffffff", width=1)
    v.add_series("heldout", "held-out", "#ff0000", width=2.5, symbol="o")
    v.append("step", [1, 2, 3], [0.5, 0.25, 0.125])
    v.append("heldout", [3], [0.3])
    v.redraw()
    v.resize(500, 300)
    v.show()
    return v


def test_curves_to_csv(curve, tmp_path):
    out = tmp_path / "loss.csv"
    curve.export_csv(str(out))
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["series", "step", "value"]
    assert rows[1:] == [["training (per step)", "1.0", "0.5"], ["training (per step)", "2.0", "0.25"],
                        ["training (per step)", "3.0", "0.125"], ["held-out", "3.0", "0.3"]]
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def test_png_and_svg(curve, qtbot, tmp_path):
    m = MosaicView("Filters")
    qtbot.addWidget(m)
    m.set_images(np.random.default_rng(0).random((4, 9)), (3, 3))
    m.resize(300, 300)
    m.show()
    for view, name in ((curve, "curve"), (m, "mosaic")):
        view.export_png(str(tmp_path / f"{name}.png"))
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        view.export_svg(str(tmp_path / f"{name}.svg"))
        svg = (tmp_path / f"{name}.svg").read_text()
        assert "<svg" in svg and "</svg>" in svg
    assert "Loss" in (tmp_path / "curve.svg").read_text()  # the title stays text in the drawing


def test_only_curves_offer_csv(qtbot):
    views = [CurveView("c"), MosaicView("m"), HeatmapView("h"), BarView("b")]
    for v in views:
        qtbot.addWidget(v)
    texts = [[a.text() for a in v.export_button.menu().actions()] for v in views]
    assert any("CSV" in t for t in texts[0])
    assert all(not any("CSV" in t for t in ts) for ts in texts[1:])
    with pytest.raises(ValueError):
        views[1].export_csv("x.csv")
