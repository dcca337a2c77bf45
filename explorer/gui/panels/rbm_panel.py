"""The RBM panel: watch contrastive divergence learn, live.

Views (each a dock of the main window): input beside its reconstruction and Gibbs sample,
the filters (columns of W), hidden probabilities p(h|x), the error and likelihood curves,
"dreams" (Gibbs chains run from the current model), and the settings that drive training.
The panel reads :class:`~explorer.core.engine.session.Snapshot` objects (CPU numpy copies) and
the session's metrics log; it never touches a live tensor.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.rbm.model import cd_averages
from explorer.core.families.rbm.trainer import LIVE, NEEDS_RESET, RBMConfig
from explorer.gui.panels.base import DockSpec, LivePanel, settings_scroll
from explorer.gui.widgets.hover import fmt
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import CurveView, HeatmapView, MosaicView

MAX_FILTERS = 100
# the lecture's symbols as rich text (x~ and h~: the reconstruction's samples, h^: the data's)
X_T = "x&#771;"
H_T = "h&#771;"
H_HAT = "h&#770;"
GREY = "#9aa5b5"
HIDDEN_MIN_PX = 110  # the hidden-unit heatmap's least height with its axis (at 1366x768 it was 68, the map 27 px)


def _logit(p: float) -> float | None:
    """The pre-activation a with sigma(a) = p, or None where p is 0 or 1 (saturated: a is not recoverable)."""
    if not 0.0 < p < 1.0:
        return None
    return float(np.log(p) - np.log1p(-p))


def _sum_with_bias(bias_name: str, bias: float | None, p: float) -> str:
    """"= sigma(bias + sum) = p" with the numbers, the sum recovered as logit(p) - bias."""
    a = _logit(p)
    if bias is None or a is None:
        return f" = <b>{fmt(p)}</b>"
    return f"<br>&nbsp;&nbsp;= σ({fmt(bias)} + {fmt(a - bias)}) = <b>{fmt(p)}</b>"


class RBMSettings(SettingsForm):
    """The RBM's settings. Live ones apply between steps; the others wait for Reset, and say so."""

    def __init__(self, config: RBMConfig, parent=None):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName("rbmSettings")
        form = self.form
        self.add_data_rows()
        self.binarize = QtWidgets.QComboBox()
        self.binarize.addItems(["sample", "threshold"])
        self.binarize.setToolTip("The lecture's visible units are binary.\n"
                                 "sample: each grey pixel is a fresh Bernoulli draw with its grey level as p\n"
                                 "threshold: pixel > 0.5")
        form.addRow("Binary inputs", self.binarize)

        self.section("Model")
        self.hidden = self.int_row("Hidden units", 1, 4096)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)

        self.section("Training (applies live)")
        self.lr = self.float_row("Learning rate γ", 0.0001, 10.0, decimals=4, step=0.01)
        self.lr.setToolTip("gamma in w_ij += gamma (x_i h^_j - x~_i h~_j)")
        self.k = self.int_row("CD-k", 1, 100)
        self.k.setToolTip("Gibbs steps per update: CD-1 is the lecture's algorithm")
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.section("Beyond the lecture (off by default)")
        self.momentum = self.float_row("Momentum", 0.0, 0.99, step=0.1)
        self.momentum.setToolTip("Option beyond the lecture (off = 0): v = m v + update; W += v")
        self.weight_decay = self.float_row("Weight decay", 0.0, 1.0, decimals=5, step=0.0001)
        self.weight_decay.setToolTip("Option beyond the lecture (off = 0): L2 pull of W towards 0")
        self.persistent = QtWidgets.QCheckBox("Persistent CD (PCD)")
        self.persistent.setToolTip("PCD: the negative chain continues from the last step instead of the data")
        form.addRow("", self.persistent)
        self.dream_steps = self.int_row("Dream sweeps", 1, 100)
        self.dream_steps.setToolTip("Gibbs sweeps the dream chains run between two refreshes")
        self.section("For a class")
        self.walkthrough_btn = QtWidgets.QPushButton("One CD-1 update, step by step…")
        self.walkthrough_btn.setObjectName("cdWalkthroughButton")
        self.walkthrough_btn.setToolTip("x, then h^, x~, h~ and the change of W for one held-out example, a key press "
                                        "each: one Gibbs step (CD-1) whatever CD-k trains, shown and not applied "
                                        "(Ctrl+W)")
        self.walkthrough_btn.setShortcut(QtGui.QKeySequence("Ctrl+W"))
        form.addRow(self.walkthrough_btn)
        self.add_reset_rows()
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"dataset": self.dataset, "upscale": self.upscale, "binarize": self.binarize,
                "hidden": self.hidden, "seed": self.seed, "lr": self.lr, "k": self.k,
                "batch_size": self.batch_size, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "persistent": self.persistent, "dream_steps": self.dream_steps}


