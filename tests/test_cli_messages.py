"""The command line's answers to bad input, each checked word for word: one line naming the option or the file
and the fault, exit status 2; and the numbers it prints (samples per second) true to what was trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from explorer.cli import main
from explorer.core.data.images import write_png
from explorer.core.engine.trainer import samples_per_step, samples_trained
from explorer.core.persist.schema import MAX_SEED

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "samples" / "lessons" / "rbm-digits-half-trained"  # an RBM on the 8x8 digits, 100 hidden units
DIGITS_TRAIN = 1438  # the bundled digits' training part


def refused(capsys, argv: list[str]) -> str:
    """Run ``argv``; it must exit 2 with one line on stderr and nothing on stdout: that line, less the prefix."""
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert captured.out == "" and captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("explorer: error: ")
    return captured.err.removeprefix("explorer: error: ").rstrip("\n")


def trained_json(capsys, argv: list[str]) -> dict:
    """Run a ``train ... --json --quiet`` command that must succeed; its JSON object."""
    assert main([*argv, "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


# -- options named, with their range ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["rbm", "cnn", "lstm"])
def test_a_seed_past_64_bits_names_seed_and_its_range(capsys, family):
    """It was "Overflow when unpacking long long", from deep in torch."""
    assert refused(capsys, ["train", family, "--seed", "99999999999999999999", "--epochs", "1"]) == (
        "argument --seed: expected a number from 0 to 9223372036854775807, got 99999999999999999999")


def test_the_largest_seed_trains(capsys):
    assert trained_json(capsys, ["train", "rbm", "--seed", str(MAX_SEED), "--epochs", "1", "--hidden", "8"])["steps"] > 0


@pytest.mark.parametrize("argv, message", [
    (["train", "fcn", "--scenes", "100000000"], "--scenes must be a whole number between 1 and 1000000, got 100000000"),
    (["train", "fcn", "--test-scenes", "100000000"],
     "--test-scenes must be a whole number between 1 and 1000000, got 100000000"),
    (["train", "fcn", "--eval-samples", "100000000"],
     "--eval-samples must be a whole number between 1 and 1000000, got 100000000"),
    (["train", "fcn", "--spec", str(ROOT / "samples" / "unet-small.json"), "--scenes", "100000000"],
     "--scenes must be a whole number between 1 and 1000000, got 100000000"),
    (["train", "fcn", "--batch-size", "100000"], "--batch-size must be a whole number between 1 and 65536, got 100000"),
    (["train", "cnn", "--preset", "lenet5", "--eval-samples", "100000000"],
     "--eval-samples must be a whole number between 1 and 1000000, got 100000000"),
    (["snapshot", "skips", "--scenes", "100000000", "--out", "x.png"],
     "--scenes must be a whole number between 1 and 1000000, got 100000000"),
], ids=["scenes", "test-scenes", "eval-samples", "scenes-with-spec", "batch-size", "cnn-preset", "snapshot-skips"])
def test_an_option_out_of_range_is_named_not_the_preset_or_spec(capsys, tmp_path, monkeypatch, argv, message):
    """They read "preset None: n train must be ...", or blamed the spec file for the option's value."""
    monkeypatch.chdir(tmp_path)
    assert refused(capsys, argv) == message


def test_a_fault_of_the_spec_itself_still_names_the_spec(capsys, tmp_path):
    spec = json.loads((ROOT / "samples" / "unet-small.json").read_text())
    spec.setdefault("hparams", {})["batch_size"] = 0
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    assert refused(capsys, ["train", "fcn", "--spec", str(path)]) == (
        f"{path}: batch size must be a whole number between 1 and 65536, got 0")


@pytest.mark.parametrize("task, length", [("adding", "0"), ("adding", "1"), ("adding", "2001"), ("adding", "-3"),
                                          ("sine", "1"), ("recall", "-1"), ("recall", "2001")])
def test_length_has_one_wording_true_for_its_task(capsys, task, length):
    """Three wordings, two of them saying 0 was allowed (it is, for delayed recall only)."""
    if task == "recall":
        what = "between 0 and 2000 for --task recall (the lag between a symbol and its cue)"
    else:
        what = f"between 2 and 2000 for --task {task} (steps per sequence)"
    assert refused(capsys, ["train", "lstm", "--task", task, "--length", length, "--epochs", "1"]) == (
        f"--length must be a whole number {what}, got {length}")


def test_length_aliases_and_a_recall_lag_of_0(capsys):
    assert refused(capsys, ["snapshot", "rnn", "--T", "1", "--out", "x.png"]) == (
        "--length must be a whole number between 2 and 2000 for --task adding (steps per sequence), got 1")
    d = trained_json(capsys, ["train", "lstm", "--task", "recall", "--length", "0", "--hidden", "4", "--n-train", "20",
                              "--eval-samples", "5", "--epochs", "1"])
    assert (d["task"], d["length"]) == ("recall", 0)


