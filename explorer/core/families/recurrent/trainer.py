"""Recurrent networks for the engine: the lecture's vanilla RNN and LSTM, and what their gates do over time.

Vanilla RNN ("all steps share the same weights U, V, W"), trained by backpropagation through time:

    s_t = tanh(U x_t + W s_(t-1)),        o_t = V s_t

LSTM, the lecture's cell (biases are an option, off by default as in the lecture):

    f_t  = sigma(U_f x_t + W_f s_(t-1))     forget gate: how much of c_(t-1) to keep
    i_t  = sigma(U_i x_t + W_i s_(t-1))     input gate: how much of the new candidate to write
    o_t  = sigma(U_o x_t + W_o s_(t-1))     output gate
    c~_t = tanh(U_c x_t + W_c s_(t-1))      candidate cell values
    c_t  = f_t * c_(t-1) + i_t * c~_t       (entry-wise products)
    s_t  = o_t * tanh(c_t)

Training always runs the fast implementations (``torch.nn.LSTM`` / ``torch.nn.RNN``): a cell written
step by step in Python is several times slower. The gate values the views show are computed by
:func:`lstm_steps` / :func:`rnn_steps` from the *same* weights, only for the probe sequences and only
when a snapshot is taken; a test checks that both give the same s_t.

Interventions (set the forget-gate bias, clamp a gate to a value, zero one cell unit) act on that probe
computation -- the gate views and the displayed output -- never on training: the model keeps learning as
it would, and the views show what the intervention would do to the network as it is now.

The gradient-versus-distance view compares the trained model with a second network of the other kind
(LSTM <-> RNN) with the same hidden size on the same task. With ``compare_every`` = N > 0 the other
network is trained alongside, one update on the same mini-batch every N steps; with 0 it stays at its
initialisation. The view's caption says which, and how many updates it had.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F

from explorer.core.data.sequence_tasks import TASK_HELP, TASKS
from explorer.core.data.sequences import SequenceData, make_task
from explorer.core.engine.settings import Settings, setting
from explorer.core.families.base import MiniBatchTrainer, SavedParameter

MODELS = ("lstm", "rnn")
OPTIMIZERS = ("adam", "sgd")
GATES = ("f", "i", "o", "c_tilde", "c", "s")      # snapshot keys of the LSTM's unit x time matrices
CLAMPABLE = ("none", "f", "i", "o")
HIST_BINS = 20
SATURATION_LOW, SATURATION_HIGH = 0.05, 0.95
# share of the wall time each group of views may take while training runs (an intervention or a paused
# session recomputes at once): the probe's gates and histograms, the gradient curves, the text sample
VIEW_BUDGET = {"probe": 0.025, "grads": 0.01, "sample": 0.02}
GRAD_BATCH = 16         # held-out sequences for ||dL/ds_t||
HIST_BATCH = 8          # held-out sequences whose gate values make the saturation histograms


# -- models ---------------------------------------------------------------------------------------------
class RecurrentNet(torch.nn.Module):
    """What the vanilla RNN and the LSTM share: input weights U and recurrent weights W (and biases, an
    option) kept in a fast torch recurrence (:attr:`recurrence`), and the output layer o_t = V s_t + c."""

    kind = "?"
    hidden: int
    V: torch.nn.Linear

    @property
    def recurrence(self) -> torch.nn.RNNBase:
        raise NotImplementedError

    # torch registers a recurrence's parameters under names made per layer (weight_ih_l0, ...), which its
    # types cannot know: they read as Tensor | Module, and the casts say which they are

    @property
    def U(self) -> torch.Tensor:
        return cast(torch.Tensor, self.recurrence.weight_ih_l0)

    @property
    def W(self) -> torch.Tensor:
        return cast(torch.Tensor, self.recurrence.weight_hh_l0)

    def bias(self) -> torch.Tensor | None:
        r = self.recurrence
        return None if not r.bias else cast(torch.Tensor, r.bias_ih_l0) + cast(torch.Tensor, r.bias_hh_l0)

    def forward(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """(states s_1..s_T (B, T, H), the final state to continue from)."""
        return self.recurrence(x, state)


class VanillaRNN(RecurrentNet):
    """s_t = tanh(U x_t + W s_(t-1)) [+ b], o_t = V s_t + c; the recurrence runs in ``torch.nn.RNN``."""

    kind = "rnn"

    def __init__(self, n_in: int, hidden: int, n_out: int, bias: bool = False):
        super().__init__()
        self.hidden = int(hidden)
        self.rnn = torch.nn.RNN(n_in, hidden, batch_first=True, bias=bias, nonlinearity="tanh")
        self.V = torch.nn.Linear(hidden, n_out)

    @property
    def recurrence(self) -> torch.nn.RNNBase:
        return self.rnn


class LectureLSTM(RecurrentNet):
    """The lecture's LSTM; weights live in a ``torch.nn.LSTM`` (gate order i, f, c~, o), output o_t = V s_t + c.
    Its U is [U_i; U_f; U_c; U_o] stacked (4H, n_in), torch's order (W likewise)."""

    kind = "lstm"

    def __init__(self, n_in: int, hidden: int, n_out: int, bias: bool = False):
        super().__init__()
        self.hidden = int(hidden)
        self.lstm = torch.nn.LSTM(n_in, hidden, batch_first=True, bias=bias)
        self.V = torch.nn.Linear(hidden, n_out)

    @property
    def recurrence(self) -> torch.nn.RNNBase:
        return self.lstm

    def gate_weights(self) -> dict[str, torch.Tensor]:
        """U_g, W_g (and b_g with biases) for g in i, f, c, o, named as in the lecture."""
        out: dict[str, torch.Tensor] = {}
        b = self.bias()
        for k, g in enumerate(("i", "f", "c", "o")):
            rows = slice(k * self.hidden, (k + 1) * self.hidden)
            out[f"U_{g}"] = self.U[rows]
            out[f"W_{g}"] = self.W[rows]
            if b is not None:
                out[f"b_{g}"] = b[rows]
        return out

    def gates(self, x: torch.Tensor, **interventions: Any) -> dict[str, torch.Tensor]:
        """f, i, o, c~, c, s (each (B, T, H)) for ``x``, step by step with this model's weights."""
        return lstm_steps(self, x, **interventions)


