"""``--json`` on every command that prints a result (train has had it; inspect, spec, export and snapshot
now): one JSON object on stdout with what the text says, and a fault as ``{"error": ...}`` with exit 2."""

import json
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from explorer.cli import main

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "samples" / "lessons" / "lstm-adding-problem"


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one object, nothing else on stdout
    return code, json.loads(out[0])


def test_inspect_json_of_a_run_folder(capsys):
    code, got = run_json(capsys, "inspect", str(LESSON), "--json")
    assert code == 0
    assert (got["kind"], got["family"], got["step"], got["epoch"]) == ("run", "lstm", 1000, 8)
    assert got["config"]["hidden"] == 16 and got["config"]["task"] == "adding"
    assert got["metrics"] == {"step_rows": 1000, "evaluations": 9}
    assert got["weights"]["model.lstm.weight_ih_l0"] == {"dtype": "F32", "shape": [64, 2]}  # 4 gates x 16 units
    assert got["weights"]["model.lstm.weight_hh_l0"]["shape"] == [64, 16]
    assert got["summary"].startswith(f"run folder {LESSON}")


def test_inspect_json_of_a_weights_file_escapes_what_the_file_says(capsys, tmp_path):
    import numpy as np

    path = tmp_path / "w.safetensors"
    save_file({"layer\x1b[31m.weight": np.zeros((3, 2), np.float32)}, str(path), metadata={"note": "hi\x07"})
    code, got = run_json(capsys, "inspect", "--json", str(path))
    assert code == 0 and got["kind"] == "weights"
    assert got["tensors"] == {"layer\x1b[31m.weight": {"dtype": "F32", "shape": [3, 2]}}
    assert got["metadata"] == {"note": "hi\x07"}
    main(["inspect", "--json", str(path)])
    raw = capsys.readouterr().out
    assert "\x1b" not in raw and "\x07" not in raw and "\\u001b" in raw  # JSON escapes control characters


def test_inspect_json_of_a_network_file_and_a_fault(capsys, tmp_path):
    code, got = run_json(capsys, "inspect", str(ROOT / "samples" / "lenet5.json"), "--json")
    assert code == 0
    assert {k: got[k] for k in ("kind", "family", "layers", "parameters", "output_shape")} == {
        "kind": "network", "family": "cnn", "layers": 13, "parameters": 61706, "output_shape": [10]}
    code, got = run_json(capsys, "inspect", str(tmp_path / "nope"), "--json")
    assert code == 2 and got == {"error": f"{tmp_path / 'nope'}: no such file or folder"}


def test_spec_commands_json(capsys, tmp_path):
    lenet = str(ROOT / "samples" / "lenet5.json")
    assert run_json(capsys, "spec", "check", lenet, "--json") == (0, {
        "file": lenet, "valid": True, "family": "cnn", "layers": 13, "parameters": 61706, "output_shape": [10]})
    code, got = run_json(capsys, "spec", "summary", "--preset", "lenet5", "--json")
    assert code == 0 and got["valid"] and got["parameters"] == 61706 and "AvgPool2d" in got["table"]
    code, got = run_json(capsys, "spec", "presets", "--json")
    assert code == 0 and "lenet5" in got and got["lenet5"].startswith("LeNet-5")
    out = tmp_path / "model.py"
    assert run_json(capsys, "spec", "export", "--preset", "lenet5", "--out", str(out), "--json") == (
        0, {"wrote": str(out)})
    assert "class" in out.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, got = run_json(capsys, "spec", "check", str(bad), "--json")
    assert code == 2 and got["error"].startswith(str(bad))


def test_export_json(capsys, tmp_path):
    out = tmp_path / "w.safetensors"
    code, got = run_json(capsys, "export", str(LESSON), "--safetensors", str(out), "--json")
    assert code == 0
    assert got == {"family": "lstm", "step": 1000,
                   "wrote": [{"path": str(out), "format": "safetensors", "bytes": out.stat().st_size}]}


@pytest.mark.parametrize("argv", [["--help"]])
def test_every_result_printing_command_offers_json(capsys, argv):
    for command in (["inspect"], ["export"], ["spec", "check"], ["spec", "summary"], ["spec", "export"],
                    ["spec", "presets"], ["snapshot", "rbm"], ["train", "rbm"]):
        with pytest.raises(SystemExit):
            main([*command, *argv])
        assert "--json" in capsys.readouterr().out, command
