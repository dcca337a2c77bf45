"""The window with training in a separate process, as a user drives it: every family trains and draws,
the work that reaches into the model (save, reopen, probe, stage switch, walkthrough) crosses, and
closing mid-training ends the process. (The other window tests train on a thread: see conftest.py.)"""

import pytest
from PySide6 import QtCore
from safetensors.torch import load_file

from explorer.core.engine.session import PAUSED, RUNNING, TrainingSession
from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.families.cnn.trainer import CNNConfig
from explorer.core.families.deep.compare import CompareConfig
from explorer.core.families.deep.trainer import MLPConfig
from explorer.core.families.fcn.trainer import FCNCompareConfig, FCNConfig
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.families.recurrent.trainer import LSTMConfig, RNNConfig
from explorer.core.persist.runfolder import load_run
from explorer.core.process import worker
from explorer.core.process.session import ProcessSession
from explorer.gui.pacing import PROCESS_SNAPSHOT_SHARE
from tests import helpers

SMALL = {
    "rbm": RBMConfig(device="cpu", hidden=16),
    "autoencoder": AutoencoderConfig(device="cpu"),
    "mlp": MLPConfig(dataset="digits", hidden=(16, 16), batch_size=32, device="cpu"),
    "compare": CompareConfig(device="cpu"),
    "cnn": CNNConfig(device="cpu", batch_size=32, eval_samples=300),
    "fcn": FCNConfig(device="cpu"),
    "fcn-compare": FCNCompareConfig(device="cpu"),
    "lstm": LSTMConfig(device="cpu"),
    "rnn": RNNConfig(device="cpu"),
}


