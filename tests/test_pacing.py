"""The views' pacing: the GUI thread's CPU share held under a budget while training runs."""

from __future__ import annotations

import pytest

from explorer.gui.pacing import ADAPT_EVERY_S, AIM, MAX_INTERVAL_S, SMOOTH_PERIODS, TICK_SLACK, ViewPacer


def run_period(p: ViewPacer, t: float, cpu: float, share: float) -> tuple[float, float]:
    """One adaptation period in which the GUI thread used ``share`` of a core; returns (t, cpu) after it."""
    t2, cpu2 = t + ADAPT_EVERY_S, cpu + share * ADAPT_EVERY_S
    p.update(t2, cpu2)
    return t2, cpu2


def test_too_much_drawing_slows_the_views_in_proportion_and_little_lets_them_go_back_up():
    p = ViewPacer(share=0.2)
    p.set_rate(20)
    assert p.interval == pytest.approx(0.05) and not p.pacing
    t, cpu = 100.0, 5.0
    p.update(t, cpu)  # the first call only marks the start
    assert p.measured is None and p.interval == pytest.approx(0.05)
    t, cpu = run_period(p, t, cpu, 0.4)  # twice the budget: twice the interval
    assert p.measured == pytest.approx(0.4)
    assert p.interval == pytest.approx(0.10) and p.pacing
    for _ in range(20):
        t, cpu = run_period(p, t, cpu, 0.8)  # far over, for long: capped at one snapshot a second
    assert p.interval == pytest.approx(MAX_INTERVAL_S)
    for _ in range(SMOOTH_PERIODS):
        t, cpu = run_period(p, t, cpu, 0.19)  # within the budget, not far under it: the pace holds
        assert p.interval == pytest.approx(MAX_INTERVAL_S)
    assert p.measured == pytest.approx(0.19)
    for _ in range(60):
        t, cpu = run_period(p, t, cpu, 0.05)  # well under: back to the refresh rate, not beyond
    assert p.interval == pytest.approx(0.05) and not p.pacing


def test_a_little_under_the_budget_the_views_speed_up_in_proportion_to_the_room_left():
    """A panel whose views would fit the refresh rate at 90% of the budget used to settle below it: the
    pace rose only under 75% of the budget (LeNet-5's views stayed at 18 a second with 4.1% of 5% spent)."""
    p = ViewPacer(share=0.2)
    p.set_rate(20)
    p.interval = 0.1
    t, cpu = 100.0, 5.0
    p.update(t, cpu)
    t, cpu = run_period(p, t, cpu, 0.17)  # 85% of the budget, aiming at 90%: 17/18 of the interval
    assert p.interval == pytest.approx(0.1 * 0.17 / (AIM * 0.2))
    p.reset()
    p.update(t, cpu)
    t, cpu = run_period(p, t, cpu, 0.02)  # far under: never more than 15% faster in one period
    assert p.interval == pytest.approx(0.1 * 0.17 / (AIM * 0.2) * 0.85)
    held = p.interval
    p.reset()
    p.update(t, cpu)
    t, cpu = run_period(p, t, cpu, 0.19)  # between the aim and the budget: the pace holds
    assert p.interval == held
    p.interval = 0.052
    p.reset()
    p.update(t, cpu)
    t, cpu = run_period(p, t, cpu, 0.1)  # never faster than the refresh rate
    assert p.interval == pytest.approx(0.05) and not p.pacing


def test_one_noisy_reading_over_the_budget_does_not_halve_the_views():
    """The share is read over the last SMOOTH_PERIODS periods: at the refresh rate a panel within its budget
    on average stays there when one half-second reads over it (each such reading held LeNet-5's views at 10
    a second for the next half second: 16 a second drawn where 20 fit)."""
    p = ViewPacer(share=0.05)
    p.set_rate(20)
    t, cpu = 100.0, 5.0
    p.update(t, cpu)
    for share in (0.045, 0.044, 0.046, 0.07, 0.03, 0.045, 0.046, 0.068, 0.035):
        t, cpu = run_period(p, t, cpu, share)
        assert p.interval < 0.05 + TICK_SLACK * 0.05, share  # every tick of the refresh rate still draws
    assert p.measured == pytest.approx(sum((0.045, 0.046, 0.068, 0.035)) / SMOOTH_PERIODS)
    for _ in range(SMOOTH_PERIODS):
        t, cpu = run_period(p, t, cpu, 0.09)  # over the budget for long: slower
    assert p.interval > 0.09 and p.pacing


