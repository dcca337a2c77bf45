"""Files made to break the app: each class of hostile input gets its exact outcome.

Every input is generated here (no payload is checked in). A "payload" is a pickle whose ``__reduce__``
would create a marker file: the tests assert that the marker never appears. For the command line the
outcome is exit status 2, one line on stderr naming the file (and the field), no traceback; for the
window, a notice naming the file while the model on show stays; for the autosave, a bad one set aside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from explorer.cli import main
from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.persist.autosave import AutosaveSlot
from explorer.core.persist.runfolder import RunFolderError, load_run, restore_trainer
from explorer.core.persist.schema import check_run_info, config_fault, parse_metrics_csv
from explorer.core.safe_read import UnsafeFileError, escape_text, read_json

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "samples" / "lessons" / "rbm-digits-half-trained"
ESC = "\x1b"
AUTOENCODER_SETTINGS = {f.name for f in dataclasses.fields(AutoencoderConfig)}


class Payload:
    """Unpickling this creates ``marker``: the proof that a file ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PAYLOAD-RAN"
    yield path
    assert not path.exists(), "a file's payload ran"


@pytest.fixture
def run(tmp_path):
    """A copy of a real saved run (an RBM on the bundled digits) to spoil."""
    out = tmp_path / "run"
    shutil.copytree(LESSON, out)
    return out


