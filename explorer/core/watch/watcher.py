"""The watcher: ``explorer.watch(model, probe)`` in the user's own training script.

The user keeps their loop; one call per step hands the watcher its scalars::

    watcher = explorer.watch(model, probe=x_probe)
    for x, y in loader:
        loss = loss_fn(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
        watcher.step(loss=loss.item())

Why it looks like this:

- It must never cost the loop much, nor break it. Each ``step()`` appends one row of scalars; the heavy
  work (a snapshot of the model on the probe, the gradient norms) is done only while a window watches or
  a folder is written, and only as often as the pacer allows (``budget``: 3% of the loop's time by
  default; see pacing.py). With nobody watching and no folder, a step is a dict and an append: no torch
  call at all (its few microseconds are summed and charged to the pacer at the next tick). Any exception inside watching is logged once (logger ``explorer.watch``), sent to the
  windows as a notice, and that part of watching stops; the training goes on.
- Windows connect over the wire (explorer.core.wire): a :class:`~explorer.core.wire.server.FrameServer`
  on 127.0.0.1 with a random token in a file only the user can read. With ``control=True`` a window may
  pause the loop (``step()`` then blocks, still answering requests for snapshots), step it, resume it and
  set the optimizer's learning rate; without it the run is read-only.
- ``logdir`` writes the same stream to a folder (folder.py), for later or for another machine.
- Under torch.distributed only rank 0 watches; the other ranks get a watcher that does nothing.

The model's description, snapshots and gradient norms come from discover.py, snapshot.py and
gradients.py (``describe_model``, ``take_snapshot``, ``grad_norms``).
"""

from __future__ import annotations

import atexit
import logging
import math
import numbers
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.core.watch.discover import LayerLookup, describe_model
from explorer.core.watch.folder import DEFAULT_BOUND_BYTES, FolderWriter
from explorer.core.watch.gradients import grad_norms
from explorer.core.watch.pacing import DEFAULT_BUDGET, GRAD, SNAPSHOT, Pacer
from explorer.core.watch.snapshot import take_snapshot
from explorer.core.wire.auth import new_token, write_token_file
from explorer.core.wire.server import FrameServer

log = logging.getLogger("explorer.watch")

HISTORY_ROWS = 100_000        # metric rows kept for windows that connect later
ONE_THREAD_MAX_CPU_S = 0.010  # a CPU model's snapshot that takes more work than this runs on torch's threads
COARSE_CPU_CLOCK = sys.platform == "win32"  # a thread's CPU time only moves at the 15.6 ms clock interrupt
TICK_S = 0.05                 # metric rows go out in batches, at most 20 a second
FOLDER_SNAPSHOT_S = 1.0       # a snapshot file at most every second (the windows may get more)
ALONE_RESUME_S = 5.0          # a run paused by a window that is gone goes on after this long without one
MAX_STEPS = 10_000            # the most steps one "step" command asks for
MAX_KEY = 200                 # characters of a scalar's name
CONTROL_COMMANDS = frozenset({"pause", "play", "step", "set_lr"})
READ_ONLY = "this run is read-only (started without control=True)"
RESERVED = ("time",)
MAX_NAMES_KEPT = 1000         # scalar names remembered as checked (the per-step row skips their checks)


# -- closing at exit -------------------------------------------------------------------------------------------

_LIVE: weakref.WeakSet = weakref.WeakSet()   # the watchers not yet closed (held weakly: the model is theirs)
_exit_hook_set = False


def _close_live_watchers() -> None:
    """At interpreter exit: close every watcher still open, as ``close()`` would, so that a script that
    never called it still leaves its last views in the window and the folder (the finalizers that run
    after this one close what is left without the model: a dropped watcher keeps nothing alive)."""
    for watcher in list(_LIVE):
        if watcher._pid == os.getpid():  # (a forked child leaves its parent's watcher to the parent)
            watcher.close()  # (never raises)


def _hook_exit() -> None:
    """Registers :func:`_close_live_watchers`, once, after ``weakref.finalize``'s own exit hook (a
    watcher's finalizer registers it): exit hooks run last first, so this one runs before it."""
    global _exit_hook_set
    if not _exit_hook_set:
        atexit.register(_close_live_watchers)
        _exit_hook_set = True


# -- small helpers ------------------------------------------------------------------------------------------

