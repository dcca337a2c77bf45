"""The architecture builder: design a network, see its shapes and costs as you type, hand it to training.

Every edit goes through a ``QUndoStack`` as a whole-spec snapshot (specs are small), so undo and
redo cover adding, inserting, removing, moving and editing layers alike. Inference
(:func:`explorer.core.spec.network.infer`) never raises: an impossible network shows its reasons in the
table instead of stopping the app.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.families.registry import check_trainable, spec_families
from explorer.core.paths import autosave_dir
from explorer.core.spec import network as S

SHAPE_SEP = "x"
BUILDER_SIZE = QtCore.QSize(1400, 850)  # the builder window's size where the screen has the room
FRAME_ROOM = QtCore.QSize(16, 40)  # left on the screen for a window's frame and title bar


def format_shape(shape) -> str:
    return SHAPE_SEP.join(str(v) for v in shape) if shape else "?"


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x28x28' (or '1, 28, 28') -> (1, 28, 28); raises ValueError with a readable message."""
    flat = text.replace(",", SHAPE_SEP).replace("×", SHAPE_SEP).replace(" ", "")
    if not flat:
        raise ValueError("the input shape is empty: write it like 1x28x28 (channels x height x width) or 784")
    parts = flat.split(SHAPE_SEP)
    if not all(parts):  # ("x28x28", one size deleted, was taken as 28x28: another network than the one meant)
        raise ValueError(f"input shape {text!r}: a size is missing; write it like 1x28x28")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"input shape {text!r}: sizes must be whole numbers, like 1x28x28") from None
    if any(v < 1 for v in shape):
        raise ValueError(f"input shape {text!r}: every size must be at least 1")
    return shape


def format_params(layer: S.LayerSpec) -> str:
    lt = S.layer_types().get(layer.type)
    names = [p.name for p in lt.params] if lt else list(layer.params)
    out = []
    for n in names:
        if n in layer.params:
            v = layer.params[n]
            out.append(f"{n}={v}")
    return ", ".join(out)


def parse_params(text: str, layer_type: str) -> dict[str, Any]:
    """'out_channels=6, kernel_size=5' -> {'out_channels': 6, 'kernel_size': 5}, typed by the layer's schema."""
    lt = S.layer_types().get(layer_type)
    kinds = {p.name: p.kind for p in lt.params} if lt else {}
    out: dict[str, Any] = {}
    for chunk in [c.strip() for c in text.split(",") if c.strip()]:
        if "=" not in chunk:
            raise ValueError(f"{chunk!r}: write parameters as name=value, separated by commas")
        k, v = (s.strip() for s in chunk.split("=", 1))
        kind = kinds.get(k)
        if kind is None:
            known = ", ".join(kinds) or "none"
            raise ValueError(f"{layer_type} has no parameter {k!r} (it has: {known})")
        try:
            if kind in ("int", "ref"):
                out[k] = int(v)
            elif kind == "float":
                out[k] = float(v)
            elif kind == "bool":
                if v.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out[k] = v.lower() in ("true", "1", "yes")
            else:
                out[k] = v
        except ValueError:
            raise ValueError(f"{layer_type}: {k}={v!r} is not a valid {kind}") from None
    return out


class SpecEdit(QtGui.QUndoCommand):
    """One edit of the network: the whole spec before and after."""

    def __init__(self, builder: ArchitectureBuilder, before: dict, after: dict, text: str):
        super().__init__(text)
        self.builder, self.before, self.after = builder, before, after

    def redo(self) -> None:
        self.builder._set_spec_silently(S.spec_from_dict(self.after))

    def undo(self) -> None:
        self.builder._set_spec_silently(S.spec_from_dict(self.before))


