"""Deep MLPs: exact gradient statistics, the vanishing gradient, layerwise pretraining, the engine."""


import pytest
import torch
import torch.nn.functional as F

from explorer.core.engine.session import TrainingSession
from explorer.core.families import registry as families
from explorer.core.families.autoencoder.trainer import Autoencoder
from explorer.core.families.deep.compare import CompareConfig, InitComparison
from explorer.core.families.deep.trainer import (
    INITS,
    LIVE,
    N_SNAPSHOT,
    NEEDS_RESET,
    DeepMLP,
    MLPConfig,
    MLPTrainer,
    config_from_spec,
    grad_stats,
    saturation,
)
from explorer.core.families.rbm.model import RBM
from explorer.core.spec.network import LayerSpec, NetworkSpec, load_preset
from tests.helpers import wait_until

pytestmark = pytest.mark.usefixtures("one_thread")


def make(digits, **kw):
    kw.setdefault("device", "cpu")
    return MLPTrainer(MLPConfig(**kw), dataset=digits)


# -- statistics -----------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_grad_stats_match_autograd(activation):
    torch.manual_seed(0)
    net = DeepMLP([5, 4, 3, 2], activation)
    x = torch.rand(6, 5)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    # reference, written out independently
    Ws = [layer.weight for layer in net.layers]
    bs = [layer.bias for layer in net.layers]
    act = torch.sigmoid if activation == "sigmoid" else torch.relu
    h, nets = x, []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        n = h @ W.t() + b
        nets.append(n)
        h = act(n) if i < 2 else n
    loss = F.cross_entropy(h, y)
    grads = torch.autograd.grad(loss, Ws + nets)
    ref_norm = [float(torch.sqrt((g ** 2).sum())) for g in grads[:3]]
    ref_delta = [float(g.abs().mean()) for g in grads[3:]]

    logits, nets2, hiddens = net.forward_all(x, retain=True)
    F.cross_entropy(logits, y).backward()
    stats = grad_stats(net.layers, nets2, hiddens, activation)
    assert set(stats) == {f"grad_norm_{i}" for i in (1, 2, 3)} | {f"delta_mean_{i}" for i in (1, 2, 3)} \
        | {"saturation_1", "saturation_2"}
    for i in range(3):
        assert float(stats[f"grad_norm_{i + 1}"]) == pytest.approx(ref_norm[i], rel=1e-5)
        assert float(stats[f"delta_mean_{i + 1}"]) == pytest.approx(ref_delta[i], rel=1e-5)
    assert all(v.dim() == 0 for v in stats.values())


def test_saturation_hand_count():
    h = torch.tensor([[0.01, 0.5, 0.97, 0.05], [0.96, 0.2, 0.049, 0.951]])
    # < 0.05 or > 0.95: 0.01, 0.97, 0.96, 0.049, 0.951 -> 5 of 8
    assert float(saturation(h, "sigmoid")) == pytest.approx(5 / 8)
    r = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.1]])
    assert float(saturation(r, "relu")) == pytest.approx(3 / 6)


def test_vanishing_gradient_random_vs_relu_he(digits):
    def ratio(init):
        tr = make(digits, init=init, hidden=(32,) * 6, stats_every=1, lr=0.1)
        for _ in range(5):
            m = tr.train_step()
        assert tr.n_layers == 7
        return float(m["grad_norm_1"]) / float(m["grad_norm_7"])

    r_random, r_relu = ratio("random"), ratio("relu-he")
    assert r_random < 0.1
    assert r_relu > 100 * r_random


def test_metric_keys_constant_during_fine_tuning(digits):
    tr = make(digits, init="random", hidden=(8, 8), stats_every=3)
    rows = [tr.train_step() for _ in range(7)]
    keys = {tuple(r) for r in rows}
    assert len(keys) == 1
    assert {"loss", "accuracy", "grad_norm_3", "delta_mean_1", "saturation_2"} <= set(rows[0])
    # measured at fine-tuning steps 0, 3, 6: repeated in between
    assert rows[1]["grad_norm_1"] is rows[0]["grad_norm_1"]
    assert rows[3]["grad_norm_1"] is not rows[2]["grad_norm_1"]