def _rank() -> int:
    """This process's rank under torch.distributed (0 when not distributed): torch's own once it is set
    up, else the launcher's RANK (a script may call watch() before init_process_group)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except Exception:  # noqa: BLE001 - a broken distributed setup: treat as one process
        pass
    env = os.environ.get("RANK", "")
    return int(env) if env.isdecimal() else 0


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    for _ in range(8):
        inner = model.module if isinstance(model, (DistributedDataParallel, DataParallel)) else \
            getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            break
        model = inner
    return model


def _device_of(model: nn.Module) -> torch.device | None:
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return None


def _own_copy(value: Any, device: torch.device | None) -> Any:
    """A probe (a tensor, or a tuple/list of them) as the watcher's own copy on the model's device: the
    script may reuse its batch tensors in place."""
    if isinstance(value, torch.Tensor):
        moved = value.detach().to(device) if device is not None else value.detach()
        return moved.clone() if moved is value or moved.data_ptr() == value.data_ptr() else moved
    if isinstance(value, (tuple, list)):
        return type(value)(_own_copy(v, device) for v in value)
    return value


def parse_listen(listen: Any) -> tuple[str, int] | None:
    """``"HOST:PORT"`` (``"[::1]:0"`` for IPv6; port 0: a free one), a port number, or None (no server)."""
    if listen is None:
        return None
    if isinstance(listen, int) and not isinstance(listen, bool):
        host, port_text = "127.0.0.1", str(listen)
    elif isinstance(listen, str):
        host, sep, port_text = listen.strip().rpartition(":")
        if not sep:
            raise ValueError(f"listen must be 'HOST:PORT' (such as '127.0.0.1:0'), not {listen!r}")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        host = host or "127.0.0.1"
    else:
        raise ValueError(f"listen must be 'HOST:PORT', a port number or None, not {listen!r}")
    if not port_text.isdecimal() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen: the port must be a number from 0 to 65535, not {port_text!r}")
    return host, int(port_text)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _hparams(optimizer: Any) -> dict[str, float]:
    """The optimizer's plain-number hyperparameters of its first parameter group (the learning rate first)."""
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    out: dict[str, float] = {}
    for key in ("lr", "momentum", "weight_decay"):
        value = group.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value.item())
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


def _minimal_description(model: nn.Module, name: str, device: torch.device | None) -> dict:
    """What a window needs when the model could not be described (no layers: curves only)."""
    return {"name": name, "framework": f"torch {torch.__version__}", "device": str(device or "cpu"),
            "input_shape": None, "output_shape": None, "segmentation": False, "layers": [], "grad_layers": []}


class _Outlets:
    """Where a watcher's frames go, and what must be closed: the server, the folder, the token file, the
    rows not yet sent. Held apart from the watcher (and so from the model), so that closing it at exit,
    or when a dropped watcher is collected, keeps neither alive."""

    def __init__(self) -> None:
        self.server: FrameServer | None = None
        self.folder: FolderWriter | None = None
        self.token_file: Path | None = None
        self.batch: list[dict] = []                          # rows since the last tick
        self.unsent: deque[dict] = deque(maxlen=HISTORY_ROWS)  # rows no window has had yet
        self.step = 0
        self.closed = False

    def send_rows(self, viewers: bool) -> None:
        """The batch to the windows (with the rows kept while none watched), or kept for later."""
        batch, self.batch = self.batch, []
        if self.folder is not None and batch:
            self.folder.add_rows(batch)
        if self.server is None:
            return
        if viewers:
            rows = [*self.unsent, *batch] if self.unsent else batch
            self.unsent.clear()
            if rows:
                self.server.publish_metrics(rows)
        else:
            self.unsent.extend(batch)

    def close(self) -> None:
        """Send and write what is left, say the run ended, stop serving, remove the token file."""
        if self.closed:
            return
        self.closed = True
        server, folder = self.server, self.folder
        try:
            self.send_rows(viewers=True)
        except Exception:  # noqa: BLE001 - closing goes on whatever failed
            log.warning("the last metric rows could not be sent", exc_info=True)
        if folder is not None:
            try:
                folder.close(step=self.step)
            except Exception:  # noqa: BLE001
                log.warning("the watch folder %s could not be closed", folder.path, exc_info=True)
        if server is not None:
            try:
                server.publish("state", {"state": "ended", "step": self.step}, keep_as_latest=True)
            except Exception:  # noqa: BLE001
                log.warning("the end of the run could not be sent", exc_info=True)
            server.close()
        if self.token_file is not None:
            try:
                self.token_file.unlink(missing_ok=True)
            except OSError:
                log.warning("the token file %s could not be removed", self.token_file, exc_info=True)


# -- the watcher ----------------------------------------------------------------------------------------------

def watch(model: nn.Module, probe: Any = None, *, target: Any = None, optimizer: Any = None, control: bool = False,
          listen: str | int | None = "127.0.0.1:0", token: str | None = None,
          token_file: str | os.PathLike | None = None, logdir: str | os.PathLike | None = None,
          budget: float = DEFAULT_BUDGET, name: str | None = None, quiet: bool = False) -> Watcher:
    """Watch ``model`` while the script trains it; see :class:`Watcher`."""
    return Watcher(model, probe, target=target, optimizer=optimizer, control=control, listen=listen, token=token,
                   token_file=token_file, logdir=logdir, budget=budget, name=name, quiet=quiet)


