"""How many intra-op threads a training thread should use, found by timing its own steps.

More threads are not always faster. Between two tensor operations torch's OpenMP workers go to sleep
(the app waits passively, so that an idle team never spins on a core the window or another team
needs), and waking them costs tens of microseconds each time. A small model's step is hundreds of
short operations, so on a 2-core machine the deep MLP (784-128x5-10, batch 64) trained 2.7x faster on
one thread than on two, and the LSTM 2.5x; the RBM 784-500 was 14% faster on two, the FCN 8% (the RBM now
gives its threads to its products only, :class:`ProductTeam`, and is 25-35% faster on two).
No rule of thumb sorts these, so :class:`ThreadTuner` times a few blocks of real steps at each
candidate count, alternating, and keeps the fastest. It takes half a second of training (a second
when the counts are close), and the engine checks again now and then (with a shorter schedule), since
what the machine gives a thread changes: another program may take a core, and the window may go idle.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, TypeVar

import torch

T = TypeVar("T")

# above this many seconds a step, its operations are long enough that waking workers costs nothing
# worth measuring: the tuner keeps the most threads without trying fewer
LONG_STEP_S = 0.25


def candidate_counts(limit: int) -> list[int]:
    """The thread counts tried for a limit: 1, the limit, and half of it on 4 or more cores."""
    limit = max(1, int(limit))
    return sorted({1, limit} | ({limit // 2} if limit >= 4 else set()))


class ThreadTuner:
    """Picks the fastest of :func:`candidate_counts` by timing blocks of training steps.

    Use: start training with :meth:`first`; after every step call :meth:`record` with the step's
    duration; when it returns a number, switch the training thread to that many threads (it is the
    next block's count, or the choice once :attr:`done`). The schedule: ``warmup`` steps at the limit
    (not timed), then ``rounds`` rounds over the candidates, in alternating order (most threads first,
    then fewest first...), so a drift in the machine's speed weighs on each alike. A block is at least
    ``block_steps`` steps and ``block_seconds`` of stepping; its first step after a switch is not
    counted (the new team wakes up). A count's time per step is that of its fastest block, each block
    read by its median step (a step that lost its core to another process, an epoch's reshuffle, does
    not sway a block). The fastest block, because on a shared machine a core can be taken for a few
    tenths of a second, which slows every block at the higher count in that time: the RBM 784-500's two
    threads, 12-20% faster than one, read 40% slower in two blocks of three, and the median of all the
    steps then chose one thread (in a third of the sessions). A load that lasts slows every block, and
    the fastest block says so too. Fewer threads win unless more are faster by ``margin``: they leave
    cores to everything else. When the two fastest counts are within ``close`` of each other after
    ``rounds`` rounds, more rounds follow, up to ``max_rounds``: a close call gets more of the clock.
    """

    def __init__(self, limit: int, *, start: int | None = None, warmup: int = 3, rounds: int = 3,
                 block_steps: int = 4, block_seconds: float = 0.08, margin: float = 0.03,
                 max_rounds: int | None = None, close: float = 0.2):
        self.limit = max(1, int(limit))
        self.counts = candidate_counts(self.limit)
        # the count training runs at now: warm-up and the first block use it, so a check costs no switch
        self.start = start if start in self.counts else self.limit
        self.warmup = warmup
        self.block_steps = block_steps
        self.block_seconds = block_seconds
        self.margin = margin
        self.close = close
        self.max_rounds = max(rounds, 2 * rounds if max_rounds is None else max_rounds)
        self._order = [self.start] + [n for n in self.counts[::-1] if n != self.start]
        self.rounds = 0
        self._schedule: list[int] = []
        self._add_rounds(rounds)
        self.blocks: dict[int, list[list[float]]] = {n: [] for n in self.counts}  # seconds of each timed step
        self.chosen: int | None = self.start if len(self.counts) == 1 else None
        self._block = -1           # index into the schedule; -1: warming up
        self._seen = 0             # steps recorded in the current block (or warm-up)
        self._block_time = 0.0

    @classmethod
    def check(cls, limit: int, current: int) -> ThreadTuner:
        """A shorter schedule that checks a choice already made, starting at the count in use: no
        warm-up, two rounds of blocks of at least 0.04 s (up to four when the counts are close)."""
        return cls(limit, start=current, warmup=0, rounds=2, block_seconds=0.04)

    @property
    def samples(self) -> dict[int, list[float]]:
        """Every timed step's seconds at each count, the blocks run together."""
        return {n: [t for block in blocks for t in block] for n, blocks in self.blocks.items()}

    @property
    def done(self) -> bool:
        return self.chosen is not None

    def first(self) -> int:
        """The thread count to train with before the first :meth:`record`."""
        return self.chosen if self.chosen is not None else self.start

    def record(self, seconds: float) -> int | None:
        """Account one step of ``seconds``; a thread count to switch to now, or None to stay."""
        if self.chosen is not None:
            return None
        self._seen += 1
        if self._block < 0:
            if seconds >= LONG_STEP_S:  # big operations: workers are never the cost
                return self._choose(self.limit)
            if self._seen < self.warmup:
                return None
            # the first block runs at the count in use: it needs no settling step
            self._block, self._seen, self._block_time = 0, 1, 0.0
            return None
        if self._seen == 1:
            return None  # the step just after a switch: not counted
        n = self._schedule[self._block]
        if self._seen == 2:  # the block's first timed step
            self.blocks[n].append([])
        self.blocks[n][-1].append(seconds)
        self._block_time += seconds
        if self._seen - 1 >= self.block_steps and self._block_time >= self.block_seconds:
            return self._next_block()
        return None

    def _add_rounds(self, n: int) -> None:
        for _ in range(n):  # alternating order: a drift in the machine's speed weighs on each count alike
            self._schedule += self._order if self.rounds % 2 == 0 else self._order[::-1]
            self.rounds += 1

    def _next_block(self) -> int:
        self._block += 1
        self._seen = 0
        self._block_time = 0.0
        if self._block >= len(self._schedule):
            if self.rounds < self.max_rounds and self._is_close():
                self._add_rounds(1)
            else:
                return self._choose(self.best())
        return self._schedule[self._block]

    def _is_close(self) -> bool:
        """The two fastest counts are within ``close`` of each other (a choice more rounds may change)."""
        times = sorted(self.per_step(n) for n in self.counts)
        return times[1] <= times[0] * (1.0 + self.close)

    def per_step(self, n: int) -> float:
        """Seconds per step at ``n`` threads: the median step of its fastest block (inf if none measured)."""
        blocks = [b for b in self.blocks.get(n, ()) if b]
        return min(statistics.median(b) for b in blocks) if blocks else float("inf")

    def best(self) -> int:
        fastest = min(self.counts, key=self.per_step)
        bar = self.per_step(fastest) * (1.0 + self.margin)
        return min(n for n in self.counts if self.per_step(n) <= bar)

    def _choose(self, n: int) -> int:
        self.chosen = n
        return n

    def describe(self) -> str:
        """What was measured, for a tooltip: ``1 thread 1.2 ms/step, 2 threads 3.3 ms/step``."""
        parts = [f"{n} thread{'s' if n != 1 else ''} {self.per_step(n) * 1000:.1f} ms/step"
                 for n in self.counts if self.blocks[n]]
        return ", ".join(parts)


def _openmp_backend() -> bool:
    """Whether torch parallelises with OpenMP, whose thread count a thread may change at any moment (its
    native pool warns and ignores a change after the first parallel operation)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


class ProductTeam:
    """A step's matrix products on the training thread's whole team of intra-op threads, the rest on one.

    Why: with the app's passive wait policy every parallel operation wakes the sleeping workers, tens of
    microseconds each. A large product is worth that; the elementwise operations, sums and draws between
    products are not. On the 2-core machine an RBM 784-500's CD-1 step (batch 100) spent more than a
    sixth of its time waking workers for them: its sums for the biases took 345 us on two threads against
    40 us on one, a comparison 140 against 51 us, while its products ran 1.4x faster on two. Giving the
    products the team and everything else one thread made the step 25-35% faster than on either count
    alone (``benchmarks/product_team.py``; docs/performance.md). Changing OpenMP's count costs about 0.1 us.

    torch also keeps the last count set as the one a thread takes at its first parallel operation, when it
    has set none of its own: a thread that starts computing during a step takes one thread. The engine's
    training thread sets its own count; the window's threads and a server's do no parallel work of note.

    Use::

        with ProductTeam(x.device) as team:
            a = team(torch.addmm, d, x, W)   # on the team
            h = torch.sigmoid(a)             # on one thread

    Outside ``with``, on a device other than the CPU, with a team of one, or where torch does not
    parallelise with OpenMP, a call just runs the operation and nothing changes the thread count.
    """

    _openmp: bool | None = None

    def __init__(self, device: Any = None):
        self._cpu = device is None or getattr(device, "type", device) == "cpu"
        self.size = 1  # the team's size while inside ``with`` (1: no split)

    def __enter__(self) -> ProductTeam:
        if ProductTeam._openmp is None:
            ProductTeam._openmp = _openmp_backend()
        n = torch.get_num_threads() if self._cpu and ProductTeam._openmp else 1
        if n > 1:
            torch.set_num_threads(1)
        self.size = n
        return self

    def __exit__(self, *exc: object) -> None:
        if self.size > 1:
            torch.set_num_threads(self.size)
        self.size = 1

    def __call__(self, op: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``op(*args, **kwargs)`` on the whole team (just ``op(...)`` when there is no split)."""
        if self.size == 1:
            return op(*args, **kwargs)
        torch.set_num_threads(self.size)
        try:
            return op(*args, **kwargs)
        finally:
            torch.set_num_threads(1)


ALONE = ProductTeam()  # never entered: runs every operation as it comes (the default where no team is given)
