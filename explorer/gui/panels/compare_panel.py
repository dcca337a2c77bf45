"""Four starts side by side: random sigmoid, RBM-pretrained, AE-pretrained, ReLU + He.

The lecture's "Is it always necessary? 2006: yes! 2014: no!" in one click: the same deep network
on the same data, batches and seed, from four starting points, with their held-out accuracy and
their first layer's gradient norm on common axes.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.deep.compare import NEEDS_RESET, CompareConfig
from explorer.gui.panels.base import DockSpec, LivePanel, settings_scroll
from explorer.gui.panels.deep_panel import INIT_HELP, HiddenLayersSettings
from explorer.gui.widgets.views import LABEL_COLOURS, CurveView


class CompareSettings(HiddenLayersSettings):
    def __init__(self, config: CompareConfig, parent=None):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName("compareSettings")
        self.add_data_rows()
        self.section("Network (the same for all four)")
        self.add_hidden_layers_row()
        self.pretrain_epochs = self.int_row("Pretrain epochs/layer", 1, 1000)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)
        self.section("Fine-tuning (applies live)")
        self.lr = self.float_row("Learning rate (sigmoid)", 0.0001, 10.0, decimals=4, step=0.05)
        self.relu_lr = self.float_row("Learning rate (ReLU)", 0.0001, 10.0, decimals=4, step=0.01)
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.add_reset_rows()
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"dataset": self.dataset, "upscale": self.upscale, "pretrain_epochs": self.pretrain_epochs,
                "seed": self.seed, "lr": self.lr, "relu_lr": self.relu_lr, "batch_size": self.batch_size}


class ComparePanel(LivePanel):
    presentation_docks = ("compareStatusDock", "compareGradDock")
    presentation_split = (0.32, 0.68)  # four rows of status; the curve takes the rest
    family = "compare"
    title = "Pretraining or not? Four starts side by side"

    def __init__(self, config: CompareConfig, parent=None):
        super().__init__(CompareSettings(config), parent)
        self.accuracy = CurveView(
            "Held-out accuracy", "The same network, data, batches and seed; only the start differs. "
            "Pretraining stages count as steps too: a pretrained run starts fine-tuning later.",
            ylabel="held-out accuracy (%)")
        self.first_grad = CurveView(
            "First layer's gradient norm ‖∂loss/∂W₁‖ (log scale)",
            "Where the gradient has to travel furthest: it vanishes for the random sigmoid start.",
            ylabel="gradient norm", logy=True)
        self.status = QtWidgets.QTableWidget(0, 3)
        self.status.setObjectName("compareStatus")
        self.status.setHorizontalHeaderLabels(["start", "stage", "held-out accuracy"])
        self.status.verticalHeader().setVisible(False)
        self.status.horizontalHeader().setStretchLastSection(True)
        self.status.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self._inits: list[str] = []

    def _ensure_series(self, inits: list[str]) -> None:
        for i, init in enumerate(inits):
            if init not in self._inits:
                colour = LABEL_COLOURS[i % len(LABEL_COLOURS)]
                self.accuracy.add_series(init, init, colour, width=2.5, symbol="o")
                self.first_grad.add_series(init, init, colour, width=2)
                self._inits.append(init)
                self.status.insertRow(self.status.rowCount())
                item = QtWidgets.QTableWidgetItem(init)
                item.setToolTip(INIT_HELP.get(init, init))
                self.status.setItem(self.status.rowCount() - 1, 0, item)

    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self.accuracy)

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        return [
            DockSpec("compareSettingsDock", "Settings", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec("compareStatusDock", "The four runs", self.status, A.RightDockWidgetArea),
            DockSpec("compareGradDock", "First-layer gradients", self.first_grad, A.BottomDockWidgetArea),
        ]

    def attach(self, session: Session) -> None:
        self._ensure_series(list(session.trainer.runs))
        super().attach(session)

    def clear_curves(self) -> None:
        self.accuracy.clear_data()
        self.first_grad.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        for init in self._inits:
            key = f"{init}/grad_norm_1"
            rows = [r for r in steps if key in r]
            if rows:
                self.first_grad.append(init, [r["step"] for r in rows], [max(r[key], 1e-12) for r in rows])
            key = f"{init}/heldout_accuracy"
            rows = [r for r in evals if key in r]
            if rows:
                self.accuracy.append(init, [r["step"] for r in rows], [100 * r[key] for r in rows])
        self.first_grad.redraw()
        self.accuracy.redraw()
        last = {}
        for r in reversed(evals):
            for k, v in r.items():
                last.setdefault(k, v)
        for row, init in enumerate(self._inits):
            acc = last.get(f"{init}/heldout_accuracy")
            if acc is not None:
                self.status.setItem(row, 2, QtWidgets.QTableWidgetItem(f"{acc:.1%}"))

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        ev = s.metrics.evals
        for init in self._inits:
            for r in reversed(ev):
                if f"{init}/heldout_accuracy" in r:
                    parts.append(f"{init} {r[f'{init}/heldout_accuracy']:.1%}")
                    break
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        a = snap.arrays
        for row, init in enumerate(self._inits):
            stages = list(a.get(f"{init}/stages", []))
            stage = int(a.get(f"{init}/stage", 0))
            text = stages[stage] if 0 <= stage < len(stages) else ""
            if stages:
                text = f"{text} ({stage + 1}/{len(stages)})"
            self.status.setItem(row, 1, QtWidgets.QTableWidgetItem(text))


__all__ = ["ComparePanel", "CompareSettings"]
