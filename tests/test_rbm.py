"""The RBM and contrastive divergence against the lecture's equations, with exact expectations."""

import numpy as np
import pytest
import torch

from explorer.core.engine.uniforms import FixedDraws
from explorer.core.families.rbm.model import RBM, ContrastiveDivergence, binarize


def make_rbm(W, b, d):
    rbm = RBM(len(b), len(d))
    with torch.no_grad():
        rbm.W.copy_(torch.tensor(W, dtype=torch.float32))
        rbm.b.copy_(torch.tensor(b, dtype=torch.float32))
        rbm.d.copy_(torch.tensor(d, dtype=torch.float32))
    return rbm


def test_cd1_update_by_hand():
    # W=0, b=0, d=0: every conditional probability is exactly 0.5, so the draws decide the samples
    rbm = make_rbm([[0, 0], [0, 0]], [0, 0], [0, 0])
    draws = [torch.tensor([[0.3, 0.7]]),   # h^ ~ p(h|x): 0.3<0.5 -> 1, 0.7 -> 0   => h^ = [1, 0]
             torch.tensor([[0.6, 0.4]]),   # x~ ~ p(x|h^):                          => x~ = [0, 1]
             torch.tensor([[0.8, 0.1]])]   # h~ ~ p(h|x~):                          => h~ = [0, 1]
    cd = ContrastiveDivergence(rbm, lr=0.5, k=1, uniform=FixedDraws(draws))
    stats = cd.step(torch.tensor([[1.0, 0.0]]))
    assert stats.h_hat.tolist() == [[1.0, 0.0]]
    assert stats.x_tilde.tolist() == [[0.0, 1.0]]
    assert stats.h_tilde.tolist() == [[0.0, 1.0]]
    # w_ij += gamma (x_i h^_j - x~_i h~_j); b_i += gamma (x_i - x~_i); d_j += gamma (h^_j - h~_j)
    assert rbm.W.tolist() == [[0.5, 0.0], [0.0, -0.5]]
    assert rbm.b.tolist() == [0.5, -0.5]
    assert rbm.d.tolist() == [0.5, -0.5]
    # the training reconstruction error compares x with p(x|h^) = [0.5, 0.5]
    assert stats.recon_error.item() == pytest.approx(0.25)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_cd1_batch_update_matches_independent_numpy():
    rng = np.random.default_rng(3)
    W = rng.normal(0, 0.5, (4, 3))
    b = rng.normal(0, 0.5, 4)
    d = rng.normal(0, 0.5, 3)
    x0 = (rng.random((5, 4)) < 0.5).astype(float)
    u1, u2, u3 = rng.random((5, 3)), rng.random((5, 4)), rng.random((5, 3))
    # the lecture's steps, written out in numpy
    h_hat = (u1 < sigmoid(x0 @ W + d)).astype(float)
    x_t = (u2 < sigmoid(h_hat @ W.T + b)).astype(float)
    h_t = (u3 < sigmoid(x_t @ W + d)).astype(float)
    gamma = 0.1
    W_new = W + gamma * (x0.T @ h_hat - x_t.T @ h_t) / 5
    b_new = b + gamma * (x0 - x_t).mean(0)
    d_new = d + gamma * (h_hat - h_t).mean(0)

    rbm = make_rbm(W, b, d)
    to_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    cd = ContrastiveDivergence(rbm, lr=gamma, k=1, uniform=FixedDraws([to_t(u1), to_t(u2), to_t(u3)]))
    cd.step(to_t(x0))
    np.testing.assert_allclose(rbm.W.numpy(), W_new, atol=1e-6)
    np.testing.assert_allclose(rbm.b.numpy(), b_new, atol=1e-6)
    np.testing.assert_allclose(rbm.d.numpy(), d_new, atol=1e-6)


def test_momentum_accumulates_the_lecture_update():
    rbm = make_rbm([[0.0]], [0.0], [0.0])
    lo, hi = torch.tensor([[0.0]]), torch.tensor([[0.9999]])
    # each step: h^ = 1 (u=0 < p), x~ = 0 and h~ = 0 (u=0.9999 > p): the update is +gamma on W, b and d
    cd = ContrastiveDivergence(rbm, lr=1.0, momentum=0.5, uniform=FixedDraws([lo, hi, hi, lo, hi, hi]))
    cd.step(torch.tensor([[1.0]]))
    assert (rbm.W.item(), rbm.b.item(), rbm.d.item()) == (1.0, 1.0, 1.0)
    cd.step(torch.tensor([[1.0]]))  # velocity 0.5 * 1 + 1 = 1.5
    assert (rbm.W.item(), rbm.b.item(), rbm.d.item()) == (2.5, 2.5, 2.5)


