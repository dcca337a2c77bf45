"""The CNN family: receptive fields, LCN, feature maps, training, image folders, run folders, CLI."""

import copy
import json

import numpy as np
import pytest
import torch

from explorer.core.data.datasets import DataError
from explorer.core.data.imagefolder import load_image_folder
from explorer.core.data.images import write_png
from explorer.core.engine.session import TrainingSession
from explorer.core.families.cnn.trainer import (
    CNNConfig,
    CNNTrainer,
    LayerGeometry,
    config_from_spec,
    effective_rf,
    forward_upto,
    layer_geometry,
    lcn,
    rf_box,
)
from explorer.core.families.registry import FAMILIES, make_trainer
from explorer.core.persist.runfolder import load_run, restore_trainer, save_run
from explorer.core.spec.layers import LocalContrastNorm
from explorer.core.spec.network import LayerSpec, NetworkSpec, infer, load_preset


def small_cnn(input_shape=(1, 16, 16), classes=10, lcn_layer=False, name="tiny") -> NetworkSpec:
    layers = [LayerSpec("Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 1, "padding": 1}),
              LayerSpec("ReLU")]
    if lcn_layer:
        layers.append(LayerSpec("LocalContrastNorm", {"size": 3, "eps": 0.01}))
    layers += [LayerSpec("MaxPool2d", {"kernel_size": 2, "stride": 2}),
               LayerSpec("Conv2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 0}),
               LayerSpec("ReLU"), LayerSpec("Flatten"), LayerSpec("Linear", {"out_features": classes}),
               LayerSpec("Softmax")]
    return NetworkSpec("cnn", input_shape, layers, {}, name)


def tiny_trainer(**kw) -> CNNTrainer:
    spec = small_cnn(lcn_layer=kw.pop("lcn_layer", False))
    cfg = config_from_spec(spec, CNNConfig(device="cpu", batch_size=32, eval_samples=200, **kw))
    return CNNTrainer(cfg)


# -- receptive fields -----------------------------------------------------------------------------
def test_lenet5_receptive_fields_equal_the_analytic_ones():
    spec = load_preset("lenet5")
    geo = layer_geometry(spec)
    # conv5 p2 -> tanh -> avgpool2 -> conv5 -> tanh -> avgpool2, by hand:
    # r: 1+4=5, 5, 5+1*1=6, 6+4*2=14, 14, 14+1*2=16; j: 1, 1, 2, 2, 2, 4; offset: -2 (padding 2) throughout
    assert [g.name for g in geo] == ["Conv2d #1", "Tanh #2", "AvgPool2d #3", "Conv2d #4", "Tanh #5", "AvgPool2d #6"]
    assert [g.size for g in geo] == [5, 5, 6, 14, 14, 16]
    assert [g.jump for g in geo] == [1, 1, 2, 2, 2, 4]
    assert [g.offset for g in geo] == [-2] * 6
    assert [g.shape for g in geo] == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5)]
    inf = infer(spec)
    for g in geo:  # the builder's table agrees
        assert (inf.layers[g.index - 1].rf_size, inf.layers[g.index - 1].rf_jump) == (g.size, g.jump)
    last = geo[-1]
    assert rf_box(last, 2, 2, (28, 28)) == (6, 6, 21, 21)     # centre unit: fully inside
    assert rf_box(last, 0, 0, (28, 28)) == (0, 0, 13, 13)     # corner: -2..13 clipped to the image
    assert rf_box(last, 4, 4, (28, 28)) == (14, 14, 27, 27)   # 14..29 clipped


def test_geometry_of_a_network_with_lcn_matches_infer():
    spec = load_preset("alexnet-small")
    geo = layer_geometry(spec)
    inf = infer(spec)
    assert len(geo) == 15 and geo[-1].name == "MaxPool2d #15"
    for g in geo:
        assert (inf.layers[g.index - 1].rf_size, inf.layers[g.index - 1].rf_jump) == (g.size, g.jump)
    lcn3 = geo[2]  # conv5 p2 (r 5) then LCN 5x5 (r 9), padding 2 each: offset -4
    assert (lcn3.name, lcn3.size, lcn3.jump, lcn3.offset) == ("LocalContrastNorm #3", 9, 1, -4)