def cli(*argv: str) -> tuple[int, str, str]:
    """The command line in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def assert_refused(rc: int, err: str, *words: str) -> None:
    """Exit 2, one line on stderr holding ``words`` (the file, the field), no traceback, no raw escape."""
    assert rc == 2, err
    assert "Traceback" not in err and ESC not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)


def edit_run_json(run: Path, change) -> None:
    info = json.loads((run / "run.json").read_text())
    change(info)
    (run / "run.json").write_text(json.dumps(info))


def write_safetensors(path: Path, header: dict, data: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


# -- run.json: wrong types and ranges -----------------------------------------------------------------
RUN_JSON_FAULTS = [
    ("config a list", lambda i: i.__setitem__("config", [1]), "config must be an object"),
    ("step a list", lambda i: i.__setitem__("step", [1]), "step must be a whole number"),
    ("hidden a string", lambda i: i["config"].__setitem__("hidden", "16"),
     'config.hidden must be a whole number between 1 and 20000 (hidden units), got "16"'),
    ("hidden a fraction", lambda i: i["config"].__setitem__("hidden", 16.5), "config.hidden must be"),
    ("hidden true", lambda i: i["config"].__setitem__("hidden", True), "config.hidden must be"),
    ("hidden null", lambda i: i["config"].__setitem__("hidden", None), "config.hidden must be"),
    ("hidden negative", lambda i: i["config"].__setitem__("hidden", -5), "config.hidden must be"),
    ("hidden huge", lambda i: i["config"].__setitem__("hidden", 10**9), "got 1000000000"),
    ("lr infinite", lambda i: i["config"].__setitem__("lr", 1e999), "config.lr must be"),
    ("device a list", lambda i: i["config"].__setitem__("device", ["cpu"]), "config.device must be a string"),
    ("unknown family", lambda i: i.__setitem__("family", "gan"), "family must be one of"),
    ("family of other weights", lambda i: (i.__setitem__("family", "autoencoder"),
                                           i.__setitem__("config", {k: v for k, v in i["config"].items()
                                                                    if k in AUTOENCODER_SETTINGS})),
     "weights are of the \"rbm\" family"),
    ("version a list", lambda i: i.__setitem__("version", [1]), "version must be a whole number"),
    ("version from the future", lambda i: i.__setitem__("version", 99), "newer than this app supports"),
    ("dataset a string", lambda i: i.__setitem__("dataset", "digits"), "dataset must be an object"),
    ("gui a list", lambda i: i.__setitem__("gui", []), "gui must be an object"),
    ("layout not base64", lambda i: i.__setitem__("gui", {"layout": "ü\x1b[2J"}), "gui.layout must be base64 text"),
]


@pytest.mark.parametrize("change, words", [c[1:] for c in RUN_JSON_FAULTS], ids=[c[0] for c in RUN_JSON_FAULTS])
def test_a_run_json_of_wrong_types_or_ranges_is_refused_naming_the_file_and_field(run, change, words):
    edit_run_json(run, change)
    file = "weights.safetensors" if "weights are of" in words else "run.json"
    for command in (["inspect", str(run)], ["export", str(run), "--safetensors", str(run.parent / "w.st")]):
        rc, out, err = cli(*command)
        assert_refused(rc, err, f"{run / file}: ", words)
        assert out == ""
    assert not (run.parent / "w.st").exists()  # nothing partial left behind


def test_json_nested_100000_deep_is_refused_at_once(run):
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    t0 = time.perf_counter()
    rc, _, err = cli("inspect", str(run))
    assert_refused(rc, err, "run.json: JSON nested too deeply")
    assert time.perf_counter() - t0 < 5
    with pytest.raises(UnsafeFileError, match="nested too deeply"):
        read_json(run / "run.json")


def test_the_schema_messages_read_file_fault_where():
    info = json.loads((LESSON / "run.json").read_text())
    info["config"]["hidden"] = "16"
    with pytest.raises(ValueError) as e:
        check_run_info(info, "run.json")
    assert str(e.value) == 'run.json: config.hidden must be a whole number between 1 and 20000 (hidden units), got "16"'
    from explorer.core.families.rbm.trainer import RBMConfig

    assert config_fault(RBMConfig, {"hidden": 100, "k": 1}) is None
    assert config_fault(RBMConfig, {"persistent": "yes"}) == 'config.persistent must be true or false, got "yes"'


# -- weights that do not fit their run ----------------------------------------------------------------
def test_weights_of_another_size_are_refused_by_export_and_inspect_naming_the_tensor(run):
    edit_run_json(run, lambda i: i["config"].__setitem__("hidden", 7))
    for command in (["export", str(run), "--safetensors", str(run.parent / "w.st")], ["inspect", str(run)]):
        rc, _, err = cli(*command)
        assert_refused(rc, err, "weights.safetensors: tensor 'W' has shape 64x100; the run's rbm model needs 64x7")
    assert not (run.parent / "w.st").exists()
    with pytest.raises(RunFolderError, match=r"does not fit the run's rbm model: .*'W'.*\(64, 100\)"):
        restore_trainer(load_run(run), device="cpu")


@pytest.mark.parametrize("spoil, words", [
    (lambda t: t.pop("W"), "no tensor 'W'"),
    (lambda t: t.__setitem__("W", torch.tensor(1.0)), "tensor 'W' has shape scalar; the run's rbm model needs 64x100"),
    (lambda t: t.__setitem__("b", torch.zeros(0)), "tensor 'b' has shape 0; the run's rbm model needs 64"),
    # the bytes of the weights labelled int32: converted, they were weights of -1e9 (export wrote them)
    (lambda t: t.__setitem__("W", t["W"].view(torch.int32)),
     "tensor 'W' holds I32; the run's rbm model needs floating-point numbers"),
], ids=["missing", "0-d", "empty", "integers"])
def test_a_tensor_missing_0d_or_empty_is_refused(run, spoil, words):
    tensors = load_file(str(run / "weights.safetensors"))
    spoil(tensors)
    save_file(tensors, str(run / "weights.safetensors"), metadata={"family": "rbm"})
    for command in (["export", str(run), "--safetensors", str(run.parent / "w.st")], ["inspect", str(run)]):
        rc, _, err = cli(*command)
        assert_refused(rc, err, "weights.safetensors: ", words)
    with pytest.raises(RunFolderError, match="weights.safetensors"):
        restore_trainer(load_run(run), device="cpu")


@pytest.mark.parametrize("header, data, words", [
    ({"W": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 8]}}, b"\0" * 8, "claims 1000000000000 numbers"),
    ({"W": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": [1]}, b"\0" * 8, "__metadata__"),
    ({"W": {"dtype": "F32", "shape": [2], "data_offsets": ["0", 8]}}, b"\0" * 8, "not a pair of whole numbers"),
    ({"W": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 9]}}, b"\0" * 8, "not a pair of whole numbers"),
    ({"W": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12 bytes, its data holds 8"),
    ({"W": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "shape that is not a list"),
    ({"W": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown dtype"),
    ({"W": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}, b"\0" * 8, "beyond the end"),
], ids=["10^12 numbers", "metadata a list", "offset a string", "three offsets", "size mismatch", "negative dim",
        "unknown dtype", "past the end"])
def test_a_crafted_safetensors_header_is_refused_in_the_run_and_alone(run, header, data, words):
    write_safetensors(run / "weights.safetensors", header, data)
    for target in (run, run / "weights.safetensors"):
        rc, out, err = cli("inspect", str(target))
        assert_refused(rc, err, "weights.safetensors: ", words)


def test_names_and_metadata_from_a_file_are_printed_escaped(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file({f"W{ESC}[2J{ESC}]0;owned{chr(7)}": torch.zeros(2)}, str(weights), metadata={"note": f"{ESC}[31mred"})
    rc, out, err = cli("inspect", str(weights))
    assert rc == 0 and ESC not in out and chr(7) not in out
    assert "W\\x1b[2J\\x1b]0;owned\\x07" in out and "note=\\x1b[31mred" in out
    assert escape_text("tab\there") == "tab\\there" and escape_text("plain") == "plain"


def test_a_pickle_in_place_of_the_weights_never_runs(run, marker):
    (run / "weights.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    for command in (["inspect", str(run)], ["export", str(run), "--onnx", str(run.parent / "m.onnx")],
                    ["inspect", str(run / "weights.safetensors")]):
        rc, _, err = cli(*command)
        assert_refused(rc, err, "weights.safetensors: a pickle")


# -- metrics, specs, endless inputs ---------------------------------------------------------------------
def test_a_metrics_csv_with_ragged_rows_is_refused_naming_the_line(run):
    with open(run / "metrics.csv", "a") as f:
        f.write("226.0,5.0,0.1,99,98\n")
    rc, _, err = cli("inspect", str(run))
    assert_refused(rc, err, "metrics.csv: line 227 has 5 values, the header names 3")
    with pytest.raises(ValueError, match="evals.csv: line 2, column \"loss\": not a number"):
        parse_metrics_csv("step,loss\n1,abc\n", "evals.csv")
    assert parse_metrics_csv("step,loss\n1,\n2,nan\n", "m.csv")[0] == {"step": 1.0}


def test_inspect_refuses_a_spec_that_spec_check_refuses(tmp_path):
    spec = {"family": "cnn", "input_shape": [1, 8, 8],
            "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 20}]}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    rc_check, _, err_check = cli("spec", "check", str(path))
    rc, _, err = cli("inspect", str(path))
    assert rc_check == 2 and rc == 2
    assert_refused(rc, err, str(path))


def test_a_fifo_as_run_json_or_text_is_refused_not_waited_on(run, tmp_path):
    (run / "run.json").unlink()
    os.mkfifo(run / "run.json")
    fifo = tmp_path / "text.fifo"
    os.mkfifo(fifo)
    rc, _, err = cli("inspect", str(run))
    assert_refused(rc, err, "run.json: not a regular file")
    from explorer.core.data.sequences import read_text_file

    with pytest.raises(ValueError, match="text.fifo: not a regular file"):
        read_text_file(fifo)
    from explorer.core.data.datasets import read_idx

    with pytest.raises(ValueError, match="text.fifo: cannot read: not a regular file"):
        read_idx(fifo)


def _run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_the_real_command_line_exits_2_without_a_traceback(run, tmp_path):
    """As a user runs it: a process, its exit status, its stderr (an endless device, a bad run)."""
    edit_run_json(run, lambda i: i["config"].__setitem__("hidden", "16"))
    r = _run_cli("inspect", str(run))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().endswith('run.json: config.hidden must be a whole number between 1 and 20000 '
                                     '(hidden units), got "16"')
    r = _run_cli("spec", "check", "/dev/urandom", timeout=30)  # a hang fails the test at the timeout
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "/dev/urandom: not a regular file" in r.stderr


# -- the autosave -----------------------------------------------------------------------------------
@pytest.mark.parametrize("spoil", [
    lambda i: i.__setitem__("step", [1]),
    lambda i: i["config"].__setitem__("hidden", "16"),
    "deep",
], ids=["step a list", "hidden a string", "deeply nested"])
def test_a_bad_autosave_is_set_aside_once_with_its_reason(tmp_path, spoil):
    slot = tmp_path / "autosave" / "slot-1"
    shutil.copytree(LESSON, slot / "last-session")
    (slot / "running.json").write_text(json.dumps({"pid": 1, "token": "x"}))  # its window died
    if spoil == "deep":
        (slot / "last-session" / "run.json").write_text("{\"a\":" * 50_000 + "1" + "}" * 50_000)
    else:
        edit_run_json(slot / "last-session", spoil)
    first = AutosaveSlot(tmp_path / "autosave")
    assert first.stale() is None
    ((where, reason),) = first.set_aside
    assert where.parent == slot and where.name.startswith("last-session.bad-") and where.is_dir()
    assert "run.json" in reason and not (slot / "last-session").exists()
    first.acquire()
    first.release()
    again = AutosaveSlot(tmp_path / "autosave")  # the next start: nothing offered, nothing reported
    assert again.stale() is None and again.set_aside == []


def test_the_window_starts_past_a_bad_autosave_and_says_it_was_set_aside(qtbot, settings, tmp_path, monkeypatch):
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.gui.main_window import MainWindow

    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))
    slot = tmp_path / "cache" / "autosave" / "slot-1"
    shutil.copytree(LESSON, slot / "last-session")
    (slot / "running.json").write_text(json.dumps({"pid": 1, "token": "x"}))
    (slot / "last-session" / "run.json").write_text("[" * 100_000)
    for start in range(2):  # and the start after it: no notice, no crash loop
        win = MainWindow(RBMConfig(dataset="digits", hidden=8, device="cpu"), settings=settings)
        qtbot.addWidget(win)
        text = _notice_text(win)
        win.close()
        if start == 0:
            assert "autosave could not be restored" in text and "JSON nested too deeply" in text
            assert "last-session.bad-" in text
        else:
            assert "autosave could not be restored" not in text


def test_the_first_autosave_comes_after_a_minute_or_the_first_steps(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    slot = AutosaveSlot("/nonexistent")
    slot.last_time = now[0]
    assert not slot.due(0)  # not training yet: the clock has not started
    now[0] += 10
    assert not slot.due(3)  # training seen for the first time
    now[0] += 59
    assert not slot.due(50)
    now[0] += 1
    assert slot.due(60)  # a minute of training
    slot.saved(60)
    now[0] += 100
    assert not slot.due(5000)  # after the first, every three minutes
    now[0] += 80
    assert slot.due(5001)
    steps = AutosaveSlot("/nonexistent")
    steps.last_time = now[0]
    assert not steps.due(1) and not steps.due(1000) and steps.due(1001)  # or the first 1000 steps


def _notice_text(win) -> str:
    return win.notice.label.text()


# -- the window -----------------------------------------------------------------------------------------
def test_the_window_opens_on_a_bad_run_with_a_notice_and_keeps_its_model(qtbot, settings, run, tmp_path,
                                                                         monkeypatch):
    from explorer.core.families.autoencoder.trainer import AutoencoderConfig
    from explorer.gui.main_window import MainWindow

    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))  # no other test's autosave offered

    edit_run_json(run, lambda i: i["config"].__setitem__("hidden", "16"))
    win = MainWindow(AutoencoderConfig(dataset="digits", hidden=8, device="cpu"), run_dir=str(run),
                     settings=settings)
    qtbot.addWidget(win)
    win.autosave = None
    assert win.session is not None and win.session.trainer.family == "autoencoder"  # the default stays
    assert "run.json: config.hidden must be" in _notice_text(win)
    before = win.session
    (run / "run.json").write_text("[" * 100_000)
    assert win.open_run(run) is False and win.session is before  # the model on show stays
    assert "JSON nested too deeply" in _notice_text(win)
    win.close()


def test_a_training_process_refuses_a_bad_run_the_same_way(qtbot, settings, run, monkeypatch):
    """The window's default: the run is opened in a training process, whose refusal comes back whole."""
    from explorer.core.families.autoencoder.trainer import AutoencoderConfig
    from explorer.gui.main_window import MainWindow

    monkeypatch.setenv("NETWORK_EXPLORER_TRAINING", "process")
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(run.parent / "cache"))  # no other test's autosave offered
    edit_run_json(run, lambda i: i.__setitem__("step", [1]))
    win = MainWindow(AutoencoderConfig(dataset="digits", hidden=8, device="cpu"), run_dir=str(run),
                     settings=settings)
    qtbot.addWidget(win)
    win.autosave = None
    try:
        assert win.session is not None and win.session.trainer.family == "autoencoder"
        assert "run.json: step must be a whole number" in _notice_text(win)
    finally:
        win.close()


