"""Every panel's window fits a 1366x768 laptop screen, the common projector-laptop size: the docks'
minimum sizes add up per column, and the deep network's (903 px) and the LSTM's (786 px) did not."""

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
