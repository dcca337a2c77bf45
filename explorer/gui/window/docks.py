"""The window's panels and docks: which family is on show, where its views sit, and presentation mode.

Each family's panel is built the first time it is shown: its central view goes into the window's stack,
its views into docks (``DockSpec``), and only the docks of the family on show are visible. The layout
(the docks' places and sizes) is saved with the window's settings and with a saved run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.families.registry import FAMILIES
from explorer.gui.panels import panel_class
from explorer.gui.panels.base import LivePanel
from explorer.gui.resources import RESOURCES
from explorer.gui.settings import byte_array_setting, number_setting
from explorer.gui.widgets.views import CurveEndLabels, CurveView, OffScaleMark, ViewLegend

if TYPE_CHECKING:
    from explorer.gui.window.notice import NoticeBar

LAYOUT_VERSION = 1  # of the saved dock layout (QMainWindow.saveState): a layout of another version is ignored
PRESENTATION_BANNER = ("Presentation mode: Space play/pause · S step · R reset · V other view · "
                       "Ctrl+PgDown/PgUp other model · F5 or Esc to leave")


def relayout(widget: QtWidgets.QWidget) -> None:
    """Have every layout in ``widget`` measure its contents afresh when next shown. A hidden widget's
    layouts keep the sizes they measured last (Qt asks a hidden widget nothing when its font changes): a
    panel last shown in presentation mode came back with the large type's minimum widths, and the window
    grew past the screen for them."""
    for lay in ([widget.layout()] if widget.layout() is not None else []) + widget.findChildren(QtWidgets.QLayout):
        lay.invalidate()


class PageStack(QtWidgets.QStackedWidget):
    """The panels' central views, one on show: as small as the one on show allows, not as the largest of
    them (the FCN's, 900 px wide, made every other panel's central view as wide once it had been built,
    and squeezed the RBM's right column to 148 px)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.currentChanged.connect(lambda _i: self.updateGeometry())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        page = self.currentWidget()
        return page.minimumSizeHint().expandedTo(page.minimumSize()) if page is not None else QtCore.QSize()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        page = self.currentWidget()
        return page.sizeHint() if page is not None else QtCore.QSize()


def _is_typing_box(widget) -> bool:
    return isinstance(widget, (QtWidgets.QAbstractSpinBox, QtWidgets.QLineEdit, QtWidgets.QComboBox))


class _TypingFocusGuard(QtCore.QObject):
    """In presentation mode, gives back the focus that Qt hands on to a number box or text field of the window
    (not one the mouse gave: a clicked box keeps it), so Space, S, R and V reach the window."""

    def __init__(self, window: QtWidgets.QWidget):
        super().__init__(window)
        self.window = window

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if (event.type() == QtCore.QEvent.Type.FocusIn and _is_typing_box(obj)
                and event.reason() != QtCore.Qt.FocusReason.MouseFocusReason and self.window.isAncestorOf(obj)):
            QtCore.QTimer.singleShot(0, obj, obj.clearFocus)
        return False


class _NoTitle(QtWidgets.QWidget):
    """A dock's title bar in presentation mode: none (the views carry their own large titles)."""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        return QtCore.QSize(0, 0)

log = logging.getLogger(__name__)


class DocksMixin:
    """The panels, the docks and the layout of :class:`~explorer.gui.main_window.MainWindow` (a part of it:
    see that class for why the parts are mixins).

    Keeps ``panels`` (family -> panel), ``docks`` (object name -> dock), ``_family_docks`` (family -> its
    docks and their areas), ``_stack_index`` and ``family`` (on show). Uses from the other parts: ``stack``,
    ``notice``, ``timeline_toolbar``, ``family_combo``, ``act_present``, ``act_pace_views`` (once the menus
    are built), ``_rebuild_view_menu``, ``_settings``, ``timeline_bar`` and ``_update_status`` (their brief
    form in presentation mode); a panel's signals go to ``_on_viewing`` and
    ``_new_session``, its settings form to ``_on_setting_changed``, ``reset`` and ``choose_data_folder``.
    """

    family: str
    _unsized: set[str] = set()  # (replaced per window) families built in presentation mode, not yet laid out
    panels: dict[str, LivePanel]
    docks: dict[str, QtWidgets.QDockWidget]
    _family_docks: dict[str, list[tuple[QtWidgets.QDockWidget, QtCore.Qt.DockWidgetArea]]]
    _stack_index: dict[str, int]
    _layout_restored: bool
    _other_screen: bool  # the saved layout was made on a screen of another size (see _restore_layout)
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
        if family in FAMILIES and config is None:
            config = FAMILIES[family].config_cls()
        panel = panel_class(family)(config, self)  # (an attached run's panel takes no settings)
        if hasattr(self, "act_pace_views"):  # (the first panel is built before the menus: pacing is on)
            panel.pacer.enabled = self.act_pace_views.isChecked()
        self.panels[family] = panel
        if getattr(self, "_short", False):  # (built in a short window: arranged for it from the start)
            panel.set_short(True)
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
            QtCore.QTimer.singleShot(0, self, lambda: self._apply_default_sizes() if self.family == family else None)
        panel.wire_settings(self._on_setting_changed, self.reset, self.choose_data_folder)
        if self.presenting:  # built while presenting: its views in the presentation's look from the start
            panel.set_presenting(True)
            self._style_plots(large=True)
        self._rebuild_view_menu()
        return panel

    def _show_family_ui(self, family: str) -> None:
        """Show one family's central view and docks, hide the others' (remembering which were open)."""
        self._ensure_panel(family)
        prev = getattr(self, "_shown_family", None)
        if self.presenting:  # the new family's presentation docks; what each showed before stays remembered
            self._shown_family = self.family = family
            self._show_presentation_docks()
            QtCore.QTimer.singleShot(0, self._apply_presentation_sizes)
        else:
            size = QtCore.QSize(self.size())
            if self.isVisible() and not (self.isMaximized() or self.isFullScreen()):
                QtCore.QTimer.singleShot(0, self, lambda: self._keep_size(size))
            for fam, docks in self._family_docks.items():
                if fam == family:
                    continue
                for dock, _area in docks:
                    if fam == prev:
                        dock.setProperty("wasVisible", dock.isVisible())
                    dock.hide()
            if family in self._unsized:  # built in presentation mode: laid out now, as a panel built now is
                self._unsized.discard(family)
                self._put_docks_in_place(family)
                QtCore.QTimer.singleShot(0, self, lambda: self._apply_default_sizes()
                                         if self.family == family else None)
            for dock, _area in self._family_docks[family]:
                if dock.property("wasVisible") is not False:
                    relayout(dock)
                    dock.show()
        self._shown_family = self.family = family
        page = self.stack.widget(self._stack_index[family])
        if page is not self.stack.currentWidget():
            relayout(page)  # (measured afresh before it is shown: its sizes may be another type's)
        self.stack.setCurrentIndex(self._stack_index[family])
        combo = getattr(self, "family_combo", None)
        if combo is not None and combo.currentData() != family:
            combo.blockSignals(True)
            if combo.findData(family) < 0:  # an attached run's panel: listed while it is on show
                combo.addItem(panel_class(family).title, family)
            combo.setCurrentIndex(combo.findData(family))
            combo.blockSignals(False)
        self._rebuild_view_menu()

    def _keep_size(self, size: QtCore.QSize, tries: int = 10) -> None:
        """The window keeps ``size`` while another model's docks come on show (or presentation mode ends).
        A panel's central view and docks measure their new sizes over a few passes of the event loop, the
        minimum they first report being stale (a panel last shown in presentation mode: the large type's),
        and the window grew past the screen for it (at 1366x768: 1570 px wide for the FCN panel, 959 px tall
        for the LSTM's). For 10 x 30 ms it goes back to ``size`` whenever it has left it and the layout
        allows."""
        if self.presenting or self.isMaximized() or self.isFullScreen():
            return
        if self.size() != size:
            self.layout().invalidate()  # (its minimum measured afresh)
            least = self.layout().minimumSize()
            if least.width() <= size.width() and least.height() <= size.height():
                self.resize(size)
        if tries > 0:
            QtCore.QTimer.singleShot(30, self, lambda: self._keep_size(size, tries - 1))

    def _when_settled(self, size: QtCore.QSize | None, then: Callable[[], None], tries: int = 20,
                      seen: QtCore.QSize | None = None) -> None:
        """``then()`` once the window has stopped changing size after presentation mode (the same size two
        polls 30 ms apart; ``size`` too, if given), unless the mode began again; after 20 polls in any case.
        The docks' default proportions, applied while the window went from the screen's size back to its own
        (through a taller one on the way), were scaled with it: at 1366x768 the LSTM's bottom row came 7 px
        taller than its share, and its lower row of heatmaps that much shorter than in a window never presented."""
        if self.presenting:
            return
        now = QtCore.QSize(self.size())
        if tries <= 0 or (now == seen and (size is None or now == size)):
            then()
            return
        QtCore.QTimer.singleShot(30, self, lambda: self._when_settled(size, then, tries - 1, now))

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
        # a layout saved on a screen of another size (a laptop's 1600x1000, then a projector's 1366x768) keeps
        # its docks and tabs, but not its pixel sizes: restored as they were, the docks kept their heights
        # and the central views were left 60 px tall. The window is then sized for this screen, and the
        # docks take the default proportions once shown (MainWindow.showEvent).
        self._other_screen = geo is not None and self._saved_on_another_screen()
        if self._other_screen:
            log.info("settings: the window's layout was saved on a screen of another size; sized for this one")
        elif geo is not None and not self.restoreGeometry(geo):
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
        """Whether the window has a size and place of its own to come back to (not when they were saved on a
        screen of another size)."""
        return byte_array_setting(self._settings, "window/geometry") is not None and not self._other_screen

    def screen_size(self) -> tuple[int, int]:
        """The size of the screen the window is on (its available part: no task bar)."""
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        return area.width(), area.height()

    def _saved_on_another_screen(self) -> bool:
        """Whether the saved layout was made on a screen more than 5% wider or taller, or narrower or shorter,
        than this one (a layout saved before the screen's size was kept counts as made on this one)."""
        w = number_setting(self._settings, "window/screen_width", 1, 1e6)
        h = number_setting(self._settings, "window/screen_height", 1, 1e6)
        if w is None or h is None:
            return False
        cw, ch = self.screen_size()
        return abs(w - cw) > 0.05 * cw or abs(h - ch) > 0.05 * ch

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for fam, pairs in self._family_docks.items():
            for dock, _area in pairs:
                dock.setVisible(fam == self.family)
        self._apply_default_sizes()

    def _apply_default_sizes(self) -> None:
        """Proportions that suit a projector: big central views, curves along the bottom (in presentation
        mode, the panel's presentation proportions)."""
        if self.presenting:
            self._apply_presentation_sizes()
            return
        w, h = max(self.width(), 900), max(self.height(), 600)
        H, V = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        A = QtCore.Qt.DockWidgetArea
        docks = self._family_docks[self.family]
        left = [d for d, a in docks if a == A.LeftDockWidgetArea]
        right = [d for d, a in docks if a == A.RightDockWidgetArea]
        bottom = [d for d, a in docks if a == A.BottomDockWidgetArea]
        panel = self.panels[self.family]  # its proportions (LivePanel.bottom_share, right_split, left_split)
        if left and right:
            self.resizeDocks([left[0], right[0]], [panel.left_width, int(w * 0.36)], H)
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

    def layout_state(self) -> QtCore.QByteArray:
        """The docks' layout to save (with the window's settings or a run): the user's, also while
        presentation mode shows its own."""
        st = getattr(self, "_present_state", None)
        return QtCore.QByteArray(st["docks"]) if st is not None else self.saveState(LAYOUT_VERSION)

    def toggle_presentation(self) -> None:
        if self.presenting:
            self.leave_presentation()
        else:
            self.enter_presentation()

    def _bars(self) -> list[QtWidgets.QWidget]:
        """The menu bar and the toolbars: hidden in presentation mode, except the timeline."""
        return [self.menuBar(), *(t for t in self.findChildren(QtWidgets.QToolBar) if t is not self.timeline_toolbar)]

    def enter_presentation(self) -> None:
        """For a class: full screen, large type, a black high-contrast theme, the menus, toolbars and settings
        hidden, and each panel's own few views (``LivePanel.presentation_docks``) large enough to read from
        the back row. Everything stays reachable from the keyboard (Space, S, R, Ctrl+PgDown/PgUp, F5/Esc).

        What it changes is written down first, and :meth:`leave_presentation` puts exactly that back."""
        if self.presenting:
            return
        self._unsized = set(self._unsized)  # (this window's own)
        app = QtWidgets.QApplication.instance()
        for dock, _area in self._family_docks.get(self.family, []):  # how the family on show looked
            dock.setProperty("wasVisible", dock.isVisible())
        C, A = QtCore.Qt.Corner, QtCore.Qt.DockWidgetArea
        self._present_state = {
            "style": app.styleSheet(), "font": QtGui.QFont(app.font()),
            "maximized": self.isMaximized(), "geometry": QtCore.QRect(self.geometry()),
            "docks": self.saveState(LAYOUT_VERSION),
            "bars": [w for w in self._bars() if w.isVisible()],
            "corner": self.corner(C.BottomRightCorner),
            "notice": (self.notice.isVisibleTo(self), self.notice.label.text()),
            "families": set(self._family_docks),  # (those built later have no place in "docks")
            "family": self.family,
        }
        for w in self._bars():
            w.hide()  # (the timeline stays: a teacher scrubs in class)
        # the right column runs the window's whole height: the bottom row no longer squeezes it
        self.setCorner(C.BottomRightCorner, A.RightDockWidgetArea)
        font = QtGui.QFont(app.font())  # (the font first, then the style sheet: see leave_presentation)
        font.setPointSize(font.pointSize() + 6)
        app.setFont(font)
        qss = RESOURCES / "presentation.qss"
        app.setStyleSheet(app.styleSheet() + "\n" + (qss.read_text(encoding="utf-8") if qss.exists() else ""))
        self._style_plots(large=True)
        for panel in self.panels.values():
            panel.set_presenting(True)
        self._show_presentation_docks()
        self.act_present.setChecked(True)
        self.timeline_bar.set_brief(True)
        self._update_status()  # (the status line's brief form)
        self.showFullScreen()
        self._keys_to_the_window()  # (the settings hidden above may have passed the focus on)
        self.notice.show_message(PRESENTATION_BANNER)
        QtCore.QTimer.singleShot(0, self._apply_presentation_sizes)

    def leave_presentation(self) -> None:
        """Back to the window as it was before :meth:`enter_presentation`: its type and style sheet, bars,
        docks (which were shown, where, how large), geometry and notice; the model on show stays."""
        st = getattr(self, "_present_state", None)
        if st is None:
            return
        self._present_state = None
        self._keys_to_the_fields()
        app = QtWidgets.QApplication.instance()
        for dock in self._all_docks():  # (before the style sheet: its buttons are polished with the rest)
            dock.setTitleBarWidget(None)
            tabs = dock.widget()
            if isinstance(tabs, QtWidgets.QTabWidget) and tabs.objectName() == "dockTabs":
                tabs.tabBar().show()
        # the font first: a style sheet set while the large font is the application's bakes it into every
        # widget it polishes (the menus, toolbars, settings and timeline then kept the large type)
        app.setFont(st["font"])
        app.setStyleSheet(st["style"])
        self._style_plots(large=False)
        for panel in self.panels.values():
            panel.set_presenting(False)
        self.setCorner(QtCore.Qt.Corner.BottomRightCorner, st["corner"])
        self.act_present.setChecked(False)
        self.timeline_bar.set_brief(False)
        self._update_status()
        self.showNormal()
        if st["maximized"]:
            self.showMaximized()
        else:  # the very rectangle (restoreGeometry moved the window down by a frame's height)
            self.setGeometry(st["geometry"])
        # the models built while presenting: the one on show laid out now, the others when first shown
        st["new"] = [fam for fam in self._family_docks if fam not in st["families"]]
        self._unsized.update(fam for fam in st["new"] if fam != self.family)
        self._restore_docks(st)
        # once more when the window has its size back: restored while it still had the screen's, the docks
        # of a column kept the screen's proportions, a few pixels off
        QtCore.QTimer.singleShot(0, self, lambda: self._restore_docks(st) if not self.presenting else None)
        if not st["maximized"]:  # (the minimum first measured may still be the large type's: it waits)
            QtCore.QTimer.singleShot(0, self, lambda: self._keep_size(st["geometry"].size()))
        if self.family != st["family"]:  # the default proportions once more, for the size the window ends with
            target = None if st["maximized"] else st["geometry"].size()
            QtCore.QTimer.singleShot(0, self, lambda: self._when_settled(target, self._apply_default_sizes))
        shown, text = st["notice"]
        if self.notice.label.text() == PRESENTATION_BANNER:  # (a newer notice, say an error, stays)
            if shown:
                self.notice.show_message(text)
            else:
                self.notice.hide()

    def _restore_docks(self, st: dict) -> None:
        """The docks and toolbars as the user had them before presentation mode, the family on show now
        with its docks as it was last seen outside the mode (another model than on entering: in the
        default proportions, the layout restored being the other model's)."""
        # the status bar sizes itself by its largest item only when asked: it kept the large type's height
        QtCore.QCoreApplication.sendEvent(self.statusBar(), QtCore.QEvent(QtCore.QEvent.Type.LayoutRequest))
        self.restoreState(st["docks"], LAYOUT_VERSION)
        for fam in self._unsized:  # built while presenting: out of the layout until first shown
            for dock, _area in self._family_docks[fam]:
                self.removeDockWidget(dock)
        if self.family in st["new"]:
            self._put_docks_in_place(self.family)
        for w in self._bars():
            w.setVisible(w in st["bars"])
        for fam, pairs in self._family_docks.items():
            for dock, _area in pairs:
                dock.setVisible(fam == self.family and dock.property("wasVisible") is not False)
        if self.family != st["family"]:
            self._apply_default_sizes()

    def _all_docks(self) -> list[QtWidgets.QDockWidget]:
        return [d for pairs in self._family_docks.values() for d, _a in pairs]

    def _show_presentation_docks(self) -> None:
        """Only the panel's presentation docks of the family on show, one above the other in the right
        column beside the central view (which keeps the screen's whole height: a row of docks under it left
        its pictures 50 px tall), without their title bars (the views carry their own titles); the others,
        the settings among them, hidden. :meth:`leave_presentation` puts every dock back in its place."""
        wanted: list[QtWidgets.QDockWidget] = []
        for name in self.panel.presentation_docks:
            dock = self.docks.get(name)
            if dock is not None and dock not in wanted:
                wanted.append(dock)
        for pairs in self._family_docks.values():
            for dock, _area in pairs:
                if dock not in wanted:
                    dock.hide()
        for i, dock in enumerate(wanted):
            self.present_in_column(dock, wanted[i - 1] if i else None)
        self._keys_to_the_window()

    def _keys_to_the_window(self) -> None:
        """No number box or text field keeps the keyboard in presentation mode unless it was clicked: hiding
        the settings, or moving the heatmaps into their tabs, handed the focus on to the LSTM's Unit box,
        which then took Space and V for itself (the class saw nothing happen). The mode's keys are the
        window's; a box the teacher clicks takes the keys as ever."""
        if getattr(self, "_focus_guard", None) is None:
            self._focus_guard = _TypingFocusGuard(self)
            QtWidgets.QApplication.instance().installEventFilter(self._focus_guard)
        focused = QtWidgets.QApplication.focusWidget()
        if _is_typing_box(focused) and self.isAncestorOf(focused):
            focused.clearFocus()

    def _keys_to_the_fields(self) -> None:
        """Out of presentation mode: focus goes where Qt hands it again."""
        guard = getattr(self, "_focus_guard", None)
        if guard is not None:
            QtWidgets.QApplication.instance().removeEventFilter(guard)
            guard.deleteLater()
            self._focus_guard = None

    def present_in_column(self, dock: QtWidgets.QDockWidget, below: QtWidgets.QDockWidget | None) -> None:
        """``dock`` in presentation mode's right column, without its title bar, under ``below`` (or first)."""
        if not isinstance(dock.titleBarWidget(), _NoTitle):
            dock.setTitleBarWidget(_NoTitle())
        tabs = dock.widget()
        if isinstance(tabs, QtWidgets.QTabWidget) and tabs.objectName() == "dockTabs":
            tabs.tabBar().hide()  # the tab on show only: one view, the tab bar's height for it
        if below is None:
            self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock, QtCore.Qt.Orientation.Vertical)
        else:
            self.splitDockWidget(below, dock, QtCore.Qt.Orientation.Vertical)
        dock.show()

    def cycle_presented_view(self, step: int = 1) -> None:
        """In presentation mode, the lower view of the right column becomes the panel's next view (V; Shift+V the
        previous): a teacher could show only the panel's two chosen views, and the LSTM's gradient against
        distance, the lesson's point, was out of reach until presentation mode was left. The settings' docks
        (the left column's) are not among them; leaving the mode puts every dock back in its place."""
        if not self.presenting:
            return
        left = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
        names = [n for n in self.panel.presentation_docks if n in self.docks]
        fixed = [self.docks[n] for n in names[:-1]]  # the upper ones stay
        # each view: a dock, or a tab of a dock whose views share it (its tab bar is hidden in the mode)
        pool: list[tuple[QtWidgets.QDockWidget, int]] = []
        for dock, area in self._family_docks[self.family]:
            if area != left and dock not in fixed:
                tabs = dock.widget()
                count = tabs.count() if isinstance(tabs, QtWidgets.QTabWidget) and tabs.objectName() == "dockTabs" else 0
                pool += [(dock, i) for i in range(count)] if count else [(dock, -1)]
        current = next(((d, i) for d, i in pool if d.isVisible() and (i < 0 or d.widget().currentIndex() == i)), None)
        if current is None or len(pool) < 2:
            return
        dock, tab = pool[(pool.index(current) + step) % len(pool)]
        if dock is not current[0]:
            current[0].hide()
            self.present_in_column(dock, fixed[-1] if fixed else None)
        title = dock.windowTitle()
        if tab >= 0:
            dock.widget().setCurrentIndex(tab)
            title = dock.widget().tabText(tab)
        self.statusBar().showMessage(f"{title}  (V: next view)", 4000)
        QtCore.QTimer.singleShot(0, self._apply_presentation_sizes)

    def _put_docks_in_place(self, family: str) -> None:
        """The family's docks in their panel's areas, the bottom ones side by side (as first laid out)."""
        bottom: list[QtWidgets.QDockWidget] = []
        for dock, area in self._family_docks[family]:
            self.addDockWidget(area, dock)
            dock.hide()
            if area == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea:
                bottom.append(dock)
        for a, b in zip(bottom, bottom[1:]):
            self.splitDockWidget(a, b, QtCore.Qt.Orientation.Horizontal)

    def _apply_presentation_sizes(self) -> None:
        """The right column's width from the panel's share of the screen (``presentation_right``), its
        docks sharing its height equally or as the panel says (``presentation_split``)."""
        if not self.presenting:
            return
        panel = self.panel
        w, h = self.width(), self.height()
        H, V = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        A = QtCore.Qt.DockWidgetArea
        right = [d for d, a in self._family_docks[self.family]
                 if d.isVisibleTo(self) and self.dockWidgetArea(d) == A.RightDockWidgetArea]
        if right:
            self.resizeDocks([right[0]], [int(w * panel.presentation_right)], H)
            if len(right) >= 2:
                shares = panel.presentation_split or (1.0 / len(right),) * len(right)
                self.resizeDocks(right, [int(h * f) for f in shares[:len(right)]], V)

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
                    if hasattr(item, "fit_numbers"):  # a colour bar's: as many numbers as the new type fits
                        item.fit_numbers()
                    item.setPen(pen)
                    item.setTextPen(pen)
                    item.label.setFont(font)
                elif isinstance(item, (ViewLegend, OffScaleMark)):
                    item.set_large(large)
        for labels in self.findChildren(CurveEndLabels):  # (the curves' names at their ends, made later too)
            labels.set_large(large)
