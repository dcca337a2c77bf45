"""A training process that trains one model over N processes in lockstep (``serve --gpus N``).

The training process a window drives (``serve_child``) becomes rank 0 of an N-process group and starts
N-1 *followers* (``python -m explorer.core.process.follower``). Every rank holds the same trainer, its
module wrapped in torch's DistributedDataParallel (``explorer.core.engine.distributed.wrap``): DDP
averages the gradients in ``backward``, so the gradient norms rank 0 shows are the averaged ones. Rank 0
alone evaluates, takes snapshots, writes metrics and answers the window's commands.

Lockstep: a follower does only what rank 0 tells it. Before each operation that changes training, rank 0
broadcasts a fixed-size control tensor (op code and payload sizes) on a gloo group of its own, followed,
for some ops, by a JSON payload (a uint8 tensor; no pickle anywhere) and a blob of raw tensor bytes:

* ``INIT``   the family and its configuration; every rank builds the trainer and wraps it;
* ``SYNC``   rank 0's weights, optimiser state and data position (once at the start, and before the step
  after anything that may have changed them on rank 0 alone: a restored run, a command on the model,
  the weights put back after a divergence);
* ``STEP``   one training step (the DDP all-reduce inside it happens on the default group);
* ``HPARAMS`` a JSON object of hyper-parameter changes, applied before the next step;
* ``RESET``  rebuild from the seed and wrap again;
* ``NOOP``   a heartbeat; ``STOP``: leave.

Timeouts: gloo gives up on a collective after the group's timeout (``INIT_TIMEOUT_S``, 120 s;
``$NETWORK_EXPLORER_RANK_TIMEOUT`` seconds if set). A paused run sends nothing for as long as the user likes,
so rank 0 sends a heartbeat (``NOOP``) whenever ``HEARTBEAT_S`` (at most a quarter of the timeout) pass
without a control: a follower waiting for the next control never nears the timeout, while a rank 0 that
hangs is still noticed. A rank that *dies* is noticed at once, without a timeout:
each follower holds one end of a socket pair with rank 0; a follower that fails writes its error (one
line) there and ends, and rank 0 reports that line as the session's error (the run ends: it trains no
further); a rank 0 that ends (closed, failed, killed) closes its ends and every follower leaves.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from explorer.core.engine import distributed
from explorer.core.engine.devices import DeviceError
from explorer.core.engine.session import ERROR, TrainingSession
from explorer.core.persist import commands

log = logging.getLogger("explorer.remote")

NOOP, INIT, SYNC, STEP, HPARAMS, RESET, STOP = range(7)
HEADER_LEN = 3          # the control tensor: op code, JSON payload bytes, blob bytes
HEARTBEAT_S = 5.0       # a paused run's followers hear from rank 0 at least this often
RANK_TIMEOUT_ENV = "NETWORK_EXPLORER_RANK_TIMEOUT"  # seconds a rank waits for the others (default below)
STOP_WAIT_S = 10.0      # how long rank 0 waits for its followers to leave before ending them
# the commands that only read the model: anything else run on rank 0 makes it send its state again
READ_ONLY_COMMANDS = frozenset({commands.run_files, commands.export_file, commands.evaluate_now,
                                commands.save_run_to, commands.autosave_to, commands.export_model})


class RankFailed(RuntimeError):
    """A rank of the group failed or the group has ended (its one line)."""


def tell_server(message: str) -> None:
    """A line for whoever runs the server: its log, and its terminal (the training process's stderr)."""
    log.warning("%s", message)
    print(message, file=sys.stderr, flush=True)


# -- the control channel --------------------------------------------------------------------------------
def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> tuple[list[list[Any]], torch.Tensor]:
    """The tensors as a manifest (name, dtype, shape) and one uint8 blob of their bytes, on the CPU."""
    manifest, parts = [], []
    for name, value in tensors.items():
        t = value.detach().to("cpu").contiguous()
        manifest.append([name, str(t.dtype).removeprefix("torch."), list(t.shape)])
        parts.append(t.reshape(-1).view(torch.uint8))
    blob = torch.cat(parts) if parts else torch.empty(0, dtype=torch.uint8)
    return manifest, blob


def _tensors_from(manifest: list[list[Any]], blob: torch.Tensor) -> dict[str, torch.Tensor]:
    out, at = {}, 0
    for name, dtype_name, shape in manifest:
        dtype = getattr(torch, dtype_name)
        n = int(torch.Size(shape).numel()) * torch.empty(0, dtype=dtype).element_size()
        out[name] = blob[at:at + n].view(dtype).reshape(shape).clone()
        at += n
    return out


def _state_of(trainer: Any) -> dict[str, torch.Tensor]:
    """What a follower needs to continue exactly as ``trainer`` would: weights, optimiser state, position."""
    state = {f"w.{k}": v for k, v in trainer.state_tensors().items()}
    state.update({f"p.{k}": v for k, v in trainer.position_tensors().items()})
    return state


def _load_state(trainer: Any, state: dict[str, torch.Tensor]) -> None:
    trainer.load_state_tensors({k[2:]: v for k, v in state.items() if k.startswith("w.")})
    trainer.load_position_tensors({k[2:]: v for k, v in state.items() if k.startswith("p.")})


def _broadcast_control(group: Any, op: int, payload: bytes = b"", blob: torch.Tensor | None = None) -> None:
    """Rank 0: the control tensor, then its payload and blob (if any), to every rank of ``group``."""
    n_blob = 0 if blob is None else int(blob.numel())
    dist.broadcast(torch.tensor([op, len(payload), n_blob], dtype=torch.int64), src=0, group=group)
    if payload:
        dist.broadcast(torch.frombuffer(bytearray(payload), dtype=torch.uint8), src=0, group=group)
    if blob is not None and n_blob:
        dist.broadcast(blob, src=0, group=group)


def _receive_control(group: Any) -> tuple[int, bytes, torch.Tensor | None]:
    """A follower: the next control from rank 0 (op, payload, blob)."""
    header = torch.zeros(HEADER_LEN, dtype=torch.int64)
    dist.broadcast(header, src=0, group=group)
    op, n_payload, n_blob = (int(v) for v in header.tolist())
    payload = b""
    if n_payload:
        buf = torch.empty(n_payload, dtype=torch.uint8)
        dist.broadcast(buf, src=0, group=group)
        payload = buf.numpy().tobytes()
    blob = None
    if n_blob:
        blob = torch.empty(n_blob, dtype=torch.uint8)
        dist.broadcast(blob, src=0, group=group)
    return op, payload, blob


def group_timeout() -> float:
    """How long a rank waits for the others, in seconds: ``$NETWORK_EXPLORER_RANK_TIMEOUT``, else
    ``INIT_TIMEOUT_S`` (what ``train --gpus`` waits)."""
    try:
        seconds = float(os.environ.get(RANK_TIMEOUT_ENV, ""))
    except ValueError:
        return float(distributed.INIT_TIMEOUT_S)
    return seconds if seconds > 0 else float(distributed.INIT_TIMEOUT_S)


def _join(rank: int, world: int, port: int, backend: str, cuda: bool, timeout_s: float
          ) -> tuple[torch.device, Any]:
    """Join the group (the default one, for DDP; on loopback, see ``distributed.join_group``) and its gloo
    control group; this rank's device."""
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    distributed.join_group(rank, world, port, backend, timeout_s)
    control = dist.new_group(backend="gloo", timeout=distributed.meeting_timeout(timeout_s))
    distributed.bound_steps(timeout_s, control)
    return device, control


# -- rank 0 -------------------------------------------------------------------------------------------
class LeadGroup:
    """Rank 0's side: the followers it started, the control channel, the heartbeat and the watch on them."""

    def __init__(self, the_plan: distributed.Plan) -> None:
        self.plan = the_plan
        self.world = the_plan.world
        self.device = torch.device("cuda", 0) if the_plan.cuda else torch.device("cpu")
        self._lock = threading.Lock()          # one control at a time, in order
        self._dirty = True                     # rank 0's state must be sent before the next step
        self._last_sent = time.monotonic()
        self._closing = False
        self._failure: str | None = None
        self._on_failure: Callable[[str], None] | None = None
        self.timeout_s = group_timeout()
        self.heartbeat_s = min(HEARTBEAT_S, self.timeout_s / 4)
        port = distributed.free_port()
        threads = 1 if the_plan.cuda else max(1, (os.cpu_count() or 1) // self.world)
        self._followers: list[tuple[subprocess.Popen, socket.socket]] = []
        for rank in range(1, self.world):
            ours, theirs = socket.socketpair()
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            root = str(Path(__file__).resolve().parents[3])
            env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            argv = [sys.executable, "-m", "explorer.core.process.follower", str(theirs.fileno()), str(rank),
                    str(self.world), str(port), the_plan.backend, "1" if the_plan.cuda else "0", str(threads),
                    repr(self.timeout_s)]
            popen = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
            theirs.close()
            self._followers.append((popen, ours))
        try:
            self._control = self._meet(port)
        except BaseException:
            self._end_followers(0.0)
            raise
        self._watcher = threading.Thread(target=self._watch, name="lockstep-watch", daemon=True)

    def _meet(self, port: int) -> Any:
        """Join the group as rank 0, watching the followers meanwhile: one that fails before it joins ends
        the wait at once (RankFailed, its line) rather than after the timeout. Returns the control group."""
        joined: list[Any] = []
        errors: list[BaseException] = []

        def join() -> None:
            try:
                joined.append(_join(0, self.world, port, self.plan.backend, self.plan.cuda, self.timeout_s)[1])
            except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
                errors.append(exc)

        # (a daemon: left waiting when a follower failed, it does not keep the process from ending)
        meeting = threading.Thread(target=join, name="lockstep-meet", daemon=True)
        meeting.start()
        while meeting.is_alive() and self.failure(wait=0.1) is None:
            meeting.join(0.1)
        if self._failure is not None:
            raise RankFailed(self._failure)
        if errors:
            raise errors[0]
        return joined[0]

    def describe(self) -> str:
        return self.plan.describe()

    # -- controls (any thread; one at a time) -----------------------------------------------------------
    def send(self, op: int, payload: bytes = b"", blob: torch.Tensor | None = None) -> None:
        with self._lock:
            self._send_locked(op, payload, blob)

    def _send_locked(self, op: int, payload: bytes = b"", blob: torch.Tensor | None = None) -> None:
        if self._failure is not None:
            raise RankFailed(self._failure)
        if self._closing:
            raise RankFailed("the data-parallel group has ended")
        _broadcast_control(self._control, op, payload, blob)
        self._last_sent = time.monotonic()

    def begin(self, trainer: Any) -> None:
        """Every rank builds ``trainer``'s family from its configuration, wraps it, and takes its state."""
        problem = trainer.shard_problem(trainer.config.batch_size, self.world)
        if problem:
            raise ValueError(problem)
        if trainer.device != self.device:
            trainer.to_device(self.device)
        self.send(INIT, json.dumps({"family": trainer.family, "config": trainer.config_dict()}).encode())
        distributed.wrap(trainer, 0, self.world, self.device)
        self.sync(trainer)

    def sync(self, trainer: Any) -> None:
        """Send rank 0's weights, optimiser state and data position; the followers take them."""
        manifest, blob = _tensor_bytes(_state_of(trainer))
        with self._lock:
            self._send_locked(SYNC, json.dumps(manifest).encode(), blob)
            self._dirty = False

    def mark_dirty(self) -> None:
        """Rank 0's state may have changed on its own: send it before the next step."""
        self._dirty = True

    def before_step(self, trainer: Any) -> None:
        if self._dirty:
            self.sync(trainer)
        self.send(STEP)

    def rewrap(self, trainer: Any) -> None:
        """After a reset (a new module): wrap it again, with the followers doing the same."""
        distributed.wrap(trainer, 0, self.world, self.device)
        self._dirty = True  # and take rank 0's state again, whatever the reset did on each rank

    # -- watching the followers ---------------------------------------------------------------------------
    def watch(self, on_failure: Callable[[str], None]) -> None:
        """Start the heartbeat and the watch; ``on_failure(line)`` once if a follower fails."""
        self._on_failure = on_failure
        self._watcher.start()

    def _watch(self) -> None:
        socks = {sock: rank for rank, (_, sock) in enumerate(self._followers, start=1)}
        while not self._closing and self._failure is None:
            try:
                ready, _, _ = select.select(list(socks), [], [], min(0.5, self.heartbeat_s / 2))
            except (OSError, ValueError):
                return
            for sock in ready:
                self._read_failure(sock, socks[sock])
            if self._failure is not None:
                break
            if time.monotonic() - self._last_sent >= self.heartbeat_s and self._lock.acquire(blocking=False):
                try:
                    if not self._closing and self._failure is None:
                        self._send_locked(NOOP)
                except Exception as exc:  # noqa: BLE001 - the group broke: a failure, reported once
                    self._failed(f"the data-parallel group broke: {type(exc).__name__}: {_first_line(exc)}")
                finally:
                    self._lock.release()
        if self._failure is not None and self._on_failure is not None and not self._closing:
            self._on_failure(self._failure)

    def _read_failure(self, sock: socket.socket, rank: int) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if self._closing:
            return
        popen = self._followers[rank - 1][0]
        if not data:  # ended without a word (killed): its exit code, once it is there
            try:
                popen.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
        line = data.decode("utf-8", "replace").strip().splitlines()
        self._failed(line[0] if line else f"rank {rank} of {self.world} ended unexpectedly "
                                          f"(exit code {popen.poll()})")

    def _failed(self, line: str) -> None:
        if self._failure is None:
            self._failure = line

    def failure(self, wait: float = 0.0) -> str | None:
        """The failure of a follower, if any, waiting up to ``wait`` s for the watch to learn of one."""
        if self._failure is None and wait > 0 and not self._closing:
            deadline = time.monotonic() + wait
            while self._failure is None and time.monotonic() < deadline:
                ready, _, _ = select.select([s for _, s in self._followers], [], [], 0.05)
                for sock in ready:  # (the watch thread may read it first: either sets the failure)
                    rank = next(r for r, (_, s) in enumerate(self._followers, start=1) if s is sock)
                    self._read_failure(sock, rank)
        return self._failure

    @property
    def failed(self) -> bool:
        return self._failure is not None

    # -- the end ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Tell the followers to leave, wait for them (ending those that do not), leave the group."""
        with self._lock:
            if self._closing:
                return
            try:
                if self._failure is None:
                    _broadcast_control(self._control, STOP)
            except Exception:  # noqa: BLE001 - a broken group: the followers are ended below
                pass
            self._closing = True
        self._end_followers(STOP_WAIT_S if self._failure is None else 0.0)
        if self._watcher.is_alive():
            self._watcher.join(2.0)

    def _end_followers(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        for popen, sock in self._followers:
            try:
                popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            if popen.poll() is None:
                popen.kill()
                popen.wait(5)
            sock.close()


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def mean_over_ranks(metrics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A step's scalar metrics averaged over the ranks (every rank calls it after each step): the curves
    show the whole global batch, not rank 0's share. The mean of the shares' means: the batch's mean when
    the shares are equal (a global batch a multiple of the ranks). Other metrics are left as they are."""
    values = list(metrics.values())
    if not values or not all(v.numel() == 1 for v in values):
        return metrics
    stacked = torch.stack([v.detach().float().reshape(()) for v in values])
    dist.all_reduce(stacked)  # the default group, on the metrics' device (no wait for a GPU here)
    stacked /= dist.get_world_size()
    return dict(zip(metrics, stacked.unbind()))


def _run_then_resync(fn: Callable[..., Any], group: LeadGroup, session: TrainingSession, *args: Any,
                     **kwargs: Any) -> Any:
    """``fn`` (a command on the model, on rank 0), then rank 0's state is sent before the next step."""
    try:
        return fn(session, *args, **kwargs)
    finally:
        group.mark_dirty()


class LockstepSession(TrainingSession):
    """Rank 0's session: a :class:`TrainingSession` whose every step, hyper-parameter change and reset is
    first sent to the followers (see the module's docstring). Evaluation, snapshots, metrics and the
    window's commands stay here."""

    def __init__(self, trainer: Any, group: LeadGroup, **kwargs: Any) -> None:
        self.group = group
        self._failure_reported = False
        super().__init__(trainer, **kwargs)
        group.watch(self._rank_failed)

    # -- what reaches the followers ------------------------------------------------------------------------
    def _train_step(self) -> dict[str, torch.Tensor]:
        self.group.before_step(self.trainer)
        return mean_over_ranks(self.trainer.train_step())

    def set_hparams(self, **changes: Any) -> None:
        def apply() -> None:
            size = changes.get("batch_size")
            problem = None
            if size is not None:
                try:
                    trainer: Any = self.trainer  # (a MiniBatchTrainer: the data-parallel families are)
                    problem = trainer.shard_problem(int(size), self.group.world)
                except (TypeError, ValueError, ZeroDivisionError):
                    problem = None  # the trainer refuses it below, in its own words, on every rank
            if problem:
                self.add_notices([f"setting refused: {problem}"])
                return
            try:
                payload = json.dumps(changes).encode()
            except (TypeError, ValueError) as exc:
                self.add_notices([f"setting refused: not a plain value ({exc})"])
                return
            self.group.send(HPARAMS, payload)
            try:
                self.add_notices(self.trainer.apply_hparams(changes))
            except ValueError as exc:  # refused on every rank alike (the same checks)
                self.add_notices([f"setting refused: {exc}"])

        self._post(apply)

    def _do_reset(self) -> None:
        self.group.send(RESET)
        try:
            super()._do_reset()
        finally:
            self.group.rewrap(self.trainer)

    def set_device(self, name: str) -> None:
        raise DeviceError(f"a data-parallel run stays where its ranks are ({self.group.describe()})")

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        if fn not in READ_ONLY_COMMANDS:
            fn = functools.partial(_run_then_resync, fn, self.group)
        super().run_command(fn, *args, on_done=on_done, **kwargs)

    def call_in_thread(self, fn: Callable[[], None]) -> None:
        def then_resync() -> None:
            try:
                fn()
            finally:
                self.group.mark_dirty()

        super().call_in_thread(then_resync)

    def _diverged(self, bad_step: int) -> None:
        super()._diverged(bad_step)
        self.group.mark_dirty()  # the weights put back are rank 0's

    # -- a failed rank ends the run -----------------------------------------------------------------------
    def start(self) -> None:
        if not self._refuse_when_ended():
            super().start()

    resume = start

    def step(self, n: int = 1) -> None:
        if not self._refuse_when_ended():
            super().step(n)

    def _refuse_when_ended(self) -> bool:
        failure = self.group.failure()
        if failure is None:
            return False
        with self._cond:
            self.error, self._state = failure, ERROR
        return True

    def _rank_failed(self, line: str) -> None:
        self._fail(line)

    def _fail(self, message: str, detail: str = "") -> None:
        failure = self.group.failure(wait=0.5 if detail else 0.0)
        if failure is None:
            super()._fail(message, detail)
            return
        with self._cond:
            reported, self._failure_reported = self._failure_reported, True
        if reported:  # the run has ended, said once
            self._refuse_when_ended()
            return
        message = f"{failure}; the data-parallel run has ended (close it and start a new one)"
        tell_server(message)
        super()._fail(message)
        threading.Thread(target=self.group.close, name="lockstep-close", daemon=True).start()

    def stop(self, timeout: float = 10.0) -> bool:
        ended = super().stop(timeout)
        self.group.close()
        return ended


def session_for(world: int, notes: list[str], trainer: Any, **kwargs: Any) -> TrainingSession:
    """The training process's session for a server with ``world`` ranks: a :class:`LockstepSession` for
    a family that trains data-parallel, a plain session otherwise (``notes`` says which, for the window)."""
    if trainer.family not in distributed.FAMILIES:
        line = (f"the {trainer.family} family does not train data-parallel ({' and '.join(distributed.FAMILIES)} "
                f"do): this run trains on one process")
        tell_server(line)
        notes.append(line)
        return TrainingSession(trainer, **kwargs)
    kind = trainer.device.type if trainer.device.type in ("cpu", "cuda") else "cpu"
    the_plan = distributed.plan(world, kind)
    group = LeadGroup(the_plan)
    try:
        group.begin(trainer)
    except BaseException as exc:
        failure = group.failure(wait=1.0)
        group.close()
        if failure is not None:
            raise RankFailed(failure) from exc
        raise
    line = f"data-parallel training: {group.describe()}"
    log.info("%s", line)
    notes.append(line)
    return LockstepSession(trainer, group, **kwargs)


# -- a follower -----------------------------------------------------------------------------------------
def _leave_when_lead_ends(watch: socket.socket) -> None:
    """A follower's watch: rank 0's end of the socket closed (it ended, however): leave at once."""
    while True:
        try:
            data = watch.recv(4096)
        except OSError:
            data = b""
        if not data:
            os._exit(0)


def follow(watch: socket.socket, rank: int, world: int, port: int, backend: str, cuda: bool,
           threads: int, timeout_s: float) -> None:
    """A follower's life: join the group, then do what rank 0's controls say until ``STOP``. Ends the
    process (a failure: its one line to rank 0 first, exit status 1)."""
    threading.Thread(target=_leave_when_lead_ends, args=(watch,), daemon=True).start()
    code = 0
    try:
        torch.set_num_threads(max(1, threads))
        device, control = _join(rank, world, port, backend, cuda, timeout_s)
        trainer: Any = None
        while True:
            op, payload, blob = _receive_control(control)
            if op == STEP:
                mean_over_ranks(trainer.train_step())
            elif op == NOOP:
                continue
            elif op == HPARAMS:
                try:
                    trainer.apply_hparams(json.loads(payload))
                except ValueError:
                    pass  # rank 0 refused it too (the same checks), and said so
            elif op == SYNC:
                _load_state(trainer, _tensors_from(json.loads(payload), blob if blob is not None
                                                   else torch.empty(0, dtype=torch.uint8)))
            elif op == RESET:
                try:
                    trainer.reset()
                finally:
                    distributed.wrap(trainer, rank, world, device)
            elif op == INIT:
                from explorer.core.families.registry import make_trainer

                spec = json.loads(payload)
                config = dict(spec["config"], device=str(device))
                trainer = make_trainer(spec["family"], config)
                distributed.wrap(trainer, rank, world, device)
            elif op == STOP:
                break
            else:
                raise RankFailed(f"an unknown control ({op})")
    except BaseException as exc:  # noqa: BLE001 - one line to rank 0, which reports it and ends the run
        code = 1
        line = f"rank {rank} of {world} failed: {type(exc).__name__}: {_first_line(exc)}"
        try:
            watch.sendall(line.encode("utf-8", "replace")[:2000] + b"\n")
        except OSError:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    # no teardown from the interpreter's exit: gloo's threads, destroyed there, abort the process now and then
    os._exit(code)


__all__ = ["LeadGroup", "LockstepSession", "RankFailed", "session_for", "follow", "group_timeout", "HEARTBEAT_S", "RANK_TIMEOUT_ENV"]
