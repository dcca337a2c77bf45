"""The snapshot timeline: one kept frame every K steps, thinned (every second frame, K doubled) to stay
within its memory bound, the newest frame always kept."""

import numpy as np
import pytest

from explorer.core.engine.session import Snapshot
from explorer.core.engine.timeline import DEFAULT_BOUND_BYTES, SnapshotTimeline, snapshot_nbytes

FRAME = 1000  # bytes of arrays in one test snapshot


def snap(step, run_id=0, nbytes=FRAME):
    """A snapshot holding ``nbytes`` of arrays, spread over a dict, a list and a nested dict."""
    quarter = nbytes // 4
    arrays = {"a": np.zeros(quarter, np.uint8), "maps": [np.zeros(quarter, np.uint8), np.zeros(quarter, np.uint8)],
              "nested": {"b": np.zeros(nbytes - 3 * quarter, np.uint8)}, "shape": (8, 8), "name": "x"}
    return Snapshot(run_id, step + 1, step, 0, 0.0, arrays)


def test_bytes_counted_through_dicts_and_lists():
    assert snapshot_nbytes(snap(0)) == FRAME
    s = Snapshot(0, 1, 0, 0, 0.0, {"w": np.zeros((3, 4), np.float32), "l": [np.zeros(5, np.float64), "text", 3],
                                   "d": {"e": [np.zeros(2, np.int64)]}})
    assert snapshot_nbytes(s) == 48 + 40 + 16


def test_defaults():
    t = SnapshotTimeline()
    assert t.bound_bytes == DEFAULT_BOUND_BYTES == 256 * 1024 * 1024
    assert len(t) == 0 and t.bytes_used == 0 and t.steps() == [] and t.nearest(5) is None


def test_keeps_one_frame_every_k_steps_and_the_newest():
    t = SnapshotTimeline(bound_bytes=10**9, every=100, max_frames=None)
    kept = [t.offer(snap(s)) for s in range(0, 1001, 30)]
    # on the grid: 0, then the first at least 100 after the last kept: 120, 240, 360, 480, 600, 720, 840, 960
    assert t.steps() == [0, 120, 240, 360, 480, 600, 720, 840, 960, 990]
    assert t.every == 100
    assert sum(kept) == 9  # 990 is held only as the newest frame
    assert t.at(-1).step == 990 and t.newest.step == 990
    t.offer(snap(1020))  # the provisional newest frame makes way
    assert t.steps() == [0, 120, 240, 360, 480, 600, 720, 840, 960, 1020]
    assert t.offer(snap(1060)) is True
    assert t.steps() == [0, 120, 240, 360, 480, 600, 720, 840, 960, 1060]
    assert t.bytes_used == 10 * FRAME


def test_thinning_keeps_every_second_frame_and_doubles_k():
    t = SnapshotTimeline(bound_bytes=8 * FRAME, every=10, max_frames=None)
    for s in range(0, 80, 10):
        assert t.offer(snap(s))
    assert t.steps() == [0, 10, 20, 30, 40, 50, 60, 70] and t.bytes_used == 8 * FRAME and t.every == 10
    assert t.offer(snap(80)) is True  # the ninth would not fit: every second is dropped, K doubles
    assert t.steps() == [0, 20, 40, 60, 80]
    assert t.every == 20 and t.thinnings == 1
    assert t.bytes_used == 5 * FRAME
    assert t.offer(snap(90)) is False  # only 10 after the last kept: the newest, provisional
    assert t.steps() == [0, 20, 40, 60, 80, 90]
    for s in range(100, 150, 10):
        t.offer(snap(s))
    assert t.steps() == [0, 20, 40, 60, 80, 100, 120, 140]  # full: 8 frames of the 8 that fit
    assert t.every == 20 and t.bytes_used == 8 * FRAME
    t.offer(snap(150))  # the newest is kept: thinned to 0, 40, 80, 120 and K = 40, then 150 (provisional)
    assert t.every == 40 and t.thinnings == 2
    assert t.steps() == [0, 40, 80, 120, 150]
    assert t.offer(snap(160)) is True
    assert t.steps() == [0, 40, 80, 120, 160] and t.bytes_used == 5 * FRAME