# -- pretraining ----------------------------------------------------------------------------------
@pytest.mark.parametrize("init", ["rbm", "ae"])
def test_layerwise_pretraining(digits, init):
    tr = make(digits, init=init, hidden=(16,) * 6, pretrain_epochs=2, batch_size=64)
    kind = "RBM" if init == "rbm" else "AE"
    assert tr.stages == [f"pretrain layer {k} ({kind})" for k in range(1, 7)] + ["fine-tune"]
    assert tr.stage_index == 0
    e0 = tr.evaluate()["pretrain_heldout_error"]
    m = tr.train_step()
    assert set(m) == {"pretrain_error"}
    while tr.stage_index == 0:
        tr.train_step()
    assert tr.step == 2 * tr.steps_per_epoch and tr.epoch == 2  # a stage is pretrain_epochs epochs
    first = tr.pretrained[0]
    assert isinstance(first, RBM if init == "rbm" else Autoencoder)
    # the first stage lowered layer 1's reconstruction error on held-out data
    x = tr._test_eval
    recon = first.reconstruct(x) if init == "rbm" else first(x)[1].detach()
    assert float(F.mse_loss(recon, x)) < e0
    # layer 2 is trained on the codes of layer 1
    assert tr.model.layers[1].in_features == 16
    tr.train_step()
    epoch = tr.epoch
    tr.end_stage()  # mid-epoch: the partial pass counts as an epoch
    assert tr.stage_index == 2 and tr.epoch == epoch + 1
    while tr.stage_index < 6:
        tr.end_stage()
    assert tr.stage == "fine-tune"
    tr.end_stage()  # no-op
    assert tr.stage_index == 6
    assert len(tr.pretrained) == 6
    for layer, mod in zip(tr.model.layers, tr.pretrained):
        if init == "rbm":
            assert torch.equal(layer.weight.data, mod.W.t())
            assert torch.equal(layer.bias.data, mod.d)
        else:
            assert torch.equal(layer.weight.data, mod.W.data)
            assert torch.equal(layer.bias.data, mod.b.data)
    m = tr.train_step()
    assert "loss" in m and "grad_norm_7" in m
    # the first evaluation after a stage ends reports that stage's final error (on the codes of layer 5)...
    ev = tr.evaluate()
    top, v = tr.pretrained[-1], tr.codes(tr._test_eval, 5)
    recon = top.reconstruct(v) if init == "rbm" else top(v)[1].detach()
    assert ev["pretrain_heldout_error"] == pytest.approx(float(F.mse_loss(recon, v)), rel=1e-6)
    # ...then fine-tuning's metrics alone
    assert set(tr.evaluate()) == {"heldout_accuracy", "heldout_loss", "train_accuracy", "train_loss"}


# -- fine-tuning ----------------------------------------------------------------------------------
def test_relu_he_learns_digits_on_held_out_split(digits):
    tr = make(digits, init="relu-he", lr=0.02, momentum=0.9)
    assert len(tr.config.hidden) >= 5
    n_test = digits.test_x.shape[0]
    assert digits.train_x.shape[0] + n_test == 1797
    # evaluate uses the held-out split, never training rows
    assert torch.equal(tr._test_eval, torch.from_numpy(digits.test_x[:n_test]))
    assert torch.equal(tr._train, torch.from_numpy(digits.train_x))  # training draws only from the train split
    for _ in range(5 * tr.steps_per_epoch):
        tr.train_step()
    ev = tr.evaluate()
    assert ev["heldout_accuracy"] > 0.8
    assert tr.epoch == 5


