"""Training in a child process, behind the same interface as :class:`TrainingSession`.

Why: a window draws on its GUI thread, and PySide6 and pyqtgraph hold Python's global lock for all of
that thread's time, the C++ painting included. A training thread in the same process waits for the
lock after every torch operation; a child process has its own interpreter and its own lock
(``benchmarks/process_headroom.py`` and ``docs/performance.md`` measure the difference).

How: the child runs an ordinary :class:`TrainingSession` and serves it over a pipe.

* The window's calls (``start``, ``pause``, ``step``, ``set_hparams``...) become messages of plain
  values; the child applies each with the same method of its session.
* The child sends back, in this order and in one stream: new metric rows, each new snapshot (already
  CPU numpy copies) and a small status (state, error, rates, step, epoch and the few trainer attributes
  the views read). An array that stays the same from snapshot to snapshot (a CNN's gallery of digits, its
  misclassified examples between two evaluations) is sent once, apart (``static``), and left out of the
  snapshots that follow while it stays the same: a quarter of a MiB less per CNN snapshot, for the pipe
  and for every window that follows the run on a training server. A :class:`ProcessSession` keeps the latest of each, so the window reads them as it
  reads a thread's session: ``metrics``, ``latest_snapshot()``, ``trainer.step``.
* Work on the model (save, export, a CNN probe...) is a ``run_command`` of a function from
  :mod:`explorer.core.persist.commands`, whose result comes back to its ``on_done``.
* Closures (``call_in_thread``) cannot cross: that method raises, so a forgotten one shows in tests.

The window's state follows its own calls at once (Play shows "training" before the child has heard it):
the child's reports overrule it only once they answer every call the window has made.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from explorer.core.engine.session import ERROR, PAUSED, RUNNING, STOPPED, MetricsLog, Snapshot, TrainingSession
from explorer.core.process import codec, worker
from explorer.core.process.messages import CONTROLS, MAX_ID, command_fault, request_fault
from explorer.core.process.warmup import warm_first_optimizer
from explorer.core.wire.frame import WireError, decode_frame, encode_frame

log = logging.getLogger(__name__)

# the trainer's attributes the window reads (besides step, epoch and device, sent in every status)
MIRRORED = ("family", "config", "batch_size", "steps_per_epoch", "class_names", "runs", "stages",
            "stage_index", "n_layers")
TICK_S = 0.02          # how often the child's main thread looks for news to send
STATUS_EVERY_S = 0.05  # a status at least this often while something changes; slow fields 4 times a second
SLOW_EVERY_S = 0.25
START_TIMEOUT_S = 300.0  # building a trainer loads its data: MNIST from disk, a user's image folder...


MESSAGE = "message"  # the one kind of frame on the pipe: {"m": the packed message} and its arrays
METRIC_ROWS_PER_MESSAGE = 2000  # step rows per message: well within a frame header's 1 MiB
MAX_MESSAGE_BYTES = 2**31  # a snapshot of the largest model the app builds is far below this
STATIC_MIN_BYTES = 16 << 10  # smaller arrays always travel in their snapshot (comparing costs what sending does)


def send(conn: Connection, message: Any) -> None:
    """Send one message as a frame of plain values and raw arrays (``explorer.core.process.codec``: no
    pickle). TypeError if it holds a value the other side could not rebuild."""
    tree, arrays = codec.pack(message)
    try:
        data = encode_frame(MESSAGE, {"m": tree}, arrays)
    except WireError as exc:  # too large or too deep for a frame: as any other value that cannot be sent
        raise TypeError(str(exc)) from None
    conn.send_bytes(data)


def receive(conn: Connection) -> Any:
    """The next message (EOFError/OSError when the pipe ends; WireError or CodecError for a bad frame)."""
    data = bytearray(conn.recv_bytes())  # writable: the arrays rebuilt over it are the message's own
    frame = decode_frame(data, max_body=MAX_MESSAGE_BYTES)
    if frame.kind == "refused":  # a training server's last word on a connection it ends
        raise WireError(f"refused: {str(frame.fields.get('reason', ''))[:300]}")
    if frame.kind != MESSAGE:
        raise WireError(f"a {frame.kind!r} frame on the training process's pipe")
    return codec.unpack(frame.fields.get("m"), dict(frame.arrays))


class TrainingProcessError(RuntimeError):
    """The training process could not start, or ended without being asked to."""


# -- the child ---------------------------------------------------------------------------------------------
def _build_session(spec: dict[str, Any]) -> tuple[TrainingSession, dict[str, Any]]:
    """The child's session from the window's request: a new trainer, or a saved run restored.

    ``spec["ranks"]`` (set by a training server started with ``--gpus N``, never by a window): N > 1 makes
    this process rank 0 of N training the model data-parallel (``explorer.core.process.lockstep``), for
    the families that can; the others train here alone, and a notice says so. A request of the wrong form
    is a ValueError naming the field (``messages.request_fault``), before anything is built."""
    fault = request_fault(spec)
    if fault:
        raise ValueError(fault)
    kwargs = spec.get("session", {})
    extra: dict[str, Any] = {}
    ranks = int(spec.get("ranks") or 1)
    notes: list[str] = []
    make_session: Callable[..., TrainingSession] = TrainingSession
    if ranks > 1:
        from explorer.core.process.lockstep import session_for

        make_session = functools.partial(session_for, ranks, notes)
    if spec.get("run_dir") or spec.get("run_files"):
        from explorer.core.persist.runfolder import load_run, load_run_files, restore_session

        # a saved run, or a model moved here from another machine (its run's files, checked as a folder's)
        run = load_run(spec["run_dir"]) if spec.get("run_dir") else load_run_files(spec["run_files"])
        session = restore_session(run, session_type=make_session, **kwargs)
        extra["run_info"] = session.run_info
    else:
        from explorer.core.families.registry import make_trainer

        session = make_session(make_trainer(spec["family"], spec["config"]), **kwargs)
    session.add_notices(notes)
    if spec.get("threads") is not None:
        session.set_threads(spec["threads"])
    if spec.get("step_rate") is not None:
        session.set_step_rate(spec["step_rate"])
    return session, extra


def _mirror(trainer: Any, slow: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"step": int(trainer.step), "epoch": int(trainer.epoch), "device": str(trainer.device)}
    if slow:
        for name in MIRRORED:
            value = getattr(trainer, name, None)
            if isinstance(value, dict):  # (a comparison's runs: their names are what the window reads)
                value = list(value)
            if value is not None and not callable(value):
                out[name] = value
        describe = getattr(trainer, "describe", None)
        out["describe"] = describe() if callable(describe) else out.get("family", "?")
        out["dataset_note"] = str(getattr(getattr(trainer, "dataset", None), "note", "") or "")
    return out


class _ChildServer:
    """The child's main thread: applies the window's messages and sends the session's news back."""

    CONTROLS = CONTROLS

    def __init__(self, conn: Connection, session: TrainingSession):
        self.conn = conn
        self.session = session
        self.acked = 0
        self._send_lock = threading.Lock()
        self._metrics_at = (-1, 0, 0)  # generation, steps sent, evals sent
        self._run_sent = session.run_id  # the run the last status reported
        self._sent_snapshot: Snapshot | None = None
        self._last_arrays: dict[str, Any] = {}  # each large array as last sent, in a snapshot or apart
        self._static: set[str] = set()          # those sent apart, and left out of snapshots while unchanged
        self._last_status: dict[str, Any] | None = None
        self._status_t = self._slow_t = 0.0

    def send(self, message: Any) -> None:
        with self._send_lock:
            send(self.conn, message)

    def serve(self) -> None:
        try:
            while True:
                if wait_for([self.conn], timeout=TICK_S):
                    while self.conn.poll():
                        try:
                            msg = receive(self.conn)
                        except (WireError, codec.CodecError):  # a bad frame is dropped, the run goes on
                            log.error("a message from the window could not be read", exc_info=True)
                            continue
                        fault = command_fault(msg)
                        if fault:  # (a training server refuses these first: a window's bug)
                            self._refuse(msg, fault)
                            continue
                        if not self._handle(msg):
                            return
                self._publish()
        except (EOFError, OSError):
            pass  # the window is gone: stop training and end
        finally:
            self.session.stop(timeout=30)
            try:
                self._publish(final=True)
                self.send(("stopped",))
            except (OSError, ValueError):
                pass

    def _refuse(self, msg: Any, fault: str) -> None:
        """Keep a message of the wrong form from the session: the window hears why (a notice, and the reply
        to a call), and it is counted answered as the window counted it sent (its calls wait for that)."""
        log.error("a message from the window was refused: %s", fault)
        self.session.add_notices([fault])
        tag = msg[0] if isinstance(msg, tuple) and msg else None
        call_id = msg[1] if tag == "call" and len(msg) > 1 else None
        if type(call_id) is int and -MAX_ID <= call_id < MAX_ID:
            self._reply(call_id, None, ValueError(fault))
        if tag == "call" or (tag == "do" and len(msg) > 1 and msg[1] is True):
            self.acked += 1

    def _handle(self, msg: tuple) -> bool:
        kind = msg[0]
        if kind == "stop":
            return False
        if kind == "do":  # ("do", counted, name, args, kwargs)
            _, counted, name, args, kwargs = msg
            if name == "refused":  # a training server kept a request from the window: the window hears why
                self.session.add_notices([str(args[0]) if args else "a request was refused"])
            elif name in self.CONTROLS:
                try:
                    getattr(self.session, name)(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - a refused call is a message, the run goes on
                    self.session.add_notices([f"{type(exc).__name__}: {exc}"])
            if counted:
                self.acked += 1
        elif kind == "resync":  # a window connected again (a training server): everything anew
            self._metrics_at = (-1, 0, 0)
            self._sent_snapshot, self._last_status, self._slow_t = None, None, 0.0
            self._last_arrays, self._static = {}, set()
            self.send(("resynced", self.acked))
        elif kind == "query":  # ("query", id, fn, args, kwargs): a follower's question, through a training
            _, call_id, fn, args, kwargs = msg  # server; not one of the window's calls: not counted
            self.session.run_command(fn, *args, on_done=functools.partial(self._reply, call_id), **kwargs)
        elif kind == "call":  # ("call", id, fn, args, kwargs)
            _, call_id, fn, args, kwargs = msg
            self.session.run_command(fn, *args, on_done=functools.partial(self._reply, call_id), **kwargs)
            self.acked += 1
        return True

    def _reply(self, call_id: int, result: Any, error: BaseException | None) -> None:
        try:
            self.send(("reply", call_id, result, error))
        except TypeError as exc:  # a result the window could not rebuild (see codec.pack)
            self.send(("reply", call_id, None, RuntimeError(f"the result could not be sent: {exc}")))

    def _publish(self, final: bool = False) -> None:
        s = self.session
        now = time.monotonic()
        # the status first: rows and a snapshot read after it include all it reports as done
        # a reset brings its new configuration and description in the same status as its run id: the window
        # reads them when it sees the new run (a slow report later left the old task's title up)
        slow = final or now - self._slow_t >= SLOW_EVERY_S or s.run_id != self._run_sent
        self._run_sent = s.run_id
        # the values differ by key (strings, numbers, the rates' pair, the mirrored fields): a message
        status: dict[str, Any] = {
            "state": s.state, "error": s.error, "out_of_memory": s.out_of_memory, "threads": s.threads,
            "threads_in_use": s.threads_in_use, "thread_note": s.thread_note,
            "rates": s.rates(), "run_id": s.run_id, "idle": s.thread_idle(), "settled": s.settled(),
            "acked": self.acked, "snapshot_seconds": s.snapshot_seconds,
            "fields": _mirror(s.trainer, slow)}
        notices = s.pop_notices()
        gen, steps_at, evals_at = self._metrics_at
        gen2, steps, steps_end, evals, evals_end = s.metrics.read_since(gen, steps_at, evals_at)
        if gen2 != gen or steps or evals:
            # in pieces: a frame's header (where the rows go) has a size limit, and a reopened run's
            # history or a long burst of fast steps can pass it; the window clears only on a new generation
            for i in range(0, max(len(steps), 1), METRIC_ROWS_PER_MESSAGE):
                self.send(("metrics", gen2, steps[i:i + METRIC_ROWS_PER_MESSAGE], evals if i == 0 else []))
            self._metrics_at = (gen2, steps_end, evals_end)
        snap = s.latest_snapshot()
        if snap is not None and snap is not self._sent_snapshot:
            self.send(("snapshot", *self._thin(snap)))
            self._sent_snapshot = snap
        quick = {k: v for k, v in status.items() if k not in ("rates", "fields", "snapshot_seconds")}
        changed = quick != self._last_status or notices
        if slow or changed or (status["state"] == RUNNING and now - self._status_t >= STATUS_EVERY_S):
            status["notices"] = notices
            self.send(("status", status))
            self._last_status, self._status_t = quick, now
            if slow:
                self._slow_t = now


    def _thin(self, snap: Snapshot) -> tuple[Snapshot, tuple[str, ...]]:
        """``snap`` without the large arrays sent apart already and unchanged since, and their names.

        An array equal to the one last sent under its name is sent apart once (``("static", name, array)``,
        a message a relay never drops, unlike a snapshot) and left out from then on, until it changes: it
        then travels in its snapshot again."""
        arrays, left_out = {}, []
        for name, array in snap.arrays.items():
            if isinstance(array, np.ndarray) and array.nbytes >= STATIC_MIN_BYTES:
                last = self._last_arrays.get(name)
                self._last_arrays[name] = array
                # (a trainer that hands out the same read-only array while it has not changed is known
                # unchanged without comparing: the CNN's gallery and misclassified digits)
                if last is not None and (last is array or (last.shape == array.shape and last.dtype == array.dtype
                                                           and np.array_equal(last, array))):
                    if name not in self._static:
                        self.send(("static", name, array))
                        self._static.add(name)
                    left_out.append(name)
                    continue
                self._static.discard(name)
            arrays[name] = array
        if not left_out:
            return snap, ()
        return dataclasses.replace(snap, arrays=arrays), tuple(left_out)


def serve_child(conn: Connection, warm: bool = True) -> None:
    """A training process's life: wait for the window's request, build the session, serve it, end.
    ``warm``: a spare, waiting, takes the first optimiser's imports meanwhile (not a child of the forking
    process: that one takes them once for the children forked after its first)."""
    if warm and not conn.poll(0):
        warm_first_optimizer()
    try:
        spec = receive(conn)
    except (EOFError, OSError):
        return
    except (WireError, codec.CodecError) as exc:  # (a training server refuses these first)
        spec = exc
    if spec is None:  # a spare that is no longer needed
        return
    try:
        if isinstance(spec, Exception):
            raise ValueError(f"malformed session request: {spec}")
        session, extra = _build_session(spec)
    except BaseException as exc:  # noqa: BLE001 - the window shows it and keeps running
        # the traceback goes to the log alone: the window may be on another machine, and the reason is the
        # exception's message (its third field stays, empty, for the windows that read three)
        log.error("the training process could not build its session", exc_info=True)
        try:
            send(conn, ("failed", exc, ""))
        except (OSError, ValueError, TypeError):
            pass
        return
    server = _ChildServer(conn, session)
    send(conn, ("ready", _mirror(session.trainer, slow=True), session.run_id, extra))
    server.serve()


# -- the window's side -------------------------------------------------------------------------------------
class TrainerMirror:
    """The trainer's attributes the window reads, as the training process last reported them (read-only).

    An attribute the trainer does not have is missing here too, so ``getattr(tr, name, default)`` works
    as on the trainer itself."""

    def __init__(self, fields: dict[str, Any]):
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("_fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(f"the training process did not report {name!r}")

    @property
    def device(self) -> torch.device:
        return torch.device(self._fields["device"])

    @property
    def dataset(self) -> SimpleNamespace:
        return SimpleNamespace(note=self._fields.get("dataset_note", ""))

    def describe(self) -> str:
        return str(self._fields.get("describe", self._fields.get("family", "?")))


class ProcessSession:
    """A :class:`TrainingSession` in a training process, driven from here through the same methods.

    Construction blocks until the process has built the trainer (it loads the data), and raises what the
    process raised (a ``DataError``, a ``RunFolderError``...) if it could not.
    """

    def __init__(self, config: Any = None, *, family: str | None = None, run_dir: str | None = None,
                 run_files: dict[str, Any] | None = None, threads: int | None = None,
                 start_timeout: float = START_TIMEOUT_S, **session_kwargs: Any):
        from explorer.core.families.registry import family_of_config

        if run_dir is None and run_files is None:
            if family is None:
                family = family_of_config(config)
            if family is None:
                raise ValueError(f"no model family has the configuration {type(config).__name__}")
        # run_files: a run's files (persist.commands.run_files), a model moved here from another session
        self._spec = {"family": family, "config": config, "run_dir": str(run_dir) if run_dir else None,
                      "threads": threads, "step_rate": None, "session": session_kwargs}
        if run_files is not None:
            self._spec["run_files"] = run_files
        self._hz = float(session_kwargs.get("snapshot_hz", 20.0))
        self.epochs = session_kwargs.get("epochs")
        self._lock = threading.Condition()
        self._send_lock = threading.Lock()
        self.run_info: dict[str, Any] = {}
        self._offset = (0, 0)  # (run_id, seq) added to the process's own, so a restarted process counts on
        self._start(start_timeout)

    # -- the process ---------------------------------------------------------------------------------------
    def _start(self, timeout: float) -> None:
        """Hand the request to a training process and wait for its first report (or its refusal)."""
        try:
            self._process, self._conn = self._open_process()
        except (OSError, ValueError, NotImplementedError) as exc:  # no process could be started here
            log.error("no training process could be started", exc_info=True)
            raise TrainingProcessError(f"no training process could be started ({type(exc).__name__}: {exc})") from exc
        self.metrics = MetricsLog()
        self._metrics_gen: int | None = -1
        self._mailbox: Snapshot | None = None
        self._static: dict[str, Any] = {}  # the arrays sent apart (see _ChildServer._thin), by name
        self._notices: list[str] = []
        self._replies: dict[int, Callable[[Any, BaseException | None], None]] = {}
        self._call_ids = 0
        self._sent = 0
        self._acked = 0
        self._closing = False
        self._gone = False
        self._state, self.out_of_memory = PAUSED, False
        self.error: str | None = None
        self._idle, self._settled = True, False
        self._rates = (0.0, 0.0)
        self.snapshot_seconds = 0.0  # the process's time spent taking snapshots, as last reported
        self.threads = int(self._spec["threads"] or torch.get_num_threads())
        self.threads_in_use, self.thread_note = self.threads, ""
        try:
            self._request()
            if not self._conn.poll(timeout):
                raise TrainingProcessError(f"the training process did not start within {timeout:.0f} s")
            reply = receive(self._conn)
        except (EOFError, OSError) as exc:
            self._end_process()
            log.error("the training process ended while starting (exit code %s)", self._process.exitcode)
            raise TrainingProcessError(f"the training process ended while starting "
                                       f"(exit code {self._process.exitcode})") from exc
        except BaseException:
            self._end_process()
            raise
        if reply[0] == "failed":
            self._end_process()
            raise reply[1]
        _, fields, run_id, extra = reply
        self.trainer = TrainerMirror(fields)
        self.run_info = extra.get("run_info", {})
        self.run_id = run_id + self._offset[0]
        self._ended_by_process = False  # True once the process said "stopped" (not a lost stream)
        self._awaiting_resync, self._sent_at_resync = False, 0
        self._receiver = threading.Thread(target=self._receive, name="training-process-reader", daemon=True)
        self._receiver.start()

    def _open_process(self) -> tuple[Any, Any]:
        """The training process and the window's end of its pipe (a remote session connects instead)."""
        return worker.take()

    def _request(self) -> None:
        """Ask the new process for the session (a follower asks nothing: the run is someone else's)."""
        send(self._conn, self._spec)

    def _end_process(self, timeout: float = 10.0) -> bool:
        """Wait for the process to end (killing it after ``timeout``); True when it ended by itself."""
        self._process.join(timeout)
        clean = not self._process.is_alive()
        if not clean:
            self._process.kill()
            self._process.join(5)
        self._conn.close()
        return clean

    def _receive(self) -> None:
        """The reader thread: applies the process's news as it comes, in order."""
        conn = self._conn
        while True:
            try:
                msg = receive(conn)
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - a frame that cannot be read (WireError, CodecError...): report, go on
                log.error("a message from the training process could not be read", exc_info=True)
                continue
            try:
                self._apply(msg)
            except Exception:  # noqa: BLE001 - a message of the wrong shape (another version, a hostile peer)
                log.error("a message from the training process could not be applied", exc_info=True)
                continue
            if isinstance(msg, tuple) and msg and msg[0] == "stopped":
                self._ended_by_process = True
                break
        if conn is self._conn:  # (a remote session's old connection, replaced meanwhile, is no loss)
            self._lost()

    def _apply(self, msg: Any) -> None:
        """One message of the process, applied (the reader thread's work)."""
        kind = msg[0]
        if kind == "metrics":
            if self._awaiting_resync:  # rows from before a resync: its full resend replaces them
                return
            _, gen, steps, evals = msg
            if gen != self._metrics_gen:
                self.metrics.clear()
                self._metrics_gen = gen
            self.metrics.add_steps(steps)
            for row in evals:
                self.metrics.add_eval(row)
        elif kind == "snapshot":
            if self._awaiting_resync:  # (taken while no window was there: an array it left out may have
                return                 # changed unseen since; the process sends everything anew after the resync)
            snap = msg[1]
            if len(msg) > 2 and msg[2]:  # the large arrays it left out: unchanged since they came apart
                if any(name not in self._static for name in msg[2]):
                    log.warning("a snapshot without its arrays came before them; left out")
                    return
                snap = dataclasses.replace(snap, arrays={**snap.arrays,
                                                         **{name: self._static[name] for name in msg[2]}})
            if self._offset != (0, 0):
                snap = dataclasses.replace(snap, run_id=snap.run_id + self._offset[0],
                                           seq=snap.seq + self._offset[1])
            self._mailbox = snap
        elif kind == "static":  # ("static", name, array): a snapshot's array that stays the same
            self._static[str(msg[1])] = msg[2]
        elif kind == "status":
            self._apply_status(msg[1])
        elif kind == "reply":
            _, call_id, result, error = msg
            with self._lock:
                on_done = self._replies.pop(call_id, None)
            if on_done is not None:
                self._call_back(on_done, result, error)
        elif kind == "resynced":
            self._resynced(msg[1])
        elif kind == "notice":  # a training server's word on a request of ours
            self._add_notices([str(msg[1])[:500]])

    def _resynced(self, acked: int) -> None:
        """The process's answer to a ``resync`` (a remote session's, after connecting again): its curves
        come again whole, and the calls made since the resync are the ones it has yet to answer."""
        with self._lock:
            # what the window sent before the connection dropped and the process never had (a Pause, a Play:
            # lost with the connection): said, as the run goes on as it was
            lost = self._sent_at_resync - int(acked)
            self._sent = int(acked) + (self._sent - self._sent_at_resync)
            self._acked = int(acked)
            self._metrics_gen = None  # the next rows are a new generation: the curves are replaced
            self._awaiting_resync = False
            if lost > 0:
                self._notices.append(f"{lost} command{'s' if lost > 1 else ''} sent as the connection dropped "
                                     f"did not reach the run; it goes on as it was (as shown now)")
            self._lock.notify_all()

    @staticmethod
    def _call_back(on_done: Callable[[Any, BaseException | None], None], result: Any,
                   error: BaseException | None) -> None:
        try:
            on_done(result, error)
        except Exception:  # noqa: BLE001 - a caller's fault must not end the reader
            traceback.print_exc()

    def _apply_status(self, st: dict[str, Any]) -> None:
        self.trainer._fields = {**self.trainer._fields, **st["fields"]}
        with self._lock:
            self._rates = tuple(st["rates"])
            self.snapshot_seconds = st["snapshot_seconds"]
            self.threads = st["threads"]
            self.threads_in_use, self.thread_note = st["threads_in_use"], st["thread_note"]
            self.run_id = st["run_id"] + self._offset[0]
            self._notices.extend(st.get("notices", ()))
            self._acked = st["acked"]
            if self._acked >= self._sent:  # it answers every call made from here: its word stands
                self._state, self.error, self.out_of_memory = st["state"], st["error"], st["out_of_memory"]
                self._idle, self._settled = st["idle"], st["settled"]
            self._lock.notify_all()

    def _lost(self) -> None:
        """The stream ended: after a close, as asked; otherwise the process died (killed, out of memory)."""
        with self._lock:
            self._gone = True
            replies, self._replies = self._replies, {}
            if not self._closing:
                self._process.join(1)
                code = self._process.exitcode
                self.error = (f"the training process ended unexpectedly (exit code {code}); "
                              "press Reset to start a new one from the current settings")
                log.error("the training process (pid %s) ended unexpectedly, exit code %s", self._process.pid, code)
                self._state = ERROR
                self._notices.append(self.error)
            else:
                self._state = STOPPED
            self._idle = self._settled = True
            self._lock.notify_all()
        for on_done in replies.values():
            self._call_back(on_done, None, TrainingProcessError(self.error or "the training process has ended"))

    def _send(self, message: tuple, counted: bool = True, optimistic: dict[str, Any] | None = None) -> bool:
        """Send a message; ``optimistic`` sets local state at once, until the process's answer arrives."""
        with self._lock:
            if self._gone:
                return False
            if counted:  # counted before it is sent: no report older than this call can overrule it
                self._sent += 1
                self._settled = False
            for name, value in (optimistic or {}).items():
                setattr(self, name, value)
        # (not under the lock: a send that waits for room in the pipe must not hold up the reader)
        with self._send_lock:
            try:
                send(self._conn, message)
            except (OSError, ValueError):
                return False
        return True

    def _do(self, name: str, *args: Any, counted: bool = True, optimistic: dict[str, Any] | None = None,
            **kwargs: Any) -> bool:
        return self._send(("do", counted, name, args, kwargs), counted, optimistic)

    # -- control (the TrainingSession interface) --------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def is_alive(self) -> bool:
        return not self._gone and self._process.is_alive()

    @property
    def in_own_process(self) -> bool:
        """True: training runs in a process of its own (see ``explorer.core.engine.protocol``)."""
        return True

    def start(self) -> None:
        if self._state not in (STOPPED,):
            self._do("start", optimistic={"_state": RUNNING, "error": None, "out_of_memory": False, "_idle": False})

    resume = start

    def pause(self) -> None:
        self._do("pause", optimistic={"_state": PAUSED} if self._state == RUNNING else None)

    def step(self, n: int = 1) -> None:
        self._do("step", n, optimistic={"_state": PAUSED, "error": None, "_idle": False})

    def reset(self) -> None:
        if self._gone and not self._closing:  # the process died: a new one, from the current settings
            try:
                self._restart()
            except Exception as exc:  # noqa: BLE001 - the window shows it and keeps running
                log.error("could not start a new training process", exc_info=True)
                with self._lock:
                    self._gone, self._state = True, ERROR
                    self.error = f"could not start a new training process: {type(exc).__name__}: {exc}"
                    self._notices.append(self.error)
            return
        self._do("reset")

    def _restart(self) -> None:
        self._spec = {**self._spec, "family": self.trainer._fields.get("family", self._spec["family"]),
                      "config": self.trainer._fields.get("config", self._spec["config"]), "run_dir": None,
                      "run_files": None}
        seq = self._mailbox.seq if self._mailbox is not None else 0
        self._offset = (self.run_id + 1, seq + 1)
        self._start(START_TIMEOUT_S)
        self.request_snapshot()
        worker.prepare()  # and a spare again, for the next session

    def set_hparams(self, **changes: Any) -> None:
        self._do("set_hparams", **changes)

    def set_device(self, name: str) -> None:
        from explorer.core.engine.devices import resolve_device

        resolve_device(name)  # an unavailable choice raises DeviceError here, as the thread's session does
        self._do("set_device", name)

    def set_threads(self, n: int | None) -> None:
        self._do("set_threads", n)

    def set_snapshot_rate(self, hz: float) -> None:
        self._hz = max(0.1, float(hz))
        self._do("set_snapshot_rate", hz, counted=False)

    @property
    def snapshot_hz(self) -> float:
        return self._hz

    def set_step_rate(self, steps_per_s: float | None) -> None:
        rate = None if steps_per_s is None or not float(steps_per_s) > 0 else float(steps_per_s)
        self._spec["step_rate"] = rate  # (a training process started again after a failure keeps it)
        self._do("set_step_rate", rate, counted=False)

    @property
    def step_rate(self) -> float | None:
        return self._spec.get("step_rate")

    def set_epochs(self, epochs: int | None) -> None:
        self.epochs = epochs
        self._do("set_epochs", epochs)

    def call_in_thread(self, fn: Callable[[], None]) -> None:
        raise TypeError("a closure cannot cross to the training process: use run_command with a function of "
                        "explorer.core.persist.commands")

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        """Run ``fn(session, *args, **kwargs)`` in the training process between steps (see TrainingSession)."""
        with self._lock:
            self._call_ids += 1
            call_id = self._call_ids
            if on_done is not None:
                self._replies[call_id] = on_done
        if not self._send(("call", call_id, fn, args, kwargs)):
            with self._lock:
                self._replies.pop(call_id, None)
            if on_done is not None:
                on_done(None, TrainingProcessError(self.error or "the training process has ended"))

    def request_snapshot(self) -> None:
        self._do("request_snapshot", counted=False)

    def stop(self, timeout: float = 10.0) -> bool:
        """End the training process (it finishes its step and sends its last rows); True when it ended."""
        with self._lock:
            if self._closing:
                return not self._process.is_alive()
            self._closing = True
        with self._send_lock:
            try:
                send(self._conn, ("stop",))
            except (OSError, ValueError):
                pass
        self._receiver.join(timeout)  # the last rows and snapshot arrive before "stopped"
        clean = self._end_process(timeout=2.0 if self._gone else timeout)
        self._receiver.join(1)
        with self._lock:
            self._gone = True
            self._state = STOPPED
        return clean

    close = stop

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Block until the process reports it settled after all calls made from here (as TrainingSession.wait)."""
        t_end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not (self._gone or (self._settled and self._acked >= self._sent)):
                left = poll if t_end is None else min(poll, t_end - time.monotonic())
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def settled(self) -> bool:
        return self._gone or (self._settled and self._acked >= self._sent)

    def thread_idle(self) -> bool:
        return self._state != RUNNING and self._idle

    # -- observers ---------------------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Snapshot], None] | None = None, pull: bool = False) -> None:
        if callback is not None:
            raise TypeError("a callback cannot cross to the training process: poll latest_snapshot()")
        self._do("subscribe", pull=pull, counted=False)

    def unsubscribe(self, callback: Callable[[Snapshot], None] | None = None) -> None:
        self._do("unsubscribe", counted=False)

    def snapshot_taken(self, seq: int) -> None:
        self._do("snapshot_taken", int(seq) - self._offset[1], counted=False)

    def latest_snapshot(self) -> Snapshot | None:
        return self._mailbox

    def pop_notices(self) -> list[str]:
        with self._lock:
            out, self._notices = self._notices, []
        return out

    def _add_notices(self, notices: list[str]) -> None:
        with self._lock:
            self._notices.extend(notices)

    def rates(self) -> tuple[float, float]:
        return self._rates if self._state == RUNNING else (0.0, 0.0)

    def history(self) -> list[dict[str, float]]:
        return [dict(r) for r in self.metrics.evals if r.get("epoch_end")]
