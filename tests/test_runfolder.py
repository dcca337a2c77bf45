"""Run folders: saved atomically, reopened exactly, corrupt ones refused with a clear message."""

import json

import pytest
import torch

from explorer.core.engine.session import TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.runfolder import RunFolderError, load_run, restore_session, save_run


def trained_session(steps=15):
    s = TrainingSession(RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=6, batch_size=20,
                                             device="cpu", momentum=0.5)), eval_every=5)
    s.step(steps)
    s.wait(10)
    return s


def test_save_and_reopen(tmp_path):
    s = trained_session()
    out = save_run(s, tmp_path / "run")
    s.close()
    assert sorted(p.name for p in out.iterdir()) == ["evals.csv", "metrics.csv", "run.json", "weights.safetensors"]
    info = json.loads((out / "run.json").read_text())
    assert info["family"] == "rbm" and info["step"] == 15 and info["config"]["hidden"] == 6
    run = load_run(out)
    s2 = restore_session(run)
    try:
        assert s2.trainer.step == 15
        assert torch.equal(s2.trainer.rbm.W, s.trainer.rbm.W)
        assert torch.equal(s2.trainer.cd.velocity[0], s.trainer.cd.velocity[0])
        assert [r["step"] for r in s2.metrics.steps] == list(map(float, range(1, 16)))
        assert s2.metrics.steps[-1]["recon_error"] == pytest.approx(s.metrics.steps[-1]["recon_error"])
        assert [r["step"] for r in s2.metrics.evals] == [0.0, 5.0, 10.0, 15.0]
        # and it trains on from there
        s2.step(2)
        s2.wait(5)
        assert s2.trainer.step == 17
    finally:
        s2.close()


def test_no_temporary_files_left(tmp_path):
    s = trained_session(3)
    save_run(s, tmp_path)
    save_run(s, tmp_path)  # overwrite in place
    s.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fault,match", [
    ("no_json", "no run.json"),
    ("bad_json", "corrupt JSON"),
    ("foreign_json", "not a Network Explorer run"),
    ("truncated_weights", "corrupt or truncated"),
    ("missing_weights", "missing"),
    ("wrong_shape", "shape"),
])
def test_corrupt_run_folders_are_refused(tmp_path, fault, match):
    s = trained_session(2)
    out = save_run(s, tmp_path / "run")
    s.close()
    w = out / "weights.safetensors"
    if fault == "no_json":
        (out / "run.json").unlink()
    elif fault == "bad_json":
        (out / "run.json").write_text("{not json")
    elif fault == "foreign_json":
        (out / "run.json").write_text(json.dumps({"format": "something-else"}))
    elif fault == "truncated_weights":
        w.write_bytes(w.read_bytes()[:50])
    elif fault == "missing_weights":
        w.unlink()
    elif fault == "wrong_shape":
        info = json.loads((out / "run.json").read_text())
        info["config"]["hidden"] = 7
        (out / "run.json").write_text(json.dumps(info))
    with pytest.raises(RunFolderError, match=match):
        restore_session(load_run(out)).close()