def make_model(kind: str, n_in: int, hidden: int, n_out: int, bias: bool, seed: int,
               device: torch.device) -> RecurrentNet:
    """A freshly initialised model (torch's default init, drawn from ``seed`` without touching the global RNG)."""
    cls: type[RecurrentNet] = {"lstm": LectureLSTM, "rnn": VanillaRNN}[kind]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(n_in, hidden, n_out, bias=bias)
    return model.to(device)


def _step_terms(model: RecurrentNet, x: torch.Tensor, zero_unit: int
                ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """What every step of the step-by-step cells uses: the biases b (None without), U x_t + b for all t at
    once, W^T, and the mask that holds unit ``zero_unit`` at 0 (None when it names no unit)."""
    H = model.hidden
    b = model.bias()
    xu = x @ model.U.t()
    if b is not None:
        xu = xu + b
    mask = None
    if 0 <= zero_unit < H:
        mask = torch.ones(H, device=x.device, dtype=x.dtype)
        mask[zero_unit] = 0.0
    return b, xu, model.W.t(), mask


def lstm_steps(model: LectureLSTM, x: torch.Tensor, *, forget_bias: float | None = None, clamp_gate: str = "none",
               clamp_value: float = 1.0, zero_unit: int = -1, keep_grad: bool = False) -> dict[str, Any]:
    """The lecture's LSTM cell, one step at a time, exposing every gate.

    Interventions: ``forget_bias`` replaces the forget gate's bias b_f (added when the model has none);
    ``clamp_gate`` ("f" | "i" | "o") holds that gate at ``clamp_value``; ``zero_unit`` sets c_t of that unit
    to 0 at every step. ``keep_grad`` keeps each s_t as a graph node with its gradient retained
    (returned as the list ``s_list``) for ||dL/ds_t||.
    """
    H = model.hidden
    b, xu, W_t, mask = _step_terms(model, x, zero_unit)
    B, T = x.shape[0], x.shape[1]
    s = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    shift = None
    if forget_bias is not None:
        shift = float(forget_bias) - (b[H:2 * H] if b is not None else 0.0)
    fs, is_, os_, gs, cs, ss = [], [], [], [], [], []
    for t in range(T):
        z = xu[:, t] + s @ W_t
        zi, zf, zg, zo = z.split(H, dim=1)
        if shift is not None:
            zf = zf + shift
        i, f, g, o = torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo)
        if clamp_gate == "f":
            f = torch.full_like(f, clamp_value)
        elif clamp_gate == "i":
            i = torch.full_like(i, clamp_value)
        elif clamp_gate == "o":
            o = torch.full_like(o, clamp_value)
        c = f * c + i * g
        if mask is not None:
            c = c * mask
        s = o * torch.tanh(c)
        if keep_grad:
            s.retain_grad()
        fs.append(f)
        is_.append(i)
        os_.append(o)
        gs.append(g)
        cs.append(c)
        ss.append(s)
    out: dict[str, Any] = {"f": torch.stack(fs, 1), "i": torch.stack(is_, 1), "o": torch.stack(os_, 1),
                           "c_tilde": torch.stack(gs, 1), "c": torch.stack(cs, 1), "s": torch.stack(ss, 1)}
    if keep_grad:
        out["s_list"] = ss
    return out


