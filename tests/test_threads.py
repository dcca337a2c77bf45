"""Choosing the training thread's intra-op thread count by timing its steps (ThreadTuner, the engine)."""

import time

import pytest
import torch

from explorer.core.engine.session import TrainingSession
from explorer.core.engine.threads import ALONE, LONG_STEP_S, ProductTeam, ThreadTuner, candidate_counts
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer


def run_tuner(tuner: ThreadTuner, seconds_at: dict[int, float]) -> list[int]:
    """Feed the tuner steps that take ``seconds_at[threads]``; returns the thread count of every step."""
    threads, used = tuner.first(), []
    for _ in range(1000):
        used.append(threads)
        switch = tuner.record(seconds_at[threads])
        if switch is not None:
            threads = switch
        if tuner.done:
            used.append(threads)
            return used
    raise AssertionError("the tuner never chose")


def test_candidates_are_one_the_limit_and_half_of_it_on_four_or_more_cores():
    assert candidate_counts(1) == [1]
    assert candidate_counts(2) == [1, 2]
    assert candidate_counts(3) == [1, 3]
    assert candidate_counts(8) == [1, 4, 8]


def test_the_schedule_alternates_its_order_and_skips_the_step_after_each_switch():
    tuner = ThreadTuner(2, warmup=2, rounds=2, block_steps=3, block_seconds=0.0)
    used = run_tuner(tuner, {1: 0.001, 2: 0.003})
    # 2 warm-up steps at the limit, then blocks 2, 1, 1, 2: 3 timed steps each, after a settling step
    # where the block switched (the first block goes on at the count the warm-up ran at)
    assert used == [2, 2] + [2] * 3 + [1] * 4 + [1] * 4 + [2] * 4 + [1]
    assert {n: len(v) for n, v in tuner.samples.items()} == {1: 6, 2: 6}
    assert tuner.per_step(1) == pytest.approx(0.001) and tuner.per_step(2) == pytest.approx(0.003)
    assert tuner.chosen == 1
    assert tuner.describe() == "1 thread 1.0 ms/step, 2 threads 3.0 ms/step"
    assert tuner.record(0.5) is None  # done: it stays quiet


def test_a_block_lasts_at_least_its_seconds():
    tuner = ThreadTuner(2, warmup=1, rounds=1, max_rounds=1, block_steps=1, block_seconds=0.01)
    run_tuner(tuner, {1: 0.002, 2: 0.002})
    assert {n: len(v) for n, v in tuner.samples.items()} == {1: 5, 2: 5}  # 5 steps of 2 ms reach 10 ms


def test_the_median_step_decides_so_one_slow_step_does_not():
    tuner = ThreadTuner(2, warmup=1, rounds=1, block_steps=5, block_seconds=0.0)
    times = iter([0.01] + [0.002, 0.002, 0.002, 0.002, 0.002]  # warm-up; 2 threads, fast
                 + [0.01, 0.003, 0.003, 0.003, 0.003, 0.003])  # settling after the switch; 1 thread, slower
    while not tuner.done:
        tuner.record(next(times))
    assert tuner.chosen == 2 and tuner.samples == {1: [0.003] * 5, 2: [0.002] * 5}
    tuner = ThreadTuner(2, warmup=1, rounds=1, block_steps=5, block_seconds=0.0)
    times = iter([0.01] + [0.002, 0.002, 0.5, 0.002, 0.002]  # one step preempted at 2 threads
                 + [0.01, 0.003, 0.003, 0.003, 0.003, 0.003])
    while not tuner.done:
        tuner.record(next(times))
    assert tuner.chosen == 2  # a mean would have picked 1 thread


def test_more_threads_win_only_when_clearly_faster():
    assert run_tuner(ThreadTuner(2, block_seconds=0.0), {1: 0.0100, 2: 0.0080})[-1] == 2
    # within the 3% margin the fewer threads are kept: they leave a core to the rest of the machine
    assert run_tuner(ThreadTuner(2, block_seconds=0.0), {1: 0.0100, 2: 0.0098})[-1] == 1
    assert run_tuner(ThreadTuner(8, block_seconds=0.0), {1: 0.01, 4: 0.004, 8: 0.0039})[-1] == 4


def test_a_close_call_gets_more_rounds_up_to_the_most_allowed():
    # 10% apart: within ``close`` (20%), so rounds follow the first two until four are done
    tuner = ThreadTuner(2, warmup=1, rounds=2, block_steps=2, block_seconds=0.0)
    used = run_tuner(tuner, {1: 0.0100, 2: 0.0090})
    assert tuner.max_rounds == 4 and tuner.rounds == 4 and tuner.chosen == 2
    # blocks 2, 1, 1, 2, then 2, 1, 1, 2 (the order keeps alternating): 2 timed steps each after a
    # settling step, none where a round's first block goes on at the count the last one ended with
    assert used == [2] + [2] * 2 + [1] * 3 + [1] * 3 + [2] * 3 + [2] * 3 + [1] * 3 + [1] * 3 + [2] * 3 + [2]
    assert {n: len(v) for n, v in tuner.samples.items()} == {1: 8, 2: 8}
    # clearly apart (2.5x): the rounds asked for are enough
    tuner = ThreadTuner(2, warmup=1, rounds=2, block_steps=2, block_seconds=0.0)
    run_tuner(tuner, {1: 0.004, 2: 0.010})
    assert tuner.rounds == 2 and tuner.chosen == 1


