"""File > Attach to a training run…: the small dialog that asks where the run is (an address or a watch
folder), its token, and whether to follow it read-only. The window does the attaching
(``SessionsMixin.attach_to``); a fault is its notice, never this dialog's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from explorer.core.watch.attach import find_token, parse_address


class AttachDialog(QtWidgets.QDialog):
    """Address HOST:PORT or a folder (Browse…), the token (filled in from the newest token file a watching
    script wrote in the runtime folder, when there is one), and Follow read-only."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Attach to a training run")
        self.setObjectName("attachDialog")
        self.setMinimumWidth(560)
        self._filled_token: str | None = None  # the token a token file put in the box (not one the user typed)
        form = QtWidgets.QFormLayout()
        self.address = QtWidgets.QLineEdit()
        self.address.setObjectName("attachAddress")
        self.address.setPlaceholderText("127.0.0.1:7000, or a watch folder such as runs/exp1")
        self.address.setToolTip("Where your script watches its model: the address explorer.watch printed, or "
                                "the folder it writes (explorer.watch(model, logdir=...))")
        self.browse = QtWidgets.QPushButton("Browse…")
        self.browse.setToolTip("Choose a watch folder")
        self.browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.address, 1)
        row.addWidget(self.browse)
        form.addRow("Address or folder", row)
        self.token_edit = QtWidgets.QLineEdit()
        self.token_edit.setObjectName("attachToken")
        self.token_edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.PasswordEchoOnEdit)
        self.token_edit.setToolTip("The token the watching script wrote in its token file (a folder needs none)")
        form.addRow("Token", self.token_edit)
        self.token_note = QtWidgets.QLabel("")
        self.token_note.setObjectName("attachTokenNote")
        self.token_note.setWordWrap(True)
        form.addRow("", self.token_note)
        self.follow_box = QtWidgets.QCheckBox("Follow read-only")
        self.follow_box.setToolTip("This window then cannot pause, step or change the run; it only watches")
        self.follow_box.setObjectName("attachFollow")
        form.addRow("", self.follow_box)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Attach")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self.address.textChanged.connect(self._address_changed)
        self._prefill()
        self._address_changed(self.address.text())

    def _prefill(self) -> None:
        """The newest token file's address and token: the script most likely just started."""
        found = find_token()
        if found is None:
            self.token_note.setText("No token file found: paste the token your script's token file holds.")
            return
        path, info = found
        host, port = info.get("host"), info.get("port")
        if isinstance(host, str) and isinstance(port, int):
            self.address.setText(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        self._fill_token(str(info.get("token", "")), path)
        name = f" ({info['name']})" if isinstance(info.get("name"), str) and info["name"] else ""
        self.token_note.setText(f"From {path}{name}.")

    def _fill_token(self, token: str, path: Path | None) -> None:
        """Put a token file's token in the box (or empty it), remembering that it came from a file."""
        self._filled_token = token
        self.token_edit.setText(token)
        if path is None:
            self.token_note.setText("No token file for that address: paste the token its script printed.")

    def _address_changed(self, text: str) -> None:
        folder = bool(text.strip()) and Path(text.strip()).expanduser().is_dir()
        self.token_edit.setEnabled(not folder)
        self.follow_box.setEnabled(not folder)
        self.ok_button.setEnabled(bool(text.strip()))
        # a token the user typed stays; one a token file gave follows the address: the file's for the new
        # address, or none (a token is never offered to a host its file does not name)
        if self.token_edit.text() and self.token_edit.text() != self._filled_token:
            return
        address = parse_address(text)
        found = find_token(address[1], address[0]) if address is not None else None
        if found is not None:
            token = str(found[1].get("token", ""))
            if token != self.token_edit.text():  # (the same file's token: its note, with its name, stays)
                self._fill_token(token, found[0])
                self.token_note.setText(f"From {found[0]}.")
        elif self.token_edit.text():
            self._fill_token("", None)

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose the folder your script watches into")
        if path:
            self.address.setText(path)

    # -- what was chosen -------------------------------------------------------------------------------
    def target(self) -> str:
        return self.address.text().strip()

    def token(self) -> str:
        return self.token_edit.text().strip() if self.token_edit.isEnabled() else ""

    def follow(self) -> bool:
        return self.follow_box.isChecked() and self.follow_box.isEnabled()


__all__ = ["AttachDialog"]
