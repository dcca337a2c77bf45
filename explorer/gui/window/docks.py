"""The window's panels and docks: which family is on show, where its views sit, and presentation mode.

Each family's panel is built the first time it is shown: its central view goes into the window's stack,
its views into docks (``DockSpec``), and only the docks of the family on show are visible. The layout
(the docks' places and sizes) is saved with the window's settings and with a saved run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.families.registry import FAMILIES
from explorer.gui.panels import PANELS
from explorer.gui.panels.base import LivePanel
from explorer.gui.resources import RESOURCES
from explorer.gui.settings import byte_array_setting, number_setting
from explorer.gui.widgets.views import CurveView

if TYPE_CHECKING:
    from explorer.gui.window.notice import NoticeBar

LAYOUT_VERSION = 1  # of the saved dock layout (QMainWindow.saveState): a layout of another version is ignored

log = logging.getLogger(__name__)


class DocksMixin:
    """The panels, the docks and the layout of :class:`~explorer.gui.main_window.MainWindow` (a part of it:
    see that class for why the parts are mixins).

    Keeps ``panels`` (family -> panel), ``docks`` (object name -> dock), ``_family_docks`` (family -> its
    docks and their areas), ``_stack_index`` and ``family`` (on show). Uses from the other parts: ``stack``,
    ``notice``, ``timeline_toolbar``, ``family_combo``, ``act_present``, ``act_pace_views`` (once the menus
    are built), ``_rebuild_view_menu``, ``_settings``; a panel's signals go to ``_on_viewing`` and
    ``_new_session``, its settings form to ``_on_setting_changed``, ``reset`` and ``choose_data_folder``.
    """

    family: str
    panels: dict[str, LivePanel]
    docks: dict[str, QtWidgets.QDockWidget]
    _family_docks: dict[str, list[tuple[QtWidgets.QDockWidget, QtCore.Qt.DockWidgetArea]]]
    _stack_index: dict[str, int]
    _layout_restored: bool
    _settings: QtCore.QSettings
    stack: QtWidgets.QStackedWidget
    notice: NoticeBar
    timeline_toolbar: QtWidgets.QToolBar

    # -- panels and their docks --------------------------------------------------------------------
    @property
    def panel(self) -> LivePanel:
        """The panel of the family on show."""
        return self.panels[self.family]

    def _ensure_panel(self, family: str, config: Any = None) -> LivePanel:
        """The family's panel, with its central view and docks, built on first use."""
        if family in self.panels:
            return self.panels[family]
        config_cls = FAMILIES[family][0]
        panel = PANELS[family](config if config is not None else config_cls(), self)
        if hasattr(self, "act_pace_views"):  # (the first panel is built before the menus: pacing is on)
            panel.pacer.enabled = self.act_pace_views.isChecked()
        self.panels[family] = panel
        panel.sigViewing.connect(lambda step, fam=family: self._on_viewing(fam, step))
        panel.sigNewSessionRequested.connect(self._new_session)
        self._stack_index[family] = self.stack.addWidget(panel.central_widget())
        self._family_docks[family] = []
        bottom: list[QtWidgets.QDockWidget] = []
        for spec in panel.dock_specs():
            if spec.tab_with in self.docks:  # shares its place: a tab inside the other view's dock
                leader = self.docks[spec.tab_with]
                tabs = leader.widget()
                if not isinstance(tabs, QtWidgets.QTabWidget) or tabs.objectName() != "dockTabs":
                    first = tabs
                    tabs = QtWidgets.QTabWidget()
                    tabs.setObjectName("dockTabs")
                    tabs.setDocumentMode(True)
                    tabs.addTab(first, leader.windowTitle())
                    leader.setWidget(tabs)
                    tabs.currentChanged.connect(lambda _i, p=panel: p.redraw_shown())  # the tab's views
                tabs.addTab(spec.widget, spec.title)
                leader.setWindowTitle(" · ".join(tabs.tabText(i) for i in range(tabs.count())))
                self.docks[spec.object_name] = leader
                continue
            dock = QtWidgets.QDockWidget(spec.title, self)
            dock.setObjectName(spec.object_name)
            dock.setWidget(spec.widget)
            dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
                             | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)
            self.addDockWidget(spec.area, dock)
            self.docks[spec.object_name] = dock
            self._family_docks[family].append((dock, spec.area))
            if spec.area == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea:
                bottom.append(dock)
        for a, b in zip(bottom, bottom[1:]):  # bottom views side by side
            self.splitDockWidget(a, b, QtCore.Qt.Orientation.Horizontal)
        restored = False
        if self._layout_restored:  # put the new docks where the saved layout had them
            for dock, _area in self._family_docks[family]:
                restored = self.restoreDockWidget(dock) or restored
        for dock, _area in self._family_docks[family]:
            dock.hide()  # _show_family_ui shows them
        if not restored and self.isVisible():  # a family never laid out before: the default proportions
            QtCore.QTimer.singleShot(0, lambda: self._apply_default_sizes() if self.family == family else None)
        panel.wire_settings(self._on_setting_changed, self.reset, self.choose_data_folder)
        self._rebuild_view_menu()
        return panel

    def _show_family_ui(self, family: str) -> None:
        """Show one family's central view and docks, hide the others' (remembering which were open)."""
        self._ensure_panel(family)
        prev = getattr(self, "_shown_family", None)
        for fam, docks in self._family_docks.items():
            if fam == family:
                continue
            for dock, _area in docks:
                if fam == prev:
                    dock.setProperty("wasVisible", dock.isVisible())
                dock.hide()
        for dock, _area in self._family_docks[family]:
            if dock.property("wasVisible") is not False:
                dock.show()
        self._shown_family = self.family = family
        self.stack.setCurrentIndex(self._stack_index[family])
        combo = getattr(self, "family_combo", None)
        if combo is not None and combo.currentData() != family:
            combo.blockSignals(True)
            combo.setCurrentIndex(list(PANELS).index(family))
            combo.blockSignals(False)
        self._rebuild_view_menu()

    def _mark_viewed_step(self, family: str, step: int | None) -> None:
        """While the timeline is scrubbed back, a line on every curve of the panel marks the step on show."""
        roots = [self.stack.widget(self._stack_index[family])]
        roots += [d.widget() for d, _area in self._family_docks.get(family, [])]
        for root in roots:
            if root is None:
                continue
            views = root.findChildren(CurveView)
            if isinstance(root, CurveView):
                views.append(root)
            for view in views:
                view.set_viewed_step(step)

    # -- layout ------------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geo = byte_array_setting(self._settings, "window/geometry")  # None (and a log line) unless a layout
        state = byte_array_setting(self._settings, "window/state")
        if geo is not None and not self.restoreGeometry(geo):
            log.warning("settings: window/geometry could not be restored, ignored")
        if state is not None and self.restoreState(state, LAYOUT_VERSION):
            self._layout_restored = True
            docks = [d for d, _a in self._family_docks[self.family]]
            if not any(d.isVisibleTo(self) for d in docks):  # saved while another family was on show
                for d in docks:
                    d.show()
            for fam, pairs in self._family_docks.items():
                if fam != self.family:
                    for d, _a in pairs:
                        d.hide()
        hz = number_setting(self._settings, "view/refresh_hz", 0.1, 1000.0)
        if hz is not None:
            try:
                self.set_refresh_rate(hz)
            except (TypeError, ValueError):
                log.warning("settings: view/refresh_hz %s refused, ignored", hz)

    def has_saved_geometry(self) -> bool:
        return byte_array_setting(self._settings, "window/geometry") is not None

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for fam, pairs in self._family_docks.items():
            for dock, _area in pairs:
                dock.setVisible(fam == self.family)
        self._apply_default_sizes()

    def _apply_default_sizes(self) -> None:
        """Proportions that suit a projector: big central views, curves along the bottom."""
        w, h = max(self.width(), 900), max(self.height(), 600)
        H, V = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        A = QtCore.Qt.DockWidgetArea
        docks = self._family_docks[self.family]
        left = [d for d, a in docks if a == A.LeftDockWidgetArea]
        right = [d for d, a in docks if a == A.RightDockWidgetArea]
        bottom = [d for d, a in docks if a == A.BottomDockWidgetArea]
        if left and right:
            self.resizeDocks([left[0], right[0]], [300, int(w * 0.36)], H)
        panel = self.panels[self.family]  # its proportions (LivePanel.bottom_share, right_split, left_split)
        if bottom:
            self.resizeDocks([bottom[0]], [int(h * panel.bottom_share)], V)
        if len(right) >= 2:
            first, second = panel.right_split
            self.resizeDocks(right[:2], [int(h * first), int(h * second)], V)
        if len(left) >= 2 and panel.left_split is not None:
            first, second = panel.left_split
            self.resizeDocks(left[:2], [int(h * first), int(h * second)], V)
        if len(bottom) >= 2:
            self.resizeDocks(bottom[:2], [int(w * 0.68), int(w * 0.32)], H)

    # -- presentation mode -------------------------------------------------------------------------
    @property
    def presenting(self) -> bool:
        return getattr(self, "_present_state", None) is not None

    def toggle_presentation(self) -> None:
        if self.presenting:
            self.leave_presentation()
        else:
            self.enter_presentation()

    def enter_presentation(self) -> None:
        """For a class: full screen, large type, a black high-contrast theme, the settings and toolbars
        hidden. Everything stays reachable from the keyboard (Space, S, R, Ctrl+PgDown/PgUp, F5/Esc)."""
        if self.presenting:
            return
        app = QtWidgets.QApplication.instance()
        hidden = [d for name, d in self.docks.items() if "Settings" in name and d.isVisible()]
        self._present_state = {"style": app.styleSheet(), "font": QtGui.QFont(app.font()),
                               "maximized": self.isMaximized(), "geometry": self.saveGeometry(),
                               "hidden": hidden, "docks": self.saveState()}
        for d in hidden:
            d.hide()
        for w in (self.menuBar(), *self.findChildren(QtWidgets.QToolBar)):
            if w is not self.timeline_toolbar:  # the timeline stays: a teacher scrubs in class
                w.hide()
        qss = RESOURCES / "presentation.qss"
        app.setStyleSheet(app.styleSheet() + "\n" + (qss.read_text(encoding="utf-8") if qss.exists() else ""))
        font = QtGui.QFont(app.font())
        font.setPointSize(font.pointSize() + 6)
        app.setFont(font)
        self._style_plots(large=True)
        self.act_present.setChecked(True)
        self.showFullScreen()
        self.notice.show_message("Presentation mode: Space play/pause · S step · R reset · "
                                 "Ctrl+PgDown/PgUp other model · F5 or Esc to leave")

    def leave_presentation(self) -> None:
        st = getattr(self, "_present_state", None)
        if st is None:
            return
        self._present_state = None
        app = QtWidgets.QApplication.instance()
        app.setStyleSheet(st["style"])
        app.setFont(st["font"])
        self._style_plots(large=False)
        for w in (self.menuBar(), *self.findChildren(QtWidgets.QToolBar)):
            w.show()
        for d in st["hidden"]:
            d.show()
        self.act_present.setChecked(False)
        self.showNormal()
        if st["maximized"]:
            self.showMaximized()
        else:
            self.restoreGeometry(st["geometry"])
        self.restoreState(st["docks"])  # the docks as the user had them

    def _style_plots(self, large: bool) -> None:
        """Axis numbers and labels of every plot: large and white for a projector, or back to normal."""
        import pyqtgraph as pg

        font = QtGui.QFont(QtWidgets.QApplication.instance().font())
        font.setPointSize(16 if large else max(9, font.pointSize() - 1))
        pen = pg.mkPen("#ffffff" if large else "#d8dee9", width=2 if large else 1)
        for view in self.findChildren(pg.GraphicsView):
            for item in view.scene().items():
                if isinstance(item, pg.AxisItem):
                    item.setTickFont(font if large else None)
                    item.setPen(pen)
                    item.setTextPen(pen)
                    item.label.setFont(font)