class BlockDiagram(QtWidgets.QGraphicsView):
    """The network as boxes in reading order, skip connections drawn as arcs above them.

    The boxes wrap into as many rows as make them largest in the view (a 13-layer LeNet-5 in one row
    was drawn at half size, its 4-point labels unreadable on a projector, and still scrolled); a row
    ends with an arrow that turns back to the start of the next, like a line of text.
    """

    BOX_W, BOX_H, GAP = 160, 58, 26  # wide enough for "#13 ConvTranspose2d" and "#17 LocalContrastNorm" in bold
    ROW_GAP = 46      # between two rows: room for the arrow that turns back, and for arcs to the next row
    TOP = 70          # above the first row: room for the skip arcs (when there are any)
    MAX_SCALE = 1.6   # a short network is drawn large, not huge

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QtWidgets.QGraphicsScene(self))
        self.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QtGui.QColor("#15181d"))
        self.setMinimumHeight(170)
        self.n_boxes = 0
        self.n_arcs = 0
        self.per_row = 1
        self._shown: tuple[list[tuple[str, str, str | None]], S.Inference] | None = None
        self._top = self.TOP

    def _layout_for(self, n: int) -> tuple[int, float]:
        """(boxes per row, scale) that draw ``n`` boxes largest in the viewport."""
        w, h = max(1, self.viewport().width() - 8), max(1, self.viewport().height() - 8)
        best = (n, 0.0)
        for rows in range(1, n + 1):
            per_row = -(-n // rows)
            rows = -(-n // per_row)
            width = per_row * (self.BOX_W + self.GAP) + 2 * self.GAP
            height = self._top + rows * self.BOX_H + (rows - 1) * self.ROW_GAP + 20
            scale = min(w / width, h / height, self.MAX_SCALE)
            if scale > best[1] + 1e-9:
                best = (per_row, scale)
        return best

    def show_network(self, spec: S.NetworkSpec, info: S.Inference) -> None:
        boxes = [("input", format_shape(spec.input_shape), None)]
        boxes += [(li.type, format_shape(li.output_shape), li.error) for li in info.layers]
        self._shown = (boxes, info)
        self._top = self.TOP if info.connections else 16
        self._fit(redraw=True)

    def _fit(self, redraw: bool) -> None:
        """Lay the boxes out for the view's size: the scene is drawn again only when the row count changes."""
        boxes, info = self._shown
        per_row, scale = self._layout_for(len(boxes))
        if redraw or per_row != self.per_row:
            self.per_row = per_row
            self._draw(boxes, info)
        self.resetTransform()
        self.scale(max(scale, 0.55), max(scale, 0.55))  # below that the labels cannot be read: scroll instead

    def _draw(self, boxes: list[tuple[str, str, str | None]], info: S.Inference) -> None:
        scene = self.scene()
        scene.clear()
        font = QtGui.QFont(self.font())
        font.setPointSize(8)
        bold = QtGui.QFont(font)
        bold.setBold(True)
        line_pen = QtGui.QPen(QtGui.QColor("#d8dee9"), 1.5)
        centres: dict[int, QtCore.QPointF] = {}
        rows_of: dict[int, int] = {}
        step_x, step_y = self.BOX_W + self.GAP, self.BOX_H + self.ROW_GAP
        for i, (title, shape, error) in enumerate(boxes):
            row, col = divmod(i, self.per_row)
            x, y = self.GAP + col * step_x, self._top + row * step_y
            colour = "#3b4252" if i == 0 else ("#5e3a40" if error else "#2e4a5c")
            rect = scene.addRect(x, y, self.BOX_W, self.BOX_H, QtGui.QPen(QtGui.QColor("#88c0d0" if not error
                                                                                     else "#bf616a"), 1.5),
                                 QtGui.QBrush(QtGui.QColor(colour)))
            rect.setToolTip(error or f"{title}: output {shape}")
            label = f"#{i} {title}" if i else "input"
            t = scene.addText(label, bold)
            t.setDefaultTextColor(QtGui.QColor("#eceff4"))
            t.setPos(x + 4, y + 4)
            s = scene.addText(shape, font)
            s.setDefaultTextColor(QtGui.QColor("#d8dee9" if not error else "#ffb3b3"))
            s.setPos(x + 4, y + 28)
            centres[i], rows_of[i] = QtCore.QPointF(x + self.BOX_W / 2, y), row
            if not i:
                continue
            mid = y + self.BOX_H / 2
            if col:  # from the box on the left
                scene.addLine(x - self.GAP, mid, x, mid, line_pen)
            else:  # from the end of the row above: right, down into the gap, back left, down, in
                prev_end = self.GAP + (self.per_row - 1) * step_x + self.BOX_W
                prev_mid = mid - step_y
                turn = y - self.ROW_GAP / 2
                path = QtGui.QPainterPath(QtCore.QPointF(prev_end, prev_mid))
                for px, py in ((prev_end + self.GAP / 2, prev_mid), (prev_end + self.GAP / 2, turn),
                               (self.GAP / 2, turn), (self.GAP / 2, mid), (x, mid)):
                    path.lineTo(px, py)
                scene.addPath(path, line_pen)
            head = QtGui.QPolygonF([QtCore.QPointF(x, mid), QtCore.QPointF(x - 7, mid - 4),
                                    QtCore.QPointF(x - 7, mid + 4)])
            scene.addPolygon(head, QtGui.QPen(QtGui.QColor("#d8dee9")), QtGui.QBrush(QtGui.QColor("#d8dee9")))
        self.n_boxes = len(boxes)
        self.n_arcs = 0
        pen = QtGui.QPen(QtGui.QColor("#ebcb8b"), 2.0, QtCore.Qt.PenStyle.DashLine)
        for src, dst in info.connections:
            if src in centres and dst in centres:
                a, b = centres[src], centres[dst]
                if rows_of[src] == rows_of[dst]:  # an arc above the row
                    lift = 30 + 6 * min(10, abs(dst - src))
                    path = QtGui.QPainterPath(a)
                    path.cubicTo(a.x(), a.y() - lift, b.x(), b.y() - lift, b.x(), b.y())
                else:  # from under the source, down to the top of the later row's box
                    a = QtCore.QPointF(a.x(), a.y() + self.BOX_H)
                    path = QtGui.QPainterPath(a)
                    path.cubicTo(a.x(), a.y() + self.ROW_GAP, b.x(), b.y() - self.ROW_GAP, b.x(), b.y())
                item = scene.addPath(path, pen)
                item.setZValue(-1)  # behind the boxes of a row it crosses
                item.setToolTip(f"skip: output of #{src} concatenated into #{dst}")
                self.n_arcs += 1
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-10, -10, 10, 10))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if self._shown is not None:
            self._fit(redraw=False)