def choose_through_a_busy_moment(max_rounds: int, busy_steps: int) -> ThreadTuner:
    """One thread takes 5.0 ms a step, two 4.2 ms, except while the machine takes a core: during the
    first ``busy_steps`` steps two threads take 5.9 ms (warm-up 1 step, then blocks of 4 timed steps,
    each after a settling step but the first: the first three rounds are steps 1-29)."""
    tuner = ThreadTuner(2, warmup=1, rounds=3, max_rounds=max_rounds, block_steps=4, block_seconds=0.0)
    threads = tuner.first()
    for i in range(1000):
        step = 0.0050 if threads == 1 else (0.0059 if i < busy_steps else 0.0042)
        switch = tuner.record(step)
        if switch is not None:
            threads = switch
        if tuner.done:
            return tuner
    raise AssertionError("the tuner never chose")


def test_a_busy_moment_over_some_blocks_does_not_decide():
    """The machine takes a core during two of the three blocks at two threads: their fastest block
    still shows two threads 16% faster (the median of all their steps had picked one thread)."""
    tuner = choose_through_a_busy_moment(max_rounds=3, busy_steps=20)
    assert [len(b) for b in tuner.blocks[2]] == [4, 4, 4]
    assert tuner.chosen == 2 and tuner.per_step(2) == 0.0042 and tuner.per_step(1) == 0.0050


def test_more_rounds_can_overturn_a_choice_a_busy_moment_made():
    """A busy moment over every block at two threads in the rounds asked for makes one thread look
    faster; it is a close call, and the rounds that follow outvote it."""
    assert choose_through_a_busy_moment(max_rounds=3, busy_steps=30).chosen == 1
    tuner = choose_through_a_busy_moment(max_rounds=6, busy_steps=30)
    assert tuner.chosen == 2 and tuner.rounds == 6  # 16% apart, within ``close``: every round allowed


def test_a_check_starts_at_the_count_in_use():
    tuner = ThreadTuner(2, start=1, warmup=0, rounds=2, block_steps=2, block_seconds=0.0)
    assert tuner.first() == 1
    used = run_tuner(tuner, {1: 0.001, 2: 0.003})
    assert used == [1] * 3 + [2] * 3 + [2] * 3 + [1] * 3 + [1]
    assert tuner.chosen == 1


def test_long_steps_keep_every_thread_without_trying_fewer():
    tuner = ThreadTuner(4)
    assert tuner.record(LONG_STEP_S + 0.01) == 4 and tuner.done
    assert tuner.samples == {1: [], 2: [], 4: []}


def test_one_thread_allowed_is_chosen_at_once():
    tuner = ThreadTuner(1)
    assert tuner.done and tuner.first() == 1 and tuner.record(0.01) is None


class ThreadSensitiveTrainer(RBMTrainer):
    """An RBM whose steps take longer or shorter with the training thread's thread count, as a small
    model's do when waking OpenMP workers costs more than it gains (or, ``more_is_faster``, the reverse)."""

    more_is_faster = False

    def train_step(self):
        n = torch.get_num_threads()
        slow = n == 1 if self.more_is_faster else n > 1
        time.sleep(0.004 if slow else 0.001)
        return super().train_step()


def tiny(cls=ThreadSensitiveTrainer):
    return cls(RBMConfig(dataset="bars", bars_size=4, hidden=8, batch_size=10, device="cpu", seed=1))


@pytest.mark.parametrize("more_is_faster, expected", [(False, 1), (True, 2)])
def test_the_engine_trains_with_the_count_its_steps_were_fastest_at(more_is_faster, expected):
    trainer = tiny()
    trainer.more_is_faster = more_is_faster
    s = TrainingSession(trainer)
    try:
        s.set_threads(2)
        for _ in range(40):  # the tuner times about 0.2 s of steps
            s.step(20)
            assert s.wait(20)
            if s.thread_note:
                break
        seen = []
        s.call_in_thread(lambda: seen.append(torch.get_num_threads()))
        s.step(1)
        assert s.wait(10)
        assert s.threads == 2 and s.threads_in_use == expected and seen == [expected]
        assert "1 thread" in s.thread_note and "2 threads" in s.thread_note
        # Reset (another model, perhaps) measures again, starting from the limit
        s.reset()
        s.step(1)
        assert s.wait(10)
        assert s.threads_in_use == 2 and s.thread_note == ""
    finally:
        s.close()


@pytest.mark.parametrize("tune, limit", [(False, 2), (True, 1)])
def test_no_tuning_when_asked_not_to_or_with_one_thread_allowed(tune, limit):
    s = TrainingSession(tiny(), tune_threads=tune)
    try:
        s.set_threads(limit)
        s.step(200)
        assert s.wait(20)
        assert s.threads_in_use == limit and s.thread_note == ""
    finally:
        s.close()