def test_snapshot_and_state_roundtrip(digits):
    tr = make(digits, init="rbm", hidden=(12, 10, 8, 8, 8), pretrain_epochs=1)
    s = tr.snapshot()
    assert s["stage"] == 0 and s["stages"] == tr.stages and s["filters"].shape == (12, 64)
    assert s["saturation"].shape == (5,) and s["activation_hist"].shape == (5, 20)
    assert s["delta_mean"].shape == (6,) and s["grad_norm"].shape == (6,)
    assert s["activation_hist"][0].sum() == N_SNAPSHOT * 12  # every held-out example's 12 units, counted once
    for _ in range(3):
        tr.train_step()
    saved = {k: v.clone() for k, v in tr.state_tensors().items()}
    tr2 = make(digits, init="rbm", hidden=(12, 10, 8, 8, 8), pretrain_epochs=1)
    tr2.load_state_tensors(saved)
    assert tr2.stage_index == 0
    assert torch.equal(tr2._pre_module.W, tr._pre_module.W)
    while not tr.fine_tuning:
        tr.end_stage()
    tr.train_step()
    s = tr.snapshot()
    assert s["stage"] == 5 and s["grad_norm"].min() > 0
    tr3 = make(digits, init="rbm", hidden=(12, 10, 8, 8, 8), pretrain_epochs=1)
    tr3.load_state_tensors(tr.state_tensors())
    assert tr3.fine_tuning
    assert torch.equal(tr3.model(tr._test_eval), tr.model(tr._test_eval))


def test_config_roundtrip_hparams_and_family(digits):
    cfg = MLPConfig(hidden=(10, 20), init="ae")
    d = cfg.to_dict()
    assert d["hidden"] == [10, 20]
    assert MLPConfig.from_dict(d) == cfg
    for bad in (dict(hidden=()), dict(init="xavier"), dict(lr=0), dict(stats_every=0), dict(pretrain_epochs=0)):
        with pytest.raises(ValueError):
            MLPConfig(**bad).validate()
    assert {"lr", "momentum", "batch_size", "stats_every"} == LIVE
    assert {"hidden", "init", "pretrain_epochs", "seed"} <= NEEDS_RESET
    tr = families.make_trainer("mlp", dict(hidden=[8, 8], device="cpu"))
    assert isinstance(tr, MLPTrainer) and tr.config.hidden == (8, 8)
    notes = tr.apply_hparams({"lr": 0.2, "init": "rbm"})
    assert tr.optimizer.param_groups[0]["lr"] == 0.2
    assert any("Reset" in n for n in notes)
    with pytest.raises(ValueError):
        tr.apply_hparams({"momentum": 1.5})
    tr.reset()
    assert tr.stages[0] == "pretrain layer 1 (RBM)"
    assert "Deep MLP 64-8-8-10" in tr.describe()
    assert set(INITS) == {"random", "rbm", "ae", "relu-he"}


def test_config_from_spec():
    cfg = config_from_spec(load_preset("deep-sigmoid-mlp"))
    assert cfg.hidden == (64,) * 6 and cfg.init == "random" and cfg.dataset == "digits"
    assert cfg.lr == 0.1
    layers = [LayerSpec("Linear", {"out_features": 20}), LayerSpec("ReLU"),
              LayerSpec("Linear", {"out_features": 10}), LayerSpec("ReLU"),
              LayerSpec("Linear", {"out_features": 10})]
    cfg = config_from_spec(NetworkSpec("mlp", (256,), layers))
    assert cfg.init == "relu-he" and cfg.hidden == (20, 10) and cfg.upscale == 2
    cfg = config_from_spec(NetworkSpec("mlp", (64,), [LayerSpec("Linear", {"out_features": 20}), LayerSpec("Sigmoid"),
                                                      LayerSpec("Linear", {"out_features": 10})], {"init": "rbm"}))
    assert cfg.init == "rbm"
    with pytest.raises(ValueError):  # ReLU with RBM pretraining
        config_from_spec(NetworkSpec("mlp", (64,), layers[:2] + layers[-1:], {"init": "rbm"}))
    with pytest.raises(ValueError):  # mixed activations
        config_from_spec(NetworkSpec("mlp", (64,), [layers[0], LayerSpec("Sigmoid")] + layers[2:]))
    with pytest.raises(ValueError):  # wrong number of classes
        config_from_spec(NetworkSpec("mlp", (64,), layers[:2] + [LayerSpec("Linear", {"out_features": 3})]))