def test_a_snapshot_is_allowed_once_the_interval_has_passed_and_the_draw_rate_is_measured():
    p = ViewPacer(share=0.2)
    p.set_rate(10)
    p.interval = 0.5
    p.update(10.0, 0.0)  # the measurement starts
    assert p.allow(10.0)
    p.drew(10.0)
    assert not p.allow(10.2) and p.allow(10.5)
    p.drew(10.5)
    p.update(11.0, 0.05)
    assert p.draw_rate == pytest.approx(2.0)  # two draws in the period of one second


def test_at_the_refresh_rate_a_tick_a_little_early_is_on_time_and_a_paced_interval_still_holds():
    """The refresh timer's ticks come every 50 ms give or take a few: a tick a millisecond early for the
    interval, or an interval of 51 ms once the pace had risen for a moment, passed a tick over."""
    p = ViewPacer(share=0.2)
    p.set_rate(20)
    p.drew(10.0)
    assert p.allow(10.049) and p.allow(10.040)  # early by 1 and by 10 ms: on time
    assert not p.allow(10.030)  # not a tick of this rate
    p.interval = 0.051
    assert p.allow(10.050)
    p.interval = 0.1  # paced: one tick in two
    assert not p.allow(10.050) and p.allow(10.0885) and p.allow(10.1)


def test_switched_off_or_reset_it_never_holds_the_views_back():
    p = ViewPacer(share=0.2)
    p.interval = 1.0
    p.drew(5.0)
    assert not p.allow(5.1)
    p.enabled = False
    assert p.allow(5.1) and not p.pacing
    p.enabled = True
    p.update(0.0, 0.0)
    p.reset()  # paused: the next update starts a new measurement rather than spanning the pause
    p.update(100.0, 0.0)
    assert p.measured is None


# -- in the window -------------------------------------------------------------------------------------
def test_a_slow_refresh_rate_still_shows_new_snapshots_while_training(qtbot, settings):
    """At 2 redraws a second the curves are due at every tick; the snapshot used to wait for a tick
    without curves, which never came, so the views froze while training ran."""
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.gui.main_window import MainWindow

    win = MainWindow(RBMConfig(dataset="bars", bars_size=4, hidden=8, batch_size=10, device="cpu", seed=1),
                     settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        win.set_refresh_rate(2)
        shown: list[int] = []
        orig = win.panel.show_snapshot
        win.panel.show_snapshot = lambda snap: (shown.append(snap.step), orig(snap))
        win.toggle_play()
        qtbot.waitUntil(lambda: len([s for s in shown if s > 0]) >= 3, timeout=15000)
        assert shown == sorted(shown) and len(set(shown)) == len(shown)
        win._update_status()
        qtbot.waitUntil(lambda: "views" in win.status_rate.text(), timeout=5000)
    finally:
        win.close()


def test_pacing_can_be_switched_off_from_the_training_menu(qtbot, settings):
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.gui.main_window import MainWindow

    win = MainWindow(RBMConfig(dataset="bars", bars_size=4, hidden=8, batch_size=10, device="cpu", seed=1),
                     settings=settings)
    qtbot.addWidget(win)
    try:
        assert win.act_pace_views.isChecked() and win.panel.pacer.enabled
        win.act_pace_views.trigger()
        assert not win.panel.pacer.enabled
        win.family_combo.setCurrentIndex(win.family_combo.findData("autoencoder"))  # a panel built now
        assert "autoencoder" in win.panels and len(win.panels) == 2
        assert all(not p.pacer.enabled for p in win.panels.values())
        win.act_pace_views.trigger()
        assert all(p.pacer.enabled for p in win.panels.values())
    finally:
        win.close()
