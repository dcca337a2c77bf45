"""Snapshots of a user's own model on its probe (explorer.core.watch.snapshot.take_snapshot) and its gradient
norms (explorer.core.watch.gradients.grad_norms): every array equals what a hand-run forward gives, the
recurrent gates equal the module's own outputs, and nothing of the training is touched (random generators,
train flags, gradients, hooks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explorer.core.watch import snapshot as snapshot_module
from explorer.core.watch.discover import describe_model, modules_by_name
from explorer.core.watch.gradients import grad_norms
from explorer.core.watch.snapshot import HIST_BINS, take_snapshot


def cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10), nn.Tanh())


def snap(model, probe, **kw):
    return take_snapshot(model, probe, describe_model(model, probe), **kw)


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_maps_weights_and_output_equal_a_hand_run_forward():
    model = cnn()
    x = torch.randn(5, 1, 12, 12)
    arrays, scalars = snap(model, x)
    with torch.no_grad():
        c0 = model[0](x)                    # before the in-place ReLU overwrote it
        p2 = model[2](torch.relu(c0))
        c3 = model[3](p2)
        lin = model[6](torch.sigmoid(c3).flatten(1))
        out = torch.tanh(lin)
    np.testing.assert_array_equal(arrays["act/0"], c0[0].numpy())
    np.testing.assert_array_equal(arrays["act/2"], p2[0].numpy())
    np.testing.assert_array_equal(arrays["act/3"], c3[0].numpy())
    np.testing.assert_array_equal(arrays["act/6"], lin.numpy())  # (N, F): every probe sample
    np.testing.assert_array_equal(arrays["weight/0"], model[0].weight.detach().numpy())
    np.testing.assert_array_equal(arrays["weight/3"], model[3].weight.detach().numpy())
    np.testing.assert_array_equal(arrays["weight/6"], model[6].weight.detach().numpy())
    np.testing.assert_array_equal(arrays["input"], x[0].numpy())
    np.testing.assert_array_equal(arrays["output"], out[0].numpy())
    assert set(arrays) == {"input", "output", "act/0", "weight/0", "hist/1", "act/2", "act/3", "weight/3", "hist/4",
                           "act/6", "weight/6", "hist/7"}
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert set(scalars) == {"saturated/1", "saturated/4", "saturated/7"}
    relu, sig = torch.relu(c0), torch.sigmoid(c3)
    assert scalars["saturated/1"] == pytest.approx((relu == 0).float().mean().item())
    assert scalars["saturated/4"] == pytest.approx(((sig < 0.05) | (sig > 0.95)).float().mean().item())
    assert scalars["saturated/7"] == pytest.approx((out.abs() > 0.9).float().mean().item())


def test_histograms_count_the_whole_batch_in_the_kinds_range():
    model = cnn()
    x = torch.randn(5, 1, 12, 12) * 3
    arrays, _ = snap(model, x)
    with torch.no_grad():
        relu = torch.relu(model[0](x))
        sig = torch.sigmoid(model[3](model[2](relu)))
        tanh = torch.tanh(model[6](sig.flatten(1)))
    for name, values, (lo, hi) in (("1", relu, (0.0, relu.max().item())), ("4", sig, (0.0, 1.0)),
                                   ("7", tanh, (-1.0, 1.0))):
        hist = arrays[f"hist/{name}"]
        assert hist.shape == (2, HIST_BINS)
        width = (hi - lo) / HIST_BINS
        np.testing.assert_allclose(hist[0], lo + (np.arange(HIST_BINS) + 0.5) * width, rtol=1e-5, atol=1e-6)
        expected, _ = np.histogram(values.numpy(), bins=HIST_BINS, range=(lo, hi))
        assert hist[1].sum() == values.numel()
        np.testing.assert_array_equal(hist[1], expected)


def test_a_histogram_of_constant_or_non_finite_values():
    hist, dead = snapshot_module.activation_histogram(torch.zeros(3, 4), "rectifier")
    assert hist[1].sum().item() == 12 and hist[1, HIST_BINS // 2].item() == 12 and dead.item() == 1.0
    hist, none = snapshot_module.activation_histogram(torch.tensor([1.0, float("nan"), float("inf"), 3.0]), "other")
    assert hist[1].sum().item() == 2 and hist[0, 0].item() == pytest.approx(1 + 1 / HIST_BINS) and none is None


@pytest.mark.parametrize("values", [[0.0, 1e-45, 1e-45, 0.0, 1e-45], [0.0, 1.5e-44, 3e-44, 3e-44],
                                    [1e-30, 1e-30 + 4e-37, 1e-30 + 2e-37], [-3e38, 3e38, 0.0, 1e38, -2e38]],
                         ids=["narrower-than-float32-bins", "subnormal-bins", "bins-under-float32s-normals",
                              "wider-than-float32"])
def test_a_histogram_of_a_span_float32_cannot_bin_is_numpys_all_the_same(values):
    """A layer whose outputs differ by less than float32 can split into 41 bins (or span more than it can
    hold) still gets its histogram: before, the bin width rounded to 0 and the snapshot failed."""
    t = torch.tensor(values, dtype=torch.float32)
    hist, share = snapshot_module.activation_histogram(t, "other")
    flat = t.numpy().astype(np.float64)
    expected, edges = np.histogram(flat, bins=HIST_BINS, range=(flat.min(), flat.max()))
    np.testing.assert_array_equal(hist[1].numpy(), expected.astype(np.float32))
    np.testing.assert_allclose(hist[0].numpy(), ((edges[:-1] + edges[1:]) / 2).astype(np.float32), rtol=1e-6,
                               atol=0)
    assert share is None


@pytest.mark.parametrize("value", [3.0, -2.5e7, 1e17, -3e38])
@pytest.mark.parametrize("device_path", [False, True], ids=["cpu", "device"])
def test_a_constant_activation_of_any_size_falls_in_the_middle_bin(value, device_path):
    """A layer whose outputs are all one value (a diverged run's single output): every count in the middle
    bin, centred on the value. Before, a value of 2**24 and more made the bin width 0 and the snapshot fail."""
    t = torch.full((3, 4), value, dtype=torch.float32)
    if device_path:  # the path a CUDA tensor takes, here on the CPU
        hist, _ = snapshot_module._device_histogram(t.reshape(-1), "other")
    else:
        hist, _ = snapshot_module.activation_histogram(t, "other")
    assert hist[1].sum().item() == 12 and hist[1, HIST_BINS // 2].item() == 12
    assert hist[0, HIST_BINS // 2].item() == pytest.approx(value, rel=1e-6)


def test_caps_on_channels_samples_features_and_weights():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(20, 100, 1), nn.Flatten(), nn.Linear(100 * 2 * 2, 1500),
                          nn.Linear(1500, 300))
    x = torch.randn(70, 20, 2, 2)
    arrays, _ = snap(model, x)
    assert arrays["act/0"].shape == (64, 2, 2)
    assert arrays["weight/0"].shape == (64, 16, 1, 1)
    np.testing.assert_array_equal(arrays["weight/0"], model[0].weight.detach()[:64, :16].numpy())
    assert arrays["act/2"].shape == (64, 1024) and arrays["act/3"].shape == (64, 300)
    assert arrays["weight/2"].shape == (256, 400) and arrays["weight/3"].shape == (256, 1024)
    np.testing.assert_array_equal(arrays["weight/3"], model[3].weight.detach()[:256, :1024].numpy())


def test_a_one_dimensional_convolution_gives_channels_by_positions():
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU())
    x = torch.randn(4, 2, 9)
    arrays, _ = snap(model, x)
    with torch.no_grad():
        np.testing.assert_array_equal(arrays["act/0"], model[0](x)[0].numpy())
    assert arrays["weight/0"].shape == (3, 2, 3)


def test_a_transposed_convolutions_kernels_are_out_by_in():
    model = nn.Sequential(nn.ConvTranspose2d(2, 5, 3))
    arrays, _ = snap(model, torch.randn(2, 2, 4, 4))
    np.testing.assert_array_equal(arrays["weight/0"], model[0].weight.detach().transpose(0, 1).numpy())
    assert arrays["act/0"].shape == (5, 6, 6)


def test_without_a_probe_only_the_weights():
    model = cnn()
    arrays, scalars = take_snapshot(model, None, describe_model(model))
    assert set(arrays) == {"weight/0", "weight/3", "weight/6"} and scalars == {}


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(2 * 4 * 4, 3)
        self.frozen = nn.Linear(3, 3)

    def forward(self, x):
        h = self.drop(self.conv(x)) + 0.01 * torch.rand(1)  # noise whatever the mode
        return self.fc(h.flatten(1)) + self.frozen.bias * 0


def test_a_snapshot_touches_neither_generators_flags_gradients_nor_hooks():
    torch.manual_seed(0)
    model = Noisy()
    model.train()
    model.fc.eval()
    x = torch.randn(4, 1, 6, 6)
    model(x).sum().backward()
    model.frozen.bias.grad = None
    grads = {n: (p.grad, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}
    flags = {n: m.training for n, m in model.named_modules()}
    description = describe_model(model, x)
    cpu_state = torch.get_rng_state()
    arrays, _ = take_snapshot(model, x, description, erf={"layer": "conv", "channel": 1, "y": 2, "x": 1})
    assert "erf/conv" in arrays
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert {n: m.training for n, m in model.named_modules()} == flags
    for n, p in model.named_parameters():
        before, copy = grads[n]
        assert p.grad is before  # the same tensor (or still None) ...
        if copy is not None:
            assert torch.equal(p.grad, copy)  # ... with the same values
    assert all_hooks(model) == 0 and not global_hooks()
    # the dropout ran in eval mode: the maps are the convolution's exactly
    with torch.no_grad():
        np.testing.assert_array_equal(arrays["act/conv"], model.conv(x)[0].numpy())


def test_hooks_are_removed_and_flags_restored_when_the_forward_fails():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 4)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            self.rnn(x)
            raise RuntimeError("the user's bug")

    model = Broken()
    description = describe_model(model)
    with pytest.raises(RuntimeError, match="the user's bug"):
        take_snapshot(model, torch.randn(5, 2, 3), description)
    assert all_hooks(model) == 0 and not global_hooks()
    assert all(m.training for m in model.modules())


def global_hooks() -> int:
    from torch.nn.modules import module as module_module

    return len(module_module._global_forward_hooks) + len(module_module._global_forward_pre_hooks)


def test_a_layers_own_hook_that_changes_its_output_is_what_the_snapshot_shows():
    """The snapshot listens to every layer through one global hook, which runs before a layer's own hooks:
    a layer with hooks of its own is listened to after them, so its maps are what the next layer gets."""
    model = cnn()
    x = torch.randn(2, 1, 12, 12)
    model[0].register_forward_hook(lambda m, args, out: out * 2)
    description = describe_model(model, x)
    arrays, _ = take_snapshot(model, x, description)
    with torch.no_grad():
        conv = model[0](x)  # (its hook doubles it)
        np.testing.assert_array_equal(arrays["act/0"], conv[0].numpy())
        np.testing.assert_array_equal(arrays["act/2"], model[2](model[1](conv))[0].numpy())
    again, _ = take_snapshot(model, x, description, modules=modules_by_name(model))
    assert again.keys() == arrays.keys() and all(np.array_equal(again[k], arrays[k]) for k in arrays)
    assert len(model[0]._forward_hooks) == 1 and all_hooks(model) == 1 and not global_hooks()


class InPlace(nn.Module):
    """Changes its input in place, as some scripts' models do (``x /= 255``, a first in-place ReLU)."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        x.mul_(2)
        return self.conv(self.relu(x))


def test_a_model_that_changes_its_input_in_place_leaves_the_probe_as_it_was():
    model = InPlace()
    x = torch.randn(3, 1, 8, 8)
    kept = x.clone()
    description = describe_model(model, x)
    arrays, _ = take_snapshot(model, x, description, erf={"layer": "conv", "channel": 0, "y": 2, "x": 3})
    assert torch.equal(x, kept)
    np.testing.assert_array_equal(arrays["input"], kept[0].numpy())
    with torch.no_grad():
        np.testing.assert_array_equal(arrays["act/conv"], model.conv(torch.relu(2 * kept))[0].numpy())
    inside = np.zeros((8, 8), bool)
    inside[2:5, 3:6] = True
    assert (arrays["erf/conv"][~inside] == 0).all() and arrays["erf/conv"].sum() > 0


# -- recurrent layers --------------------------------------------------------------------------------

class Seq(nn.Module):
    def __init__(self, rnn: nn.RNNBase, with_state: bool = False):
        super().__init__()
        self.rnn = rnn
        self.with_state = with_state
        self.fc = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), 2)

    def initial(self, batch: int):
        g = torch.Generator().manual_seed(5)
        shape = (self.rnn.num_layers * (2 if self.rnn.bidirectional else 1), batch, self.rnn.hidden_size)
        h0 = torch.randn(shape, generator=g)
        return (h0, torch.randn(shape, generator=g)) if isinstance(self.rnn, nn.LSTM) else h0

    def forward(self, x):
        batch = x.shape[0] if self.rnn.batch_first else x.shape[1]
        out, _ = self.rnn(x, hx=self.initial(batch)) if self.with_state else self.rnn(x)
        return self.fc(out.mean(1 if self.rnn.batch_first else 0))


