"""The FCN segmentation family: metrics, scenes and masks, mask folders, shapes, training, comparison, runs."""

import json

import numpy as np
import pytest
import torch

from explorer.core.data.datasets import DataError
from explorer.core.data.images import write_png
from explorer.core.data.scenes import SHAPE_CLASSES, Shape, generate_scenes, load_mask_folder, render_scene, shape_mask
from explorer.core.engine.session import TrainingSession
from explorer.core.families.fcn.trainer import (
    FCNCompareConfig,
    FCNConfig,
    FCNTrainer,
    SkipComparison,
    check_fcn_spec,
    compare_config_from,
    config_from_spec,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    without_skips,
)
from explorer.core.families.registry import FAMILIES, make_trainer
from explorer.core.persist.runfolder import load_run, restore_session, save_run
from explorer.core.spec.network import LayerSpec, infer, load_preset, spec_to_dict


def small_spec(width: int = 2, size: int = 32):
    """unet-small with its channel counts divided by ``width`` (the classifier keeps its 4 classes)."""
    spec = load_preset("unet-small")
    spec.input_shape = (1, size, size)
    for layer in spec.layers:
        oc = layer.params.get("out_channels")
        if oc is not None and oc != 4:
            layer.params["out_channels"] = oc // width
    return spec


def tiny_config(**kw):
    base = dict(spec=spec_to_dict(small_spec(4)), n_train=48, n_test=16, eval_samples=16, batch_size=8,
                lr=0.003, device="cpu")
    base.update(kw)
    return FCNConfig(**base)


# -- metrics against hand-made examples -------------------------------------------------------------------
def test_iou_and_pixel_accuracy_by_hand():
    truth = np.array([[0, 0, 1, 1],
                      [0, 0, 1, 1],
                      [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 0],
                     [2, 2, 0, 0]])
    # class 0: truth 4 px, pred 6 px, both 3 -> 3 / 7; class 1: truth 4, pred 4, both 3 -> 3 / 5;
    # class 2: truth 4, pred 2, both 2 -> 2 / 4; class 3: absent from both -> undefined
    ious = iou_per_class(pred, truth, 4)
    np.testing.assert_allclose(ious[:3], [3 / 7, 0.6, 0.5])
    assert np.isnan(ious[3])
    assert mean_iou(ious) == pytest.approx((3 / 7 + 0.6 + 0.5) / 3)
    assert pixel_accuracy(pred, truth) == pytest.approx(8 / 12)
    conf = confusion_matrix(pred, truth, 4).numpy()
    assert conf.sum() == 12 and conf[2, 0] == 2 and conf[0, 1] == 1 and conf[1, 0] == 1
    # perfect, and all wrong
    assert np.allclose(iou_per_class(truth, truth, 3), 1.0) and pixel_accuracy(truth, truth) == 1.0
    wrong = (truth + 1) % 3
    assert np.allclose(iou_per_class(wrong, truth, 3), 0.0) and pixel_accuracy(wrong, truth) == 0.0
    # a class predicted where it is absent from the truth has IoU 0, not undefined
    assert iou_per_class(np.array([1, 1]), np.array([0, 0]), 2).tolist() == [0.0, 0.0]


# -- scenes and their masks ---------------------------------------------------------------------------------
def test_shape_masks_match_their_geometry():
    h = w = 32
    y, x = np.mgrid[0:h, 0:w]
    circle = shape_mask(Shape("circle", 15.0, 12.0, 6.0, 1.0), h, w)
    assert np.array_equal(circle, (x - 15.0) ** 2 + (y - 12.0) ** 2 <= 36.0)
    square = shape_mask(Shape("square", 10.0, 20.0, 4.0, 1.0), h, w)
    assert np.array_equal(square, (np.abs(x - 10) <= 4) & (np.abs(y - 20) <= 4)) and square.sum() == 81
    tri = shape_mask(Shape("triangle", 16.0, 16.0, 10.0, 1.0), h, w)
    rows = tri.sum(1)
    top, bottom = np.nonzero(rows)[0][[0, -1]]
    assert top in (6, 7) and bottom == 21  # apex at cy - r (a single point), base at cy + r/2
    assert rows[top] < rows[bottom]   # pointing up: wider at the bottom
    area = 0.5 * (np.sqrt(3) * 10) * 15
    assert abs(tri.sum() - area) < 0.15 * area


