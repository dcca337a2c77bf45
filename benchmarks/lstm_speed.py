"""How fast does the engine train the LSTM, compared with a bare torch.nn.LSTM loop?

    python benchmarks/lstm_speed.py [--steps 300] [--repeats 3] [--hidden 64] [--batch 64] [--length 50]
                                    [--threads 1] [--device cpu]

The adding problem (T = 50), LSTM with ``--hidden`` units and no biases, Adam lr 0.01, gradient
clipping at 1, MSE at the last step. Variants, interleaved, median of the repeats:

* ``bare``: torch.nn.LSTM + Linear in a plain loop on the main thread, written independently, on the
  same pre-generated sequences;
* ``engine, views hidden``: RecurrentTrainer in a TrainingSession on its thread, nobody subscribed
  (what the command line does, and the window with the panel's views closed);
* ``engine, views refreshing``: the same with a subscriber taking snapshots at 20 Hz, so the trainer
  computes the gate heatmaps, saturation histograms and ||dL/ds_t|| curves as the panel would be fed
  (each group of views recomputed only within its share of the wall time, ``VIEW_BUDGET``: 2.5% for
  the probe's gates, 1% for the gradient curves);
* ``engine, RNN alongside``: views hidden, with an RNN trained alongside every 4 steps (compare_every=4,
  the panel's default): extra work, shown for what it costs.

Ratios are samples/s over the bare loop's, by wall time and by CPU time of this process (samples per
CPU second: steadier when other processes share the cores, since time the process waits for a core
does not count). On a shared machine read the ratios, not the absolute rates.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import sync, warm_up_engine  # noqa: E402

from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.recurrent.trainer import LSTMConfig, RecurrentTrainer, RNNConfig  # noqa: E402


def config(args, compare_every: int = 0) -> LSTMConfig | RNNConfig:
    """``args.model`` (default "lstm") picks the LSTM or the vanilla RNN; everything else is the same."""
    cls = RNNConfig if getattr(args, "model", "lstm") == "rnn" else LSTMConfig
    return cls(task="adding", length=args.length, hidden=args.hidden, batch_size=args.batch, lr=0.01,
               clip=1.0, n_train=8192, eval_samples=256, device=args.device, compare_every=compare_every)


def bare_rate(trainer: RecurrentTrainer, args) -> float:
    """The same maths written plainly: one nn.LSTM (nn.RNN, tanh, for ``args.model == "rnn"``), one Linear,
    Adam, clipping, MSE at the last step."""
    data, dev = trainer.dataset, trainer.device
    torch.manual_seed(0)
    cell = torch.nn.RNN if getattr(args, "model", "lstm") == "rnn" else torch.nn.LSTM
    lstm = cell(2, args.hidden, batch_first=True, bias=False).to(dev)
    head = torch.nn.Linear(args.hidden, 1).to(dev)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=0.01)
    x_all, y_all = data.train_in, data.train_out
    gen = torch.Generator(device=dev).manual_seed(1)

    def step() -> None:
        idx = torch.randint(0, x_all.shape[0], (args.batch,), generator=gen, device=dev)
        out, _ = lstm(x_all[idx])
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    for _ in range(20):
        step()
    sync(dev)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    sync(dev)
    n = args.steps * args.batch
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def engine_rate(args, views: bool, compare_every: int = 0) -> tuple[float, float, int]:
    tr = RecurrentTrainer(config(args, compare_every))
    s = TrainingSession(tr, snapshot_hz=20.0, eval_fraction=None)
    snaps = 0
    try:
        warm_up_engine(s, 20)
        if views:
            s.subscribe()
        seq0 = s.latest_snapshot().seq if s.latest_snapshot() else 0
        sync(tr.device)
        t0, c0 = time.perf_counter(), time.process_time()
        s.step(args.steps)
        s.wait(poll=0.01)
        sync(tr.device)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        last = s.latest_snapshot()
        snaps = (last.seq - seq0) if (views and last is not None) else 0
        n = args.steps * args.batch
        return n / dt, n / dc, snaps
    finally:
        s.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--length", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ref = RecurrentTrainer(config(args))
    names = ("bare", "engine, views hidden", "engine, views refreshing", "engine, RNN alongside")
    rates: dict[str, list[float]] = {n: [] for n in names}
    cpu_rates: dict[str, list[float]] = {n: [] for n in names}
    snapshots: list[int] = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for _ in range(args.repeats):  # interleaved, so a busy moment hits every variant alike
        for name in names:
            if name == "bare":
                r, rc = bare_rate(ref, args)
            else:
                r, rc, n = engine_rate(args, views=name.endswith("refreshing"),
                                       compare_every=4 if name.endswith("alongside") else 0)
                if name.endswith("refreshing"):
                    snapshots.append(n)
            rates[name].append(r)
            cpu_rates[name].append(rc)
    cpu_share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    bare = statistics.median(rates["bare"])
    bare_cpu = statistics.median(cpu_rates["bare"])
    print(f"LSTM {args.hidden} units, adding problem T = {args.length}, batch {args.batch}, {args.steps} steps, "
          f"{args.repeats} repeats, {args.threads} thread(s), device {args.device}")
    for name, vals in rates.items():
        med = statistics.median(vals)
        med_cpu = statistics.median(cpu_rates[name])
        print(f"  {name:<26} {med:10,.0f} samples/s   ratio {med / bare:5.2f}   per CPU second: ratio "
              f"{med_cpu / bare_cpu:5.2f}   (runs: {', '.join(f'{v:,.0f}' for v in vals)})")
    print(f"  snapshots taken while refreshing: {', '.join(str(n) for n in snapshots)} "
          f"(at most 20/s; each recomputes the probe views only within its budget)")
    print(f"this process used {cpu_share:.0%} of one core's wall time on average "
          f"(about {args.threads * 100}% expected when nothing else runs)")


if __name__ == "__main__":
    main()


def suite_case(quick: bool, data_dir: str | None, device: str, model: str = "lstm") -> dict:
    """This benchmark's row in ``benchmarks/run.py``: LSTM 64 units on the adding problem, T = 50
    (``model="rnn"``: the vanilla RNN on the same task, as ``benchmarks/gpu_check.py`` runs it)."""
    args = argparse.Namespace(length=50, hidden=64, batch=64, device=device, steps=0, model=model)
    cfg = config(args)
    ref = RecurrentTrainer(config(args))

    def bare(steps: int) -> float:
        args.steps = steps
        return bare_rate(ref, args)[0]

    return {"family": model, "label": f"{model.upper()} 64, adding T=50", "describe": "batch 64, Adam, clip 1",
            "config": cfg, "bare": bare, "batch": 64}
