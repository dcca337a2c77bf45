"""Options and files that imply impossible work are refused before the work, in one line naming the option or
file and the limit (exit 2); an internal error exits 3 and says where its traceback is; a snapshot that
cannot be written exits cleanly."""

import gzip
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

from explorer.cli import main
from explorer.core import limits
from explorer.core.data.datasets import DataError, read_idx
from explorer.core.data.imagefolder import load_image_folder
from explorer.core.data.images import read_image, write_png
from explorer.core.data.scenes import load_mask_folder
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.spec.network import LayerSpec, NetworkSpec, SpecError, infer, spec_from_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_NOTE = "(set NETWORK_EXPLORER_MEMORY_LIMIT to change it)"


@pytest.fixture
def two_gb(monkeypatch):
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "2G")


def run_cli(args, capsys):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


# -- the memory limit ------------------------------------------------------------------------------------

def test_the_memory_limit_is_a_setting_with_a_default_for_the_machine(monkeypatch):
    monkeypatch.delenv(limits.MEMORY_LIMIT_ENV, raising=False)
    assert limits.memory_limit() == limits.physical_memory() // 2
    assert limits.physical_memory() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for text, value in (("8G", 8 << 30), ("512M", 512 << 20), ("1000000", 1_000_000), ("0.5T", 1 << 39)):
        monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, text)
        assert limits.memory_limit() == value
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="NETWORK_EXPLORER_MEMORY_LIMIT must be a size like 8G"):
        limits.memory_limit()


# -- options that ask for impossible work ------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["train", "mlp", "--hidden", "20000,20000,20000,20000,20000"],
     f"--hidden: hidden layers 20000,20000,20000,20000,20000 would need about 29.9 GB of memory, more than the "
     f"limit of 2.0 GB {LIMIT_NOTE}"),
    (["train", "dbn", "--samples", "100000000"],
     f"--samples 100,000,000 would need about 339.7 GB of memory, more than the limit of 2.0 GB {LIMIT_NOTE}"),
    (["train", "dbn", "--hidden", ""], "--hidden must name at least one layer size, like 64,64,64; got ''"),
    (["train", "lstm", "--n-train", "1000000000"],
     "--n-train must be a whole number between 1 and 10000000, got 1000000000"),
    (["train", "lstm", "--eval-samples", "1000000000"],
     "--eval-samples must be a whole number between 1 and 1000000, got 1000000000"),
    (["train", "lstm", "--n-train", "9000000"],
     f"--n-train: n_train = 9,000,000 sequences of 50 steps would need about 15.7 GB of memory, more than the "
     f"limit of 2.0 GB {LIMIT_NOTE}"),
    (["train", "fcn", "--scenes", "1000000"],
     f"--scenes: n_train = 1,000,000 scenes of 32x32 would need about 22.9 GB of memory, more than the limit of "
     f"2.0 GB {LIMIT_NOTE}"),
    (["snapshot", "rbm", "--size", "100000x100000", "--out", "x.png"],
     "--size must be from 100 to 10000 pixels each way, got '100000x100000'"),
    (["snapshot", "rbm", "--size", "0x0", "--out", "x.png"], "--size must be from 100 to 10000 pixels each way, got '0x0'"),
    (["gui", "--upscale", "9"], "argument --upscale: expected a number from 1 to 4, got 9"),
    (["train", "rbm", "--device", ""], "argument --device: expected cpu, cuda, cuda:N, mps or auto, got an empty name"),
    (["train", "rbm", "--weight-decay", "nan"], "argument --weight-decay: expected a finite number, got nan"),
    (["train", "rbm", "--weight-decay", "inf"], "argument --weight-decay: expected a finite number, got inf"),
    (["train", "rbm", "--momentum=-inf"], "argument --momentum: expected a finite number, got -inf"),
    (["train", "ae", "--noise-level", "nan"], "argument --noise-level: expected a finite number, got nan"),
    (["train", "rbm", "--lr", "inf"], "argument --lr: expected a finite number, got inf"),
    (["train", "rbm", "--out", ""], "--out must name a folder, got an empty path"),
])
def test_impossible_options_are_refused_in_one_line(args, message, capsys, two_gb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli([*args, "--quiet"] if args[0] == "train" else args, capsys)
    assert (rc, err) == (2, f"explorer: error: {message}\n")
    assert out == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("family, need", [("rbm", "468.8 MB"), ("ae", "781.2 MB")])
def test_a_model_past_the_memory_limit_is_refused_before_it_is_built(family, need, monkeypatch, capsys):
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "100M")
    rc, out, err = run_cli(["train", family, "--hidden", "20000", "--upscale", "4", "--quiet"], capsys)
    assert (rc, err) == (2, f"explorer: error: --hidden: hidden units 20000 on 1024 inputs would need about {need} "
                            f"of memory, more than the limit of 100.0 MB {LIMIT_NOTE}\n")