@pytest.mark.parametrize("sizes", [[FRAME] * 50, [100, 3000, 700, 2500, 50, 4000, 1000] * 6])
def test_bytes_never_exceed_the_bound_and_newest_is_kept(sizes):
    bound = 9 * FRAME
    t = SnapshotTimeline(bound_bytes=bound, every=5, max_frames=None)
    for i, size in enumerate(sizes):
        t.offer(snap(i * 7, nbytes=size))
        assert t.bytes_used <= bound
        assert t.bytes_used == sum(snapshot_nbytes(f) for f in t.frames())
        assert t.at(-1).step == i * 7  # the newest frame is always kept
        steps = t.steps()
        assert steps == sorted(set(steps))
        assert steps[0] == 0 or t.bytes_used + snapshot_nbytes(snap(0, nbytes=sizes[0])) > bound


def test_whole_run_stays_covered_evenly_after_many_thinnings():
    t = SnapshotTimeline(bound_bytes=16 * FRAME, every=1, max_frames=None)
    for s in range(0, 10_000):
        t.offer(snap(s))
    steps = t.steps()
    assert steps[0] == 0 and steps[-1] == 9999
    grid = steps[:-1] if (steps[-1] - steps[-2]) < t.every else steps
    gaps = np.diff(grid)
    assert np.all(gaps == t.every)  # evenly spaced
    assert t.every == 1024 and len(t) <= 16 and t.bytes_used <= 16 * FRAME


def test_max_frames_thins_too():
    t = SnapshotTimeline(bound_bytes=10**9, every=1, max_frames=4)
    for s in range(5):
        t.offer(snap(s))
    assert t.steps() == [0, 2, 4] and t.every == 2
    assert len(t) <= 4


def test_shared_arrays_count_once():
    shared = np.zeros(FRAME, np.uint8)
    t = SnapshotTimeline(bound_bytes=10**9, every=1)
    for s in range(3):
        t.offer(Snapshot(0, s, s, 0, 0.0, {"cached": shared, "own": np.zeros(10, np.uint8)}))
    assert t.bytes_used == FRAME + 3 * 10


def test_nearest():
    t = SnapshotTimeline(bound_bytes=10**9, every=100)
    for s in (0, 100, 200, 300, 350):
        t.offer(snap(s))
    assert t.steps() == [0, 100, 200, 300, 350]
    assert t.nearest(-50).step == 0
    assert t.nearest(149).step == 100
    assert t.nearest(150).step == 100  # a tie goes to the earlier frame
    assert t.nearest(151).step == 200
    assert t.nearest(330).step == 350
    assert t.nearest(10_000).step == 350
    assert t.nearest_index(260) == 3
    assert t.index_of(t.at(2)) == 2 and t.index_of(snap(200)) == -1


def test_clear_and_a_new_run_start_over():
    t = SnapshotTimeline(bound_bytes=4 * FRAME, every=10)
    for s in range(0, 100, 10):
        t.offer(snap(s))
    assert t.every > 10
    t.clear()
    assert len(t) == 0 and t.bytes_used == 0 and t.every == 10 and t.steps() == []
    t.offer(snap(0))
    t.offer(snap(10))
    t.offer(snap(20, run_id=1))  # a reset: another run
    assert t.steps() == [20] and t.run_id == 1 and t.bytes_used == FRAME


def test_going_back_drops_later_frames():
    t = SnapshotTimeline(bound_bytes=10**9, every=10)
    for s in range(0, 60, 10):
        t.offer(snap(s))
    t.offer(snap(30))  # the engine went back to the weights of step 30
    assert t.steps() == [0, 10, 20, 30]
    assert t.bytes_used == 4 * FRAME
    again = snap(30)
    t.offer(again)  # a re-drawn view of the same step replaces the old one
    assert t.steps() == [0, 10, 20, 30] and t.at(-1) is again


def test_a_frame_larger_than_the_bound_is_refused():
    t = SnapshotTimeline(bound_bytes=2 * FRAME, every=1)
    t.offer(snap(0))
    assert t.offer(snap(1, nbytes=3 * FRAME)) is False
    assert t.refused == 1 and t.steps() == [0] and t.bytes_used == FRAME


def test_lowering_the_bound_thins_at_once():
    t = SnapshotTimeline(bound_bytes=10 * FRAME, every=1, max_frames=None)
    for s in range(10):
        t.offer(snap(s))
    t.bound_bytes = 5 * FRAME
    assert t.bytes_used <= 5 * FRAME and t.steps() == [0, 2, 4, 6, 8] and t.every == 2


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="bound"):
        SnapshotTimeline(bound_bytes=0)
    with pytest.raises(ValueError, match="every"):
        SnapshotTimeline(every=0)
