"""Network specs: shape inference, validation messages, building, export, JSON files, presets, CLI."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.cli.spec import add_spec_commands, run_spec_command
from explorer.core.families.registry import spec_families
from explorer.core.spec import network as S
from explorer.core.spec.layers import LocalContrastNorm, RBMLayer
from explorer.core.spec.network import LayerSpec, NetworkSpec, SpecError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def L(t, **p):
    return LayerSpec(t, p)


def net(shape, *layers, family="cnn"):
    return NetworkSpec(family, tuple(shape), list(layers))


# ---------------------------------------------------------------------------------- LeNet-5


def test_lenet5_parameters_shapes_and_receptive_fields():
    inf = S.validate(S.load_preset("lenet5"))
    # Hand-computed: conv1 6*(1*25)+6 = 156, conv2 16*(6*25)+16 = 2416, fc1 400*120+120 = 48120,
    # fc2 120*84+84 = 10164, fc3 84*10+10 = 850  ->  61,706.
    assert 6 * (1 * 25) + 6 + 16 * (6 * 25) + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10 == 61_706
    assert inf.total_params == 61_706
    assert [i.params for i in inf.layers if i.params] == [156, 2416, 48120, 10164, 850]
    assert [i.output_shape for i in inf.layers] == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5),
        (400,), (120,), (120,), (84,), (84,), (10,), (10,)]
    conv_pool = [i for i in inf.layers if i.type in ("Conv2d", "AvgPool2d")]
    assert [i.rf_size for i in conv_pool] == [5, 6, 14, 16]
    assert [i.rf_jump for i in conv_pool] == [1, 2, 2, 4]
    assert all(i.rf_size is None for i in inf.layers[6:])           # after Flatten: not spatial
    assert inf.layers[0].macs == 28 * 28 * 6 * 1 * 25
    assert inf.layers[7].macs == 400 * 120
    assert inf.output_shape == (10,) and inf.valid and inf.connections == []


def test_param_comparison_matches_the_lecture():
    c = S.param_comparison(200, 200, 25_000, 10)
    assert c["fully_connected"] == 1_000_000_000          # lecture: ~1B parameters
    assert c["locally_connected"] == 2_500_000            # lecture: ~2.5M parameters
    assert c["convolution_shared"] == 100                 # one shared 10x10 kernel per feature map


def test_recurrent_counts_match_torch_and_formulas():
    inf = S.validate(S.load_preset("lstm"))
    assert inf.layers[0].params == 4 * 32 * (1 + 32) + 8 * 32
    assert inf.layers[0].macs == 4 * 32 * (1 + 32) * 50
    assert inf.layers[1].output_shape == (50, 1) and inf.layers[1].macs == 32 * 50
    inf = S.validate(S.load_preset("rnn"))
    assert inf.layers[0].macs == 32 * (1 + 32) * 50


def test_unet_skips_and_output_size():
    spec = S.load_preset("unet-small")
    inf = S.validate(spec)
    assert inf.output_shape == (4,) + spec.input_shape[1:]
    assert inf.connections == [(5, 10), (2, 14)]
    assert inf.layers[8].rf_size is None                    # ConvTranspose2d: no receptive field


# ---------------------------------------------------------------------------------- validation

CASES = [
    (net((1, 5, 5), L("ReLU"), L("Tanh"), L("Conv2d", out_channels=4, kernel_size=7)),
     "Conv2d #3: kernel 7 is larger than its 5x5 input"),
    (net((1, 5, 5), L("Conv2d", out_channels=4, kernel_size=9, padding=1)),
     "Conv2d #1: kernel 9 is larger than its 5x5 input padded to 7x7"),
    (net((1, 8, 8), L("Conv2d", out_channels=4, kernel_size=2.5)),
     "Conv2d #1: kernel_size must be a whole number, got 2.5"),
    (net((1, 8, 8), L("Conv2d", out_channels="four")),
     "Conv2d #1: out_channels must be a whole number, got 'four'"),
    (net((16,), L("Linear", out_features=0)), "Linear #1: out_features must be at least 1, got 0"),
    (net((16,), L("Linear", out_features=-3)), "Linear #1: out_features must be at least 1, got -3"),
    (net((1, 8, 8), L("MaxPool2d", kernel_size=2, stride=0)), "MaxPool2d #1: stride must be at least 1, got 0"),
    (net((1, 1, 1), L("ConvTranspose2d", out_channels=2, kernel_size=1, stride=1, padding=1)),
     "ConvTranspose2d #1: output size -1x-1 is less than 1 (padding 1 is too large)"),
    (net((16,), L("Linear"), L("Dropout", p=1.5)), "Dropout #2: p must be between 0 and 1, got 1.5"),
    (net((16,), L("Dropout", p="half")), "Dropout #1: p must be a number, got 'half'"),
    (net((1, 8, 8), L("ReLU"), L("Concat", source=5)),
     "Concat #2: source must be an earlier layer (0 = the input, 1..1), got 5"),
    (net((1, 8, 8), L("ReLU"), L("Concat", source=2)),
     "Concat #2: source must be an earlier layer (0 = the input, 1..1), got 2"),
    (net((1, 32, 32), L("Conv2d", out_channels=4, padding=1), L("MaxPool2d"), L("MaxPool2d"), L("ReLU"),
         L("Upsample"), L("ReLU"), L("Tanh"), L("Sigmoid"), L("Concat", source=3)),
     "Concat #9: cannot concatenate 16x16 with 8x8 from layer #3"),
    # odd size: 5 -> pool 2 -> up 4 no longer matches the 5x5 skip
    (net((1, 5, 5), L("Conv2d", out_channels=2, padding=1), L("MaxPool2d"), L("Upsample"), L("Concat", source=1)),
     "Concat #4: cannot concatenate 4x4 with 5x5 from layer #1"),
    (net((1, 28, 28), L("Linear", out_features=10)),
     "Linear #1: needs a vector input (F,) but gets 1x28x28; add a Flatten first"),
    (net((64,), L("Conv2d")), "Conv2d #1: needs an image input (C, H, W) but gets (64,)"),
    (net((3, 8, 8), L("LSTM")), "LSTM #1: needs a sequence input (T, F) but gets 3x8x8"),
    (net((1, 8, 8), L("LocalContrastNorm", size=4)), "LocalContrastNorm #1: size must be odd, got 4"),
    (net((16,), L("Foo")), "Foo #1: unknown layer type 'Foo'"),
    (net((16,), L("Linear", out_features=3, foo=1)),
     "Linear #1: unknown parameter 'foo' (expected: bias, out_features)"),
    (net((16,), L("ReLU", inplace=True)), "ReLU #1: unknown parameter 'inplace' (expected: none)"),
    (net((16,), L("Linear", bias="yes")), "Linear #1: bias must be true or false, got 'yes'"),
    (net((1, 8, 8), L("Upsample", mode="cubic")), "Upsample #1: mode must be one of nearest, bilinear, got 'cubic'"),
    (net((16,), L("Linear"), family="gan"),
     "Network: unknown family 'gan' (expected one of rbm, autoencoder, mlp, cnn, fcn, lstm, rnn)"),
    (net((0, 5), L("ReLU")),
     "Network: input shape must be (F,), (T, F) or (C, H, W) with whole numbers from 1 to 65536, got (0, 5)"),
    (net((), L("ReLU")),
     "Network: input shape must be (F,), (T, F) or (C, H, W) with whole numbers from 1 to 65536, got ()"),
    (net((16,)), "Network: the network has no layers"),
    (net((16,), L("Linear", out_features=10), L("RBM", hidden=5), family="rbm"),
     "RBM #2: an RBM layer must be the first layer of the network"),
]


@pytest.mark.parametrize("spec,message", CASES, ids=[m.split(":")[0] + "-" + str(i) for i, (_, m) in enumerate(CASES)])
def test_validation_messages(spec, message):
    inf = S.infer(spec)
    assert not inf.valid and inf.first_error == message
    with pytest.raises(SpecError) as e:
        S.validate(spec)
    assert str(e.value) == message
    with pytest.raises(SpecError):
        S.build_module(spec)
    with pytest.raises(SpecError):
        S.export_source(spec)


def test_layers_after_an_error_have_unknown_shapes_but_own_errors():
    spec = net((1, 5, 5), L("Conv2d", kernel_size=7), L("ReLU"), L("Linear", out_features=0))
    inf = S.infer(spec)
    assert inf.layers[0].error and inf.layers[1].error is None and inf.layers[1].output_shape is None
    assert inf.layers[2].error == "Linear #3: out_features must be at least 1, got 0"
    assert inf.output_shape is None


def test_linear_applies_per_time_step_and_softmax_keeps_shape():
    inf = S.validate(net((7, 3), L("Linear", out_features=5), L("Softmax"), family="rnn"))
    assert inf.output_shape == (7, 5) and inf.total_macs == 7 * 3 * 5


GARBAGE = [None, 42, "spec", NetworkSpec(None, None, None), NetworkSpec("cnn", "abc", "abc"),
           NetworkSpec("cnn", (1, 8, 8), [None, 3, "x", {"type": "ReLU"}, LayerSpec(None), LayerSpec("Conv2d", [1, 2]),
                                          LayerSpec("Conv2d", {"kernel_size": float("nan")}),
                                          LayerSpec("Linear", {"out_features": 10 ** 100}), LayerSpec("Concat", {"source": None})]),
           NetworkSpec("mlp", (10 ** 30,), [L("Linear")]), NetworkSpec("mlp", (True,), [L("Linear")]),
           NetworkSpec("mlp", (4096,), [L("Linear", out_features=65536), L("Linear", out_features=65536)])]


@pytest.mark.parametrize("bad", GARBAGE)
def test_infer_never_raises_and_validate_raises_only_spec_error(bad):
    inf = S.infer(bad)
    assert not inf.valid and isinstance(inf.first_error, str) and "cannot analyse" not in inf.first_error
    with pytest.raises(SpecError):
        S.validate(bad)
    assert isinstance(S.summary_table(bad), str)


def test_new_layer_and_layer_types():
    types = S.layer_types()
    for name in ("Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Sigmoid", "Tanh", "LocalContrastNorm",
                 "Dropout", "Flatten", "ConvTranspose2d", "Upsample", "Concat", "RBM", "RNN", "LSTM", "Softmax"):
        assert name in types and types[name].help
        assert S.new_layer(name).params == {p.name: p.default for p in types[name].params}
    with pytest.raises(SpecError):
        S.new_layer("Nope")


# ---------------------------------------------------------------------------------- fuzz

_PARAM_NAMES = sorted({p.name for t in S.LAYER_TYPES.values() for p in t.params} | {"bogus"})
_values = st.one_of(st.integers(-3, 8), st.integers(-3, 8), st.sampled_from([None, "x", "3", True, False, 2.0, 0.5,
                                                                               -1.5, 10 ** 12, 1e300, "nearest",
                                                                               "bilinear", "relu", "tanh"]),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))


def _plausible(p: S.ParamDef):
    """Mostly sensible values for one parameter (so that many fuzzed specs are valid and get built)."""
    if p.kind == "bool":
        return st.booleans()
    if p.kind == "choice":
        return st.sampled_from(p.choices)
    if p.kind == "float":
        return st.floats(0.0, 0.9) if p.name == "p" else st.floats(1e-6, 1.0)
    if p.kind == "ref":
        return st.integers(0, 6)
    if p.name in ("stride", "scale_factor"):
        return st.integers(1, 3)
    if p.name == "padding":
        return st.integers(0, 2)
    if p.name in ("kernel_size", "size"):
        return st.integers(1, 5)
    return st.integers(1, 16)


_COMMON = ["ReLU", "Sigmoid", "Tanh", "Dropout", "Softmax"]
_BY_RANK = {1: ["Linear", "Linear", "RBM", "Concat"] + _COMMON,
            2: ["RNN", "LSTM", "Linear", "SequenceLast"] + _COMMON,
            3: ["Conv2d", "Conv2d", "MaxPool2d", "AvgPool2d", "LocalContrastNorm", "Upsample", "ConvTranspose2d",
                "Concat", "Concat", "Flatten"] + _COMMON}


@st.composite
def _layer_dicts(draw, sane, rank=0):
    kinds = sorted(S.LAYER_TYPES)
    if not sane:
        kinds += ["Bogus", 7]
    elif rank in _BY_RANK and draw(st.integers(0, 5)):
        kinds = _BY_RANK[rank]
    tname = draw(st.sampled_from(kinds))
    pdefs = S.LAYER_TYPES[tname].params if tname in S.LAYER_TYPES else ()
    params = {}
    for pd in pdefs:
        if draw(st.integers(0, 3)):
            params[pd.name] = draw(_plausible(pd) if sane and draw(st.integers(0, 15)) else _values)
    if not sane:
        params.update(draw(st.dictionaries(st.sampled_from(_PARAM_NAMES), _values, max_size=3)))
    d = {"type": tname, "params": params}
    if not sane and draw(st.integers(0, 10)) == 0:
        d = draw(st.sampled_from([{"type": tname}, {"params": params}, [tname], {"type": tname, "params": [1]},
                                  {"type": tname, "params": params, "extra": 1}]))
    return d


_sane_shapes = st.sampled_from([[1, 8, 8], [3, 12, 12], [2, 5, 7], [16], [6, 4], [1, 16, 16], [4, 3], [1, 1, 1]])
_shapes = st.one_of(_sane_shapes, st.lists(st.integers(-2, 12), max_size=4),
                    st.sampled_from([None, "1,8,8", [1.5], [True, 8, 8]]))


@st.composite
def _spec_dicts(draw):
    sane = draw(st.integers(0, 3)) > 0
    d = {"format": S.SPEC_FORMAT, "version": S.SPEC_VERSION,
         "family": draw(st.sampled_from(spec_families() if sane else list(spec_families()) + ["bogus", 3])),
         "input_shape": draw(_sane_shapes if sane else _shapes)}
    rank = len(d["input_shape"]) if isinstance(d["input_shape"], list) else 0
    d["layers"] = draw(st.lists(_layer_dicts(sane, rank), min_size=1 if sane else 0, max_size=7))
    mutation = draw(st.integers(0, 20)) if not sane else -1
    if mutation == 0:
        d["format"] = "something-else"
    elif mutation == 1:
        d["version"] = draw(st.sampled_from([0, 2, "1", None]))
    elif mutation == 2:
        del d[draw(st.sampled_from(sorted(d)))]
    elif mutation == 3:
        d["hparams"] = draw(st.sampled_from([[], {"lr": 0.1}, {1: 2}]))
    return d


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spec_dicts())
def test_fuzz_from_dict_and_build_succeed_or_raise_spec_error(d):
    # infer never raises, even on the unchecked raw values
    raw = NetworkSpec(d.get("family"), d.get("input_shape"),
                      [LayerSpec(x.get("type"), x.get("params")) if isinstance(x, dict) else x
                       for x in d.get("layers", [])] if isinstance(d.get("layers"), list) else d.get("layers"))
    assert "cannot analyse" not in (S.infer(raw).first_error or "")   # the safety net never fires
    try:
        spec = S.spec_from_dict(d)
        module = S.build_module(spec)
    except SpecError:
        return
    inf = S.infer(spec)
    assert inf.valid
    assert sum(p.numel() for p in module.parameters()) == inf.total_params
    biggest = max(math.prod(i.output_shape) for i in inf.layers)
    if biggest <= 1 << 18:
        module.eval()
        with torch.no_grad():
            y = module(torch.zeros((2,) + tuple(spec.input_shape)))
        assert tuple(y.shape) == (2,) + inf.output_shape


# ---------------------------------------------------------------------------------- presets and export


@pytest.mark.parametrize("name", S.preset_names())
def test_preset_builds_matches_inference_and_exports(name):
    spec = S.load_preset(name)
    assert spec.name == name and spec.description and spec.family in spec_families() and spec.hparams
    inf = S.validate(spec)
    torch.manual_seed(0)
    module = S.build_module(spec).eval()
    assert sum(p.numel() for p in module.parameters()) == inf.total_params
    x = torch.rand((3,) + spec.input_shape)
    with torch.no_grad():
        y = module(x)
    assert tuple(y.shape) == (3,) + inf.output_shape

    source = S.export_source(spec)
    imports = [ln.strip() for ln in source.splitlines() if re.match(r"\s*(import|from)\s", ln)]
    assert imports and set(imports) <= {"import torch", "import math"}
    ns: dict = {}
    exec(compile(source, f"{name}.py", "exec"), ns)
    exported = ns["build"]()
    assert isinstance(exported, ns["Network"]) and isinstance(exported, torch.nn.Module)
    exported.load_state_dict(module.state_dict(), strict=True)
    exported.eval()
    with torch.no_grad():
        assert torch.allclose(exported(x), y, atol=1e-6)


def test_presets_expected_structure():
    assert S.preset_names() == ["lenet5", "alexnet-small", "unet-small", "deep-sigmoid-mlp", "rbm-digits",
                                "rbm-mnist", "denoising-autoencoder", "lstm", "rnn"]
    alex = S.load_preset("alexnet-small")
    types = [layer.type for layer in alex.layers]
    assert types.count("Conv2d") == 5 and types.count("Linear") == 3 and "Dropout" in types
    assert types.count("LocalContrastNorm") == 2
    assert S.load_preset("denoising-autoencoder").hparams["noise"] == "gaussian"
    assert S.load_preset("denoising-autoencoder").hparams["noise_level"] == 0.3
    assert S.infer(S.load_preset("rbm-mnist")).output_shape == (500,)
    with pytest.raises(SpecError):
        S.load_preset("nope")


def test_rbm_layer_parameters_like_rbm():
    module = S.build_module(S.load_preset("rbm-digits"))
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert shapes == {"layers.0.W": (64, 100), "layers.0.b": (64,), "layers.0.d": (100,)}
    layer = RBMLayer(3, 2)
    x = torch.rand(4, 3)
    assert torch.allclose(layer(x), torch.sigmoid(x @ layer.W + layer.d))


def test_copy_is_deep():
    a = S.load_preset("lenet5")
    b = a.copy()
    b.layers[0].params["out_channels"] = 99
    b.hparams["lr"] = 5
    assert a.layers[0].params["out_channels"] == 6 and a.hparams["lr"] != 5


# ---------------------------------------------------------------------------------- files


def test_every_sample_loads_and_validates_and_matches_its_preset(tmp_path):
    files = sorted(SAMPLES.glob("*.json"))
    assert {f.stem for f in files} == set(S.preset_names())
    for f in files:
        S.validate(S.load_spec(f))
    fresh = S.write_preset_samples(tmp_path)
    for f in fresh:
        assert f.read_text() == (SAMPLES / f.name).read_text(), f"samples/{f.name} is stale: rerun write_preset_samples"


def test_save_load_round_trip(tmp_path):
    spec = S.load_preset("unet-small")
    path = S.save_spec(spec, tmp_path / "sub" / "u.json")
    assert json.loads(path.read_text())["format"] == S.SPEC_FORMAT
    assert S.load_spec(path) == spec
    assert S.spec_from_dict(S.spec_to_dict(spec)) == spec


@pytest.mark.parametrize("content,words", [
    ("{not json", "not valid JSON"),
    (None, "not valid JSON"),                     # truncated
    ('{"format": "other-app", "version": 1}', "not a network spec"),
    ('[1, 2]', "must be a JSON object"),
    (None, "newer"),                              # version 2
    (b"\xff\xfe\x00bad", "not a text"),
])
def test_bad_files_raise_spec_error_naming_the_file(tmp_path, content, words):
    path = tmp_path / "bad.json"
    good = json.dumps(S.spec_to_dict(S.load_preset("lenet5")), indent=2)
    if content is None and words == "newer":
        content = good.replace('"version": 1', '"version": 2')
    elif content is None:
        content = good[: len(good) // 2]
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(SpecError) as e:
        S.load_spec(path)
    assert str(path) in str(e.value) and words in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_and_malformed_dicts(tmp_path):
    with pytest.raises(SpecError, match="nothere.json: cannot read"):
        S.load_spec(tmp_path / "nothere.json")
    good = S.spec_to_dict(S.load_preset("lenet5"))
    bad_variants = [
        {k: v for k, v in good.items() if k != "layers"},
        dict(good, layers=[{"type": "Nope"}]),
        dict(good, layers=[{"type": "Linear", "params": {"out_features": [1]}}]),
        dict(good, layers=[{"type": "Linear", "colour": "red"}]),
        dict(good, input_shape="1x28x28"),
        dict(good, hparams=[1]),
        dict(good, family="gan"),
        dict(good, extra=1),
        dict(good, name=3),
    ]
    for d in bad_variants:
        with pytest.raises(SpecError):
            S.spec_from_dict(d)
    with pytest.raises(SpecError, match=r"^Nope #1: unknown layer type 'Nope'$"):
        S.spec_from_dict(bad_variants[1])


# ---------------------------------------------------------------------------------- local contrast normalisation


def _lcn_numpy(x: np.ndarray, size: int, eps: float) -> np.ndarray:
    """Direct per-pixel computation of the lecture formula (in-bounds pixels only)."""
    c, h, w = x.shape
    r = size // 2
    out = np.zeros_like(x, dtype=np.float64)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                win = x[ch, max(0, i - r): i + r + 1, max(0, j - r): j + r + 1].astype(np.float64)
                out[ch, i, j] = (x[ch, i, j] - win.mean()) / max(eps, win.std())
    return out


def test_lcn_equals_the_lecture_formula_on_a_small_example():
    x = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]]], dtype=np.float32)
    y = LocalContrastNorm(3, 1e-6)(torch.from_numpy(x)[None])[0].numpy()
    assert np.allclose(y, _lcn_numpy(x, 3, 1e-6), atol=1e-5)
    # the centre sees the whole 3x3 image: (5 - mean) / std
    vals = x.ravel().astype(np.float64)
    assert y[0, 1, 1] == pytest.approx((5 - vals.mean()) / vals.std(), abs=1e-5)
    # the top-left corner sees only its in-bounds 2x2 neighbourhood {1, 2, 4, 5}
    corner = np.array([1.0, 2.0, 4.0, 5.0])
    assert y[0, 0, 0] == pytest.approx((1 - corner.mean()) / corner.std(), abs=1e-5)


def test_lcn_zero_local_mean_and_eps_floor():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(2, 9, 9)).astype(np.float32)
    lcn = LocalContrastNorm(5, 0.01)
    y = lcn(torch.from_numpy(x)[None])[0].numpy()
    # interior pixel, channel 1: direct numpy computation
    win = x[1, 2:7, 2:7].astype(np.float64)
    assert win.std() > 0.01
    assert y[1, 4, 4] == pytest.approx((x[1, 4, 4] - win.mean()) / win.std(), abs=1e-4)
    # centred on its own neighbourhood: the window's values normalised by its mean/std have zero mean,
    # and the output at every pixel is its own window's normalised value
    assert np.mean((win - win.mean()) / win.std()) == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(y, _lcn_numpy(x, 5, 0.01), atol=1e-4)
    # invariant to local gain and offset where std > eps; constant input -> 0 (std below eps)
    y2 = lcn(torch.from_numpy(3 * x + 7)[None])[0].numpy()
    assert np.allclose(y, y2, atol=1e-3)
    assert np.allclose(lcn(torch.full((1, 1, 6, 6), 4.0)).numpy(), 0.0)
    # shape kept on tiny inputs
    assert lcn(torch.zeros(1, 3, 1, 2)).shape == (1, 3, 1, 2)


# ---------------------------------------------------------------------------------- CLI


def _parse(argv):
    class P(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(message)
    parser = P(prog="explorer")
    sub = parser.add_subparsers(dest="command", parser_class=P)
    add_spec_commands(sub)
    return parser.parse_args(argv)


def test_cli_check_summary_export_presets(tmp_path, capsys):
    sample = str(SAMPLES / "lenet5.json")
    assert run_spec_command(_parse(["spec", "check", sample])) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{sample}: valid cnn network, 13 layers, 61,706 parameters, output shape (10,)"

    assert run_spec_command(_parse(["spec", "summary", "--preset", "lenet5"])) == 0
    out = capsys.readouterr().out
    assert "61,706" in out and "16/4" in out

    target = tmp_path / "model.py"
    assert run_spec_command(_parse(["spec", "export", "--preset", "unet-small", "--out", str(target)])) == 0
    ns: dict = {}
    exec(target.read_text(), ns)
    assert ns["build"]()(torch.zeros(1, 1, 32, 32)).shape == (1, 4, 32, 32)

    assert run_spec_command(_parse(["spec", "export", sample, "--out", str(tmp_path / "m2.py")])) == 0
    capsys.readouterr()
    assert run_spec_command(_parse(["spec", "presets"])) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == S.preset_names()


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    S.save_spec(net((1, 5, 5), L("ReLU"), L("Tanh"), L("Conv2d", out_channels=4, kernel_size=7)), bad)
    with pytest.raises(SpecError, match=r"bad.json: Conv2d #3: kernel 7 is larger than its 5x5 input$"):
        run_spec_command(_parse(["spec", "check", str(bad)]))
    assert run_spec_command(_parse(["spec", "summary", str(bad)])) == 2
    assert "Conv2d #3: kernel 7" in capsys.readouterr().out
    with pytest.raises(SpecError):
        run_spec_command(_parse(["spec", "export", str(bad), "--out", str(tmp_path / "x.py")]))
    assert not (tmp_path / "x.py").exists()
    with pytest.raises(ValueError):
        run_spec_command(_parse(["spec", "summary"]))
    with pytest.raises(ValueError):
        run_spec_command(_parse(["spec", "summary", str(bad), "--preset", "lenet5"]))
    with pytest.raises(SpecError, match="unknown preset"):
        run_spec_command(_parse(["spec", "summary", "--preset", "nope"]))
    with pytest.raises(ValueError):
        _parse(["spec", "export", "--preset", "lenet5"])      # --out is required


@pytest.mark.parametrize("change, words", [
    (lambda d: d.__setitem__("family", "rbm"), "an RBM network is a single RBM layer here"),
    (lambda d: d["hparams"].__setitem__("batch_size", 0), "batch size must be a whole number >= 1, got 0"),
    (lambda d: d["hparams"].__setitem__("lr", "fast"), "learning rate must be a positive number, got 'fast'"),
], ids=["conv layers as an RBM", "batch size 0", "lr a word"])
def test_check_refuses_what_train_refuses(tmp_path, change, words):
    """`spec check` called these valid, and `train` refused each of them."""
    from explorer.cli import main

    d = json.loads((SAMPLES / "lenet5.json").read_text())
    change(d)
    path = tmp_path / "net.json"
    path.write_text(json.dumps(d))
    with pytest.raises(SpecError) as caught:
        run_spec_command(_parse(["spec", "check", str(path)]))
    assert str(caught.value).startswith(f"{path}: {words}")
    assert main(["inspect", str(path)]) == 2
    assert main(["train", d["family"], "--spec", str(path), "--epochs", "1", "--quiet"]) == 2
