"""``explorer inspect`` checks a run's weights against its model without its data: MNIST-shaped runs and
image-folder runs are checked from the settings and the data shape in run.json, never loading the data."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import explorer.core.families.base as families_base
from explorer.cli import main
from explorer.core.data.datasets import Dataset
from explorer.core.data.images import write_png
from explorer.core.engine.session import TrainingSession
from explorer.core.families.cnn.trainer import CNNConfig, CNNTrainer
from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.persist.inspect import InspectError, inspect_path
from explorer.core.persist.runfolder import save_run

CHECKED = "weights (weights.safetensors) (shapes checked against the model; its data was not loaded):"
NOT_CHECKED = "weights (weights.safetensors) (not checked against the model: its data is not bundled; export checks it):"


@pytest.fixture(autouse=True)
def no_data_loading(monkeypatch):
    """Any attempt to load a data set by name fails the test: inspect must not load the data."""
    def refuse(*args, **kwargs):
        raise AssertionError("inspect loaded a data set")
    monkeypatch.setattr(families_base, "load_dataset", refuse)


def _mnist_shaped(n: int = 20) -> Dataset:
    """Random 28x28 images with labels 0..9, named mnist: what a run on MNIST records, without MNIST's files."""
    rng = np.random.default_rng(0)
    x = rng.random((n, 784), dtype=np.float32)
    y = np.arange(n, dtype=np.int64) % 10
    return Dataset("mnist", x, y, x[:10].copy(), y[:10].copy(), (28, 28))


def _save(trainer, path):
    session = TrainingSession(trainer)
    try:
        session.step(2)
        session.wait(60)
        return save_run(session, path)
    finally:
        session.close()


def _replace_tensor(run, name, tensor):
    """Rewrite the run's weights with ``name`` replaced by ``tensor`` (the family's metadata kept)."""
    weights = run / "weights.safetensors"
    tensors = load_file(str(weights))
    tensors[name] = tensor
    save_file(tensors, str(weights), metadata={"family": json.loads((run / "run.json").read_text())["family"],
                                              "format": "network-explorer-run"})
    return weights


@pytest.fixture
def mnist_rbm(tmp_path):
    return _save(RBMTrainer(RBMConfig(dataset="mnist", hidden=12, device="cpu"), dataset=_mnist_shaped()),
                 tmp_path / "rbm")


@pytest.fixture
def mnist_mlp(tmp_path):
    return _save(MLPTrainer(MLPConfig(dataset="mnist", hidden=[16], device="cpu"), dataset=_mnist_shaped()),
                 tmp_path / "mlp")


