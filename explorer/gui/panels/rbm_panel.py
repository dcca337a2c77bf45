"""The RBM panel: watch contrastive divergence learn, live.

Views (each a dock of the main window): input beside its reconstruction and Gibbs sample,
the filters (columns of W), hidden probabilities p(h|x), the error and likelihood curves,
"dreams" (Gibbs chains run from the current model), and the settings that drive training.
The panel reads :class:`~explorer.core.engine.Snapshot` objects (CPU numpy copies) and
the session's metrics log; it never touches a live tensor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PySide6 import QtCore, QtWidgets

from ...core.data import DATASET_NAMES
from ...core.engine import Snapshot, TrainingSession
from ...core.rbm_trainer import LIVE, NEEDS_RESET, RBMConfig
from ..widgets.views import CurveView, HeatmapView, MosaicView

MAX_FILTERS = 100
CURVE_INTERVAL_S = 0.25  # curves and the stats line redraw at most 4 times a second


@dataclass
class DockSpec:
    object_name: str
    title: str
    widget: QtWidgets.QWidget
    area: QtCore.Qt.DockWidgetArea


class RBMSettings(QtWidgets.QWidget):
    """The RBM's settings. Live ones apply between steps; the others wait for Reset, and say so."""

    sigChanged = QtCore.Signal(str, object)   # key, value
    sigApplyReset = QtCore.Signal()
    sigChooseDataFolder = QtCore.Signal()

    def __init__(self, config: RBMConfig, parent=None):
        super().__init__(parent)
        self.setObjectName("rbmSettings")
        form = QtWidgets.QFormLayout(self)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._pending: dict[str, Any] = {}

        def section(text: str) -> None:
            lab = QtWidgets.QLabel(text)
            lab.setObjectName("formSection")
            form.addRow(lab)

        section("Data")
        self.dataset = QtWidgets.QComboBox()
        self.dataset.addItems(list(DATASET_NAMES))
        self.dataset.setToolTip("digits: scikit-learn's 1,797 real 8x8 handwritten digits (bundled)\n"
                                "bars: generated bars-and-stripes, the classic RBM toy set\n"
                                "mnist / fashion-mnist: IDX files from a folder (File > Open data folder)")
        form.addRow("Data set", self.dataset)
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
        form.addRow("Data folder", folder_row)
        self.upscale = QtWidgets.QSpinBox()
        self.upscale.setRange(1, 4)
        self.upscale.setSuffix("x")
        self.upscale.setToolTip("Enlarge each image by this factor (smooth interpolation), e.g. digits 8x8 -> 16x16")
        form.addRow("Upscale", self.upscale)
        self.binarize = QtWidgets.QComboBox()
        self.binarize.addItems(["sample", "threshold"])
        self.binarize.setToolTip("The lecture's visible units are binary.\n"
                                 "sample: each grey pixel is a fresh Bernoulli draw with its grey level as p\n"
                                 "threshold: pixel > 0.5")
        form.addRow("Binary inputs", self.binarize)

        section("Model")
        self.hidden = QtWidgets.QSpinBox()
        self.hidden.setRange(1, 4096)
        form.addRow("Hidden units", self.hidden)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Seed", self.seed)

        section("Training (applies live)")
        self.lr = QtWidgets.QDoubleSpinBox()
        self.lr.setDecimals(4)
        self.lr.setRange(0.0001, 10.0)
        self.lr.setSingleStep(0.01)
        self.lr.setToolTip("gamma in w_ij += gamma (x_i h^_j - x~_i h~_j)")
        form.addRow("Learning rate γ", self.lr)
        self.k = QtWidgets.QSpinBox()
        self.k.setRange(1, 100)
        self.k.setToolTip("Gibbs steps per update: CD-1 is the lecture's algorithm")
        form.addRow("CD-k", self.k)
        self.batch_size = QtWidgets.QSpinBox()
        self.batch_size.setRange(1, 4096)
        form.addRow("Batch size", self.batch_size)
        section("Beyond the lecture (off by default)")
        self.momentum = QtWidgets.QDoubleSpinBox()
        self.momentum.setRange(0.0, 0.99)
        self.momentum.setSingleStep(0.1)
        self.momentum.setToolTip("Option beyond the lecture (off = 0): v = m v + update; W += v")
        form.addRow("Momentum", self.momentum)
        self.weight_decay = QtWidgets.QDoubleSpinBox()
        self.weight_decay.setDecimals(5)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(0.0001)
        self.weight_decay.setToolTip("Option beyond the lecture (off = 0): L2 pull of W towards 0")
        form.addRow("Weight decay", self.weight_decay)
        self.persistent = QtWidgets.QCheckBox("Persistent CD (PCD)")
        self.persistent.setToolTip("PCD: the negative chain continues from the last step instead of the data")
        form.addRow("", self.persistent)
        self.dream_steps = QtWidgets.QSpinBox()
        self.dream_steps.setRange(1, 100)
        self.dream_steps.setToolTip("Gibbs sweeps the dream chains run between two refreshes")
        form.addRow("Dream sweeps", self.dream_steps)

        self.pending_label = QtWidgets.QLabel("")
        self.pending_label.setObjectName("pendingNote")
        self.pending_label.setWordWrap(True)
        form.addRow(self.pending_label)
        self.apply_reset = QtWidgets.QPushButton("Apply and re-initialise (R)")
        self.apply_reset.clicked.connect(self.sigApplyReset)
        self.apply_reset.setEnabled(False)
        form.addRow(self.apply_reset)

        self.set_config(config)
        for key, w in self._widgets().items():
            if isinstance(w, QtWidgets.QComboBox):
                w.currentTextChanged.connect(lambda v, k=key: self._changed(k, v))
            elif isinstance(w, QtWidgets.QCheckBox):
                w.toggled.connect(lambda v, k=key: self._changed(k, bool(v)))
            else:
                w.valueChanged.connect(lambda v, k=key: self._changed(k, v))

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"dataset": self.dataset, "upscale": self.upscale, "binarize": self.binarize,
                "hidden": self.hidden, "seed": self.seed, "lr": self.lr, "k": self.k,
                "batch_size": self.batch_size, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "persistent": self.persistent, "dream_steps": self.dream_steps}

    def set_config(self, config: RBMConfig) -> None:
        """Show ``config`` without emitting changes."""
        for key, w in self._widgets().items():
            w.blockSignals(True)
            value = getattr(config, key)
            if isinstance(w, QtWidgets.QComboBox):
                w.setCurrentText(str(value))
            elif isinstance(w, QtWidgets.QCheckBox):
                w.setChecked(bool(value))
            else:
                w.setValue(value)
            w.blockSignals(False)
        self.set_data_dir(config.data_dir)
        self._pending.clear()
        self._update_pending()

    def set_data_dir(self, path: str | None) -> None:
        self.data_dir.setText(path or "(none)")
        self.data_dir.setToolTip(path or "MNIST / Fashion-MNIST IDX files are read from this folder")

    def _changed(self, key: str, value: Any) -> None:
        if key in NEEDS_RESET:
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