class Watcher:
    """A model watched from the user's training loop (see the module's docstring).

    - ``model``: any ``torch.nn.Module`` (DistributedDataParallel/DataParallel/compiled: the module inside).
    - ``probe``: a few samples (batch first; a tuple is fed as ``model(*probe)``) that snapshots show going
      through the model; ``target`` their labels, if they help the views (segmentation masks). Without a
      probe: curves, gradient norms and weights only.
    - ``optimizer``: lets a control window set the learning rate (every parameter group's).
    - ``control``: windows may pause, step and resume the loop and set the learning rate.
    - ``listen``: ``"HOST:PORT"`` of the server (port 0: a free one); None: no server (a folder only).
    - ``token`` / ``token_file``: the control token (default: a random one) and where it is written
      (default: the user's runtime folder, ``watch-<port>.json``, mode 0600; removed at close).
    - ``logdir``: also write the run to this folder (folder.py).
    - ``budget``: the share of the loop's time the watcher may take (0.03: 3%).
    - ``name``: the run's name (default: the model's class); ``quiet``: print nothing.

    ``address`` (host, port), ``token``, ``viewer_token`` and ``token_file`` say where it listens (None
    without a server). ``step(**scalars)`` once per training step; ``close()`` at the end (also done by
    ``with``, at the interpreter's exit, and when a dropped watcher is collected)."""

    def __init__(self, model: nn.Module, probe: Any = None, *, target: Any = None, optimizer: Any = None,
                 control: bool = False, listen: str | int | None = "127.0.0.1:0", token: str | None = None,
                 token_file: str | os.PathLike | None = None, logdir: str | os.PathLike | None = None,
                 budget: float = DEFAULT_BUDGET, name: str | None = None, quiet: bool = False) -> None:
        self._active = False
        self.address: tuple[str, int] | None = None
        self.token: str | None = None
        self.viewer_token: str | None = None
        self.token_file: Path | None = None
        self.logdir: Path | None = None
        self.name = name
        self.rank = _rank()
        if self.rank != 0:  # only rank 0 watches: the other ranks pay nothing
            return
        if not isinstance(model, nn.Module):
            raise TypeError(f"watch() needs a torch.nn.Module, not {type(model).__name__}")
        if optimizer is not None and not hasattr(optimizer, "param_groups"):
            raise TypeError(f"optimizer must be a torch optimizer (with param_groups), not {type(optimizer).__name__}")
        if token is not None and (not isinstance(token, str) or not token.isascii() or not token.isprintable()
                                  or " " in token or not token):
            raise ValueError("token must be a non-empty printable ASCII str without spaces")
        address = parse_listen(listen)
        self._pacer = Pacer(budget)
        self._clock = self._pacer.clock
        self._cpu_clock = time.thread_time  # the loop thread's CPU seconds (what the watcher's work is charged)
        self._process_clock = time.process_time  # every thread's: torch's workers do part of a snapshot's forward
        self._waited = 0.0                  # seconds the last tick or look waited off the CPU on its own account
        self._started = self._clock()
        self._model = unwrap(model)
        self._lookup = LayerLookup(self._model)  # the layers by name, for the snapshots and gradient rows
        self.name = name = str(name) if name else type(self._model).__name__
        self._optimizer = optimizer
        self._control = bool(control)
        self._failed: set[str] = set()
        self._warned_keys: set[str] = set()
        self._names_ok: set[str] = set()
        self._held: list[str] = []
        self._out = _Outlets()
        self._finalizer = weakref.finalize(self, self._out.close)  # at exit too (finalize's atexit)
        _hook_exit()

        device = _device_of(self._model)
        self._probe = _own_copy(probe, device)
        self._target = _own_copy(target, device)
        self._desc = self._describe(name, device)
        self._desc["control"] = self._control
        if optimizer is not None:
            self._desc["hparams"] = _hparams(optimizer)
        self._grad_layers = [str(n) for n in self._desc.get("grad_layers") or []]
        self._grads_on = bool(self._grad_layers)
        self._snaps_on = True

        # the loop's state
        self._n = 0
        self._epoch = 0
        self._last_row: dict = {"step": 0, "time": 0.0}
        self._next_tick = -math.inf
        self._unpaid = 0.0           # seconds of per-step bookkeeping not yet charged to the pacer
        self._unpaid_at = 0.0        # when the last of them ended
        self._viewers = 0
        self._heavy = False          # a window watches or a folder is written: heavy work may be due
        self._heavy_owed, self._light_since = 0.0, -math.inf  # what heavy work still owed when it last stopped
        self._one_thread = True      # a CPU model's snapshots run on one thread (see _taken)
        self._look_at = -math.inf    # before this time no heavy work is due (the pacer's next_due)
        self._grad_step = -1         # the step of the last gradient row
        self._pause_wanted = False
        self._run_steps: int | None = None
        self._wants_snapshot = False
        self._erf: dict | None = None
        self._folder_written_at = -math.inf
        self._folder_step = -1       # the step of the last snapshot written to the folder
        self._shown_step = -1        # the step of the last snapshot taken
        self._state = ""
        self._closed = False
        self._loop_thread: threading.Thread | None = None  # the thread that called step() last
        self._active = True

        if address is not None:
            self._serve(address, token, token_file, quiet)
        for text in self._held:
            self._notice(text, keep=True)
        self._held.clear()
        if logdir is not None:
            self._open_folder(Path(logdir), quiet)
        self._heavy = self._out.folder is not None
        self._set_state("running")
        self._pid = os.getpid()
        _LIVE.add(self)  # (whole: at exit it is closed with its last views)
        if not quiet:
            if self.address is not None:
                where = f"token in {self.token_file}" if self.token_file is not None else "no token file"
                print(f"explorer: watching {name} on {_where(*self.address)} ({where})", file=sys.stderr)
            elif self.logdir is not None:
                print(f"explorer: watching {name} into {self.logdir}", file=sys.stderr)

    # -- setting up ---------------------------------------------------------------------------------------
    def _describe(self, name: str, device: torch.device | None) -> dict:
        """The model's description (with the probe's shapes); a probe the model cannot take is dropped (the
        snapshots then show weights only) and said in a notice."""
        try:
            return dict(describe_model(self._model, self._probe, name=name))
        except Exception as exc:  # noqa: BLE001
            first = exc
        if self._probe is not None:
            self._probe = self._target = None
            self._fail("the probe", first, "the probe cannot go through the model; snapshots show the weights only",
                       stop=False)
            try:
                return dict(describe_model(self._model, None, name=name))
            except Exception as exc:  # noqa: BLE001
                first = exc
        self._fail("the model's description", first, "the model could not be described; curves only", stop=False)
        return _minimal_description(self._model, name, device)

    def _serve(self, address: tuple[str, int], token: str | None, token_file: Any, quiet: bool) -> None:
        host, port = address
        self.token = token or new_token()
        self.viewer_token = new_token() if self._control else None
        try:
            server = FrameServer(host, port, token=self.token, viewer_token=self.viewer_token,
                                 allow_control=self._control, model=self._desc, history_rows=HISTORY_ROWS)
            server.start()
        except Exception as exc:  # noqa: BLE001 - a port in use: watching goes on without a server
            # (the log's line at INFO: a script without logging set up would print a WARNING a second time)
            log.info("cannot listen on %s: %s", _where(host, port), exc)
            if not quiet:
                print(f"explorer: cannot listen on {_where(host, port)} ({exc}); watching without a server",
                      file=sys.stderr)
            self.token = self.viewer_token = None
            return
        self._out.server = server
        self.address = server.address
        info = {"host": server.address[0], "port": server.address[1], "token": self.token, "pid": os.getpid(),
                "name": self.name}
        if self.viewer_token is not None:
            info["viewer_token"] = self.viewer_token
        try:
            self.token_file = write_token_file(token_file, info)
            self._out.token_file = self.token_file
        except Exception as exc:  # noqa: BLE001
            log.warning("the token file could not be written: %s", exc)

    def _open_folder(self, logdir: Path, quiet: bool) -> None:
        try:
            self._out.folder = FolderWriter(logdir, self._desc, bound_bytes=DEFAULT_BOUND_BYTES)
            self.logdir = logdir
        except Exception as exc:  # noqa: BLE001 - an unwritable folder: watching goes on without it
            log.info("cannot write the watch folder %s: %s", logdir, exc)
            if not quiet:
                print(f"explorer: cannot write the watch folder {logdir} ({exc})", file=sys.stderr)

    # -- faults and notices --------------------------------------------------------------------------------
    def _notice(self, text: str, keep: bool = False) -> None:
        """A notice to the windows (``keep``: also to the ones that connect later, the latest such)."""
        server = self._out.server
        if server is None:
            if not self._out.closed and keep and len(self._held) < 20:
                self._held.append(text)  # said while setting up: sent once the server is up
            return
        if self._out.closed:
            return
        try:
            server.publish("notice", {"text": text}, keep_as_latest=keep)
        except Exception:  # noqa: BLE001
            log.warning("a notice could not be sent: %s", text, exc_info=True)

    def _fail(self, part: str, exc: BaseException, what: str | None = None, stop: bool = True) -> None:
        """``part`` of watching failed: logged once (with its traceback), a notice, and it stops."""
        if part in self._failed:
            return
        self._failed.add(part)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        text = f"{what or part + (' stopped' if stop else ' failed')} ({reason}); the training goes on"
        log.error("%s", text, exc_info=(type(exc), exc, exc.__traceback__))
        self._notice(text, keep=True)

    # -- the loop's call ------------------------------------------------------------------------------------
    def step(self, **scalars: Any) -> None:
        """One training step done: ``scalars`` (numbers: ``loss=loss.item()``) become a metric row.
        ``step=`` sets the step's number (else it counts on), ``epoch=`` the epoch. While a window has
        paused the run (``control=True``), this blocks until it resumes. Never raises."""
        if not self._active:
            return
        self._loop_thread = threading.current_thread()
        try:
            self._step(scalars)
        except Exception as exc:  # noqa: BLE001 - nothing inside watching may stop the training
            self._fail("watching", exc)
            self._active = False

    def _step(self, scalars: dict[str, Any]) -> None:
        now = self._clock()
        # while heavy work is paced (a window watches, a folder is written), and in a step that ticks, the
        # watching is charged the loop thread's CPU time: a window starting on the same two cores kept the thread
        # off the CPU for ~0.5 ms in many steps' bookkeeping and 4-6 ms in ticks of 0.2 ms, and charging that wall
        # time stopped the views and gradients for 3 s after an attach (two readings, 1.1 us; nobody watching,
        # the other steps read no CPU clock and are charged their wall time, a few microseconds; on Windows,
        # whose thread clock counts in 15.6 ms ticks, every step is charged its wall time)
        cpu = self._cpu_clock() if (self._heavy or now >= self._next_tick) and not COARSE_CPU_CLOCK else None
        row = self._row(now, scalars)
        self._out.batch.append(row)
        self._out.step = self._n
        self._last_row = row
        if self._run_steps is not None:  # a window asked for n steps: this was one of them
            self._run_steps -= 1
            if self._run_steps <= 0:
                self._run_steps = None
                self._pause_wanted = True
        waited = 0.0
        if now >= self._next_tick:
            self._waited = 0.0
            self._tick(now)
            waited = self._waited  # (what a folder flush waited for the disk: the watcher's own cost)
        if self._heavy and (now >= self._look_at or (self._wants_snapshot and self._snaps_on and self._viewers > 0)):
            if cpu is None:
                self._look(now, row)
                end = self._clock()
                spent = end - now
            else:
                spent = self._cpu_clock() - cpu + waited + self._charged_look(now, row)
                end = self._clock()
            self._pacer.charge(spent + self._unpaid, end)
            self._unpaid = 0.0
            self._look_at = self._pacer.next_due(self._intervals(), end)
        else:  # nothing heavy is due: the bookkeeping's seconds are charged at the next tick or look, in one sum
            self._unpaid_at = end = self._clock()
            self._unpaid += end - now if cpu is None else self._cpu_clock() - cpu + waited
        if self._pause_wanted:
            self._paused()

    def _charged_look(self, now: float, row: dict) -> float:
        """:meth:`_look`, and the seconds it is charged: the loop thread's CPU time, or the whole process's while
        it looked if more (torch's worker threads do part of a forward on the CPU, and the loop thread waits
        for them), but never more than its wall time; plus what it waited for the disk. With the model on an
        accelerator (where the look waits for the device, off the CPU), its wall time."""
        self._waited = 0.0
        start, thread, process = self._clock(), self._cpu_clock(), self._process_clock()
        self._look(now, row)
        wall = self._clock() - start
        device = _device_of(self._model)  # (found again: a model moved after watch() began)
        if device is not None and device.type != "cpu":
            return wall
        thread, process = self._cpu_clock() - thread, self._process_clock() - process
        return max(thread, min(wall - self._waited, process)) + self._waited

    def _row(self, now: float, scalars: dict[str, Any]) -> dict:
        """This step's metric row; a scalar that is not a finite number is left out (said once per name).

        Called from the loop after the training step's own work, when little of the watcher is in the CPU's
        caches: the common case (a name seen before, a float or an int) takes the fewest steps."""
        step = scalars.pop("step", None) if "step" in scalars else None
        if step is not None:
            number = self._number("step", step)
            self._n = int(number) if number is not None else self._n + 1
        else:
            self._n += 1
        # to the microsecond (not round(), whose exact decimal rounding is slow code to run once a step)
        row: dict[str, Any] = {"step": self._n, "time": int((now - self._started) * 1e6 + 0.5) / 1e6}
        names_ok = self._names_ok
        for key, value in scalars.items():
            if key not in names_ok:
                if key in RESERVED or len(key) > MAX_KEY:
                    self._warn_key(key, f"step({key[:40]}=...): "
                                        f"{'the watcher sets it' if key in RESERVED else 'name too long'}; left out")
                    continue
                if len(names_ok) < MAX_NAMES_KEPT:
                    names_ok.add(key)
            kind = type(value)
            if kind is float and value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
                row[key] = value
            elif kind is int:  # (an epoch, a count)
                row[key] = value
            else:
                number = self._number(key, value)
                if number is not None:
                    row[key] = number
        if "epoch" in row:
            self._epoch = max(0, int(row["epoch"]))
        return row

    def _number(self, key: str, value: Any) -> float | None:
        if type(value) is int:  # (an epoch, a count: the common case first, before the ABC checks)
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number if not isinstance(value, numbers.Integral) else int(value)
        else:
            hint = " (pass a number: loss.item())" if isinstance(value, torch.Tensor) else ""
            self._warn_key(key, f"step({key}=...): a {type(value).__name__} is not a number{hint}; left out")
            return None
        self._warn_key(key, f"step({key}={value!r}): not a finite number; left out of the curves")
        return None

    def _warn_key(self, key: str, text: str) -> None:
        if key in self._warned_keys or len(self._warned_keys) > 1000:
            return
        self._warned_keys.add(key)
        log.warning("%s", text)
        self._notice(text)

    def _tick(self, now: float) -> None:
        """At most 20 times a second: the commands, who watches, the rows out."""
        self._next_tick = now + TICK_S
        if self._unpaid:  # (as of the step that ended last: the time since has paid some of it back)
            self._pacer.charge(self._unpaid, self._unpaid_at)
            self._unpaid = 0.0
        server = self._out.server
        if server is not None and "the server" not in self._failed:
            try:
                for command in server.commands():
                    self._command(command)
                self._viewers = server.viewers()
            except Exception as exc:  # noqa: BLE001
                self._fail("the server", exc)
                self._viewers = 0
        try:
            self._out.send_rows(self._viewers > 0)
        except Exception as exc:  # noqa: BLE001
            self._fail("the curves", exc)
            self._out.batch.clear()
        folder = self._out.folder
        if folder is not None:
            with self._disk_wait_charged():
                try:
                    folder.flush()
                except Exception as exc:  # noqa: BLE001
                    self._folder_failed(exc)
        heavy = self._viewers > 0 or self._out.folder is not None
        if heavy != self._heavy:
            # heavy work owes what heavy work left unpaid, not the bookkeeping of the steps while nothing heavy
            # was done: the steps that did not tick were charged their wall time (they read no CPU clock), and a
            # window starting up on the same cores kept the loop's thread waiting in some: 0.3-1.8 s of debt at
            # an attach, before the window's first snapshot
            if heavy:
                self._pacer.set_debt(self._heavy_owed - (now - self._light_since), now)
            else:
                self._heavy_owed, self._light_since = self._pacer.debt, now
        self._heavy = heavy
        self._look_at = -math.inf  # (who watches may have changed, and with it what is due when)

    @contextmanager
    def _disk_wait_charged(self) -> Iterator[None]:
        """A folder write: the time it waits off the CPU (for the disk, an NFS server) is the watcher's own
        cost, added to ``_waited`` for the step's charge."""
        wall, cpu = self._clock(), self._cpu_clock()
        try:
            yield
        finally:
            self._waited += max(0.0, (self._clock() - wall) - (self._cpu_clock() - cpu))

    def _folder_failed(self, exc: BaseException) -> None:
        folder, self._out.folder = self._out.folder, None
        self._fail("the watch folder", exc, f"writing the watch folder {folder.path if folder else ''} stopped")

    # -- the heavy work: gradient norms and snapshots ---------------------------------------------------------
    def _intervals(self) -> dict[str, float]:
        """The kinds of heavy work on, and the least time between two of each (what :meth:`_look` asks)."""
        kinds = {}
        if self._grads_on:
            kinds[GRAD] = self._pacer.min_interval.get(GRAD, 0.0)
        if self._snaps_on:
            kinds[SNAPSHOT] = self._pacer.min_interval.get(SNAPSHOT, 0.0) if self._viewers > 0 else FOLDER_SNAPSHOT_S
        return kinds

    def _look(self, now: float, row: dict) -> None:
        viewers = self._viewers > 0
        norms = None
        if self._grads_on and self._pacer.due(GRAD, now):
            norms = self._grad_row()
            self._pacer.done(GRAD, now)
        if self._snaps_on and self._pacer.due(SNAPSHOT, now, min_interval=None if viewers else FOLDER_SNAPSHOT_S,
                                              urgent=self._wants_snapshot and viewers):
            self._snapshot(now, row, norms)
            self._pacer.done(SNAPSHOT, now)

    def _norms(self) -> np.ndarray | None:
        """The gradient norms now, or None (gradient norms stopped)."""
        try:
            return np.asarray(grad_norms(self._model, self._grad_layers, self._lookup.modules()), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001
            self._grads_on = False
            self._fail("the gradient norms", exc)
            return None

    def _grad_row(self) -> np.ndarray | None:
        norms = self._norms()
        self._grad_step = self._n
        if norms is not None:
            self._out.batch.append({"step": self._n, **{f"grad/{name}": float(v)
                                                        for name, v in zip(self._grad_layers, norms)}})
        return norms

    def _taken(self, erf: dict | None) -> tuple[dict, dict]:
        """:func:`take_snapshot` of the model, on one CPU thread while the model is on the CPU and a snapshot
        takes under ONE_THREAD_MAX_CPU_S of work there. The probe's forward is small, and on torch's worker
        threads it waited at their barrier for a worker that another process had kept off its core (a window
        starting on the same machine): a snapshot of 2-3 ms took 40-85 ms, and the views stopped for 1.3-4 s.
        On one thread it took 6% longer on an idle machine. A larger model's snapshots go back to torch's
        threads for good. The user's thread setting is put back after each."""
        threads = torch.get_num_threads()
        device = _device_of(self._model)
        one = threads > 1 and self._one_thread and (device is None or device.type == "cpu")
        work = self._clock if COARSE_CPU_CLOCK else self._cpu_clock
        if one:
            torch.set_num_threads(1)
            start = work()
        try:
            return take_snapshot(self._model, self._probe, self._desc, target=self._target, erf=erf,
                                 modules=self._lookup.modules())
        finally:
            if one:
                torch.set_num_threads(threads)
                if work() - start > ONE_THREAD_MAX_CPU_S:
                    self._one_thread = False

    def _snapshot(self, now: float, row: dict, norms: np.ndarray | None) -> None:
        """Take a snapshot on the probe and send it (and write it, at most every FOLDER_SNAPSHOT_S)."""
        erf, self._erf = self._erf, None
        self._wants_snapshot = False
        try:
            arrays, extra = self._taken(erf)
        except Exception as exc:  # noqa: BLE001
            if erf is None:
                self._snaps_on = False
                self._fail("the snapshots", exc)
                return
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            log.warning("the effective receptive field of %s could not be computed: %s", erf.get("layer"), reason)
            self._notice(f"the effective receptive field of {erf.get('layer')} could not be computed ({reason})")
            return self._snapshot(now, row, norms)
        arrays = dict(arrays)
        if norms is None and self._grads_on and self._grad_step != self._n:
            # the snapshot's norms are also this step's gradient row: the next row is due a gradient period
            # from here, not computed again a few steps on (on a small model each costs 0.25 ms in the loop)
            norms = self._grad_row()
            self._pacer.done(GRAD, now)
        elif norms is None and self._grads_on:  # (this step has its row: a snapshot asked for while paused)
            norms = self._norms()
        arrays["grad_norms"] = norms if norms is not None else np.full(len(self._grad_layers), np.nan, np.float32)
        scalars = {k: v for k, v in row.items() if k not in ("step", "time")}
        scalars.update({str(k): float(v) for k, v in dict(extra).items()})
        fields = {"step": self._n, "epoch": self._epoch, "time": row["time"], "scalars": scalars}
        self._shown_step = self._n
        server = self._out.server
        if server is not None:
            try:
                server.publish("snapshot", fields, arrays, droppable=True, keep_as_latest=True)
            except Exception as exc:  # noqa: BLE001 - arrays the wire cannot carry
                self._snaps_on = False
                self._fail("the snapshots", exc)
                return
        folder = self._out.folder
        if folder is not None and now - self._folder_written_at >= FOLDER_SNAPSHOT_S:
            with self._disk_wait_charged():
                try:
                    folder.write_snapshot(self._n, self._epoch, row["time"], scalars, arrays)
                    self._folder_written_at = now
                    self._folder_step = self._n
                except Exception as exc:  # noqa: BLE001
                    self._folder_failed(exc)

    # -- commands from the windows ----------------------------------------------------------------------------
    def _command(self, fields: dict) -> None:
        """One command (its fields, as the server passed them on); a bad one is a notice, never an error."""
        cmd = fields.get("cmd")
        if cmd in CONTROL_COMMANDS and not self._control:
            self._notice(READ_ONLY)
        elif cmd == "pause":
            self._pause_wanted, self._run_steps = True, None
        elif cmd == "play":
            self._pause_wanted, self._run_steps = False, None
        elif cmd == "step":
            n = fields.get("n", 1)
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS:
                self._notice(f"step: n must be a whole number from 1 to {MAX_STEPS}, not {n!r:.40}")
            else:
                self._pause_wanted, self._run_steps = False, n
        elif cmd == "set_lr":
            self._set_lr(fields.get("lr"))
        elif cmd == "erf":
            self._ask_erf(fields)
        elif cmd == "snapshot":
            self._wants_snapshot = True
        else:
            self._notice(f"unknown command {cmd!r:.60} (pause, play, step, set_lr, erf, snapshot)")

    def _set_lr(self, lr: Any) -> None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            self._notice(f"set_lr: the learning rate must be a positive finite number, not {lr!r:.40}")
            return
        if self._optimizer is None:
            self._notice("set_lr: the script did not pass its optimizer (explorer.watch(..., optimizer=opt))")
            return
        try:
            for group in self._optimizer.param_groups:
                if isinstance(group.get("lr"), torch.Tensor):
                    group["lr"].fill_(float(lr))
                else:
                    group["lr"] = float(lr)
        except Exception as exc:  # noqa: BLE001
            self._fail("setting the learning rate", exc, stop=False)
            return
        self._desc.setdefault("hparams", {})["lr"] = float(lr)  # later windows are welcomed with it
        log.info("the learning rate was set to %g", lr)
        self._notice(f"learning rate set to {float(lr):g}")

    def _ask_erf(self, fields: dict) -> None:
        layer = fields.get("layer")
        numbers_ok = all(isinstance(fields.get(k), int) and not isinstance(fields.get(k), bool)
                         and fields[k] >= 0 for k in ("channel", "y", "x"))
        names = {entry.get("name") for entry in self._desc.get("layers") or [] if isinstance(entry, dict)}
        if not isinstance(layer, str) or layer not in names or not numbers_ok:
            self._notice(f"erf: needs a layer of the model and channel, y, x as whole numbers >= 0 "
                         f"(layer {layer!r:.60})")
            return
        if self._probe is None:
            self._notice("erf: the effective receptive field needs a probe (explorer.watch(model, probe=x))")
            return
        self._erf = {"layer": layer, "channel": fields["channel"], "y": fields["y"], "x": fields["x"]}
        self._wants_snapshot = True

    # -- pausing ------------------------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        server = self._out.server
        if server is not None and not self._out.closed:
            try:
                server.publish("state", {"state": state, "step": self._n}, keep_as_latest=True)
            except Exception as exc:  # noqa: BLE001
                self._fail("the server", exc)

    def _paused(self) -> None:
        """Block the loop while a window keeps it paused, still answering requests for snapshots."""
        server = self._out.server
        if server is None or "the server" in self._failed:
            self._pause_wanted = False
            return
        self._set_state("paused")
        log.info("paused by a window at step %d", self._n)
        alone_since: float | None = None
        while self._pause_wanted and not self._closed and not self._out.closed:
            command = server.wait_command(0.1)
            now = self._clock()
            if command is not None:
                self._command(command)
            if self._wants_snapshot and self._snaps_on:
                self._snapshot(now, self._last_row, None)
                self._pacer.done(SNAPSHOT, now)
            if now >= self._next_tick:
                self._tick(now)
            if self._viewers == 0:
                alone_since = now if alone_since is None else alone_since
                if now - alone_since >= ALONE_RESUME_S:
                    log.warning("no window is left to resume the paused run: it goes on")
                    self._pause_wanted, self._run_steps = False, None
            else:
                alone_since = None
        self._set_state("running")

    # -- closing --------------------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether this watcher watches (False on ranks other than 0, after close, or after a fault)."""
        return self._active

    def close(self) -> None:
        """Send what is left, tell the windows the run ended (``bye``), stop serving, write the folder's
        ``ended`` marker and remove the token file. Idempotent; never raises.

        The last views are taken (:meth:`_last_look`) only from the thread that ran the loop, or once that
        thread has ended: closed from another thread while the loop still runs (at interpreter exit, a loop
        on a daemon thread goes on while the exit hooks run), a snapshot would run the model's forward in eval
        mode, with the random generators forked, in the middle of one of its training steps."""
        if self.rank != 0:
            return
        try:
            loop = self._loop_thread
            elsewhere = loop is not None and loop is not threading.current_thread() and loop.is_alive()
            if self._active and not self._closed and not elsewhere:
                self._last_look()
        finally:  # (a Ctrl+C during the last look still closes the server and removes the token file)
            _LIVE.discard(self)
            self._closed = True
            self._active = False
            self._pause_wanted = False
            try:
                self._finalizer()
            except Exception:  # noqa: BLE001
                log.warning("closing the watcher failed", exc_info=True)

    def _last_look(self) -> None:
        """The model as the run leaves it: a last snapshot, sent and written, unless the last one taken (and,
        with a folder, the last one written) was of this very step. A run shorter than the folder's second
        between snapshot files would otherwise leave its first step's views under its last step's number."""
        folder_behind = self._out.folder is not None and self._folder_step < self._n
        if self._n <= 0 or not self._snaps_on or not (folder_behind or (self._viewers > 0 and self._shown_step < self._n)):
            return
        try:
            self._folder_written_at = -math.inf  # (this one is written whatever the time since the last)
            self._snapshot(self._clock(), self._last_row, None)
        except Exception:  # noqa: BLE001 - closing goes on
            log.warning("the run's last views could not be taken", exc_info=True)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = _where(*self.address) if self.address else (str(self.logdir) if self.logdir else "nowhere")
        return f"<Watcher {self.name} on {where}{'' if self._active else ' (closed)'}>"


__all__ = ["Watcher", "parse_listen", "unwrap", "watch"]
