"""A settings form shared by the panels: data rows, live settings, and the ones that wait for Reset.

A panel's settings subclass adds its own rows and lists its editors in ``_widgets()``; this
class shows a config, emits ``sigChanged(key, value)`` for each edit, and says which edits need
the model to be re-initialised (``needs_reset``) until Reset applies them.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from explorer.core.data.datasets import DATASET_NAMES


class SettingsForm(QtWidgets.QWidget):
    sigChanged = QtCore.Signal(str, object)   # key, value
    sigApplyReset = QtCore.Signal()
    sigChooseDataFolder = QtCore.Signal()

    def __init__(self, needs_reset: set[str], parent=None):
        super().__init__(parent)
        self.needs_reset = set(needs_reset)
        self.form = QtWidgets.QFormLayout(self)
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._pending: dict[str, Any] = {}

    # -- building blocks -----------------------------------------------------------------------------
    def section(self, text: str) -> None:
        lab = QtWidgets.QLabel(text)
        lab.setObjectName("formSection")
        self.form.addRow(lab)

    def int_row(self, label: str, lo: int, hi: int) -> QtWidgets.QSpinBox:
        """A whole-number editor with its range, added as a row."""
        w = QtWidgets.QSpinBox()
        w.setRange(lo, hi)
        self.form.addRow(label, w)
        return w

    def float_row(self, label: str, lo: float, hi: float, decimals: int = 2,
                  step: float | None = None) -> QtWidgets.QDoubleSpinBox:
        """A decimal editor with its range, precision and step, added as a row."""
        w = QtWidgets.QDoubleSpinBox()
        w.setDecimals(decimals)
        w.setRange(lo, hi)
        if step is not None:
            w.setSingleStep(step)
        self.form.addRow(label, w)
        return w

    def add_data_rows(self) -> None:
        """Data set, data folder and upscale: the same for every image family."""
        self.section("Data")
        self.dataset = QtWidgets.QComboBox()
        self.dataset.addItems(list(DATASET_NAMES))
        self.dataset.setToolTip("digits: scikit-learn's 1,797 real 8x8 handwritten digits (bundled)\n"
                                "bars: generated bars-and-stripes, the classic RBM toy set\n"
                                "mnist / fashion-mnist: IDX files from a folder (File > Open data folder)")
        self.form.addRow("Data set", self.dataset)
        folder_row = QtWidgets.QHBoxLayout()
        self.data_dir = QtWidgets.QLabel("(none)")
        self.data_dir.setObjectName("dataDir")
        self.data_dir.setMinimumWidth(60)
        self.choose_dir = QtWidgets.QPushButton("…")
        self.choose_dir.setToolTip("Choose a folder with MNIST / Fashion-MNIST IDX files")
        self.choose_dir.setMaximumWidth(36)
        self.choose_dir.clicked.connect(self.sigChooseDataFolder)
        folder_row.addWidget(self.data_dir, 1)
        folder_row.addWidget(self.choose_dir)
        self.form.addRow("Data folder", folder_row)
        self.upscale = QtWidgets.QSpinBox()
        self.upscale.setRange(1, 4)
        self.upscale.setSuffix("x")
        self.upscale.setToolTip("Enlarge each image by this factor (smooth interpolation), e.g. digits 8x8 -> 16x16")
        self.form.addRow("Upscale", self.upscale)

    def add_reset_rows(self) -> None:
        """The note about pending changes and the button that applies them."""
        self.pending_label = QtWidgets.QLabel("")
        self.pending_label.setObjectName("pendingNote")
        self.pending_label.setWordWrap(True)
        self.form.addRow(self.pending_label)
        self.apply_reset = QtWidgets.QPushButton("Apply and re-initialise (R)")
        self.apply_reset.clicked.connect(self.sigApplyReset)
        self.apply_reset.setEnabled(False)
        self.form.addRow(self.apply_reset)

    def connect_editors(self) -> None:
        for key, w in self._widgets().items():
            if isinstance(w, QtWidgets.QComboBox):
                w.currentTextChanged.connect(lambda v, k=key: self._changed(k, v))
            elif isinstance(w, QtWidgets.QCheckBox):
                w.toggled.connect(lambda v, k=key: self._changed(k, bool(v)))
            else:
                w.valueChanged.connect(lambda v, k=key: self._changed(k, v))

    # -- behaviour --------------------------------------------------------------------------------------
    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        raise NotImplementedError  # each panel's form lists its editors

    def set_config(self, config: Any) -> None:
        """Show ``config`` without emitting changes."""
        for key, w in self._widgets().items():
            w.blockSignals(True)
            value = getattr(config, key)
            if isinstance(w, QtWidgets.QComboBox):
                w.setCurrentText(str(value))
            elif isinstance(w, QtWidgets.QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QtWidgets.QSlider):
                w.setValue(int(round(float(value) * 100)))
            else:
                w.setValue(value)
            w.blockSignals(False)
        self.set_data_dir(getattr(config, "data_dir", None))
        self._pending.clear()
        self._update_pending()

    def set_data_dir(self, path: str | None) -> None:
        if hasattr(self, "data_dir"):
            self.data_dir.setText(path or "(none)")
            self.data_dir.setToolTip(path or "MNIST / Fashion-MNIST IDX files are read from this folder")

    def _changed(self, key: str, value: Any) -> None:
        if key in self.needs_reset:
            self._pending[key] = value
            self._update_pending()
        self.sigChanged.emit(key, value)

    def _update_pending(self) -> None:
        if self._pending:
            names = ", ".join(sorted(self._pending))
            self.pending_label.setText(f"Changed: {names}. The model must be re-initialised: press Reset (R).")
        else:
            self.pending_label.setText("")
        self.apply_reset.setEnabled(bool(self._pending))

    def clear_pending(self) -> None:
        self._pending.clear()
        self._update_pending()