@pytest.mark.parametrize("preset", ["lenet5", "alexnet-small"])
def test_effective_field_lies_inside_the_theoretical_box(preset):
    spec = load_preset(preset)
    torch.manual_seed(0)
    from explorer.core.spec.network import build_module
    model = build_module(spec).eval()
    c, h, w = spec.input_shape
    image = torch.rand(c, h, w)
    rng = np.random.default_rng(1)
    for g in layer_geometry(spec):
        for _ in range(3):
            ch, y, x = (int(rng.integers(0, n)) for n in g.shape)
            erf = effective_rf(model, image, g.index, ch, y, x).numpy()
            top, left, bottom, right = rf_box(g, y, x, (h, w))
            inside = np.zeros_like(erf, dtype=bool)
            inside[top:bottom + 1, left:right + 1] = True
            assert erf[~inside].max(initial=0.0) == 0.0, (g.name, ch, y, x)
            if erf.max() == 0.0:  # only a unit cut off by a ReLU (value 0) has no gradient at all
                with torch.no_grad():
                    assert forward_upto(model, image[None], g.index)[0, ch, y, x] == 0.0


def test_a_box_reaching_into_the_padding_is_clipped():
    g = LayerGeometry(1, "Conv2d #1", (1, 5, 5), size=5, jump=1, offset=-2)
    assert rf_box(g, 0, 0, (5, 5)) == (0, 0, 2, 2)
    assert rf_box(g, 4, 2, (5, 5)) == (2, 0, 4, 4)


# -- local contrast normalisation ------------------------------------------------------------------
def lcn_numpy(h: np.ndarray, size: int, eps: float) -> np.ndarray:
    """The lecture's formula, pixel by pixel, over the in-bounds neighbourhood."""
    out = np.zeros_like(h, dtype=np.float64)
    r = size // 2
    H, W = h.shape
    for y in range(H):
        for x in range(W):
            n = h[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].astype(np.float64)
            out[y, x] = (h[y, x] - n.mean()) / max(eps, n.std())
    return out


def test_lcn_is_the_lecture_formula():
    rng = np.random.default_rng(0)
    h = rng.random((1, 2, 12, 13)).astype(np.float32)
    h[0, 1, :5, :5] = 0.3  # a flat patch: sigma < eps there, the floor applies
    out = lcn(torch.from_numpy(h), size=5, eps=0.01).numpy()
    for c in range(2):
        np.testing.assert_allclose(out[0, c], lcn_numpy(h[0, c], 5, 0.01), atol=2e-4)


def test_lcn_output_has_zero_local_mean_where_the_local_std_exceeds_eps():
    # a texture whose period equals the window: every interior 5x5 window holds one full period, so m(N) and
    # sigma(N) are the same everywhere inside and the output's local mean must vanish there
    rng = np.random.default_rng(3)
    tile = rng.random((5, 5)).astype(np.float32)
    texture = np.tile(tile, (6, 6))                      # 30x30
    img = np.concatenate([texture, np.zeros((30, 30), np.float32) + 0.5], axis=1)  # right half flat: sigma = 0
    out = LocalContrastNorm(5, 1e-2)(torch.from_numpy(img)[None, None])
    sigma = torch.sqrt(torch.nn.functional.avg_pool2d(torch.from_numpy(img)[None, None] ** 2, 5, 1, 2,
                                                      count_include_pad=False)
                       - torch.nn.functional.avg_pool2d(torch.from_numpy(img)[None, None], 5, 1, 2,
                                                        count_include_pad=False) ** 2)[0, 0].numpy()
    local_mean = torch.nn.functional.avg_pool2d(out, 5, 1, 0)[0, 0].numpy()  # windows fully inside
    window_sigma = sigma[2:28, 2:58]
    textured = np.zeros_like(window_sigma, bool)
    textured[2:24, 2:24] = True  # windows whose every pixel has a full period around it
    assert (window_sigma[textured] > 1e-2).all()
    np.testing.assert_allclose(local_mean[textured], 0.0, atol=1e-5)
    flat = np.zeros_like(window_sigma, bool)
    flat[:, 34:] = True  # far inside the flat half: sigma = 0 < eps, output (h - m) / eps = 0
    np.testing.assert_allclose(out[0, 0].numpy()[2:28, 2:58][flat], 0.0, atol=1e-5)


