"""Recording the window while a model trains: the REC state, saving with a progress bar, and closing."""

import sys
import threading

import numpy as np
import pytest
from PIL import Image

from explorer.core.families.deep.trainer import MLPConfig
from explorer.gui import recorder as recorder_module
from explorer.gui.recorder import ENCODING, HELD, IDLE, RECORDING
from tests import helpers


def open_window(qtbot, settings):
    config = MLPConfig(dataset="digits", hidden=(16,), batch_size=32, device="cpu")
    return helpers.open_window(qtbot, settings, config, size=(900, 600))


def record_some(qtbot, win, frames=4):
    rec = win.recorder
    win.toggle_play()
    qtbot.waitUntil(lambda: win.session.trainer.step > 0, timeout=10000)
    rec.fps = 20.0
    rec.start()
    assert rec.state == RECORDING
    qtbot.waitUntil(lambda: len(rec.frames) >= frames, timeout=15000)
    return rec


def test_record_while_training_then_save_gif(qtbot, settings, tmp_path):
    win = open_window(qtbot, settings)
    try:
        rec = record_some(qtbot, win)
        assert rec.rec_label.isVisible()
        assert rec.rec_label.text().startswith("● REC 0:0")
        assert rec.rec_label.text().endswith("frames")
        assert win.act_record.text() == "Stop recording"
        first = rec.frames[0]
        assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
        assert first.shape[1] <= rec.max_width
        assert all(f.shape == first.shape for f in rec.frames)
        # the grab is the views (central + docks), not the menu, toolbar or status bar
        rect = rec.content_rect()
        assert rect.top() >= win.menuBar().height()
        assert rect.bottom() < win.statusBar().geometry().top()

        n = rec.stop()
        assert n >= 4 and rec.state == HELD
        assert not rec.rec_label.isVisible()
        assert win.act_record.text() == "Save recording…"
        out = tmp_path / "rec" / "training.gif"
        out.parent.mkdir()
        assert rec.save(out)
        assert rec.state == ENCODING and rec.progress.isVisible()
        assert not win.act_record.isEnabled()
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=30000)
        assert not rec.progress.isVisible()
        assert win.act_record.isEnabled() and win.act_record.text() == "Record panel…"
        assert rec.last_path == out and rec.last_error is None
        assert f"Recording saved to {out}" in win.notice.label.text()
        assert f"{n} frames" in win.notice.label.text()
        with Image.open(out) as im:
            assert im.size == (first.shape[1], first.shape[0])
            assert 1 < im.n_frames <= n  # identical consecutive frames may merge into one longer frame
            im.seek(0)
            back = np.asarray(im.convert("RGB"), dtype=float)
        assert np.abs(back - first).mean() < 6  # a 256-colour palette, close to the grab
        assert sorted(p.name for p in out.parent.iterdir()) == ["training.gif"]
        assert rec.frames == []  # the memory is given back
    finally:
        win.close()


def test_save_mp4_and_bad_suffix(qtbot, settings, tmp_path):
    win = open_window(qtbot, settings)
    try:
        rec = record_some(qtbot, win, frames=3)
        rec.stop()
        assert not rec.save(tmp_path / "clip.webm")  # refused, the frames are kept
        assert "gif or .mp4" in win.notice.label.text() and rec.state == HELD
        assert rec.save(tmp_path / "clip.mp4")
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=30000)
        assert rec.last_error is None
        import av

        with av.open(str(tmp_path / "clip.mp4")) as c:
            frames = list(c.decode(video=0))
        assert len(frames) >= 3
        assert frames[0].width % 2 == 0 and frames[0].height % 2 == 0
    finally:
        win.close()


def test_mp4_without_pyav_says_what_to_install_and_keeps_the_frames(qtbot, settings, tmp_path, monkeypatch):
    win = open_window(qtbot, settings)
    try:
        rec = record_some(qtbot, win, frames=3)
        n = rec.stop()
        monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
        assert not rec.save(tmp_path / "clip.mp4")
        assert rec.state == HELD and len(rec.frames) == n  # nothing lost: saved as a GIF instead
        assert "pip install av" in win.notice.label.text()
        assert 'pip install "network-explorer[video]"' in win.notice.label.text()
        assert win.notice.property("error")
        assert rec.save(tmp_path / "clip.gif")
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=30000)
        assert rec.last_error is None and sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]
    finally:
        win.close()


