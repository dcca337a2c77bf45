"""The training engine: one background thread that owns the loop, and what observers get from it.

A :class:`TrainingSession` wraps a family-specific :class:`Trainer` (the RBM today, more
families later) and runs it on a plain ``threading.Thread`` — no Qt here, so the same
engine serves the GUI, the command line, the benchmarks and a headless GPU machine.

* Control (start/pause/resume/step/stop/reset, hyper-parameter and device changes) is a
  set of flags and queued commands, applied *between* steps by the training thread.
* Observers never touch live tensors: they get :class:`Snapshot` objects holding CPU numpy
  copies, produced at most ``snapshot_hz`` times per second and kept in a one-slot mailbox
  (newest wins), so a slow view can never slow training.
* Metrics (the curves) go into a :class:`MetricsLog`, every step or every N steps, with
  nothing dropped: on a GPU they are gathered as device tensors and copied in batches, so
  no step waits for the device.

The trainer interface, the snapshot and the metrics log live in :mod:`.trainer`, :mod:`.snapshot` and
:mod:`.metrics`; they are imported here too, so ``from explorer.core.engine.session import Snapshot``
(and ``Trainer``, ``MetricsLog``) keeps working.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from explorer.core.engine.metrics import MetricsLog, RowWindows
from explorer.core.engine.snapshot import Snapshot
from explorer.core.engine.threads import ThreadTuner
from explorer.core.engine.trainer import Trainer, samples_per_step, samples_trained

log = logging.getLogger(__name__)

# after choosing its thread count, the engine checks the choice again after this many seconds of
# training, then after twice as many, up to RECHECK_MAX_S (a check takes about 0.2 s of training)
RECHECK_FIRST_S = 10.0
RECHECK_MAX_S = 480.0

# States a session can be in.
PAUSED = "paused"      # thread alive, waiting for start/step
RUNNING = "running"
FINISHED = "finished"  # reached its epoch budget; start() trains further
ERROR = "error"        # a step raised or diverged; the message is in ``session.error``
STOPPED = "stopped"    # thread ended; the trainer is kept for saving and inspection

SHORT_WINDOW_S = 0.25  # pending step metrics wait at most this long for their window to fill (see RowWindows)
PULL_SPACING = 0.5  # in pull mode, snapshots at least this share of 1/hz apart (see _maybe_snapshot)
PACED_POLL_S = 0.05  # paced (a step rate set): the thread looks for a snapshot to take this often between steps
DEFAULT_THREADS = torch.get_num_threads()  # torch's intra-op threads for this machine (set at import)



class TrainingSession:
    """Runs a :class:`Trainer` on a background thread and publishes snapshots and metrics.

    The thread starts paused when the session is created and lives until :meth:`close`.
    """

    def __init__(self, trainer: Trainer, *, snapshot_hz: float = 20.0, metrics_every: int = 1,
                 eval_every: int = 0, epochs: int | None = None, name: str = "training",
                 metrics: MetricsLog | None = None, eval_fraction: float | None = 0.02,
                 tune_threads: bool = True):
        self.trainer = trainer
        self.epochs = epochs
        self.metrics = metrics or MetricsLog()  # a restored run brings its curves
        self.error: str | None = None
        self.out_of_memory = False  # the last failure was the device running out of memory
        self.run_id = 0
        self.run_info: dict[str, Any] = {}  # a reopened run's run.json (restore_session)
        self.threads = DEFAULT_THREADS  # intra-op threads the training thread may use (see set_threads)
        # how many it uses: on the CPU a ThreadTuner times the first steps at 1..threads and keeps the
        # fastest (``tune_threads``); ``thread_note`` says what it measured
        self.threads_in_use = DEFAULT_THREADS
        self.thread_note = ""
        self.tune_threads = tune_threads
        self._tuner: ThreadTuner | None = None
        self._recheck_at: float | None = None  # training seconds at which the choice is checked again
        self._recheck_gap = RECHECK_FIRST_S
        self._plan_threads()  # the training thread applies the count when it starts (_loop)
        self._snapshot_hz = float(snapshot_hz)
        # the most steps a second while running (None: as fast as the machine goes); see set_step_rate
        self._step_rate: float | None = None
        self._next_step_t = 0.0  # paced: when the next step is due (time.perf_counter())
        self._snapshot_step = -1  # the trainer's step at the last snapshot (paced: no second one of the same step)
        # a row of the curves every ``metrics_every`` steps (their means), coarser as a long run goes on
        self._windows = RowWindows(metrics_every, len(self.metrics.steps))
        self._epoch_sums: dict[str, list[float]] = {}  # the steps' metrics summed since the last epoch's end
        self._eval_every = max(0, int(eval_every))
        # evaluations may cost at most this share of the training time (None: evaluate every epoch);
        # the last epoch of a budget is always evaluated
        self._eval_fraction = eval_fraction
        self._eval_seconds = 0.0
        self._train_seconds = 0.0
        # what the evaluations' share is of: the training time, where a paced step counts its whole
        # interval (slowed down to watch, the thread waits most of the time: at 2 steps a second a share
        # of the steps' own milliseconds allowed no held-out evaluation for minutes)
        self._eval_budget_base = 0.0
        self.snapshot_seconds = 0.0  # training-thread time spent taking snapshots (what views cost training)
        self._cond = threading.Condition()
        self._commands: list[Callable[[], None]] = []
        self._paused = True
        self._pending_steps = 0
        self._stop = False
        self._state = PAUSED
        self._busy = False  # the thread is between taking work and finishing it
        self._notices: list[str] = []
        self._observers: list[Callable[[Snapshot], None]] = []
        self._snapshots_wanted = False
        self._mailbox: Snapshot | None = None
        self._seq = 0
        # pull mode (a window that draws what it takes): no new snapshot until the last one was taken,
        # so none is computed only to be overwritten unseen (see subscribe and snapshot_taken)
        self._pull = False
        self._taken_seq = 0
        self._last_snapshot_t = 0.0
        self._snapshot_requested = False
        self._pending_metrics: list[tuple[int, int, dict[str, torch.Tensor]]] = []
        # flushed metrics on their way to the CPU, each with its CUDA event (None: already there)
        self._metric_copies: list[tuple[list, Any]] = []
        self._flush_every = 50        # steps per metrics transfer (and at most 0.1 s apart)
        # the last good weights (step, epoch, copies of the state tensors), taken when the metrics
        # up to that step were finite; a divergence goes back to them
        self._good: tuple[int, int, dict[str, torch.Tensor]] | None = None
        self._good_t = 0.0
        self.checkpoint_seconds = 2.0  # at most one copy every this many seconds of training
        self._last_flush_t = time.perf_counter()
        self._rate_window: list[tuple[float, int]] = []
        self._epoch_t0 = time.perf_counter()
        self._epoch_step0 = trainer.step
        self._thread = threading.Thread(target=self._loop, name=f"{name}-thread", daemon=True)
        self._thread.start()

    # -- control (any thread) --------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def in_own_process(self) -> bool:
        """False: training runs on a thread of this process (see ``explorer.core.engine.protocol``)."""
        return False

    def start(self) -> None:
        """Start or resume continuous training (also continues a finished or failed run)."""
        self.out_of_memory = False
        with self._cond:
            if self._stop:
                return
            self._paused = False
            self._pending_steps = 0
            self.error = None
            if self.epochs is not None and self.trainer.epoch >= self.epochs:
                self.epochs = None  # pressing Play after the budget keeps training
            self._state = RUNNING
            self._cond.notify_all()

    resume = start

    def pause(self) -> None:
        """Pause; takes effect before the next step. A running session then publishes a snapshot of the
        model as it stands, so paused views show the step the status bar shows (the last snapshot taken
        while running may be a few steps older, and nothing else would replace it)."""
        with self._cond:
            self._paused = True
            self._pending_steps = 0
            if self._state == RUNNING:
                self._state = PAUSED
                self._snapshot_requested = True
            self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Pause (if running) and do exactly ``n`` more steps."""
        with self._cond:
            if self._stop:
                return
            self._paused = True
            self._pending_steps += max(1, int(n))
            self.error = None
            self._state = PAUSED
            self._cond.notify_all()

    def reset(self) -> None:
        """Re-initialise the model from the seed, clear the curves; keeps the paused/running state."""
        self._post(self._do_reset)

    def set_hparams(self, **changes: Any) -> None:
        """Queue hyper-parameter changes, applied between steps by the training thread."""
        def apply() -> None:
            try:
                self.add_notices(self.trainer.apply_hparams(changes))
            except ValueError as exc:  # a refused value is a message, not a failure of the run
                self.add_notices([f"setting refused: {exc}"])

        self._post(apply)

    def set_device(self, name: str) -> None:
        from explorer.core.engine.devices import resolve_device  # local: keeps import order simple

        device = resolve_device(name)  # raises DeviceError for an unavailable choice, in the caller's thread

        def move() -> None:
            self._flush_metrics()
            self.trainer.to_device(device)
            self._good = None  # the next good copy is taken on the new device
            self.add_notices([f"now training on {device}"])
            self._retune()
            self._snapshot_requested = True

        self._post(move)

    def set_threads(self, n: int | None) -> None:
        """How many intra-op threads the training thread's tensor operations use (None: torch's default).

        The setting belongs to the training thread (OpenMP keeps it per thread), so it is applied there,
        between steps. A window showing live views keeps one core for itself this way: on a machine
        whose cores the training saturates, the views' painting otherwise stalls both of torch's
        threads at every parallel operation (one waits for the other, preempted by the window).
        """
        count = DEFAULT_THREADS if n is None else max(1, int(n))

        def apply() -> None:
            self.threads = count
            self._retune()

        self._post(apply)

    @property
    def choosing_threads(self) -> bool:
        """True while the first steps are being timed at each thread count (see ThreadTuner): a benchmark
        of the steady state warms up past it. A later check of the choice does not count."""
        return self._tuner is not None and not self.thread_note

    def set_snapshot_rate(self, hz: float) -> None:
        self._snapshot_hz = max(0.1, float(hz))

    @property
    def snapshot_hz(self) -> float:
        return self._snapshot_hz

    def set_step_rate(self, steps_per_s: float | None) -> None:
        """Train at most ``steps_per_s`` steps a second while running (None or 0: full speed, the default).

        For watching: an RBM does thousands of steps a second, far too fast to follow. Between two paced
        steps the training thread waits on its condition (no busy loop), so a pause, a step, a command or a
        stop is seen at once, and it takes the snapshots the views ask for meanwhile. ``step(n)`` is not
        paced: it does its steps at once.
        """
        rate = None if steps_per_s is None or not float(steps_per_s) > 0 else float(steps_per_s)
        if rate is not None and not math.isfinite(rate):
            rate = None
        with self._cond:
            self._step_rate = rate
            self._next_step_t = 0.0  # the next step is due now; the pace counts from it
            self._cond.notify_all()

    @property
    def step_rate(self) -> float | None:
        """The most steps a second while running (None: full speed)."""
        return self._step_rate

    def _pace_delay(self, now: float | None = None) -> float:
        """Seconds until the next step is due (0 or less: now; always 0 at full speed)."""
        if self._step_rate is None:
            return 0.0
        return self._next_step_t - (time.perf_counter() if now is None else now)

    def _paced_step_taken(self, t0: float) -> None:
        """A paced step started at ``t0``: the next one is one interval after this one was due, or after
        ``t0`` when this one came late by more than an interval (after a pause: no catching up in a burst)."""
        rate = self._step_rate
        if rate is None:
            return
        interval = 1.0 / rate
        due = self._next_step_t
        self._next_step_t = due + interval if 0.0 <= t0 - due < interval else t0 + interval

    def set_epochs(self, epochs: int | None) -> None:
        self.epochs = epochs

    def call_in_thread(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the training thread between steps (for work that touches the model)."""
        self._post(fn)

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        """Run ``fn(session, *args, **kwargs)`` on the training thread between steps.

        ``on_done(result, error)`` follows on that thread (error: the exception ``fn`` raised, else None);
        without it, an exception fails the run as a step's would. Unlike :meth:`call_in_thread`, this form
        also crosses to a training process (``ProcessSession``): ``fn`` must then be a module-level function
        and the arguments and result plain values (see ``explorer.core.persist.commands``).
        """
        def work() -> None:
            if on_done is None:
                fn(self, *args, **kwargs)
                return
            try:
                result, error = fn(self, *args, **kwargs), None
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which reports it
                result, error = None, exc
            on_done(result, error)

        self._post(work)

    def request_snapshot(self) -> None:
        """Publish a snapshot soon, even while paused."""
        with self._cond:
            self._snapshot_requested = True
            self._cond.notify_all()

    def stop(self, timeout: float = 10.0) -> bool:
        """End the training thread; the trainer stays for saving. Returns whether the thread ended."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if ended:
            self._state = STOPPED
        return ended

    close = stop

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Block until the session is not running (finished, paused, error or stopped)."""
        t_end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self.settled():
                    return True
                left = poll if t_end is None else min(poll, t_end - time.monotonic())
                if left <= 0:
                    return False
                self._cond.wait(left)  # the training thread notifies when it goes idle

    def settled(self) -> bool:
        """Not running, and nothing asked of the training thread is left to do (what :meth:`wait` waits for)."""
        return (self._state != RUNNING and self._pending_steps == 0 and not self._commands
                and not self._busy)

    def thread_idle(self) -> bool:
        """Whether the training thread has nothing to do right now (paused, finished or stopped)."""
        return self._state != RUNNING and self._pending_steps == 0 and not self._busy

    # -- observers -------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Snapshot], None] | None = None, pull: bool = False) -> None:
        """Ask for snapshots; ``callback`` (optional) is called on the training thread, so keep it cheap.

        A GUI should subscribe without a callback and poll :meth:`latest_snapshot` from a timer. With
        ``pull``, it also calls :meth:`snapshot_taken` for each snapshot it draws, and the next snapshot
        is only computed once the last one was taken: one that would be overwritten unseen costs
        training time for nothing, and a window that draws less often (a busy or hidden one) then costs
        less. The puller sets the pace (a timer at ``snapshot_hz``); two snapshots are still at least
        half of 1/``snapshot_hz`` apart, so the next is ready by the puller's next tick.
        """
        with self._cond:
            self._snapshots_wanted = True
            self._pull = self._pull or pull
            if callback is not None:
                self._observers.append(callback)
            self._snapshot_requested = True
            self._cond.notify_all()

    def unsubscribe(self, callback: Callable[[Snapshot], None] | None = None) -> None:
        with self._cond:
            if callback is not None and callback in self._observers:
                self._observers.remove(callback)
            if callback is None or not self._observers:
                self._snapshots_wanted = bool(self._observers)
            if callback is None:
                self._pull = False

    def snapshot_taken(self, seq: int) -> None:
        """A puller has taken snapshot ``seq`` (see :meth:`subscribe`): the next one may be computed."""
        self._taken_seq = max(self._taken_seq, int(seq))

    def latest_snapshot(self) -> Snapshot | None:
        return self._mailbox

    def pop_notices(self) -> list[str]:
        with self._cond:
            out, self._notices = self._notices, []
        return out

    def rates(self) -> tuple[float, float]:
        """(steps per second, samples per second) over the last couple of seconds of training."""
        w = list(self._rate_window)
        if len(w) < 2 or self._state != RUNNING:
            return 0.0, 0.0
        (t0, s0), (t1, s1) = w[0], w[-1]
        if t1 <= t0:
            return 0.0, 0.0
        sps = (s1 - s0) / (t1 - t0)
        return sps, sps * samples_per_step(self.trainer)

    # -- training thread -------------------------------------------------------------------------
    def _post(self, fn: Callable[[], None]) -> None:
        with self._cond:
            self._commands.append(fn)
            self._cond.notify_all()

    def add_notices(self, notices: list[str]) -> None:
        """Messages for the user (the window shows every one); any thread."""
        if notices:
            with self._cond:
                self._notices.extend(notices)

    def _do_reset(self) -> None:
        self._pending_metrics.clear()
        self._metric_copies.clear()
        self.trainer.reset()
        self.metrics.clear()
        self._windows.reset()
        self._epoch_sums = {}
        self.run_id += 1
        self.error = None
        self._rate_window.clear()
        self._epoch_t0 = time.perf_counter()
        self._epoch_step0 = self.trainer.step
        self._evaluate(False, counted=False)
        self._retune()  # the new model may want another thread count
        self._snapshot_requested = True
        self._good = None
        if self._state in (FINISHED, ERROR):
            self._state = PAUSED

    def _loop(self) -> None:
        try:
            torch.set_grad_enabled(True)
            # a new thread would otherwise take the count some other thread set last (torch keeps one
            # process-wide value for threads that have not set their own)
            torch.set_num_threads(self.threads_in_use)
            if not self.metrics.evals:
                self._guard(lambda: self._evaluate(False, counted=False))  # the curves start at the untrained model
            while True:
                with self._cond:
                    while (not self._stop and not self._commands and not self._snapshot_requested
                           and self._pending_steps == 0):
                        if self._paused:
                            self._cond.wait(0.25)
                            continue
                        delay = self._pace_delay()
                        if delay <= 0:
                            break
                        # paced: wait for the next step (a pause, a command, a stop or a new rate wakes it),
                        # looking in now and then for a snapshot the views want of the step just done
                        self._cond.wait(min(delay, PACED_POLL_S))
                        if self._snapshots_wanted and self._step_rate is not None and self._snapshot_due():
                            break
                    if self._stop:
                        break
                    commands, self._commands = self._commands, []
                    single = self._paused and self._pending_steps > 0
                    run = single or not self._paused
                    self._busy = True
                for cmd in commands:
                    self._guard(cmd)
                if run and self._state != ERROR:
                    if single:
                        self._guard(lambda: self._run_burst(asked=True))
                        if self._pending_steps == 0:
                            self._snapshot_requested = True
                    else:
                        self._guard(self._run_burst)
                self._maybe_snapshot(force=self._snapshot_requested)
                if self._paused and self._pending_steps == 0:
                    self._guard(lambda: self._flush_metrics(final=True))  # idle: the curves are complete
                with self._cond:
                    self._busy = False
                    if self._state != RUNNING and self._pending_steps == 0 and not self._commands:
                        # wake wait()ers only when the thread goes idle: a notify after every one of
                        # ``step(n)``'s steps woke them n times, each wake a fight for the GIL
                        self._cond.notify_all()
        finally:
            self._busy = False
            self._flush_metrics()
            self._state = STOPPED

    # -- the training thread's thread count ----------------------------------------------------------------
    def _plan_threads(self) -> None:
        """Train with ``threads`` again and, on the CPU with more than one allowed, time the next steps
        at each candidate count (:class:`ThreadTuner`). Only the plan: the caller applies the count."""
        self._tuner = None
        self.thread_note = ""
        self._recheck_at, self._recheck_gap = None, RECHECK_FIRST_S
        self.threads_in_use = self.threads
        device = getattr(self.trainer, "device", None)
        if self.tune_threads and self.threads > 1 and getattr(device, "type", None) == "cpu":
            self._tuner = ThreadTuner(self.threads)

    def _retune(self) -> None:
        """:meth:`_plan_threads`, applied at once (on the training thread: OpenMP keeps it per thread)."""
        self._plan_threads()
        self._use_threads(self.threads)

    def _use_threads(self, n: int) -> None:
        torch.set_num_threads(n)
        self.threads_in_use = n

    def _tuned_step(self, tuner: ThreadTuner, seconds: float) -> None:
        """Give the running ``tuner`` (``self._tuner``) one step's time; adopt its count, drop it when done."""
        n = tuner.record(seconds)
        if n is not None and n != self.threads_in_use:
            self._use_threads(n)
        if tuner.done:
            self._tuner = None
            self.thread_note = tuner.describe()
            self._recheck_at = self._train_seconds + self._recheck_gap
            self._recheck_gap = min(2 * self._recheck_gap, RECHECK_MAX_S)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except torch.OutOfMemoryError:
            # the step's tensors are gone with the exception; give their memory back before saying so
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.out_of_memory = True
            self._fail(f"out of memory on {self.trainer.device} at step {self.trainer.step}: continue on the CPU, "
                       "or with a smaller batch")
        except Exception as exc:  # noqa: BLE001 - reported to the user, training pauses
            self._fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def _fail(self, message: str, detail: str = "") -> None:
        # a trainer's exception (with its traceback) is an error; a divergence or a full memory, a warning
        log.log(logging.ERROR if detail else logging.WARNING, "training paused: %s%s", message,
                f"\n{detail.rstrip()}" if detail else "")
        with self._cond:
            self.error = message
            self._paused = True
            self._pending_steps = 0
            self._state = ERROR
            self._notices.append(message)
        self._snapshot_requested = True

    def _run_burst(self, asked: bool = False, seconds: float = 0.005) -> None:
        """Steps back to back for a few milliseconds between two visits to the loop's lock.

        Running (Play): the flags are plain attributes, read without the lock; a pause, a command or
        a stop is still seen before the next step. ``asked`` (``step(n)``'s steps, paused): each step is
        taken off the count under the lock just before it runs, so a ``pause()``, ``start()`` or a
        further ``step()`` from another thread is never lost.
        """
        t_end = time.perf_counter() + seconds
        while True:
            if asked:
                with self._cond:
                    if not self._paused or self._pending_steps == 0 or self._stop or self._commands:
                        return
                    self._pending_steps -= 1
            elif self._step_rate is not None:
                now = time.perf_counter()
                if self._pace_delay(now) > 0:
                    return  # not due yet: the loop waits for it
                self._paced_step_taken(now)
            self._one_step()
            if (self._state == ERROR or time.perf_counter() > t_end
                    or (not asked and (self._paused or self._commands or self._stop))):
                return
            self._maybe_snapshot()

    def _train_step(self) -> dict[str, torch.Tensor]:
        """The trainer's step and its metrics (a data-parallel session steps its other ranks too)."""
        return self.trainer.train_step()

    def _one_step(self) -> None:
        tr = self.trainer
        epoch_before = tr.epoch
        t0 = time.perf_counter()
        metrics = self._train_step()
        dt = time.perf_counter() - t0
        self._train_seconds += dt
        rate = self._step_rate
        self._eval_budget_base += dt if rate is None or self._paused else max(dt, 1.0 / rate)
        if self._tuner is not None:
            self._tuned_step(self._tuner, dt)
        elif self._recheck_at is not None and self._train_seconds >= self._recheck_at:
            self._recheck_at = None
            self._tuner = ThreadTuner.check(self.threads, self.threads_in_use)
        self._pending_metrics.append((tr.step, tr.epoch, metrics))
        self._rate_window.append((time.perf_counter(), tr.step))
        if len(self._rate_window) > 64:
            del self._rate_window[:-64]
        n_pending = len(self._pending_metrics)
        every = self._windows.every
        since = time.perf_counter() - self._last_flush_t
        if n_pending >= max(self._flush_every, every) or (n_pending >= every and since > 0.1):
            self._flush_metrics(final=False)
        elif since > SHORT_WINDOW_S:
            # a window that takes long to fill (a long run's, slowed down to watch: 512 steps at 1 a second)
            # is cut short, so the curves and the figures under the views keep up
            self._flush_metrics(final=False, whole=False)
        epoch_done = tr.epoch > epoch_before
        last_epoch = self.epochs is not None and tr.epoch >= self.epochs
        asked = bool(self._eval_every and tr.step % self._eval_every == 0)  # explicit: always done
        affordable = (self._eval_fraction is None or last_epoch
                      or self._eval_seconds <= self._eval_fraction * self._eval_budget_base)
        if asked or (epoch_done and affordable):
            self._flush_metrics()
            self._evaluate(epoch_done)
        if self.epochs is not None and tr.epoch >= self.epochs:
            with self._cond:
                self._paused = True
                self._pending_steps = 0
                if self._state != ERROR:
                    self._state = FINISHED
            self._snapshot_requested = True

    def _flush_metrics(self, final: bool = True, whole: bool = True) -> None:
        """Copy the pending per-step metrics to the log in one transfer (whole windows unless ``final`` or not
        ``whole``: then the last window is cut short).

        On a GPU the copy is started without waiting for it (into pinned memory, behind an event) and
        lands at a later flush, once the event says it arrived: reading it at once would make the
        training thread wait for the GPU to finish every queued step, 20 times a second. ``final``
        lands everything, waiting if need be (before an evaluation, a pause, a device move, a stop).
        """
        self._last_flush_t = time.perf_counter()
        every = self._windows.every
        cut = len(self._pending_metrics) if final or not whole else len(self._pending_metrics) // every * every
        pending, self._pending_metrics = self._pending_metrics[:cut], self._pending_metrics[cut:]
        if pending:
            # consecutive rows with the same metric names form a group (a trainer may change its
            # metrics between stages); windows of ``every`` rows never span two groups
            groups: list[list[tuple[int, int, dict[str, torch.Tensor]]]] = []
            for item in pending:
                if groups and list(groups[-1][0][2].keys()) == list(item[2].keys()):
                    groups[-1].append(item)
                else:
                    groups.append([item])
            stacked = []
            for group in groups:
                names = list(group[0][2].keys())
                stacked.append((group, names, self._stack_metrics(group, names)))
            self._metric_copies.append(self._begin_copy(stacked, wait=final))
        # land the copies that have arrived, oldest first (all of them when final)
        while self._metric_copies:
            items, event = self._metric_copies[0]
            if event is not None:
                if final:
                    event.synchronize()  # the copy must have landed before its numbers are read
                elif not event.query():
                    break
            self._metric_copies.pop(0)
            if not self._land_metrics(items):
                self._metric_copies.clear()  # diverged: the later steps are gone with the weights put back
                break

    @staticmethod
    def _begin_copy(stacked: list[tuple[list, list[str], torch.Tensor]], wait: bool
                    ) -> tuple[list[tuple[list, list[str], torch.Tensor]], Any]:
        """Start copying the stacked metrics to the CPU; returns the copies with the CUDA event that
        marks their arrival, or the metrics as they are with None (on the CPU, or when ``wait``)."""
        if wait or not any(t.device.type == "cuda" for _, _, t in stacked):
            return stacked, None
        copies = []
        for group, names, t in stacked:
            host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            host.copy_(t, non_blocking=True)
            copies.append((group, names, host))
        event = torch.cuda.Event()
        event.record()
        return copies, event

    def _land_metrics(self, items: list[tuple[list, list[str], torch.Tensor]]) -> bool:
        """Add the rows of copied metrics to the log; False when they hold a NaN (training diverged)."""
        every = self._windows.every
        rows = []
        finite = True
        for group, names, t in items:
            values = t.cpu().numpy()
            group_finite = bool(np.all(np.isfinite(values)))
            finite = finite and group_finite
            if group_finite:  # (every step's, whatever rows are kept; a diverged stretch is rolled back)
                for name, total in zip(names, values.sum(0).tolist()):
                    acc = self._epoch_sums.setdefault(name, [0.0, 0])
                    acc[0] += total
                    acc[1] += len(group)
            starts = range(0, len(group), every)
            # (a row per step by default: the means of one-step windows are the values themselves)
            means = values.tolist() if every == 1 else [values[i:i + every].mean(0).tolist() for i in starts]
            held_parts = getattr(self.trainer, "held_metrics", ()) if every > 1 else ()
            held = [j for j, name in enumerate(names) if any(p in name for p in held_parts)]
            if held:  # measured every few steps and repeated between: a window keeps its last
                for i, mean in zip(starts, means):
                    last = values[min(i + every, len(group)) - 1]
                    for j in held:
                        mean[j] = float(last[j])
            for start, mean in zip(starts, means):
                step, epoch, _ = group[min(start + every, len(group)) - 1]
                row = {"step": float(step), "epoch": float(epoch)}
                row.update(zip(names, mean))
                rows.append(row)
        self.metrics.add_steps(rows)
        self._windows.grown(len(self.metrics.steps))
        if not finite:
            self._diverged(int(rows[-1]["step"]))
            return False
        if self._good is None or time.perf_counter() - self._good_t >= self.checkpoint_seconds:
            self._keep_good_weights()
        return True

    @staticmethod
    def _stack_metrics(group: list[tuple[int, int, dict[str, torch.Tensor]]], names: list[str]) -> torch.Tensor:
        """The group's metrics as one (steps, names) float tensor, on their device.

        One ``stack`` over every scalar: on a GPU each extra operation is a kernel launch per step, which
        is what a small model's step costs. Metrics of other shapes (a one-element vector) or of mixed
        devices take the slow road, element by element."""
        flat = [m[n] for _, _, m in group for n in names]
        with torch.no_grad():
            try:
                if all(t.dim() == 0 for t in flat):
                    return torch.stack(flat).float().reshape(len(group), len(names))
            except RuntimeError:
                pass
            return torch.stack([torch.stack([m[n].detach().float().reshape(()) for n in names])
                                for _, _, m in group])

    def _keep_good_weights(self) -> None:
        """Copy the weights (on their device) as the state to go back to if training diverges."""
        tr = self.trainer
        try:
            tensors = tr.state_tensors()
        except Exception:  # noqa: BLE001 - a trainer without saveable state: no way back, only Reset
            return
        if not tensors or not all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point()):
            return
        self._good = (int(tr.step), int(tr.epoch), {k: v.detach().clone() for k, v in tensors.items()})
        self._good_t = time.perf_counter()

    def _diverged(self, bad_step: int) -> None:
        """A NaN or infinite metric: pause, and put back the last good weights if there are any."""
        tr = self.trainer
        back = ""
        if self._good is not None:
            step, epoch, tensors = self._good
            try:
                tr.load_state_tensors({k: v.clone() for k, v in tensors.items()})
                tr.step, tr.epoch = step, epoch
                self._pending_metrics = []
                self._metric_copies.clear()
                back = f"; the weights of step {step} are back"
            except Exception:  # noqa: BLE001 - cannot restore: say so
                back = ""
        advice = ("lower the learning rate and press Play to go on" if back
                  else "lower the learning rate and press Reset")
        self._fail(f"training diverged (NaN or infinite metric) by step {bad_step}{back}: {advice}")

    def evaluate_now(self) -> None:
        """A row of held-out metrics at the current step (call on the training thread, between steps)."""
        self._evaluate(False)

    def _evaluate(self, epoch_end: bool, counted: bool = True) -> None:
        """A row of held-out metrics. ``counted=False`` (the untrained model's, at step 0) leaves the
        evaluations' time budget alone: that first call pays for warm-up, and counting it held the
        held-out curve back for the first 10 s of an LSTM run in the window."""
        tr = self.trainer
        t_start = time.perf_counter()
        row: dict[str, float] = {"step": float(tr.step), "epoch": float(tr.epoch),
                                 "epoch_end": 1.0 if epoch_end else 0.0}
        row.update(tr.evaluate())
        if epoch_end:
            dt = t_start - self._epoch_t0
            row["seconds"] = dt
            samples = samples_trained(tr, tr.step) - samples_trained(tr, self._epoch_step0)
            row["samples_per_s"] = samples / dt if dt > 0 else float("nan")
            # each training metric averaged over this epoch's steps, as "train_<name>" (summed as they landed:
            # the rows kept may be means of several steps, or fewer than the epoch's steps, see RowWindows)
            for name, (total, count) in self._epoch_sums.items():
                if count:
                    # (what the trainer measured itself, under the same name, wins)
                    row.setdefault(f"train_{name}", total / count)
            self._epoch_sums = {}
            self._epoch_t0 = time.perf_counter()
            self._epoch_step0 = tr.step
        self.metrics.add_eval(row)
        if counted:
            self._eval_seconds += time.perf_counter() - t_start
        if any(isinstance(v, float) and math.isinf(v) for v in row.values()):
            self.add_notices([f"held-out metric is infinite at step {tr.step}"])

    def _snapshot_due(self, now: float | None = None) -> bool:
        """Whether an unforced snapshot may be taken now (rate cap, pull mode; paced: one per step)."""
        now = time.perf_counter() if now is None else now
        # a puller takes at most one snapshot per tick, so the rate cap only keeps two snapshots apart; the
        # full 1/hz would make each one wait for the cap after the take, finish after the next tick and be
        # drawn a tick late: 20 ticks a second drew about 15 snapshots
        interval = (PULL_SPACING if self._pull else 1.0) / self._snapshot_hz
        if now - self._last_snapshot_t < interval or (
                self._pull and self._taken_seq < self._seq and self._mailbox is not None):
            return False
        # paced, between two steps: the model has not changed since the last snapshot
        return self._step_rate is None or self.trainer.step != self._snapshot_step

    def _maybe_snapshot(self, force: bool = False) -> None:
        if not (self._snapshots_wanted or force):
            return
        now = time.perf_counter()
        if not force and not self._snapshot_due(now):
            return
        if not self._snapshots_wanted:
            self._snapshot_requested = False
            return
        self._snapshot_requested = False
        self._last_snapshot_t = now
        self._snapshot_step = self.trainer.step
        try:
            arrays = self.trainer.snapshot()
        except Exception as exc:  # noqa: BLE001
            self._fail(f"could not take a snapshot: {type(exc).__name__}: {exc}")
            return
        finally:
            self.snapshot_seconds += time.perf_counter() - now
        self._seq += 1
        last = self.metrics.steps[-1] if self.metrics.steps else {}
        snap = Snapshot(self.run_id, self._seq, self.trainer.step, self.trainer.epoch, time.time(), arrays,
                        {k: v for k, v in last.items()})
        self._mailbox = snap
        for cb in list(self._observers):
            try:
                cb(snap)
            except Exception:  # noqa: BLE001 - an observer's fault must not stop training
                traceback.print_exc()

    # -- history -----------------------------------------------------------------------------------
    def history(self) -> list[dict[str, float]]:
        """One dict of metrics per completed epoch."""
        return [dict(r) for r in self.metrics.evals if r.get("epoch_end")]
