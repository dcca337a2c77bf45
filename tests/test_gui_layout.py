"""Every panel's window fits a 1366x768 laptop screen, the common projector-laptop size: the docks'
minimum sizes add up per column, and the deep network's (903 px) and the LSTM's (786 px) did not."""

import numpy as np
import pytest

from explorer.core.families.registry import FAMILIES
from explorer.gui.app import make_app
from explorer.gui.main_window import MainWindow

SCREEN_W, SCREEN_H = 1366, 768


@pytest.fixture
def app_look(qapp):
    """The app's own style sheet and font (sizes depend on them), put back afterwards."""
    sheet, font, style = qapp.styleSheet(), qapp.font(), qapp.style().name()
    make_app()
    yield
    qapp.setStyleSheet(sheet)
    qapp.setFont(font)
    qapp.setStyle(style)


@pytest.mark.parametrize("family", ["rbm", "autoencoder", "mlp", "cnn", "fcn", "lstm"])
def test_the_window_fits_a_small_laptop_screen(qtbot, settings, app_look, family):
    settings.setValue("training/process", False)  # the layout is the same; no training process needed
    win = MainWindow(FAMILIES[family][0](), settings=settings)
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
    from PySide6 import QtCore

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
    win = MainWindow(FAMILIES["rbm"][0](), settings=settings)
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
                qtbot.wait(700)  # the new panel's first layout and sizes
                toggles.clear()
                beats.clear()
                qtbot.wait(700)
                gaps = np.diff(beats) if len(beats) > 1 else np.array([np.inf])
                if toggles or len(beats) < 10 or gaps.max() > 0.5:
                    stalls.append((win.family, presenting, len(toggles), len(beats), float(gaps.max())))
        assert stalls == []
    finally:
        faulthandler.cancel_dump_traceback_later()
        heart.stop()
        win.leave_presentation()
        win.close()
