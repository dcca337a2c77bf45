"""The watcher's pacing (explorer.core.watch.pacing) on a clock driven by hand: its heavy work stays within
its budget of the loop's time, at most 30 snapshots and 10 gradient rows a second, whatever the costs."""

from __future__ import annotations

import pytest

from explorer.core.watch.pacing import GRAD, SNAPSHOT, URGENT_SLACK_S, Pacer


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run_loop(pacer: Pacer, clock: FakeClock, *, steps: int, loop_s: float, snapshot_s: float,
             grad_s: float = 0.0, step_s: float = 0.0) -> tuple[int, int]:
    """A training loop on the fake clock, as the watcher drives the pacer: the user's work (``loop_s`` a step),
    then the watcher's (``step_s`` always, ``grad_s`` and ``snapshot_s`` when due). (snapshots, grad rows)"""
    snapshots = grads = 0
    for _ in range(steps):
        clock.t += loop_s
        start = clock.t
        clock.t += step_s
        if pacer.due(GRAD, clock.t):
            pacer.done(GRAD, clock.t)
            clock.t += grad_s
            grads += 1
        if pacer.due(SNAPSHOT, clock.t):
            pacer.done(SNAPSHOT, clock.t)
            clock.t += snapshot_s
            snapshots += 1
        pacer.charge(clock.t - start, clock.t)
    return snapshots, grads


@pytest.mark.parametrize("snapshot_s", [0.002, 0.03, 0.3, 2.0])
def test_the_watchers_share_of_the_time_stays_within_its_budget_whatever_a_snapshot_costs(snapshot_s):
    clock = FakeClock()
    pacer = Pacer(0.03, clock=clock)
    loop_s = 0.01
    snapshots, _ = run_loop(pacer, clock, steps=30_000, loop_s=loop_s, snapshot_s=snapshot_s)
    elapsed = clock.t - pacer.started
    # the budget, give or take the last snapshot's own cost (its debt is still being paid back)
    assert pacer.spent <= 0.03 * elapsed + snapshot_s + 1e-9
    assert pacer.share() <= 0.03 * (1 + snapshot_s / (0.03 * elapsed)) + 1e-9
    # and the budget is used: each snapshot is followed by about snapshot_s / budget of time, no more
    per_second = min(30.0, 0.03 / snapshot_s)
    expected = elapsed * per_second
    assert snapshots == pytest.approx(expected, rel=0.15)


def test_cheap_work_is_capped_at_30_snapshots_and_10_gradient_rows_a_second():
    clock = FakeClock()
    pacer = Pacer(0.03, clock=clock)
    snapshots, grads = run_loop(pacer, clock, steps=100_000, loop_s=0.0005, snapshot_s=1e-6, grad_s=1e-6)
    elapsed = clock.t - pacer.started
    assert elapsed == pytest.approx(50.0, rel=0.01)
    assert snapshots <= 30 * elapsed + 1 and snapshots >= 29 * elapsed
    assert grads <= 10 * elapsed + 1 and grads >= 9.5 * elapsed


def test_the_per_step_work_counts_too_and_idle_time_is_not_saved_up_for_a_burst():
    clock = FakeClock()
    pacer = Pacer(0.03, clock=clock)
    # a watcher whose every step costs 6% of the loop: nothing heavy is ever due after the first
    snapshots, grads = run_loop(pacer, clock, steps=1000, loop_s=0.01, snapshot_s=0.001, step_s=0.0006)
    assert snapshots == 1 and grads == 1
    # after a long idle stretch, one snapshot is due at once, and the next one only after its debt is paid
    clock.t += 100.0
    assert pacer.debt == 0.0
    assert pacer.due(SNAPSHOT)
    pacer.done(SNAPSHOT)
    pacer.charge(0.3)
    assert pacer.debt == pytest.approx(10.0)
    clock.t += 9.9
    assert not pacer.due(SNAPSHOT)
    clock.t += 0.1
    assert pacer.due(SNAPSHOT)


