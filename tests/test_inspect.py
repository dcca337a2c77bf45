"""``explorer inspect``: summaries of run folders, weights and network files; faults in one line, exit 2."""

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from explorer.cli import main
from explorer.core.engine.session import TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.inspect import InspectError, inspect_path
from explorer.core.persist.runfolder import save_run


@pytest.fixture
def run_dir(tmp_path):
    tr = RBMTrainer(RBMConfig(dataset="digits", hidden=12, device="cpu"))
    s = TrainingSession(tr)
    try:
        s.step(5)
        s.wait(30)
        s.call_in_thread(s.evaluate_now)
        s.wait(30)
        return save_run(s, tmp_path / "run")
    finally:
        s.close()


def test_run_folder_summary(run_dir):
    text = inspect_path(run_dir)
    assert "family: rbm" in text and "step 5, epoch 0" in text
    assert "data: digits (8x8)" in text and "hidden=12" in text
    assert "W                            F32   64x12" in text
    assert "heldout_recon_error" in text  # the last evaluation's metrics
    assert inspect_path(run_dir / "run.json") == text


def test_weights_file_summary(tmp_path):
    p = tmp_path / "w.safetensors"
    save_file({"W": torch.zeros(3, 4), "b": torch.zeros(4)}, str(p), metadata={"family": "rbm"})
    text = inspect_path(p)
    assert "metadata: family=rbm" in text and "3x4" in text and "2 tensors, 16 numbers" in text


class _Payload:
    def __reduce__(self):  # unpickling this would create a file
        return (open, (str(_Payload.target), "w"))


def test_a_pickle_payload_is_refused_unread(tmp_path, capsys):
    _Payload.target = tmp_path / "pwned"
    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(InspectError, match="pickle"):
        inspect_path(p)
    torch.save({"W": torch.zeros(2)}, tmp_path / "model.pt")  # a zip of pickles
    assert main(["inspect", str(tmp_path / "model.pt")]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and "never unpickled" in err and len(err.strip().splitlines()) == 1
    assert not _Payload.target.exists()


@pytest.mark.parametrize("make, fault", [
    (lambda d: (d / "x.safetensors").write_bytes(b"\x08"), "truncated"),
    (lambda d: (d / "x.safetensors").write_bytes((10).to_bytes(8, "little") + b"not json!!"), "not JSON"),
    (lambda d: (d / "x.json").write_text("{broken"), "not valid JSON"),
    (lambda d: (d / "x.json").write_text(json.dumps({"format": "something-else"})), "x.json"),
])
def test_corrupt_or_foreign_files_exit_2_in_one_line(tmp_path, capsys, make, fault):
    make(tmp_path)
    path = next(tmp_path.glob("x.*"))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert fault in err and len(err.splitlines()) == 1


def test_truncated_weights_in_a_run_folder(run_dir, capsys):
    w = run_dir / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-40])
    assert main(["inspect", str(run_dir)]) == 2
    assert "weights.safetensors" in capsys.readouterr().err
    assert main(["inspect", str(run_dir.parent / "missing")]) == 2


def test_network_file():
    path = Path(__file__).resolve().parents[1] / "samples" / "lenet5.json"
    text = inspect_path(path)
    assert text.startswith(f"network file {path}") and "Conv2d" in text
