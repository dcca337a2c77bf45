"""The viewer's side of a watched run: a :class:`~explorer.core.engine.protocol.Session` fed by frames.

The user trains their own model in their own script (``explorer.watch(model)``); the window shows it
through a *source* of frames: a live connection (``explorer.core.wire.client.FrameClient``) or a watch
folder that is being written (``explorer.core.watch.folder.FolderSource``). A reader thread turns the
frames into what every session offers the window and its panels: the curves (``metrics``), the newest
snapshot, the state and the notices. Commands go the other way, and only those the run allows: play,
pause, step and the learning rate need the control role, granted when the script was watched with
``control=True`` and the window did not attach read-only; anything else is a notice saying why not.
The window never stops the user's script: closing the session closes the connection, nothing more.

Everything read from a frame is checked before use (its types, its sizes): a frame comes from another
process, perhaps on another machine, and a wrong field is dropped or named in a notice, never a crash.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from explorer.core.engine.metrics import RowWindows, window_means
from explorer.core.engine.session import FINISHED, PAUSED, RUNNING, MetricsLog, Snapshot
from explorer.core.persist.commands import autosave_to
from explorer.core.safe_read import escape_text

log = logging.getLogger(__name__)

WATCH_FAMILY = "watch"  # the ``trainer.family`` of a watched run (no family of the registry: no trainer here)
READ_ONLY = "this run is read-only (started without control=True)"
FOLLOWING = "this window follows the run read-only (attached with Follow)"
FOLDER_READ_ONLY = "a watch folder is read-only: attach to the script's address (HOST:PORT) to control its run"
NOT_AVAILABLE = "not available for a watched run"
LAYER_KINDS = ("conv", "pool", "linear", "recurrent", "activation", "norm", "other")
MAX_LAYERS = 10_000      # a model description with more layers is cut (a window has no use for more rows)
MAX_NAME = 200           # characters of a layer's name, a type, a metric's key
MAX_NOTICE = 500         # characters of a notice from the script
MAX_STEPS = 10_000       # the most steps one "step" command asks for (the wire's limit)
READ_POLL_S = 0.2        # the reader thread looks for a close this often while no frame comes
RATE_WINDOW_S = 3.0      # steps per second over the script's last seconds


class FrameLike(Protocol):
    """A decoded frame (``explorer.core.wire.frame.Frame``): its kind, JSON fields and numpy arrays."""

    kind: str
    fields: dict[str, Any]
    arrays: dict[str, Any]


class FrameSource(Protocol):
    """Where a watched run's frames come from: ``next_frame(timeout)`` (a connection's ``frames``) gives
    the next one or None when none came in ``timeout`` seconds; ``closed_reason`` says why the stream
    ended once it has (None before)."""

    closed_reason: str | None

    def send(self, kind: str, fields: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def next_frame(source: Any, timeout: float) -> FrameLike | None:
    """The source's next frame: ``next_frame(timeout)``, or a connection's ``frames(timeout)``."""
    read = getattr(source, "next_frame", None) or source.frames
    return read(timeout)


# -- what a frame holds, checked ------------------------------------------------------------------------------

def _text(value: Any, default: str = "", limit: int = MAX_NAME) -> str:
    return escape_text(value)[:limit] if isinstance(value, str) else default


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return int(value)


def _number(value: Any) -> float | None:
    """A JSON number as a float (NaN and infinities kept: a diverging loss is worth showing); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _shape(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > 8:
        return []
    return [int(v) for v in value if isinstance(v, int) and not isinstance(v, bool) and v >= 0]


def _pair(value: Any, default: int) -> list[int]:
    """A geometry entry (kernel, stride...) as [y, x]: a number is both."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [int(value), int(value)]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [int(value[0]), int(value[-1])]
    return [default, default]


def clean_model(raw: Any) -> dict[str, Any]:
    """The model description of a ``welcome`` frame (or a watch folder's model), every field checked: a
    field of the wrong type is left out or given its default, so the panel can read it without asking."""
    raw = raw if isinstance(raw, dict) else {}
    layers = []
    for entry in (raw.get("layers") if isinstance(raw.get("layers"), list) else [])[:MAX_LAYERS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        kind = entry.get("kind") if entry.get("kind") in LAYER_KINDS else "other"
        layer: dict[str, Any] = {"name": _text(entry["name"]), "type": _text(entry.get("type"), "?"), "kind": kind,
                                 "params": max(0, _int(entry.get("params"))),
                                 "out_shape": _shape(entry.get("out_shape")),
                                 "depth": max(1, _int(entry.get("depth"), layer_depth(entry["name"])))}
        geo = entry.get("geometry")
        if isinstance(geo, dict):
            layer["geometry"] = {"kernel": _pair(geo.get("kernel"), 1), "stride": _pair(geo.get("stride"), 1),
                                 "padding": _pair(geo.get("padding"), 0), "dilation": _pair(geo.get("dilation"), 1)}
        if kind == "recurrent":
            layer["cell"] = entry.get("cell") if entry.get("cell") in ("lstm", "gru", "rnn") else "rnn"
            layer["num_layers"] = max(1, _int(entry.get("num_layers"), 1))
            layer["bidirectional"] = entry.get("bidirectional") is True
            layer["hidden_size"] = max(0, _int(entry.get("hidden_size")))
        if kind == "activation":
            layer["saturating"] = entry.get("saturating") is True
        layers.append(layer)
    hparams = raw.get("hparams") if isinstance(raw.get("hparams"), dict) else None
    out: dict[str, Any] = {
        "name": _text(raw.get("name"), "model") or "model",
        "framework": _text(raw.get("framework")),
        "device": _text(raw.get("device"), "?") or "?",
        "control": raw.get("control") is True,
        "input_shape": _shape(raw.get("input_shape")),
        "output_shape": _shape(raw.get("output_shape")),
        "segmentation": raw.get("segmentation") is True,
        "layers": layers,
        "grad_layers": [_text(n) for n in (raw.get("grad_layers") if isinstance(raw.get("grad_layers"), list)
                                           else [])[:MAX_LAYERS] if isinstance(n, str)],
    }
    if hparams is not None:
        out["hparams"] = {_text(k): v for k, v in hparams.items()
                          if isinstance(k, str) and _number(v) is not None}
    return out


def layer_depth(name: str) -> int:
    return name.count(".") + 1


def clean_rows(rows: Any) -> list[dict[str, float]]:
    """The rows of a ``metrics`` frame: each a dict with a numeric ``step``; other numbers kept as floats,
    anything else left out."""
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or _number(row.get("step")) is None:
            continue
        clean: dict[str, float] = {}
        for key, value in row.items():
            number = _number(value)
            if isinstance(key, str) and len(key) <= MAX_NAME and number is not None:
                clean[key] = number
        out.append(clean)
    return out


def receptive_fields(model: dict[str, Any]) -> dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
    """Layer name -> (size, jump, offset), each (y, x), of every layer that has a receptive field in the
    input: the chain of convolutions and poolings from the input on, in the order the description lists
    them, with the layers between that keep the picture (activations, norms) as they are. Stops at the
    first layer that has none (a linear layer, a recurrent one, a transposed convolution, anything that
    changes the picture's size without a geometry).

    The lecture's arithmetic, as the CNN family does it (``explorer.core.families.cnn.trainer``), per axis
    and with dilation: ``r_l = r_(l-1) + (d (k-1)) j_(l-1)``, ``j_l = j_(l-1) s``, ``o_l = o_(l-1) - p j_(l-1)``.
    """
    inp = model.get("input_shape") or []
    if len(inp) != 4:  # (N, C, H, W): only an image input has pixels to point at
        return {}
    r, j, o = [1, 1], [1, 1], [0, 0]
    hw = list(inp[2:])
    out: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {}
    for layer in model.get("layers", []):
        shape = layer.get("out_shape") or []
        if len(shape) != 4:
            break
        geo = layer.get("geometry")
        if layer["kind"] in ("conv", "pool") and geo is not None and layer["type"] != "ConvTranspose2d":
            for a in (0, 1):
                k = geo["dilation"][a] * (geo["kernel"][a] - 1) + 1
                o[a] -= geo["padding"][a] * j[a]
                r[a] += (k - 1) * j[a]
                j[a] *= geo["stride"][a]
        elif list(shape[2:]) != hw:  # no geometry, and the picture changed: no field to speak of
            break
        hw = list(shape[2:])
        out[layer["name"]] = ((r[0], r[1]), (j[0], j[1]), (o[0], o[1]))
    return out


def field_box(field: tuple[tuple[int, int], tuple[int, int], tuple[int, int]], y: int, x: int,
              image_hw: tuple[int, int] | list[int]) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Where unit (y, x) looks: (top, left, bottom, right), inclusive input pixels, clipped to the image, and
    the same unclipped (reaching into the padding)."""
    (ry, rx), (jy, jx), (oy, ox) = field
    top, left = oy + y * jy, ox + x * jx
    outer = (top, left, top + ry - 1, left + rx - 1)
    h, w = int(image_hw[0]), int(image_hw[1])
    return (max(top, 0), max(left, 0), min(outer[2], h - 1), min(outer[3], w - 1)), outer


# -- the read-only stand-in for a trainer ----------------------------------------------------------------

class RemoteDevice:
    """The device the script trains on, as the model description names it ("cuda:0"): its ``type`` and its
    name, as the window shows a ``torch.device`` (no torch device is made: the name may not exist here)."""

    def __init__(self, name: str):
        self.name = name or "?"
        self.type = self.name.split(":", 1)[0]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"RemoteDevice({self.name!r})"


class WatchedRun:
    """What the window reads of a session's trainer (``step``, ``epoch``, ``family``, ``config``, ``device``,
    ``describe()``), for a model that trains elsewhere. ``config`` is the model description."""

    family = WATCH_FAMILY
    batch_size = 0         # unknown: the script's batches are its own
    steps_per_epoch = 0

    def __init__(self, model: dict[str, Any], where: str, control: bool):
        self.config = model
        self.where = where
        self.control = control
        self.step = 0
        self.epoch = 0
        self.device = RemoteDevice(model.get("device", "?"))

    @property
    def name(self) -> str:
        return str(self.config.get("name", "model"))

    def describe(self) -> str:
        m = self.config
        params = sum(layer["params"] for layer in m.get("layers", []))
        parts = [f"{self.name} at {self.where}" if self.where else self.name,
                 f"{len(m.get('layers', []))} layers, {params:,} parameters"]
        if m.get("framework"):
            parts.append(f"{m['framework']} on {self.device}")
        if not self.control:
            parts.append("read-only")
        return " · ".join(parts)


# -- the session -----------------------------------------------------------------------------------------

class WatchSession:
    """A watched run as the window's :class:`~explorer.core.engine.protocol.Session` (see the module's
    docstring). ``welcome``: the fields of the connection's ``welcome`` frame (role and model); without it,
    the first frame of the source must be that ``welcome`` (a watch folder starts with one). ``where``
    names the run in notices (the address or the folder); ``live``: a running script is at the other end
    (a folder is not: it cannot answer an effective-receptive-field request)."""

    def __init__(self, source: Any, welcome: dict[str, Any] | None = None, *, where: str = "", live: bool = True,
                 wait: float = 5.0):
        self._source = source
        self.where = where
        self.live = live
        self.metrics = MetricsLog()
        self._windows = RowWindows()  # a row a step at first, coarser as a long run goes on (see RowWindows)
        self.run_id = 0
        self.run_info: dict[str, Any] = {}
        self.epochs: int | None = None
        self.error: str | None = None
        self.out_of_memory = False
        self.threads = 0           # the script's threads are its own: nothing to show or to set
        self.threads_in_use = 0
        self.thread_note = ""
        self.snapshot_seconds = 0.0  # what the views cost the script is the watcher's to pace (its budget)
        self.closed_reason: str | None = None
        self._lock = threading.Condition()
        self._notices: list[str] = []
        self._state = PAUSED
        self._mailbox: Snapshot | None = None
        self._seq = 0
        self._observers: list[Callable[[Snapshot], None]] = []
        self._snapshot_hz = 20.0
        self._rates: deque[tuple[float, float]] = deque(maxlen=512)  # (script's time, step) of recent rows
        self._stop = threading.Event()
        self._ended = False
        self._said_no_send = False
        if welcome is None:
            welcome = self._await_welcome(wait)
        self.role = welcome.get("role") if welcome.get("role") in ("control", "viewer") else "viewer"
        model = clean_model(welcome.get("model"))
        # control: the script allows it (watch(control=True)), this window was granted the control role, and a
        # running script is at the other end (a folder passes nothing on)
        self.control = bool(model["control"] and self.role == "control" and live)
        self.trainer = WatchedRun(model, where, self.control)
        self._thread = threading.Thread(target=self._read, name="watch-reader-thread", daemon=True)
        self._thread.start()

    def _await_welcome(self, wait: float) -> dict[str, Any]:
        """The source's first frames up to its ``welcome`` (a folder's model comes as one); ValueError if
        none comes in ``wait`` seconds or the stream ends first."""
        t_end = time.monotonic() + wait
        while time.monotonic() < t_end:
            frame = next_frame(self._source, min(READ_POLL_S, max(0.0, t_end - time.monotonic())))
            if frame is not None and frame.kind == "welcome" and isinstance(frame.fields, dict):
                return frame.fields
            if frame is not None and frame.kind in ("refused", "bye"):
                reason = frame.fields.get("reason") if isinstance(frame.fields, dict) else None
                raise ValueError(f"{self.where or 'the run'}: {_text(reason, 'refused', MAX_NOTICE)}")
            if frame is None and getattr(self._source, "closed_reason", None) is not None:
                raise ValueError(f"{self.where or 'the run'}: {_text(self._source.closed_reason, 'closed')}")
        raise ValueError(f"{self.where or 'the run'}: no model description came within {wait:g} s")

    # -- the reader thread -----------------------------------------------------------------------------
    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame = next_frame(self._source, READ_POLL_S)
            except Exception as exc:  # noqa: BLE001 - a broken stream ends it, with its reason
                if not self._stop.is_set():
                    self._end(escape_text(str(exc)) or type(exc).__name__)
                return
            if frame is None:
                reason = getattr(self._source, "closed_reason", None)
                if reason is not None and not self._stop.is_set():
                    self._end(_text(reason, "closed", MAX_NOTICE))
                    return
                continue
            try:
                if self._handle(frame):
                    return
            except Exception:  # noqa: BLE001 - one bad frame is skipped; the stream goes on
                log.warning("watch: a %r frame from %s could not be read", getattr(frame, "kind", "?"), self.where,
                            exc_info=True)

    def _handle(self, frame: FrameLike) -> bool:
        """Take in one frame; True when it ended the stream."""
        kind, fields = frame.kind, frame.fields if isinstance(frame.fields, dict) else {}
        if kind == "metrics":
            self._take_rows(clean_rows(fields.get("rows")))
        elif kind == "snapshot":
            self._take_snapshot(fields, dict(frame.arrays or {}))
        elif kind == "state":
            self._take_state(fields)
        elif kind == "notice":
            self.add_notices([_text(fields.get("text"), "", MAX_NOTICE)])
        elif kind == "refused":  # a command refused; the connection stays
            self.add_notices([f"refused: {_text(fields.get('reason'), 'no reason given', MAX_NOTICE)}"])
        elif kind == "bye":
            self._end(_text(fields.get("reason"), "the training script ended", MAX_NOTICE))
            return True
        return False

    def _take_rows(self, rows: list[dict[str, float]]) -> None:
        if not rows:
            return
        # each batch (a tick of the script's, 20 a second at most) averaged in windows on its own: its last
        # step is always a row, so a step taken while paused shows at once
        self.metrics.add_steps(window_means(rows, self._windows.every))
        self._windows.grown(len(self.metrics.steps))
        tr = self.trainer
        for row in rows:
            tr.step = max(tr.step, int(row["step"]))
            if "epoch" in row and math.isfinite(row["epoch"]):
                tr.epoch = max(tr.epoch, int(row["epoch"]))
            if "time" in row and math.isfinite(row["time"]):
                self._rates.append((row["time"], row["step"]))

    def _take_snapshot(self, fields: dict[str, Any], arrays: dict[str, Any]) -> None:
        raw = fields.get("scalars")
        scalars = {k: float(v) for k, v in (raw.items() if isinstance(raw, dict) else ())
                   if isinstance(k, str) and _number(v) is not None}
        step, epoch = max(0, _int(fields.get("step"))), max(0, _int(fields.get("epoch")))
        when = _number(fields.get("time"))
        with self._lock:
            self._seq += 1
            snap = Snapshot(self.run_id, self._seq, step, epoch, when if when is not None else 0.0, arrays, scalars)
            self._mailbox = snap
            self.trainer.step = max(self.trainer.step, step)
            self.trainer.epoch = max(self.trainer.epoch, epoch)
            observers = list(self._observers)
        for cb in observers:
            try:
                cb(snap)
            except Exception:  # noqa: BLE001 - an observer's fault must not stop the stream
                log.warning("watch: a snapshot observer failed", exc_info=True)

    def _take_state(self, fields: dict[str, Any]) -> None:
        state = {"running": RUNNING, "paused": PAUSED, "ended": FINISHED}.get(str(fields.get("state")))
        with self._lock:
            if state is not None and not self._ended:
                self._state = state
            self.trainer.step = max(self.trainer.step, _int(fields.get("step")))
            self._lock.notify_all()

    def _end(self, reason: str) -> None:
        """The stream ended (the script said bye, or the connection or folder went): the last views stay."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self.closed_reason = reason
            self._state = FINISHED
            self._lock.notify_all()
        where = f" at {self.where}" if self.where else ""
        self.add_notices([f"The training run{where} ended ({reason}); its last views stay on show."])

    # -- what the window reads -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def ended(self) -> bool:
        """The stream has ended (the script ended, the connection was lost or the session closed)."""
        return self._ended

    @property
    def is_alive(self) -> bool:
        """Whether the stream is still open (frames may come, commands may go)."""
        return not self._ended and self._thread.is_alive()

    @property
    def snapshot_hz(self) -> float:
        return self._snapshot_hz

    @property
    def step_rate(self) -> float | None:
        return None  # the script trains at its own pace

    @property
    def in_own_process(self) -> bool:
        """True: the model trains in the user's own process; drawing the views here never holds it up."""
        return True

    def latest_snapshot(self) -> Snapshot | None:
        return self._mailbox

    def pop_notices(self) -> list[str]:
        with self._lock:
            out, self._notices = self._notices, []
        return out

    def add_notices(self, notices: list[str]) -> None:
        notices = [n for n in notices if n]
        if notices:
            with self._lock:
                self._notices.extend(notices)

    def rates(self) -> tuple[float, float]:
        """(steps per second, 0.0): the script's steps over its last few seconds, by its own clock; the
        samples a second are unknown (its batches are its own)."""
        rows = list(self._rates)
        if self._state != RUNNING or len(rows) < 2:
            return 0.0, 0.0
        t1, s1 = rows[-1]
        t0, s0 = next(((t, s) for t, s in rows if t >= t1 - RATE_WINDOW_S), rows[0])
        return ((s1 - s0) / (t1 - t0) if t1 > t0 else 0.0), 0.0

    def subscribe(self, callback: Callable[[Snapshot], None] | None = None, pull: bool = False) -> None:
        """Ask for snapshots (and one now, so a paused script is seen at once); ``callback`` is called on
        the reader thread with each."""
        with self._lock:
            if callback is not None:
                self._observers.append(callback)
        self.request_snapshot()

    def unsubscribe(self, callback: Callable[[Snapshot], None] | None = None) -> None:
        with self._lock:
            if callback is None:
                self._observers.clear()
            elif callback in self._observers:
                self._observers.remove(callback)

    def snapshot_taken(self, seq: int) -> None:
        """(The script paces its snapshots itself: nothing to hold back here.)"""

    def thread_idle(self) -> bool:
        return self._state != RUNNING

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Block until the run is not running (paused or ended); False after ``timeout`` seconds."""
        t_end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._state == RUNNING:
                left = poll if t_end is None else min(poll, t_end - time.monotonic())
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    @property
    def read_only(self) -> bool:
        """Whether this window cannot drive the run (its Play and Step are greyed): the script gave no
        control, this window attached read-only, or the run is a folder's."""
        return not self.control

    # -- control ---------------------------------------------------------------------------------------
    def _send(self, fields: dict[str, Any]) -> bool:
        """Send a command; a notice (once) when it cannot go."""
        if self._ended:
            self.add_notices([f"The run{' at ' + self.where if self.where else ''} has ended: commands cannot "
                              "reach it any more."])
            return False
        try:
            self._source.send("command", fields)
            return True
        except Exception as exc:  # noqa: BLE001 - a lost connection is the reader's to report
            if not self._said_no_send:
                self._said_no_send = True
                self.add_notices([f"Could not send the command to {self.where or 'the run'}: "
                                  f"{escape_text(str(exc)) or type(exc).__name__}"])
            return False

    def _control(self, fields: dict[str, Any]) -> bool:
        """A command that needs the control role: sent, or a notice saying why not."""
        if not self.control:
            why = (FOLDER_READ_ONLY if not self.live else
                   READ_ONLY if not self.trainer.config["control"] else FOLLOWING)
            self.add_notices([why])
            return False
        return self._send(fields)

    def start(self) -> None:
        self._control({"cmd": "play"})

    def pause(self) -> None:
        self._control({"cmd": "pause"})

    def step(self, n: int = 1) -> None:
        self._control({"cmd": "step", "n": max(1, min(MAX_STEPS, int(n)))})

    def set_hparams(self, **changes: Any) -> None:
        """Only the learning rate, and only when the script passed its optimizer to ``watch``."""
        for key, value in changes.items():
            if key != "lr":
                self.add_notices([f"{key}: {NOT_AVAILABLE} (only the learning rate can be set from the window)"])
                continue
            number = _number(value)
            if number is None or not math.isfinite(number) or number <= 0:
                self.add_notices([f"learning rate refused: {value!r} is not a positive number"])
            elif "hparams" not in self.trainer.config:
                self.add_notices(["the learning rate can be set only when the script passes its optimizer to "
                                  "explorer.watch(..., optimizer=opt)"])
            elif self._control({"cmd": "set_lr", "lr": number}):
                self.trainer.config["hparams"]["lr"] = number

    def request_snapshot(self) -> None:
        """Ask the script for a snapshot soon (any role; a folder has only what was written)."""
        if self.live and not self._ended:
            self._send({"cmd": "snapshot"})

    def request_erf(self, layer: str, channel: int, y: int, x: int) -> bool:
        """Ask for the effective receptive field of one unit: the next snapshot carries ``erf/<layer>``."""
        if not self.live:
            self.add_notices(["The effective receptive field is computed by the running script: attach to "
                              "HOST:PORT to see it (a watch folder holds only what was written)."])
            return False
        return self._send({"cmd": "erf", "layer": str(layer), "channel": int(channel), "y": int(y), "x": int(x)})

    def reset(self) -> None:
        self.add_notices([f"Reset: {NOT_AVAILABLE} (the model is your script's)"])

    def set_device(self, name: str) -> None:
        self.add_notices([f"Device: {NOT_AVAILABLE} (your script chooses it)"])

    def set_threads(self, n: int | None) -> None:
        """Nothing to set (the script's threads are its own). Silent: the window sets the count on every
        session it shows, so a notice would greet each attach."""

    def set_snapshot_rate(self, hz: float) -> None:
        self._snapshot_hz = max(0.1, float(hz))

    def set_step_rate(self, steps_per_s: float | None) -> None:
        """The script trains at its own pace. Silent, as :meth:`set_threads`: the window passes its speed
        to every session it shows."""

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        """Nothing runs here: the commands work on a trainer's model (save, export, the panels' probes), and
        the model is in the user's script. ``on_done`` gets the error, and a notice says so too (not for
        the autosave, due every few minutes)."""
        error = NotImplementedError(f"{NOT_AVAILABLE}: the model is in your script (save or export it there)")
        if fn is not autosave_to:
            self.add_notices([str(error)])
        if on_done is not None:
            on_done(None, error)

    def close(self, timeout: float = 10.0) -> bool:
        """Close the connection (or stop reading the folder); the user's script goes on."""
        self._stop.set()
        with self._lock:
            self._ended = True
            if self._state == RUNNING:
                self._state = PAUSED
            self._lock.notify_all()
        try:
            self._source.close()
        except Exception:  # noqa: BLE001 - closing what may already be gone
            log.debug("watch: closing the source of %s failed", self.where, exc_info=True)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    stop = close