# -- engine ---------------------------------------------------------------------------------------
def test_flush_groups_rows_by_key_set():
    class Fake:
        family, step, epoch, batch_size = "fake", 0, 0, 1
        device = torch.device("cpu")
        steps_per_epoch = 1000

        def train_step(self):
            self.step += 1
            if self.step <= 3:
                return {"a": torch.tensor(float(self.step))}
            return {"b": torch.tensor(10.0 * self.step), "c": torch.tensor(1.0)}

        def evaluate(self):
            return {}

        def snapshot(self):
            return {}

    s = TrainingSession(Fake(), eval_every=0, metrics_every=2)
    assert s.stop()  # the thread is gone: nothing flushes behind the test's back
    for _ in range(6):  # what _one_step queues, without the thread
        s._pending_metrics.append((s.trainer.step + 1, 0, s.trainer.train_step()))
    s._flush_metrics(final=True)
    rows = s.metrics.steps
    assert [sorted(k for k in r if k not in ("step", "epoch")) for r in rows] == \
        [["a"], ["a"], ["b", "c"], ["b", "c"]]
    assert rows[0]["a"] == 1.5 and rows[1]["a"] == 3.0
    assert rows[2]["b"] == 45.0 and rows[3]["b"] == 60.0
    assert [r["step"] for r in rows] == [2, 3, 5, 6]
    assert s.error is None


def test_session_through_stage_change_and_reset(digits):
    tr = make(digits, init="ae", hidden=(8, 8, 8, 8, 8), pretrain_epochs=1, batch_size=128)
    spe = tr.steps_per_epoch
    n_pre = 5 * spe
    s = TrainingSession(tr, eval_fraction=None)
    try:
        s.step(n_pre + 4)
        assert wait_until(lambda: tr.step == n_pre + 4 and s.state == "paused" and s.wait(0))
        assert s.wait(5)
        assert s.error is None, s.error
        rows = s.metrics.steps
        assert len(rows) == n_pre + 4
        assert all(set(r) == {"step", "epoch", "pretrain_error"} for r in rows[:n_pre])
        assert all("loss" in r and "grad_norm_6" in r for r in rows[n_pre:])
        assert tr.fine_tuning and tr.epoch == 5
        ends = [r for r in s.metrics.evals if r.get("epoch_end")]
        assert len(ends) == 5 and "pretrain_heldout_error" in ends[0] and "train_pretrain_error" in ends[0]
        s.reset()
        assert wait_until(lambda: s.run_id == 1 and s.wait(0))
        assert tr.stage_index == 0 and tr.step == 0 and not tr.pretrained
        assert s.metrics.steps == []
    finally:
        s.stop()


def test_save_and_restore_mid_pretraining(digits, tmp_path):
    from explorer.core.persist.runfolder import load_run, restore_trainer, save_run

    tr = make(digits, init="rbm", hidden=(8, 8, 8, 8, 8), pretrain_epochs=1, batch_size=128)
    s = TrainingSession(tr, eval_fraction=None)
    try:
        s.step(tr.steps_per_epoch + 2)  # into stage 2
        assert wait_until(lambda: tr.step == tr.steps_per_epoch + 2 and s.wait(0))
        assert s.wait(5) and s.error is None
        save_run(s, tmp_path / "run")
    finally:
        s.stop()
    tr2 = restore_trainer(load_run(tmp_path / "run"))
    assert tr2.stage_index == 1 and tr2.step == tr.step
    assert torch.equal(tr2.model.layers[0].weight, tr.model.layers[0].weight)
    assert torch.equal(tr2._pre_module.W, tr._pre_module.W)
    assert set(tr2.train_step()) == {"pretrain_error"}