# -- samples per second: the samples trained on ---------------------------------------------------------------
def test_samples_trained_counts_partial_and_oversized_batches():
    ten = SimpleNamespace(dataset=SimpleNamespace(n_train=10), config=SimpleNamespace(batch_size=4))
    assert [samples_trained(ten, steps) for steps in range(7)] == [0, 4, 8, 10, 14, 18, 20]  # 4, 4, 2 an epoch
    ten.config.batch_size = 100  # a batch larger than the training set is the training set
    assert samples_trained(ten, 3) == 30
    images = SimpleNamespace(dataset=SimpleNamespace(train_x=np.zeros((7, 2))), config=SimpleNamespace(batch_size=5))
    assert samples_trained(images, 3) == 12
    # the window's rate: per step on average over an epoch (7 images in batches of 5, 2); two networks side by side
    assert samples_per_step(images) == 3.5
    pair = SimpleNamespace(dataset=images.dataset, config=images.config, batch_size=10)
    assert (samples_trained(pair, 3), samples_per_step(pair)) == (24, 7.0)


def _assert_rates(d: dict, samples: int, steps: int, per_epoch: int) -> None:
    """``samples`` trained on in ``steps`` steps; every rate is samples over the epochs' training seconds."""
    assert (d["samples"], d["steps"]) == (samples, steps)
    seconds = sum(row["seconds"] for row in d["history"])
    assert d["samples_per_s"] == pytest.approx(samples / seconds)
    for row in d["history"]:
        assert row["samples_per_s"] * row["seconds"] == pytest.approx(per_epoch)


@pytest.mark.parametrize("batch, steps", [("100000", 2), ("1000", 4)])
def test_rbm_samples_per_s_counts_the_training_set_not_the_batch_size(capsys, batch, steps):
    """A batch of 100,000 on 1,438 digits counted 100,000 samples a step: 5.9 million a second, not 45,000."""
    d = trained_json(capsys, ["train", "rbm", "--batch-size", batch, "--epochs", "2", "--hidden", "8"])
    _assert_rates(d, 2 * DIGITS_TRAIN, steps, DIGITS_TRAIN)


@pytest.mark.parametrize("argv, samples, steps, per_epoch", [
    (["train", "ae", "--batch-size", "1000", "--epochs", "1", "--hidden", "8"], DIGITS_TRAIN, 2, DIGITS_TRAIN),
    (["train", "mlp", "--init", "rbm", "--hidden", "8", "--pretrain-epochs", "1", "--batch-size", "1000",
      "--epochs", "1"], 2 * DIGITS_TRAIN, 4, DIGITS_TRAIN),
    (["train", "dbn", "--hidden", "8", "--batch-size", "1000", "--epochs", "1", "--samples", "4"],
     DIGITS_TRAIN, 2, DIGITS_TRAIN),
    (["train", "lstm", "--n-train", "50", "--eval-samples", "5", "--length", "5", "--hidden", "4", "--epochs", "2"],
     100, 4, 50),
    (["train", "cnn", "--batch-size", "1000", "--eval-samples", "10", "--epochs", "1"], DIGITS_TRAIN, 2, DIGITS_TRAIN),
    (["train", "fcn", "--scenes", "10", "--test-scenes", "4", "--eval-samples", "4", "--batch-size", "4",
      "--epochs", "1"], 10, 3, 10),
], ids=["autoencoder", "mlp-pretrained", "dbn", "lstm", "cnn", "fcn"])
def test_every_family_counts_the_samples_it_trained_on(capsys, argv, samples, steps, per_epoch):
    _assert_rates(trained_json(capsys, argv), samples, steps, per_epoch)