class ParameterArithmetic(QtWidgets.QGroupBox):
    """The lecture's comparison: fully connected vs locally connected vs a shared convolution kernel."""

    def __init__(self, parent=None):
        super().__init__("Why convolutions? (the lecture's parameter arithmetic)", parent)
        form = QtWidgets.QFormLayout(self)
        self.image = QtWidgets.QSpinBox()
        self.image.setRange(1, 10000)
        self.image.setValue(200)
        self.image.setSuffix(" px (square image)")
        self.hidden = QtWidgets.QSpinBox()
        self.hidden.setRange(1, 10_000_000)
        self.hidden.setValue(25000)
        self.hidden.setGroupSeparatorShown(True)
        self.kernel = QtWidgets.QSpinBox()
        self.kernel.setRange(1, 1000)
        self.kernel.setValue(10)
        self.result = QtWidgets.QLabel()
        self.result.setObjectName("arithmeticResult")
        self.result.setTextFormat(QtCore.Qt.TextFormat.RichText)
        form.addRow("Image side", self.image)
        form.addRow("Hidden units", self.hidden)
        form.addRow("Kernel side", self.kernel)
        form.addRow(self.result)
        for w in (self.image, self.hidden, self.kernel):
            w.valueChanged.connect(self.update_result)
        self.update_result()

    def update_result(self) -> None:
        s, n, k = self.image.value(), self.hidden.value(), self.kernel.value()
        c = S.param_comparison(s, s, n, k)

        def human(v: int) -> str:
            for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
                if v >= div:
                    return f"{v:,} (≈{v / div:.3g}{unit})"
            return f"{v:,}"

        self.result.setText(
            f"fully connected: <b>{human(c['fully_connected'])}</b> weights<br>"
            f"locally connected {k}x{k}: <b>{human(c['locally_connected'])}</b><br>"
            f"convolution, one shared {k}x{k} kernel per map: <b>{human(c['convolution_shared'])}</b>")


@dataclass(frozen=True)
class _Kept:
    """Whether a network loaded over the one on show replaced an unsaved network, kept on disk (see
    ``ArchitectureBuilder._replacing``), and what the message adds about it."""

    replaced: bool

    @property
    def note(self) -> str:
        return (" The network you had not saved is kept: Undo brings it back, and so does the builder when it "
                "opens next, until you save a network or edit this one." if self.replaced else "")


