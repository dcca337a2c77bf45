"""benchmarks/gpu_check.py: the script a CUDA machine runs headless. Here its CPU dry run, with Qt blocked."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")
NUMBERS = ("metric_before", "metric_after", "snapshot_first_ms", "snapshot_ms", "engine_per_s", "bare_per_s",
           "ratio_engine_bare", "engine_cpu_per_s", "speedup_vs_cpu", "seconds", "trainer_per_s",
           "ratio_engine_trainer", "ratio_trainer_bare")


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cpu_dry_run_writes_every_figure_and_never_imports_qt(tmp_path):
    out = tmp_path / "gpu.json"
    code = textwrap.dedent(f"""
        import sys, importlib.abc, runpy
        class NoQt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'shiboken6'):
                    raise ImportError('Qt is blocked in this test: ' + name)
        sys.meta_path.insert(0, NoQt())
        sys.argv = ['gpu_check.py', '--device', 'cpu', '--families', 'rbm,dae', '--steps', '6', '--seconds', '0', '--cpu-steps', '3',
                    '--repeats', '1', '--json', {str(out)!r}]
        try:
            runpy.run_path({SCRIPT!r}, run_name='__main__')
        except SystemExit as exc:
            print('EXIT', exc.code)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "EXIT 0" in r.stdout, r.stdout + r.stderr
    assert "Qt is blocked" not in r.stderr
    assert "all checks passed" in r.stdout and "dry run on the CPU" in r.stdout
    data = json.loads(out.read_text())
    assert data["device"] == "cpu" and data["dry_run"] is True and data["ok"] is True and data["run_seconds"] == 0
    assert [row["family"] for row in data["families"]] == ["rbm", "dae"]
    for row in data["families"]:
        assert "error" not in row, row
        assert row["sync"] == "skipped" and row["sync_steps"] == 6
        assert row["snapshot_numpy_only"] is True and row["snapshot_not_numpy"] == []
        assert row["metric"] in ("heldout_recon_error", "heldout_loss")
        for key in NUMBERS:
            assert isinstance(row[key], float) and math.isfinite(row[key]), (row["family"], key, row[key])
        assert row["engine_per_s"] > 0 and row["bare_per_s"] > 0 and row["engine_cpu_per_s"] > 0
        assert len(row["engine_runs"]) == len(row["trainer_runs"]) == len(row["bare_runs"]) == 1
        # engine/bare splits exactly into the engine's own cost and the family's extra maths
        assert row["ratio_engine_bare"] == pytest.approx(row["ratio_engine_trainer"] * row["ratio_trainer_bare"])
        assert row["speed_steps"] == 6  # --seconds 0: each timed run is --steps long
    assert data["families"][1]["metric_after"] < data["families"][1]["metric_before"]  # the DAE learns in 6 steps
    # in a training process, as the app trains by default: the DAE's data is made from its configuration
    # there; the RBM's stand-in data (no MNIST here) exists only in this process, and says so
    rbm, dae = data["families"]
    assert dae["process_device"] == "cpu" and dae["process_snapshot_numpy_only"] is True
    assert dae["process_per_s"] > 0 and math.isfinite(dae["ratio_process_engine"])
    assert "process_per_s" not in rbm and "MNIST" in rbm["process_skipped"]
    assert "rbm: not checked in a training process" in r.stdout


def test_cuda_requested_where_torch_sees_none_exits_2(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--families", "rbm"]) == 2
    err = capsys.readouterr().err
    assert "sees no CUDA device" in err and "--device cpu" in err
    assert gpu_check.main(["--device", "cpu", "--families", "rbm,nope"]) == 2
    assert "unknown families: nope" in capsys.readouterr().err


class _SyncingTrainer:
    """Stands in for a trainer whose third step reads a value back to the CPU under the debug mode."""

    device = torch.device("cpu")

    def __init__(self, mode):
        self.mode, self.steps = mode, 0

    def train_step(self):
        self.steps += 1
        if self.steps == 3 and self.mode["value"] == "error":
            raise RuntimeError("called a synchronizing CUDA operation")
        return {}


def test_a_syncing_step_is_reported_and_training_goes_on(gpu_check, monkeypatch):
    mode = {"value": 0}
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda m: mode.update(value=m))
    tr = _SyncingTrainer(mode)
    res = gpu_check.checked_steps(tr, 10, debug=True)
    assert res["sync"] == "fail" and res["sync_step"] == 3
    assert res["sync_error"] == "RuntimeError: called a synchronizing CUDA operation"
    assert "test_gpu_check_script.py" in res["sync_where"] and "raise RuntimeError" in res["sync_where"]
    assert tr.steps == 10 and mode["value"] == 0  # the rest ran without the check; the mode is back to normal


def test_snapshot_tensors_are_found(gpu_check):
    import numpy as np

    snap = {"w": np.zeros(3), "views": [np.ones(2), {"live": torch.zeros(2)}], "name": "x", "n": 3}
    assert gpu_check.non_numpy(snap) == ["snapshot['views'][1]['live']: torch tensor on cpu"]
    assert gpu_check.non_numpy({"w": np.zeros(3), "t": (1.0, np.ones(1))}) == []


def test_one_family_failing_does_not_stop_the_others(gpu_check, monkeypatch, tmp_path, capsys):
    def broken(quick, data_dir, device):
        raise ValueError("this family cannot be built")

    monkeypatch.setattr(gpu_check, "CASES", {"boom": broken, "mlp": gpu_check.CASES["mlp"]})
    out = tmp_path / "gpu.json"
    rc = gpu_check.main(["--device", "cpu", "--families", "boom,mlp", "--steps", "3", "--seconds", "0", "--cpu-steps", "2",
                         "--repeats", "1", "--json", str(out)])
    assert rc == 1
    rows = {r["family"]: r for r in json.loads(out.read_text())["families"]}
    assert rows["boom"]["error"] == "ValueError: this family cannot be built" and rows["boom"]["ok"] is False
    assert rows["mlp"]["ok"] is True and math.isfinite(rows["mlp"]["ratio_engine_bare"])
    assert "SOME CHECKS FAILED" in capsys.readouterr().out
