"""A bounded history of snapshots, so the views can be scrubbed back through a run.

The views only ever show the newest :class:`~explorer.core.engine.session.Snapshot`; a teacher who wants
to show "what the filters looked like after 200 steps" needs the earlier ones too. Keeping every
snapshot would grow without limit, so :class:`SnapshotTimeline` keeps one every ``every`` steps
under a memory bound, and when the next frame would not fit it *thins*: it drops every second
kept frame and doubles ``every``. The kept frames therefore always span the whole run, evenly,
just more coarsely the longer it trains, and memory never goes above the bound.

Besides the frames on that grid, the newest snapshot offered is always held as the last frame
(replaced by the next one unless it falls on the grid), so the timeline's right end is what the
model looks like now, and after training stops it is the final state.

Snapshots are immutable: the trainers hand out fresh CPU copies and nothing writes into them
afterwards, so frames are kept by reference, without copying. Qt-free, like all of ``core``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

import numpy as np

from explorer.core.engine.session import Snapshot

DEFAULT_BOUND_BYTES = 256 * 1024 * 1024  # 256 MB
DEFAULT_EVERY = 10                       # steps between kept frames before any thinning
DEFAULT_MAX_FRAMES = 1000                # a slider has no use for more positions than a screen has pixels


def _arrays(value: Any) -> Iterator[np.ndarray]:
    """Every numpy array inside ``value``, looking through dicts, lists and tuples."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)


def snapshot_nbytes(snap: Snapshot) -> int:
    """Bytes of the numpy arrays a snapshot holds (an array held twice counts once)."""
    seen: dict[int, int] = {}
    for arr in _arrays(snap.arrays):
        seen[id(arr)] = int(arr.nbytes)
    return sum(seen.values())


