"""The model description of a user's own model (explorer.core.watch.discover.describe_model): its layers,
their kinds, parameters, output shapes and geometry, the layers with parameters, through wrappers; and the
probe's forward leaves the model and the random generators as they were."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from explorer.core.watch.discover import (
    LayerLookup,
    describe_model,
    is_segmentation,
    layer_modules,
    probe_mode,
    unwrap,
)


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2)),
        nn.Flatten(),
        nn.Sequential(nn.Linear(16 * 5 * 5, 32), nn.Tanh(), nn.Dropout(0.5), nn.Linear(32, 10)),
    )


def conv_geometry(k, s=1, p=0, d=1):
    return {"kernel": [k, k], "stride": [s, s], "padding": [p, p], "dilation": [d, d]}


def test_a_cnn_is_described_layer_by_layer():
    model = small_cnn()
    d = describe_model(model, torch.randn(8, 1, 28, 28), name="MyCNN")
    assert d["name"] == "MyCNN"
    assert d["framework"] == f"torch {torch.__version__.split('+')[0]}"
    assert d["device"] == "cpu" and d["control"] is False
    assert d["input_shape"] == [8, 1, 28, 28] and d["output_shape"] == [8, 10]
    assert d["segmentation"] is False
    assert d["layers"] == [
        {"name": "0.0", "type": "Conv2d", "kind": "conv", "params": 156, "out_shape": [8, 6, 28, 28], "depth": 2,
         "geometry": conv_geometry(5, p=2)},
        {"name": "0.1", "type": "ReLU", "kind": "activation", "params": 0, "out_shape": [8, 6, 28, 28], "depth": 2},
        {"name": "0.2", "type": "MaxPool2d", "kind": "pool", "params": 0, "out_shape": [8, 6, 14, 14], "depth": 2,
         "geometry": conv_geometry(2, s=2)},
        {"name": "0.3", "type": "Conv2d", "kind": "conv", "params": 16 * (6 * 25 + 1), "out_shape": [8, 16, 10, 10],
         "depth": 2, "geometry": conv_geometry(5)},
        {"name": "0.4", "type": "Sigmoid", "kind": "activation", "params": 0, "out_shape": [8, 16, 10, 10],
         "depth": 2, "saturating": True},
        {"name": "0.5", "type": "AvgPool2d", "kind": "pool", "params": 0, "out_shape": [8, 16, 5, 5], "depth": 2,
         "geometry": conv_geometry(2, s=2)},
        {"name": "1", "type": "Flatten", "kind": "other", "params": 0, "out_shape": [8, 400], "depth": 1},
        {"name": "2.0", "type": "Linear", "kind": "linear", "params": 400 * 32 + 32, "out_shape": [8, 32], "depth": 2},
        {"name": "2.1", "type": "Tanh", "kind": "activation", "params": 0, "out_shape": [8, 32], "depth": 2,
         "saturating": True},
        {"name": "2.2", "type": "Dropout", "kind": "other", "params": 0, "out_shape": [8, 32], "depth": 2},
        {"name": "2.3", "type": "Linear", "kind": "linear", "params": 330, "out_shape": [8, 10], "depth": 2},
    ]
    assert d["grad_layers"] == ["0.0", "0.3", "2.0", "2.3"]
    json.dumps(d)  # plain values only: it crosses the wire as JSON


def test_without_a_probe_no_shapes_and_no_forward():
    calls = []
    model = small_cnn()
    model.register_forward_hook(lambda *a: calls.append(1))
    d = describe_model(model)
    assert not calls
    assert d["input_shape"] is None and d["output_shape"] is None and d["segmentation"] is False
    assert [layer["out_shape"] for layer in d["layers"]] == [None] * 11
    assert [layer["name"] for layer in d["layers"]][:3] == ["0.0", "0.1", "0.2"]
    assert d["name"] == "Sequential"


class Mixed(nn.Module):
    """Layers registered in another order than the forward calls them, one never called, a recurrent module
    (listed whole), a norm, a subclassed activation, a parameter of the model itself."""

    class MyReLU(nn.ReLU):
        pass

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2 * 12, 3)
        self.unused = nn.Linear(3, 3)
        self.rnn = nn.LSTM(4, 12, num_layers=2, bidirectional=True, batch_first=True)
        self.norm = nn.LayerNorm(4)
        self.act = Mixed.MyReLU()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        out, _ = self.rnn(self.norm(x))
        return self.act(self.head(out[:, -1])) * self.scale


def test_layers_follow_the_forward_and_recurrent_modules_are_whole():
    model = Mixed()
    d = describe_model(model, torch.randn(3, 7, 4))
    names = [layer["name"] for layer in d["layers"]]
    assert names == ["norm", "rnn", "head", "act", "unused"]  # called first, the one never called last
    by = {layer["name"]: layer for layer in d["layers"]}
    assert by["rnn"] == {"name": "rnn", "type": "LSTM", "kind": "recurrent", "params": sum(
        p.numel() for p in model.rnn.parameters()), "out_shape": [3, 7, 24], "depth": 1, "cell": "lstm",
        "num_layers": 2, "bidirectional": True, "hidden_size": 12}
    assert by["norm"]["kind"] == "norm" and by["norm"]["params"] == 8
    assert by["act"]["type"] == "ReLU" and by["act"]["kind"] == "activation" and "saturating" not in by["act"]
    assert by["unused"]["out_shape"] is None
    # the model's own parameter: a layer with parameters, named by its class, though not a listed layer
    assert d["grad_layers"] == ["Mixed", "head", "unused", "rnn", "norm"]
    assert d["output_shape"] == [3, 3]


def test_gru_and_rnn_cells():
    model = nn.Sequential(nn.GRU(3, 5, batch_first=True))
    d = describe_model(model)
    assert d["layers"][0]["cell"] == "gru" and d["layers"][0]["num_layers"] == 1
    assert d["layers"][0]["bidirectional"] is False and d["layers"][0]["hidden_size"] == 5
    assert describe_model(nn.Sequential(nn.RNN(3, 5, nonlinearity="relu")))["layers"][0]["cell"] == "rnn"


def test_a_model_that_is_one_layer_is_listed_under_its_class_name():
    d = describe_model(nn.Linear(3, 2), torch.randn(4, 3))
    assert d["layers"] == [{"name": "Linear", "type": "Linear", "kind": "linear", "params": 8, "out_shape": [4, 2],
                            "depth": 1}]
    assert d["grad_layers"] == ["Linear"]


def test_geometry_of_convolutions_and_poolings():
    model = nn.Sequential(nn.Conv2d(1, 2, (3, 5), stride=(1, 2), padding=(1, 2), dilation=(2, 1)),
                          nn.Conv2d(2, 2, 3, padding="same", dilation=2), nn.Conv2d(2, 2, 3, padding="valid"),
                          nn.MaxPool2d(3, stride=None, padding=1, dilation=2), nn.AvgPool2d((2, 3), stride=1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Unflatten(1, (2, 1)),
                          nn.Conv1d(2, 3, 1), nn.MaxPool1d(1), nn.ConvTranspose1d(3, 2, 2, stride=2))
    d = describe_model(model)  # the geometry needs no probe
    geo = [layer.get("geometry") for layer in d["layers"]]
    assert geo[0] == {"kernel": [3, 5], "stride": [1, 2], "padding": [1, 2], "dilation": [2, 1]}
    assert geo[1] == {"kernel": [3, 3], "stride": [1, 1], "padding": [2, 2], "dilation": [2, 2]}  # "same"
    assert geo[2] == conv_geometry(3)  # "valid"
    assert geo[3] == {"kernel": [3, 3], "stride": [3, 3], "padding": [1, 1], "dilation": [2, 2]}
    assert geo[4] == {"kernel": [2, 3], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1]}
    assert geo[5] is None and d["layers"][5]["kind"] == "pool"  # adaptive: no fixed geometry
    assert geo[8] == {"kernel": [1], "stride": [1], "padding": [0], "dilation": [1]}
    assert geo[9] == {"kernel": [1], "stride": [1], "padding": [0], "dilation": [1]}
    assert d["layers"][10]["kind"] == "conv" and d["layers"][10]["type"] == "ConvTranspose1d"
    assert geo[10] == {"kernel": [2], "stride": [2], "padding": [0], "dilation": [1]}
    json.dumps(d)


def test_lazy_layers_are_counted_after_the_probe():
    model = nn.Sequential(nn.LazyLinear(5))
    assert describe_model(model)["layers"][0]["params"] == 0
    assert describe_model(model, torch.randn(2, 7))["layers"][0]["params"] == 7 * 5 + 5


def test_segmentation_is_an_output_of_classes_at_the_inputs_size():
    seg = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    assert describe_model(seg, torch.randn(2, 3, 16, 16))["segmentation"] is True
    assert describe_model(nn.Sequential(nn.Conv2d(3, 1, 3, padding=1)), torch.randn(2, 3, 16, 16))[
        "segmentation"] is False  # one channel: a picture, not classes
    assert describe_model(nn.Sequential(nn.Conv2d(3, 4, 3)), torch.randn(2, 3, 16, 16))["segmentation"] is False
    assert is_segmentation([2, 3, 8, 8], [2, 5, 8, 8]) and not is_segmentation([2, 8], [2, 5, 8, 8])


class DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1)

    def forward(self, x, scale):
        return {"out": self.conv(x) * scale, "aux": torch.zeros(1)}


def test_a_tuple_probe_and_a_dict_output():
    d = describe_model(DictOut(), (torch.randn(2, 1, 6, 6), torch.tensor(2.0)))
    assert d["input_shape"] == [2, 1, 6, 6] and d["output_shape"] == [2, 3, 6, 6] and d["segmentation"] is True


def test_data_parallel_is_described_by_its_inner_module():
    model = small_cnn()
    x = torch.randn(4, 1, 28, 28)
    plain = describe_model(model, x)
    wrapped = describe_model(nn.DataParallel(model), x)
    assert wrapped == plain
    assert unwrap(nn.DataParallel(model)) is model


def test_distributed_data_parallel_is_described_by_its_inner_module():
    import torch.distributed as dist

    if not dist.is_available():
        pytest.fail("torch.distributed is part of every torch build this project supports")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        ddp = nn.parallel.DistributedDataParallel(model)
        d = describe_model(ddp, torch.randn(2, 3))
        assert [layer["name"] for layer in d["layers"]] == ["0", "1"]
        assert d["grad_layers"] == ["0"]
        assert d == describe_model(model, torch.randn(2, 3))
    finally:
        dist.destroy_process_group()


class Noisy(nn.Module):
    """Draws random numbers in its forward whatever its mode (as some models' noise layers do)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.fc(x)) + torch.rand_like(x)


def test_the_probe_forward_leaves_flags_generators_and_hooks_as_they_were():
    model = Noisy()
    model.train()
    model.fc.eval()  # a module's own flag, different from its parent's
    seen = []
    model.fc.register_forward_hook(lambda m, a, o: seen.append(m.training))
    probe = torch.randn(2, 3)
    state = torch.get_rng_state()
    describe_model(model, probe)
    assert seen == [False]  # the forward ran in eval mode
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training is True and model.drop.training is True and model.fc.training is False
    assert len(model.fc._forward_hooks) == 1  # the user's hook stays, the description's are gone
    assert not model.drop._forward_hooks and not model._forward_hooks


def test_flags_are_restored_when_the_forward_fails():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            self.fc(x)
            raise RuntimeError("shapes do not fit")

    model = Broken()
    with pytest.raises(RuntimeError, match="shapes do not fit"):
        describe_model(model, torch.randn(2, 3))
    assert model.training and model.fc.training
    assert not model.fc._forward_hooks


def test_probe_mode_turns_gradients_off():
    model = nn.Linear(2, 2)
    with probe_mode(model):
        assert not torch.is_grad_enabled() and not model.training
    assert torch.is_grad_enabled() and model.training


def test_layer_modules_do_not_list_a_recurrent_modules_insides():
    class Cell(nn.LSTM):
        def __init__(self):
            super().__init__(2, 3)
            self.extra = nn.Linear(3, 3)  # a child: still the recurrent module is listed whole

    model = nn.Sequential(Cell(), nn.Linear(3, 1))
    assert [n for n, _ in layer_modules(model)] == ["0", "1"]


def test_the_layer_lookup_follows_a_layer_replaced_added_or_deleted_and_walks_only_then(monkeypatch):
    from explorer.core.watch import discover

    walks = []
    walk = discover.modules_by_name
    monkeypatch.setattr(discover, "modules_by_name", lambda model: (walks.append(1), walk(model))[1])
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))
    lookup = LayerLookup(nn.DataParallel(model))
    first = lookup.modules()
    assert list(first) == ["Sequential", "0", "1", "1.0", "1.1"] and first["1.1"] is model[1][1]
    assert lookup.modules() is first and len(walks) == 1  # nothing changed: no walk
    model[1][1] = nn.Linear(4, 2)  # the user replaces a layer deep down while it trains
    assert lookup.modules()["1.1"] is model[1][1] and len(walks) == 2
    del model[1][0]
    assert "1.1" not in lookup.modules() and lookup.modules()["1.0"] is model[1][0] and len(walks) == 3
    lookup.model = nn.DataParallel(nn.Sequential(nn.Tanh()))  # another model under the wrapper
    assert list(lookup.modules()) == ["Sequential", "0"] and len(walks) == 4