def test_json_runs_report_errors_as_json_too(capsys):
    rc, out, err = run_cli(["train", "rbm", "--weight-decay", "nan", "--json"], capsys)
    assert rc == 2
    assert json.loads(out) == {"error": "argument --weight-decay: expected a finite number, got nan"}
    assert err == "explorer: error: argument --weight-decay: expected a finite number, got nan\n"


def test_an_output_that_cannot_be_written_is_refused_before_training(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    rc, out, err = run_cli(["train", "rbm", "--quiet", "--out", str(a_file / "run")], capsys)
    assert (rc, err) == (2, f"explorer: error: --out {a_file / 'run'}: cannot be written ({a_file} is not a folder)\n")
    rc, out, err = run_cli(["train", "rbm", "--quiet", "--out", str(a_file)], capsys)
    assert (rc, err) == (2, f"explorer: error: --out {a_file}: not a folder\n")
    rc, out, err = run_cli(["snapshot", "rbm", "--out", str(tmp_path)], capsys)
    assert (rc, err) == (2, f"explorer: error: --out {tmp_path}: is a folder, expected a file name\n")
    rc, out, err = run_cli(["train", "dbn", "--quiet", "--samples-out", str(a_file / "s.png")], capsys)
    assert (rc, err) == (2, f"explorer: error: --samples-out {a_file / 's.png'}: cannot be written "
                            f"({a_file} is not a folder)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_train_out_into_a_folder_of_other_files_makes_a_run_folder_inside(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    rc, out, err = run_cli(["train", "rbm", "--dataset", "bars", "--hidden", "6", "--epochs", "1", "--quiet",
                            "--json", "--out", str(tmp_path)], capsys)
    assert rc == 0
    saved = json.loads(out)["out"]
    assert os.path.dirname(saved) == str(tmp_path) and os.path.basename(saved).startswith("network-explorer-run-")
    assert (tmp_path / "notes.txt").read_text() == "mine"  # never replaced by the run


def test_run_json_view_settings_are_bounded():
    with pytest.raises(ValueError, match=r"^dream chains must be a whole number between 1 and 1024, got 1000000000$"):
        RBMConfig(n_dream=10**9).validate()
    with pytest.raises(ValueError, match=r"^dream steps must be a whole number between 1 and 1000, got 10000000$"):
        RBMConfig.from_dict({"dream_steps": 10**7}).validate()
    with pytest.raises(ValueError, match=r"^upscale factor must be a whole number between 1 and 4, got 9$"):
        RBMConfig(upscale=9).validate()


# -- internal errors ---------------------------------------------------------------------------------------

def test_an_internal_error_exits_3_and_says_where_the_traceback_is(tmp_path, monkeypatch, capsys):
    import explorer.cli.inspect as inspect_cli
    from explorer.core.logs import configure_logging

    monkeypatch.setenv("NETWORK_EXPLORER_LOG_DIR", str(tmp_path / "logs"))

    def broken(args):
        raise KeyError("a fault of the app")

    monkeypatch.setattr(inspect_cli, "cmd_inspect", broken)
    try:
        rc, out, err = run_cli(["inspect", str(tmp_path)], capsys)
        log = tmp_path / "logs" / "explorer.log"
        assert rc == 3
        assert err == (f"explorer: internal error (KeyError: 'a fault of the app'); the full traceback is in "
                       f"{log}\n")
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and "KeyError: 'a fault of the app'" in text
    finally:
        monkeypatch.undo()
        configure_logging(role="cli")  # the log back where it was