def test_pretraining_rescues_the_deep_sigmoid_net_that_random_init_cannot_train():
    """The lecture's 2006 argument on the bundled digits: same net, same data and seed, 10 fine-tuning epochs."""
    from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer

    acc = {}
    for init in ("random", "rbm"):
        tr = MLPTrainer(MLPConfig(dataset="digits", hidden=(32,) * 5, init=init, pretrain_epochs=3, lr=0.5,
                                  device="cpu", seed=0))
        while not tr.fine_tuning:
            tr.train_step()
        for _ in range(10 * tr.steps_per_epoch):
            tr.train_step()
        acc[init] = tr.evaluate()["heldout_accuracy"]
    assert acc["random"] < 0.3, acc   # stuck near chance (10 classes): the gradient vanished
    assert acc["rbm"] > 0.7, acc


def test_deep_belief_net_dreams_come_from_the_stacked_rbms():
    from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer

    tr = MLPTrainer(MLPConfig(dataset="digits", hidden=(16, 8), init="rbm", pretrain_epochs=1, device="cpu"))
    assert tr.dbn_sample() is None and "dbn_samples" not in tr.snapshot()  # no RBM trained yet
    while not tr.fine_tuning:
        tr.train_step()
    a = tr.dbn_sample(n=5, sweeps=2)
    assert a.shape == (5, 64) and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    # the chains persist and move on
    b = tr.dbn_sample(n=5, sweeps=2)
    assert not torch.equal(a, b)
    # one sweep in the top RBM, then p(x|h) of the bottom RBM, recomputed by hand with the same draws
    from explorer.core.engine.uniforms import FixedDraws
    rbm_bottom, rbm_top = tr.pretrained
    assert rbm_top.n_visible == rbm_bottom.n_hidden == 16
    v0 = tr._dbn_v.clone()
    u_h, u_v, u_down = torch.rand(5, 8), torch.rand(5, 16), torch.rand(5, 64)
    tr._dbn_uniform = FixedDraws([u_h, u_v, u_down])
    p = tr.dbn_sample(n=5, sweeps=1)
    h = (u_h < torch.sigmoid(v0 @ rbm_top.W + rbm_top.d)).float()
    v1 = (u_v < torch.sigmoid(h @ rbm_top.W.t() + rbm_top.b)).float()
    torch.testing.assert_close(p, torch.sigmoid(v1 @ rbm_bottom.W.t() + rbm_bottom.b))
    tr._dbn_uniform = tr._uniforms(1)
    assert tr.snapshot()["dbn_samples"].shape == (16, 64)
    relu = MLPTrainer(MLPConfig(dataset="digits", hidden=(8,), init="relu-he", device="cpu"))
    assert relu.dbn_sample() is None


def test_four_starts_train_in_lockstep_and_route_their_settings(digits):
    """The comparison steps every start once per step, prefixes their metrics and saved tensors, sends
    ``lr`` to the sigmoid starts and ``relu_lr`` to the ReLU one, and keeps its data settings on a failed reload."""
    cmp_ = InitComparison(CompareConfig(hidden=(8, 8), inits=("random", "relu-he"), pretrain_epochs=1,
                                        batch_size=16, device="cpu"), dataset=digits)
    assert cmp_.batch_size == 32 and cmp_.steps_per_epoch == cmp_.runs["random"].steps_per_epoch
    assert cmp_.describe() == "Deep network 64-8-8-10 on digits, four starts side by side: random, relu-he"
    metrics = cmp_.train_step()
    assert cmp_.step == 1 and all(run.step == 1 for run in cmp_.runs.values())
    assert {"random/loss", "relu-he/loss"} <= set(metrics)
    notices = cmp_.apply_hparams({"lr": 0.2, "relu_lr": 0.01, "momentum": 0.5, "seed": 4})
    assert notices == ["lr = 0.2 (applied now)", "relu_lr = 0.01 (applied now)",
                       "momentum = 0.5 (applied now, to all four)",
                       "seed = 4: takes effect after Reset (the networks must be re-initialised)"]
    groups = {init: run.optimizer.param_groups[0] for init, run in cmp_.runs.items()}
    assert (groups["random"]["lr"], groups["relu-he"]["lr"]) == (0.2, 0.01)
    assert groups["random"]["momentum"] == groups["relu-he"]["momentum"] == 0.5
    saved = cmp_.state_tensors()
    assert {"random/layer0.weight", "relu-he/layer1.bias", "relu-he/stage"} <= set(saved)
    cmp_.config.dataset = "no-such-data"
    with pytest.raises(ValueError):
        cmp_.reset()
    assert cmp_.config.dataset == "digits"  # the settings still describe the loaded data
    cmp_.reset()
    assert cmp_.step == 0 and all(run.step == 0 for run in cmp_.runs.values())
    fresh = InitComparison(CompareConfig(hidden=(8, 8), inits=("random", "relu-he"), pretrain_epochs=1,
                                         batch_size=16, device="cpu"), dataset=digits)
    fresh.load_state_tensors(saved)
    assert torch.equal(fresh.runs["relu-he"].model.layers[0].weight, saved["relu-he/layer0.weight"])


