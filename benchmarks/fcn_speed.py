"""How fast does the engine train the segmentation FCN, compared with a bare PyTorch loop, and what do
the live overlays cost when the FCN panel is on screen?

    python benchmarks/fcn_speed.py [--steps 150] [--repeats 3] [--device cpu] [--seconds 15] [--threads N] [--no-gui]

unet-small (1x32x32 -> 4x32x32, skip concatenations), batch 16, Adam lr 0.001, per-pixel
cross-entropy, on 1000 generated scenes. Variants, interleaved, median of the repeats:

* ``engine``: FCNTrainer in a TrainingSession on its thread, nobody watching (the panel hidden);
* ``bare``: the same network (the same builder module and init) in a plain loop in the main thread,
  written independently: index_select a batch, forward, cross-entropy, backward, Adam step.

Then ``visible``: the real main window with the FCN panel showing (offscreen unless a display is
set) at 20 and at 5 redraws/s (``--rates``), training for ``--seconds``: probe overlays, probability maps, up-path maps and
curves all redrawing; against the headless engine over the same time.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import ShuffledBatches, engine_steps_rate, loop_rate, running_rate, window_rates  # noqa: E402

from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.fcn.trainer import FCNConfig, FCNTrainer, he_init, logits_spec  # noqa: E402
from explorer.core.spec.network import build_module, load_preset  # noqa: E402

BATCH, LR = 16, 0.001


def config(device: str) -> FCNConfig:
    return FCNConfig(batch_size=BATCH, lr=LR, device=device, n_train=1000, n_test=200)


def engine_rate(trainer: FCNTrainer, steps: int) -> float:
    s = TrainingSession(trainer)  # evaluations at most 2% of the training time, as in every benchmark here
    try:
        return engine_steps_rate(s, steps, BATCH, warmup=10)
    finally:
        s.close()


def bare_rate(trainer: FCNTrainer, steps: int) -> float:
    dev = trainer.device
    x_all, y_all = trainer._train_x, trainer._train_y  # the same tensors (N, 1, H, W) and (N, H, W)
    torch.manual_seed(0)
    net = build_module(logits_spec(load_preset("unet-small")))
    he_init(net)
    net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    n = x_all.shape[0]
    batches, losses = ShuffledBatches(n, BATCH, dev), []

    def one() -> None:
        idx = batches.next()
        loss = F.cross_entropy(net(x_all.index_select(0, idx)), y_all.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    rate = loop_rate(one, steps, BATCH, dev, warmup=10)
    torch.stack(losses).cpu()
    return rate


def headless_seconds(device: str, seconds: float) -> float:
    tr = FCNTrainer(config(device))
    s = TrainingSession(tr, eval_fraction=0.1)
    try:
        return running_rate(s, seconds, BATCH, settle=2.0)
    finally:
        s.close()


def visible_seconds(device: str, seconds: float, hz: float = 20.0) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore

    from explorer.gui.app import make_app
    from explorer.gui.main_window import MainWindow

    app = make_app()  # (one QApplication per process: every measurement reuses it)
    settings = QtCore.QSettings("/tmp/explorer-fcn-speed.ini", QtCore.QSettings.Format.IniFormat)
    settings.clear()
    win = MainWindow(config(device), settings=settings)
    win.resize(1600, 1000)
    win.show()
    win.set_refresh_rate(hz)
    panel = win.panel
    res = window_rates(app, win, seconds, BATCH, play_at=0.5, begin_at=2.5,
                       counters={"overlays": lambda: panel.overlay.updates})
    win.close()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of the visible/headless comparison")
    ap.add_argument("--no-gui", action="store_true", help="skip the visible-panel measurement")
    ap.add_argument("--rates", default="20,5", help="refresh rates of the visible panel to try (default 20,5)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    trainer = FCNTrainer(config(args.device))
    eng, bare = [], []
    for r in range(args.repeats):
        if r % 2:  # alternate the order: neither variant always runs on the warmer (or busier) machine
            bare.append(bare_rate(trainer, args.steps))
            eng.append(engine_rate(trainer, args.steps))
        else:
            eng.append(engine_rate(trainer, args.steps))
            bare.append(bare_rate(trainer, args.steps))
        print(f"  repeat {r + 1}/{args.repeats}: engine {eng[-1]:,.1f}  bare {bare[-1]:,.1f} samples/s", flush=True)
    e, b = statistics.median(eng), statistics.median(bare)
    print(f"FCN unet-small 1x32x32 -> 4x32x32, batch {BATCH}, Adam {LR}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"engine {e:,.1f} samples/s (median), bare {b:,.1f}: engine/bare = {e / b:.3f} (target >= 0.95, "
          "panel hidden)")
    if not args.no_gui:
        rows = [(hz, visible_seconds(args.device, args.seconds, hz)) for hz in (float(r) for r in args.rates.split(","))]
        head = headless_seconds(args.device, args.seconds)
        print(f"headless engine (eval share 10% as in the window): {head:,.1f} samples/s")
        for hz, vis in rows:
            print(f"panel visible, refresh {hz:g}/s: {vis['samples_per_s']:,.1f} samples/s, "
                  f"{vis['redraws_per_s']:.1f} redraws/s ({vis['overlays_per_s']:.1f} overlay redraws/s): "
                  f"visible/headless = {vis['samples_per_s'] / head:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def suite_case(quick: bool, data_dir: str | None, device: str) -> dict:
    """This benchmark's row in ``benchmarks/run.py``: unet-small on the generated scenes, batch 16, Adam."""
    cfg = config(device)
    ref = FCNTrainer(config(device))  # its data tensors feed the bare loop (the engine builds its own trainer)
    return {"family": "fcn", "label": "FCN unet-small", "describe": f"batch {BATCH}, Adam, 32x32 scenes",
            "config": cfg, "bare": lambda steps: bare_rate(ref, steps), "batch": BATCH}