def single_layer(rnn: nn.RNNBase, k: int) -> nn.RNNBase:
    """Layer k of a stacked recurrent module as a module of its own (same weights, both directions)."""
    kind = type(rnn)
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    size = rnn.input_size if k == 0 else rnn.hidden_size * (2 if rnn.bidirectional else 1)
    one = kind(size, rnn.hidden_size, num_layers=1, bidirectional=rnn.bidirectional, batch_first=True, **extra)
    with torch.no_grad():
        for name, p in one.named_parameters():
            p.copy_(getattr(rnn, name.replace("_l0", f"_l{k}")))
    return one


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "rnn-relu"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_recomputed_gates_equal_the_modules_own_outputs(kind, batch_first, with_state):
    torch.manual_seed(3)
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "rnn-relu": nn.RNN}[kind]
    extra = {"nonlinearity": "relu"} if kind == "rnn-relu" else {}
    rnn = cls(4, 6, num_layers=2, bidirectional=True, batch_first=batch_first, **extra)
    model = Seq(rnn, with_state)
    x = torch.randn(3, 7, 4) if batch_first else torch.randn(7, 3, 4)
    arrays, _ = snap(model, x)
    gates = {"lstm": "ifgoch", "gru": "rznh"}.get(kind, "h")
    assert {k for k in arrays if k.startswith("gates/")} == {
        f"gates/rnn/{d}/{g}" for d in ("l0", "l0r", "l1", "l1r") for g in gates}
    assert all(arrays[f"gates/rnn/l0/{g}"].shape == (7, 6) for g in gates)
    first = x if batch_first else x.transpose(0, 1)  # (N, T, F)
    state = model.initial(3) if with_state else None
    with torch.no_grad():
        layer_input = first[:1]
        for k in range(2):
            one = single_layer(rnn, k)
            if state is None:
                out, last = one(layer_input)
            elif isinstance(state, tuple):
                out, last = one(layer_input, tuple(s[2 * k:2 * k + 2, :1] for s in state))
            else:
                out, last = one(layer_input, state[2 * k:2 * k + 2, :1])
            for d, key in enumerate((f"l{k}", f"l{k}r")):
                np.testing.assert_allclose(arrays[f"gates/rnn/{key}/h"], out[0, :, 6 * d:6 * (d + 1)].numpy(),
                                           atol=1e-5, rtol=0)
                if kind == "lstm":  # the cell state where each direction ends
                    end = -1 if d == 0 else 0
                    np.testing.assert_allclose(arrays[f"gates/rnn/{key}/c"][end], last[1][d, 0].numpy(), atol=1e-5,
                                               rtol=0)
            layer_input = out
        # the stacked module's own output is the top layer's h of both directions
        full, _ = rnn(x, model.initial(3)) if with_state else rnn(x)
        top = full[0] if batch_first else full[:, 0]
        np.testing.assert_allclose(np.concatenate([arrays["gates/rnn/l1/h"], arrays["gates/rnn/l1r/h"]], 1),
                                   top.numpy(), atol=1e-5, rtol=0)
    if kind == "lstm":  # gates in their ranges, and c, h as the equations tie them
        for g in "ifo":
            assert (arrays[f"gates/rnn/l0/{g}"] >= 0).all() and (arrays[f"gates/rnn/l0/{g}"] <= 1).all()
        np.testing.assert_allclose(arrays["gates/rnn/l0/h"],
                                   arrays["gates/rnn/l0/o"] * np.tanh(arrays["gates/rnn/l0/c"]), atol=1e-6)