def test_cdk_uses_k_gibbs_steps():
    rbm = make_rbm([[0.0]], [0.0], [0.0])
    half = torch.tensor([[0.25]])  # below 0.5 -> sample 1
    cd = ContrastiveDivergence(rbm, lr=1.0, k=3, uniform=FixedDraws([half] * 7))
    cd.step(torch.tensor([[1.0]]))  # 1 + 2*3 draws: every sample 1 -> positive == negative, no change
    assert rbm.W.item() == 0.0 and rbm.b.item() == 0.0 and rbm.d.item() == 0.0
    with pytest.raises(RuntimeError, match="ran out"):
        cd.step(torch.tensor([[1.0]]))


def test_energy_and_free_energy_agree():
    rng = np.random.default_rng(0)
    rbm = make_rbm(rng.normal(0, 1, (3, 2)), rng.normal(0, 1, 3), rng.normal(0, 1, 2))
    x = torch.tensor([[1.0, 0.0, 1.0]])
    hs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    energies = torch.stack([rbm.energy(x, h[None])[0] for h in hs])
    # F(x) = -log sum_h exp(-E(x,h)), summing over all four hidden states
    assert rbm.free_energy(x).item() == pytest.approx(-torch.logsumexp(-energies, 0).item(), abs=1e-5)
    # E(x,h) = -x'Wh - b'x - d'h by hand for h = [1, 1]
    Wn, bn, dn = rbm.W.numpy(), rbm.b.numpy(), rbm.d.numpy()
    xe, he = np.array([1, 0, 1.0]), np.array([1, 1.0])
    assert energies[3].item() == pytest.approx(-(xe @ Wn @ he) - bn @ xe - dn @ he, abs=1e-5)


def test_binarize_modes():
    x = torch.tensor([[0.2, 0.5, 0.51, 1.0]])
    assert binarize(x, "threshold").tolist() == [[0.0, 0.0, 1.0, 1.0]]
    from explorer.core.engine.uniforms import NumpyUniforms
    many = binarize(x.expand(20000, 4).contiguous(), "sample", NumpyUniforms(0))
    assert set(many.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(many.mean(0).numpy(), x[0].numpy(), atol=0.02)
    with pytest.raises(ValueError, match="binarization"):
        binarize(x, "grey")


def test_reconstruction_error_falls_on_digits():
    from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer

    tr = RBMTrainer(RBMConfig(dataset="digits", hidden=64, lr=0.1, batch_size=32, device="cpu", seed=0))
    before = tr.evaluate()["heldout_recon_error"]
    for _ in range(tr.steps_per_epoch * 10):
        tr.train_step()
    after = tr.evaluate()["heldout_recon_error"]
    assert tr.epoch == 10
    assert after < 0.6 * before, (before, after)
    # pseudo-likelihood improves too
    assert tr.evaluate()["heldout_pll"] > -28.0


def test_trainer_is_deterministic_under_seed():
    from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer

    a = RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=8, device="cpu", seed=7))
    b = RBMTrainer(RBMConfig(dataset="bars", bars_size=4, hidden=8, device="cpu", seed=7))
    for _ in range(20):
        a.train_step()
        b.train_step()
    assert torch.equal(a.rbm.W, b.rbm.W)


def test_pseudo_log_likelihood_is_the_sum_over_flipped_bits():
    rng = np.random.default_rng(5)
    rbm = make_rbm(rng.normal(0, 1, (6, 4)), rng.normal(0, 1, 6), rng.normal(0, 1, 4))
    x = torch.tensor((rng.random((7, 6)) < 0.5).astype(np.float32))
    f0 = rbm.free_energy(x)
    expected = torch.zeros(7)
    for i in range(6):
        xf = x.clone()
        xf[:, i] = 1 - xf[:, i]
        expected += torch.nn.functional.logsigmoid(rbm.free_energy(xf) - f0)
    # also with tiny chunks, so the chunking is exercised
    for max_el in (8_000_000, 5):
        torch.testing.assert_close(rbm.pseudo_log_likelihood(x, max_elements=max_el), expected, atol=1e-5, rtol=1e-5)


def test_pseudo_log_likelihood_on_a_subset_of_bits_is_scaled():
    rng = np.random.default_rng(6)
    rbm = make_rbm(rng.normal(0, 1, (6, 4)), rng.normal(0, 1, 6), rng.normal(0, 1, 4))
    x = torch.tensor((rng.random((5, 6)) < 0.5).astype(np.float32))
    f0 = rbm.free_energy(x)
    bits = torch.tensor([1, 4])
    expected = torch.zeros(5)
    for i in bits.tolist():
        xf = x.clone()
        xf[:, i] = 1 - xf[:, i]
        expected += torch.nn.functional.logsigmoid(rbm.free_energy(xf) - f0)
    torch.testing.assert_close(rbm.pseudo_log_likelihood(x, bits), expected * 3, atol=1e-5, rtol=1e-5)