def test_lcn_equalizes_gain_and_offset():
    rng = np.random.default_rng(1)
    h = torch.from_numpy(rng.random((1, 1, 16, 16)).astype(np.float32))
    a = lcn(h, 5, 1e-4)
    b = lcn(3.0 * h + 7.0, 5, 1e-4)
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


# -- the trainer ----------------------------------------------------------------------------------
def test_registered_and_cheap_default_config():
    assert (FAMILIES["cnn"].config_cls, FAMILIES["cnn"].trainer_cls) == (CNNConfig, CNNTrainer)
    cfg = CNNConfig()
    cfg.validate()
    assert cfg.preset == "lenet5" and cfg.network_spec().input_shape == (1, 28, 28)


def test_feature_maps_shown_are_the_ones_the_model_computes():
    tr = tiny_trainer(lcn_layer=True)
    for _ in range(5):
        tr.train_step()
    seen = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, i=i: seen.__setitem__(i, out.detach().clone()))
               for i, m in enumerate(tr.model.layers, start=1)]
    try:
        snap = tr.snapshot()
    finally:
        for h in handles:
            h.remove()
    assert snap["feature_layers"] == ["Conv2d #1", "ReLU #2", "LocalContrastNorm #3", "MaxPool2d #4",
                                      "Conv2d #5", "ReLU #6"]
    for i, fmap in zip(snap["feature_index"], snap["feature_maps"]):
        np.testing.assert_array_equal(fmap, seen[int(i)][0].numpy())
    # the same maps as running the model on the probe
    x = torch.tensor(snap["probe"])[None]
    with torch.no_grad():
        h = x
        for i, m in enumerate(tr.model.layers, start=1):
            h = m(h)
            if i in set(snap["feature_index"].tolist()):
                k = snap["feature_index"].tolist().index(i)
                np.testing.assert_allclose(snap["feature_maps"][k], h[0].numpy(), atol=1e-6)
    probs = torch.softmax(tr.net(x), 1)[0].detach().numpy()
    np.testing.assert_allclose(snap["probabilities"], probs, atol=1e-6)
    assert abs(snap["probabilities"].sum() - 1) < 1e-5
    # the LCN pair is that layer's input and output
    k = snap["feature_layers"].index("LocalContrastNorm #3")
    np.testing.assert_array_equal(snap["lcn_after"], snap["feature_maps"][k][:4])
    np.testing.assert_array_equal(snap["lcn_before"], snap["feature_maps"][k - 1][:4])


def test_snapshot_unit_receptive_field_and_probe_choice():
    tr = tiny_trainer()
    snap = tr.snapshot()
    # default unit: centre of channel 0 of the last image layer (ReLU #5: 6 maps of 3x3)
    assert snap["unit"].tolist() == [5, 0, 1, 1]
    tr.select_unit((1, 2, 0, 15))
    snap = tr.snapshot()
    assert snap["rf_box"].tolist() == [0, 14, 1, 15]  # conv3 padding 1 at the top-right corner
    erf = effective_rf(tr.model, tr.probe, 1, 2, 0, 15).numpy()
    np.testing.assert_allclose(snap["erf"], erf, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="outside"):
        tr.select_unit((1, 4, 0, 0))
    with pytest.raises(ValueError, match="no feature maps"):
        tr.select_unit((7, 0, 0, 0))
    drawn = np.zeros((16, 16), np.float32)
    drawn[4:12, 7:9] = 1.0
    tr.set_probe(image=drawn)
    snap = tr.snapshot()
    np.testing.assert_array_equal(snap["probe"][0], drawn)
    assert snap["probe_index"] == -1 and snap["probe_label"] == -1
    with pytest.raises(ValueError, match="16x16"):
        tr.set_probe(image=np.zeros((8, 8)))
    tr.set_probe(index=3)
    snap = tr.snapshot()
    assert snap["probe_index"] == 3 and snap["probe_label"] == snap["gallery_labels"][3]
    np.testing.assert_array_equal(snap["probe"], snap["gallery"][3])
    assert sorted(set(snap["gallery_labels"].tolist())) == list(range(10))  # every class in the gallery


