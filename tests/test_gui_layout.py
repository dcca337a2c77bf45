"""Every panel's window fits a 1366x768 laptop screen, the common projector-laptop size: the docks'
minimum sizes add up per column, and the deep network's (903 px) and the LSTM's (786 px) did not."""

import numpy as np
import pytest
from PySide6 import QtCore

from explorer.core.families.registry import FAMILIES
from explorer.gui.main_window import MainWindow

SCREEN_W, SCREEN_H = 1366, 768




@pytest.mark.parametrize("family", ["rbm", "autoencoder", "mlp", "cnn", "fcn", "lstm"])
def test_the_window_fits_a_small_laptop_screen(qtbot, settings, app_look, family):
    settings.setValue("training/process", False)  # the layout is the same; no training process needed
    win = MainWindow(FAMILIES[family].config_cls(), settings=settings)
    qtbot.addWidget(win)
    win.resize(SCREEN_W, SCREEN_H)
    win.show()
    qtbot.waitExposed(win)
    assert win.family == family
    least = win.minimumSizeHint()
    assert least.height() <= SCREEN_H and least.width() <= SCREEN_W, (least.width(), least.height())
    qtbot.waitUntil(lambda: win.height() == SCREEN_H)  # and it takes the size it was given
    win.close()


def test_a_squeezable_view_fills_its_place_and_scrolls_only_when_squeezed(qtbot):
    """A word-wrapped label gives a layout a height-for-width, and a scroll area then made its widget as
    tall as the layout's preferred height (the deep network's stage views: 1,124 px in 455), so it
    scrolled when it had room and centred its pictures out of sight."""
    from PySide6 import QtWidgets

    from explorer.gui.panels.base import squeezable
    from explorer.gui.widgets.views import HeatmapView

    view = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(view)
    title = QtWidgets.QLabel("a title long enough to wrap when the view is narrow " * 3)
    title.setWordWrap(True)
    lay.addWidget(title)
    lay.addWidget(HeatmapView("a heatmap", "its caption, which wraps too " * 4), 1)
    scroll = squeezable(view)
    qtbot.addWidget(scroll)
    scroll.resize(500, 400)
    scroll.show()
    qtbot.waitExposed(scroll)
    qtbot.waitUntil(lambda: view.height() == scroll.viewport().height(), timeout=2000)
    assert not scroll.verticalScrollBar().isVisible()
    scroll.resize(500, 70)  # below the view's minimum: it keeps its minimum and scrolls
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().isVisible(), timeout=2000)
    assert view.height() >= view.minimumSizeHint().height() > scroll.viewport().height()


@pytest.mark.parametrize("size", [(1600, 1000), (1366, 768)])
def test_switching_through_every_model_never_stalls_the_window(qtbot, settings, app_look, monkeypatch, size):
    """The window froze at 1366x768 after Ctrl+PgDown from the FCN comparison to the LSTM: a side axis's
    label was hidden and shown in turn on every layout pass (keep_label_whole), the GUI thread busy for
    good. Every model in turn, as Ctrl+PgDown goes, outside and inside presentation mode: once a switch
    has settled, no label changes any more and a heartbeat timer keeps its beat (a stalled event loop
    starves timers; the watchdog ends a run that hangs outright, with every thread's traceback)."""
    import faulthandler
    import time

    import pyqtgraph as pg

    from explorer.gui.panels import PANELS

    toggles = []
    show_label = pg.AxisItem.showLabel
    monkeypatch.setattr(pg.AxisItem, "showLabel", lambda axis, show=True: (toggles.append(show),
                                                                           show_label(axis, show))[1])
    beats: list[float] = []
    heart = QtCore.QTimer()
    heart.setInterval(20)
    heart.timeout.connect(lambda: beats.append(time.monotonic()))
    settings.setValue("training/process", False)
    win = MainWindow(FAMILIES["rbm"].config_cls(), settings=settings)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    heart.start()
    faulthandler.dump_traceback_later(180, exit=True)  # the watchdog
    stalls = []
    try:
        for presenting in (False, True):
            if presenting:
                win.enter_presentation()
                qtbot.waitUntil(win.isFullScreen, timeout=3000)
                win.setGeometry(0, 0, *size)  # (the test platform's screen is 800x800)
            for _ in PANELS:
                win.act_next_model.trigger()  # what Ctrl+PgDown does
                # the new panel's first views drawn (its titles and captions change then), a quiet 200 ms
                qtbot.waitUntil(lambda: win.panel.snapshots_drawn >= 1, timeout=5000)
                settle = time.monotonic() + 3.0
                while time.monotonic() < settle:
                    toggles.clear()
                    qtbot.wait(200)
                    if not toggles:
                        break
                toggles.clear()
                beats.clear()
                qtbot.wait(300)  # the heart beats every 20 ms: 15 beats, none in a stalled loop
                gaps = np.diff(beats) if len(beats) > 1 else np.array([np.inf])
                if toggles or len(beats) < 6 or gaps.max() > 0.25:
                    stalls.append((win.family, presenting, len(toggles), len(beats), float(gaps.max())))
        assert stalls == []
    finally:
        faulthandler.cancel_dump_traceback_later()
        heart.stop()
        win.leave_presentation()
        win.close()