@pytest.mark.filterwarnings("ignore:LSTM with projections")
def test_gates_of_a_packed_sequence_and_of_projections():
    torch.manual_seed(4)
    rnn = nn.LSTM(3, 5, batch_first=True)

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([4, 6]), batch_first=True,
                                                       enforce_sorted=False)
            out, _ = self.rnn(packed)
            return nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]

    x = torch.randn(2, 6, 3)
    arrays, _ = snap(Packed(), x)
    with torch.no_grad():
        expected, _ = rnn(x[:1, :4])  # the first sample, its own 4 steps
    np.testing.assert_allclose(arrays["gates/rnn/l0/h"], expected[0].numpy(), atol=1e-5, rtol=0)
    proj = Seq(nn.LSTM(3, 6, proj_size=2, num_layers=2, batch_first=True))
    proj.fc = nn.Linear(2, 2)
    arrays, _ = snap(proj, x)
    with torch.no_grad():
        out, _ = proj.rnn(x)
    assert {k for k in arrays if k.startswith("gates/")} == {"gates/rnn/l1/h"}  # as the module returns it
    np.testing.assert_array_equal(arrays["gates/rnn/l1/h"], out[0].numpy())


# -- segmentation, targets, tuple probes -------------------------------------------------------------

def test_a_segmentation_sends_class_probabilities_and_classes():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    x = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 4, (2, 8, 8))
    description = describe_model(model, x)
    assert description["segmentation"] is True
    arrays, _ = take_snapshot(model, x, description, target=target)
    with torch.no_grad():
        logits = model(x)[0]
    np.testing.assert_allclose(arrays["seg/probs"], torch.softmax(logits, 0).numpy(), rtol=1e-6, atol=1e-7)
    assert arrays["seg/probs"].shape == (4, 8, 8) and arrays["seg/probs"].dtype == np.float32
    assert arrays["seg/classes"].dtype == np.int64
    np.testing.assert_array_equal(arrays["seg/classes"], logits.argmax(0).numpy())
    np.testing.assert_array_equal(arrays["target"], target[0].numpy())
    assert arrays["target"].dtype == np.int64
    assert "output" not in arrays  # the segmentation stands for it


