"""The last CD step in the RBM snapshot: its samples, from which the filters' readout forms
dw_ij = gamma (<x_i h^_j> - <x~_i h~_j>) for the weight under the mouse."""

import numpy as np
import pytest
import torch

from explorer.core.engine.uniforms import FixedDraws
from explorer.core.families.rbm.model import RBM, ContrastiveDivergence, cd_averages
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer


def test_last_update_by_hand():
    rbm = RBM(2, 2)
    with torch.no_grad():
        rbm.W.zero_()
        rbm.b.zero_()
        rbm.d.zero_()
    # every probability is 0.5: a draw below it samples 1, above it 0
    draws = [torch.tensor([[0.3, 0.7], [0.3, 0.3]]),   # h^ = [[1, 0], [1, 1]]
             torch.tensor([[0.6, 0.4], [0.1, 0.9]]),   # x~ = [[0, 1], [1, 0]]
             torch.tensor([[0.8, 0.1], [0.2, 0.9]])]   # h~ = [[0, 1], [1, 0]]
    cd = ContrastiveDivergence(rbm, lr=0.5, uniform=FixedDraws(draws))
    assert cd.last_update() == {}
    cd.step(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    parts = cd.last_update()
    assert parts["cd_h_hat"].tolist() == [[1, 0], [1, 1]] and parts["cd_h_hat"].dtype == np.uint8
    assert parts["cd_x_tilde"].tolist() == [[0, 1], [1, 0]]
    # <x_i h^_j> = x0' h^ / 2 and <x~_i h~_j> = x~' h~ / 2, written out
    pos, neg = cd_averages(parts)
    assert pos.tolist() == [[1.0, 0.5], [0.5, 0.5]]
    assert neg.tolist() == [[0.5, 0.0], [0.0, 0.5]]
    assert cd_averages(parts, 0, 1) == (0.5, 0.0)
    assert (parts["cd_lr"], parts["cd_k"], parts["cd_batch"]) == (0.5, 1, 2)
    assert rbm.W.tolist() == [[0.25, 0.25], [0.25, 0.0]]  # gamma (positive - negative)
    cd.reset_state()
    assert cd.last_update() == {}


def test_snapshot_parts_explain_the_weight_change_of_the_step():
    cfg = RBMConfig(dataset="digits", hidden=7, batch_size=16, lr=0.3, momentum=0.0, weight_decay=0.0,
                    device="cpu", eval_samples=50, n_heatmap=4, n_probes=2, n_dream=2)
    tr = RBMTrainer(cfg)
    assert "cd_x" not in tr.snapshot()  # no step yet: nothing to explain
    for _ in range(3):
        tr.train_step()
    w_before = tr.rbm.W.detach().numpy().copy()
    tr.train_step()
    w_after = tr.rbm.W.detach().numpy().copy()
    snap = tr.snapshot()
    assert snap["cd_x"].shape == (16, 64) and snap["cd_h_tilde"].shape == (16, 7)
    assert snap["cd_x"].dtype == np.uint8  # binary samples: small, exact
    pos, neg = cd_averages(snap)
    assert pos.shape == neg.shape == (64, 7)
    # the step's own samples, independently
    last = tr.cd.last
    x0, h, xt, ht = (t.double().numpy() for t in (last.x0, last.h_hat, last.x_tilde, last.h_tilde))
    np.testing.assert_array_equal(pos, x0.T @ h / 16)
    np.testing.assert_array_equal(neg, xt.T @ ht / 16)
    i, j = 20, 3
    assert cd_averages(snap, i, j) == (pos[i, j], neg[i, j])
    # gamma (positive - negative) is the change W got in that step (up to float32 rounding of W)
    assert snap["cd_lr"] == pytest.approx(0.3)
    change = w_after - w_before
    assert np.abs(change).max() > 1e-3
    np.testing.assert_allclose(snap["cd_lr"] * (pos - neg), change, rtol=0, atol=2e-7)
    # a snapshot copies: the next step does not change it
    kept = snap["cd_h_hat"].copy()
    tr.train_step()
    np.testing.assert_array_equal(snap["cd_h_hat"], kept)


def test_settings_of_the_step_and_reset():
    cfg = RBMConfig(dataset="digits", hidden=5, batch_size=8, lr=0.2, momentum=0.5, device="cpu",
                    eval_samples=50, n_heatmap=4, n_probes=2, n_dream=2)
    tr = RBMTrainer(cfg)
    tr.train_step()
    tr.apply_hparams({"lr": 0.05})  # after the step: the snapshot still names the step's gamma
    snap = tr.snapshot()
    assert (snap["cd_lr"], snap["cd_momentum"], snap["cd_batch"]) == (0.2, 0.5, 8)
    tr.reset()
    assert "cd_x" not in tr.snapshot()


def test_snapshot_of_the_mnist_sized_rbm_stays_small():
    rbm = RBM(784, 500)
    cd = ContrastiveDivergence(rbm, lr=0.1)
    cd.step((torch.rand(32, 784) < 0.3).float())
    parts = cd.last_update()
    assert sum(v.nbytes for v in parts.values() if isinstance(v, np.ndarray)) == 32 * (784 + 500) * 2
