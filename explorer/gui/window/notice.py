"""The window's notice bar: errors and notices on a line at the top, never a blocking dialog."""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets


class NoticeBar(QtWidgets.QFrame):
    """A dismissable line at the top of the window for errors and notices (never a blocking dialog)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("noticeBar")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        # up to two offers (e.g. "Continue on the CPU" / "Halve the batch"); each runs once, then the bar hides
        self.action_buttons = []
        for i in range(2):
            button = QtWidgets.QPushButton("")
            button.setObjectName("noticeAction")
            button.hide()
            button.clicked.connect(lambda _=False, i=i: self._run_action(i))
            self.action_buttons.append(button)
        self.action_button = self.action_buttons[0]
        self._actions: list[Any] = []
        lay.addWidget(self.label, 1)
        for button in self.action_buttons:
            lay.addWidget(button)
        lay.addWidget(close)
        self.hide()

    def _run_action(self, i: int = 0) -> None:
        actions, self._actions = self._actions, []
        self.hide()
        if i < len(actions):
            actions[i]()

    def show_message(self, text: str, error: bool = False, action: tuple[str, Any] | None = None,
                     more: tuple[str, Any] | None = None) -> None:
        """Show ``text``; ``action`` (and ``more``) = (button label, callable) add buttons; one click runs one."""
        offers = [a for a in (action, more) if a]
        self._actions = [fn for _, fn in offers]
        for i, button in enumerate(self.action_buttons):
            button.setText(offers[i][0] if i < len(offers) else "")
            button.setVisible(i < len(offers))
        self.setProperty("error", error)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()