def test_cd1_walkthrough_is_the_update_contrastive_divergence_applies():
    """The class step-through shows exactly the update CD-1 makes (same draws), without applying it."""
    import copy

    from explorer.core.engine.uniforms import NumpyUniforms
    from explorer.core.families.rbm.model import ContrastiveDivergence
    from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer

    tr = RBMTrainer(RBMConfig(dataset="digits", hidden=12, binarize="threshold", lr=0.3, device="cpu"))
    for _ in range(5):
        tr.train_step()
    before = tr.rbm.W.clone()
    w = tr.cd1_walkthrough(probe=2, seed=123)
    assert torch.equal(tr.rbm.W, before)  # nothing applied to the live model
    x = torch.from_numpy(w["x"])[None]
    assert set(np.unique(w["x"])) <= {0.0, 1.0} and set(np.unique(w["h_hat"])) <= {0.0, 1.0}
    np.testing.assert_allclose(w["positive"], np.outer(w["x"], w["h_hat"]))
    np.testing.assert_allclose(w["dW"], 0.3 * (np.outer(w["x"], w["h_hat"]) - np.outer(w["x_tilde"], w["h_tilde"])),
                               atol=1e-7)
    twin = copy.deepcopy(tr.rbm)
    cd = ContrastiveDivergence(twin, lr=0.3, k=1, uniform=NumpyUniforms(123))
    stats = cd.step(x)
    np.testing.assert_array_equal(stats.h_hat[0].numpy(), w["h_hat"])
    np.testing.assert_array_equal(stats.x_tilde[0].numpy(), w["x_tilde"])
    np.testing.assert_allclose((twin.W - before).numpy(), w["dW"], atol=1e-6)
    np.testing.assert_allclose((twin.b - tr.rbm.b).numpy(), w["db"], atol=1e-6)
    np.testing.assert_allclose((twin.d - tr.rbm.d).numpy(), w["dd"], atol=1e-6)


@pytest.mark.parametrize("binarization,dream_steps", [("sample", 1), ("sample", 2), ("threshold", 3)])
def test_the_snapshot_is_what_its_chains_give_one_after_the_other(binarization, dream_steps):
    """A snapshot sends its probes, heat map and dream through W together (two products instead of seven);
    each view is still what its own chain gives, with the draws taken in the order the chains take them
    one after the other, and the dream goes on from where the last snapshot left it."""
    from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer

    cfg = RBMConfig(dataset="digits", hidden=20, batch_size=16, device="cpu", seed=3, binarize=binarization,
                    n_probes=3, n_heatmap=5, n_dream=4, dream_steps=dream_steps, eval_samples=40)
    tr, ref = RBMTrainer(cfg), RBMTrainer(cfg)
    rbm, u = ref.rbm, ref.cd.uniform
    for steps in (0, 5, 0):  # before any training step, after some, and one right after another snapshot
        for _ in range(steps):
            tr.train_step()
            ref.train_step()
        assert torch.equal(tr.rbm.W, ref.rbm.W)
        snap = tr.snapshot()
        # the chains one after the other, as a reader of the lecture would write them
        probe_in = binarize(ref._probe_grey, "threshold") if binarization == "threshold" else ref._probe_grey
        probe_bin = binarize(ref._probe_grey, binarization, u)
        recon = rbm.reconstruct(probe_in)
        x_tilde, _ = rbm.gibbs_chain(probe_bin, 1, u)
        heat = rbm.p_h_given_x(ref._heat_grey)
        if ref.dream_x is None:
            ref.dream_x = (torch.rand(4, rbm.n_visible, generator=ref._gen) < 0.5).float()
        ref.dream_x, dream_p = rbm.gibbs_chain(ref.dream_x, dream_steps, u)
        np.testing.assert_array_equal(snap["probe_input"], probe_in.numpy())
        np.testing.assert_allclose(snap["probe_recon"], recon.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(snap["probe_sample"], x_tilde.numpy())
        np.testing.assert_allclose(snap["hidden_probs"], heat.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(snap["dream"], dream_p.numpy(), rtol=0, atol=1e-6)
        assert torch.equal(tr.dream_x, ref.dream_x)
        assert snap["filters"].shape == (20, 64) and snap["probe_sample"].shape == (3, 64)
    # the next draws are the same too: the snapshot took as many as the chains did
    assert torch.equal(tr.cd.uniform((2, 3), tr.rbm.W), u((2, 3), rbm.W))