def test_control_characters_in_a_message_are_escaped(capsys):
    rc, out, err = run_cli(["spec", "check", "no-such-\x1b[2J-file.json"], capsys)
    assert rc == 2 and "\x1b" not in err and "no-such-\\x1b[2J-file.json" in err and len(err.splitlines()) == 1


# -- files that imply impossible work ------------------------------------------------------------------------

def idx_gz(path, dims, payload=b""):
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(header + payload))
    return path


def test_a_gzip_idx_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "100M")
    p = idx_gz(tmp_path / "train-images-idx3-ubyte.gz", (100000, 100, 100), b"\0" * 1000)
    with pytest.raises(limits.LimitError) as info:
        read_idx(p)
    assert str(info.value) == (f"{p}: an IDX file of shape (100000, 100, 100) once decompressed would need about "
                               f"1.9 GB of memory, more than the limit of 100.0 MB {LIMIT_NOTE}")


def test_a_gzip_idx_that_grows_past_its_header_is_not_read_to_the_end(tmp_path):
    p = idx_gz(tmp_path / "labels.gz", (10,), b"\0" * (50 << 20))  # 50 MB of zeros in about 50 kB
    assert p.stat().st_size < 100_000
    with pytest.raises(DataError, match=r"trailing bytes after the data for shape \(10,\)"):
        read_idx(p)


