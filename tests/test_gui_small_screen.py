"""A 1366x768 window (a small projector's or laptop's screen): the RBM's hidden units, the CNN's settings,
presentation mode's status line and timeline, and the LSTM after presentation mode, each measured."""

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.families.registry import FAMILIES
from explorer.gui.main_window import MainWindow
from explorer.gui.widgets.views import colorbar_step

SMALL, LARGE = (1366, 768), (1600, 1000)




def _window(qtbot, settings, family, size=SMALL, notice=True):
    settings.setValue("training/process", False)  # the layout is the same; no training process needed
    win = MainWindow(FAMILIES[family].config_cls(), settings=settings)
    qtbot.addWidget(win)
    if not notice:
        win.notice.hide()  # (as once training has started: the start-up hint is gone)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(300)  # the first sizes are applied just after the window shows
    return win


def _number_rects(axis) -> list[QtCore.QRectF]:
    """Where the axis draws its numbers, top to bottom (what pyqtgraph paints)."""
    image = QtGui.QImage(8, 8, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return sorted((rect for rect, _flags, _text in specs[2]), key=lambda r: r.top())


def test_colour_bar_steps_fit_the_bar():
    assert colorbar_step(0.0, 1.0, 25, 10) == 1.0     # 27 px: the two ends only (pyqtgraph drew six)
    assert colorbar_step(0.0, 1.0, 40, 10) == 0.5
    assert colorbar_step(0.0, 1.0, 100, 10) == 0.2    # tall enough: pyqtgraph's own six
    assert colorbar_step(0.0, 1.0, 600, 10) == 0.2    # never more than six
    assert colorbar_step(-1.0, 1.0, 100, 10) == 0.5
    assert colorbar_step(-1.0, 1.0, 50, 10) == 1.0
    assert colorbar_step(0.0, 7.3, 100, 10) == 2.0
    assert colorbar_step(0.0, 0.0, 100, 10) == 1.0    # (an empty range: any step)


@pytest.mark.parametrize("height, numbers", [(110, 2), (400, 6)])
def test_a_colour_bar_keeps_its_numbers_apart_however_short(qtbot, height, numbers):
    """A short colour bar drew pyqtgraph's six numbers for 0..1 over each other; it now draws as many as fit."""
    import numpy as np

    from explorer.gui.widgets.views import HeatmapView

    view = HeatmapView("a heatmap", xlabel="column", ylabel="row", levels=(0.0, 1.0))
    qtbot.addWidget(view)
    view.set_matrix(np.random.default_rng(0).random((30, 100)))
    view.resize(400, height)
    view.show()
    qtbot.waitExposed(view)
    axis = view.colorbar.axis
    qtbot.waitUntil(lambda: len(_number_rects(axis)) == numbers, timeout=2000)
    rects = _number_rects(axis)
    assert all(a.bottom() <= b.top() for a, b in zip(rects, rects[1:])), (axis.height(), rects)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_the_rbm_hidden_units_have_a_readable_heatmap_and_colour_bar(qtbot, settings, app_look, size):
    """At 1366x768 the hidden-unit heatmap was 27 px tall and its colour bar's six numbers lay over each other."""
    from explorer.gui.panels.rbm_panel import HIDDEN_MIN_PX

    win = _window(qtbot, settings, "rbm", size)
    panel = win.panel
    try:
        win.session.step(2)
        qtbot.waitUntil(lambda: panel.hidden.updates > 0, timeout=10000)
        qtbot.wait(100)
        plot = panel.hidden.plot.getPlotItem().vb
        assert panel.hidden._body.height() >= HIDDEN_MIN_PX and plot.height() >= 60, plot.height()
        assert panel.filters._body.height() >= 100  # the filters above keep their room
        numbers = _number_rects(panel.hidden.colorbar.axis)
        assert len(numbers) >= 2
        assert all(a.bottom() <= b.top() for a, b in zip(numbers, numbers[1:])), numbers
        assert win.minimumSizeHint().height() <= SMALL[1]  # the window still fits the small screen
    finally:
        win.close()


def _rows_in_view(scroll: QtWidgets.QScrollArea, form: QtWidgets.QFormLayout) -> int:
    """The form's shown rows that lie whole inside the scroll area's viewport."""
    viewport = scroll.viewport()
    room = QtCore.QRect(QtCore.QPoint(0, 0), viewport.size())
    roles = (QtWidgets.QFormLayout.ItemRole.FieldRole, QtWidgets.QFormLayout.ItemRole.SpanningRole)
    whole = 0
    for row in range(form.rowCount()):
        if not form.isRowVisible(row):
            continue
        item = next(i for i in (form.itemAt(row, r) for r in roles) if i is not None)
        geometry = item.geometry()
        where = QtCore.QRect(form.parentWidget().mapTo(viewport, geometry.topLeft()), geometry.size())
        whole += room.contains(where)
    return whole


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_the_cnn_settings_show_their_first_rows(qtbot, settings, app_look, size):
    """At 1366x768 the CNN's settings dock showed two rows (the data set and its folder)."""
    from explorer.gui.panels.cnn_panel import SETTINGS_LEAST_ROWS

    win = _window(qtbot, settings, "cnn", size)
    try:
        scroll = win.docks["cnnSettingsDock"].widget()
        assert _rows_in_view(scroll, win.panel.settings.form) >= SETTINGS_LEAST_ROWS == 6
        assert win.docks["cnnProbeDock"].height() >= 120  # the probe's examples below stay in sight
        assert win.minimumSizeHint().height() <= SMALL[1]
    finally:
        win.close()


def _cut(label: QtWidgets.QLabel) -> bool:
    """Whether a one-line label is narrower or lower than its text."""
    metrics = label.fontMetrics()
    room = label.contentsRect()
    return room.width() < metrics.horizontalAdvance(label.text()) or room.height() < metrics.height()


def test_presentation_mode_shows_the_status_line_and_timeline_whole_in_its_large_type(qtbot, settings, app_look):
    """In presentation mode at 1366x768 the status line was cut ("views 16/s (p") and so was the timeline's
    ("186 views kept every 331 st…"): both now say less, in the mode's large type, and say it whole."""
    win = _window(qtbot, settings, "rbm")
    app = QtWidgets.QApplication.instance()
    labels = (win.status_state, win.status_rate, win.status_epoch, win.status_device)
    normal = app.font().pointSizeF()
    try:
        win.set_step_rate(5000)  # the longest rate text: "(at most ...)" too
        win.act_play.trigger()
        qtbot.waitUntil(lambda: win.session.state == RUNNING and "samples/s" in win.status_rate.text(), timeout=10000)
        win.enter_presentation()
        qtbot.waitUntil(win.isFullScreen, timeout=3000)
        qtbot.waitUntil(lambda: len(win.panel.timeline) >= 2, timeout=10000)
        qtbot.wait(600)  # a few status updates in the mode
        assert win.status_rate.text().endswith("steps/s (at most 5,000 steps/s)")
        assert win.status_device.text() == "device: cpu"
        assert win.timeline_bar.kept.text().endswith(" views kept")
        texts = [*labels, win.timeline_bar.where, win.timeline_bar.kept]

        def whole() -> bool:  # (a text just changed is measured once the bar has been laid out again)
            if win.size() != QtCore.QSize(*SMALL):  # (the test platform fits a full-screen window to its screen)
                win.setGeometry(0, 0, *SMALL)
                return False
            return [lab.text() for lab in texts if _cut(lab)] == []

        qtbot.waitUntil(whole, timeout=3000)
        assert all(lab.font().pointSizeF() == app.font().pointSizeF() for lab in labels)  # the mode's large type
        assert all(lab.font().pointSizeF() >= normal + 4 for lab in texts)  # (the timeline's are styled 14-18 pt)
        win.leave_presentation()
        qtbot.waitUntil(lambda: "samples/s" in win.status_rate.text(), timeout=3000)
        assert " of " in win.timeline_bar.kept.text() and " every " in win.timeline_bar.kept.text()
        assert win.status_device.text().startswith("device: cpu · ")
    finally:
        win.leave_presentation()
        if win.session is not None:
            win.session.pause()
        win.close()


def _heatmap_rows(panel, qtbot) -> list[list[int]]:
    """The LSTM's six heatmap views' heights as the user sees them: the upper row, then the lower, each
    tab of a short window brought forward in turn (a page out of sight keeps the sizes of its last
    layout, whenever that was)."""
    tabs = panel._gate_tabs
    rows = []
    for k, row in enumerate((("f", "i", "o"), ("c_tilde", "c", "s"))):
        if tabs.isVisible():
            tabs.setCurrentIndex(k)
            qtbot.wait(100)
        rows.append([panel.heatmaps[g].height() for g in row])
    if tabs.isVisible():
        tabs.setCurrentIndex(0)
    return rows


def test_leaving_presentation_mode_on_another_model_lays_the_lstm_out_as_never_presented(qtbot, settings, app_look,
                                                                                        tmp_path):
    """Presentation mode begun on the CNN and left on the LSTM: its bottom row came 7 px taller than its share
    (its proportions applied while the window was on its way back to its size) and its lower row of heatmaps
    that much shorter than in a window never presented."""
    direct = _window(qtbot, QtCore.QSettings(str(tmp_path / "direct.ini"), QtCore.QSettings.Format.IniFormat),
                     "lstm", notice=False)
    try:
        expected_rows = _heatmap_rows(direct.panel, qtbot)
        expected_bottom = direct.docks["lstmCurvesDock"].height()
    finally:
        direct.close()
    win = _window(qtbot, settings, "cnn", notice=False)
    try:
        win.enter_presentation()
        qtbot.waitUntil(win.isFullScreen, timeout=3000)
        win.setGeometry(0, 0, *SMALL)
        for _ in range(3):  # CNN -> FCN -> FCN comparison -> LSTM, as Ctrl+PgDown goes
            win.act_next_model.trigger()
            qtbot.wait(200)
        assert win.family == "lstm"
        win.leave_presentation()
        qtbot.waitUntil(lambda: win.size() == QtCore.QSize(*SMALL), timeout=3000)
        bottom = win.docks["lstmCurvesDock"]
        qtbot.waitUntil(lambda: bottom.height() == expected_bottom, timeout=3000)
        rows = _heatmap_rows(win.panel, qtbot)
        assert rows == expected_rows, (rows, expected_rows)
        assert not win.notice.isVisible()
    finally:
        win.leave_presentation()
        win.close()


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_the_lstm_heatmaps_go_in_tabs_in_a_short_window_and_back_in_the_grid_in_a_tall_one(qtbot, settings, app_look,
                                                                                         size):
    """At 1366x768 the 2 x 3 grid left each gate heatmap about 70 px for its picture: in a short window the six
    go in two tabs of three, a row the central view's height; at 1600x1000 they stay in the grid. A window
    resized across the line changes over, both ways."""
    win = _window(qtbot, settings, "lstm", size=size, notice=False)
    try:
        panel = win.panel
        tabs = panel._gate_tabs

        def shown() -> list[str]:
            return [g for g, view in panel.heatmaps.items() if view.isVisible()]

        if size == SMALL:
            qtbot.waitUntil(tabs.isVisible, timeout=3000)
            assert [tabs.tabText(i) for i in range(tabs.count())] == ["Gates f, i, o", "c~, c, s"]
            assert shown() == ["f", "i", "o"]
            assert min(panel.heatmaps[g]._body.height() for g in shown()) >= 200
            tabs.setCurrentIndex(1)
            qtbot.waitUntil(lambda: shown() == ["c_tilde", "c", "s"], timeout=3000)
            win.resize(*LARGE)
            qtbot.waitUntil(lambda: not tabs.isVisible() and len(shown()) == 6, timeout=3000)
        else:
            assert not tabs.isVisible() and len(shown()) == 6
            win.resize(*SMALL)
            qtbot.waitUntil(lambda: tabs.isVisible() and len(shown()) == 3, timeout=3000)
    finally:
        win.close()


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_the_hidden_code_the_chosen_unit_and_the_gradient_keep_a_readable_height(qtbot, settings, app_look, size):
    """At 1366x768 the autoencoder's hidden-code heatmap was a 30-px strip, the LSTM's chosen-unit trace a
    20-px plot and its gradient against distance 30 px under its caption."""
    win = _window(qtbot, settings, "autoencoder", size=size, notice=False)
    try:
        qtbot.waitUntil(lambda: win.panel.codes._body.height() >= 110, timeout=3000)
        win.family_combo.setCurrentIndex(win.family_combo.findData("lstm"))
        assert win.family == "lstm"
        qtbot.waitUntil(lambda: win.panel.units._body.height() >= 90 and win.panel.grads._body.height() >= 90,
                        timeout=3000)
    finally:
        win.close()


@pytest.mark.parametrize("present", [False, True], ids=["window", "presentation"])
def test_the_fcn_opacity_slider_keeps_a_usable_width(qtbot, settings, app_look, present):
    """At 1366x768, and in presentation mode, it was squeezed to a few pixels ("Opacity ▫ 60%")."""
    win = _window(qtbot, settings, "fcn")
    try:
        if present:
            win.enter_presentation()
            qtbot.waitUntil(win.isFullScreen, timeout=3000)
            win.setGeometry(0, 0, *SMALL)  # (the test platform fits a full-screen window to its screen)
            qtbot.wait(400)
        slider = win.findChild(QtWidgets.QSlider, "overlayOpacity")
        assert slider.isVisible() and slider.width() >= 90
    finally:
        win.leave_presentation()
        win.close()


@pytest.mark.parametrize("size, points", [(SMALL, 10), (SMALL, 16), (LARGE, 10)])
def test_the_status_line_is_read_whole_while_training(qtbot, settings, app_look, size, points):
    """At 1366x768 with a desktop's larger type it was cut ("views 20/s (paced"): it now leaves out the samples'
    rate, then says as little as in presentation mode, until it fits; at 1600 px it says everything."""
    win = _window(qtbot, settings, "fcn", size, notice=False)
    labels = (win.status_state, win.status_rate, win.status_epoch, win.status_device)
    for lab in labels:  # (wider type, as on a desktop whose fonts run wider than this test platform's)
        font = lab.font()
        font.setPointSize(points)
        lab.setFont(font)
    try:
        win.set_step_rate(5000)  # the longest rate text: "(at most ...)" too
        win.act_play.trigger()
        qtbot.waitUntil(lambda: win.session.state == RUNNING and "views" in win.status_rate.text(), timeout=20000)
        qtbot.wait(300)
        assert win.width() == size[0]
        assert [lab.text() for lab in labels if _cut(lab)] == []
        if size == LARGE:
            assert "samples/s" in win.status_rate.text() and "thread" in win.status_device.text()
    finally:
        win.session.pause()
        win.close()


def test_the_lstm_gate_heatmaps_stand_level_in_presentation_mode(qtbot, settings, app_look):
    """In presentation mode's large type at 1366x768, "Forget gate f_t" wrapped and "Input gate i_t" did not:
    the three heatmaps of a row stood at different heights. Their titles now take the tallest's height."""
    win = _window(qtbot, settings, "lstm")
    try:
        win.enter_presentation()
        qtbot.waitUntil(win.isFullScreen, timeout=3000)
        win.setGeometry(0, 0, *SMALL)
        heatmaps = win.panel.heatmaps
        # (this platform's type runs narrower than a desktop's: a longer title wraps here as that one did there)
        heatmaps["f"].title.setText(heatmaps["f"].title.text() + " (kept)")

        titles = [heatmaps[g].title for g in ("f", "i", "o")]

        def tallest() -> int:
            return max(t.heightForWidth(t.width()) for t in titles)

        # (laid out again for the new title and the window's size: on a busy machine that takes a while)
        qtbot.waitUntil(lambda: [t.height() for t in titles] == [tallest()] * 3, timeout=5000)
        assert tallest() > titles[1].fontMetrics().lineSpacing() + 6  # the first wraps, the second does not
        assert [t.height() for t in titles] == [tallest()] * 3  # so the heatmaps below them start level
    finally:
        win.leave_presentation()
        win.close()