def test_a_float_target_and_a_tuple_probe():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, scale):
            return self.fc(x) * scale

    model = Scaled()
    x, scale = torch.randn(4, 3), torch.full((4, 1), 2.0)
    arrays, _ = snap(model, (x, scale), target=np.ones((4, 2), np.float64))
    np.testing.assert_array_equal(arrays["input"], x[0].numpy())
    with torch.no_grad():
        np.testing.assert_allclose(arrays["output"], (model.fc(x) * 2)[0].numpy())
    assert arrays["target"].dtype == np.float32 and arrays["target"].shape == (2,)


# -- the effective receptive field -----------------------------------------------------------------------

def test_the_effective_field_lies_inside_the_theoretical_one():
    torch.manual_seed(6)
    # r, j, o per layer: conv k3 p1: 3, 1, -1; avg pool 2: 4, 2, -1; conv k3: 8, 2, -1
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(3, 4, 3), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 2))
    x = torch.randn(3, 2, 20, 20)
    description = describe_model(model, x)
    for layer, (c, y, xx), (top, left, size) in (("2", (1, 0, 3), (-1, 5, 8)), ("2", (3, 5, 7), (9, 13, 8)),
                                                 ("0", (0, 10, 0), (9, -1, 3)), ("1", (2, 4, 9), (7, 17, 4))):
        arrays, _ = take_snapshot(model, x, description, erf={"layer": layer, "channel": c, "y": y, "x": xx})
        heat = arrays[f"erf/{layer}"]
        assert heat.shape == (20, 20) and heat.dtype == np.float32
        inside = np.zeros((20, 20), bool)
        inside[max(top, 0):top + size, max(left, 0):left + size] = True
        assert (heat[~inside] == 0).all()
        assert (heat[inside] > 0).all()
        # |d unit / d input| summed over the input's channels, by hand
        image = x[:1].clone().requires_grad_(True)
        out = model[:int(layer) + 1](image)
        (grad,) = torch.autograd.grad(out[0, c, y, xx], image)
        np.testing.assert_allclose(heat, grad[0].abs().sum(0).numpy(), rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())


