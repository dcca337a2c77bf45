"""The :class:`MetricsLog`: append-only, thread-safe tables of a session's metrics (the curves), and how a
long run's per-step rows are kept to a size that grows with the logarithm of its steps (:class:`RowWindows`),
plus the short windows that evaluations, pauses and a slow pace cut (a few rows a second at most).

A row a step, kept for good, grew without end: the RBM on the bundled digits (the app's first screen)
trains 2,500-3,000 steps a second, and its log, the window's copy and the curves' points took about 3 GB an
hour in each process (0.8 MB a second in the training process alone, 300 bytes a row). The curves draw a
few thousand points across a plot anyway."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

# step rows kept at each window size before the window doubles: the first 20,000 rows are single steps, the
# next 20,000 means of 2 steps, then of 4... (an hour of 3,000 steps a second: about 180,000 rows, not 10.8
# million; the most recent steps always at the finest size the run has reached)
ROWS_PER_WINDOW_SIZE = 20_000
LAST_OF_WINDOW = ("step", "time", "epoch", "epoch_end")  # a window's row has its last step's, not a mean


class RowWindows:
    """How many steps a stored row stands for (``every``), doubled each time the log has grown by
    :data:`ROWS_PER_WINDOW_SIZE` rows since the last doubling. The session that makes the rows asks
    :meth:`grown` after adding some; a window that shows them adds what it gets (already averaged)."""

    def __init__(self, base: int = 1, stored: int = 0) -> None:
        self.base = max(1, int(base))
        self.reset(stored)

    def reset(self, stored: int = 0) -> None:
        """A new run (``stored``: the rows a restored run brings; the first doubling comes
        :data:`ROWS_PER_WINDOW_SIZE` rows after them)."""
        self.every = self.base
        self._next = int(stored) + ROWS_PER_WINDOW_SIZE

    def grown(self, stored: int) -> None:
        """``stored`` rows in the log now: the window doubles past each :data:`ROWS_PER_WINDOW_SIZE` more."""
        while stored >= self._next:
            self.every *= 2
            self._next += ROWS_PER_WINDOW_SIZE


def window_means(rows: Sequence[dict[str, float]], every: int) -> list[dict[str, float]]:
    """``rows`` in windows of ``every`` (the last one may be shorter): each the mean of its rows' values, at the
    last step, time and epoch it holds (:data:`LAST_OF_WINDOW`). Rows of different kinds (their names: a
    script's loss rows and its gradient rows) are averaged apart, a row each, in the order their last rows
    came: merged, a window's loss row carried gradient names, and a view that takes such a row for a
    gradient row left its loss out."""
    if every <= 1:
        return list(rows)
    out = []
    for start in range(0, len(rows), every):
        kinds: dict[frozenset[str], list[dict[str, float]]] = {}
        last_at: dict[frozenset[str], int] = {}  # where each kind's last row of the window is
        for at, row in enumerate(rows[start:start + every]):
            kind = frozenset(k for k in row if k not in LAST_OF_WINDOW)
            kinds.setdefault(kind, []).append(row)
            last_at[kind] = at
        for kind in sorted(kinds, key=last_at.__getitem__):
            kind_rows = kinds[kind]
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            for row in kind_rows:
                for key, value in row.items():
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
            mean = {key: sums[key] / counts[key] for key in sums}
            for key in LAST_OF_WINDOW:
                if key in mean:
                    mean[key] = next(row[key] for row in reversed(kind_rows) if key in row)
            out.append(mean)
    return out


class MetricsLog:
    """Append-only, thread-safe tables of metrics: ``steps`` (per step or per N steps) and ``evals``.

    Readers take what is new since their last read with :meth:`steps_since`/:meth:`evals_since`,
    so nothing is ever dropped however slowly they read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: list[dict[str, float]] = []
        self.evals: list[dict[str, float]] = []
        self.generation = 0  # counts clears, so a reader that keeps its place can tell a restart

    def add_steps(self, rows: list[dict[str, float]]) -> None:
        with self._lock:
            self.steps.extend(rows)

    def add_eval(self, row: dict[str, float]) -> None:
        with self._lock:
            self.evals.append(row)

    def steps_since(self, index: int) -> tuple[list[dict[str, float]], int]:
        with self._lock:
            rows = self.steps[index:]
            return rows, len(self.steps)

    def evals_since(self, index: int) -> tuple[list[dict[str, float]], int]:
        with self._lock:
            rows = self.evals[index:]
            return rows, len(self.evals)

    def clear(self) -> None:
        with self._lock:
            self.steps = []
            self.evals = []
            self.generation += 1

    def read_since(self, generation: int, steps_index: int, evals_index: int
                   ) -> tuple[int, list[dict[str, float]], int, list[dict[str, float]], int]:
        """New rows of both tables at once: ``(generation, steps, steps_end, evals, evals_end)``.

        A reader in another generation (the log was cleared since its last read) gets every row from the
        start, with the new generation, so it knows to drop what it had."""
        with self._lock:
            if generation != self.generation:
                steps_index = evals_index = 0
            return (self.generation, self.steps[steps_index:], len(self.steps),
                    self.evals[evals_index:], len(self.evals))

    def column(self, table: str, name: str) -> np.ndarray:
        with self._lock:
            rows = self.steps if table == "steps" else self.evals
            return np.array([r.get(name, np.nan) for r in rows], dtype=float)
