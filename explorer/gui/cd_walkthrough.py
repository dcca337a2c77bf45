"""One CD-1 update, slowed down for a class: x, then h^, x~, h~ and the change of W, a key press each.

The numbers come from the RBM being trained (its current weights, one held-out example), computed
on the training thread between two steps; nothing is applied to the model. It is always CD-1, one
Gibbs step, whatever k the trainer uses: the texts say so, and what CD-k does differently. Keys: Space,
Right or Enter go on, Left or Backspace go back, N draws a new example, Esc closes.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.engine.protocol import Session
from explorer.core.families.deep.trainer import grid_shape
from explorer.core.persist.commands import ask_trainer
from explorer.gui.widgets.views import MosaicView, rich_text, tile_images

STAGES = [
    ("1. The data x",
     "An example on the visible units (binary, as the lecture's RBM wants). It is a held-out example, one the "
     "RBM never trained on; the step is computed as training computes it for each example of a batch, and is "
     "not applied."),
    ("2. Sample ĥ ~ p(h | x)",
     "p(h<sub>j</sub>=1 | x) = σ(Σ<sub>i</sub> w<sub>ij</sub> x<sub>i</sub> + d<sub>j</sub>); each hidden unit then "
     "fires with that probability: ĥ. Top row: the probabilities, bottom row: the sample (one cell per unit)."),
    ("3. Sample x~ ~ p(x | ĥ)",
     "p(x<sub>i</sub>=1 | ĥ) = σ(Σ<sub>j</sub> w<sub>ij</sub> ĥ<sub>j</sub> + b<sub>i</sub>): the model's "
     "reconstruction of x from ĥ; x~ is a sample of it."),
    ("4. Sample h~ ~ p(h | x~)",
     "The hidden units again, driven by the model's own x~: h~."),
    ("5. The update of W",
     "w<sub>ij</sub> += γ (x<sub>i</sub> ĥ<sub>j</sub> − x~<sub>i</sub> h~<sub>j</sub>): the data's correlations "
     "up (left: x ĥᵀ), the model's own down (middle: x~ h~ᵀ); right: their difference times γ. One tile per "
     "hidden unit j, red +, blue −, one scale for all tiles. (Shown, not applied: the model is untouched.)"),
]


def request_walkthrough(session: Session, probe: int, seed: int | None, timeout: float = 10.0
                        ) -> dict[str, Any] | None:
    """Compute the walkthrough on the training thread (between steps) and wait for it."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def answered(data: dict[str, Any] | None, error: BaseException | None) -> None:
        if error is not None:  # reported to the user, never raised into Qt
            box["error"] = str(error)
        else:
            box["data"] = data
        done.set()

    session.run_command(ask_trainer, "cd1_walkthrough", probe=probe, seed=seed, on_done=answered)
    if not done.wait(timeout):
        return None
    if "error" in box:
        raise ValueError(box["error"])
    return box["data"]