def test_the_action_records_and_its_dialog_saves_or_keeps_the_frames(qtbot, settings, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    answers = [(str(tmp_path / "from-dialog"), "MP4 video (*.mp4)"), ("", ""), ("", "")]
    asked = []

    def fake_dialog(parent, title, default, filters, *more):
        asked.append((title, default, filters))
        return answers.pop(0)

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    win = open_window(qtbot, settings)
    try:
        rec = win.recorder
        assert win.act_record.shortcut().toString() == "Ctrl+Shift+R"
        assert win.act_record in win.view_menu.actions()
        win.act_record.trigger()  # start
        assert rec.state == RECORDING and rec.rec_label.isVisible()
        qtbot.waitUntil(lambda: len(rec.frames) >= 2, timeout=15000)
        win.act_record.trigger()  # stop: the dialog; a name without suffix gets the chosen filter's
        assert asked[0][1].endswith(".gif") and "mlp-" in asked[0][1]
        assert "*.gif" in asked[0][2] and "*.mp4" in asked[0][2]
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=30000)
        assert rec.last_path == tmp_path / "from-dialog.mp4" and rec.last_path.stat().st_size > 0

        win.act_record.trigger()
        qtbot.waitUntil(lambda: len(rec.frames) >= 1, timeout=15000)
        win.act_record.trigger()  # the dialog is cancelled (both of them): the frames are kept, not dropped
        n = len(rec.frames)
        assert rec.state == HELD and n >= 1
        assert "Recording not saved" in win.notice.label.text() and f"{n} frame" in win.notice.label.text()
        assert win.act_record.text() == "Save recording…"
        assert [b.text() for b in win.notice.action_buttons] == ["Save recording…", "Discard it"]
        win.notice.action_buttons[1].click()  # discarding is the user's own choice
        assert rec.state == IDLE and rec.frames == []
        assert f"Recording discarded ({n} frame" in win.notice.label.text()
        assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".ini") == ["from-dialog.mp4"]
    finally:
        win.close()


def test_memory_bound_stops_the_recording_by_itself(qtbot, settings):
    win = open_window(qtbot, settings)
    try:
        rec = win.recorder
        rec.max_bytes = 1  # the first frame already fills it
        rec.start(fps=20)
        assert rec.state == HELD and len(rec.frames) == 1
        assert "memory limit" in rec.stop_reason
        assert "Recording stopped" in win.notice.label.text()
        assert win.notice.action_button.text() == "Save recording…"
        rec.discard()
        assert rec.state == IDLE and rec.frames == []
    finally:
        win.close()


def test_a_recording_that_fell_behind_plays_back_in_real_time(qtbot, settings, tmp_path, monkeypatch):
    seen = {}

    def spy(frames, path, fps, progress=None, cancel=None):
        seen.update(n=len(frames), fps=fps)
        path.write_bytes(b"GIF89a")
        return path

    monkeypatch.setattr(recorder_module, "encode_gif", spy)
    win = open_window(qtbot, settings)
    try:
        rec = win.recorder
        rec.fps = 8.0
        rec.frames = [np.zeros((4, 6, 3), np.uint8) for _ in range(10)]
        rec.state = HELD
        rec._t0, rec._t_last = 100.0, 104.5  # 10 grabs in 4.5 s: 2 frames/s, not the 8 asked for
        assert rec.effective_fps() == pytest.approx(2.0)
        rec.save(tmp_path / "slow.gif")
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=10000)
        assert seen == {"n": 10, "fps": pytest.approx(2.0)}
        rec.frames = [np.zeros((4, 6, 3), np.uint8) for _ in range(10)]
        rec._t0, rec._t_last = 100.0, 101.2  # 7.5 frames/s: close enough to 8 to keep the rate asked for
        assert rec.effective_fps() == 8.0
    finally:
        win.close()


def test_close_while_recording_stops_and_drops_the_frames(qtbot, settings, tmp_path):
    win = open_window(qtbot, settings)
    rec = record_some(qtbot, win, frames=2)
    assert win.close()
    assert not rec.grab_timer.isActive()
    assert rec.frames == [] and rec.state == IDLE
    assert not win.session.is_alive
    assert list(tmp_path.glob("*.gif")) == []


