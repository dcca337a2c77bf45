"""How fast does the engine train LeNet-5, compared with a bare PyTorch loop -- headless and with the panel?

    python benchmarks/cnn_speed.py [--data-dir DIR] [--seconds 6] [--repeats 3] [--rate 20]

LeNet-5 (the builder's preset: conv5-tanh-avgpool-conv5-tanh-avgpool-120-84-10), batch 64, SGD lr 0.01
momentum 0.9, cross-entropy of the logits; MNIST from ``--data-dir`` when it has it, else the digits
resized to 28x28. Three variants, interleaved, median of the repeats, each timed over the same wall time
after a warm-up:

* ``bare``: the same maths in a plain loop (the spec's module, SGD, index_select batches, loss and batch
  accuracy kept as tensors like the engine's metrics), on a plain thread like the engine's, so both run
  with the same OpenMP thread team; at 1 thread and at all of torch's, and the faster is the reference
  (the engine chooses its own count by timing its first steps at each);
* ``engine, panel hidden``: CNNTrainer in a TrainingSession on its thread, nobody subscribed to snapshots;
* ``engine, panel visible``: the real main window on the CNN panel as the app starts (training in a separate
  process, views paced; offscreen Qt unless a display is set),
  every dock shown, redrawing at ``--rate`` per second (the probe's feature maps, the effective receptive
  field of the selected unit, filters, curves ... computed and drawn live).

Targets: hidden/bare >= 0.95, visible/bare >= 0.85. Run it on a quiet machine: on a machine shared with
other work, torch's OpenMP threads wait on each other and the figures swing by a factor of ten; the
load average is printed, and ``--threads 1`` makes the figures steadier there.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import ShuffledBatches, loop_rate, running_rate, window_rates  # noqa: E402

from explorer.core.data.datasets import load_dataset  # noqa: E402
from explorer.core.engine.devices import resolve_device  # noqa: E402
from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.cnn.trainer import CNNConfig, CNNTrainer, adapt_images  # noqa: E402
from explorer.core.spec.network import build_module, load_preset  # noqa: E402

BATCH, LR, MOMENTUM = 64, 0.01, 0.9


def config(data_dir: str | None) -> tuple[CNNConfig, str]:
    if data_dir:
        try:
            load_dataset("mnist", data_dir)
            return (CNNConfig(dataset="mnist", data_dir=data_dir, lr=LR, momentum=MOMENTUM, batch_size=BATCH,
                              device="cpu"), f"MNIST from {data_dir}")
        except ValueError as exc:
            print(f"note: {exc}", file=sys.stderr)
    return (CNNConfig(lr=LR, momentum=MOMENTUM, batch_size=BATCH, device="cpu"),
            "the digits resized to 28x28")


def timed(step, seconds: float, warmup: float = 1.0) -> float:
    """Samples per second of ``step()`` (one mini-batch) over ``seconds`` after ``warmup``."""
    t_end = time.perf_counter() + warmup
    while time.perf_counter() < t_end:
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * BATCH / (time.perf_counter() - t0)


def bare_rate(cfg: CNNConfig, seconds: float, threads: int | None = None) -> float:
    """The bare loop's rate, measured on a plain thread (as the engine trains on one), with ``threads``
    intra-op threads (None: torch's default)."""
    import threading

    box: list[float] = []
    t = threading.Thread(target=lambda: box.append(_bare_rate(cfg, seconds, threads)), name="bare-loop")
    t.start()
    t.join()
    return box[0]


def _bare_rate(cfg: CNNConfig, seconds: float, threads: int | None = None) -> float:
    if threads:
        torch.set_num_threads(threads)  # this thread's only
    return timed(_bare_loop(cfg), seconds)


def _bare_loop(cfg: CNNConfig):
    """One step of the bare loop (a closure over its model, optimiser and data), on ``cfg.device``."""
    dev = resolve_device(cfg.device)
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    x_all = torch.from_numpy(adapt_images(ds.train_x, 1, ds.image_shape, (1, 28, 28))).to(dev)
    y_all = torch.from_numpy(np.asarray(ds.train_y, dtype=np.int64)).to(dev)
    torch.manual_seed(0)
    net = build_module(load_preset("lenet5")).to(dev)
    logits_net = torch.nn.Sequential(*list(net.layers)[:-1])  # the loss takes the logits (no final Softmax)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    batches = ShuffledBatches(len(x_all), BATCH, dev)
    metrics: list[tuple[torch.Tensor, torch.Tensor]] = []

    def one() -> None:
        idx = batches.next()
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        logits = logits_net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        metrics.append((loss.detach(), (logits.detach().argmax(1) == y).float().mean()))

    return one


def suite_case(quick: bool, data_dir: str | None, device: str) -> dict:
    """This benchmark's row in ``benchmarks/run.py``: LeNet-5, batch 64, SGD with momentum."""
    cfg, source = config(data_dir)
    cfg.device = device
    state: dict = {}

    def bare(steps: int) -> float:
        one = state.get("one") or state.setdefault("one", _bare_loop(cfg))
        return loop_rate(one, steps, BATCH, resolve_device(cfg.device), warmup=3)

    return {"family": "cnn", "label": "LeNet-5", "describe": f"batch {BATCH}, SGD momentum {MOMENTUM}, {source}",
            "config": cfg, "bare": bare, "batch": BATCH}


def engine_rate(cfg: CNNConfig, seconds: float) -> float:
    tr = CNNTrainer(CNNConfig(**cfg.to_dict()))
    s = TrainingSession(tr)  # nobody subscribes: no snapshots are made
    try:
        return running_rate(s, seconds, BATCH, settle=1.0)
    finally:
        s.close()


def visible_rate(app, cfg: CNNConfig, seconds: float, hz: float) -> dict:
    from PySide6 import QtCore

    from explorer.gui.main_window import MainWindow

    settings = QtCore.QSettings("/tmp/explorer-cnn-speed.ini", QtCore.QSettings.Format.IniFormat)
    settings.clear()
    win = MainWindow(CNNConfig(**cfg.to_dict()), settings=settings)
    win.resize(1600, 1000)
    win.show()
    win.set_refresh_rate(hz)
    res = window_rates(app, win, seconds, BATCH, play_at=0.3, begin_at=1.5)
    win.close()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=20.0, help="panel refresh rate, per second (default 20)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    from explorer.gui.app import make_app

    app = make_app()
    cfg, source = config(args.data_dir)
    from explorer.core.engine.threads import candidate_counts

    # the bare loop at each thread count the engine chooses from (it times its first steps at each);
    # the faster is the reference
    counts = candidate_counts(torch.get_num_threads())
    bare_by: dict[int, list[float]] = {n: [] for n in counts}
    bare, hidden, visible, redraws = [], [], [], []
    for r in range(args.repeats):
        for n in counts:
            bare_by[n].append(bare_rate(cfg, args.seconds, n))
        best_now = max(counts, key=lambda n: bare_by[n][-1])
        bare.append(bare_by[best_now][-1])
        hidden.append(engine_rate(cfg, args.seconds))
        v = visible_rate(app, cfg, args.seconds, args.rate)
        visible.append(v["samples_per_s"])
        redraws.append(v["redraws_per_s"])
        print(f"  repeat {r + 1}/{args.repeats}: bare {bare[-1]:,.0f}  engine hidden {hidden[-1]:,.0f}  "
              f"engine visible {visible[-1]:,.0f} samples/s ({redraws[-1]:.1f} redraws/s)", flush=True)
    meds = {n: statistics.median(v) for n, v in bare_by.items()}
    best = max(meds, key=meds.get)
    b, h, v = meds[best], statistics.median(hidden), statistics.median(visible)
    print(f"LeNet-5, batch {BATCH}, SGD lr {LR} momentum {MOMENTUM}, {source}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu; load average "
          f"{load0:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"bare {b:,.0f} samples/s (fastest on {best} thread(s): "
          f"{', '.join(f'{n}: {m:,.0f}' for n, m in meds.items())}); "
          f"engine, panel hidden {h:,.0f}: ratio {h / b:.3f} (target >= 0.95)")
    print(f"engine, panel visible at {args.rate:g}/s ({statistics.median(redraws):.1f} redraws/s) {v:,.0f}: "
          f"ratio {v / b:.3f} (target >= 0.85)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