class RBMViews:
    """The RBM's model views: input / reconstruction / sample rows, the filters, the hidden probabilities.

    One class for every place an RBM is watched: the RBM panel, and the deep network panel while a layer
    is pretrained as an RBM (its inputs are then the codes of the layer below, laid out as a grid).
    ``show`` reads the RBM trainer's snapshot keys, optionally under a prefix (``stage_``).
    """

    def __init__(self) -> None:
        self._a: dict = {}        # the snapshot shown, for the readouts under the mouse
        self._prefix = ""
        self._step: int | None = None
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
        self.filters.set_hover_text(self.filter_text)
        self.hidden.set_hover_text(self.hidden_text)
        self.recon.set_hover_text(self.recon_text)

    def _get(self, key: str):
        return self._a.get(self._prefix + key)

    # -- readouts under the mouse: the lecture's equations with the numbers of the snapshot shown -------------
    def filter_text(self, info: dict) -> str | None:
        """Pixel i of hidden unit j's filter: w_ij now, and the last CD update of w_ij with its parts."""
        if info.get("tile") is None:
            return None
        j, i = int(info["tile"]), int(info["pixel"])
        lines = [f"hidden unit <b>j = {j}</b>, visible pixel <b>i = {i}</b> (row {info['row']}, col {info['col']})",
                 f"w<sub>ij</sub> = <b>{fmt(info['value'])}</b>"]
        if self._get("cd_x") is None or i >= self._get("cd_x").shape[1] or j >= self._get("cd_h_hat").shape[1]:
            lines.append(f"<span style='color:{GREY}'>no CD update yet: press Play or Step</span>")
            return "<br>".join(lines)
        a, b = (float(v) for v in cd_averages(self._a, i, j, self._prefix))
        lr, k, batch = float(self._get("cd_lr")), int(self._get("cd_k")), int(self._get("cd_batch"))
        when = f" (step {self._step})" if self._step is not None else ""
        lines += [f"last CD-{k} update{when}, averaged over a batch of {batch}:",
                  f"Δw<sub>ij</sub> = γ (⟨x<sub>i</sub> {H_HAT}<sub>j</sub>⟩ − ⟨{X_T}<sub>i</sub> {H_T}<sub>j</sub>⟩)",
                  f"&nbsp;&nbsp;= {fmt(lr)} × ({fmt(a)} − {fmt(b)}) = <b>{fmt(lr * (a - b))}</b>"]
        momentum, decay = float(self._get("cd_momentum") or 0.0), float(self._get("cd_weight_decay") or 0.0)
        extras = [f"momentum {fmt(momentum)}" if momentum else "", f"weight decay {fmt(decay)}" if decay else ""]
        extras = [e for e in extras if e]
        if extras:
            lines.append(f"<span style='color:{GREY}'>beyond the lecture, {' and '.join(extras)} also moved "
                         f"w<sub>ij</sub> in that step</span>")
        return "<br>".join(lines)

    def hidden_text(self, info: dict) -> str:
        """p(h_j=1|x) for one example and hidden unit, as sigma(d_j + sum_i w_ij x_i) with the numbers."""
        j, p = int(info["col"]), float(info["value"])
        d = self._get("hidden_bias")
        dj = float(d[j]) if d is not None and j < len(d) else None
        return (f"example <b>{info['y']}</b>, hidden unit <b>j = {j}</b><br>"
                f"p(h<sub>j</sub>=1|x) = σ(d<sub>j</sub> + Σ<sub>i</sub> w<sub>ij</sub> x<sub>i</sub>)"
                + _sum_with_bias("d", dj, p))

    def recon_text(self, info: dict) -> str | None:
        """Pixel i of example m in the input / reconstruction / sample rows, against each other."""
        if info.get("tile") is None or "row_label" not in info:
            return None
        m, i, label = int(info["example"]), int(info["pixel"]), info["row_label"]
        x, r = self._get("probe_input"), self._get("probe_recon")
        bias = self._get("visible_bias")
        head = f"example <b>{m}</b>, pixel <b>i = {i}</b> (row {info['row']}, col {info['col']})<br>"
        if x is None or r is None or m >= len(x):
            return None
        xi, ri = float(x[m, i]), float(r[m, i])
        err = f"squared error (x<sub>i</sub> − p)² = ({fmt(xi)} − {fmt(ri)})² = <b>{fmt((xi - ri) ** 2)}</b>"
        if label == "p(x|h)":
            bi = float(bias[i]) if bias is not None and i < len(bias) else None
            return (head + "p(x<sub>i</sub>=1|h) = σ(b<sub>i</sub> + Σ<sub>j</sub> w<sub>ij</sub> h<sub>j</sub>), "
                    "h = p(h|x)" + _sum_with_bias("b", bi, ri) + "<br>" + err)
        if label == "x~":
            return (head + f"{X_T}<sub>i</sub> ~ p(x<sub>i</sub>|{H_HAT}), one Gibbs step: <b>{fmt(info['value'])}</b>"
                    f"<br>the input had x<sub>i</sub> = {fmt(xi)}")
        return head + f"x<sub>i</sub> = <b>{fmt(xi)}</b>, reconstructed p(x<sub>i</sub>=1|h) = {fmt(ri)}<br>" + err

    def show(self, a: dict, shape, prefix: str = "", step: int | None = None) -> None:
        self._a, self._prefix, self._step = a, prefix, step
        # a closed or hidden view costs nothing; it catches up from the next snapshot when shown
        if self.recon.isVisible():
            self.recon.set_rows([a[prefix + "probe_input"], a[prefix + "probe_recon"], a[prefix + "probe_sample"]],
                                shape, labels=["x", "p(x|h)", "x~"])
        if self.filters.isVisible():
            filters = a[prefix + "filters"]
            self.filters.set_images(filters[:MAX_FILTERS], shape)
            n = filters.shape[0]
            self.filters.title.setText(f"Filters: columns of W ({min(n, MAX_FILTERS)} of {n} hidden units)")
        if self.hidden.isVisible():
            self.hidden.set_matrix(a[prefix + "hidden_probs"])