def test_a_snapshot_shares_what_did_not_change_and_makes_the_rest_anew():
    """What changes only with the run, the gallery, the probe or an evaluation is the same read-only array
    from one snapshot to the next (copying it again was a tenth of LeNet-5's snapshot); the maps and the
    weights are new each time."""
    tr = tiny_trainer()
    tr.train_step()
    first = tr.snapshot()
    tr.train_step()
    second = tr.snapshot()
    kept = ("gallery", "gallery_labels", "probe", "confusion", "feature_index", "feature_channels", "rf_size",
            "rf_jump", "rf_offset")
    for key in kept:
        assert second[key] is first[key], key
        assert not second[key].flags.writeable, key
    with pytest.raises(ValueError, match="read-only"):
        second["gallery"][0] = 0.0
    for key in ("probabilities", "filters", "erf", "lcn_before", "lcn_after"):
        assert second[key] is not first[key] and second[key].flags.writeable, key
    assert all(a is not b for a, b in zip(first["feature_maps"], second["feature_maps"]))
    assert "misclassified" not in second
    # an evaluation: a new confusion matrix and the digits it got wrong
    tr.evaluate()
    third = tr.snapshot()
    assert third["confusion"] is not second["confusion"]
    np.testing.assert_array_equal(third["confusion"], tr._confusion)
    yt = np.asarray(tr.dataset.test_y[:len(tr._eval_pred)])
    wrong = np.flatnonzero(tr._eval_pred != yt)[:tr.config.n_misclassified]
    np.testing.assert_array_equal(third["misclassified_true"], yt[wrong])
    np.testing.assert_array_equal(third["misclassified_pred"], tr._eval_pred[wrong])
    assert third["eval_version"] == second["eval_version"] + 1
    # fewer misclassified asked for: the next snapshot has that many (not only after the next evaluation)
    tr.config.n_misclassified = 2
    assert len(tr.snapshot()["misclassified"]) == min(2, len(third["misclassified"]))
    # the data loaded again, as a move to another device does (it picks the gallery again, at the size asked for)
    tr.config.n_gallery = 12
    tr._load_data()
    moved = tr.snapshot()
    assert moved["gallery"] is not third["gallery"] and len(moved["gallery"]) == 12
    np.testing.assert_array_equal(moved["gallery"], tr._test_np[tr.gallery_indices])
    # another probe
    tr.set_probe(index=3)
    fourth = tr.snapshot()
    assert fourth["probe"] is not third["probe"]
    np.testing.assert_array_equal(fourth["probe"], fourth["gallery"][3])
    # a reset starts over: nothing of the run before is kept, and no evaluation yet
    tr.reset()
    fifth = tr.snapshot()
    assert all(fifth[key] is not fourth[key] for key in kept)
    assert "misclassified" not in fifth and not fifth["confusion"].any()
    np.testing.assert_array_equal(fifth["probe"], fifth["gallery"][0])


def test_lenet5_reaches_97_percent_on_the_digits():
    tr = CNNTrainer(CNNConfig(device="cpu", seed=0))
    s = TrainingSession(tr, epochs=8, eval_fraction=None)
    try:
        s.start()
        assert s.wait(timeout=300)
        assert s.error is None
    finally:
        s.close()
    ev = s.metrics.evals[-1]
    assert tr.dataset.name == "digits" and tr.input_shape == (1, 28, 28)
    assert ev["heldout_accuracy"] >= 0.97, ev
    snap = tr.snapshot()
    conf = snap["confusion"]
    assert conf.sum() == snap["heldout_evaluated"] == len(tr.dataset.test_y)
    assert np.trace(conf) / conf.sum() == pytest.approx(ev["heldout_accuracy"], abs=1e-6)
    assert len(snap["misclassified_true"]) == conf.sum() - np.trace(conf)
    assert (snap["misclassified_true"] != snap["misclassified_pred"]).all()


def test_alexnet_small_trains_on_grey_digits_repeated_to_three_channels():
    cfg = CNNConfig(preset="alexnet-small", device="cpu", batch_size=8, eval_samples=16)
    tr = CNNTrainer(cfg)
    x, _ = tr.next_batch()
    assert x.shape == (8, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2])
    m = tr.train_step()
    assert torch.isfinite(m["loss"])
    snap = tr.snapshot()
    assert "LCN" not in snap["lcn_note"] and "LocalContrastNorm #3" in snap["lcn_note"]
    assert len(snap["feature_maps"]) == 15
    assert snap["feature_layers"][4] == "Conv2d #5" and snap["feature_channels"][4] == 64
    assert snap["feature_maps"][4].shape == (32, 16, 16)  # at most 32 maps per layer are shipped
    assert len(snap["deep_filters"]) == 4 and snap["deep_filters"][0].shape == (16, 16, 5, 5)