# -- the statistics' cheaper computation: the same numbers as the formulas written per layer ----------
def _per_layer_reference(net, nets, hiddens, activation):
    """The statistics as written before they were batched: one operation per layer and statistic."""
    ref = {}
    for i, layer in enumerate(net.linears, 1):
        ref[f"grad_norm_{i}"] = torch.linalg.vector_norm(layer.weight.grad)
    for i, n in enumerate(nets, 1):
        ref[f"delta_mean_{i}"] = n.grad.abs().mean()
    for i, h in enumerate(hiddens, 1):
        ref[f"saturation_{i}"] = saturation(h.detach(), activation)
    return ref


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_batched_grad_stats_equal_per_layer_formulas(activation):
    torch.manual_seed(3)
    net = DeepMLP([20, 16, 12, 12, 4], activation)
    with torch.no_grad():  # large weights: many saturated sigmoid units, many dead ReLUs
        for layer in net.linears:
            layer.weight.mul_(6.0)
    x = torch.rand(32, 20)
    y = torch.randint(0, 4, (32,))
    logits, nets, hiddens = net.forward_all(x, retain=True)
    F.cross_entropy(logits, y).backward()
    ref = _per_layer_reference(net, nets, hiddens, activation)
    stats = grad_stats(net.linears, nets, hiddens, activation)
    assert set(stats) == set(ref)
    assert 0 < float(ref["saturation_1"]) < 1  # the check below compares something
    for key, want in ref.items():
        if key.startswith("delta_mean_"):  # summed in another order: float32 rounding apart
            torch.testing.assert_close(stats[key], want, rtol=1e-5, atol=0)
        else:  # the same number, bit for bit
            assert torch.equal(stats[key], want), key


def test_batched_saturation_counts_by_hand():
    from explorer.core.families.deep.trainer import saturations

    h1 = torch.tensor([[0.01, 0.5, 0.97, 0.05], [0.96, 0.2, 0.049, 0.951]])  # 5 of 8 (0.05 itself is not)
    h2 = torch.tensor([0.95, 0.0500001, 0.9500001])                          # 1 of 3
    assert [float(s) for s in saturations([h1, h2], "sigmoid")] == [5 / 8, float(torch.tensor(1 / 3))]
    r = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.1]])
    assert [float(s) for s in saturations([r], "relu")] == [0.5]