def rnn_steps(model: VanillaRNN, x: torch.Tensor, *, zero_unit: int = -1, keep_grad: bool = False,
              **_ignored: Any) -> dict[str, Any]:
    """s_t = tanh(U x_t + W s_(t-1)) one step at a time; ``zero_unit`` holds that unit's s_t at 0."""
    _, xu, W_t, mask = _step_terms(model, x, zero_unit)
    s = x.new_zeros(x.shape[0], model.hidden)
    ss = []
    for t in range(x.shape[1]):
        s = torch.tanh(xu[:, t] + s @ W_t)
        if mask is not None:
            s = s * mask
        if keep_grad:
            s.retain_grad()
        ss.append(s)
    out: dict[str, Any] = {"s": torch.stack(ss, 1)}
    if keep_grad:
        out["s_list"] = ss
    return out


def step_by_step(model: RecurrentNet, x: torch.Tensor, **kw: Any) -> dict[str, Any]:
    if isinstance(model, LectureLSTM):
        return lstm_steps(model, x, **kw)
    assert isinstance(model, VanillaRNN), f"no step-by-step cell for {type(model).__name__}"
    return rnn_steps(model, x, **kw)


# -- losses ------------------------------------------------------------------------------------------------
def task_loss(data: SequenceData, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (regression) or cross-entropy in nats (classes), on the steps the task scores.

    ``out``: the outputs o_t of the scored steps, (B, n_out) for last-step tasks or (B, T, n_out).
    """
    if data.kind == "regression":
        return F.mse_loss(out, target)
    return F.cross_entropy(out.reshape(-1, data.n_out), target.reshape(-1))


def outputs(model: RecurrentNet, data: SequenceData, x: torch.Tensor) -> torch.Tensor:
    """o_t = V s_t through the fast path: every step, or (B, n_out) at the last one for last-step tasks."""
    states, _ = model(x)
    if data.every_step:
        return model.V(states)
    return model.V(states[:, -1])


def accuracy(data: SequenceData, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out.argmax(-1) == target).float().mean()


def grad_norm_by_distance(model: RecurrentNet, data: SequenceData, x: torch.Tensor,
                          target: torch.Tensor) -> np.ndarray:
    """||dL_T/ds_t|| averaged over the batch, for distance k = T - t = 0, 1, ..., T - 1 back in time.

    L_T is the loss at the last step (the whole loss for the adding problem and recall; the last step's
    share for forecasting and text), so the curve shows how much of it reaches each earlier state
    through the recurrence -- BPTT's vanishing gradient, or the LSTM's cell path.
    """
    with torch.enable_grad():
        res = step_by_step(model, x, keep_grad=True)
        s_last = res["s_list"][-1]
        out = model.V(s_last)
        tgt = target[:, -1] if data.every_step else target
        loss = task_loss(data, out, tgt)
        model.zero_grad(set_to_none=True)
        loss.backward()
        norms = torch.stack([torch.linalg.vector_norm(s.grad, dim=1).mean() if s.grad is not None
                             else torch.zeros((), device=x.device) for s in res["s_list"]])
        model.zero_grad(set_to_none=True)
    return norms.flip(0).detach().cpu().numpy().astype(np.float64)


@torch.no_grad()
def generate(model: RecurrentNet, data: SequenceData, prompt: str, n: int, temperature: float,
             seed: int) -> str:
    """``n`` characters sampled after ``prompt`` from softmax(o_t / temperature) (greedy below 0.01).

    The input is one-hot, so U x_t is column x_t of U: the cell runs on the CPU with a row lookup per
    character instead of a call into ``torch.nn.LSTM`` per character (about ten times faster).
    """
    H = model.hidden
    U_rows = model.U.t().detach().float().cpu()          # (n_in, 4H or H): row k = U e_k
    W_t = model.W.t().detach().float().cpu()
    b = model.bias()
    b = None if b is None else b.detach().float().cpu()
    V_w = model.V.weight.t().detach().float().cpu()
    V_b = model.V.bias.detach().float().cpu()
    s = torch.zeros(H)
    c = torch.zeros(H)
    rng = np.random.default_rng(seed)

    def cell(k: int) -> None:
        nonlocal s, c
        z = U_rows[k] + s @ W_t
        if b is not None:
            z = z + b
        if model.kind == "lstm":
            zi, zf, zg, zo = z.split(H)
            c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
            s = torch.sigmoid(zo) * torch.tanh(c)
        else:
            s = torch.tanh(z)

    for k in data.encode(prompt).tolist():
        cell(k)
    out = []
    for _ in range(n):
        logits = (s @ V_w + V_b).numpy().astype(np.float64)
        if temperature < 0.01:
            nxt = int(logits.argmax())
        else:
            z = logits / temperature
            p = np.exp(z - z.max())
            nxt = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
            nxt = min(nxt, len(p) - 1)
        out.append(nxt)
        cell(nxt)
    return data.decode(out)


def histogram(values: torch.Tensor, lo: float, hi: float) -> np.ndarray:
    """Share of ``values`` in each of HIST_BINS equal bins over [lo, hi]."""
    h = torch.histc(values.detach().float().reshape(-1), bins=HIST_BINS, min=lo, max=hi)
    return (h / max(values.numel(), 1)).cpu().numpy()


def saturation_share(values: torch.Tensor, symmetric: bool = False) -> float:
    """Share of gate values that are saturated: sigma < 0.05 or > 0.95 (tanh: |v| > 0.9)."""
    v = values.detach()
    if symmetric:
        return float((v.abs() > 2 * SATURATION_HIGH - 1).float().mean())
    return float(((v < SATURATION_LOW) | (v > SATURATION_HIGH)).float().mean())


# -- configuration ---------------------------------------------------------------------------------------------
@dataclass
class RecurrentConfig(Settings):
    """Everything that defines a recurrent run; saved as JSON in a run folder.

    ``length`` is T: the number of steps of a sequence (adding, sine, sawtooth, text chunks) or, for
    delayed recall, the lag between the symbol and the cue. Use :class:`LSTMConfig` / :class:`RNNConfig`
    (the class says which model, so the window knows the panel). Changes that make new data or a new
    model wait for Reset; the others apply between two steps (the interventions and view settings only
    change what the probe views show).
    """

    MODEL: ClassVar[str] = "lstm"

    task: str = setting("adding", choices=TASKS, data=True)
    length: int = setting(50, kind="int", lo=0, hi=2000, label="sequence length T (the lag for recall)", data=True)
    text_file: str | None = setting(None, data=True)
    hidden: int = setting(32, kind="int", lo=1, hi=4096, label="hidden units", reset=True)
    bias: bool = setting(False, reset=True)
    optimizer: str = setting("adam", choices=OPTIMIZERS, reset=True)
    lr: float = setting(0.01, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.9, kind="number", lo=0, hi=1, below=True, live=True)
    batch_size: int = setting(32, kind="int", lo=1, live=True)
    clip: float = setting(1.0, kind="number", lo=0, label="gradient clipping", note="0: off", live=True)
    seed: int = setting(0, kind="int", lo=0, data=True)
    device: str = "auto"
    n_train: int = setting(4000, kind="int", lo=1, hi=10_000_000, data=True)
    eval_samples: int = setting(1000, kind="int", lo=1, hi=1_000_000, data=True)
    compare_every: int = setting(4, kind="int", lo=0, hi=1_000_000, live=True)
    probe_index: int = setting(0, kind="int", lo=0, live=True)
    probe_length: int = setting(200, kind="int", lo=2, hi=10_000, live=True)
    max_units: int = setting(64, kind="int", lo=1, hi=4096, live=True)
    temperature: float = setting(1.0, kind="number", lo=0, hi=10, live=True)
    sample_chars: int = setting(300, kind="int", lo=1, hi=100_000, live=True)
    forget_bias: float | None = setting(None, kind="number", lo=-50, hi=50, optional=True, label="forget-gate bias",
                                        live=True)
    clamp_gate: str = setting("none", choices=CLAMPABLE, label="clamp gate", live=True)
    clamp_value: float = setting(1.0, kind="number", lo=0, hi=1, label="clamp value", note="a gate is a sigmoid",
                                 live=True)
    zero_unit: int = setting(-1, kind="int", lo=-1, label="zeroed unit", note="-1: none", live=True)

    @property
    def model(self) -> str:
        return self.MODEL

    # the window falls back to a family's always-available data when a run cannot start
    FALLBACK_DATASET: ClassVar[str] = "built-in"

    @property
    def dataset(self) -> str:
        """"text-file" while the user's own text file is in use, else "built-in" (generated or bundled data)."""
        return "text-file" if self.text_file else "built-in"

    def check(self) -> None:
        if self.task != "recall" and self.length < 2:
            raise ValueError(f"sequence length T must be a whole number between 2 and 2000, got {self.length!r}")
        if self.clamp_gate != "none" and self.MODEL != "lstm":
            raise ValueError("a vanilla RNN has no gates to clamp")
        if self.forget_bias is not None and self.MODEL != "lstm":
            raise ValueError("a vanilla RNN has no forget gate")
        if self.zero_unit >= self.hidden:
            raise ValueError(f"zeroed unit must be -1 (none) or a unit 0..{self.hidden - 1}, got {self.zero_unit!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecurrentConfig:
        if d.get("dataset") == cls.FALLBACK_DATASET:  # the window's fallback: back to the bundled text
            d = {**d, "text_file": None}
        return super().from_dict(d)


@dataclass
class LSTMConfig(RecurrentConfig):
    MODEL: ClassVar[str] = "lstm"


@dataclass
class RNNConfig(RecurrentConfig):
    MODEL: ClassVar[str] = "rnn"


CONFIGS = {"lstm": LSTMConfig, "rnn": RNNConfig}

NEEDS_RESET = RecurrentConfig.reset_settings()
LIVE = RecurrentConfig.live_settings()
INTERVENTIONS = ("forget_bias", "clamp_gate", "clamp_value", "zero_unit")


# -- trainer ------------------------------------------------------------------------------------------------------
class RecurrentTrainer(MiniBatchTrainer):
    """Trains a :class:`LectureLSTM` or :class:`VanillaRNN` (``config.model``) on a :class:`SequenceData` task.

    Metrics per step: ``loss`` (training batch: MSE or cross-entropy in nats), ``accuracy`` (recall, text),
    ``grad_norm`` (||dL/dθ|| before clipping). :meth:`evaluate`: ``heldout_loss``, ``train_loss``,
    ``baseline``, ``heldout_accuracy`` (recall, text) and, once the other kind has been trained alongside,
    ``compare_heldout_loss``.
    """

    saved_optimizer_state = "all"  # Adam's moments and step

    model: RecurrentNet             # the trained model (config.model) ...
    compare_model: RecurrentNet     # ... and the other kind, for the gradient-versus-distance view

    def __init__(self, config: RecurrentConfig, dataset: SequenceData | None = None):
        self.family = config.model
        super().__init__(config, dataset)

    # -- data ------------------------------------------------------------------------------------------------
    def _load_configured_data(self) -> SequenceData:
        c = self.config
        return make_task(c.task, c.length, seed=c.seed, n_train=c.n_train, eval_samples=c.eval_samples,
                         text_file=c.text_file)

    # -- construction ------------------------------------------------------------------------------------------
    def _build_model(self) -> None:
        cfg, data, dev = self.config, self.dataset, self._device
        other = "rnn" if cfg.model == "lstm" else "lstm"
        self.model = make_model(cfg.model, data.n_in, cfg.hidden, data.n_out, cfg.bias, cfg.seed, dev)
        self.compare_model = make_model(other, data.n_in, cfg.hidden, data.n_out, cfg.bias, cfg.seed + 100, dev)
        self.optimizer = self._make_optimizer(self.model)
        self.compare_optimizer = self._make_optimizer(self.compare_model)
        self.compare_steps = 0
        # view name -> ((key, forced), arrays, time done, cost in s, whether that cost paces the next)
        self._cache: dict[str, tuple[tuple, dict[str, Any], float, float, bool]] = {}
        self._step_at_snapshot = -1
        self._idle = True

    def _load_data(self) -> None:
        self.dataset.to(self._device)
        self._n_train = self.dataset.n_train

    def _make_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)

    # -- engine interface -----------------------------------------------------------------------------------------
    def _update(self, model: RecurrentNet, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = outputs(model, self.dataset, x)
        loss = task_loss(self.dataset, out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.clip
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else float("inf"))
        optimizer.step()
        return loss.detach(), norm.detach(), out.detach()

    def train_step(self) -> dict[str, torch.Tensor]:
        data = self.dataset
        idx = self._next_indices()
        x, y = data.inputs("train", idx), data.targets("train", idx)
        with torch.enable_grad():
            loss, norm, out = self._update(self.model, self.optimizer, x, y)
            every = self.config.compare_every
            if every and (self.step + 1) % every == 0:
                self._update(self.compare_model, self.compare_optimizer, x, y)
                self.compare_steps += 1
        self.step += 1
        metrics = {"loss": loss}
        if data.kind == "classes":
            metrics["accuracy"] = accuracy(data, out, y)
        metrics["grad_norm"] = norm
        return metrics

    @torch.no_grad()
    def _scores(self, model: RecurrentNet, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        data = self.dataset
        n = min(self.config.eval_samples, data.n_train if split == "train" else data.n_test)
        losses, accs, sizes = [], [], []
        chunk = 500
        for a in range(0, n, chunk):
            sl = slice(a, min(n, a + chunk))
            x, y = data.inputs(split, sl), data.targets(split, sl)
            out = outputs(model, data, x)
            losses.append(task_loss(data, out, y))
            if data.kind == "classes":
                accs.append(accuracy(data, out, y))
            sizes.append(sl.stop - sl.start)
        w = torch.tensor(sizes, dtype=torch.float32, device=self._device) / n
        loss = (torch.stack(losses) * w).sum()
        acc = (torch.stack(accs) * w).sum() if accs else None
        return loss, acc

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        test_loss, test_acc = self._scores(self.model, "test")
        train_loss, train_acc = self._scores(self.model, "train")
        scores = [test_loss, train_loss]
        if test_acc is not None:
            assert train_acc is not None, "both splits are scored alike"
            scores += [test_acc, train_acc]
        if self.compare_steps:
            scores.append(self._scores(self.compare_model, "test")[0])
        vals = torch.stack(scores).cpu().tolist()
        out = {"heldout_loss": vals[0], "train_loss": vals[1], "baseline": self.dataset.baseline}
        k = 2
        if test_acc is not None:
            out["heldout_accuracy"], out["train_accuracy"] = vals[2], vals[3]
            k = 4
        if self.compare_steps:
            out["compare_heldout_loss"] = vals[k]
        return out

    # -- probe views -------------------------------------------------------------------------------------------
    def interventions(self) -> dict[str, Any]:
        c = self.config
        return {"forget_bias": c.forget_bias, "clamp_gate": c.clamp_gate, "clamp_value": float(c.clamp_value),
                "zero_unit": int(c.zero_unit)}

    def intervention_text(self) -> str:
        c = self.config
        parts = []
        if c.forget_bias is not None:
            parts.append(f"forget-gate bias b_f = {c.forget_bias:g}")
        if c.clamp_gate != "none":
            parts.append(f"{c.clamp_gate}_t clamped to {c.clamp_value:g}")
        if c.zero_unit >= 0:
            parts.append(f"{'c_t' if c.model == 'lstm' else 's_t'} of unit {c.zero_unit} held at 0")
        return ", ".join(parts)

    def probe(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        """The chosen probe sequence: (inputs (1, T, n_in), targets, its text for the text task)."""
        data, cfg = self.dataset, self.config
        if data.is_text:
            text = data.heldout_text
            n = min(cfg.probe_length, len(text))
            start = (cfg.probe_index * n) % max(1, len(text) - n + 1)
            chunk = text[start:start + n]
            codes = data.encode(chunk).to(self._device)
            return data.one_hot(codes[:-1])[None], codes[1:][None], chunk
        k = cfg.probe_index % data.n_test
        return data.inputs("test", slice(k, k + 1)), data.targets("test", slice(k, k + 1)), ""

    def _cached(self, name: str, key: tuple, forced: tuple, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``fn()``'s arrays, recomputed when ``key`` changed and the view budget allows, or at once when
        ``forced`` (e.g. an intervention, the temperature) changed.

        A view's first computation does not set the pace: it pays for one-off warm-up (in the window the
        gradient curves' first took 0.14 s against 0.03-0.04 s after, which held them at the untrained
        model for the first 14 s of training); the second is made as soon as the key changes."""
        entry = self._cache.get(name)
        now = time.perf_counter()
        if entry is not None:
            (old_key, old_forced), arrays, t_done, cost, paced = entry
            # idle: no training step since the last snapshot (paused, or a snapshot asked for), so no budget
            if old_forced == forced and (old_key == key or (not self._idle and paced
                                                            and now - t_done < cost / VIEW_BUDGET[name])):
                return arrays
        t0 = time.perf_counter()
        arrays = fn()
        t1 = time.perf_counter()
        self._cache[name] = ((key, forced), arrays, t1, t1 - t0, entry is not None)
        return arrays

    @torch.no_grad()
    def _probe_views(self) -> dict[str, Any]:
        cfg, data, m = self.config, self.dataset, self.model
        x, y, text = self.probe()
        inter = self.interventions()
        cap = min(cfg.max_units, m.hidden)

        def units(t: torch.Tensor) -> np.ndarray:  # (1, T, H) -> (units, T)
            return t[0, :, :cap].t().detach().to("cpu", torch.float32).numpy().copy()

        n = min(HIST_BATCH, data.n_test)
        hx = data.inputs("test", slice(0, n))
        same_length = hx.shape[1] == x.shape[1]
        # one pass for the probe and the histogram batch when they have the same length (one step loop)
        both = step_by_step(m, torch.cat([x, hx]) if same_length else x, **inter)
        res = {k: v[:1] for k, v in both.items()}
        hres = {k: v[1:] for k, v in both.items()} if same_length else step_by_step(m, hx, **inter)
        clean = step_by_step(m, x) if any(v not in (None, "none", -1) for k, v in inter.items()
                                          if k != "clamp_value") else res
        out: dict[str, Any] = {name: units(res[name]) for name in res if name != "s_list"}
        out["probe_input"] = x[0].cpu().numpy().copy()
        out["probe_target"] = y[0].cpu().numpy().copy()
        out["probe_output"] = m.V(res["s"])[0].cpu().numpy().copy()
        out["probe_output_clean"] = m.V(clean["s"])[0].cpu().numpy().copy()
        if data.kind == "classes":
            out["probe_prob"] = torch.softmax(m.V(res["s"])[0], -1).cpu().numpy().copy()
            out["probe_prob_clean"] = torch.softmax(m.V(clean["s"])[0], -1).cpu().numpy().copy()
        if text:
            out["probe_text"] = text
        # saturation histograms over a batch of held-out sequences (the interventions included)
        if m.kind == "lstm":
            for g in ("f", "i", "o"):
                out[f"hist_{g}"] = histogram(hres[g], 0.0, 1.0)
            out["hist_c_tilde"] = histogram(hres["c_tilde"], -1.0, 1.0)
            out["saturation"] = np.array([saturation_share(hres["f"]), saturation_share(hres["i"]),
                                          saturation_share(hres["o"]),
                                          saturation_share(hres["c_tilde"], symmetric=True)])
        else:
            out["hist_s"] = histogram(hres["s"], -1.0, 1.0)
            out["saturation"] = np.array([saturation_share(hres["s"], symmetric=True)])
        return out

    def _grad_views(self) -> dict[str, Any]:
        data = self.dataset
        n = min(GRAD_BATCH, data.n_test)
        x, y = data.inputs("test", slice(0, n)), data.targets("test", slice(0, n))
        mine = grad_norm_by_distance(self.model, data, x, y)
        theirs = grad_norm_by_distance(self.compare_model, data, x, y)
        lstm, rnn = (mine, theirs) if self.model.kind == "lstm" else (theirs, mine)
        lstm_steps_, rnn_steps_ = ((self.step, self.compare_steps) if self.model.kind == "lstm"
                                   else (self.compare_steps, self.step))
        return {"grad_lstm": lstm, "grad_rnn": rnn, "grad_updates_lstm": lstm_steps_,
                "grad_updates_rnn": rnn_steps_, "grad_at_step": self.step}

    def _sample_view(self) -> dict[str, Any]:
        cfg, data = self.config, self.dataset
        prompt = data.heldout_text[:40]
        cut = prompt.rfind("\n")
        prompt = prompt[:cut + 1] if cut > 0 else prompt
        sample = generate(self.model, data, prompt, cfg.sample_chars, float(cfg.temperature), cfg.seed + 7)
        return {"sample_prompt": prompt, "sample_text": sample, "sample_temperature": float(cfg.temperature)}

    def snapshot(self) -> dict[str, Any]:
        cfg, data = self.config, self.dataset
        probe_forced = (tuple(self.interventions().items()), cfg.probe_index, cfg.probe_length, cfg.max_units)
        out: dict[str, Any] = {"task": data.name, "model": cfg.model, "kind": data.kind,
                               "every_step": data.every_step, "baseline": data.baseline,
                               "interventions": self.intervention_text(), "hidden": cfg.hidden,
                               "symbols": list(data.symbols)}
        self._idle = self.step == self._step_at_snapshot
        self._step_at_snapshot = self.step
        out["views_step"] = self.step
        out.update(self._cached("probe", (self.step,), probe_forced, self._probe_views))
        out.update(self._cached("grads", (self.step,), (), self._grad_views))
        if data.is_text:
            out.update(self._cached("sample", (self.step,), (cfg.temperature, cfg.sample_chars), self._sample_view))
        return out

    # -- settings, devices, weights ---------------------------------------------------------------------------------
    def apply_hparams(self, changes: dict[str, Any]) -> list[str]:
        notices = super().apply_hparams(changes)
        if set(changes) & set(INTERVENTIONS):
            notices = [n for n in notices if not n.startswith(INTERVENTIONS)]  # the views say it themselves
        return notices

    # -- parts: the model, and the network of the other kind trained alongside -----------------------------
    def _networks(self) -> list[torch.nn.Module]:
        return [self.model, self.compare_model]

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer, self.compare_optimizer]

    def _moved(self, device: torch.device, seed: int) -> None:
        self._cache.clear()

    def _saved_parameters(self) -> list[SavedParameter]:
        """``model.<name>`` and ``compare.<name>``, with their optimiser's state ``opt.<that name>.<key>``."""
        return [SavedParameter(f"{prefix}.{n}", f"opt.{prefix}.{n}", p, opt)
                for prefix, model, opt in (("model", self.model, self.optimizer),
                                           ("compare", self.compare_model, self.compare_optimizer))
                for n, p in model.named_parameters()]

    def _extra_state(self) -> dict[str, torch.Tensor]:
        return {"compare_steps": torch.tensor(float(self.compare_steps))}

    def _after_loading(self, tensors: dict[str, torch.Tensor]) -> None:
        if "compare_steps" in tensors:
            self.compare_steps = int(tensors["compare_steps"].item())
        self._cache.clear()

    def describe(self) -> str:
        cfg, data = self.config, self.dataset
        name = "LSTM" if cfg.model == "lstm" else "Vanilla RNN"
        bias = "with biases" if cfg.bias else "no biases, as the lecture"
        if data.name == "recall":
            what = f"delayed recall, lag {cfg.length}"
        elif data.name == "text":
            what = f"next character of {data.source}, chunks of {cfg.length}"
        else:
            what = f"{TASK_HELP[data.name].split(':')[0]}, T = {cfg.length}"
        measure = "MSE" if data.kind == "regression" else "cross-entropy"
        src = "" if data.name == "text" else f" ({data.source})"
        n_params = sum(p.numel() for p in self.model.parameters())
        return (f"{name} with {cfg.hidden} units ({bias}, {n_params:,} parameters) on {what}{src}; trivial "
                f"baseline {measure} {data.baseline:.3f}")


def config_from_spec(spec, base: RecurrentConfig | None = None) -> RecurrentConfig:
    """A recurrent configuration from a builder spec (family ``lstm`` or ``rnn``).

    The first layer must be the LSTM (or RNN, tanh) whose hidden size becomes ``hidden``; the spec's
    input shape (T, F) gives ``length`` = T; ``hparams["task"]`` picks the task ("next-step prediction",
    the presets' wording, means sine forecasting); lr, batch size, optimizer and the other known settings
    come from the hyper-parameters. A Linear layer at the end must give as many outputs as the task needs.
    """
    from explorer.core.spec.network import validate

    validate(spec)
    if spec.family not in CONFIGS:
        raise ValueError(f"this is a {spec.family} network, not an LSTM or an RNN")
    cls = CONFIGS[spec.family]
    base_d = base.to_dict() if base is not None else {}
    cfg = cls.from_dict(base_d)
    want = "LSTM" if spec.family == "lstm" else "RNN"
    if not spec.layers or spec.layers[0].type != want:
        first = spec.layers[0].type if spec.layers else "nothing"
        raise ValueError(f"an {spec.family} network here starts with an {want} layer; this one starts with {first}")
    p = spec.layers[0].params
    if want == "RNN" and p.get("nonlinearity", "tanh") != "tanh":
        raise ValueError("the lecture's RNN uses tanh: s_t = tanh(U x_t + W s_(t-1)); set nonlinearity=tanh")
    changes: dict[str, Any] = {"hidden": int(p.get("hidden_size", cfg.hidden))}
    # the layer's bias option, as the builder counts its parameters (the presets learn biases, as torch does)
    changes["bias"] = bool(p.get("bias", True))
    hp = dict(spec.hparams or {})
    task = str(hp.get("task", cfg.task)).strip().lower()
    task = {"next-step prediction": "sine", "next step prediction": "sine", "forecast": "sine",
            "language model": "text", "char": "text", "delayed recall": "recall",
            "adding problem": "adding"}.get(task, task)
    if task not in TASKS:
        raise ValueError(f"unknown task {hp.get('task')!r}: choose one of {', '.join(TASKS)}")
    changes["task"] = task
    if len(spec.input_shape) == 2:
        T, n_in = int(spec.input_shape[0]), int(spec.input_shape[1])
        changes["length"] = max(0, T - 2) if task == "recall" else T
        need = {"adding": 2, "recall": 9, "sine": 1, "sawtooth": 1}.get(task)
        if need is not None and n_in != need:
            raise ValueError(f"the {task} task feeds {need} input(s) per step; this network takes {n_in} "
                             f"(input shape ({T}, {need}))")
    outs = [layer for layer in spec.layers[1:] if layer.type == "Linear"]
    n_out = {"adding": 1, "recall": 8, "sine": 1, "sawtooth": 1}.get(task)
    if outs and n_out is not None and int(outs[-1].params.get("out_features", n_out)) != n_out:
        raise ValueError(f"the {task} task needs {n_out} output(s) from the last Linear layer, "
                         f"this network has {outs[-1].params.get('out_features')}")
    known = {f.name for f in dataclasses.fields(cls)}
    for k, v in hp.items():
        if k in known and k not in ("task", "hidden", "length"):
            changes[k] = v
    cfg = dataclasses.replace(cfg, **changes)
    cfg.validate()
    return cfg