@pytest.fixture(autouse=True)
def train_in_a_process(monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_TRAINING", "process")
    yield
    worker.discard_spare()


def open_window(qtbot, settings, config):
    return helpers.open_window(qtbot, settings, config, size=(1400, 900))


@pytest.mark.parametrize("family", list(SMALL))
def test_each_family_trains_and_draws_from_a_training_process(qtbot, settings, family):
    win = open_window(qtbot, settings, SMALL[family])
    try:
        s, panel = win.session, win.panel
        assert isinstance(s, ProcessSession) and win.family == family
        assert "own process" in win.status_device.text()
        drawn = panel._last_seq
        win.toggle_play()
        assert s.state == RUNNING and "Pause" in win.act_play.text()  # at once, before the process answers
        qtbot.waitUntil(lambda: s.trainer.step > 3 and panel._last_seq > drawn and panel._steps_read > 0,
                        timeout=60000)
        # the views are paced on the training process's snapshot time, not on the window's drawing
        assert panel.pacer.share == PROCESS_SNAPSHOT_SHARE
        qtbot.waitUntil(lambda: panel.pacer.measured is not None, timeout=10000)
        assert 0.0 <= panel.pacer.measured < 1.0
        win.toggle_play()
        assert s.wait(30) and s.state == PAUSED
        step = s.trainer.step
        # the paused views show the paused step, and the curves hold a row per recorded step
        qtbot.waitUntil(lambda: s.latest_snapshot().step == step and panel._last_seq == s.latest_snapshot().seq,
                        timeout=10000)
        assert s.metrics.steps[-1]["step"] == step
        assert f"step {step}" in win.status_epoch.text()
    finally:
        win.close()
    assert not s.is_alive and not s._process.is_alive()


def test_save_reopen_and_close_mid_training(qtbot, settings, tmp_path):
    win = open_window(qtbot, settings, SMALL["rbm"])
    try:
        s = win.session
        s.step(12)
        assert s.wait(30)
        assert win.save_run(tmp_path / "run").wait(30)
        assert load_run(tmp_path / "run").step == 12
        # an export is written by the training process; its outcome (or its error) shows in the window
        said = []  # (message, error) as the notice bar gets them (the save's own notice may follow)
        win.model_exporter.sigDone.connect(lambda message, error: said.append((message, error)))
        assert win.model_exporter.export_model("safetensors", tmp_path / "w.safetensors").wait(30)
        qtbot.waitUntil(lambda: len(said) == 1, timeout=5000)
        assert "at step 12 as safetensors" in said[0][0] and not said[0][1]
        assert set(load_file(str(tmp_path / "w.safetensors"))) == set(load_run(tmp_path / "run").tensors)
        assert win.model_exporter.export_model("onnx", tmp_path / "run" / "run.json" / "m.onnx").wait(30)
        qtbot.waitUntil(lambda: len(said) == 2, timeout=5000)
        assert said[1][0].startswith("Could not export") and said[1][1]
        assert s.error is None and s.is_alive
        assert win.autosave_now().wait(30)  # the autosave is written by the training process too
        assert load_run(win.autosave.folder).step == 12 and win.autosave.last_step == 12
        assert win.open_run(tmp_path / "run")
        again = win.session
        assert again is not s and isinstance(again, ProcessSession) and again.trainer.step == 12
        assert not s._process.is_alive()  # the first session's process ended when it was replaced
        qtbot.waitUntil(lambda: win.panel._steps_read == 12, timeout=10000)  # its curves came with it
        win.toggle_play()
        qtbot.waitUntil(lambda: again.trainer.step > 40, timeout=30000)
    finally:
        win.close()  # mid-training
    assert not again._process.is_alive()


def test_a_cnn_probe_and_a_deep_stage_switch_cross_to_the_process(qtbot, settings):
    win = open_window(qtbot, settings, SMALL["cnn"])
    try:
        win.session.step(2)
        assert win.session.wait(30)
        win.panel.pick_probe(5)
        qtbot.waitUntil(lambda: win.session.latest_snapshot().arrays.get("probe_index") == 5, timeout=10000)
        assert win._new_session(MLPConfig(dataset="digits", hidden=(16, 16), init="rbm", pretrain_epochs=50,
                                          batch_size=32, device="cpu"))
        assert win.family == "mlp" and isinstance(win.session, ProcessSession)
        assert win.session.trainer.stages == ["pretrain layer 1 (RBM)", "pretrain layer 2 (RBM)", "fine-tune"]
        win.panel.end_stage()
        qtbot.waitUntil(lambda: win.session.trainer.stage_index == 1, timeout=10000)
    finally:
        win.close()


def test_the_cd1_walkthrough_is_computed_in_the_process(qtbot, settings):
    win = open_window(qtbot, settings, RBMConfig(dataset="digits", hidden=16, binarize="threshold", device="cpu"))
    try:
        win.session.step(5)
        assert win.session.wait(30)
        qtbot.mouseClick(win.panel.settings.walkthrough_btn, QtCore.Qt.MouseButton.LeftButton)
        dlg = win.panel.walkthrough
        assert dlg is not None and dlg.data["step"] == 5 and dlg.data["dW"].shape == (64, 16)
        dlg.close()
    finally:
        win.close()


def test_the_menu_moves_an_untrained_model_between_process_and_thread(qtbot, settings, monkeypatch):
    from explorer.gui.window import sessions

    warmed = []  # (models that train in the window now: their first optimiser's imports, off the GUI thread)
    monkeypatch.setattr(sessions, "warm_first_optimizer", lambda: warmed.append(1))
    win = open_window(qtbot, settings, SMALL["rbm"])
    try:
        first = win.session
        assert win.act_train_process.isChecked() and not warmed
        win.act_train_process.trigger()  # off: the model at step 0 moves to a thread at once
        assert isinstance(win.session, TrainingSession) and "window's process" in win.notice.label.text()
        assert warmed == [1]
        assert not first._process.is_alive()
        assert settings.value("training/process") in (False, "false")
        win.session.step(3)
        assert win.session.wait(20)
        win.act_train_process.trigger()  # on again: a trained model stays where it is until the next one
        assert isinstance(win.session, TrainingSession) and "from the next model" in win.notice.label.text()
    finally:
        win.close()


def test_a_training_process_that_cannot_start_leaves_training_on_a_thread(qtbot, settings, monkeypatch):
    def no_process():
        raise OSError("no processes here")

    monkeypatch.setattr(worker, "take", no_process)
    win = open_window(qtbot, settings, SMALL["rbm"])
    try:
        assert isinstance(win.session, TrainingSession)
        assert "Training runs in the window's process" in win.notice.label.text()
        assert "no processes here" in win.notice.label.text()
        win.session.step(2)
        assert win.session.wait(20) and win.session.trainer.step == 2
    finally:
        win.close()


def test_a_window_whose_models_train_in_it_takes_the_first_optimisers_imports_once_painted(qtbot, settings,
                                                                                          monkeypatch):
    from explorer.gui import main_window
    from explorer.gui.settings import TRAINING_ENV

    warmed = []
    monkeypatch.setattr(main_window, "warm_first_optimizer", lambda: warmed.append(1))
    monkeypatch.setenv(TRAINING_ENV, "thread")  # (this module's windows train in a process)
    win = open_window(qtbot, settings, SMALL["rbm"])
    try:
        qtbot.waitUntil(lambda: warmed == [1], timeout=5000)
    finally:
        win.close()