def test_later_shapes_paint_over_earlier_ones_in_image_and_mask():
    shapes = [Shape("square", 12, 12, 6, 0.7), Shape("circle", 16, 16, 5, 0.9)]
    img, mask = render_scene(shapes, 32, 32)
    c = shape_mask(shapes[1], 32, 32)
    s = shape_mask(shapes[0], 32, 32)
    assert np.all(mask[c] == SHAPE_CLASSES.index("circle")) and np.allclose(img[c], 0.9)
    assert np.all(mask[s & ~c] == SHAPE_CLASSES.index("square")) and np.allclose(img[s & ~c], 0.7)
    assert np.all(mask[~(s | c)] == 0) and np.all(img[~(s | c)] == 0)


def test_generated_masks_are_exactly_the_drawn_shapes():
    # without noise and texture the background is darker than 0.35 and every shape brighter than 0.6
    images, masks = generate_scenes(60, 32, 32, seed=3, noise=0.0, texture=False, max_shapes=3)
    assert images.shape == masks.shape == (60, 32, 32)
    assert images.dtype == np.float32 and masks.dtype == np.int64
    assert np.array_equal(images >= 0.6, masks > 0)
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    # the same seed gives the same scenes; noise and texture change the pixels, never the masks
    images2, masks2 = generate_scenes(60, 32, 32, seed=3, noise=0.0, texture=False, max_shapes=3)
    assert np.array_equal(images, images2) and np.array_equal(masks, masks2)
    noisy, masks3 = generate_scenes(60, 32, 32, seed=3, noise=0.2, texture=True, max_shapes=3)
    assert np.array_equal(masks, masks3) and not np.array_equal(noisy, images)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    other, _ = generate_scenes(60, 32, 32, seed=4)
    assert not np.array_equal(other, noisy)



def test_the_scenes_of_a_seed_stay_the_same_from_version_to_version():
    """A saved FCN run keeps its settings, not its data: reopened, its scenes are generated again, and its
    held-out curves go on only if they are the same scenes. Pinned: the masks (integer geometry, the same on
    every machine) by their digest, the images (float sines, whose last bits may vary by machine) by sum."""
    import hashlib

    images, masks = generate_scenes(40, seed=0)
    assert hashlib.sha256(masks.tobytes()).hexdigest() == \
        "1fc94e3aae08021682709793a70dfb3d0f25f63483f4798fa5448f5a3c063aa9"
    assert float(images.astype(np.float64).sum()) == pytest.approx(12654.827748, rel=1e-6)


# -- the user's image/mask folders ---------------------------------------------------------------------------
def test_mask_folder_reports_bad_pairs_by_name(tmp_path):
    d = tmp_path / "data"
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        write_png(d / "images" / f"ok{i}.png", (rng.random((16, 16)) * 255).astype(np.uint8))
        write_png(d / "masks" / f"ok{i}.png", rng.integers(0, 4, (16, 16)).astype(np.uint8))
    write_png(d / "images" / "wrongsize.png", np.zeros((16, 16), np.uint8))
    write_png(d / "masks" / "wrongsize.png", np.zeros((12, 16), np.uint8))
    write_png(d / "images" / "biglabel.png", np.zeros((16, 16), np.uint8))
    write_png(d / "masks" / "biglabel.png", np.full((16, 16), 255, np.uint8))
    (d / "images" / "broken.png").write_bytes(b"not a png at all")
    write_png(d / "masks" / "broken.png", np.zeros((16, 16), np.uint8))
    write_png(d / "images" / "nomask.png", np.zeros((16, 16), np.uint8))
    write_png(d / "images" / "large.png", np.zeros((20, 20), np.uint8))
    write_png(d / "masks" / "large.png", np.zeros((20, 20), np.uint8))
    ds = load_mask_folder(d, 16, 16, 4, seed=0)
    assert ds.train_x.shape[0] + ds.test_x.shape[0] == 4 and ds.test_x.shape[0] >= 1
    assert ds.train_y.dtype == np.int64 and ds.train_y.max() <= 3
    for name in ("wrongsize.png", "biglabel.png", "255", "broken.png", "nomask.png", "large.png", "20x20"):
        assert name in ds.note, name
    assert "4 of 9 pairs usable" in ds.note