def test_close_while_encoding_waits_for_the_file_then_a_second_close_discards(qtbot, settings, tmp_path,
                                                                             monkeypatch):
    gate = threading.Event()
    real = recorder_module.encode_gif

    def held_encode(frames, path, fps, progress=None, cancel=None):
        gate.wait(20)  # the encode is "slow" until the test lets it go
        return real(frames, path, fps, progress, cancel)

    monkeypatch.setattr(recorder_module, "encode_gif", held_encode)
    out = tmp_path / "rec"
    out.mkdir()
    win = open_window(qtbot, settings)
    rec = record_some(qtbot, win, frames=2)
    # a first close waits for the encode: the window stays, the file is written, then the window closes
    rec.save(out / "first.gif")
    assert not win.close()
    assert win.isVisible() and "closes when it is saved" in win.notice.label.text()
    gate.set()
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=30000)
    assert (out / "first.gif").exists()
    assert not win.session.is_alive

    # a second close during an encode cancels it: no file and no temporary file
    gate.clear()
    win2 = open_window(qtbot, settings)
    rec2 = record_some(qtbot, win2, frames=2)
    rec2.save(out / "second.gif")
    assert not win2.close()
    threading.Timer(0.3, gate.set).start()  # the held encode resumes, sees the cancel, writes nothing
    assert win2.close()
    assert rec2.state == IDLE and rec2.last_error == "cancelled"
    assert sorted(p.name for p in out.iterdir()) == ["first.gif"]


def test_record_then_stop_from_the_toolbar_asks_where_to_save_and_writes_the_file(qtbot, settings, tmp_path,
                                                                                   monkeypatch):
    """What the user does: click ● Record on the toolbar, let frames arrive, click again: a save dialog."""
    from PySide6 import QtCore, QtWidgets

    asked = []

    def fake_dialog(parent, title, default, filters, *more):
        asked.append(title)
        return str(tmp_path / "clip.gif"), "GIF animation (*.gif)"

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    win = open_window(qtbot, settings)
    try:
        rec = win.recorder
        rec.fps = 20.0
        win.toggle_play()
        button = win.findChild(QtWidgets.QToolBar, "trainingToolbar").widgetForAction(win.act_record)
        assert button.isVisible() and button.text() == "● Record"
        qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
        assert rec.state == RECORDING and button.text() == "■ Stop rec"
        qtbot.waitUntil(lambda: len(rec.frames) >= 5, timeout=15000)
        qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
        assert asked == ["Save the recording"]  # asked, never dropped
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=30000)
        assert rec.last_path == tmp_path / "clip.gif" and rec.last_error is None
        with Image.open(tmp_path / "clip.gif") as im:
            assert im.n_frames >= 2
        assert "Recording saved to" in win.notice.label.text()
    finally:
        win.close()


def test_a_dialog_that_fails_at_once_is_asked_again_as_qts_own(qtbot, settings, tmp_path, monkeypatch):
    """A desktop whose file dialog service fails returns no name at once: Qt's own dialog is shown instead."""
    from PySide6 import QtWidgets

    calls = []

    def fake_dialog(parent, title, default, filters, *more):
        calls.append(more)
        if len(calls) == 1:
            return "", ""  # the desktop's dialog failed: an answer in no time, no name
        return str(tmp_path / "second.gif"), "GIF animation (*.gif)"

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    win = open_window(qtbot, settings)
    try:
        rec = record_some(qtbot, win, frames=2)
        rec.stop()
        rec.ask_and_save()
        assert len(calls) == 2 and calls[0] == ()
        assert calls[1][-1] == QtWidgets.QFileDialog.Option.DontUseNativeDialog
        qtbot.waitUntil(lambda: rec.state == IDLE, timeout=30000)
        assert (tmp_path / "second.gif").stat().st_size > 0
    finally:
        win.close()


def test_nothing_to_save_says_why(qtbot, settings):
    win = open_window(qtbot, settings)
    try:
        rec = win.recorder
        rec.state = HELD
        rec.frames = []
        rec.ask_and_save()
        assert rec.state == IDLE
        assert "Nothing to save: no frame could be grabbed" in win.notice.label.text()
    finally:
        win.close()