@pytest.fixture
def folder_cnn(tmp_path):
    """A LeNet-5 trained on a folder of 3 classes of 12x12 colour images; the folder is gone when inspected."""
    folder = tmp_path / "pictures"
    rng = np.random.default_rng(1)
    for name in ("cat", "dog", "fox"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            write_png(folder / name / f"{i}.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    run = _save(CNNTrainer(CNNConfig(dataset="folder", image_folder=str(folder), device="cpu")), tmp_path / "cnn")
    shutil.rmtree(folder)
    return run


def test_run_json_records_what_the_model_shapes_depend_on(mnist_mlp, folder_cnn):
    ds = json.loads((mnist_mlp / "run.json").read_text())["dataset"]
    assert ds == {"name": "mnist", "image_shape": [28, 28], "channels": 1, "n_classes": 10, "n_train": 20,
                  "n_test": 10}
    ds = json.loads((folder_cnn / "run.json").read_text())["dataset"]
    assert ds == {"name": "folder", "image_shape": [12, 12], "channels": 1, "n_classes": 3, "n_train": 6,
                  "n_test": 3}


def test_mnist_run_that_fits_is_checked_without_its_data(mnist_rbm, mnist_mlp, capsys):
    text = inspect_path(mnist_rbm)
    assert "data: mnist (28x28), 20 train / 10 held-out" in text
    assert CHECKED in text.splitlines()
    assert "  W                            F32   784x12" in text.splitlines()
    assert CHECKED in inspect_path(mnist_mlp).splitlines()
    assert main(["inspect", str(mnist_mlp)]) == 0
    assert "  layer0.weight                F32   16x784" in capsys.readouterr().out.splitlines()


def test_mnist_run_whose_weights_do_not_fit_exits_2_in_one_line(mnist_rbm, mnist_mlp, capsys):
    weights = _replace_tensor(mnist_rbm, "W", torch.zeros(64, 12))  # weights of an 8x8 run
    with pytest.raises(InspectError) as caught:
        inspect_path(mnist_rbm)
    assert str(caught.value) == (f"{weights}: tensor 'W' has shape 64x12; the run's rbm model needs 784x12 "
                                 "(for data of shape 28x28, run.json's dataset.image_shape)")
    weights = _replace_tensor(mnist_mlp, "layer1.bias", torch.zeros(2))
    assert main(["inspect", str(mnist_mlp)]) == 2
    assert capsys.readouterr().err == (f"explorer: error: {weights}: tensor 'layer1.bias' has shape 2; "
                                       "the run's mlp model needs 10 (for data of shape 28x28, run.json's "
                                       "dataset.image_shape)\n")


def test_weights_of_integers_are_refused_without_the_data(mnist_rbm):
    """The same bytes labelled int32: their shape fits, their numbers are not weights."""
    tensors = load_file(str(mnist_rbm / "weights.safetensors"))
    weights = _replace_tensor(mnist_rbm, "W", tensors["W"].view(torch.int32))
    with pytest.raises(InspectError) as caught:
        inspect_path(mnist_rbm)
    assert str(caught.value) == f"{weights}: tensor 'W' holds I32; the run's rbm model needs floating-point numbers"


def test_a_missing_parameter_is_named(mnist_rbm):
    weights = mnist_rbm / "weights.safetensors"
    tensors = load_file(str(weights))
    del tensors["d"]
    save_file(tensors, str(weights), metadata={"family": "rbm"})
    with pytest.raises(InspectError) as caught:
        inspect_path(mnist_rbm)
    assert str(caught.value) == f"{weights}: no tensor 'd'; the run's rbm model needs one of shape 12"


def test_image_folder_run_fits_and_does_not(folder_cnn, capsys):
    text = inspect_path(folder_cnn)
    assert "data: folder (12x12), 6 train / 3 held-out" in text
    assert CHECKED in text.splitlines()
    assert "  model.layers.0.weight        F32   6x1x5x5" in text.splitlines()
    weights = _replace_tensor(folder_cnn, "model.layers.0.weight", torch.zeros(6, 3, 5, 5))
    assert main(["inspect", str(folder_cnn)]) == 2
    assert capsys.readouterr().err == (f"explorer: error: {weights}: tensor 'model.layers.0.weight' has shape "
                                       "6x3x5x5; the run's cnn model needs 6x1x5x5 (for data of shape 12x12, "
                                       "run.json's dataset.image_shape)\n")


def test_an_older_run_json_without_the_shape_is_not_checked(mnist_rbm, mnist_mlp):
    for run, drop in ((mnist_rbm, "image_shape"), (mnist_mlp, "n_classes")):
        _replace_tensor(run, next(iter(load_file(str(run / "weights.safetensors")))), torch.zeros(1))
        info = json.loads((run / "run.json").read_text())
        del info["dataset"][drop]
        (run / "run.json").write_text(json.dumps(info))
        assert NOT_CHECKED in inspect_path(run).splitlines()  # the table shown as stored, as before


def test_a_model_that_cannot_be_built_from_run_json_is_noted(mnist_rbm):
    info = json.loads((mnist_rbm / "run.json").read_text())
    info["dataset"]["image_shape"] = [100000, 100000]  # 10^10 inputs: past the memory limit, nothing allocated
    (mnist_rbm / "run.json").write_text(json.dumps(info))
    line = next(s for s in inspect_path(mnist_rbm).splitlines() if s.startswith("weights (weights.safetensors)"))
    assert line.startswith("weights (weights.safetensors) (not checked against the model: it cannot be built "
                           "from run.json: a stand-in for 10 images of 100000x100000 would need about")


@pytest.mark.parametrize("family, config", [
    ("rbm", {"dataset": "digits", "hidden": 12}),
    ("autoencoder", {"dataset": "digits", "hidden": 12}),
    ("mlp", {"dataset": "digits", "hidden": [16, 8], "init": "rbm"}),
    ("compare", {"dataset": "digits", "hidden": [8]}),
    ("cnn", {"dataset": "digits"}),
    ("fcn", {"n_train": 4, "n_test": 2}),
    ("fcn-compare", {"n_train": 4, "n_test": 2}),
    ("lstm", {"task": "adding", "length": 6, "n_train": 8, "eval_samples": 4}),
    ("rnn", {"task": "text", "length": 6, "eval_samples": 4}),
])
def test_every_familys_model_from_run_json_has_the_saved_shapes(tmp_path, family, config):
    """The shapes derived from run.json are those of the weights the family saves (each of its parameters)."""
    from explorer.core.data.datasets import load_dataset
    from explorer.core.families.registry import FAMILIES
    from explorer.core.persist.inspect import expected_parameter_shapes
    from explorer.core.persist.runfolder import load_run, read_weights_header

    config_cls, trainer_cls = FAMILIES[family].config_cls, FAMILIES[family].trainer_cls
    data = load_dataset("digits") if config.get("dataset") == "digits" else None
    run = _save(trainer_cls(config_cls.from_dict({**config, "device": "cpu"}), dataset=data), tmp_path / "run")
    table, _ = read_weights_header(run / "weights.safetensors")
    expected = expected_parameter_shapes(load_run(run))
    assert isinstance(expected, dict) and expected
    assert {name: tuple(table[name]["shape"]) for name in expected} == expected
    if config.get("dataset") != "digits":  # generated data: checked from run.json too, not regenerated
        assert CHECKED in inspect_path(run).splitlines()