def test_the_engine_checks_its_choice_again_when_the_machine_changes(monkeypatch):
    from explorer.core.engine import session as engine

    monkeypatch.setattr(engine, "RECHECK_FIRST_S", 0.1)
    trainer = tiny()
    s = TrainingSession(trainer)
    try:
        s.set_threads(2)

        def run_until(pred):
            for _ in range(60):
                s.step(20)
                assert s.wait(20)
                if pred():
                    return True
            return False

        assert run_until(lambda: s.thread_note != "") and s.threads_in_use == 1
        first_note = s.thread_note
        trainer.more_is_faster = True  # another program left the second core, say
        # the check's result: 2 threads, with what it measured (a block at 2 threads alone is not enough)
        assert run_until(lambda: s.thread_note != first_note)
        assert s.threads_in_use == 2
    finally:
        s.close()


def test_a_new_training_thread_uses_its_own_count_not_the_last_one_set_elsewhere():
    from explorer.core.engine.session import DEFAULT_THREADS

    main = torch.get_num_threads()
    # torch keeps the last count set by any thread for the threads that have not set their own
    torch.set_num_threads(2 if DEFAULT_THREADS == 1 else 1)
    try:
        s = TrainingSession(tiny(), tune_threads=False)
        seen = []
        s.call_in_thread(lambda: seen.append(torch.get_num_threads()))
        s.step(1)
        assert s.wait(10)
        s.close()
        assert seen == [DEFAULT_THREADS] and s.threads_in_use == DEFAULT_THREADS
    finally:
        torch.set_num_threads(main)


# -- ProductTeam: the products on the training thread's threads, the rest on one -----------------------
@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def threads_seen(op):
    """``op`` wrapped to record the thread count each call runs at."""
    seen = []

    def wrapped(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return op(*args, **kwargs)

    return wrapped, seen


def test_a_product_team_lends_its_threads_to_products_only_and_gives_them_back(two_threads):
    product, seen = threads_seen(torch.mm)
    a = torch.ones(3, 3)
    with ProductTeam(torch.device("cpu")) as team:
        assert team.size == 2 and torch.get_num_threads() == 1
        out = team(product, a, a)
        assert torch.get_num_threads() == 1
        team(product, a, a)
    assert seen == [2, 2] and torch.equal(out, torch.full((3, 3), 3.0))
    assert torch.get_num_threads() == 2 and team.size == 1
    with pytest.raises(ZeroDivisionError), ProductTeam() as team:  # an error in a step
        team(lambda: 1 / 0)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("device, threads", [("cpu", 1), ("cuda", 2), ("meta", 2)])
def test_a_product_team_changes_nothing_with_one_thread_or_off_the_cpu(device, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        product, seen = threads_seen(torch.mm)
        with ProductTeam(torch.device(device)) as team:
            assert team.size == 1 and torch.get_num_threads() == threads
            team(product, torch.ones(1, 1), torch.ones(1, 1))
        product_alone, seen_alone = threads_seen(torch.mm)
        ALONE(product_alone, torch.ones(1, 1), torch.ones(1, 1))  # never entered: runs as it comes
        assert seen == [threads] and seen_alone == [threads] and torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_an_rbm_step_runs_its_products_on_the_threads_and_its_samples_and_sums_on_one(two_threads, monkeypatch):
    addmm, products = threads_seen(torch.addmm)
    sigmoid, sigmoids = threads_seen(torch.sigmoid)
    monkeypatch.setattr(torch, "addmm", addmm)
    monkeypatch.setattr(torch, "sigmoid", sigmoid)
    trainer = tiny(RBMTrainer)
    w_addmm, updates = threads_seen(trainer.rbm.W.addmm_)
    monkeypatch.setattr(trainer.rbm.W, "addmm_", w_addmm, raising=False)
    reference = tiny(RBMTrainer)
    trainer.train_step()
    assert products == [2, 2, 2] and updates == [2, 2]  # p(h|x), p(x|h^), p(h|x~); the update's two
    assert sigmoids == [1, 1, 1] and torch.get_num_threads() == 2
    monkeypatch.undo()
    torch.set_num_threads(1)
    reference.train_step()  # the same update on one thread throughout
    assert torch.allclose(trainer.rbm.W, reference.rbm.W, atol=1e-7)
    assert torch.equal(trainer.cd.last.h_tilde, reference.cd.last.h_tilde)


def test_with_momentum_the_rbms_whole_update_is_on_the_threads(two_threads, monkeypatch):
    """Momentum or weight decay make a few passes over the 784x500 weights: large enough to share."""
    trainer = tiny(RBMTrainer)
    trainer.cd.momentum = 0.5
    update, seen = threads_seen(trainer.cd._update_with_momentum_or_decay)
    monkeypatch.setattr(trainer.cd, "_update_with_momentum_or_decay", update)
    before = trainer.rbm.W.clone()
    trainer.train_step()
    assert seen == [2] and torch.get_num_threads() == 2 and not torch.equal(before, trainer.rbm.W)