def test_a_request_that_cannot_be_met_is_an_error_and_leaves_no_hook():
    model = cnn()
    x = torch.randn(2, 1, 12, 12)
    description = describe_model(model, x)
    for erf, reason in (({"layer": "nope", "channel": 0, "y": 0, "x": 0}, "no layer"),
                        ({"layer": "0", "channel": 4, "y": 0, "x": 0}, "outside"),
                        ({"layer": "0", "channel": 0, "y": 12, "x": 0}, "outside"),
                        ({"layer": "6", "channel": 0, "y": 0, "x": 0}, "maps"),
                        ({"layer": "0", "channel": "a", "y": 0, "x": 0}, "integers")):
        with pytest.raises(ValueError, match=reason):
            take_snapshot(model, x, description, erf=erf)
        assert all_hooks(model) == 0
        assert all(m.training for m in model.modules())


# -- wrappers and limits ----------------------------------------------------------------------------------

def test_a_data_parallel_model_is_snapshot_by_its_inner_module():
    model = cnn()
    x = torch.randn(2, 1, 12, 12)
    plain, _ = snap(model, x)
    wrapped, _ = snap(nn.DataParallel(model), x)
    assert list(wrapped) == list(plain)
    for name in plain:
        np.testing.assert_array_equal(wrapped[name], plain[name])


