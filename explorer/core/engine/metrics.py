"""The :class:`MetricsLog`: append-only, thread-safe tables of a session's metrics (the curves)."""

from __future__ import annotations

import threading

import numpy as np


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