def test_mask_folder_with_suffix_convention_and_no_usable_pair(tmp_path):
    d = tmp_path / "flat"
    d.mkdir()
    for i in range(3):
        write_png(d / f"a{i}.png", np.full((8, 8), 100, np.uint8))
        write_png(d / f"a{i}_mask.png", np.eye(8, dtype=np.uint8))
    ds = load_mask_folder(d, 8, 8, 2)
    assert ds.train_x.shape[0] + ds.test_x.shape[0] == 3
    assert np.array_equal(ds.train_y[0].reshape(8, 8), np.eye(8))
    with pytest.raises(DataError, match="no usable image/mask pair.*a0_mask.png: label values"):
        load_mask_folder(d, 8, 8, 1)
    with pytest.raises(DataError, match="no images found"):
        load_mask_folder(_empty(tmp_path), 8, 8, 2)
    with pytest.raises(DataError, match="no such folder"):
        load_mask_folder(tmp_path / "missing", 8, 8, 2)


def _empty(tmp_path):
    e = tmp_path / "empty"
    e.mkdir()
    return e


def test_fcn_trains_on_a_mask_folder(tmp_path):
    d = tmp_path / "pairs"
    d.mkdir()
    imgs, masks = generate_scenes(12, 16, 16, seed=1)
    for i in range(12):
        write_png(d / f"s{i}.png", (imgs[i] * 255).astype(np.uint8))
        write_png(d / f"s{i}_mask.png", masks[i].astype(np.uint8))
    cfg = tiny_config(spec=spec_to_dict(small_spec(4, size=16)), dataset="folder", data_dir=str(d))
    tr = FCNTrainer(cfg)
    assert tr.class_names == ["class0", "class1", "class2", "class3"]
    assert tr.dataset.train_x.shape[0] + tr.dataset.test_x.shape[0] == 12
    tr.train_step()
    assert "heldout_iou_class3" in tr.evaluate()