# -- the window's settings file -------------------------------------------------------------------------
WRITE_PAYLOAD = textwrap.dedent("""
    import sys
    from PySide6 import QtCore
    sys.path.insert(0, sys.argv[2])
    from test_hostile_files import Payload
    s = QtCore.QSettings(sys.argv[1], QtCore.QSettings.Format.IniFormat)
    s.setValue("window/geometry", Payload(sys.argv[3]))
    s.setValue("window/state", QtCore.QByteArray(b"not a layout"))
    s.setValue("view/refresh_hz", "hello")
    s.sync()
""")


def test_a_pickle_in_the_settings_file_never_runs_and_bad_values_are_ignored(tmp_path, marker, caplog):
    from PySide6 import QtCore

    from explorer.gui.settings import byte_array_setting, number_setting, scrub_settings_file

    ini = tmp_path / "NetworkExplorer.conf"
    r = subprocess.run([sys.executable, "-c", WRITE_PAYLOAD, str(ini), str(ROOT / "tests"), str(marker)],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert "PyObjectWrapper" in ini.read_text(errors="replace")  # what a crafted file holds
    assert scrub_settings_file(ini) == ["window/geometry"]
    settings = QtCore.QSettings(str(ini), QtCore.QSettings.Format.IniFormat)
    assert settings.value("window/geometry") is None
    assert byte_array_setting(settings, "window/state") == QtCore.QByteArray(b"not a layout")
    assert number_setting(settings, "view/refresh_hz", 0.1, 1000) is None
    assert "view/refresh_hz must be a number" in caplog.text

    ini.write_text("[window]\ngeometry=hello\n")
    plain = QtCore.QSettings(str(ini), QtCore.QSettings.Format.IniFormat)
    plain.sync()
    assert scrub_settings_file(ini) == []
    assert byte_array_setting(QtCore.QSettings(str(tmp_path / "other.ini"), QtCore.QSettings.Format.IniFormat),
                              "window/geometry") is None


def test_the_app_start_scrubs_the_settings_file_before_qt_reads_it(tmp_path, marker):
    """In a process of its own (Qt caches a settings file per process): the real start-up path."""
    config = tmp_path / "config"
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(config), QT_QPA_PLATFORM="offscreen")
    ini = config / "NetworkExplorer" / "NetworkExplorer.conf"
    r = subprocess.run([sys.executable, "-c", WRITE_PAYLOAD, str(ini), str(ROOT / "tests"), str(marker)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    read = ("from explorer.gui.settings import open_settings, byte_array_setting\n"
            "s = open_settings()\nprint(s.fileName())\n"
            "print(byte_array_setting(s, 'window/geometry'), byte_array_setting(s, 'window/state'))\n")
    r = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(ini)
    assert "PyObjectWrapper" not in ini.read_text(errors="replace")


# -- a save after a divergence --------------------------------------------------------------------------
def test_going_back_to_good_weights_drops_the_optimisers_later_nan_state():
    """The side-by-side RNN's optimiser had not stepped when the good weights were kept: after a divergence
    puts them back, its NaN state must not stay (Save run would write it)."""
    from explorer.core.families.recurrent.trainer import RecurrentTrainer, RNNConfig

    trainer = RecurrentTrainer(RNNConfig(task="adding", length=5, hidden=4, n_train=64, eval_samples=16,
                                         batch_size=8, device="cpu"))
    good = {k: v.clone() for k, v in trainer.state_tensors().items()}
    assert not any(k.startswith("opt.") for k in good)  # no optimiser has stepped yet
    for _ in range(3):
        trainer.train_step()
    for opt in (trainer.optimizer, trainer.compare_optimizer):
        for group in opt.param_groups:
            for p in group["params"]:
                for v in opt.state.get(p, {}).values():
                    if isinstance(v, torch.Tensor) and v.is_floating_point():
                        v.fill_(float("nan"))
    trainer.compare_optimizer.state[trainer.compare_model.V.weight]["exp_avg"] = torch.full_like(
        trainer.compare_model.V.weight, float("nan"))
    trainer.load_state_tensors({k: v.clone() for k, v in good.items()})
    saved = trainer.state_tensors()
    assert all(bool(torch.isfinite(t).all()) for t in saved.values() if t.is_floating_point())


def test_an_idx_file_whose_dimensions_overflow_64_bits_is_refused_naming_it(tmp_path):
    """2**32-1 in each of 4 dimensions: their product wrapped round in 64 bits and passed the size check."""
    import struct

    from explorer.core.data.datasets import DataError, read_idx

    path = tmp_path / "images.idx"
    path.write_bytes(struct.pack(">HBB", 0, 0x08, 4) + struct.pack(">4I", *[2**32 - 1] * 4) + b"\0" * 16)
    with pytest.raises(DataError, match=r"images.idx: truncated: expected \d{20,} bytes"):
        read_idx(path)


def test_a_spec_whose_settings_are_refused_is_named_by_train(tmp_path):
    from explorer.core.spec.network import load_preset, spec_to_dict

    spec = spec_to_dict(load_preset("lenet5"))
    spec["hparams"] = {"lr": "x"}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    rc, _, err = cli("train", "cnn", "--spec", str(path), "--epochs", "1", "--quiet")
    assert_refused(rc, err, f"{path}: learning rate must be a positive number, got 'x'")


def test_an_output_that_is_a_device_or_a_fifo_is_never_replaced(tmp_path, capsys):
    """As root, ``snapshot --out /dev/full`` replaced the device with a PNG and exited 0: an output path that
    exists and is not a regular file is refused, by the command line first and by every atomic write."""
    import os

    from explorer.cli import main
    from explorer.core.atomic import atomic_write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write_text(fifo, "x")
    assert fifo.is_fifo()
    for out in ("/dev/null", str(fifo)):
        assert main(["snapshot", "rbm", "--steps", "1", "--out", out]) == 2
        assert capsys.readouterr().err.strip() == (f"explorer: error: --out {out}: not a regular file "
                                                   "(a device, pipe or socket), refused")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