def test_measured_steps_train_as_unmeasured_ones(digits):
    """A step that measures the statistics (its backward pass also hands back the deltas) updates the
    weights exactly as a step that does not."""
    measured = make(digits, init="random", hidden=(16, 16, 16), stats_every=1, momentum=0.5)
    plain = make(digits, init="random", hidden=(16, 16, 16), stats_every=1_000_000, momentum=0.5)
    for _ in range(6):
        a, b = measured.train_step(), plain.train_step()
        assert torch.equal(a["loss"], b["loss"])
    for p, q in zip(measured.model.parameters(), plain.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("sizes, batch", [([30, 24, 16, 16, 5], 40),
                                          ([30, 24, 1, 16, 5], 1)])  # a (1, 1) input: autograd's other product
def test_backprop_by_the_delta_rule_is_autograds_bit_for_bit(activation, sizes, batch):
    """The hand-written backward pass gives autograd's loss, gradients and deltas, to the last bit."""
    torch.manual_seed(5)
    net = DeepMLP(sizes, activation)
    with torch.no_grad():  # large weights: saturated sigmoids and dead ReLUs take part
        for layer in net.linears:
            layer.weight.mul_(4.0)
            layer.bias.uniform_(-0.5, 0.5)
    x = torch.rand(batch, 30)
    y = torch.randint(0, 5, (batch,))
    logits, nets, hiddens = net.forward_all(x)
    loss = F.cross_entropy(logits, y)
    params = [p for layer in net.linears for p in (layer.weight, layer.bias)]
    grads = torch.autograd.grad(loss, [*params, *nets])

    bp = net.backprop(x, y)
    assert torch.equal(bp.loss, loss.detach()) and torch.equal(bp.logits, logits.detach())
    assert all(torch.equal(a, b.detach()) for a, b in zip(bp.hiddens, hiddens))
    assert len(bp.weight_grads) == len(bp.bias_grads) == len(bp.deltas) == 4
    for i in range(4):
        assert torch.equal(bp.weight_grads[i], grads[2 * i]), f"dloss/dW_{i + 1}"
        assert torch.equal(bp.bias_grads[i], grads[2 * i + 1]), f"dloss/db_{i + 1}"
        assert torch.equal(bp.deltas[i], grads[len(params) + i]), f"delta_{i + 1}"
    assert float(grads[0].abs().sum()) > 0 or activation == "relu"  # the bottom layer's gradient is not all zeros
    assert all(p.grad is None for p in params)  # backprop hands the gradients back, sets none


@pytest.mark.parametrize("init", ["random", "relu-he"])
def test_a_fine_tuning_step_is_an_autograd_sgd_step(digits, init):
    """The trainer's steps move the weights exactly as the plain loop (autograd, torch's SGD) would."""
    import copy

    tr = make(digits, init=init, hidden=(20, 16, 12), stats_every=3, momentum=0.9, lr=0.3)
    ref = copy.deepcopy(tr.model)
    opt = torch.optim.SGD(ref.parameters(), lr=0.3, momentum=0.9)
    batches = []
    take = tr.next_batch
    tr.next_batch = lambda: batches.append(take()) or batches[-1]
    for _ in range(7):
        row = tr.train_step()
        x, y = batches[-1]
        loss = F.cross_entropy(ref(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        assert torch.equal(row["loss"], loss.detach())
    for p, q in zip(tr.model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(p.grad, q.grad)
    assert not torch.equal(tr.model.linears[0].weight, make(digits, init=init, hidden=(20, 16, 12)).model.linears[0].weight)


def test_unit_histograms_count_as_histc_at_every_bin_edge():
    """One count for all the layers gives torch.histc's counts, bin for bin, layers of different sizes,
    with values on every bin edge, on the float just above and just below it, at 0 and at 1."""
    from explorer.core.families.deep.trainer import HIST_BINS, unit_histograms

    edges = torch.arange(0, HIST_BINS + 1, dtype=torch.float32) / HIST_BINS
    near = torch.cat([edges, torch.nextafter(edges, torch.tensor(2.0)).clamp(max=1.0),
                      torch.nextafter(edges, torch.tensor(-1.0)).clamp(min=0.0)])
    torch.manual_seed(2)
    layers = [torch.cat([near, torch.rand(300)]).reshape(-1, 3),
              torch.sigmoid(torch.randn(64, 40) * 8.0),  # mostly saturated: the end bins fill
              torch.full((7, 5), 0.05), torch.ones(2, 2), torch.zeros(1, 9)]
    got = unit_histograms(layers)
    want = torch.stack([torch.histc(h, bins=HIST_BINS, min=0.0, max=1.0) for h in layers])
    assert got.dtype == torch.float32 and got.shape == (5, HIST_BINS)
    assert torch.equal(got, want)
    assert [int(n) for n in got.sum(1)] == [h.numel() for h in layers]
    assert unit_histograms([]).shape == (0, HIST_BINS)