class RBMPanel(LivePanel):
    """Owns the RBM views and settings, and feeds them from snapshots and the metrics log."""
    presentation_docks = ("rbmFiltersDock", "rbmCurvesDock")  # (the curves: reconstruction error only, see
                                                               # set_presenting)

    family = "rbm"
    title = "RBM (contrastive divergence)"
    bottom_share = 0.31  # the curves give the right column the height the hidden units' heatmap needs

    def __init__(self, config: RBMConfig, parent=None):
        super().__init__(RBMSettings(config), parent)
        self.views = RBMViews()
        self.recon, self.filters, self.hidden = self.views.recon, self.views.filters, self.views.hidden
        self.hidden._body.setMinimumHeight(HIDDEN_MIN_PX)  # (its dock takes the height from the filters' above)
        self.walkthrough = None
        self.settings.walkthrough_btn.clicked.connect(self.open_walkthrough)
        self.error_curve = CurveView(
            "Reconstruction error", "Mean squared error per pixel. Per step: x vs p(x|h^) on the batch; "
            "mean-field: x vs p(x|p(h|x)).", ylabel="MSE per pixel")
        self.error_curve.add_series("step", "training (per step)", "#5c6b80", width=1, per_step=True)
        self.error_curve.add_series("train", "training (mean-field)", "#4fc3f7", width=2.5, symbol="o")
        self.error_curve.add_series("heldout", "held-out (mean-field)", "#ffb74d", width=2.5, symbol="s")
        self.pll_curve = CurveView(
            "Pseudo-log-likelihood", "Σ<sub>i</sub> log p(x<sub>i</sub> | x<sub>−i</sub>) per example: each bit "
            "predicted from all the others, log σ(F(x with bit i flipped) − F(x)) from the free energy "
            "F(x) = −b'x − Σ<sub>j</sub> log(1+e<sup>d<sub>j</sub>+x'W<sub>·j</sub></sup>). A stand-in for log P(x), "
            "whose normaliser Z cannot be computed; higher is better. Held-out falling below training signals "
            "overfitting.", ylabel="PLL per example")
        self.pll_curve.add_series("train", "training", "#4fc3f7", width=2.5, symbol="o")
        self.pll_curve.add_series("heldout", "held-out", "#ffb74d", width=2.5, symbol="s")
        self.dreams = MosaicView(
            "Dreams: Gibbs chains from the model",
            "Chains started from noise and run on: x → h ~ p(h|x) → x ~ p(x|h). Shows p(x|h).")

    def open_walkthrough(self):
        """The CD-1 step-through dialog on the current weights (window-modal; training may go on)."""
        if self.session is None:
            return None
        from explorer.gui.cd_walkthrough import CDWalkthrough

        dlg = CDWalkthrough(self.session, parent=self.settings.window())
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()
        self.walkthrough = dlg
        return dlg

    # -- layout ------------------------------------------------------------------------------------
    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self.recon)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        scroll = settings_scroll(self.settings)
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

    def set_presenting(self, on: bool) -> None:
        """In presentation mode the curves' dock shows the reconstruction error alone: side by side in a
        column a third of the screen wide, their long captions left both curves under 200 px tall."""
        self.pll_curve.setVisible(not on)

    # -- feeding -----------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.error_curve.clear_data()
        self.pll_curve.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        if steps:
            self.error_curve.append("step", [r["step"] for r in steps], [r.get("recon_error", np.nan) for r in steps])
        if evals:
            xs = [r["step"] for r in evals]
            self.error_curve.append("train", xs, [r.get("train_meanfield_recon_error", np.nan) for r in evals])
            self.error_curve.append("heldout", xs, [r.get("heldout_recon_error", np.nan) for r in evals])
            self.pll_curve.append("train", xs, [r.get("train_pll", np.nan) for r in evals])
            self.pll_curve.append("heldout", xs, [r.get("heldout_pll", np.nan) for r in evals])
        self.error_curve.redraw()
        self.pll_curve.redraw()

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        if s.metrics.steps:
            parts.append(f"batch error {s.metrics.steps[-1].get('recon_error', float('nan')):.4f}")
        if s.metrics.evals:
            e = s.metrics.evals[-1]
            parts.append(f"held-out error {e.get('heldout_recon_error', float('nan')):.4f}")
            parts.append(f"held-out PLL {e.get('heldout_pll', float('nan')):.2f}")
            parts.append(f"free-energy gap {e.get('free_energy_gap', float('nan')):+.3f}")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        shape = a["image_shape"]
        # a closed or hidden view costs nothing; it catches up from the next snapshot when shown
        self.views.show(a, shape, step=snap.step)
        if self.dreams.isVisible():
            self.dreams.set_images(a["dream"], shape, cols=min(8, len(a["dream"])))


__all__ = ["RBMPanel", "RBMViews", "RBMSettings", "DockSpec", "LIVE", "NEEDS_RESET"]