def _in_window(win, widget):
    from PySide6 import QtCore

    return QtCore.QRect(widget.mapTo(win, QtCore.QPoint(0, 0)), widget.size())


@pytest.mark.parametrize("size", [(1600, 1000), (1366, 768)])
def test_the_cnn_panel_keeps_its_canvas_maps_texts_and_settings_in_reach(qtbot, settings, app_look, size):
    """At 1366x768 the deeper feature maps (Conv2d #4 to AvgPool2d #6) were drawn outside their view, texts
    were cut mid-sentence and the settings showed one row; at both sizes "Clear drawing" covered part of
    the canvas."""
    from PySide6 import QtWidgets

    settings.setValue("training/process", False)
    win = MainWindow(FAMILIES["cnn"].config_cls(), settings=settings)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    panel = win.panel
    maps = panel.maps
    try:
        qtbot.waitUntil(lambda: len(maps.rows) >= 6, timeout=5000)  # the first snapshot's layers
        qtbot.wait(200)
        # the button beside the canvas, not over it
        assert not _in_window(win, panel.canvas).intersects(_in_window(win, panel.clear_button))
        # every layer's row inside the feature maps' view, which scrolls to the last one
        rows = [r["viewbox"].sceneBoundingRect() for r in maps.rows]
        assert all(r.height() >= 20 for r in rows)
        assert rows[-1].bottom() <= maps.height()
        scroll = maps.parentWidget()
        while not isinstance(scroll, QtWidgets.QScrollArea):
            scroll = scroll.parentWidget()
        scroll.ensureWidgetVisible(maps, 0, 0)
        scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
        qtbot.wait(50)
        bottom = maps.mapTo(scroll.viewport(), QtCore.QPoint(0, int(rows[-1].bottom())))
        assert bottom.y() <= scroll.viewport().height()
        # no word-wrapped text shorter than its lines need (it scrolls instead)
        central = win.stack.widget(win._stack_index["cnn"])
        cut = [lab.text()[:40] for lab in central.findChildren(QtWidgets.QLabel)
               if lab.isVisible() and lab.wordWrap() and lab.text() and lab.height() < lab.heightForWidth(lab.width())]
        assert cut == []
        # the settings show rows, not one
        form = win.docks["cnnSettingsDock"].widget()
        row = panel.settings.form.itemAt(1).widget() or panel.settings.form.itemAt(0).widget()
        assert form.viewport().height() >= 3 * row.sizeHint().height()
    finally:
        win.close()


def test_the_lstm_panel_gives_its_heatmaps_and_texts_room_at_1366x768(qtbot, settings, app_look):
    """At 1366x768 the six gate heatmaps were about 25 px tall and the text views showed two lines."""
    from explorer.gui.panels.base import bring_forward
    from explorer.gui.panels.recurrent_panel import HEATMAP_MIN_PX, SAMPLE_MIN_LINES, TEXT_MIN_LINES

    settings.setValue("training/process", False)
    win = MainWindow(FAMILIES["lstm"].config_cls(), settings=settings)
    qtbot.addWidget(win)
    win.resize(SCREEN_W, SCREEN_H)
    win.show()
    qtbot.waitExposed(win)
    panel = win.panel
    try:
        bring_forward(panel.coloured)
        qtbot.wait(200)
        assert all(v._body.height() >= HEATMAP_MIN_PX for v in panel.heatmaps.values())
        assert panel.coloured.text.height() >= TEXT_MIN_LINES * panel.coloured.text.fontMetrics().lineSpacing()
        assert panel.sample.height() >= SAMPLE_MIN_LINES * panel.sample.fontMetrics().lineSpacing()
        assert win.minimumSizeHint().height() <= SCREEN_H  # and the window still fits the screen
    finally:
        win.close()