class CDWalkthrough(QtWidgets.QDialog):
    """A large, keyboard-driven dialog that steps through one CD-1 update.

    PgDown past its last stage emits ``sigPastEnd`` and PgUp before its first ``sigBeforeStart``: the
    lecture, which opens it at a step, goes on to its next (previous) step there, so that a presenter's
    clicker, which sends only those two keys, is never stuck in the dialog."""

    sigPastEnd = QtCore.Signal()
    sigBeforeStart = QtCore.Signal()

    def __init__(self, session: Session, parent: QtWidgets.QWidget | None = None, probe: int = 0):
        super().__init__(parent)
        self.setObjectName("cdWalkthrough")
        self.setWindowTitle("One CD-1 update, step by step")
        cfg = getattr(session.trainer, "config", None)
        self.trainer_k = int(getattr(cfg, "k", 1) or 1)
        self.persistent = bool(getattr(cfg, "persistent", False))
        self.session = session
        self.probe = probe
        self.stage = 0
        self.data: dict[str, Any] | None = None
        self._seed = 1000
        lay = QtWidgets.QVBoxLayout(self)
        self.heading = QtWidgets.QLabel("")
        self.heading.setObjectName("walkthroughHeading")
        font = self.heading.font()
        font.setPointSize(font.pointSize() + 8)
        font.setBold(True)
        self.heading.setFont(font)
        self.explain = QtWidgets.QLabel("")
        self.explain.setWordWrap(True)
        self.explain.setTextFormat(QtCore.Qt.TextFormat.RichText)
        f2 = self.explain.font()
        f2.setPointSize(f2.pointSize() + 3)
        self.explain.setFont(f2)
        self.view = MosaicView("", "")
        self.view.title.hide()
        self.view.export_button.hide()
        self.update_view = MosaicView("", "", levels=(-1.0, 1.0), colormap="CET-D1")
        self.update_view.title.hide()
        self.update_view.export_button.hide()
        self.pages = QtWidgets.QStackedWidget()
        self.pages.addWidget(self.view)
        self.pages.addWidget(self.update_view)
        self.progress = QtWidgets.QLabel("")
        self.progress.setObjectName("walkthroughProgress")
        self.hint = QtWidgets.QLabel("Space / → next   ·   ← back   ·   N another example   ·   Esc close")
        self.hint.setObjectName("viewCaption")
        buttons = QtWidgets.QHBoxLayout()
        self.back_btn = QtWidgets.QPushButton("← Back")
        self.next_btn = QtWidgets.QPushButton("Next →")
        self.new_btn = QtWidgets.QPushButton("Another example (N)")
        for b in (self.back_btn, self.next_btn, self.new_btn):
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # the keys belong to the dialog
        self.back_btn.clicked.connect(self.back)
        self.next_btn.clicked.connect(self.next)
        self.new_btn.clicked.connect(self.new_example)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.new_btn)
        buttons.addWidget(self.back_btn)
        buttons.addWidget(self.next_btn)
        lay.addWidget(self.heading)
        lay.addWidget(self.explain)
        lay.addWidget(self.pages, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.hint)
        screen = (parent.screen() if parent is not None else QtGui.QGuiApplication.primaryScreen()).availableGeometry()
        self.resize(min(1100, int(screen.width() * 0.9)), min(760, int(screen.height() * 0.9)))
        self.load()

    # -- data ------------------------------------------------------------------------------------------
    def load(self) -> bool:
        try:
            data = request_walkthrough(self.session, self.probe, self._seed)
        except ValueError as exc:
            self.heading.setText("Could not compute the update")
            self.explain.setText(str(exc))
            return False
        if data is None:
            self.heading.setText("The training thread is busy; try again")
            return False
        self.data = data
        self.show_stage(self.stage)
        return True

    def new_example(self) -> None:
        self.probe += 1
        self._seed += 1
        self.stage = 0
        self.load()

    # -- stepping --------------------------------------------------------------------------------------
    def next(self) -> None:
        if self.stage < len(STAGES) - 1:
            self.show_stage(self.stage + 1)

    def back(self) -> None:
        if self.stage > 0:
            self.show_stage(self.stage - 1)

    def show_stage(self, stage: int) -> None:
        self.stage = stage
        d = self.data
        title, text = STAGES[stage]
        text = rich_text(text) + self.training_note(stage)
        self.heading.setText(title)
        self.explain.setText(text)
        self.progress.setText(f"step {stage + 1} of {len(STAGES)}   ·   example {self.probe + 1}, "
                              f"weights after {d['step'] if d else '?'} training steps")
        self.back_btn.setEnabled(stage > 0)
        self.next_btn.setEnabled(stage < len(STAGES) - 1)
        if d is None:
            return
        shape = d["image_shape"]
        hidden = grid_shape(d["h_hat"].shape[0])
        if stage == len(STAGES) - 1:
            self.pages.setCurrentIndex(1)
            tiles = [d["positive"].T, d["negative"].T, d["dW"].T / max(d["lr"], 1e-12)]
            # one common scale: x h^' and x~ h~' are 0/1, their difference is in [-1, 1]
            mosaic_rows = [t.reshape(t.shape[0], -1) for t in tiles]
            n = mosaic_rows[0].shape[0]
            cols = int(np.ceil(np.sqrt(n)))

            blocks = [tile_images(r, shape, cols=cols) for r in mosaic_rows]
            gap = np.full((blocks[0].shape[0], 3), np.nan, dtype=np.float32)
            self.update_view._show(np.hstack([blocks[0], gap, -blocks[1], gap, blocks[2]]))
            changed = int(np.count_nonzero(d["dW"]))
            self.explain.setText(text + f"<br><b>{changed:,}</b> of {d['dW'].size:,} weights change this step, "
                                        f"by ±γ = ±{d['lr']:g}.")
            return
        self.pages.setCurrentIndex(0)
        if stage == 0:
            self.view.set_rows([d["x"][None]], shape, labels=["x"])
        elif stage == 1:
            self.view.set_rows([d["p_h"][None], d["h_hat"][None]], hidden, labels=["p(h|x)", "ĥ"])
        elif stage == 2:
            self.view.set_rows([d["x"][None], d["p_x"][None], d["x_tilde"][None]], shape,
                               labels=["x", "p(x|ĥ)", "x~"])
        elif stage == 3:
            self.view.set_rows([d["h_hat"][None], d["p_h_tilde"][None], d["h_tilde"][None]], hidden,
                               labels=["ĥ", "p(h|x~)", "h~"])

    def training_note(self, stage: int) -> str:
        """How the trainer's own step differs from this CD-1 step (CD-k with k > 1, persistent chains)."""
        k = self.trainer_k
        if stage not in (2, 4) or (k == 1 and not self.persistent):
            return ""
        if stage == 2 and k > 1:
            return (f"<br><i>The trainer uses CD-{k}: its chain goes on from x~ through h and x {k - 1} more "
                    f"time{'s' * (k > 2)} before its negative phase; this step-through shows CD-1, one step.</i>")
        if stage == 4:
            how = f"CD-{k}" + (" with persistent chains (PCD)" if self.persistent else "")
            chain = (" whose chain starts from where the last step's ended, not from x" if self.persistent else "")
            return (f"<br><i>Training uses {how}{chain}: its x~, h~ are those of its last Gibbs step. This is the "
                    f"update CD-1 would make.</i>")
        return ""

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 (Qt name)
        key = event.key()
        K = QtCore.Qt.Key
        if key == K.Key_PageDown and self.stage >= len(STAGES) - 1:
            self.sigPastEnd.emit()
        elif key == K.Key_PageUp and self.stage <= 0:
            self.sigBeforeStart.emit()
        elif key in (K.Key_Space, K.Key_Right, K.Key_Return, K.Key_Enter, K.Key_PageDown):
            self.next()
        elif key in (K.Key_Left, K.Key_Backspace, K.Key_PageUp):
            self.back()
        elif key == K.Key_N:
            self.new_example()
        else:
            super().keyPressEvent(event)