def test_a_module_with_a_train_method_of_its_own_has_it_called_by_the_probe_forward():
    """A plain tree's flags are set directly; a module that overrides train() (to keep its batch norms
    frozen, say) gets eval() called as usual, and every flag comes back as it was."""

    class FrozenNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.norm = nn.Linear(3, 3), nn.BatchNorm1d(3)
            self.calls: list[bool] = []

        def train(self, mode: bool = True):
            self.calls.append(mode)
            super().train(mode)
            self.norm.eval()  # frozen, whatever the mode
            return self

        def forward(self, x):
            return self.norm(self.fc(x))

    model = nn.Sequential(FrozenNorm(), nn.ReLU())
    model.train()
    seen = []
    model[0].fc.register_forward_hook(lambda m, a, o: seen.append(m.training))
    describe_model(model, torch.randn(2, 3))
    assert model[0].calls == [True, False] and seen == [False]
    assert [m.training for m in model.modules()] == [True, True, True, False, True]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_torchscript_submodule_runs_the_probe_in_eval_mode_and_trains_on_after_it():
    """A scripted module keeps its training flag in C++ (its own __setattr__ sets it there): the probe
    forward goes through eval() and the flags' return through it, so its dropout is off for the probe, its
    batch norm's statistics stay, and both are back in training mode after."""
    torch.manual_seed(0)
    scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)))
    model = nn.Sequential(scripted, nn.ReLU())
    model.train()
    x = torch.randn(8, 4)
    running_mean = scripted[1].running_mean.clone()
    with probe_mode(model):
        assert torch.equal(model(x), model(x))  # no dropout
    assert torch.equal(scripted[1].running_mean, running_mean)
    assert all(m.training for m in model.modules()) and scripted._c.getattr("training") is True
    assert not torch.equal(model(x), model(x))  # its dropout is on again