def test_live_and_reset_settings():
    tr = tiny_trainer()
    notes = tr.apply_hparams({"lr": 0.2, "momentum": 0.5, "batch_size": 7})
    assert tr.optimizer.param_groups[0]["lr"] == 0.2 and tr.optimizer.param_groups[0]["momentum"] == 0.5
    assert all("applied now" in n for n in notes)
    assert tr.next_batch()[0].shape[0] == 7
    notes = tr.apply_hparams({"spec": None, "preset": "lenet5"})
    assert any("Reset" in n for n in notes)
    tr.reset()
    assert tr.input_shape == (1, 28, 28)
    with pytest.raises(ValueError, match="preset"):
        tr.apply_hparams({"spec": None, "preset": "unet-small"})


def test_config_from_spec():
    cfg = config_from_spec(load_preset("lenet5"), CNNConfig(seed=4))
    assert cfg.spec is None and cfg.preset == "lenet5" and cfg.seed == 4
    assert (cfg.lr, cfg.momentum, cfg.batch_size) == (0.01, 0.9, 64)  # the preset's hyper-parameters
    custom = small_cnn()
    cfg = config_from_spec(custom)
    assert cfg.spec["name"] == "tiny" and cfg.network_spec().layers[0].type == "Conv2d"
    with pytest.raises(ValueError, match="not a CNN"):
        config_from_spec(load_preset("rbm-digits"))
    too_few = small_cnn(classes=3)
    with pytest.raises(ValueError, match="3 outputs but digits has 10 classes"):
        CNNTrainer(config_from_spec(too_few, CNNConfig(device="cpu")))
    flat = NetworkSpec("cnn", (1, 8, 8), [LayerSpec("Conv2d", {"out_channels": 2, "kernel_size": 3})])
    with pytest.raises(ValueError, match="one score per class"):
        config_from_spec(flat)


# -- image folders --------------------------------------------------------------------------------
def make_folder(root, n_per_class=6, size=(12, 10)):
    rng = np.random.default_rng(0)
    for k, name in enumerate(("circle", "cross", "dash")):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n_per_class):
            img = (rng.random(size) * 60).astype(np.uint8)
            img[2 + k * 3: 4 + k * 3, :] = 255  # a class-specific stripe
            write_png(d / f"{i}.png", img)
    return root


def test_image_folder_skips_and_counts_bad_files(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "circle" / "broken.png").write_bytes(b"not a png at all")
    write_png(root / "cross" / "big.png", np.zeros((20, 20), np.uint8))
    (root / "notes.txt").write_text("ignored: not in a class folder")
    ds = load_image_folder(root, seed=0)
    assert ds.class_names == ("circle", "cross", "dash")
    assert ds.image_shape == (12, 10) and ds.channels == 1
    assert len(ds.train_y) + len(ds.test_y) == 18
    assert sorted(set(ds.test_y.tolist())) == [0, 1, 2]  # every class is held out too
    assert len(ds.skipped) == 2
    assert "skipped 2 file(s)" in ds.note and "broken.png" in ds.note and "big.png" in ds.note
    rgb = load_image_folder(root, mode="RGB")
    assert rgb.channels == 3 and rgb.train_x.shape[1] == 3 * 12 * 10


def test_image_folder_faults_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no readable images"):
        load_image_folder(tmp_path / "noimg")
    with pytest.raises(ValueError, match="image folder"):
        CNNConfig(dataset="folder").validate()


def test_cnn_trains_on_an_image_folder(tmp_path):
    root = make_folder(tmp_path / "imgs", n_per_class=10)
    spec = small_cnn(classes=3)
    tr = CNNTrainer(config_from_spec(spec, CNNConfig(dataset="folder", image_folder=str(root), device="cpu",
                                                     batch_size=8, lr=0.05)))
    assert tr.class_names == ("circle", "cross", "dash")
    assert tr._train.shape[1:] == (1, 16, 16)  # 12x10 resized to the network's 16x16
    first = tr.evaluate()["train_loss"]
    for _ in range(60):
        tr.train_step()
    assert tr.evaluate()["train_loss"] < first
    assert tr.snapshot()["class_names"] == ["circle", "cross", "dash"]