# -- the network ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 24, 32, 40])
@pytest.mark.parametrize("skips", [True, False])
def test_output_map_has_the_input_size(size, skips):
    tr = FCNTrainer(tiny_config(spec=spec_to_dict(small_spec(4, size)), skips=skips, n_train=4, n_test=4))
    x = torch.rand(3, 1, size, size)
    with torch.no_grad():
        logits = tr.model(x)
    assert logits.shape == (3, 4, size, size)
    snap = tr.snapshot()
    assert snap["probe_pred"].shape == (4, size, size) and snap["probe_probs"].shape == (4, 4, size, size)
    np.testing.assert_allclose(snap["probe_probs"].sum(1), 1.0, atol=1e-5)
    assert snap["probe_probs"].flags.c_contiguous and all(m.flags.c_contiguous for m in snap["up_maps"])
    # on the CPU the convolutions run channels-last (image_layout), the maps of a snapshot as ever
    convs = [m for m in tr.model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


def test_odd_sizes_and_other_misfits_get_a_message():
    odd = small_spec(4, 33)
    with pytest.raises(ValueError, match="cannot concatenate 32x32 with 33x33"):
        config_from_spec(odd)
    with pytest.raises(ValueError, match="output map is 32x32 but the input is 33x33"):
        tiny_config(spec=spec_to_dict(odd), skips=False).validate()
    flat = small_spec(4)
    flat.layers[-1:] = [LayerSpec("Flatten", {}), LayerSpec("Linear", {"out_features": 10})]
    with pytest.raises(ValueError, match="no fully connected"):
        check_fcn_spec(flat)
    three = small_spec(4)
    three.layers[-2].params["out_channels"] = 3
    three.hparams["classes"] = 3
    with pytest.raises(ValueError, match="generated scenes have 4 classes"):
        check_fcn_spec(three, "scenes")
    assert check_fcn_spec(three, "folder") == (1, 32, 32, 3)
    with pytest.raises(ValueError, match="not an FCN"):
        config_from_spec(load_preset("lenet5"))


def test_without_skips_drops_the_concats_and_narrows_the_next_convolutions():
    spec = load_preset("unet-small")
    plain = without_skips(spec)
    assert [layer.type for layer in plain.layers].count("Concat") == 0 and len(plain.layers) == len(spec.layers) - 2
    inf_a, inf_b = infer(spec), infer(plain)
    assert inf_b.valid and inf_b.output_shape == inf_a.output_shape == (4, 32, 32)
    # the Conv2d after each Concat now sees the up path's channels only
    conv_after = [i for i, layer in enumerate(plain.layers) if layer.type == "Conv2d"]
    assert inf_b.layers[conv_after[3]].input_shape == (32, 16, 16)
    assert inf_a.layers[conv_after[3] + 1].input_shape == (64, 16, 16)
    assert inf_b.total_params < inf_a.total_params
    with_cfg, without_cfg = FCNConfig(), FCNConfig(skips=False)
    assert with_cfg.training_spec().layers[9].type == "Concat"
    assert "Concat" not in [layer.type for layer in without_cfg.training_spec().layers]


def test_unet_small_preset_becomes_an_fcn_config():
    cfg = config_from_spec(load_preset("unet-small"))
    assert cfg.optimizer == "adam" and cfg.lr == 0.001 and cfg.batch_size == 16
    assert cfg.network_spec().name == "unet-small" and cfg.skips
    fcn, compare = FAMILIES["fcn"], FAMILIES["fcn-compare"]
    assert (fcn.config_cls, fcn.trainer_cls) == (FCNConfig, FCNTrainer) and compare.trainer_cls is SkipComparison


def test_step_metrics_evaluation_and_snapshot():
    tr = FCNTrainer(tiny_config(max_map_channels=4))
    m = tr.train_step()
    assert set(m) == {"loss", "pixel_accuracy"} and m["loss"].dim() == 0
    ev = tr.evaluate()
    for prefix in ("heldout", "train"):
        for key in ("loss", "pixel_accuracy", "miou", "iou_background", "iou_circle", "iou_square", "iou_triangle"):
            assert f"{prefix}_{key}" in ev
        ious = [ev[f"{prefix}_iou_{c}"] for c in SHAPE_CLASSES]
        assert ev[f"{prefix}_miou"] == pytest.approx(mean_iou(ious))
    snap = tr.snapshot()
    assert snap["class_names"] == list(SHAPE_CLASSES)
    assert snap["probe_images"].shape == (4, 32, 32) and snap["probe_masks"].dtype == np.int64
    assert np.array_equal(snap["probe_error"], (snap["probe_pred"] != snap["probe_masks"]).astype(np.uint8))
    # the up path: bottleneck, ConvT, Concat, Conv+ReLU, ConvT, Concat, Conv+ReLU; channels capped at 4
    assert snap["up_names"][0].startswith("bottleneck") and len(snap["up_maps"]) == 7
    assert [m.shape for m in snap["up_maps"]] == [(4, 8, 8), (4, 16, 16), (4, 16, 16), (4, 16, 16), (4, 32, 32),
                                                  (4, 32, 32), (4, 32, 32)]
    # a Concat row shows half up-path maps, half skip maps
    concat = snap["up_names"].index("#10 Concat")
    assert "Concat" in snap["up_names"][concat]


def test_live_and_reset_settings():
    tr = FCNTrainer(tiny_config())
    notes = tr.apply_hparams({"lr": 0.01, "skips": False})
    assert tr.optimizer.param_groups[0]["lr"] == 0.01
    assert any("after Reset" in n for n in notes)
    assert any(type(m).__name__ == "Concat" for m in tr.model.layers)
    tr.reset()
    assert not any(type(m).__name__ == "Concat" for m in tr.model.layers)
    with pytest.raises(ValueError, match="dataset must be one of"):
        tr.apply_hparams({"dataset": "digits"})
    with pytest.raises(ValueError, match="data_dir|folder"):
        tr.apply_hparams({"dataset": "folder"})


def test_a_bad_folder_on_reset_keeps_the_loaded_data(tmp_path):
    tr = FCNTrainer(tiny_config())
    tr.apply_hparams({"dataset": "folder", "data_dir": str(tmp_path / "nothing-here")})
    with pytest.raises(DataError, match="nothing-here"):
        tr.reset()
    assert tr.config.dataset == "scenes" and tr.config.data_dir is None


# -- training -------------------------------------------------------------------------------------------------
def test_skip_comparison_trains_both_in_lockstep_on_the_same_batches():
    cfg = compare_config_from(tiny_config())
    assert isinstance(cfg, FCNCompareConfig) and not hasattr(cfg, "skips")
    cmp_ = make_trainer("fcn-compare", cfg)
    a, b = cmp_.runs["skips"], cmp_.runs["noskips"]
    assert a.dataset is b.dataset and a.config.skips and not b.config.skips
    for _ in range(7):
        out = cmp_.train_step()
    assert torch.equal(a._order, b._order) and a._pos == b._pos and a.step == b.step == cmp_.step == 7
    assert set(out) == {"skips/loss", "skips/pixel_accuracy", "noskips/loss", "noskips/pixel_accuracy"}
    ev = cmp_.evaluate()
    assert "skips/heldout_miou" in ev and "noskips/heldout_miou" in ev
    snap = cmp_.snapshot()
    assert snap["skips/probe_pred"].shape == snap["noskips/probe_pred"].shape == snap["probe_masks"].shape
    n_with = sum(p.numel() for p in a.model.parameters())
    n_without = sum(p.numel() for p in b.model.parameters())
    assert n_without < n_with
    plain = FCNCompareConfig(spec=spec_to_dict(without_skips(small_spec(4))))
    with pytest.raises(ValueError, match="no skip connections"):
        plain.validate()


def test_run_folder_saves_and_reopens_an_fcn_run(tmp_path):
    tr = FCNTrainer(tiny_config())
    s = TrainingSession(tr)
    s.step(5)
    s.wait(10)
    before = tr.snapshot()["probe_probs"]
    save_run(s, tmp_path / "run")
    s.stop()
    run = load_run(tmp_path / "run")
    assert run.family == "fcn" and run.config["spec"]["name"] == "unet-small"
    s2 = restore_session(run)
    try:
        tr2 = s2.trainer
        assert isinstance(tr2, FCNTrainer) and tr2.step == 5
        np.testing.assert_allclose(tr2.snapshot()["probe_probs"], before, atol=1e-6)
        state = tr2.optimizer.state[next(tr2.model.parameters())]
        assert int(state["step"]) == 5 and "exp_avg_sq" in state
        s2.step(1)
        s2.wait(10)
        assert tr2.step == 6 and s2.error is None
    finally:
        s2.stop()


def test_comparison_run_folder_round_trip(tmp_path):
    cmp_ = SkipComparison(compare_config_from(tiny_config()))
    s = TrainingSession(cmp_)
    s.step(2)
    s.wait(10)
    save_run(s, tmp_path / "cmp")
    s.stop()
    s2 = restore_session(load_run(tmp_path / "cmp"))
    try:
        assert s2.trainer.family == "fcn-compare" and s2.trainer.step == 2
    finally:
        s2.stop()


# -- command line ----------------------------------------------------------------------------------------------
def test_cli_train_fcn_json(tmp_path, capsys):
    spec = tmp_path / "tiny.json"
    from explorer.core.spec.network import save_spec
    save_spec(small_spec(4), spec)
    from explorer.cli import main
    rc = main(["train", "fcn", "--spec", str(spec), "--scenes", "40", "--test-scenes", "10", "--epochs", "2",
               "--device", "cpu", "--no-skips", "--json", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "steps" in err  # the progress bar goes to stderr
    res = json.loads(out)
    assert res["family"] == "fcn" and res["skips"] is False and res["epochs"] == 2 and res["dataset"] == "scenes"
    assert 0 <= res["miou"] <= 1 and 0 <= res["pixel_accuracy"] <= 1
    assert res["miou"] == res["history"][-1]["heldout_miou"]
    assert set(res["iou"]) == set(SHAPE_CLASSES) and res["samples_per_s"] > 0 and res["steps"] == 2 * 3  # 40 scenes in batches of 16
    assert (tmp_path / "run" / "weights.safetensors").exists()


@pytest.mark.parametrize("args,msg", [
    (["--mask-folder", "/nonexistent-masks"], "nonexistent-masks"),
    (["--preset", "lenet5"], "not an FCN"),
    (["--noise", "3"], "--noise"),
])
def test_cli_bad_fcn_arguments_exit_2_with_one_line(args, msg, capsys):
    from explorer.cli import main
    assert main(["train", "fcn", "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("explorer: error:") and msg in err


def test_batch_pixel_accuracy_equals_the_argmax_share():
    from explorer.core.families.fcn.trainer import batch_pixel_accuracy

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 9, 7, generator=g)
    y = torch.randint(0, 4, (3, 9, 7), generator=g)
    assert float(batch_pixel_accuracy(logits, y)) == float((logits.argmax(1) == y).float().mean())
    y = logits.argmax(1)
    assert float(batch_pixel_accuracy(logits, y)) == 1.0