# -- a run whose training images moved ------------------------------------------------------------------------
@pytest.fixture
def moved_folder_run(tmp_path, monkeypatch, capsys):
    """``train cnn --image-folder F --out RUN``, then F moved to F2 (relative paths, as the user typed them)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "F" / name).mkdir(parents=True)
        for i in range(5):
            write_png(tmp_path / "F" / name / f"{i}.png", rng.integers(0, 256, (12, 12), dtype=np.uint8))
    assert main(["train", "cnn", "--image-folder", "F", "--epochs", "1", "--eval-samples", "50", "--quiet",
                 "--out", "RUN"]) == 0
    capsys.readouterr()
    shutil.move(tmp_path / "F", tmp_path / "F2")
    return tmp_path / "RUN"


def test_the_weights_of_a_moved_image_folder_run_export_without_the_images(moved_folder_run, capsys):
    """It was "F: not a folder": the weights need no training images, only the model run.json describes."""
    assert main(["export", "RUN", "--safetensors", "x.st"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wrote x.st (") and out.endswith(" kB): the cnn model at step 1 as safetensors\n")
    saved, exported = load_file("RUN/weights.safetensors"), load_file("x.st")
    assert saved.keys() == exported.keys() and all(torch.equal(saved[k], exported[k]) for k in saved)
    assert main(["inspect", "RUN"]) == 0


def test_onnx_of_a_moved_image_folder_run_says_how_to_point_to_it(moved_folder_run, capsys):
    assert refused(capsys, ["export", "RUN", "--onnx", "m.onnx"]) == (
        "F: the folder this run was trained on (config.image_folder in its run.json) is not there, and --onnx "
        "rebuilds the model on its images: give where it is now with --data-dir DIR (--safetensors needs no data)")
    assert refused(capsys, ["export", "RUN", "--onnx", "m.onnx", "--data-dir", "nowhere"]) == (
        "--data-dir nowhere: not a folder (it names where the run's training images are now)")
    assert main(["export", "RUN", "--onnx", "m.onnx", "--data-dir", "F2"]) == 0  # it was ignored: "F: not a folder"
    assert capsys.readouterr().out.startswith("wrote m.onnx (")


# -- run.json: what inspect passes, export and the window take ---------------------------------------------------
@pytest.fixture
def run(tmp_path):
    out = tmp_path / "run"
    shutil.copytree(LESSON, out)
    return out


def _edit(run: Path, change) -> None:
    info = json.loads((run / "run.json").read_text())
    change(info)
    (run / "run.json").write_text(json.dumps(info))


@pytest.mark.parametrize("change, message", [
    (lambda i: i["config"].__setitem__("dataset", "cifar"),
     'run.json: config.dataset must be one of digits, bars, mnist, fashion-mnist, got "cifar"'),
    (lambda i: i["config"].__setitem__("hiden", 3), "run.json: config.hiden is not a setting of the rbm family "
                                                    "(did you mean hidden?)"),
    (lambda i: i["config"].__setitem__("seed", 10**20),
     "run.json: config.seed must be a whole number between 0 and 9223372036854775807, got 100000000000000000000"),
    (lambda i: i["dataset"].__setitem__("image_shape", [9, 9]),
     "weights.safetensors: tensor 'W' has shape 64x100; the run's rbm model needs 81x100 (for data of shape 9x9, "
     "run.json's dataset.image_shape)"),
], ids=["unknown data set", "unknown setting", "seed past 64 bits", "image shape of other weights"])
def test_inspect_and_export_refuse_the_same_run_json_naming_the_field(capsys, run, change, message):
    """inspect passed these (rc 0, "digits (9x9)"); export took the unknown setting and the wrong shape."""
    _edit(run, change)
    for argv in (["inspect", str(run)], ["export", str(run), "--safetensors", str(run.parent / "w.st")]):
        assert refused(capsys, argv) == f"{run}/{message}"
    assert not (run.parent / "w.st").exists()


# -- empty paths, ONNX files, picture names ------------------------------------------------------------------------
def test_an_empty_path_is_said_to_be_empty(capsys):
    """inspect "" blamed ".": the current folder."""
    assert refused(capsys, ["inspect", ""]) == (
        "the path is empty: name a run folder, a .safetensors weights file or a network .json file")
    assert main(["inspect", "", "--json"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "error": "the path is empty: name a run folder, a .safetensors weights file or a network .json file"}
    assert refused(capsys, ["export", "", "--safetensors", "w.st"]) == "export needs a run folder: the path given is empty"


def test_inspect_of_an_onnx_export_says_what_it_is(capsys, run, tmp_path):
    """It read the graph as safetensors: "header length 8607616173763332104 does not fit"."""
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    assert refused(capsys, ["inspect", str(tmp_path / "m.onnx")]) == (
        f"{tmp_path / 'm.onnx'}: an ONNX graph (what export --onnx writes), which inspect does not read; it reads "
        f"a run folder, a .safetensors weights file or a network .json file")
    (tmp_path / "notes.bin").write_bytes(b"not weights at all")
    assert refused(capsys, ["inspect", str(tmp_path / "notes.bin")]) == (
        f"{tmp_path / 'notes.bin'}: not a run folder, a .safetensors weights file or a network .json file "
        f"(what inspect reads)")


@pytest.mark.parametrize("argv, option, name", [
    (["snapshot", "rbm", "--steps", "1", "--out", "{}"], "--out", "x.jpg"),
    (["train", "dbn", "--epochs", "1", "--samples-out", "{}"], "--samples-out", "d.txt"),
])
def test_a_picture_under_another_extension_is_refused_naming_the_option(capsys, tmp_path, argv, option, name):
    """They wrote PNG data as x.jpg and d.txt without a word."""
    target = tmp_path / name
    assert refused(capsys, [a.format(target) for a in argv]) == (
        f"{option} {target}: the picture is written as PNG; name a .png file")
    assert not target.exists()