class ArchitectureBuilder(QtWidgets.QWidget):
    """Layers table with live inference, a parameter form, a block diagram, presets, files, undo/redo."""

    sigTrain = QtCore.Signal(object)          # a valid NetworkSpec to train
    sigSpecChanged = QtCore.Signal()

    COLUMNS = ("#", "Layer", "Parameters", "Output shape", "Params", "RF size / jump", "Mult-adds", "Status")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("architectureBuilder")
        self.undo_stack = QtGui.QUndoStack(self)
        self.spec = S.load_preset(S.preset_names()[0])
        self.info = S.infer(self.spec)
        self.path: Path | None = None
        self._updating = False
        self._holding_kept = False  # (another network loaded over an unsaved one: see _replacing)
        self._kept_written = False  # whether the network on show, unsaved, is the one kept on disk
        self._build_ui()
        self._refresh()
        self.undo_stack.setClean()
        # a network edited since it was opened, saved or loaded is kept on disk as it changes, until a network
        # is saved: closing the app (or its crash) lost it, though nobody had saved it
        self.undo_stack.indexChanged.connect(self._keep_unsaved)

    # -- the unsaved network, kept ------------------------------------------------------------------------
    @staticmethod
    def unsaved_path() -> Path:
        """Where the network edited and not saved is kept: beside the runs' autosave."""
        return autosave_dir() / "builder-network.json"

    def _keep_unsaved(self, *_args) -> None:
        """The network on show, edited and not saved, written where it is kept (an edit, an Undo or a Redo).
        Back at a saved or loaded state (clean) nothing is written, and nothing deleted: what is kept is let
        go only when a network is saved (:meth:`save_file`). Deleting it there lost a network loaded over
        and then brought back by Undo: a Redo to the loaded one deleted it, and closing the app lost it."""
        self._kept_written = False
        if self._holding_kept or self.undo_stack.isClean():
            return
        path = self.unsaved_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            S.save_spec(self.spec, path)
            self._kept_written = True
        except (OSError, S.SpecError) as exc:
            self.show_message(f"Could not keep the unsaved network in {path}: {exc}", error=True)

    def restore_unsaved(self) -> bool:
        """Bring back the network that was edited and not saved when the app last closed (still unsaved: it
        is kept until a network is saved, see _replacing)."""
        path = self.unsaved_path()
        if not path.is_file():
            return False
        try:
            spec = S.load_spec(path)
        except (S.SpecError, OSError) as exc:
            self.show_message(f"The unsaved network kept in {path} could not be read: {exc}", error=True)
            return False
        self.set_spec(spec, "restore the unsaved network")
        self.show_message(f"Restored the network you had not saved ({len(spec.layers)} layers); it is kept in "
                          f"{path} until you save a network.")
        return True

    # -- UI ------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        outer = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        self.preset_combo = QtWidgets.QComboBox()
        for name in S.preset_names():
            self.preset_combo.addItem(name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, S.load_preset(name).description,
                                          QtCore.Qt.ItemDataRole.ToolTipRole)
        self.load_preset_btn = QtWidgets.QPushButton("Load preset")
        self.load_preset_btn.clicked.connect(lambda: self.load_preset(self.preset_combo.currentText()))
        self.undo_btn = QtWidgets.QPushButton("Undo")
        self.redo_btn = QtWidgets.QPushButton("Redo")
        self.undo_btn.clicked.connect(self.undo_stack.undo)
        self.redo_btn.clicked.connect(self.undo_stack.redo)
        self.undo_stack.canUndoChanged.connect(self.undo_btn.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_btn.setEnabled)
        self.undo_btn.setEnabled(False)
        self.redo_btn.setEnabled(False)
        self.open_btn = QtWidgets.QPushButton("Open…")
        self.save_btn = QtWidgets.QPushButton("Save…")
        self.export_btn = QtWidgets.QPushButton("Export PyTorch…")
        self.train_btn = QtWidgets.QPushButton("Train ▶")
        self.train_btn.setObjectName("trainButton")
        self.open_btn.clicked.connect(self.choose_open)
        self.save_btn.clicked.connect(self.choose_save)
        self.export_btn.clicked.connect(self.choose_export)
        self.train_btn.clicked.connect(self.train)
        for w in (QtWidgets.QLabel("Preset"), self.preset_combo, self.load_preset_btn):
            bar.addWidget(w)
        bar.addSpacing(12)
        for w in (self.undo_btn, self.redo_btn, self.open_btn, self.save_btn, self.export_btn):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.train_btn)
        outer.addLayout(bar)

        head = QtWidgets.QHBoxLayout()
        self.family_combo = QtWidgets.QComboBox()
        self.family_combo.addItems(list(spec_families()))
        self.family_combo.currentTextChanged.connect(self._on_family_changed)
        self.input_edit = QtWidgets.QLineEdit()
        self.input_edit.setPlaceholderText("e.g. 1x28x28 or 784 or 50x1")
        self.input_edit.setToolTip("Input shape: channels x height x width for images, features for vectors, "
                                   "time steps x features for sequences")
        self.input_edit.editingFinished.connect(self._on_input_edited)
        self.name_label = QtWidgets.QLabel()
        self.name_label.setObjectName("panelDescription")
        head.addWidget(QtWidgets.QLabel("Family"))
        head.addWidget(self.family_combo)
        head.addWidget(QtWidgets.QLabel("Input"))
        head.addWidget(self.input_edit)
        head.addWidget(self.name_label, 1)
        outer.addLayout(head)

        self.message = QtWidgets.QLabel("")
        self.message.setObjectName("builderMessage")
        self.message.setWordWrap(True)
        outer.addWidget(self.message)

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        top = QtWidgets.QWidget()
        top_lay = QtWidgets.QHBoxLayout(top)
        top_lay.setContentsMargins(0, 0, 0, 0)

        palette = QtWidgets.QVBoxLayout()
        palette.addWidget(QtWidgets.QLabel("Layers"))
        self.palette = QtWidgets.QListWidget()
        for name, lt in S.layer_types().items():
            item = QtWidgets.QListWidgetItem(name)
            item.setToolTip(lt.help)
            self.palette.addItem(item)
        self.palette.setCurrentRow(0)
        self.palette.itemDoubleClicked.connect(lambda _item: self.add_layer(self.palette.currentItem().text()))
        palette.addWidget(self.palette, 1)
        self.add_btn = QtWidgets.QPushButton("Add at end")
        self.insert_btn = QtWidgets.QPushButton("Insert above")
        self.add_btn.clicked.connect(lambda: self.add_layer(self.palette.currentItem().text()))
        self.insert_btn.clicked.connect(lambda: self.insert_layer(self.current_row(),
                                                                  self.palette.currentItem().text()))
        palette.addWidget(self.add_btn)
        palette.addWidget(self.insert_btn)
        pal_w = QtWidgets.QWidget()
        pal_w.setLayout(palette)
        pal_w.setMaximumWidth(200)
        top_lay.addWidget(pal_w)

        mid = QtWidgets.QVBoxLayout()
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(7, QtWidgets.QHeaderView.ResizeMode.Interactive)
        hh.resizeSection(7, 240)
        self.table.setWordWrap(False)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        mid.addWidget(self.table, 1)
        row_btns = QtWidgets.QHBoxLayout()
        self.remove_btn = QtWidgets.QPushButton("Remove")
        self.up_btn = QtWidgets.QPushButton("Move up")
        self.down_btn = QtWidgets.QPushButton("Move down")
        self.remove_btn.clicked.connect(lambda: self.remove_layer(self.current_row()))
        self.up_btn.clicked.connect(lambda: self.move_layer(self.current_row(), -1))
        self.down_btn.clicked.connect(lambda: self.move_layer(self.current_row(), +1))
        for b in (self.remove_btn, self.up_btn, self.down_btn):
            row_btns.addWidget(b)
        row_btns.addSpacing(12)
        self.totals = QtWidgets.QLabel()
        self.totals.setObjectName("panelStats")
        # a fault's line wraps: on one line it was as wide as itself, and on a 1366-px screen the builder grew
        # wider than its window (the end of the fault and the selected layer's form cut off by its edge)
        self.totals.setWordWrap(True)
        self.totals.setMinimumWidth(200)
        row_btns.addWidget(self.totals, 1)
        mid.addLayout(row_btns)
        mid_w = QtWidgets.QWidget()
        mid_w.setLayout(mid)
        top_lay.addWidget(mid_w, 1)

        self.form_box = QtWidgets.QGroupBox("Selected layer")
        self.form = QtWidgets.QFormLayout(self.form_box)
        self.form_box.setMinimumWidth(240)
        self.form_box.setMaximumWidth(300)
        top_lay.addWidget(self.form_box)
        split.addWidget(top)

        bottom = QtWidgets.QWidget()
        bl = QtWidgets.QHBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        self.diagram = BlockDiagram()
        bl.addWidget(self.diagram, 1)
        self.arithmetic = ParameterArithmetic()
        self.arithmetic.setMaximumWidth(420)
        bl.addWidget(self.arithmetic)
        split.addWidget(bottom)
        split.setSizes([420, 220])
        outer.addWidget(split, 1)

        for seq, slot in (("Ctrl+Z", self.undo_stack.undo), ("Ctrl+Shift+Z", self.undo_stack.redo),
                          ("Ctrl+Y", self.undo_stack.redo), ("Delete", lambda: self.remove_layer(self.current_row()))):
            sc = QtGui.QShortcut(QtGui.QKeySequence(seq), self)
            sc.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    # -- editing (every change is an undoable command) ----------------------------------------------
    def current_row(self) -> int:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else len(self.spec.layers) - 1

    def _push(self, new_spec: S.NetworkSpec, text: str) -> None:
        before = S.spec_to_dict(self.spec)
        after = S.spec_to_dict(new_spec)
        if before != after:
            self.undo_stack.push(SpecEdit(self, before, after, text))

    def _set_spec_silently(self, spec: S.NetworkSpec) -> None:
        self.spec = spec
        self._refresh()
        self.sigSpecChanged.emit()

    def set_spec(self, spec: S.NetworkSpec, text: str = "replace network") -> None:
        self._push(spec, text)

    def add_layer(self, type_name: str) -> None:
        self.insert_layer(len(self.spec.layers), type_name)

    def insert_layer(self, row: int, type_name: str) -> None:
        new = self.spec.copy()
        row = max(0, min(row, len(new.layers)))
        new.layers.insert(row, S.new_layer(type_name))
        self._push(new, f"insert {type_name}")
        self.select_row(row)

    def remove_layer(self, row: int) -> None:
        if not 0 <= row < len(self.spec.layers):
            return
        new = self.spec.copy()
        removed = new.layers.pop(row)
        self._push(new, f"remove {removed.type}")
        self.select_row(min(row, len(self.spec.layers) - 1))

    def move_layer(self, row: int, delta: int) -> None:
        dest = row + delta
        if not (0 <= row < len(self.spec.layers) and 0 <= dest < len(self.spec.layers)):
            return
        new = self.spec.copy()
        new.layers[row], new.layers[dest] = new.layers[dest], new.layers[row]
        self._push(new, "move layer")
        self.select_row(dest)

    def set_layer_params(self, row: int, params: dict[str, Any]) -> None:
        new = self.spec.copy()
        new.layers[row].params.update(params)
        self._push(new, f"edit {new.layers[row].type} #{row + 1}")

    def select_row(self, row: int) -> None:
        if 0 <= row < self.table.rowCount():
            self.table.selectRow(row)

    def _on_item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if self._updating or item.column() != 2:
            return
        row = item.row()
        try:
            params = parse_params(item.text(), self.spec.layers[row].type)
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            self._refresh()
            return
        self.show_message("")
        self.set_layer_params(row, params)

    def _on_family_changed(self, family: str) -> None:
        if self._updating:
            return
        new = self.spec.copy()
        new.family = family
        self._push(new, "change family")

    def _on_input_edited(self) -> None:
        if self._updating:
            return
        try:
            shape = parse_shape(self.input_edit.text())
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            return
        new = self.spec.copy()
        new.input_shape = shape
        self.show_message("")
        self._push(new, "change input shape")

    # -- display ---------------------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ff8a80;" if error else "color: #a3be8c;")

    def _refresh(self) -> None:
        self.info = S.infer(self.spec)
        self._updating = True
        try:
            self.family_combo.setCurrentText(self.spec.family)
            if not self.input_edit.hasFocus():
                self.input_edit.setText(format_shape(self.spec.input_shape))
            self.name_label.setText(self.spec.name or "(unnamed network)")
            self.name_label.setToolTip(self.spec.description)
            selected = self.current_row()
            self.table.setRowCount(len(self.spec.layers))
            by_index = {li.index: li for li in self.info.layers}
            red = QtGui.QColor("#5e3a40")
            for r, layer in enumerate(self.spec.layers):
                li = by_index.get(r + 1)
                rf = "" if li is None or li.rf_size is None else f"{li.rf_size} / {li.rf_jump}"
                cells = [str(r + 1), layer.type, format_params(layer),
                         format_shape(li.output_shape) if li else "?",
                         f"{li.params:,}" if li else "", rf,
                         f"{li.macs:,}" if li else "",
                         (li.error if li and li.error else "ok")]
                for c, text in enumerate(cells):
                    item = QtWidgets.QTableWidgetItem(text)
                    flags = QtCore.Qt.ItemFlag.ItemIsSelectable | QtCore.Qt.ItemFlag.ItemIsEnabled
                    if c == 2:
                        flags |= QtCore.Qt.ItemFlag.ItemIsEditable
                        item.setToolTip("Double-click to edit: name=value, separated by commas")
                    item.setFlags(flags)
                    if li and li.error:
                        item.setBackground(red)
                        item.setToolTip(li.error)
                    if c in (4, 6):
                        item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(r, c, item)
            if 0 <= selected < len(self.spec.layers):
                self.table.selectRow(selected)
        finally:
            self._updating = False
        refused = self.refusal()
        if not self.info.valid:
            status = f"invalid: {self.info.first_error}"
        elif refused:
            status = f"the layers fit, but the {self.spec.family} panel cannot train it: {refused}"
        else:
            status = "valid"
        self.totals.setText(f"{len(self.spec.layers)} layers · {self.info.total_params:,} parameters · "
                            f"{self.info.total_macs:,} mult-adds · output {format_shape(self.info.output_shape)} · "
                            f"{status}")
        self.totals.setToolTip(status)
        self.train_btn.setEnabled(self.info.valid and not refused)
        self.train_btn.setToolTip(f"Cannot train: {refused}" if refused else
                                  "Train this network in the main window" if self.info.valid else
                                  f"Cannot train: {self.info.first_error}")
        self.export_btn.setEnabled(self.info.valid)  # (its PyTorch module can be written whatever the family)
        self.diagram.show_network(self.spec, self.info)
        self._rebuild_form()

    def refusal(self) -> str:
        """Why the network's family cannot train it, though its layers fit together ("" when it can, or when the
        layers do not fit: that fault is said first). LeNet-5 with its family set to "rbm" was called valid and
        offered Train, which then refused it."""
        if not self.info.valid:
            return ""
        try:
            check_trainable(self.spec)
        except ValueError as exc:
            return str(exc)
        return ""

    def _on_selection_changed(self) -> None:
        if not self._updating:
            self._rebuild_form()

    def _rebuild_form(self) -> None:
        while self.form.rowCount():  # editors may be mid-signal: hide now, delete later
            taken = self.form.takeRow(0)
            for item in (taken.labelItem, taken.fieldItem):
                if item is not None and item.widget() is not None:
                    item.widget().hide()
                    item.widget().deleteLater()
        row = self.current_row()
        if not 0 <= row < len(self.spec.layers):
            self.form_box.setTitle("Selected layer")
            return
        layer = self.spec.layers[row]
        lt = S.layer_types().get(layer.type)
        self.form_box.setTitle(f"{layer.type} #{row + 1}")
        if lt is None:
            self.form.addRow(QtWidgets.QLabel(f"unknown layer type {layer.type!r}"))
            return
        help_label = QtWidgets.QLabel(lt.help)
        help_label.setWordWrap(True)
        help_label.setObjectName("viewCaption")
        self.form.addRow(help_label)
        for p in lt.params:
            value = layer.params.get(p.name, p.default)
            w = self._editor_for(p, value, row)
            w.setToolTip(p.help)
            self.form.addRow(p.name, w)

    def _editor_for(self, p: S.ParamDef, value: Any, row: int) -> QtWidgets.QWidget:
        def commit(v: Any) -> None:
            if self.spec.layers[row].params.get(p.name, p.default) != v:
                self.set_layer_params(row, {p.name: v})

        if p.kind in ("int", "ref"):
            w = QtWidgets.QSpinBox()
            w.setRange(int(p.minimum if p.minimum is not None else -10**6),
                       int(p.maximum if p.maximum is not None else 10**6))
            w.setValue(int(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
                       and math.isfinite(value) else int(p.default or 0))
            w.editingFinished.connect(lambda: commit(w.value()))
        elif p.kind == "float":
            w = QtWidgets.QDoubleSpinBox()
            w.setDecimals(6)
            w.setRange(p.minimum if p.minimum is not None else -1e9, p.maximum if p.maximum is not None else 1e9)
            w.setValue(float(value) if isinstance(value, (int, float)) else float(p.default or 0))
            w.editingFinished.connect(lambda: commit(w.value()))
        elif p.kind == "bool":
            w = QtWidgets.QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(lambda v: commit(bool(v)))
        else:
            w = QtWidgets.QComboBox()
            w.addItems(list(p.choices))
            w.setCurrentText(str(value))
            w.currentTextChanged.connect(commit)
        return w

    # -- presets, files, training -------------------------------------------------------------------------
    def load_preset(self, name: str) -> None:
        """Show the preset ``name``. A network edited and not saved stays kept on disk (and comes back when the
        builder opens next) though the preset replaces it here: see :meth:`_replacing`."""
        try:
            spec = S.load_preset(name)
        except S.SpecError as exc:
            self.show_message(str(exc), error=True)
            return
        with self._replacing() as kept:
            self.set_spec(spec, f"load preset {name}")
            self.undo_stack.setClean()  # (a preset as it is: nothing of the user's to keep)
        self.preset_combo.setCurrentText(name)
        self.path = None
        self.show_message(f"Loaded preset {name}: {spec.description}" + kept.note)

    @contextmanager
    def _replacing(self) -> Iterator[_Kept]:
        """Another network (a preset, a file) replaces the one on show. One edited and not saved was let go
        before (its file deleted: closing the app then lost it, and only Undo brought it back until then);
        it now stays kept until a network is saved or another is edited (one file holds the last unsaved
        network), and the message says so (only when the file holds what was on show: a write that failed
        was said at the time). A lecture's step that loads a preset relies on it too."""
        held = self.unsaved_path().is_file()  # (also from before, the network on show being a preset loaded since)
        kept = _Kept(held and self._kept_written and not self.undo_stack.isClean())
        self._holding_kept = held
        try:
            yield kept
        finally:
            self._holding_kept = False

    def choose_open(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a network", "", "Network spec (*.json)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> bool:
        """Open a spec file; an unreadable or invalid file shows the message and keeps the current network."""
        try:
            spec = S.load_spec(path)
        except (S.SpecError, OSError) as exc:
            self.show_message(f"Could not open {path}: {exc}", error=True)
            return False
        with self._replacing() as kept:
            self.set_spec(spec, f"open {Path(path).name}")
            self.undo_stack.setClean()
        self.path = Path(path)
        info = S.infer(spec)
        if info.valid:
            self.show_message(f"Opened {path}." + kept.note)
        else:
            self.show_message(f"Opened {path}; it is not valid yet: {info.first_error}." + kept.note, error=True)
        return True

    def choose_save(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the network", str(self.path or "network.json"),
                                                        "Network spec (*.json)")
        if path:
            self.save_file(path)

    def save_file(self, path: str | Path) -> bool:
        try:
            S.save_spec(self.spec, path)
        except (OSError, S.SpecError) as exc:
            self.show_message(f"Could not save {path}: {exc}", error=True)
            return False
        self.path = Path(path)
        self.undo_stack.setClean()
        kept = self.unsaved_path()
        try:
            kept.unlink(missing_ok=True)  # saved: the file is the user's now, nothing unsaved to keep
        except OSError as exc:
            self.show_message(f"Saved {path}; the unsaved copy kept in {kept} could not be removed: {exc}",
                              error=True)
            return True
        self._kept_written = False
        self.show_message(f"Saved {path}.")
        return True

    def choose_export(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export as a PyTorch file", "network.py",
                                                        "Python (*.py)")
        if path:
            self.export_file(path)

    def export_file(self, path: str | Path) -> bool:
        from explorer.core.atomic import atomic_write_text

        try:
            atomic_write_text(path, S.export_source(self.spec))
        except (OSError, S.SpecError) as exc:
            self.show_message(f"Could not export: {exc}", error=True)
            return False
        self.show_message(f"Exported a standalone PyTorch module to {path}.")
        return True

    def train(self) -> None:
        if not self.info.valid:
            self.show_message(f"Cannot train: {self.info.first_error}", error=True)
            return
        refused = self.refusal()
        if refused:
            self.show_message(f"Cannot train this network as {self.spec.family}: {refused}", error=True)
            return
        self.sigTrain.emit(self.trained_spec())

    def trained_spec(self) -> S.NetworkSpec:
        """The network as Train hands it on: a preset edited here is named so ("lenet5, edited"). It trained
        under the preset's own name, "CNN lenet5 (62,558 parameters)", though LeNet-5 has 61,706."""
        spec = self.spec.copy()
        if spec.name in S.PRESETS and S.spec_to_dict(spec) != S.spec_to_dict(S.load_preset(spec.name)):
            spec.name = f"{spec.name}, edited"
        return spec


class BuilderWindow(QtWidgets.QMainWindow):
    """The builder in a window of its own, opened from the main window (Ctrl+B)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Network Explorer — architecture builder")
        self.setObjectName("builderWindow")
        self.builder = ArchitectureBuilder()
        self.setCentralWidget(self.builder)
        self.fit_screen()
        self.builder.restore_unsaved()

    def fit_screen(self) -> None:
        """1400x850, or less on a smaller screen, centred on it: at 1400x850 the Train button of a window
        opened on a 1366x768 laptop was off the screen. Room is left for the window's frame and title."""
        parent = self.parentWidget()
        screen = (parent.screen() if parent is not None else None) or QtGui.QGuiApplication.primaryScreen()
        room = screen.availableGeometry()
        size = QtCore.QSize(min(BUILDER_SIZE.width(), room.width() - FRAME_ROOM.width()),
                            min(BUILDER_SIZE.height(), room.height() - FRAME_ROOM.height()))
        self.resize(size.expandedTo(self.minimumSizeHint()).boundedTo(room.size()))
        self.move(room.center() - self.rect().center())
