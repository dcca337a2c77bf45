"""The autoencoder family: exact gradient steps of the lecture's loss, corruption, learning, the engine."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from explorer.core.data.datasets import Dataset
from explorer.core.engine.session import TrainingSession
from explorer.core.engine.uniforms import FixedDraws, NumpyUniforms, UniformSource
from explorer.core.families import registry as families
from explorer.core.families.autoencoder.trainer import (
    LIVE,
    NEEDS_RESET,
    NOISE_KINDS,
    Autoencoder,
    AutoencoderConfig,
    AutoencoderTrainer,
    config_from_spec,
    corrupt,
    normals,
)
from explorer.core.persist.runfolder import load_run, restore_session, save_run
from explorer.core.spec.network import LayerSpec, NetworkSpec, load_preset
from tests.helpers import wait_until

pytestmark = pytest.mark.usefixtures("one_thread")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_sgd_step(x_in, target, W, b, d, W_dec, lr):
    """One gradient step of L = sum_i (target_i - x'_i)^2 for one example, backprop by hand.

    ``W_dec`` None means tied weights (the decoder uses W^T)."""
    a = W @ x_in + b
    h = sigmoid(a)
    Wd = W.T if W_dec is None else W_dec
    y = sigmoid(Wd @ h + d)
    loss = np.sum((target - y) ** 2)
    dy = 2.0 * (y - target)          # dL/dx'
    dz = dy * y * (1.0 - y)          # through the output sigmoid
    dWd = np.outer(dz, h)            # (n_in, n_hidden)
    dd = dz
    dh = Wd.T @ dz
    da = dh * h * (1.0 - h)          # through the hidden sigmoid
    dW = np.outer(da, x_in)          # encoder part
    db = da
    if W_dec is None:
        dW = dW + dWd.T              # tied: W also gets the decoder's gradient
        new_dec = None
    else:
        new_dec = W_dec - lr * dWd
    return loss, W - lr * dW, b - lr * db, d - lr * dd, new_dec


def tiny_dataset(x):
    x = np.asarray(x, dtype=np.float32)
    return Dataset("tiny", x, None, x.copy(), None, (1, x.shape[1]))


def tiny_trainer(x, tied, **kw):
    cfg = AutoencoderConfig(hidden=2, tied=tied, lr=0.5, momentum=0.0, batch_size=1, device="cpu", **kw)
    return AutoencoderTrainer(cfg, dataset=tiny_dataset(x))


def set_weights(tr, W, b, d, W_dec):
    t = {"model.W": torch.tensor(W, dtype=torch.float32), "model.b": torch.tensor(b, dtype=torch.float32),
         "model.d": torch.tensor(d, dtype=torch.float32)}
    if W_dec is not None:
        t["model.W_dec"] = torch.tensor(W_dec, dtype=torch.float32)
    tr.load_state_tensors(t)


W0 = np.array([[0.5, -0.3, 0.8], [-0.6, 0.2, 0.4]])
B0 = np.array([0.1, -0.2])
D0 = np.array([0.05, -0.1, 0.2])
WD0 = np.array([[0.3, -0.7], [0.9, 0.1], [-0.4, 0.6]])
X0 = np.array([0.9, 0.2, 0.6])


@pytest.mark.parametrize("tied", [False, True])
def test_one_sgd_step_matches_hand_backprop(tied):
    tr = tiny_trainer([X0], tied)
    W_dec = None if tied else WD0
    set_weights(tr, W0, B0, D0, W_dec)
    loss = tr.train_step()["loss"]
    assert loss.dim() == 0
    exp_loss, W1, b1, d1, Wd1 = numpy_sgd_step(X0, X0, W0, B0, D0, W_dec, 0.5)
    m = tr.model
    assert float(loss) == pytest.approx(exp_loss, rel=1e-5)
    np.testing.assert_allclose(m.W.detach().numpy(), W1, atol=1e-6)
    np.testing.assert_allclose(m.b.detach().numpy(), b1, atol=1e-6)
    np.testing.assert_allclose(m.d.detach().numpy(), d1, atol=1e-6)
    if tied:
        assert m.W_dec is None and "model.W_dec" not in tr.state_tensors()
    else:
        np.testing.assert_allclose(m.W_dec.detach().numpy(), Wd1, atol=1e-6)


def test_batch_loss_is_sum_of_squares_per_example_averaged():
    x = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.3]])
    tr = tiny_trainer(x, False)
    tr.config.batch_size = 2
    set_weights(tr, W0, B0, D0, WD0)
    loss = float(tr.train_step()["loss"])
    per = [numpy_sgd_step(xi, xi, W0, B0, D0, WD0, 0.0)[0] for xi in x]
    assert loss == pytest.approx(np.mean(per), rel=1e-5)


def test_denoising_loss_is_against_the_clean_input():
    tr = tiny_trainer([X0], False, noise="masking", noise_level=0.5)
    set_weights(tr, W0, B0, D0, WD0)
    # masking with these draws zeroes the second pixel (u < 0.5): x~ = (0.9, 0, 0.6) != x
    tr.noise = FixedDraws([torch.tensor([[0.7, 0.2, 0.9]])])
    x_tilde = np.array([0.9, 0.0, 0.6])
    with torch.no_grad():
        _, recon = tr.model(torch.tensor(x_tilde[None], dtype=torch.float32))
    clean_loss = float(((recon[0] - torch.tensor(X0, dtype=torch.float32)) ** 2).sum())
    noisy_target_loss = float(((recon[0] - torch.tensor(x_tilde, dtype=torch.float32)) ** 2).sum())
    loss = float(tr.train_step()["loss"])
    assert loss == pytest.approx(clean_loss, rel=1e-6)
    assert abs(loss - noisy_target_loss) > 1e-3
    # and the update is the hand-computed step with input x~ and target x
    exp_loss, W1, b1, d1, Wd1 = numpy_sgd_step(x_tilde, X0, W0, B0, D0, WD0, 0.5)
    assert loss == pytest.approx(exp_loss, rel=1e-5)
    np.testing.assert_allclose(tr.model.W.detach().numpy(), W1, atol=1e-6)
    np.testing.assert_allclose(tr.model.W_dec.detach().numpy(), Wd1, atol=1e-6)


# -- corruption ---------------------------------------------------------------------------------
N_BIG = 200_000


def big_x():
    g = torch.Generator().manual_seed(5)
    return 0.1 + 0.8 * torch.rand(N_BIG, generator=g).reshape(400, 500)


def test_corrupt_none_returns_x_unchanged():
    x = big_x()
    x0 = x.clone()
    out = corrupt(x, "none", 0.7, NumpyUniforms(0))
    assert torch.equal(out, x0) and torch.equal(x, x0)


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_masking_zeroes_a_fraction_level(level):
    x = big_x()
    x0 = x.clone()
    out = corrupt(x, "masking", level, NumpyUniforms(1))
    assert torch.equal(x, x0)
    zero = out == 0
    assert zero.float().mean().item() == pytest.approx(level, abs=0.005)
    assert torch.equal(out[~zero], x[~zero])


@pytest.mark.parametrize("level", [0.2, 0.6])
def test_salt_and_pepper(level):
    x = big_x()
    x0 = x.clone()
    out = corrupt(x, "salt_pepper", level, NumpyUniforms(2))
    assert torch.equal(x, x0)
    pepper = (out == 0).float().mean().item()
    salt = (out == 1).float().mean().item()
    assert pepper + salt == pytest.approx(level, abs=0.005)
    assert pepper == pytest.approx(level / 2, abs=0.005) and salt == pytest.approx(level / 2, abs=0.005)
    kept = (out != 0) & (out != 1)
    assert torch.equal(out[kept], x[kept])


@pytest.mark.parametrize("source", ["numpy", "torch", "box-muller"])
def test_gaussian_noise_mean_and_std(source):
    x = big_x()
    x0 = x.clone()

    def make():
        if source == "numpy":
            return NumpyUniforms(3)
        if source == "torch":
            return UniformSource(torch.Generator().manual_seed(3))
        g = torch.Generator().manual_seed(3)
        return FixedDraws([torch.rand(x.shape, generator=g), torch.rand(x.shape, generator=g)])

    out = corrupt(x, "gaussian", 0.3, make())
    assert torch.equal(x, x0)
    noise = (out - x).double()
    assert noise.mean().item() == pytest.approx(0.0, abs=0.005)
    assert noise.std().item() == pytest.approx(0.3, rel=0.02)
    assert out.min() < 0 or out.max() > 1  # additive noise, not clamped
    assert torch.equal(out, corrupt(x, "gaussian", 0.3, make()))  # deterministic under the seed


def test_normals_and_bad_kind():
    z = normals(NumpyUniforms(0), (1000, 10), torch.zeros(1))
    assert z.shape == (1000, 10) and abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05
    with pytest.raises(ValueError, match="noise must be one of"):
        corrupt(torch.zeros(3), "speckle", 0.1, NumpyUniforms(0))


# -- the model, config ---------------------------------------------------------------------------
def test_model_shapes_and_init():
    g = torch.Generator().manual_seed(0)
    m = Autoencoder(64, 16, generator=g)
    assert m.W.shape == (16, 64) and m.b.shape == (16,) and m.d.shape == (64,) and m.W_dec.shape == (64, 16)
    r = 4 * np.sqrt(6 / 80)
    assert m.W.abs().max().item() <= r and m.W.abs().max().item() > 0.8 * r
    t = Autoencoder(64, 16, tied=True, init_std=0.01, generator=g)
    assert t.W_dec is None and t.W.std().item() == pytest.approx(0.01, rel=0.2)
    h, xr = t(torch.rand(5, 64))
    assert h.shape == (5, 16) and xr.shape == (5, 64)
    assert torch.allclose(xr, torch.sigmoid(h @ t.W + t.d))  # tied: the decoder uses W^T


def test_config_validate_and_roundtrip():
    cfg = AutoencoderConfig(noise="gaussian", noise_level=0.5, tied=True)
    assert AutoencoderConfig.from_dict(json.loads(json.dumps(cfg.to_dict())) | {"junk": 1}) == cfg
    for bad in (dict(hidden=0), dict(lr=0), dict(momentum=1.0), dict(batch_size=0), dict(noise="blur"),
                dict(noise="masking", noise_level=1.5), dict(noise_level=-0.1), dict(init_std=-1.0)):
        with pytest.raises(ValueError):
            AutoencoderConfig(**bad).validate()
    assert LIVE == {"lr", "momentum", "batch_size", "noise", "noise_level"}
    assert "hidden" in NEEDS_RESET and "tied" in NEEDS_RESET
    assert NOISE_KINDS == ("none", "gaussian", "masking", "salt_pepper")


# -- learning -----------------------------------------------------------------------------------
def train_epochs(tr, epochs):
    while tr.epoch < epochs:
        tr.train_step()


@pytest.mark.parametrize("noise", ["none", "gaussian"])
def test_learns_digits(digits, noise):
    tr = AutoencoderTrainer(AutoencoderConfig(hidden=32, noise=noise, noise_level=0.3, device="cpu"), dataset=digits)
    before = tr.evaluate()
    train_epochs(tr, 4)
    after = tr.evaluate()
    assert after["heldout_loss"] < 0.3 * before["heldout_loss"]
    assert after["heldout_mse"] == pytest.approx(after["heldout_loss"] / 64)
    if noise == "none":
        assert after["heldout_loss_noisy"] == after["heldout_loss"]
    else:
        assert after["heldout_loss_noisy"] > after["heldout_loss"]
        assert after["heldout_loss_noisy"] < 0.5 * before["heldout_loss_noisy"]
    expected = "Autoencoder 64-32-64 on digits" if noise == "none" else \
        "Denoising autoencoder 64-32-64 (gaussian noise 0.3) on digits"
    assert tr.describe().startswith(expected)


# -- the engine ---------------------------------------------------------------------------------
def test_session_controls(digits):
    cfg = AutoencoderConfig(hidden=16, batch_size=20, device="cpu", seed=3)
    s = TrainingSession(AutoencoderTrainer(cfg, dataset=digits))
    try:
        s.step(3)
        assert s.wait(5) and s.trainer.step == 3 and len(s.metrics.steps) == 3
        assert "loss" in s.metrics.steps[-1] and s.metrics.evals[0]["heldout_loss"] > 0
        s.set_hparams(noise="masking", noise_level=0.5, lr=0.05, momentum=0.5)
        s.step()
        assert s.wait(5)
        tr = s.trainer
        assert (tr.config.noise, tr.config.noise_level) == ("masking", 0.5)
        assert tr.optimizer.param_groups[0]["lr"] == 0.05 and tr.optimizer.param_groups[0]["momentum"] == 0.5
        notices = s.pop_notices()
        assert any("noise = masking" in n and "applied now" in n for n in notices)
        s.set_hparams(hidden=20)
        s.set_hparams(noise_level=2.0)  # refused: masking is a probability
        s.step()
        assert s.wait(5)
        notices = s.pop_notices()
        assert any("hidden = 20" in n and "Reset" in n for n in notices)
        assert any("refused" in n for n in notices) and tr.config.noise_level == 0.5
        # reset re-initialises from the seed, with the new size
        old = s.run_id
        s.reset()
        assert wait_until(lambda: s.run_id == old + 1)
        assert s.wait(5)
        fresh = AutoencoderTrainer(dataclasses.replace(tr.config), dataset=digits)
        assert tr.step == 0 and tr.model.W.shape == (20, 64)
        assert torch.equal(tr.model.W, fresh.model.W) and torch.equal(tr.model.W_dec, fresh.model.W_dec)
        assert torch.equal(tr.model.d, fresh.model.d)
        # snapshot shapes
        s.subscribe()
        assert wait_until(lambda: s.latest_snapshot() is not None and s.latest_snapshot().run_id == s.run_id)
        a = s.latest_snapshot().arrays
        P = cfg.n_probes
        assert a["image_shape"] == (8, 8)
        assert a["probe_clean"].shape == (P, 64) and a["probe_noisy"].shape == (P, 64)
        assert a["probe_recon"].shape == (P, 64) and a["filters"].shape == (20, 64)
        assert a["codes"].shape == (cfg.n_heatmap, 20)
        assert (a["probe_noisy"] == 0).mean() > 0.3  # masking at 0.5 (plus the digits' own zeros)
        assert "scatter_codes" not in a
        assert all(isinstance(v, np.ndarray) for k, v in a.items() if k != "image_shape")
    finally:
        s.close()


def test_two_dimensional_code_gives_scatter(digits):
    tr = AutoencoderTrainer(AutoencoderConfig(hidden=2, n_scatter=100, device="cpu"), dataset=digits)
    tr.train_step()
    a = tr.snapshot()
    assert a["scatter_codes"].shape == (100, 2) and a["scatter_labels"].shape == (100,)
    assert a["scatter_labels"].dtype.kind == "i"
    np.testing.assert_array_equal(a["scatter_labels"], digits.test_y[:100])
    nolabels = Dataset("x", digits.train_x, None, digits.test_x, None, (8, 8))
    b = AutoencoderTrainer(AutoencoderConfig(hidden=2, n_scatter=100, device="cpu"), dataset=nolabels).snapshot()
    assert b["scatter_codes"].shape == (100, 2) and "scatter_labels" not in b


def test_reset_reloads_data_when_its_settings_change():
    tr = AutoencoderTrainer(AutoencoderConfig(dataset="bars", bars_size=4, hidden=5, device="cpu"))
    assert tr.apply_hparams({"bars_size": 5})
    tr.reset()
    assert tr.dataset.n_visible == 25 and tr.model.W.shape == (5, 25)
    with pytest.raises(ValueError, match="unknown setting"):
        tr.apply_hparams({"k": 2})


def test_run_folder_round_trip(tmp_path):
    cfg = AutoencoderConfig(dataset="bars", bars_size=4, hidden=6, batch_size=20, device="cpu",
                            noise="salt_pepper", noise_level=0.2, momentum=0.5)
    s = TrainingSession(families.make_trainer("autoencoder", cfg.to_dict()), eval_every=5)
    s.step(10)
    s.wait(10)
    out = save_run(s, tmp_path / "run")
    s.close()
    info = json.loads((out / "run.json").read_text())
    assert info["family"] == "autoencoder" and info["config"]["noise"] == "salt_pepper"
    names = set(s.trainer.state_tensors())
    assert {"model.W", "model.b", "model.d", "model.W_dec", "opt.W.momentum", "opt.W_dec.momentum"} <= names
    s2 = restore_session(load_run(out))
    try:
        t1, t2 = s.trainer, s2.trainer
        assert isinstance(t2, AutoencoderTrainer) and t2.step == 10 and t2.config == t1.config
        for name, tensor in t1.state_tensors().items():
            assert torch.equal(t2.state_tensors()[name], tensor), name
        s2.step(2)
        s2.wait(5)
        assert t2.step == 12
    finally:
        s2.close()


# -- builder specs ------------------------------------------------------------------------------
def test_config_from_preset():
    cfg = config_from_spec(load_preset("denoising-autoencoder"))
    assert cfg.hidden == 256 and cfg.dataset == "mnist" and cfg.upscale == 1
    assert (cfg.noise, cfg.noise_level, cfg.batch_size, cfg.momentum) == ("gaussian", 0.3, 64, 0.9)


def test_config_from_spec_picks_data_and_refuses_wrong_layouts():
    L = LayerSpec
    good = NetworkSpec("autoencoder", (64,), [L("Linear", {"out_features": 2}), L("Sigmoid"),
                                              L("Linear", {"out_features": 64}), L("Sigmoid")], {"tied": True})
    cfg = config_from_spec(good, AutoencoderConfig(dataset="mnist"))
    assert (cfg.dataset, cfg.upscale, cfg.hidden, cfg.tied) == ("digits", 1, 2, True)
    bars = NetworkSpec("autoencoder", (25,), [L("Linear", {"out_features": 8}), L("Sigmoid"),
                                              L("Linear", {"out_features": 25}), L("Sigmoid")])
    assert (config_from_spec(bars).dataset, config_from_spec(bars).bars_size) == ("bars", 5)
    bad = [
        NetworkSpec("autoencoder", (64,), [L("Linear", {"out_features": 8}), L("ReLU"),
                                           L("Linear", {"out_features": 64}), L("Sigmoid")]),
        NetworkSpec("autoencoder", (64,), [L("Linear", {"out_features": 8}), L("Sigmoid"),
                                           L("Linear", {"out_features": 10}), L("Sigmoid")]),
        NetworkSpec("autoencoder", (64,), [L("Linear", {"out_features": 8}), L("Sigmoid")]),
        NetworkSpec("autoencoder", (7,), [L("Linear", {"out_features": 3}), L("Sigmoid"),
                                          L("Linear", {"out_features": 7}), L("Sigmoid")]),
        load_preset("rbm-digits"),
    ]
    for spec in bad:
        with pytest.raises(ValueError):
            config_from_spec(spec)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("batch, dtype", [(128, torch.float32), (100, torch.float32), (37, torch.float32),
                                          (37, torch.float64), (1, torch.float32)])
def test_backprop_by_hand_is_autograds_bit_for_bit(tied, batch, dtype):
    """The written-out chain rule leaves autograd's gradients in ``.grad``, to the last bit, tied or not,
    whatever the batch size (1/N rounds unless N is a power of two), in double precision too (where a
    tied decoder's product taken the other way round differs)."""
    torch.manual_seed(batch)
    model = Autoencoder(50, 20, tied=tied, generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        model.b.uniform_(-1, 1)
        model.d.uniform_(-1, 1)
    target = torch.rand(batch, 50, dtype=dtype)
    x_in = target + 0.3 * torch.randn(batch, 50, dtype=dtype)
    _, recon = model(x_in)
    loss = ((recon - target) ** 2).sum(1).mean()
    loss.backward()
    want = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    got_loss = model.backprop(x_in, target)
    assert torch.equal(got_loss, loss.detach())
    assert set(want) == ({"W", "b", "d"} if tied else {"W", "b", "d", "W_dec"})
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, want[name]), name
    assert float(want["W"].abs().sum()) > 0
