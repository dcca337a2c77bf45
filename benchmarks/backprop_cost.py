"""What the hand-written backward passes and the MLP panel's histograms save, part by part, one thread.

    python benchmarks/backprop_cost.py [--data-dir DIR] [--repeats 3] [--steps 1000]

* deep MLP 784-128x5-10 (sigmoid, batch 64, as in ``mlp_speed.py``): a gradient step by autograd (``F.cross_entropy`` and
  ``backward``) against ``DeepMLP.backprop`` (the lecture's delta rule), both followed by torch's SGD;
* DAE 784-256-784 (batch 128, gaussian noise 0.3, momentum 0.9): autograd against ``Autoencoder.backprop``;
* the MLP panel's layer histograms: five ``torch.histc`` against one ``unit_histograms``, and the
  whole snapshot (``MLPTrainer.snapshot``).

Each pair is timed alternately, median microseconds a call; the gradients are checked equal first.
The network and data are ``mlp_speed.py``'s: MNIST from ``--data-dir`` when it has it, else the 8x8
digits (64 inputs; the DAE then 64-256-64).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mlp_speed import HIDDEN, config_and_data  # noqa: E402

from explorer.core.families.autoencoder.trainer import Autoencoder  # noqa: E402
from explorer.core.families.deep.trainer import (  # noqa: E402
    HIST_BINS,
    DeepMLP,
    MLPTrainer,
    unit_histograms,
)


def median_us(fn, n: int) -> float:
    for _ in range(max(5, n // 20)):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def mlp_pair(x_all: torch.Tensor, y_all: torch.Tensor):
    torch.manual_seed(0)
    net = DeepMLP([x_all.shape[1], *HIDDEN, 10])
    with torch.no_grad():
        for layer in net.linears:
            layer.weight.normal_(0, 0.01)
            layer.bias.zero_()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(1)

    def batch():
        idx = torch.randint(0, x_all.shape[0], (64,), generator=g)
        return x_all.index_select(0, idx), y_all.index_select(0, idx)

    def autograd() -> None:
        x, y = batch()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def delta_rule() -> None:
        x, y = batch()
        bp = net.backprop(x, y)
        for layer, gw, gb in zip(net.linears, bp.weight_grads, bp.bias_grads):
            layer.weight.grad, layer.bias.grad = gw, gb
        opt.step()

    x, y = batch()
    bp = net.backprop(x, y)
    F.cross_entropy(net(x), y).backward()
    assert all(torch.equal(layer.weight.grad, gw) for layer, gw in zip(net.linears, bp.weight_grads))
    return autograd, delta_rule


def dae_pair(x_all: torch.Tensor):
    model = Autoencoder(x_all.shape[1], 256, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)

    def batch():
        x = x_all.index_select(0, torch.randint(0, x_all.shape[0], (128,), generator=g))
        return x + 0.3 * torch.randn(x.shape, generator=g), x

    def autograd() -> None:
        x_in, x = batch()
        loss = ((model(x_in)[1] - x) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def by_hand() -> None:
        x_in, x = batch()
        model.backprop(x_in, x)
        opt.step()

    return autograd, by_hand


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg, ds, source = config_and_data(args.data_dir)  # the MLP benchmark's network and data
    x_all, y_all = torch.from_numpy(ds.train_x), torch.from_numpy(ds.train_y.astype("int64"))
    mlp_auto, mlp_hand = mlp_pair(x_all, y_all)
    dae_auto, dae_hand = dae_pair(x_all)
    trainer = MLPTrainer(dataclasses.replace(cfg, device="cpu"), dataset=ds)
    for _ in range(20):
        trainer.train_step()
    hiddens = trainer.model.forward_all(trainer._snap_x)[2]
    histc = lambda: [torch.histc(h, bins=HIST_BINS, min=0.0, max=1.0) for h in hiddens]  # noqa: E731
    assert torch.equal(unit_histograms(hiddens), torch.stack(histc()))
    print(f"one thread, torch {torch.__version__}, {source}; "
          f"median microseconds a call")
    for r in range(args.repeats):
        n = args.steps
        print(f"  round {r + 1}: deep MLP step autograd {median_us(mlp_auto, n):,.0f}, delta rule "
              f"{median_us(mlp_hand, n):,.0f} | DAE step autograd {median_us(dae_auto, n // 5):,.0f}, by hand "
              f"{median_us(dae_hand, n // 5):,.0f} | histograms histc {median_us(histc, n // 2):,.0f}, one count "
              f"{median_us(lambda: unit_histograms(hiddens), n // 2):,.0f} | MLP snapshot "
              f"{median_us(trainer.snapshot, n // 5):,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
