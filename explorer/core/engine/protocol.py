"""What a training session offers the window and its panels, wherever its training runs.

Three classes implement it: :class:`~explorer.core.engine.session.TrainingSession` trains on a thread of
this process, :class:`~explorer.core.process.session.ProcessSession` drives one in a training process of
its own, and :class:`~explorer.core.watch.session.WatchSession` shows a model the user trains in a script of
their own (fed by a connection or a watch folder). The window and the panels hold a :class:`Session` and
never ask which kind it is: what differs for them (what drawing the views costs training) is a member here,
``in_own_process``. Only the code that creates sessions names the classes. tests/test_session_protocol.py
checks that every one of them provides every member listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from explorer.core.engine.session import MetricsLog, Snapshot


class Session(Protocol):
    """A training session as the window and the panels use it (see the module's docstring)."""

    # the trainer, or in a training process a read-only mirror of the attributes the window reads
    # (step, epoch, config, family, device, describe()...)
    trainer: Any
    metrics: MetricsLog       # the curves: step rows and evaluation rows
    run_id: int               # counts resets: a snapshot or curve of an earlier run is stale
    run_info: dict[str, Any]  # a reopened run's run.json ({} otherwise)
    epochs: int | None        # the epoch budget (None: train until paused)
    error: str | None         # why the run stopped, while it is stopped by an error
    out_of_memory: bool       # the last failure was the device running out of memory
    threads: int              # intra-op threads training may use
    threads_in_use: int       # of which it uses (measured on the CPU)
    thread_note: str          # what the thread measurement found ("" until it is done)
    snapshot_seconds: float   # training time spent taking snapshots (what the views cost training)

    @property
    def state(self) -> str:
        """PAUSED, RUNNING, FINISHED, ERROR or STOPPED (see ``explorer.core.engine.session``)."""
        ...

    @property
    def is_alive(self) -> bool:
        """Whether its training thread (or process) still runs, to take commands between steps."""
        ...

    @property
    def snapshot_hz(self) -> float:
        ...

    @property
    def step_rate(self) -> float | None:
        """The most training steps a second while running (None: full speed)."""
        ...

    @property
    def in_own_process(self) -> bool:
        """True when training runs in a process of its own: drawing the views then never holds it up,
        and only the snapshots it takes for them cost training time. False on a thread of this process,
        where drawing holds Python's lock, which training needs between operations."""
        ...

    # -- control ---------------------------------------------------------------------------------------
    def start(self) -> None:
        ...

    def pause(self) -> None:
        ...

    def step(self, n: int = 1) -> None:
        ...

    def reset(self) -> None:
        ...

    def set_hparams(self, **changes: Any) -> None:
        ...

    def set_device(self, name: str) -> None:
        ...

    def set_threads(self, n: int | None) -> None:
        ...

    def set_snapshot_rate(self, hz: float) -> None:
        ...

    def set_step_rate(self, steps_per_s: float | None) -> None:
        """Train at most this many steps a second (None or 0: full speed), to watch a fast model learn."""
        ...

    def run_command(self, fn: Callable[..., Any], *args: Any,
                    on_done: Callable[[Any, BaseException | None], None] | None = None, **kwargs: Any) -> None:
        """Run ``fn(session, *args, **kwargs)`` between training steps (a module-level function: see
        ``explorer.core.persist.commands``)."""
        ...

    def request_snapshot(self) -> None:
        ...

    def close(self, timeout: float = 10.0) -> bool:
        ...

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        ...

    def thread_idle(self) -> bool:
        ...

    # -- what the views read ---------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Snapshot], None] | None = None, pull: bool = False) -> None:
        ...

    def unsubscribe(self, callback: Callable[[Snapshot], None] | None = None) -> None:
        ...

    def snapshot_taken(self, seq: int) -> None:
        ...

    def latest_snapshot(self) -> Snapshot | None:
        ...

    def pop_notices(self) -> list[str]:
        ...

    def rates(self) -> tuple[float, float]:
        """(steps per second, samples per second) of recent training."""
        ...
