"""The timeline bar: scrub back through the kept views while training goes on, then back to live."""

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.core.engine.session import RUNNING
from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.gui.widgets.views import CurveView, tile_images
from tests.helpers import open_window


def drawn_filters(snap, view):
    """What the RBM and autoencoder panels draw in their filters ``view`` for ``snap`` (as many tiles to a row
    as the view chose for its place)."""
    a = snap.arrays
    return tile_images(a["filters"][:100], a["image_shape"], cols=view._cols, normalize="symmetric")


def same(a, b):
    return a is not None and a.shape == b.shape and np.allclose(np.nan_to_num(a), np.nan_to_num(b))


def scrub_while_training(qtbot, win):
    """Train until at least 3 frames are kept, scrub to the first, check it is drawn while training goes on,
    then press Live. Shared by every family here: only the filters view and the bar are used."""
    panel, bar = win.panel, win.timeline_bar
    view = panel.filters
    win.toggle_play()
    assert win.session.state == RUNNING
    qtbot.waitUntil(lambda: len(panel.timeline) >= 4 and win.session.trainer.step > 30, timeout=20000)
    # the bar follows within a fifth of a second (the window updates it at most 5 times a second)
    qtbot.waitUntil(lambda: bar.slider.isEnabled() and bar.slider.maximum() >= 3, timeout=5000)
    assert bar.slider.maximum() <= len(panel.timeline) - 1
    assert bar.live_button.isChecked() and "Live" in bar.live_button.text()

    bar.slider.setValue(0)  # as a drag to the left end does
    first = panel.timeline.at(0)
    assert panel.viewing is first
    assert same(view.current_image(), drawn_filters(first, view))
    live = panel.session.latest_snapshot()
    assert not same(drawn_filters(first, view), drawn_filters(live, view)), "the first frame should differ from the live one"
    assert bar.where.text().startswith(f"viewing step {first.step:,} (training is at step ")
    assert not bar.live_button.isChecked()

    # training goes on: the step grows, new frames are recorded, the view stays on the scrubbed frame
    step0, kept0 = win.session.trainer.step, panel.timeline.newest.seq
    qtbot.waitUntil(lambda: win.session.trainer.step > step0 + 20 and panel.timeline.newest.seq > kept0,
                    timeout=20000)
    assert panel.viewing is first and bar.slider.value() == 0
    assert same(view.current_image(), drawn_filters(first, view))
    assert win.session.state == RUNNING
    # every curve of the panel marks the step on show, and keeps drawing the whole run
    curves = [c for c in vars(panel).values() if isinstance(c, CurveView)]
    assert curves and all(c.viewed_step == first.step and c._viewed.isVisible() for c in curves)
    assert all(c._viewed.label.toPlainText() == f"viewing step {first.step}" for c in curves)

    # Live: the newest snapshot is drawn at once
    qtbot.mouseClick(bar.live_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.viewing is None
    assert same(view.current_image(), drawn_filters(panel.timeline.newest, view))
    assert bar.live_button.isChecked() and "viewing" not in bar.where.text()
    assert bar.slider.value() == bar.slider.maximum()
    qtbot.waitUntil(lambda: all(c.viewed_step is None and not c._viewed.isVisible() for c in curves), timeout=5000)
    win.toggle_play()
    assert win.session.wait(10)


def test_rbm_scrub_live_keys_and_reset(qtbot, settings, tmp_path, monkeypatch):
    win = open_window(qtbot, settings, RBMConfig(dataset="bars", bars_size=6, hidden=16, batch_size=20,
                                                 device="cpu", seed=0))
    try:
        panel, bar = win.panel, win.timeline_bar
        assert bar.isVisible()
        scrub_while_training(qtbot, win)

        # the label says how much is kept and the memory it takes of the bound
        qtbot.waitUntil(lambda: panel._last_seq == win.session.latest_snapshot().seq
                        and bar.where.text() == f"step {win.session.trainer.step:,}", timeout=5000)
        tl = panel.timeline
        text = bar.kept.text()
        assert f"{len(tl)} views kept every {tl.spacing():,} steps" in text and "of 256 MB" in text
        assert bar.describe() == f"{bar.where.text()}   {text}"

        # keyboard: Left goes one kept frame back, Right returns to the live end
        n = len(tl)
        assert panel.stats.text().startswith("step ")  # (live: the run now)
        qtbot.keyClick(bar.slider, QtCore.Qt.Key.Key_Left)
        assert panel.viewing is tl.at(n - 2)
        # the line under the views says the step they show; its figures are the run's now, and say so
        assert panel.stats.text().startswith(f"views of step {tl.at(n - 2).step}, scrubbed back   ·   now: step ")
        assert same(panel.filters.current_image(), drawn_filters(tl.at(n - 2), panel.filters))
        qtbot.keyClick(bar.slider, QtCore.Qt.Key.Key_Left)
        assert panel.viewing is tl.at(n - 3)
        qtbot.keyClick(bar.slider, QtCore.Qt.Key.Key_Right)
        assert panel.viewing is tl.at(n - 2)
        qtbot.keyClick(bar.slider, QtCore.Qt.Key.Key_Right)
        assert panel.viewing is None
        assert panel.stats.text().startswith("step ")

        # after training stopped, scrubbing still works (paused: the snapshots are all kept)
        bar.show_index(1)
        assert panel.viewing is tl.at(1) and same(panel.filters.current_image(), drawn_filters(tl.at(1), panel.filters))
        # a view exported now is named by the step it shows, and the next export opens where the last went
        asked = []

        def save_as(_parent, _title, start, _filter):
            asked.append(start)
            return str(tmp_path / "figs" / Path(start).name), ""

        (tmp_path / "figs").mkdir()
        monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", save_as)
        panel.filters._export_dialog("png")
        assert asked[0].startswith("filters-") and asked[0].endswith(f"-step-{tl.at(1).step}.png")
        assert (tmp_path / "figs" / asked[0]).is_file()
        panel.filters._export_dialog("svg")
        assert asked[1] == str(tmp_path / "figs" / asked[0].replace(".png", ".svg"))
        # a step while scrubbed is recorded but not drawn
        seq = tl.newest.seq
        qtbot.keyClick(win, QtCore.Qt.Key.Key_S)
        qtbot.waitUntil(lambda: tl.newest.seq > seq, timeout=5000)
        assert panel.viewing is tl.at(1)

        # presentation mode keeps the bar on screen
        win.enter_presentation()
        try:
            assert bar.isVisible() and not win.menuBar().isVisible()
        finally:
            win.leave_presentation()

        # Reset clears the timeline and goes back to live views
        win.reset()
        qtbot.waitUntil(lambda: panel.viewing is None and all(s.run_id == win.session.run_id for s in tl.frames()),
                        timeout=5000)
        assert tl.steps() in ([], [0]) and tl.every == tl.initial_every
        assert bar.live_button.isChecked()
        qtbot.waitUntil(lambda: len(tl) == 1, timeout=5000)  # the reset model's first view
        assert tl.steps() == [0]
    finally:
        win.close()


def test_autoencoder_scrub_and_new_session(qtbot, settings):
    win = open_window(qtbot, settings, AutoencoderConfig(dataset="digits", hidden=16, batch_size=32, device="cpu",
                                                         noise="gaussian", noise_level=0.3))
    try:
        scrub_while_training(qtbot, win)
        win.session.pause()
        assert win.session.wait(10)
        left = win.session.trainer.step
        # another family is a new session: its panel's timeline starts empty, and the bar follows it
        win.switch_family("rbm")
        assert win.timeline_bar.panel is win.panel and win.panel.family == "rbm"
        assert len(win.panel.timeline) <= 1
        qtbot.waitUntil(lambda: len(win.panel.timeline) == 1, timeout=5000)
        win.switch_family("autoencoder")  # back: the run as it was left, a new session with a timeline of its own
        assert win.panel.family == "autoencoder" and win.panel.viewing is None
        assert win.session.trainer.step == left > 0
        assert all(s.run_id == win.session.run_id and s.step == left for s in win.panel.timeline.frames())
    finally:
        win.close()


def test_lstm_gate_heatmaps_scrub_and_a_chosen_unit_stays_on_the_frame(qtbot, settings):
    from explorer.core.families.recurrent.trainer import LSTMConfig

    win = open_window(qtbot, settings, LSTMConfig(task="adding", length=12, hidden=8, n_train=256, eval_samples=64,
                                                  batch_size=16, device="cpu", compare_every=2))
    try:
        panel, bar = win.panel, win.timeline_bar
        gate = panel.heatmaps["f"]
        win.toggle_play()
        qtbot.waitUntil(lambda: len(panel.timeline) >= 4, timeout=30000)
        # the bar follows within a fifth of a second: a drag needs a slider that shows the frames
        qtbot.waitUntil(lambda: bar.slider.isEnabled() and bar.slider.maximum() >= 3, timeout=5000)
        bar.slider.setValue(0)  # as a drag to the left end does
        first = panel.timeline.at(0)
        assert panel.viewing is first
        assert np.allclose(np.array(gate.image.image), first.arrays["f"])
        step0 = win.session.trainer.step
        qtbot.waitUntil(lambda: win.session.trainer.step > step0 + 10, timeout=20000)
        panel.select_unit(3)  # a unit chosen while scrubbed: drawn from the frame on show
        assert panel.viewing is first and panel.units.title.text() == "Unit 3 over time"
        assert np.allclose(np.array(gate.image.image), first.arrays["f"])
        bar.go_live()
        assert panel.viewing is None
        assert np.allclose(np.array(gate.image.image), panel.timeline.newest.arrays["f"])
        win.toggle_play()
        assert win.session.wait(10)
    finally:
        win.close()


def test_scrubbed_back_on_a_laptop_screen_the_bar_still_says_its_memory(qtbot, app_look):
    """At 1366x768, scrubbed back, the slider kept two thirds of the bar and the label of what is kept, and its
    memory, was cut to "274 views kept every 200 steps  ·…": the slider gives up its room first now (down to its
    least width), so the whole label is read."""
    from types import SimpleNamespace

    from explorer.core.engine.session import Snapshot
    from explorer.core.engine.timeline import SnapshotTimeline
    from explorer.gui.widgets.timeline import TimelineBar

    tl = SnapshotTimeline()
    for step in range(0, 54_640, 200):
        tl.offer(Snapshot(0, step + 1, step, 0, 0.0, {"w": np.zeros((8, 8), np.float32)}))
    trainer = SimpleNamespace(step=54_634, steps_per_epoch=45)
    panel = SimpleNamespace(timeline=tl, viewing=tl.at(78), session=SimpleNamespace(trainer=trainer, epochs=None))
    bar = TimelineBar()
    qtbot.addWidget(bar)
    bar.resize(1350, 40)  # the bar's width in a 1366-px window
    bar.show()
    bar.set_panel(panel)
    qtbot.waitExposed(bar)
    qtbot.wait(100)  # (laid out for the new texts)
    assert bar.where.text().startswith("viewing step 15,600 (training is at step 54,634")
    kept = bar.kept
    assert " MB" in kept.text()

    def whole() -> bool:
        return kept.contentsRect().width() >= kept.fontMetrics().horizontalAdvance(kept.text())

    qtbot.waitUntil(whole, timeout=2000)
    assert bar.slider.width() >= bar.slider.minimumWidth()
    # in a narrower window the slider stops at its least width, and then the label gives way ("…")
    bar.resize(900, 40)
    qtbot.waitUntil(lambda: bar.slider.width() == bar.slider.minimumWidth(), timeout=2000)
    assert not whole() and kept.width() > 0
