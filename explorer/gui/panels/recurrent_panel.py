"""The recurrent panels: an LSTM's gates over time, live, and the long-term dependency problem.

One panel class serves both families; :class:`LSTMPanel` and :class:`RNNPanel` are thin subclasses.
The views show one probe sequence (a held-out sequence, or a stretch of held-out text):

* unit x time heatmaps of f_t, i_t, o_t, c~_t, c_t and s_t (the RNN: s_t only); a click on a row
  selects that unit, whose values over time are drawn as lines;
* the probe's input, target and output (with an intervention, the output without it dashed);
* histograms of the gate values on held-out sequences, with the share that is saturated;
* ||dL/ds_t|| against distance back in time for an LSTM and an RNN on the same task (log scale);
* text: each character coloured by the chosen unit, and a generated sample with a temperature slider;
* interventions (forget-gate bias, clamp a gate, zero a cell unit) that act at once on the probe views.

The GUI never touches the model: interventions and the temperature are settings applied between
training steps (``session.set_hparams``), followed by a snapshot request.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import cast

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.core.data.sequence_tasks import TASK_HELP, TASKS
from explorer.core.engine.protocol import Session
from explorer.core.engine.session import Snapshot
from explorer.core.families.recurrent.trainer import NEEDS_RESET, OPTIMIZERS, LSTMConfig, RecurrentConfig, RNNConfig
from explorer.gui.panels.base import DockSpec, LivePanel, bring_forward, settings_scroll, squeezable
from explorer.gui.widgets.hover import fmt
from explorer.gui.widgets.sequence_views import ColouredTextView, TraceView, UnitHeatmapView
from explorer.gui.widgets.settings_form import SettingsForm
from explorer.gui.widgets.views import CurveView, TitleRows

GATE_TITLES = {
    "f": "Forget gate f<sub>t</sub>", "i": "Input gate i<sub>t</sub>", "o": "Output gate o<sub>t</sub>",
    "c_tilde": "Candidate c~<sub>t</sub>", "c": "Cell state c<sub>t</sub>", "s": "Hidden state s<sub>t</sub>",
}
RNN_TITLE = "Hidden state s<sub>t</sub>"
GATE_NOTES = {"f": ": 1 keeps c<sub>t-1</sub>, 0 forgets it", "i": ": how much of c~<sub>t</sub> is written",
              "o": "", "c_tilde": ", in [-1, 1]"}


def gate_equation(g: str, bias: bool) -> str:
    """The lecture's equation of LSTM gate ``g`` (f, i, o, c_tilde), with its bias b_g when the model learns
    biases (the lecture's cell has none; the ``lstm`` preset and Settings > Biases add them)."""
    name = "c~" if g == "c_tilde" else g
    sub = "c" if g == "c_tilde" else g
    fn = "tanh" if g == "c_tilde" else "σ"
    b = f" + b<sub>{sub}</sub>" if bias else ""
    return (f"{name}<sub>t</sub> = {fn}(U<sub>{sub}</sub> x<sub>t</sub> + W<sub>{sub}</sub> s<sub>t-1</sub>{b})")


def rnn_equation(bias: bool) -> str:
    return f"s<sub>t</sub> = tanh(U x<sub>t</sub> + W s<sub>t-1</sub>{' + b' if bias else ''})"


def state_caption(g: str, model: str, bias: bool) -> str:
    """The caption of the heatmap of ``g`` for an LSTM or an RNN (``model``), with or without biases."""
    if model != "lstm":
        return rnn_equation(bias) + ", the same U, W at every step; output o<sub>t</sub> = V s<sub>t</sub>"
    if g == "c":
        return ("c<sub>t</sub> = f<sub>t</sub> ∘ c<sub>t-1</sub> + i<sub>t</sub> ∘ c~<sub>t</sub> "
                "(∘: entry-wise; colour scale follows max |c|)")
    if g == "s":
        return "s<sub>t</sub> = o<sub>t</sub> ∘ tanh(c<sub>t</sub>)"
    return gate_equation(g, bias) + GATE_NOTES[g]


PROBE_CAPTIONS = {
    "adding": "Input x<sub>t</sub>: a value and a marker at every step; the target is the sum of the two marked "
              "values; the output o<sub>t</sub> = V s<sub>t</sub> is read at the last step only.",
    "recall": "The input channel of the symbol shown at t = 0, and the probability p(symbol) the network gives at "
              "every step; only the answer at the cue counts.",
    "sine": "Input x<sub>t</sub>, target x<sub>t+1</sub> and the output o<sub>t</sub> = V s<sub>t</sub>: "
            "forecasting one step ahead at every step.",
    "text": "The probability the network gives the character that really comes next, at each step of the "
            "held-out text.",
}
PROBE_CAPTIONS["sawtooth"] = PROBE_CAPTIONS["sine"]
PROBE_CAPTION = ("The probe sequence (Settings > Probe sequence): its input, the target and the output "
                 "o<sub>t</sub> = V s<sub>t</sub> at every step; with an intervention, the output without it dotted.")
GATE_COLOURS = {"f": "#4fc3f7", "i": "#a3be8c", "o": "#ffb74d", "c_tilde": "#b48ead", "c": "#bf616a", "s": "#e5e9f0"}
HEATMAP_MIN_PX = 120   # an LSTM gate heatmap's least height in the grid
TRACE_MIN_PX = 90      # the chosen unit's and the gradient's plots, at least, with their axes
TEXT_MIN_LINES = 6     # the coloured text's least height, in lines
SAMPLE_MIN_LINES = 4   # the generated sample's
GATE_LABELS = {"f": "f", "i": "i", "o": "o", "c_tilde": "c~", "c": "c", "s": "s"}


class RecurrentSettings(SettingsForm):
    sigChooseTextFile = QtCore.Signal()

    def __init__(self, config: RecurrentConfig, parent=None):
        super().__init__(NEEDS_RESET, parent)
        self.setObjectName(f"{config.model}Settings")
        form = self.form
        self.section("Task")
        self.task = QtWidgets.QComboBox()
        self.task.addItems(list(TASKS))
        for i, name in enumerate(TASKS):
            self.task.setItemData(i, TASK_HELP[name], QtCore.Qt.ItemDataRole.ToolTipRole)
        form.addRow("Task", self.task)
        self.length = self.int_row("Length T / lag", 0, 2000)
        self.length.setToolTip("Steps per sequence (adding, sine, sawtooth, text chunks); for delayed recall the "
                               "lag between the symbol and the cue")
        file_row = QtWidgets.QHBoxLayout()
        self.text_file = QtWidgets.QLabel("(Python's standard library)")
        self.text_file.setObjectName("textFile")
        self.text_file.setMinimumWidth(60)
        self.text_file.setWordWrap(True)
        self.choose_text = QtWidgets.QPushButton("…")
        self.choose_text.setMaximumWidth(36)
        self.choose_text.setToolTip("Train the language model on a UTF-8 text file of your own")
        self.choose_text.clicked.connect(self.sigChooseTextFile)
        self.builtin_text = QtWidgets.QPushButton("built-in")
        self.builtin_text.setToolTip("Back to the bundled corpus: Python standard library sources")
        self.builtin_text.clicked.connect(lambda: self.set_text_file(None))
        file_row.addWidget(self.text_file, 1)
        file_row.addWidget(self.choose_text)
        file_row.addWidget(self.builtin_text)
        form.addRow("Text file", file_row)
        self.section("Network")
        self.hidden = self.int_row("Hidden units", 1, 4096)
        self.bias = QtWidgets.QCheckBox("learn biases (the lecture has none)")
        form.addRow("Biases", self.bias)
        self.optimizer = QtWidgets.QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        form.addRow("Optimiser", self.optimizer)
        self.seed = self.int_row("Seed", 0, 2**31 - 1)
        self.section("Training (applies live)")
        self.lr = self.float_row("Learning rate", 0.0001, 10.0, decimals=4, step=0.001)
        self.batch_size = self.int_row("Batch size", 1, 4096)
        self.clip = self.float_row("Clip ‖gradient‖ at", 0.0, 1000.0, step=0.5)
        self.clip.setSpecialValueText("off")
        self.compare_every = self.int_row("Train the other kind every", 0, 1000)
        self.compare_every.setSpecialValueText("off")
        self.compare_every.setSuffix(" steps")
        self.compare_every.setToolTip("Train an RNN (for the LSTM panel; an LSTM for the RNN panel) alongside on the "
                                      "same mini-batches, one update every N steps: its gradient curve and "
                                      "held-out loss are shown next to this model's")
        self.probe_index = self.int_row("Probe sequence", 0, 100000)
        self.probe_index.setToolTip("Which held-out sequence (or stretch of held-out text) the views show")
        self.add_reset_rows()
        self._text_path: str | None = None
        self.set_config(config)
        self.connect_editors()

    def _widgets(self) -> dict[str, QtWidgets.QWidget]:
        return {"task": self.task, "length": self.length, "hidden": self.hidden, "bias": self.bias,
                "optimizer": self.optimizer, "seed": self.seed, "lr": self.lr, "batch_size": self.batch_size,
                "clip": self.clip, "compare_every": self.compare_every, "probe_index": self.probe_index}

    def set_config(self, config) -> None:
        super().set_config(config)
        self._show_text_file(config.text_file)

    def _show_text_file(self, path: str | None) -> None:
        self._text_path = path
        self.text_file.setText(path or "(Python's standard library)")
        self.text_file.setToolTip(path or "Sources of a few pure-Python standard library modules")

    def set_text_file(self, path: str | None) -> None:
        """Use ``path`` (None: the built-in corpus) for the text task; it waits for Reset like the task."""
        self._show_text_file(path)
        self._changed("text_file", path)
        if self.task.currentText() != "text":
            self.task.setCurrentText("text")


class InterventionsBox(QtWidgets.QWidget):
    """Forget-gate bias, clamp a gate, zero a cell unit: each change is emitted as (setting, value)."""

    sigChanged = QtCore.Signal(str, object)

    def __init__(self, model: str, parent=None):
        super().__init__(parent)
        self.setObjectName(f"{model}Interventions")
        form = QtWidgets.QFormLayout(self)
        note = QtWidgets.QLabel("Act on the probe views and the output shown, at once; training is not affected.")
        note.setWordWrap(True)
        note.setObjectName("viewCaption")
        form.addRow(note)
        self.use_forget_bias = QtWidgets.QCheckBox("set b_f to")
        self.forget_bias = QtWidgets.QDoubleSpinBox()
        self.forget_bias.setRange(-20.0, 20.0)
        self.forget_bias.setSingleStep(0.5)
        self.forget_bias.setValue(-3.0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.use_forget_bias)
        row.addWidget(self.forget_bias, 1)
        form.addRow("Forget-gate bias", row)
        self.clamp_gate = QtWidgets.QComboBox()
        self.clamp_gate.addItems(["none", "f", "i", "o"])
        self.clamp_value = QtWidgets.QDoubleSpinBox()
        self.clamp_value.setRange(0.0, 1.0)
        self.clamp_value.setSingleStep(0.1)
        self.clamp_value.setValue(1.0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.clamp_gate)
        row.addWidget(QtWidgets.QLabel("to"))
        row.addWidget(self.clamp_value, 1)
        form.addRow("Clamp gate", row)
        self.zero_unit = QtWidgets.QSpinBox()
        self.zero_unit.setRange(-1, 4095)
        self.zero_unit.setSpecialValueText("none")
        self.zero_selected = QtWidgets.QPushButton("selected unit")
        self.zero_selected.setToolTip("Zero the unit selected in the heatmaps")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.zero_unit, 1)
        row.addWidget(self.zero_selected)
        form.addRow("Zero cell c" if model == "lstm" else "Zero unit s", row)
        self.clear = QtWidgets.QPushButton("Clear interventions")
        form.addRow(self.clear)
        if model != "lstm":  # an RNN has no gates
            for w in (self.use_forget_bias, self.forget_bias, self.clamp_gate, self.clamp_value):
                w.setEnabled(False)
                w.setToolTip("a vanilla RNN has no gates")
        self.use_forget_bias.toggled.connect(lambda _v: self._emit_forget_bias())
        self.forget_bias.valueChanged.connect(lambda _v: self._emit_forget_bias())
        self.clamp_gate.currentTextChanged.connect(lambda v: self.sigChanged.emit("clamp_gate", v))
        self.clamp_value.valueChanged.connect(lambda v: self.sigChanged.emit("clamp_value", float(v)))
        self.zero_unit.valueChanged.connect(lambda v: self.sigChanged.emit("zero_unit", int(v)))
        self.clear.clicked.connect(self.clear_all)

    def _emit_forget_bias(self) -> None:
        self.sigChanged.emit("forget_bias", float(self.forget_bias.value()) if self.use_forget_bias.isChecked()
                             else None)

    def clear_all(self) -> None:
        self.use_forget_bias.setChecked(False)
        self.clamp_gate.setCurrentText("none")
        self.zero_unit.setValue(-1)

    def set_config(self, cfg: RecurrentConfig) -> None:
        widgets = (self.use_forget_bias, self.forget_bias, self.clamp_gate, self.clamp_value, self.zero_unit)
        for w in widgets:
            w.blockSignals(True)
        self.use_forget_bias.setChecked(cfg.forget_bias is not None)
        if cfg.forget_bias is not None:
            self.forget_bias.setValue(cfg.forget_bias)
        self.clamp_gate.setCurrentText(cfg.clamp_gate)
        self.clamp_value.setValue(cfg.clamp_value)
        self.zero_unit.setMaximum(cfg.hidden - 1)
        self.zero_unit.setValue(cfg.zero_unit)
        for w in widgets:
            w.blockSignals(False)