def test_arrays_past_the_byte_limit_are_left_out(monkeypatch):
    model = cnn()
    x = torch.randn(2, 1, 12, 12)
    monkeypatch.setattr(snapshot_module, "MAX_SNAPSHOT_BYTES", (144 + 10 + 4 * 144) * 4)
    arrays, scalars = snap(model, x)
    assert list(arrays) == ["input", "output", "act/0"]  # the first that fit, in their order
    assert len(scalars) == 3  # scalars are always kept
    monkeypatch.setattr(snapshot_module, "MAX_SNAPSHOT_BYTES", 1 << 30)
    monkeypatch.setattr(snapshot_module, "MAX_SNAPSHOT_ARRAYS", 4)
    arrays, _ = snap(model, x)
    assert list(arrays) == ["input", "output", "act/0", "weight/0"]


# -- gradient norms ------------------------------------------------------------------------------------

def test_grad_norms_equal_each_modules_vector_norm():
    torch.manual_seed(7)
    model = Noisy()
    x = torch.randn(4, 1, 6, 6)
    model(x).sum().backward()
    model.frozen.weight.grad = None  # one of a module's parameters without a gradient
    layers = describe_model(model)["grad_layers"]
    assert layers == ["conv", "fc", "frozen"]
    norms = grad_norms(model, layers + ["nope"])
    assert norms.dtype == np.float32 and norms.shape == (4,)
    for i, name in enumerate(layers):
        grads = [p.grad.reshape(-1) for p in getattr(model, name).parameters() if p.grad is not None]
        assert norms[i] == pytest.approx(torch.linalg.vector_norm(torch.cat(grads)).item(), rel=1e-6)
    assert np.isnan(norms[3])
    model.zero_grad(set_to_none=True)
    assert np.isnan(grad_norms(model, layers)).all()


def test_grad_norms_of_a_wrapped_model_and_of_sparse_and_half_gradients():
    emb = nn.Embedding(10, 3, sparse=True)
    half = nn.Linear(3, 2).half()
    model = nn.DataParallel(nn.Sequential(emb, half))
    emb(torch.tensor([[1, 2, 2]])).sum().backward()
    half.weight.grad = torch.full_like(half.weight, 40000.0)  # its norm would overflow in float16
    norms = grad_norms(model, ["0", "1"])
    assert norms[0] == pytest.approx(torch.linalg.vector_norm(emb.weight.grad.to_dense()).item(), rel=1e-6)
    assert norms[1] == pytest.approx(40000.0 * 6 ** 0.5, rel=1e-6)