class SnapshotTimeline:
    """Snapshots of one run, one every ``every`` steps, within ``bound_bytes`` of array memory.

    ``offer(snap)`` is called with each new snapshot, in order. A snapshot at least ``every`` steps
    after the last kept one is kept on the grid; any other becomes the provisional last frame. A
    snapshot of another run (``run_id``) starts the timeline over; one at a step not after the last
    frame (the engine went back to earlier weights, or re-drew the same step) first removes the
    frames from that step on. An array shared by several frames counts once towards the bound.
    """

    def __init__(self, bound_bytes: int = DEFAULT_BOUND_BYTES, every: int = DEFAULT_EVERY,
                 max_frames: int | None = DEFAULT_MAX_FRAMES):
        if int(every) < 1:
            raise ValueError(f"every must be at least 1 step, not {every}")
        if max_frames is not None and int(max_frames) < 2:
            raise ValueError(f"max_frames must be at least 2, not {max_frames}")
        self._bound = self._check_bound(bound_bytes)
        self.initial_every = int(every)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.refused = 0          # snapshots that alone were larger than the bound
        self.thinnings = 0        # how many times the grid was halved
        self.clear()

    @staticmethod
    def _check_bound(bound_bytes: int) -> int:
        if int(bound_bytes) < 1:
            raise ValueError(f"the memory bound must be a positive number of bytes, not {bound_bytes}")
        return int(bound_bytes)

    # -- state --------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every frame; the spacing goes back to its initial value."""
        self._grid: list[Snapshot] = []
        self._tail: Snapshot | None = None
        self.every = self.initial_every
        self.run_id: int | None = None
        self._refs: dict[int, list] = {}  # id(array) -> [nbytes, frames holding it, the array]
        self._bytes = 0

    @property
    def bound_bytes(self) -> int:
        return self._bound

    @bound_bytes.setter
    def bound_bytes(self, value: int) -> None:
        """A new bound; a lower one thins the kept frames at once until they fit."""
        self._bound = self._check_bound(value)
        self._fit(None)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def frames(self) -> list[Snapshot]:
        """The kept snapshots, oldest first (the last one is the newest offered)."""
        return self._grid + ([self._tail] if self._tail is not None else [])

    def __len__(self) -> int:
        return len(self._grid) + (self._tail is not None)

    def __bool__(self) -> bool:
        return len(self) > 0

    def steps(self) -> list[int]:
        return [s.step for s in self.frames()]

    def at(self, index: int) -> Snapshot:
        """The frame at ``index`` (negative counts from the newest); IndexError outside."""
        return self.frames()[index]

    @property
    def newest(self) -> Snapshot | None:
        return self._tail if self._tail is not None else (self._grid[-1] if self._grid else None)

    def nearest_index(self, step: int) -> int:
        """Index of the frame whose step is closest to ``step`` (the earlier one on a tie); -1 if empty."""
        steps = self.steps()
        if not steps:
            return -1
        i = bisect.bisect_left(steps, step)
        if i == 0:
            return 0
        if i == len(steps):
            return len(steps) - 1
        return i - 1 if step - steps[i - 1] <= steps[i] - step else i

    def nearest(self, step: int) -> Snapshot | None:
        """The frame whose step is closest to ``step``; None if the timeline is empty."""
        i = self.nearest_index(step)
        return None if i < 0 else self.at(i)

    def index_of(self, snap: Snapshot) -> int:
        """Index of this very snapshot among the frames, or -1 if it is not (or no longer) kept."""
        for i, s in enumerate(self.frames()):
            if s is snap:
                return i
        return -1

    def spacing(self) -> int:
        """Typical steps between kept frames: the grid's mean gap, never less than ``every``."""
        if len(self._grid) < 2:
            return self.every
        gap = (self._grid[-1].step - self._grid[0].step) / (len(self._grid) - 1)
        return max(self.every, int(round(gap)))

    # -- adding ---------------------------------------------------------------------------------------
    def offer(self, snap: Snapshot) -> bool:
        """Take a new snapshot. Returns whether it was kept on the grid (it stays, unless thinned later);
        otherwise it is held only as the newest frame until the next offer, or refused when it alone is
        larger than the bound (``refused`` counts those; the frames kept before stay)."""
        if self.run_id is not None and snap.run_id != self.run_id:
            self.clear()
        self.run_id = snap.run_id
        # the engine went back (to earlier good weights) or re-drew a step: later frames no longer exist
        while self._tail is not None and self._tail.step >= snap.step:
            self._release(self._tail)
            self._tail = None
        while self._grid and self._grid[-1].step >= snap.step:
            self._release(self._grid.pop())
        if self._tail is not None:  # the provisional newest frame makes way for this one
            self._release(self._tail)
            self._tail = None
        if snapshot_nbytes(snap) > self._bound:
            self.refused += 1
            return False
        self._fit(snap)
        self._hold(snap)
        if not self._grid or snap.step - self._grid[-1].step >= self.every:
            self._grid.append(snap)
            return True
        self._tail = snap
        return False

    def _fit(self, snap: Snapshot | None) -> None:
        """Make room for ``snap`` (None: just obey the bound): thin the grid (drop every second frame,
        double ``every``) until its new bytes and one more frame fit; a single frame left that is still
        too large goes too."""
        while True:
            extra = 0 if snap is None else self._new_bytes(snap)  # shared arrays freed by thinning count again
            too_many = snap is not None and self._too_many()
            if self._bytes + extra <= self._bound and not too_many:
                return
            if len(self._grid) >= 2:
                keep, drop = self._grid[0::2], self._grid[1::2]
                for s in drop:
                    self._release(s)
                self._grid = keep
                self.every *= 2
                self.thinnings += 1
            elif self._grid and self._bytes + extra > self._bound:
                self._release(self._grid.pop(0))
            elif self._tail is not None and self._bytes + extra > self._bound:
                self._release(self._tail)
                self._tail = None
            else:
                return

    def _too_many(self) -> bool:
        # the grid plus the frame about to be added
        return self.max_frames is not None and len(self._grid) + 1 > self.max_frames

    # -- memory accounting ------------------------------------------------------------------------------
    def _new_bytes(self, snap: Snapshot) -> int:
        """Bytes ``snap`` adds: its arrays not already held by a kept frame."""
        seen: dict[int, int] = {}
        for arr in _arrays(snap.arrays):
            if id(arr) not in self._refs:
                seen[id(arr)] = int(arr.nbytes)
        return sum(seen.values())

    def _hold(self, snap: Snapshot) -> None:
        for arr in {id(a): a for a in _arrays(snap.arrays)}.values():
            ref = self._refs.get(id(arr))
            if ref is None:
                self._refs[id(arr)] = [int(arr.nbytes), 1, arr]
                self._bytes += int(arr.nbytes)
            else:
                ref[1] += 1

    def _release(self, snap: Snapshot) -> None:
        for arr in {id(a): a for a in _arrays(snap.arrays)}.values():
            ref = self._refs.get(id(arr))
            if ref is None:
                continue
            ref[1] -= 1
            if ref[1] <= 0:
                self._bytes -= ref[0]
                del self._refs[id(arr)]


__all__ = ["SnapshotTimeline", "snapshot_nbytes", "DEFAULT_BOUND_BYTES", "DEFAULT_EVERY", "DEFAULT_MAX_FRAMES"]