def test_a_requested_snapshot_may_come_a_little_sooner_than_the_budget_says_never_much_sooner():
    clock = FakeClock()
    pacer = Pacer(0.05, clock=clock)
    pacer.done(SNAPSHOT)
    pacer.charge(0.05)  # one second of debt
    clock.t += 1.0 - URGENT_SLACK_S - 0.01
    assert not pacer.due(SNAPSHOT) and not pacer.due(SNAPSHOT, urgent=True)
    clock.t += 0.02
    assert not pacer.due(SNAPSHOT) and pacer.due(SNAPSHOT, urgent=True)
    # the highest rate holds for requests too, and another interval may be given (the folder's)
    pacer.done(SNAPSHOT)
    assert not pacer.due(SNAPSHOT, urgent=True)
    clock.t += 1 / 30 + 1e-9
    assert pacer.due(SNAPSHOT, urgent=True)
    assert not pacer.due(SNAPSHOT, min_interval=1.0)
    clock.t += 1.0
    assert pacer.due(SNAPSHOT, min_interval=1.0)


def test_the_kinds_keep_their_own_rates():
    clock = FakeClock()
    pacer = Pacer(1.0, max_hz={SNAPSHOT: 2.0, GRAD: 4.0}, clock=clock)
    pacer.done(SNAPSHOT)
    pacer.done(GRAD)
    clock.t += 0.25
    assert pacer.due(GRAD) and not pacer.due(SNAPSHOT)
    clock.t += 0.25
    assert pacer.due(GRAD) and pacer.due(SNAPSHOT)
    assert pacer.due("another kind")  # no rate of its own: the budget alone


@pytest.mark.parametrize("budget", [0, -0.1, 1.5, float("nan")])
def test_a_budget_must_be_a_share_of_the_time(budget):
    with pytest.raises(ValueError, match="share of the loop's time"):
        Pacer(budget)


def test_next_due_is_the_first_time_due_says_yes():
    """Before next_due no kind is due, at it one is (with nothing charged meanwhile): the watcher asks
    only from then on."""
    clock = FakeClock()
    pacer = Pacer(0.05, max_hz={SNAPSHOT: 20.0, GRAD: 10.0}, clock=clock)
    intervals = {GRAD: 0.1, SNAPSHOT: 0.05}
    assert pacer.next_due(intervals) == clock.t  # nothing done yet: due now
    pacer.done(GRAD)
    pacer.done(SNAPSHOT)
    pacer.charge(0.001)  # 1 ms of work at 5%: 20 ms of debt
    start = clock.t
    assert pacer.next_due(intervals) == pytest.approx(start + 0.05)  # the snapshot's interval is the later
    pacer.charge(0.004)  # 80 ms more debt: 100 ms in all, past both intervals
    due_at = pacer.next_due(intervals)
    assert due_at == pytest.approx(start + 0.1)
    for t in (start + 0.05, start + 0.099):
        clock.t = t
        assert not pacer.due(GRAD) and not pacer.due(SNAPSHOT)
        assert pacer.next_due(intervals) == pytest.approx(due_at)  # the same answer later on
    clock.t = due_at + 1e-9
    assert pacer.due(GRAD) and pacer.due(SNAPSHOT)
    assert pacer.next_due({}) == float("inf")


def test_set_debt_replaces_what_was_owed_and_keeps_what_was_spent():
    clock = FakeClock()
    pacer = Pacer(0.05, clock=clock)
    pacer.charge(0.01)  # 0.2 s owed
    assert pacer.debt == pytest.approx(0.2)
    pacer.set_debt(0.05)
    assert pacer.debt == pytest.approx(0.05) and pacer.spent == pytest.approx(0.01)
    clock.t += 0.03
    assert pacer.debt == pytest.approx(0.02)
    pacer.set_debt(-1.0)  # (never below nothing)
    assert pacer.debt == 0.0 and pacer.due(GRAD)
