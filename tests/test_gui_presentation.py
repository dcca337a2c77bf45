"""Presentation mode: full screen, large type, settings hidden, everything from the keyboard."""

import time

import pytest
import pytestqt.exceptions
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.families.registry import FAMILIES
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import PANELS
from explorer.gui.panels.base import PRESENTATION_MIN_VIEW_PX
from explorer.gui.window.docks import PRESENTATION_BANNER


def test_presentation_mode_by_keyboard(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)  # window shortcuts need the active window
    app = QtWidgets.QApplication.instance()
    size0, style0 = app.font().pointSize(), app.styleSheet()
    try:
        assert win.docks["rbmSettingsDock"].isVisible()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_F5)
        assert win.presenting and win.isFullScreen()
        assert not win.docks["rbmSettingsDock"].isVisible() and not win.menuBar().isVisible()
        assert app.font().pointSize() == size0 + 6 and "Presentation mode" in app.styleSheet()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)  # play, with no toolbar in sight
        qtbot.waitUntil(lambda: win.session.state == RUNNING, timeout=5000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: win.session.state != RUNNING, timeout=5000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageDown, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert win.family == list(PANELS)[1]
        qtbot.keyClick(win, QtCore.Qt.Key.Key_PageUp, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert win.family == "rbm"
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Escape)
        assert not win.presenting and not win.isFullScreen()
        assert win.docks["rbmSettingsDock"].isVisible() and win.menuBar().isVisible()
        assert app.font().pointSize() == size0 and app.styleSheet() == style0
    finally:
        win.leave_presentation()
        win.close()


def test_presentation_mode_sizes_the_docks_for_the_screen_and_gives_them_back(qtbot, tmp_path):
    """Full screen with large type, the docks take the panel's proportions of the screen again (they
    had kept their pixel heights, and the larger captions left the curves 40 px): in presentation mode the
    panel's presentation docks share the right column, the RBM's curves its lower half; leaving the mode
    puts back the sizes the user had."""
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    bottom = win.docks["rbmCurvesDock"]
    try:
        qtbot.wait(100)  # the first sizes are applied just after the window shows
        win.resizeDocks([bottom], [200], QtCore.Qt.Orientation.Vertical)  # the user's choice
        qtbot.waitUntil(lambda: abs(bottom.height() - 200) <= 2, timeout=2000)
        win.enter_presentation()
        qtbot.waitUntil(lambda: win.isFullScreen()
                        and abs(bottom.height() - win.docks["rbmFiltersDock"].height()) <= 8
                        and bottom.height() > 300, timeout=3000)
        win.leave_presentation()
        qtbot.waitUntil(lambda: abs(bottom.height() - 200) <= 2, timeout=3000)
    finally:
        win.leave_presentation()
        win.close()


# -- leaving restores everything; each panel's own presentation layout ---------------------------------------



def _window(qtbot, settings, family="rbm", size=(1366, 768)):
    settings.setValue("training/process", False)  # the layout is the same; no training process needed
    win = MainWindow(FAMILIES[family].config_cls(), settings=settings)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(200)  # the first sizes are applied just after the window shows
    return win


def _look(win):
    """What leaving presentation mode must give back: every widget's font and visibility, the docks' and
    the window's geometry, the application's font and style sheet."""
    app = QtWidgets.QApplication.instance()
    # (a dock's float and close buttons draw icons, no text; Qt gives them the title's bold whenever a style
    # sheet is set, as leaving the mode does, though not when they are first shown)
    widgets = [w for w in win.findChildren(QtWidgets.QWidget) if not w.objectName().startswith("qt_dockwidget_")]
    return {"app": (app.font().toString(), app.styleSheet()),
            "fonts": {id(w): w.font().toString() for w in widgets},
            "names": {id(w): f"{type(w).__name__} {w.objectName()}" for w in widgets},
            "shown": {id(w) for w in widgets if w.isVisible()},
            "docks": {name: d.geometry() for name, d in win.docks.items()},
            "bars": [w.geometry() for w in (win.statusBar(), win.menuBar(), *win.findChildren(QtWidgets.QToolBar))],
            "window": win.geometry()}


def test_leaving_presentation_mode_restores_fonts_bars_docks_and_banner(qtbot, settings, app_look):
    """Leaving the mode left the menu bar, toolbars, settings, timeline and status bar in the large type
    (the style sheet was put back while the large font was the application's) and the banner on screen."""
    win = _window(qtbot, settings)
    try:
        before = _look(win)
        win.enter_presentation()
        qtbot.wait(200)
        assert win.notice.isVisible() and win.notice.label.text() == PRESENTATION_BANNER
        assert win.statusBar().font().pointSizeF() > _point_size(before["fonts"][id(win.statusBar())])
        for _ in PANELS:  # every model in turn and back (the FCN's wide central view squeezed the docks after)
            win.act_next_model.trigger()
        qtbot.wait(200)
        assert win.family == "rbm"
        win.leave_presentation()

        def same_docks():  # (the other models' docks, built while presenting, were not there before)
            return {n: g for n, g in _look(win)["docks"].items() if n in before["docks"]} == before["docks"]

        qtbot.waitUntil(same_docks, timeout=3000)
        after = _look(win)
        assert after["app"] == before["app"]
        changed = [(before["names"][k], f, after["fonts"].get(k)) for k, f in before["fonts"].items()
                   if after["fonts"].get(k) != f]
        assert changed == []
        assert after["shown"] ^ before["shown"] <= {id(win.notice), *(id(w) for w in win.notice.findChildren(
            QtWidgets.QWidget))}  # only the banner may differ: it was on screen before, or it is gone
        assert win.notice.label.text() != PRESENTATION_BANNER or not win.notice.isVisible()
        assert same_docks() and after["window"] == before["window"]
        assert after["bars"] == before["bars"]
        assert all(d.titleBarWidget() is None for d in win.docks.values())
    finally:
        win.leave_presentation()
        win.close()


def _point_size(font_string: str) -> float:
    f = QtGui.QFont()
    f.fromString(font_string)
    return f.pointSizeF()


def test_changing_the_model_in_presentation_mode_keeps_the_settings_hidden(qtbot, settings, app_look):
    """Ctrl+PgDown brought the settings (and every other dock of the next model) back; each panel shows its
    own presentation docks, and leaving shows the model then on show as it is laid out outside the mode."""
    win = _window(qtbot, settings)
    try:
        win.enter_presentation()
        for family in list(PANELS)[1:3]:
            win._cycle_family(1)  # what Ctrl+PgDown does
            assert win.family == family
            wanted = {id(win.docks[n]) for n in win.panel.presentation_docks}
            shown = {id(d) for d in win.docks.values() if d.isVisible()}
            assert shown == wanted, family
        win.leave_presentation()
        family = list(PANELS)[2]
        own = {id(d) for d, _a in win._family_docks[family]}
        assert {id(d) for d in win.docks.values() if d.isVisible()} == own  # its settings among them
        # laid out in the panel's default proportions (its curves along the bottom, not squeezed)
        curves = win.docks["mlpCurvesDock"]
        assert win.dockWidgetArea(curves) == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        qtbot.waitUntil(lambda: abs(curves.height() - win.height() * win.panel.bottom_share) <= 30, timeout=3000)
        assert win.docks["mlpSettingsDock"].isVisible() and win.menuBar().isVisible()
        assert not win.notice.isVisible() or win.notice.label.text() != PRESENTATION_BANNER
    finally:
        win.leave_presentation()
        win.close()


def _views(win):
    """(name, visible height) of every view on show: the picture or plot of each titled view, and the
    pictures that are views of their own (the CNN's feature maps and probe input)."""
    import pyqtgraph as pg

    from explorer.gui.widgets.views import _ViewFrame

    def inside_frame(w):
        p = w.parentWidget()
        while p is not None:
            if isinstance(p, _ViewFrame):
                return True
            p = p.parentWidget()
        return False

    out = [(f"{type(v).__name__} {v.title.text()!r}", v._body.visibleRegion().boundingRect().height())
           for v in win.findChildren(_ViewFrame) if v.isVisible()]
    out += [(type(g).__name__, g.visibleRegion().boundingRect().height())
            for g in win.findChildren(pg.GraphicsView) if g.isVisible() and not inside_frame(g)]
    return out


@pytest.mark.parametrize("size", [(1366, 768), (1600, 1000)])
def test_every_view_of_every_panel_is_large_enough_in_presentation_mode(qtbot, settings, app_look, size):
    """At 1366x768 the hidden-unit heatmap was a 2-px strip and the curves 30-80 px tall: each panel now
    shows a few views, each at least PRESENTATION_MIN_VIEW_PX tall."""
    win = _window(qtbot, settings, size=size)
    small = []
    try:
        win.enter_presentation()
        screen = win.screen().geometry().size()
        qtbot.waitUntil(lambda: win.isFullScreen() and win.size() == screen, timeout=3000)
        win.setGeometry(0, 0, *size)  # (the test platform's screen is 800x800: the window takes the size)
        qtbot.waitUntil(lambda: win.size() == QtCore.QSize(*size), timeout=3000)
        for step in range(len(PANELS)):
            if step:
                win._cycle_family(1)  # what Ctrl+PgDown does
            try:  # the presentation sizes come a moment after the layout
                qtbot.waitUntil(lambda: all(h >= PRESENTATION_MIN_VIEW_PX for _n, h in _views(win)), timeout=2000)
            except pytestqt.exceptions.TimeoutError:
                pass
            views = _views(win)
            assert views, win.family
            small += [(win.family, name, h) for name, h in views if h < PRESENTATION_MIN_VIEW_PX]
        assert small == [], repr(small)
    finally:
        win.leave_presentation()
        win.close()


def test_the_feature_maps_labels_follow_the_type_in_and_out_of_presentation_mode(qtbot, settings, app_look):
    """The CNN's feature-map rows are labelled in the graphics scene, whose text items keep the type they
    were made in: made in presentation mode, they stayed large after it (and 110 px cut "Conv2d #1")."""
    win = _window(qtbot, settings, family="cnn")
    maps = win.panel.maps
    try:
        qtbot.waitUntil(lambda: len(maps.rows) >= 6, timeout=5000)
        size = maps.font().pointSizeF()
        win.enter_presentation()
        qtbot.waitUntil(lambda: maps.font().pointSizeF() > size, timeout=2000)
        for r in maps.rows:
            assert r["label"].item.font().pointSizeF() == maps.font().pointSizeF()
            assert r["label"].maximumWidth() >= r["label"].item.boundingRect().width()  # whole, never cut
        win.leave_presentation()
        qtbot.waitUntil(lambda: maps.font().pointSizeF() == size, timeout=2000)
        assert all(r["label"].item.font().pointSizeF() == size for r in maps.rows)
    finally:
        win.leave_presentation()
        win.close()


def test_the_layout_saved_in_presentation_mode_is_the_users(qtbot, settings, app_look):
    """A run saved, or the window closed, in presentation mode keeps the user's layout, not the mode's
    (its right column of two docks, the settings hidden) for the next start."""
    from explorer.gui.window.docks import LAYOUT_VERSION

    win = _window(qtbot, settings)
    state = win.saveState(LAYOUT_VERSION)
    win.enter_presentation()
    assert win.layout_state() == state  # what Save run stores with the run
    win.close()
    assert not win.presenting
    again = _window(qtbot, settings)
    try:
        assert again.docks["rbmSettingsDock"].isVisible()
        assert again.dockWidgetArea(again.docks["rbmCurvesDock"]) == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
    finally:
        again.close()


def _least_widths(qtbot, win) -> dict[str, int]:
    """Every model in turn (from the one after the model on show): its window's least width once its first
    views are drawn and laid out. (A panel needs more room once its views are drawn: their titles grow, the
    FCN's by 330 px. Read too early, the same panel read differently in two windows on a busy machine.)"""
    widths = {}
    for _ in list(PANELS)[1:]:
        win.act_next_model.trigger()
        qtbot.waitUntil(lambda: win.size() == QtCore.QSize(1366, 768) and win.panel.snapshots_drawn >= 1,
                        timeout=5000)
        reads = [win.minimumSizeHint().width()]
        deadline = time.monotonic() + 3.0
        while (len(reads) < 3 or len(set(reads[-3:])) > 1) and time.monotonic() < deadline:
            qtbot.wait(100)  # (the layout takes the new sizes in a few events: the same for 200 ms)
            reads.append(win.minimumSizeHint().width())
        widths[win.family] = reads[-1]
    return widths


def test_the_models_first_shown_in_presentation_mode_fit_the_window_after_it(qtbot, settings, app_look, tmp_path):
    """The panels built in presentation mode came back after it with the large type's minimum widths
    measured while they were hidden (Qt asks a hidden widget nothing when the font changes) and the mode's
    dock sizes: the FCN's widened the window to 1570 px on a 1366x768 screen, the autoencoder's curves were
    100 px tall. Each now needs no more room than in a window that never presented, and takes its default
    proportions within the window's size."""
    plain = _window(qtbot, QtCore.QSettings(str(tmp_path / "plain.ini"), QtCore.QSettings.Format.IniFormat))
    try:
        expected = _least_widths(qtbot, plain)
    finally:
        plain.close()
    win = _window(qtbot, settings)
    try:
        win.enter_presentation()
        for _ in PANELS:
            win.act_next_model.trigger()
        win.leave_presentation()
        qtbot.waitUntil(lambda: win.size() == QtCore.QSize(1366, 768), timeout=3000)
        widths = _least_widths(qtbot, win)
        assert {f: w for f, w in widths.items() if abs(w - expected[f]) > 16} == {}, (widths, expected)
        for _ in PANELS:
            win.act_next_model.trigger()
            own = {id(d) for d, _a in win._family_docks[win.family]}
            assert {id(d) for d in win.docks.values() if d.isVisible()} == own, win.family
            area = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
            bottom = [d for d, a in win._family_docks[win.family] if a == area]
            qtbot.waitUntil(lambda bottom=bottom, area=area: all(
                win.dockWidgetArea(d) == area and d.height() >= 0.6 * win.height() * win.panel.bottom_share
                for d in bottom), timeout=3000)
    finally:
        win.leave_presentation()
        win.close()


def active_lstm_window(qtbot, tmp_path) -> MainWindow:
    """The LSTM's window, training on a thread, shown and active (its shortcuts need the active window)."""
    from explorer.core.families.recurrent.trainer import LSTMConfig

    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    settings.setValue("training/process", False)
    win = MainWindow(LSTMConfig(device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    return win


def test_v_brings_the_panels_other_views_beside_the_centre_in_presentation_mode(qtbot, tmp_path):
    """Presentation mode showed each panel's two chosen views only: the LSTM's gradient against distance, the
    lesson's point, was out of reach until the mode was left. V swaps the lower one for the panel's next view
    (Shift+V the previous), never the settings; leaving the mode puts every dock back."""
    win = active_lstm_window(qtbot, tmp_path)
    docks = win.docks
    try:
        qtbot.keyClick(win, QtCore.Qt.Key.Key_F5)
        assert win.presenting

        panel = win.panel

        def shown() -> list[str]:  # the views on show beside the centre (the probe and the text share a dock)
            views = {"curves": panel.curves, "grads": panel.grads, "hist": panel.hist, "io": panel.io,
                     "text": panel._text_box, "unit": panel._unit_box}
            return sorted(k for k, v in views.items() if v.isVisible())

        assert shown() == ["curves", "unit"]
        seen = []
        for _ in range(5):
            qtbot.keyClick(win, QtCore.Qt.Key.Key_V)
            assert "unit" in shown() and len(shown()) == 2
            seen += [k for k in shown() if k != "unit"]
        assert seen == ["grads", "hist", "io", "text", "curves"]
        right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        qtbot.keyClick(win, QtCore.Qt.Key.Key_V, QtCore.Qt.KeyboardModifier.ShiftModifier)
        assert shown() == ["text", "unit"] and win.dockWidgetArea(docks["lstmTextDock"]) == right
        qtbot.keyClick(win, QtCore.Qt.Key.Key_V)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_V)
        assert win.dockWidgetArea(docks["lstmGradientsDock"]) == right and docks["lstmGradientsDock"].isVisible()
        qtbot.wait(100)
        assert docks["lstmGradientsDock"].height() > 150  # (its share of the column, not a strip)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Escape)
        assert not win.presenting
        assert win.dockWidgetArea(docks["lstmGradientsDock"]) == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        assert docks["lstmSettingsDock"].isVisible() and docks["lstmCurvesDock"].isVisible()
    finally:
        win.leave_presentation()
        win.close()


def test_the_modes_keys_reach_the_window_when_a_number_box_had_the_focus(qtbot, tmp_path):
    """Hiding the settings for the mode handed the focus on to the LSTM's Unit box, which took Space and V for
    itself: the teacher pressed Space and nothing trained."""
    win = active_lstm_window(qtbot, tmp_path)
    try:
        win.panel.unit_spin.setFocus()
        qtbot.waitUntil(win.panel.unit_spin.hasFocus, timeout=2000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_F5)
        assert win.presenting and not win.panel.unit_spin.hasFocus()
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: win.session.state == RUNNING, timeout=5000)
        # while training, moving views handed the focus on to the box again, and V then did nothing
        win.panel.unit_spin.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
        qtbot.waitUntil(lambda: not win.panel.unit_spin.hasFocus(), timeout=2000)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_V)
        assert win.panel.grads.isVisible()
        win.panel.unit_spin.setFocus(QtCore.Qt.FocusReason.MouseFocusReason)  # clicked: it takes the keys
        qtbot.wait(50)
        assert win.panel.unit_spin.hasFocus()
    finally:
        win.leave_presentation()
        win.close()