@pytest.mark.parametrize("family", ["rectifier", "sigmoid", "tanh", "other"])
def test_the_cpu_histogram_is_numpys_histogram_of_the_finite_values(family):
    generator = torch.Generator().manual_seed(7)
    values = torch.randn(16, 16, 16, 16, generator=generator) * 2
    if family == "rectifier":
        values = torch.relu(values)  # half of them exactly 0, all in the lowest bin
    values.view(-1)[:5] = torch.tensor([float("nan"), float("inf"), -float("inf"), 3.5, -1.25])
    hist, share = snapshot_module.activation_histogram(values, family)
    flat = values.reshape(-1).numpy()
    finite = flat[np.isfinite(flat)]
    lo, hi = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(family, (float(finite.min()), float(finite.max())))
    expected, _ = np.histogram(np.clip(finite, lo, hi), bins=HIST_BINS, range=(lo, hi))
    np.testing.assert_array_equal(hist[1].numpy(), expected.astype(np.float32))
    np.testing.assert_allclose(hist[0].numpy(), lo + (np.arange(HIST_BINS) + 0.5) * (hi - lo) / HIST_BINS,
                               rtol=1e-5, atol=1e-6)
    expected_share = {"rectifier": np.mean(flat == 0), "sigmoid": np.mean((flat < 0.05) | (flat > 0.95)),
                      "tanh": np.mean(np.abs(flat) > 0.9), "other": None}[family]
    if expected_share is None:
        assert share is None
    else:
        assert share.dtype == torch.float32 and share.item() == pytest.approx(expected_share, rel=1e-6)


def test_a_snapshots_saturated_shares_are_those_of_the_whole_batch():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.Sigmoid())
    x = torch.randn(9, 1, 8, 8)
    _, scalars = snap(model, x)
    with torch.no_grad():
        relu = torch.relu(model[0](x))
        sig = torch.sigmoid(model[3](relu.flatten(1)))
    assert scalars["saturated/1"] == pytest.approx(float((relu == 0).float().mean()), rel=1e-6)
    assert scalars["saturated/4"] == pytest.approx(float(((sig < 0.05) | (sig > 0.95)).float().mean()), rel=1e-6)
    assert all(isinstance(v, float) for v in scalars.values())


def test_saturated_shares_left_as_tensors_are_copied_with_the_arrays_to_the_same_floats(monkeypatch):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.Tanh())
    x = torch.randn(6, 1, 8, 8)
    arrays, scalars = snap(model, x)
    real = snapshot_module._histogram

    def as_on_a_device(y, family):  # what the device path gives: the share as a 0-d tensor
        hist, share = real(y, family)
        return hist, torch.tensor(share, dtype=torch.float32) if isinstance(share, float) else share

    monkeypatch.setattr(snapshot_module, "_histogram", as_on_a_device)
    arrays_t, scalars_t = snap(model, x)
    assert scalars_t == pytest.approx(scalars, rel=1e-6) and set(scalars_t) == {"saturated/1", "saturated/4"}
    assert all(type(v) is float for v in scalars_t.values())
    assert arrays_t.keys() == arrays.keys()
    for name in arrays:
        np.testing.assert_array_equal(arrays_t[name], arrays[name])


def test_a_rectifiers_zeros_counted_apart_give_numpys_histogram_and_the_dead_share():
    generator = torch.Generator().manual_seed(11)
    values = torch.relu(torch.randn(8, 16, 12, 12, generator=generator) - 0.5)  # about 70% exactly 0
    values.view(-1)[::97] = -0.0  # a negative zero is a zero too
    hist, dead = snapshot_module.activation_histogram(values, "rectifier")
    flat = values.reshape(-1).numpy()
    assert flat.min() == 0.0
    expected, _ = np.histogram(flat, bins=HIST_BINS, range=(0.0, float(flat.max())))
    np.testing.assert_array_equal(hist[1].numpy(), expected.astype(np.float32))
    assert dead.item() == pytest.approx(float(np.mean(flat == 0)))