# -- run folders and the command line --------------------------------------------------------------
def _trained_and_saved(tr, steps, folder):
    """``steps`` steps of ``tr`` through a session, then its run folder written at ``folder``."""
    s = TrainingSession(tr)
    try:
        s.step(steps)
        s.wait(30)
        return save_run(s, folder)
    finally:
        s.close()


def test_on_the_cpu_the_convolutions_run_channels_last_and_a_saved_run_reads_back_bit_for_bit(tmp_path):
    """Channels-last on the CPU (image_layout: its max-pooling 8x faster): the same numbers as the default
    layout to float rounding, and a run folder's weights, written contiguous, restore the same model."""
    from explorer.core.persist.runfolder import cpu_state_tensors

    tr = tiny_trainer(lr=0.05)
    convs = [m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not convs[1].weight.is_contiguous()  # (one input channel: the first is both layouts at once)
    x = tr._test_eval[:5]
    default = copy.deepcopy(tr.model).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        torch.testing.assert_close(tr.model(x), default(x), rtol=1e-5, atol=1e-6)
    out = _trained_and_saved(tr, 6, tmp_path / "run")
    assert all(t.is_contiguous() for t in cpu_state_tensors(tr).values())
    back = restore_trainer(load_run(out))
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last)
               for c in back.model.modules() if isinstance(c, torch.nn.Conv2d))
    assert torch.equal(back._logits(x), tr._logits(x))


def test_run_folder_saves_and_reopens_a_cnn(tmp_path):
    tr = tiny_trainer(lr=0.05)
    out = _trained_and_saved(tr, 12, tmp_path / "run")
    back = restore_trainer(load_run(out))
    assert back.family == "cnn" and back.step == 12
    assert back.config.spec == tr.config.spec
    x = tr._test_eval[:5]
    torch.testing.assert_close(back._logits(x), tr._logits(x))
    for p, q in zip(back.model.parameters(), tr.model.parameters()):
        torch.testing.assert_close(back.optimizer.state[p]["momentum_buffer"], tr.optimizer.state[q]["momentum_buffer"])
    bad = dict(tr.state_tensors())
    bad["model.layers.0.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="layers.0.weight"):
        make_trainer("cnn", tr.config_dict()).load_state_tensors(bad)


def test_run_folder_keeps_the_probe_and_the_unit(tmp_path):
    tr = tiny_trainer()
    c, h, w = tr.input_shape
    drawn = np.zeros((h, w), np.float32)
    drawn[2:-2, w // 2] = 1.0  # a stroke drawn on the canvas
    s = TrainingSession(tr)
    try:
        s.call_in_thread(lambda: (tr.set_probe(image=drawn), tr.select_unit((1, 1, 2, 3))))
        s.step(2)
        s.wait(30)
        save_run(s, tmp_path / "drawn")
        s.call_in_thread(lambda: tr.set_probe(index=3))
        s.step(1)
        s.wait(30)
        save_run(s, tmp_path / "gallery")
    finally:
        s.close()
    back = restore_trainer(load_run(tmp_path / "drawn"))
    assert back.probe_index is None and back.unit == (1, 1, 2, 3)
    np.testing.assert_array_equal(back.probe.cpu().numpy(), np.broadcast_to(drawn, (c, h, w)))
    back = restore_trainer(load_run(tmp_path / "gallery"))
    assert back.probe_index == 3 and back.probe_label == tr.probe_label
    assert back.snapshot()["probe_index"] == 3


def test_cli_train_cnn_json(tmp_path, capsys):
    from explorer.cli import main
    spec = tmp_path / "tiny.json"
    from explorer.core.spec.network import save_spec
    save_spec(small_cnn(), spec)
    assert main(["train", "cnn", "--spec", str(spec), "--epochs", "1", "--quiet", "--json", "--device", "cpu",
                 "--lr", "0.05", "--eval-samples", "100"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["family"] == "cnn" and d["dataset"] == "digits" and d["epochs"] == 1
    assert 0.0 <= d["accuracy"] <= 1.0 and d["network"] == "tiny" and d["input_shape"] == [1, 16, 16]
    assert d["steps"] == len(d["history"]) * 45 and d["samples_per_s"] > 0
    assert main(["train", "cnn", "--preset", "unet-small", "--epochs", "1", "--quiet"]) == 2
    assert "not a CNN" in capsys.readouterr().err
    assert main(["train", "cnn", "--image-folder", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err