def test_the_cli_names_an_idx_bomb(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "100M")
    bomb = idx_gz(tmp_path / "train-images-idx3-ubyte.gz", (100000, 100, 100))
    idx_gz(tmp_path / "train-labels-idx1-ubyte.gz", (100000,))
    idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", (10, 28, 28), b"\0" * 7840)
    idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", (10,), b"\0" * 10)
    rc, out, err = run_cli(["train", "rbm", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"], capsys)
    assert rc == 2 and err.startswith(f"explorer: error: {bomb}: an IDX file of shape (100000, 100, 100)")
    assert len(err.splitlines()) == 1


def png_header_only(path, width, height):
    """A PNG whose header promises ``width`` x ``height`` grey pixels, with one row of data: a few bytes that a
    decoder would expand to width * height bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [8000, 100_000])  # past our limit only; past Pillow's own bomb error too
def test_a_decompression_bomb_png_is_refused_by_name(tmp_path, side):
    p = png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(DataError) as info:
        read_image(p)
    if side == 8000:
        assert str(info.value) == f"{p}: 8000x8000 pixels, more than the limit of 50,000,000 pixels per image"
    else:
        assert str(info.value) == f"{p}: more than the limit of 50,000,000 pixels per image"


def test_a_bomb_in_an_image_folder_is_skipped_and_named(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            write_png(tmp_path / cls / f"{i}.png", rng.integers(0, 255, (8, 8)))
    png_header_only(tmp_path / "a" / "bomb.png", 100_000, 100_000)
    ds = load_image_folder(tmp_path)
    assert ds.train_x.shape[0] + ds.test_x.shape[0] == 6
    assert ds.skipped == (f"{tmp_path / 'a' / 'bomb.png'}: more than the limit of 50,000,000 pixels per image",)


def test_a_bomb_in_a_mask_folder_is_skipped_and_named(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(3):
        write_png(tmp_path / "images" / f"{i}.png", np.full((8, 8), 100))
        write_png(tmp_path / "masks" / f"{i}.png", np.zeros((8, 8)))
    png_header_only(tmp_path / "images" / "3.png", 100_000, 100_000)
    write_png(tmp_path / "masks" / "3.png", np.zeros((8, 8)))
    ds = load_mask_folder(tmp_path, 8, 8, 4)
    assert ds.train_x.shape[0] + ds.test_x.shape[0] == 3
    assert ds.note.startswith("3 of 4 pairs usable; skipped: images/3.png: more than the limit of 50,000,000 "
                              "pixels per image")


# -- specs ---------------------------------------------------------------------------------------------------

def huge_activation_spec():
    """Few parameters (one 3x3 convolution of 512 channels), ~100 GB of activations at batch size 32."""
    return {"format": "network-explorer-spec", "version": 1, "family": "cnn", "input_shape": [1, 1024, 1024],
            "hparams": {"batch_size": 32},
            "layers": [{"type": "Conv2d", "params": {"out_channels": 512, "kernel_size": 3, "stride": 1,
                                                     "padding": 1}},
                       {"type": "MaxPool2d", "params": {"kernel_size": 1024, "stride": 1024}},
                       {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 10}}]}


def test_a_spec_whose_activations_need_tens_of_gb_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "8G")
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(huge_activation_spec()))
    expected = ("Network: training it (batch size 32, 536,871,946 activations per example) would need about "
                f"192.0 GB of memory, more than the limit of 8.0 GB {LIMIT_NOTE}")
    assert infer(spec_from_dict(huge_activation_spec())).first_error == expected  # what the builder shows
    rc, out, err = run_cli(["spec", "check", str(path)], capsys)
    assert (rc, err) == (2, f"explorer: error: {path}: {expected}\n")
    rc, out, err = run_cli(["train", "cnn", "--spec", str(path), "--quiet"], capsys)
    assert rc == 2 and str(path) in err and expected in err and len(err.splitlines()) == 1


def test_a_spec_of_a_million_layers_is_refused_early(tmp_path, capsys):
    relu = {"type": "ReLU"}
    d = {**huge_activation_spec(), "input_shape": [4], "layers": [relu] * 10**6}
    with pytest.raises(SpecError, match=r"^layers: 1,000,000 layers is more than the limit of 1,000$"):
        spec_from_dict(d)
    layers = [LayerSpec("ReLU", {})] * 10**6
    assert infer(NetworkSpec("mlp", (4,), layers)).first_error == \
        "Network: 1,000,000 layers is more than the limit of 1,000"
    path = tmp_path / "long.json"
    path.write_text(json.dumps({**d, "layers": [relu] * 1001}))
    rc, out, err = run_cli(["spec", "check", str(path)], capsys)
    assert (rc, err) == (2, f"explorer: error: {path}: layers: 1,001 layers is more than the limit of 1,000\n")


# -- snapshot --out that cannot be written: a clean exit, every time -------------------------------------

SNAPSHOT = textwrap.dedent("""
    import sys
    import explorer.cli as cli
    cli.check_out_options = lambda args: None  # past the early check: the PNG fails after training
    sys.exit(cli.main(["snapshot", "rbm", "--dataset", "bars", "--hidden", "6", "--steps", "3",
                       "--size", "800x700", "--out", sys.argv[1]]))
""")


def test_a_snapshot_that_cannot_be_written_exits_cleanly_every_time(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "QT_QPA_PLATFORM": "offscreen"}
    runs = []
    for i in range(4):
        out = tmp_path / str(i) / "taken.png"
        out.mkdir(parents=True)  # a folder where the PNG should go: the rename onto it fails once the window is up
        runs.append((out, subprocess.Popen([sys.executable, "-c", SNAPSHOT, str(out)], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, env=env)))
    for out, proc in runs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 2, stderr  # never 139: no crash at exit after the error
        assert stderr.splitlines()[-1] == (f"explorer: error: {out}: not a regular file (a device, pipe, socket "
                                           "or folder), refused")
        assert sorted(p.name for p in out.parent.iterdir()) == ["taken.png"]


def test_a_failed_training_is_one_line_and_json(monkeypatch, capsys, tmp_path):
    from explorer.core.families.rbm.trainer import RBMTrainer

    def failing_step(self):
        raise ValueError("the loss is NaN")

    monkeypatch.setattr(RBMTrainer, "train_step", failing_step)
    rc, out, err = run_cli(["train", "rbm", "--dataset", "bars", "--hidden", "6", "--epochs", "1", "--quiet",
                            "--json", "--out", str(tmp_path / "run")], capsys)
    assert rc == 2
    message = json.loads(out)["error"]
    assert message.startswith("training failed: ") and "the loss is NaN" in message
    assert err == f"explorer: error: {message}\n"
    assert list(tmp_path.iterdir()) == []  # nothing saved