class RBMPanel(QtCore.QObject):
    """Owns the RBM views and settings, and feeds them from snapshots and the metrics log."""

    def __init__(self, config: RBMConfig, parent=None):
        super().__init__(parent)
        self.session: TrainingSession | None = None
        self.settings = RBMSettings(config)
        self.recon = MosaicView(
            "Input, reconstruction, sample",
            "Rows: held-out inputs <b>x</b>; mean-field reconstruction <b>p(x|h)</b> with h = p(h|x); "
            "one Gibbs step <b>x~</b> ~ p(x|h^), h^ ~ p(h|x).")
        self.filters = MosaicView(
            "Filters: columns of W",
            "Each tile is one hidden unit's weights w<sub>·j</sub> (red +, blue −, scaled per tile). "
            "p(h<sub>j</sub>=1|x) = σ(Σ<sub>i</sub> w<sub>ij</sub> x<sub>i</sub> + d<sub>j</sub>)",
            levels=(-1.0, 1.0), colormap="CET-D1", normalize="symmetric")
        self.hidden = HeatmapView(
            "Hidden probabilities p(h|x)",
            "One row per held-out example, one column per hidden unit.",
            xlabel="hidden unit j", ylabel="example", levels=(0.0, 1.0), colormap="viridis")
        self.error_curve = CurveView(
            "Reconstruction error", "Mean squared error per pixel. Per step: x vs p(x|h^) on the batch; "
            "mean-field: x vs p(x|p(h|x)).", ylabel="MSE per pixel")
        self.error_curve.add_series("step", "training (per step)", "#5c6b80", width=1)
        self.error_curve.add_series("train", "training (mean-field)", "#4fc3f7", width=2.5, symbol="o")
        self.error_curve.add_series("heldout", "held-out (mean-field)", "#ffb74d", width=2.5, symbol="s")
        self.pll_curve = CurveView(
            "Pseudo-log-likelihood", "log P(x) estimated from the free energy "
            "F(x) = −b'x − Σ<sub>j</sub> log(1+e<sup>d<sub>j</sub>+x'W<sub>·j</sub></sup>); higher is better. "
            "Held-out falling below training signals overfitting.", ylabel="PLL per example")
        self.pll_curve.add_series("train", "training", "#4fc3f7", width=2.5, symbol="o")
        self.pll_curve.add_series("heldout", "held-out", "#ffb74d", width=2.5, symbol="s")
        self.dreams = MosaicView(
            "Dreams: Gibbs chains from the model",
            "Chains started from noise and run on: x → h ~ p(h|x) → x ~ p(x|h). Shows p(x|h).")
        self.stats = QtWidgets.QLabel("")
        self.stats.setObjectName("panelStats")
        self.description = QtWidgets.QLabel("")
        self.description.setObjectName("panelDescription")
        for lab in (self.stats, self.description):  # long lines wrap instead of widening the window
            lab.setWordWrap(True)
            lab.setMinimumWidth(200)
        self._steps_read = 0
        self._evals_read = 0
        self._last_seq = -1
        self._last_run = -1
        self._last_curves_t = 0.0

    # -- layout ------------------------------------------------------------------------------------
    def central_widget(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.description)
        lay.addWidget(self.recon, 1)
        lay.addWidget(self.stats)
        return w

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        curves = QtWidgets.QWidget()
        lay = QtWidgets.QHBoxLayout(curves)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.error_curve)
        lay.addWidget(self.pll_curve)
        return [
            DockSpec("rbmSettingsDock", "Settings", scroll, A.LeftDockWidgetArea),
            DockSpec("rbmFiltersDock", "Filters", self.filters, A.RightDockWidgetArea),
            DockSpec("rbmHiddenDock", "Hidden units", self.hidden, A.RightDockWidgetArea),
            DockSpec("rbmCurvesDock", "Curves", curves, A.BottomDockWidgetArea),
            DockSpec("rbmDreamsDock", "Dreams", self.dreams, A.BottomDockWidgetArea),
        ]

    # -- feeding -----------------------------------------------------------------------------------
    def attach(self, session: TrainingSession) -> None:
        """Follow ``session`` from now on (curves restart from its metrics log)."""
        self.session = session
        self._steps_read = self._evals_read = 0
        self._last_seq = -1
        self._last_run = session.run_id
        self.error_curve.clear_data()
        self.pll_curve.clear_data()
        tr = session.trainer
        self.settings.set_config(tr.config)
        self.description.setText(tr.describe() if hasattr(tr, "describe") else tr.family)
        self._update_stats(session)
        session.subscribe()

    def refresh(self) -> bool:
        """Called by the window's redraw timer. Returns whether anything new was drawn."""
        s = self.session
        if s is None:
            return False
        drawn = False
        if s.run_id != self._last_run:  # a reset: curves start over
            self._last_run = s.run_id
            self._steps_read = self._evals_read = 0
            self.error_curve.clear_data()
            self.pll_curve.clear_data()
            self.settings.clear_pending()
            self.settings.set_config(s.trainer.config)
            self.description.setText(s.trainer.describe())
        now = time.monotonic()
        if now - self._last_curves_t >= CURVE_INTERVAL_S:  # curves move slowly: a few redraws a second
            self._last_curves_t = now
            drawn |= self._read_metrics(s)
        snap = s.latest_snapshot()
        if snap is not None and snap.seq != self._last_seq and snap.run_id == s.run_id:
            self._last_seq = snap.seq
            self.show_snapshot(snap)
            drawn = True
        return drawn

    def _read_metrics(self, s: TrainingSession) -> bool:
        steps, self._steps_read = s.metrics.steps_since(self._steps_read)
        evals, self._evals_read = s.metrics.evals_since(self._evals_read)
        if steps:
            self.error_curve.append("step", [r["step"] for r in steps], [r.get("recon_error", np.nan) for r in steps])
        if evals:
            xs = [r["step"] for r in evals]
            self.error_curve.append("train", xs, [r.get("train_meanfield_recon_error", np.nan) for r in evals])
            self.error_curve.append("heldout", xs, [r.get("heldout_recon_error", np.nan) for r in evals])
            self.pll_curve.append("train", xs, [r.get("train_pll", np.nan) for r in evals])
            self.pll_curve.append("heldout", xs, [r.get("heldout_pll", np.nan) for r in evals])
        if steps or evals:
            self.error_curve.redraw()
            self.pll_curve.redraw()
            self._update_stats(s)
            return True
        return False

    def _update_stats(self, s: TrainingSession) -> None:
        parts = [f"step {s.trainer.step}", f"epoch {s.trainer.epoch}"]
        if s.metrics.steps:
            parts.append(f"batch error {s.metrics.steps[-1].get('recon_error', float('nan')):.4f}")
        if s.metrics.evals:
            e = s.metrics.evals[-1]
            parts.append(f"held-out error {e.get('heldout_recon_error', float('nan')):.4f}")
            parts.append(f"held-out PLL {e.get('heldout_pll', float('nan')):.2f}")
            parts.append(f"free-energy gap {e.get('free_energy_gap', float('nan')):+.3f}")
        self.stats.setText("   ·   ".join(parts))

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        shape = a["image_shape"]
        # a closed or hidden view costs nothing; it catches up from the next snapshot when shown
        if self.recon.isVisible():
            self.recon.set_rows([a["probe_input"], a["probe_recon"], a["probe_sample"]], shape,
                                labels=["x", "p(x|h)", "x~"])
        if self.filters.isVisible():
            self.filters.set_images(a["filters"][:MAX_FILTERS], shape)
            n = a["filters"].shape[0]
            self.filters.title.setText(f"Filters: columns of W ({min(n, MAX_FILTERS)} of {n} hidden units)")
        if self.hidden.isVisible():
            self.hidden.set_matrix(a["hidden_probs"])
        if self.dreams.isVisible():
            self.dreams.set_images(a["dream"], shape, cols=min(8, len(a["dream"])))

    def wire_settings(self, on_change: Callable[[str, Any], None], on_reset: Callable[[], None],
                      on_choose_folder: Callable[[], None]) -> None:
        self.settings.sigChanged.connect(on_change)
        self.settings.sigApplyReset.connect(on_reset)
        self.settings.sigChooseDataFolder.connect(on_choose_folder)


__all__ = ["RBMPanel", "RBMSettings", "DockSpec", "LIVE", "NEEDS_RESET"]
