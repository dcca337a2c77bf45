"""Views shared by every panel: an image mosaic, a heatmap, a curve plot, bars and a scatter plot.

Each view creates its pyqtgraph items once and updates them in place
(``ImageItem.setImage(..., autoLevels=False)`` with fixed levels, ``PlotDataItem.setData``):
rebuilding items on every update is slow and leaks. Tiling many small images into one
mosaic array keeps a 500-filter view at a single image item.

The modules:

- ``plotting``: pyqtgraph's settings, the shared constants, :func:`tile_images`, :func:`plot_widget`,
  axis labels that stay whole, colour-bar spacing, :class:`RangeKeeper`, colour tables and fonts;
- ``legend``: :class:`ViewLegend` (moves to the emptiest corner) and :func:`add_legend`; ``endlabels``:
  :class:`CurveEndLabels`, the curves' names at their ends while a legend is folded;
- ``frame``: ``_ViewFrame``, the title / plot / caption frame with hover and export that every view
  shares, and the rich-text helpers for titles and captions;
- ``mosaic``: :class:`MosaicView`; ``heatmap``: :class:`HeatmapView`; ``curves``: :class:`CurveView`;
- ``bars``: :class:`BarView`, :class:`ScatterView` and their colours.

Everything the module ``views`` exported before it became a package is re-exported here, with the few
private helpers other modules use (``_ViewFrame``, ``_caption_label``, ``_title_label``, ``_lut``).
"""

from explorer.gui.widgets.views.bars import (
    LABEL_COLOURS,
    VALUE_HEADROOM,
    VALUE_INSIDE,
    VALUE_ON_BAR,
    VALUE_TEXT,
    BarView,
    ScatterView,
    ordered_colours,
)
from explorer.gui.widgets.views.curves import CurveView
from explorer.gui.widgets.views.endlabels import CurveEndLabels, EndLabel
from explorer.gui.widgets.views.frame import TitleRows, _caption_label, _title_label, _ViewFrame, rich_text, shown_text
from explorer.gui.widgets.views.heatmap import HeatmapView
from explorer.gui.widgets.views.legend import LEGEND_BRUSH, LEGEND_PEN, LEGEND_PLACE_EVERY_S, ViewLegend, add_legend
from explorer.gui.widgets.views.mosaic import MosaicView
from explorer.gui.widgets.views.plotting import (
    COLORBAR_MOST_NUMBERS,
    COLORBAR_TEXT_GAP,
    CURVE_POINTS_PER_PIXEL,
    DENSE_CURVE_POINTS,
    GAP,
    HOVER_MARK,
    LABEL_ROOM,
    VIEWED_MARK,
    OffScaleMark,
    RangeKeeper,
    _lut,
    colorbar_step,
    keep_label_whole,
    monospace_font,
    nice_ceiling,
    plot_widget,
    space_colorbar_numbers,
    tile_images,
)

__all__ = [
    "COLORBAR_MOST_NUMBERS",
    "COLORBAR_TEXT_GAP",
    "CURVE_POINTS_PER_PIXEL",
    "DENSE_CURVE_POINTS",
    "GAP",
    "HOVER_MARK",
    "LABEL_ROOM",
    "OffScaleMark",
    "RangeKeeper",
    "VIEWED_MARK",
    "_lut",
    "colorbar_step",
    "keep_label_whole",
    "monospace_font",
    "nice_ceiling",
    "plot_widget",
    "space_colorbar_numbers",
    "tile_images",
    "LEGEND_BRUSH",
    "LEGEND_PEN",
    "LEGEND_PLACE_EVERY_S",
    "ViewLegend",
    "add_legend",
    "TitleRows",
    "CurveEndLabels",
    "EndLabel",
    "_ViewFrame",
    "_caption_label",
    "_title_label",
    "rich_text",
    "shown_text",
    "MosaicView",
    "HeatmapView",
    "CurveView",
    "BarView",
    "LABEL_COLOURS",
    "ScatterView",
    "VALUE_HEADROOM",
    "VALUE_INSIDE",
    "VALUE_ON_BAR",
    "VALUE_TEXT",
    "ordered_colours",
]