class RecurrentPanel(LivePanel):
    family = "lstm"
    right_split = (0.26, 0.4)  # the chosen unit's trace; the probe sequence and the text, which needs lines
    presentation_docks = ("lstmUnitsDock", "lstmCurvesDock")
    presentation_split = (0.53, 0.47)  # the chosen unit's trace has its unit box above it
    bottom_share = 0.28  # the six gate and state heatmaps in the middle need the height
    title = "LSTM: gates over time"
    config_cls: type = LSTMConfig

    def __init__(self, config: RecurrentConfig, parent=None):
        super().__init__(RecurrentSettings(config), parent)
        fam = self.family
        self.is_lstm = fam == "lstm"
        self.gate_names = ("f", "i", "o", "c_tilde", "c", "s") if self.is_lstm else ("s",)
        # -- gate heatmaps (the central view) --
        self.heatmaps: dict[str, UnitHeatmapView] = {}
        for g in self.gate_names:
            title = GATE_TITLES[g] if self.is_lstm else RNN_TITLE
            caption = state_caption(g, fam, config.bias)
            signed = g in ("c_tilde", "c", "s")
            view = UnitHeatmapView(title, caption, levels=(-1.0, 1.0) if signed else (0.0, 1.0),
                                   colormap="CET-D1" if signed else "viridis")
            view.title.setTextFormat(QtCore.Qt.TextFormat.RichText)
            view.sigUnitClicked.connect(self.select_unit)
            view.set_hover_text(lambda info, g=g: self.gate_text(g, info))
            if self.is_lstm:  # six in a grid: each keeps a readable height (at 1366x768 they were 25-60 px)
                view._body.setMinimumHeight(HEATMAP_MIN_PX)
            self.heatmaps[g] = view
        # the heatmaps in a 2 x 3 grid; in presentation mode in two tabs of three (gates, then candidate and
        # states), each a row the central view's whole height (in the grid, large type left them 120 px tall)
        self._grid = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(self._grid)
        outer.setContentsMargins(0, 0, 0, 0)
        self._grid_page = QtWidgets.QWidget()
        self._grid_layout = QtWidgets.QGridLayout(self._grid_page)
        self._grid_layout.setContentsMargins(0, 0, 0, 0)
        for column in range(3):  # equal shares, whatever their titles' lengths
            self._grid_layout.setColumnStretch(column, 1)
        outer.addWidget(self._grid_page)
        self._gate_tabs = QtWidgets.QTabWidget()
        self._gate_tabs.setObjectName("gateTabs")
        self._gate_tabs.setDocumentMode(True)
        self._gate_tabs.currentChanged.connect(self._gate_tab_changed)
        self._gate_tabs.hide()
        outer.addWidget(self._gate_tabs)
        self._presenting = self._short = self._placed = False
        self._place_heatmaps(tabs=False)
        names = list(self.gate_names)  # (rows of three, in the grid and in the tabs alike)
        self._title_rows = TitleRows(lambda: [[self.heatmaps[g] for g in names[i:i + 3]] for i in (0, 3)], self)
        self._title_rows.watch(self.heatmaps.values())
        # -- docks --
        self.unit_spin = QtWidgets.QSpinBox()
        self.unit_spin.setObjectName("unitSpin")
        self.unit_spin.setRange(0, max(0, config.hidden - 1))
        self.unit_spin.setToolTip("The unit drawn as lines and colouring the text (or click a heatmap row)")
        self.unit_spin.valueChanged.connect(self.select_unit)
        cell = ("; the cell state as tanh(c_t), the part s_t sees" if "c" in self.gate_names
                else "; s_t = tanh(U x_t + W s_(t-1))")  # a vanilla RNN has no cell state
        self.units = TraceView("Chosen unit over time",
                               "The selected unit's values along the probe sequence (click a heatmap row to "
                               f"choose another){cell}.", ylabel="value")
        for g in self.gate_names:
            label = "tanh(c_t)" if g == "c" else GATE_LABELS[g] + "_t"
            self.units.add_series(g, label, GATE_COLOURS[g], width=2)
        # (at 1366x768 its plot was 20 px; then, kept at 90, drawn over its caption's first line)
        self.units.keep_plot_height(TRACE_MIN_PX)
        unit_box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(unit_box)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Unit"))
        row.addWidget(self.unit_spin)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.units, 1)
        self._unit_box = unit_box
        self.io = TraceView("Probe: input, target, output", PROBE_CAPTION, ylabel="")
        self.io.add_series("input", "input", "#5c6b80", width=1.5)
        self.io.add_series("marker", "marked values", "#ebcb8b", width=0, symbol="o")
        self.io.add_series("target", "target", "#a3be8c", width=2, style=QtCore.Qt.PenStyle.DashLine)
        self.io.add_series("output_clean", "output without intervention", "#9aa5b5", width=1.5,
                           style=QtCore.Qt.PenStyle.DotLine)
        self.io.add_series("output", "output o_t = V s_t", "#ffb74d", width=2.5)
        self.hist = TraceView("Gate saturation" if self.is_lstm else "Hidden state saturation",
                              "Distribution of the values on held-out sequences; saturated: σ < 0.05 or σ > 0.95 "
                              "(tanh: |v| > 0.9), where the derivative is ≈ 0 and almost no gradient passes.",
                              xlabel="value", ylabel="share")
        for g in ("f", "i", "o", "c_tilde") if self.is_lstm else ("s",):
            self.hist.add_series(g, GATE_LABELS[g], GATE_COLOURS[g], width=2, step=True, fill=True)
        self.grads = TraceView("‖∂L/∂s_t‖ against distance back in time (log scale)",
                               "BPTT over 16 held-out sequences. Each step back, the RNN multiplies it by "
                               "W<sup>T</sup> diag(tanh'(net<sub>t</sub>)) (a matrix product with a diagonal matrix, "
                               "not entry-wise): it shrinks geometrically. The LSTM's cell path c<sub>t</sub> = "
                               "f<sub>t</sub> ∘ c<sub>t-1</sub> + … multiplies by f<sub>t</sub>: kept while f ≈ 1.",
                               xlabel="distance T − t (steps back)", ylabel="‖∂L_T/∂s_t‖", logy=True)
        self.grads.keep_plot_height(TRACE_MIN_PX)  # (at 1366x768 its plot was 30 px under the caption)
        self.grads.add_series("lstm", "LSTM", "#4fc3f7", width=2.5)
        self.grads.add_series("rnn", "RNN", "#bf616a", width=2.5)
        self.curves = CurveView("Loss", "Training loss per step, and on training and held-out sequences; the "
                                "baseline is the best prediction that ignores the input.", ylabel="loss")
        self.curves.add_series("loss", "training loss (per step)", "#5c6b80", width=1, per_step=True)
        self.curves.add_series("train", "training", "#4fc3f7", width=2.5, symbol="o")
        self.curves.add_series("heldout", "held-out", "#ffb74d", width=2.5, symbol="s")
        self.curves.add_series("compare", f"held-out, {'RNN' if self.is_lstm else 'LSTM'} trained alongside",
                               "#bf616a", width=2, symbol="t")
        self.curves.add_series("baseline", "trivial baseline", "#a3be8c", width=1.5, style=QtCore.Qt.PenStyle.DashLine)
        # text: coloured characters, the generated sample, the temperature
        self.text_source = QtWidgets.QComboBox()
        self.text_source.addItems([GATE_LABELS[g] for g in self.gate_names])
        self.text_source.setCurrentText("c" if self.is_lstm else "s")
        self.text_source.currentTextChanged.connect(lambda _t: self._redraw_unit_views())
        self.coloured = ColouredTextView("Held-out text coloured by the chosen unit",
                                         "Red: positive, blue: negative (scaled by the largest |value| in the "
                                         "probe). Look for units that follow quotes, brackets, indentation or "
                                         "line length.")
        self.temperature = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.temperature.setObjectName("temperatureSlider")
        self.temperature.setRange(0, 200)
        self.temperature.setValue(int(round(config.temperature * 100)))
        self.temperature.setToolTip("softmax(o_t / T): low T picks the likeliest character, high T is more random")
        self.temperature_label = QtWidgets.QLabel("")
        self.temperature.valueChanged.connect(self._on_temperature)
        self.sample = QtWidgets.QPlainTextEdit()
        self.sample.setObjectName("generatedSample")
        self.sample.setReadOnly(True)
        from explorer.gui.widgets.views import monospace_font

        self.sample.setFont(monospace_font(11))
        self.sample_title = QtWidgets.QLabel("Generated text")
        self.sample_title.setObjectName("viewTitle")
        text_box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(text_box)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Colour by"))
        row.addWidget(self.text_source)
        row.addStretch(1)
        lay.addLayout(row)
        # a few lines of each text at the least (at 1366x768 they showed two): the tab scrolls below that
        lines = self.coloured.text.fontMetrics().lineSpacing()
        self.coloured.text.setMinimumHeight(TEXT_MIN_LINES * lines + 8)
        self.sample.setMinimumHeight(SAMPLE_MIN_LINES * self.sample.fontMetrics().lineSpacing() + 8)
        lay.addWidget(self.coloured, 3)
        lay.addWidget(self.sample_title)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Temperature"))
        row.addWidget(self.temperature, 1)
        row.addWidget(self.temperature_label)
        lay.addLayout(row)
        lay.addWidget(self.sample, 2)
        self._text_box = text_box
        self.interventions = InterventionsBox(fam)
        self.interventions.sigChanged.connect(self._on_intervention)
        self.interventions.zero_selected.clicked.connect(lambda: self.interventions.zero_unit.setValue(self.unit))
        self.settings.sigChooseTextFile.connect(self.choose_text_file)
        self.unit = 0
        self._bias = bool(config.bias)
        self._last: dict | None = None
        self._probe_id = None
        self._drawn_probe: dict[str, int] = {}  # view group -> the probe it last drew (hidden ones draw when shown)
        self._on_temperature(self.temperature.value(), send=False)

    # -- layout ------------------------------------------------------------------------------------------
    def central_widget(self) -> QtWidgets.QWidget:
        return self._central(self._grid)

    def _place_heatmaps(self, tabs: bool) -> None:
        """The heatmaps in the grid, or (``tabs``, with more than three) in tabs of three, a row each."""
        names = list(self.gate_names)
        tabs = tabs and len(names) > 3
        if tabs:
            while self._gate_tabs.count() < 2:
                page = QtWidgets.QWidget()
                QtWidgets.QHBoxLayout(page).setContentsMargins(0, 0, 0, 0)
                self._gate_tabs.addTab(page, "")
            for i, (label, group) in enumerate((("Gates f, i, o", names[:3]), ("c~, c, s", names[3:]))):
                self._gate_tabs.setTabText(i, label)
                row = cast(QtWidgets.QHBoxLayout, self._gate_tabs.widget(i).layout())
                for g in group:  # (equal shares: by their size hints, a heatmap whose title wrapped took 1/2)
                    row.addWidget(self.heatmaps[g], 1)
            self._gate_tab_changed(self._gate_tabs.currentIndex())
        else:
            for k, g in enumerate(names):
                self._grid_layout.addWidget(self.heatmaps[g], k // 3, k % 3)
        self._gate_tabs.setVisible(tabs)
        self._grid_page.setVisible(not tabs)

    def _gate_tab_changed(self, index: int) -> None:
        # only the tab on show asks for room: a page last measured in presentation mode's large type kept
        # the window wider than a 1366 px screen (Qt measures a hidden page lazily)
        policy = QtWidgets.QSizePolicy.Policy
        for i in range(self._gate_tabs.count()):
            shown = policy.Preferred if i == index else policy.Ignored
            self._gate_tabs.widget(i).setSizePolicy(shown, shown)
        self.redraw_shown()

    def set_presenting(self, on: bool) -> None:
        self._presenting = on
        self._arrange_heatmaps(again=True)  # (the type changed: the views laid out afresh, the hidden ones caught up)

    def set_short(self, short: bool) -> None:
        # at 1366x768 the 2 x 3 grid left each heatmap about 70 px under its title and caption: in a short
        # window they go in the two tabs of three, a row the central view's height, as in presentation mode
        self._short = short
        self._arrange_heatmaps()

    def _arrange_heatmaps(self, again: bool = False) -> None:
        tabs = self._presenting or self._short
        if tabs == self._gate_tabs.isVisibleTo(self._grid) and self._placed and not again:
            return
        self._placed = True
        self._place_heatmaps(tabs=tabs)
        self.redraw_shown()  # the heatmaps hidden while another tab was on show catch up

    def dock_specs(self) -> list[DockSpec]:
        A = QtCore.Qt.DockWidgetArea
        f = self.family
        return [
            DockSpec(f"{f}SettingsDock", "Settings", settings_scroll(self.settings), A.LeftDockWidgetArea),
            DockSpec(f"{f}InterventionsDock", "Interventions", self.interventions, A.LeftDockWidgetArea),
            DockSpec(f"{f}UnitsDock", "Chosen unit", self._unit_box, A.RightDockWidgetArea),
            DockSpec(f"{f}ProbeDock", "Probe sequence", self.io, A.RightDockWidgetArea),
            # (scrolls when squeezed: as the tab's minimum it held the probe dock at 300 px and more)
            DockSpec(f"{f}TextDock", "Text", squeezable(self._text_box), A.RightDockWidgetArea,
                     tab_with=f"{f}ProbeDock"),
            DockSpec(f"{f}CurvesDock", "Loss", self.curves, A.BottomDockWidgetArea),
            DockSpec(f"{f}GradientsDock", "Gradient vs distance", self.grads, A.BottomDockWidgetArea),
            DockSpec(f"{f}SaturationDock", "Saturation", self.hist, A.BottomDockWidgetArea),
        ]

    def attach(self, session: Session) -> None:
        super().attach(session)
        cfg = session.trainer.config
        self.show_config(cfg)
        self.interventions.set_config(cfg)
        self.unit_spin.setMaximum(cfg.hidden - 1)
        self.temperature.blockSignals(True)
        self.temperature.setValue(int(round(cfg.temperature * 100)))
        self.temperature.blockSignals(False)
        self._on_temperature(self.temperature.value(), send=False)

    def show_config(self, cfg: RecurrentConfig) -> None:
        """The captions follow the model trained: its gate equations with biases when it learns them."""
        self._bias = bool(cfg.bias)
        for g, view in self.heatmaps.items():
            view.set_caption(state_caption(g, self.family, self._bias))

    def new_run(self, session: Session) -> None:
        """After a reset (perhaps another task, size or biases): no view keeps the last run's picture. Those
        on show redraw from the new run's first snapshot; the hidden ones are cleared now and drawn when shown."""
        self.show_config(session.trainer.config)
        self._last = None
        self._probe_id = None
        self._drawn_probe.clear()
        for key in list(self.io._items):
            self.io.clear_series(key)
        self.io.title.setText("Probe: input, target, output")
        self.io.set_caption(PROBE_CAPTION)
        for key in list(self.units._items):
            self.units.clear_series(key)
        for key in list(self.hist._items):
            self.hist.clear_series(key)
        self.coloured.show_hint("")
        self.sample.setPlainText("")

    # -- user actions ----------------------------------------------------------------------------------------
    def select_unit(self, unit: int) -> None:
        unit = int(unit)
        if unit == self.unit and self.unit_spin.value() == unit:
            return
        self.unit = unit
        if self.unit_spin.value() != unit:
            self.unit_spin.blockSignals(True)
            self.unit_spin.setValue(unit)
            self.unit_spin.blockSignals(False)
        self._redraw_unit_views()

    def _send(self, **changes) -> None:
        s = self.session
        if s is not None:
            s.set_hparams(**changes)
            s.request_snapshot()
            self.go_live()  # what the user just asked for shows in the live views

    def _on_intervention(self, key: str, value) -> None:
        self._send(**{key: value})

    def _on_temperature(self, value: int, send: bool = True) -> None:
        t = value / 100.0
        self.temperature_label.setText(f"{t:.2f}" + (" (greedy)" if t < 0.01 else ""))
        if send:
            self._send(temperature=t)

    def choose_text_file(self, path: str | None = None) -> None:
        if not path:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(None, "A UTF-8 text file for the language model")
        if path:
            self.settings.set_text_file(path)

    def use_data_folder(self, path: str) -> None:
        """File > Open data folder: the recurrent tasks read a text file instead (Settings > Text file)."""
        self.settings.pending_label.setText("The recurrent tasks take a text file, not a folder: use Text file … "
                                            "in the settings.")

    # -- feeding ---------------------------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.curves.clear_data()

    def add_metrics(self, steps: list[dict], evals: list[dict]) -> None:
        rows = [r for r in steps if "loss" in r]
        if rows:
            self.curves.append("loss", [r["step"] for r in rows], [r["loss"] for r in rows])
        if evals:
            xs = [r["step"] for r in evals]
            self.curves.append("train", xs, [r.get("train_loss", np.nan) for r in evals])
            self.curves.append("heldout", xs, [r.get("heldout_loss", np.nan) for r in evals])
            self.curves.append("baseline", xs, [r.get("baseline", np.nan) for r in evals])
            cmp_rows = [r for r in evals if "compare_heldout_loss" in r]
            if cmp_rows:
                self.curves.append("compare", [r["step"] for r in cmp_rows],
                                   [r["compare_heldout_loss"] for r in cmp_rows])
        if rows or evals:
            self.curves.redraw()

    def stats_parts(self, s: Session) -> list[str]:
        parts = []
        ev = s.metrics.evals[-1] if s.metrics.evals else {}
        if "heldout_loss" in ev:
            # significant digits: a trained LSTM's loss on the adding problem (4e-05) read "0.0000" at four places
            parts.append(f"held-out loss {fmt(ev['heldout_loss'], 3)} (baseline {fmt(ev.get('baseline', float('nan')), 3)})")
        if "heldout_accuracy" in ev:
            parts.append(f"held-out accuracy {ev['heldout_accuracy']:.3f}")
        if "compare_heldout_loss" in ev:
            other = "RNN" if self.is_lstm else "LSTM"
            parts.append(f"{other} alongside: {fmt(ev['compare_heldout_loss'], 3)}")
        return parts

    def show_snapshot(self, snap: Snapshot) -> None:
        for part in self.snapshot_parts(snap):
            part()

    def snapshot_parts(self, snap: Snapshot) -> list[Callable[[], None]]:
        """The heatmaps, the probe plot, the saturation histograms, the chosen unit's traces, then the
        gradient curve and the sample: about 5-12 ms of painting each, 30-40 ms together (see LivePanel)."""
        a = snap.arrays
        probe_id = id(a.get("s"))

        def begin() -> None:
            if self._last is None or a.get("task") != self._last.get("task"):
                # the text views share a tabbed place with the probe plot: bring forward the one that fits
                bring_forward(self._text_box if a.get("task") == "text" else self.io)
            self._last = a
            self._probe_id = probe_id

        def group(name: str, draw: Callable[[dict], bool]) -> Callable[[], None]:
            # each group of views draws a recomputed probe once, when it is on show (a hidden tab draws it
            # when brought forward, through redraw_shown: it kept the last task's picture before)
            def part() -> None:
                if self._drawn_probe.get(name) != probe_id and draw(a):
                    self._drawn_probe[name] = probe_id
            return part

        heatmaps = group("heatmaps", self._draw_heatmaps)

        def first() -> None:
            begin()
            heatmaps()

        def last() -> None:
            self._draw_grads(a)
            self._draw_sample(a)

        return [first, group("probe", self._draw_probe), group("hist", self._draw_hist),
                group("units", self._redraw_unit_views), last]

    # -- readouts under the mouse ---------------------------------------------------------------------------------
    def gate_text(self, g: str, info: dict) -> str:
        """Unit u at time t of gate ``g``: the lecture's equation, with the numbers of the probe shown."""
        u, t, v = int(info["y"]), int(info["col"]), float(info["value"])
        a = self._last or {}
        text = a.get("probe_text")
        head = f"unit <b>u = {u}</b>, time <b>t = {t}</b>"
        if text and t < len(text):
            ch = text[t]
            head += f", character {html.escape(repr(ch))}"

        def at(name: str, tt: int) -> float | None:
            m = a.get(name)
            return float(np.asarray(m)[u, tt]) if m is not None and 0 <= tt < np.asarray(m).shape[1] else None

        if not self.is_lstm:
            body = f"{rnn_equation(self._bias)} = <b>{fmt(v)}</b>"
        elif g in ("f", "i", "o"):
            name = {"f": "forget gate", "i": "input gate", "o": "output gate"}[g]
            body = f"{name}: {gate_equation(g, self._bias)} = <b>{fmt(v)}</b>"
        elif g == "c_tilde":
            body = f"candidate: {gate_equation(g, self._bias)} = <b>{fmt(v)}</b>"
        elif g == "c":
            f, i, ct = at("f", t), at("i", t), at("c_tilde", t)
            prev = at("c", t - 1) if t > 0 else 0.0
            body = "cell: c<sub>t</sub> = f<sub>t</sub> c<sub>t-1</sub> + i<sub>t</sub> c~<sub>t</sub>"
            if None not in (f, i, ct, prev):
                body += f"<br>&nbsp;&nbsp;= {fmt(f)} × {fmt(prev)} + {fmt(i)} × {fmt(ct)}"
            body += f" = <b>{fmt(v)}</b>"
        else:
            o, c = at("o", t), at("c", t)
            body = "hidden state: s<sub>t</sub> = o<sub>t</sub> tanh(c<sub>t</sub>)"
            if o is not None and c is not None:
                body += f" = {fmt(o)} × tanh({fmt(c)})"
            body += f" = <b>{fmt(v)}</b>"
        note = a.get("interventions")
        tail = f"<br><span style='color:#9aa5b5'>{html.escape(str(note))}</span>" if note else ""
        return f"{head}<br>{body}{tail}"

    # -- drawing -------------------------------------------------------------------------------------------------
    def _draw_heatmaps(self, a: dict | None = None) -> bool:
        a = self._last if a is None else a
        drawn = True
        for g, view in self.heatmaps.items():
            if g not in a:
                continue
            if not view.isVisible():
                drawn = False
                continue
            m = np.asarray(a[g])
            if g == "c":  # unbounded: the scale follows the 98th percentile of |c| (a few large cells saturate)
                top = float(max(1.0, np.ceil(np.percentile(np.abs(m), 98) * 2) / 2)) if m.size else 1.0
                if view.levels != (-top, top):
                    view.set_levels((-top, top))
            view.set_matrix(m)
            view.mark_row(self.unit if self.unit < m.shape[0] else None)
        return drawn

    def _redraw_unit_views(self, _a: dict | None = None) -> bool:
        a = self._last
        if a is None or "s" not in a:
            return False
        drawn = True
        n_units = np.asarray(a["s"]).shape[0]
        unit = min(self.unit, n_units - 1)
        for view in self.heatmaps.values():
            view.mark_row(unit)
        if self.units.isVisible():
            for g in self.gate_names:
                if g in a:
                    y = np.asarray(a[g])[unit]
                    if g == "c":  # unbounded; tanh(c_t) is what reaches s_t = o_t tanh(c_t)
                        y = np.tanh(y)
                    self.units.set_series(g, np.arange(len(y)), y)
            self.units.title.setText(f"Unit {unit} over time")
            self.units.done()
        else:
            drawn = False
        text = a.get("probe_text")
        if text and self.coloured.isVisible():
            key = {GATE_LABELS[g]: g for g in self.gate_names}.get(self.text_source.currentText(), "s")
            vals = np.asarray(a[key])[unit]
            # value at character k: the state after reading it (the probe's inputs are characters 0..n-2)
            scale = float(np.abs(vals).max()) if vals.size else 1.0
            self.coloured.set_values(text[:len(vals)], vals, scale if scale > 0 else 1.0)
            self.coloured.title.setText(f"Held-out text coloured by unit {unit}'s {GATE_LABELS[key]}_t "
                                        f"(max |value| {scale:.2f})")
        elif not text and self.coloured.isVisible():
            self.coloured.show_hint("Choose the text task (Settings > Task) to train a character-level language "
                                    "model and see its units here.")
        elif not self.coloured.isVisible():
            drawn = False
        return drawn

    def _draw_probe(self, a: dict) -> bool:
        if "probe_output" not in a:
            return True  # nothing to draw
        if not self.io.isVisible():
            return False
        task = a.get("task")
        self.io.set_caption(PROBE_CAPTIONS.get(task, PROBE_CAPTION))
        x_in = np.asarray(a["probe_input"])
        out = np.asarray(a["probe_output"])
        clean = np.asarray(a["probe_output_clean"])
        target = np.asarray(a["probe_target"])
        T = out.shape[0]
        t = np.arange(T)
        changed = bool(a.get("interventions"))
        for key in ("input", "marker", "target", "output", "output_clean"):
            self.io.clear_series(key)
        if task == "adding":
            self.io.set_series("input", t, x_in[:, 0])
            marked = np.nonzero(x_in[:, 1] > 0.5)[0]
            self.io.set_series("marker", marked, x_in[marked, 0])
            self.io.set_series("target", [0, T - 1], [float(target.reshape(-1)[0])] * 2)
            self.io.set_series("output", t, out[:, 0])
            if changed:
                self.io.set_series("output_clean", t, clean[:, 0])
            # (short: the caption says the rest; three lines of title left the plot 15 px at 1366x768)
            self.io.title.setText("Adding problem: the sum of the two marked values")
        elif task in ("sine", "sawtooth"):
            self.io.set_series("input", t, x_in[:, 0])
            self.io.set_series("target", t, target.reshape(T, -1)[:, 0])
            self.io.set_series("output", t, out[:, 0])
            if changed:
                self.io.set_series("output_clean", t, clean[:, 0])
            self.io.title.setText(f"{task.capitalize()} forecasting: input x_t, target x_t+1, output o_t")
        else:  # recall and text: probability of the right symbol / next character
            prob = np.asarray(a.get("probe_prob", np.zeros((T, 1))))
            prob_clean = np.asarray(a.get("probe_prob_clean", prob))
            if task == "recall":
                k = int(target.reshape(-1)[0])
                self.io.set_series("input", t, x_in[:, k])
                self.io.set_series("output", t, prob[:, k])
                if changed:
                    self.io.set_series("output_clean", t, prob_clean[:, k])
                sym = a.get("symbols") or []
                name = sym[k] if k < len(sym) else str(k)
                self.io.title.setText(f"Delayed recall: symbol {name} shown at t = 0 (input channel), "
                                      f"output p({name}) at every step — read at the cue, t = {T - 1}")
            else:
                idx = target.reshape(-1).astype(int)
                self.io.set_series("output", t, prob[t, idx])
                if changed:
                    self.io.set_series("output_clean", t, prob_clean[t, idx])
                self.io.title.setText("Text: probability the model gives the true next character")
        self.io.done()
        return True

    def _draw_hist(self, a: dict) -> bool:
        if not self.hist.isVisible():
            return False
        sat = np.asarray(a.get("saturation", []))
        names = ("f", "i", "o", "c_tilde") if self.is_lstm else ("s",)
        for k, g in enumerate(names):
            h = a.get(f"hist_{g}")
            if h is None:
                continue
            lo, hi = (-1.0, 1.0) if g in ("c_tilde", "s") else (0.0, 1.0)
            centres = lo + (np.arange(len(h)) + 0.5) * (hi - lo) / len(h)
            self.hist.set_series(g, centres, h)
            if k < len(sat):
                self.hist.set_label(g, f"{GATE_LABELS[g]}: {sat[k]:.0%} saturated")
        self.hist.done()
        return True

    def _draw_grads(self, a: dict) -> None:
        if not self.grads.isVisible() or "grad_lstm" not in a:
            return
        for kind in ("lstm", "rnn"):
            g = np.maximum(np.asarray(a[f"grad_{kind}"], dtype=float), 1e-30)
            self.grads.set_series(kind, np.arange(len(g)), g)
            n = int(a.get(f"grad_updates_{kind}", 0))
            mine = kind == self.family
            who = "this model" if mine else ("trained alongside" if n else "untrained")
            self.grads.set_label(kind, f"{kind.upper()} ({who}, {n} updates)")
        self.grads.done()

    def _draw_sample(self, a: dict) -> None:
        text = a.get("sample_text")
        if text is None:
            if self.sample.toPlainText():
                self.sample.setPlainText("")
            return
        shown = a.get("sample_prompt", "") + text
        if shown != self.sample.toPlainText():
            self.sample.setPlainText(shown)
        self.sample_title.setText(f"Generated text (after the held-out prompt), temperature "
                                  f"{a.get('sample_temperature', 1.0):.2f}")

    def refresh(self) -> bool:
        drawn = super().refresh()
        if self.session is not None and self.interventions.zero_unit.maximum() != self.session.trainer.config.hidden - 1:
            self.interventions.set_config(self.session.trainer.config)
            self.unit_spin.setMaximum(self.session.trainer.config.hidden - 1)
        return drawn


class LSTMPanel(RecurrentPanel):
    family = "lstm"
    title = "LSTM: gates over time"
    config_cls = LSTMConfig


class RNNPanel(RecurrentPanel):
    presentation_docks = ("rnnUnitsDock", "rnnCurvesDock")
    family = "rnn"
    title = "Vanilla RNN: long-term dependencies"
    config_cls = RNNConfig
