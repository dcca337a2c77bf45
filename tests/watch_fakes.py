"""A watched run without a script: a source of frames in this process, fed by the test, and frames built as
the wire's stream frames are (model description, metrics rows, snapshots with act/, weight/, hist/,
gates/, seg/, grad_norms, erf/ arrays, state, notice, bye).

Shared by tests/test_watch_session.py (headless) and tests/test_gui_watch.py (the panel)."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np

from explorer.core.wire.frame import Frame, decode_frame, encode_frame


def make_frame(kind: str, fields: dict | None = None, arrays: dict | None = None) -> Frame:
    """A frame as it arrives: encoded and decoded by the wire, so every frame a test feeds is one the wire
    carries (its arrays read-only, as decoded)."""
    return decode_frame(encode_frame(kind, fields or {}, arrays or {}))


class FakeSource:
    """A source of frames (the interface of FrameClient and FolderSource): the test pushes frames, the
    session reads them with ``next_frame``; what the session sends is kept in ``sent``."""

    def __init__(self, frames: list[Frame] | None = None, fail_send: bool = False):
        self._q: queue.Queue = queue.Queue()
        self.sent: list[tuple[str, dict]] = []
        self.closed_reason: str | None = None
        self.closed = False
        self.fail_send = fail_send
        for f in frames or []:
            self._q.put(f)

    def push(self, kind: str, fields: dict | None = None, arrays: dict | None = None) -> None:
        self._q.put(make_frame(kind, fields, arrays))

    def next_frame(self, timeout: float | None = None) -> Frame | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def send(self, kind: str, fields: dict) -> None:
        if self.closed or self.fail_send:
            raise ConnectionError("the connection is closed")
        self.sent.append((kind, dict(fields)))

    def commands(self) -> list[dict]:
        return [f for k, f in self.sent if k == "command"]

    def lose(self, reason: str = "connection reset by peer") -> None:
        """The connection goes without a bye."""
        self.closed_reason = reason

    def close(self) -> None:
        self.closed = True
        if self.closed_reason is None:
            self.closed_reason = "closed by the window"


# -- a model with one layer of every kind ------------------------------------------------------------------

T, HIDDEN = 5, 12  # the LSTM's probe: time steps and hidden units


def conv(name, cin, cout, k, hw, pad=0, stride=1):
    return {"name": name, "type": "Conv2d", "kind": "conv", "params": cout * (cin * k * k + 1),
            "out_shape": [8, cout, hw, hw], "depth": name.count(".") + 1,
            "geometry": {"kernel": [k, k], "stride": [stride, stride], "padding": [pad, pad], "dilation": [1, 1]}}


def pool(name, c, hw):
    return {"name": name, "type": "MaxPool2d", "kind": "pool", "params": 0, "out_shape": [8, c, hw, hw],
            "depth": name.count(".") + 1,
            "geometry": {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1]}}


def act(name, typ, shape, saturating=False):
    entry = {"name": name, "type": typ, "kind": "activation", "params": 0, "out_shape": shape,
             "depth": name.count(".") + 1}
    if saturating:
        entry["saturating"] = True
    return entry


def model_description(*, control: bool = True, segmentation: bool = False, optimizer: bool = True) -> dict:
    """A CNN front, an LSTM over its rows, a classifier: the kinds the panel shows each way."""
    layers = [
        conv("features.0", 1, 6, 5, 28, pad=2),
        act("features.1", "ReLU", [8, 6, 28, 28]),
        pool("features.2", 6, 14),
        conv("features.3", 6, 16, 5, 10),
        act("features.4", "Sigmoid", [8, 16, 10, 10], saturating=True),
        pool("features.5", 16, 5),
        {"name": "rnn", "type": "LSTM", "kind": "recurrent", "params": 4 * HIDDEN * (80 + HIDDEN + 2) * 4,
         "out_shape": [8, T, 2 * HIDDEN], "depth": 1, "cell": "lstm", "num_layers": 2, "bidirectional": True,
         "hidden_size": HIDDEN},
        {"name": "classifier.0", "type": "Linear", "kind": "linear", "params": 24 * 32 + 32, "out_shape": [8, 32],
         "depth": 2},
        act("classifier.1", "Tanh", [8, 32], saturating=True),
        {"name": "classifier.2", "type": "Linear", "kind": "linear", "params": 32 * 10 + 10, "out_shape": [8, 10],
         "depth": 2},
    ]
    out = {"name": "MyCNN", "framework": "torch 2.13.0", "device": "cuda:0", "control": control,
           "input_shape": [8, 1, 28, 28], "output_shape": [8, 10], "segmentation": segmentation,
           "layers": layers,
           "grad_layers": ["features.0", "features.3", "rnn", "classifier.0", "classifier.2"]}
    if segmentation:
        out["output_shape"] = [8, 3, 28, 28]
    if optimizer:
        out["hparams"] = {"lr": 0.01}
    return out


def welcome(role: str = "control", **kw) -> dict:
    return {"role": role, "model": model_description(**kw)}


def snapshot_arrays(step: int, *, segmentation: bool = False, erf: tuple | None = None) -> dict[str, np.ndarray]:
    """The arrays of a snapshot of :func:`model_description` at ``step`` (values that move with the step)."""
    rng = np.random.default_rng(step)
    f32 = np.float32
    yy, xx = np.mgrid[0:28, 0:28]
    image = ((np.hypot(yy - 14, xx - 14) < 8 + step % 3) * 0.8 + 0.1).astype(f32)[None]
    a: dict[str, np.ndarray] = {"input": image}
    for name, shape in (("features.0", (6, 28, 28)), ("features.2", (6, 14, 14)), ("features.3", (16, 10, 10)),
                        ("features.5", (16, 5, 5))):
        a[f"act/{name}"] = rng.random(shape, dtype=f32)
    a["weight/features.0"] = rng.normal(0, 0.3, (6, 1, 5, 5)).astype(f32)
    a["weight/features.3"] = rng.normal(0, 0.1, (16, 6, 5, 5)).astype(f32)
    a["act/classifier.0"] = rng.normal(0, 1, (8, 32)).astype(f32)
    a["act/classifier.2"] = rng.normal(0, 1, (8, 10)).astype(f32)
    a["weight/classifier.0"] = rng.normal(0, 0.2, (32, 24)).astype(f32)
    a["weight/classifier.2"] = rng.normal(0, 0.2, (10, 32)).astype(f32)
    centres = np.linspace(0, 1, 41, dtype=f32)
    for name in ("features.1", "features.4", "classifier.1"):
        counts = np.exp(-((centres - 0.5) ** 2) / 0.02).astype(f32) * 100
        a[f"hist/{name}"] = np.stack([centres, counts])
    for k in ("l0", "l0r", "l1", "l1r"):
        for g in "ifgoch":
            a[f"gates/rnn/{k}/{g}"] = rng.random((T, HIDDEN), dtype=f32)
    logits = rng.normal(0, 1, 10).astype(f32)
    a["output"] = logits
    a["grad_norms"] = np.array([1e-5, 1e-4, 1e-3, 1e-2, 1e-1], f32) * (1 + step % 5)
    if segmentation:
        probs = rng.random((3, 28, 28), dtype=f32)
        probs /= probs.sum(0, keepdims=True)
        a["seg/probs"] = probs
        a["seg/classes"] = probs.argmax(0).astype(np.int64)
        a["target"] = (np.hypot(yy - 14, xx - 14) < 8).astype(np.int64)
        del a["output"]
    if erf is not None:
        layer, _c, y, x = erf
        heat = np.zeros((28, 28), f32)
        heat[max(0, y * 2 - 2):y * 2 + 6, max(0, x * 2 - 2):x * 2 + 6] = 1.0
        a[f"erf/{layer}"] = heat
    return a


def snapshot_fields(step: int) -> dict[str, Any]:
    return {"step": step, "epoch": step // 100, "time": step * 0.05,
            "scalars": {"loss": 2.0 / (1 + step), "saturated/features.1": 0.25, "saturated/features.4": 0.6,
                        "saturated/classifier.1": 0.1}}


def metric_rows(first: int, last: int) -> list[dict[str, float]]:
    """Loss rows for steps first..last, a gradient row every 5 steps (keys grad/<layer>)."""
    rows: list[dict[str, float]] = []
    names = model_description()["grad_layers"]
    for s in range(first, last + 1):
        rows.append({"step": s, "time": s * 0.05, "loss": 2.0 / (1 + s), "accuracy": min(1.0, s / 100)})
        if s % 5 == 0:
            rows.append({"step": s, **{f"grad/{n}": 10.0 ** (i - 5) * (1 + s % 3) for i, n in enumerate(names)}})
    return rows


def feed_run(source: FakeSource, steps: int = 20, *, segmentation: bool = False) -> None:
    """What a connection brings after the welcome: history, a snapshot, the state."""
    source.push("metrics", {"rows": metric_rows(1, steps)})
    source.push("snapshot", snapshot_fields(steps), snapshot_arrays(steps, segmentation=segmentation))
    source.push("state", {"state": "running", "step": steps})