def test_the_architecture_builder_fits_a_small_screen(qtbot, settings, app_look, monkeypatch):
    """The builder opened at 1400x850: on a 1366x768 screen its Train button was off the screen."""
    from PySide6 import QtCore, QtGui, QtWidgets

    room = QtCore.QRect(0, 0, SCREEN_W, SCREEN_H - 32)  # a laptop screen less its task bar
    monkeypatch.setattr(QtGui.QScreen, "availableGeometry", lambda screen: QtCore.QRect(room))
    settings.setValue("training/process", False)
    win = MainWindow(FAMILIES["rbm"].config_cls(), settings=settings)
    qtbot.addWidget(win)
    try:
        builder = win.show_builder()
        qtbot.waitExposed(builder)
        assert room.contains(builder.frameGeometry())
        train = [b for b in builder.findChildren(QtWidgets.QPushButton) if b.text().startswith("Train")]
        assert train and all(room.contains(QtCore.QRect(b.mapToGlobal(QtCore.QPoint(0, 0)), b.size()))
                             for b in train)
    finally:
        if win.builder_window is not None:
            win.builder_window.close()
        win.close()


def test_a_log_axis_labels_its_decades_first_so_its_labels_never_pile_up(qtbot):
    """Spanning two or three decades, pyqtgraph put every 2x..9x tick in the level it labels however crowded
    (a short gradient plot showed "0.02 0.03 0.04 ..." on top of each other): the decades now come first."""
    import math

    from explorer.gui.widgets.views import CurveView
    from explorer.gui.widgets.views.plotting import decade_levels

    lo, hi = math.log10(0.02), math.log10(3.0)
    minor = [d + math.log10(k) for d in (-2, -1, 0) for k in range(1, 10) if lo < d + math.log10(k) < hi]
    levels = decade_levels([(None, minor)], lo, hi)
    assert levels[0] == (1.0, [-1.0, 0.0])
    assert levels[1][0] is None and len(levels[1][1]) == len(minor) - 2 and 0.0 not in levels[1][1]
    # less than a decade on show: nothing to put first; a level of decades already there: left as it was
    assert decade_levels([(None, [0.3, 0.5])], math.log10(1.5), math.log10(4.0)) == [(None, [0.3, 0.5])]
    assert decade_levels([(1.0, [-3.0, 0.0]), (None, [0.3])], -3.2, 0.5) == [(1.0, [-3.0, 0.0]), (None, [0.3])]
    view = CurveView("gradient norms", ylabel="gradient norm", logy=True)
    qtbot.addWidget(view)
    axis = view.plot.getPlotItem().getAxis("left")
    assert axis.logMode
    assert axis.tickValues(lo, hi, 60)[0] == (1.0, [-1.0, 0.0])


def test_a_layout_saved_on_a_screen_of_another_size_keeps_its_docks_but_not_their_pixel_sizes(qtbot, settings):
    """Saved at 1600x1000 and opened on a 1366x768 projector, the docks kept their pixel heights and the deep
    network's central views were 60 px tall. The docks (where they are, which are shown) come back; their sizes
    are the default proportions for this screen, and the window is sized for it."""
    from explorer.core.families.deep.trainer import MLPConfig

    config = MLPConfig(dataset="digits", hidden=(8, 8), device="cpu")
    first = MainWindow(config, settings=settings)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    qtbot.wait(50)  # (the default proportions, set a moment after the window is shown)
    bottom = first.findChild(QtCore.QObject, "mlpCurvesDock") or first._family_docks["mlp"][-1][0]
    name = bottom.objectName()
    first.resizeDocks([bottom], [int(first.height() * 0.75)], QtCore.Qt.Orientation.Vertical)  # the user's
    qtbot.wait(50)
    saved = bottom.height()
    assert saved > first.height() * 0.35  # (taller than the default share: 26% here)
    first.close()
    width, height = first.screen_size()
    assert settings.value("window/screen_width") is not None and settings.value("window/state") is not None

    def reopened():
        win = MainWindow(config, settings=settings)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        qtbot.wait(50)  # (the default proportions come a moment after the window is shown)
        return win, win.findChild(QtCore.QObject, name)

    same, dock = reopened()  # the same screen: the user's layout as it was
    assert same.has_saved_geometry() and not same._other_screen
    kept = dock.height()
    assert abs(kept - saved) <= 40, (kept, saved)  # (restoreState's own rounding in a window sized anew)
    same.close()

    settings.setValue("window/screen_width", int(width * 1.2))  # as if saved on a larger screen
    settings.setValue("window/screen_height", int(height * 1.3))
    other, dock = reopened()
    assert other._other_screen and not other.has_saved_geometry()
    assert dock.isVisible() and dock.height() < min(saved, kept) - 80, (dock.height(), saved)  # the default share
    other.close()
