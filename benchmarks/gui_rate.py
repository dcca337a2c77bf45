"""Training speed with the window open and refreshing, against the same training headless.

    python benchmarks/gui_rate.py [--data-dir DIR] [--rates 20,5] [--seconds 10]

Trains the RBM 784-500 (batch 100, CD-1) on MNIST when ``--data-dir`` has it (else the digits)
in the real main window (offscreen Qt platform unless a display is set), with every view visible,
at each refresh rate; then headless through the engine for the same time. Prints samples/s,
redraws per second actually reached, the lateness of a GUI-thread timer (p50/p99), and the
ratio visible / headless. Run it on a quiet machine: the figures share the CPU with everything.
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

from PySide6 import QtCore  # noqa: E402

from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer  # noqa: E402
from explorer.gui.app import make_app  # noqa: E402
from explorer.gui.main_window import MainWindow  # noqa: E402


def config(data_dir: str | None) -> RBMConfig:
    if data_dir:
        return RBMConfig(dataset="mnist", data_dir=data_dir, hidden=500, batch_size=100, device="cpu")
    return RBMConfig(dataset="digits", hidden=100, batch_size=32, device="cpu")


def visible_rate(app, cfg: RBMConfig, hz: float, seconds: float, tmp_ini: str) -> dict:
    settings = QtCore.QSettings(tmp_ini, QtCore.QSettings.Format.IniFormat)
    settings.clear()
    win = MainWindow(cfg, settings=settings)
    win.resize(1600, 1000)
    win.show()
    win.set_refresh_rate(hz)
    res: dict = {}
    late: list[float] = []
    probe = QtCore.QTimer()
    probe.setInterval(10)
    last = [time.perf_counter()]

    def tick():  # a 10 ms GUI-thread timer: how late does it fire while training and redrawing?
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - 10))
        last[0] = now

    probe.timeout.connect(tick)

    def begin():
        res.update(s0=win.session.trainer.step, t0=time.perf_counter(), r0=win.redraws)
        late.clear()
        last[0] = time.perf_counter()
        probe.start()

    def end():
        dt = time.perf_counter() - res["t0"]
        res["samples_per_s"] = (win.session.trainer.step - res["s0"]) * win.session.trainer.batch_size / dt
        res["redraws_per_s"] = (win.redraws - res["r0"]) / dt
        q = sorted(late)
        res["timer_late_p50_ms"] = statistics.median(q) if q else 0.0
        res["timer_late_p99_ms"] = q[int(0.99 * (len(q) - 1))] if q else 0.0
        probe.stop()
        app.quit()

    QtCore.QTimer.singleShot(500, win.toggle_play)
    QtCore.QTimer.singleShot(2500, begin)  # after warm-up
    QtCore.QTimer.singleShot(int(2500 + seconds * 1000), end)
    app.exec()
    win.close()
    return res


def headless_rate(cfg: RBMConfig, seconds: float) -> float:
    tr = RBMTrainer(cfg)
    s = TrainingSession(tr)
    try:
        s.start()
        time.sleep(2.0)
        s0, t0 = tr.step, time.perf_counter()
        time.sleep(seconds)
        rate = (tr.step - s0) * tr.batch_size / (time.perf_counter() - t0)
    finally:
        s.close()
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--rates", default="20,5", help="refresh rates to try, per second (default 20,5)")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    cfg = config(args.data_dir)
    app = make_app()
    rows = []
    for hz in (float(r) for r in args.rates.split(",")):
        rows.append((hz, visible_rate(app, cfg, hz, args.seconds, "/tmp/explorer-gui-rate.ini")))
    headless = headless_rate(cfg, args.seconds)
    print(f"RBM {784 if args.data_dir else 64}-{cfg.hidden}, batch {cfg.batch_size}; headless engine: "
          f"{headless:,.0f} samples/s")
    print(f"{'refresh':>8} {'samples/s':>10} {'ratio':>6} {'redraws/s':>10} {'timer late p50':>15} {'p99':>7}")
    for hz, r in rows:
        print(f"{hz:>6.0f}/s {r['samples_per_s']:>10,.0f} {r['samples_per_s'] / headless:>6.2f} "
              f"{r['redraws_per_s']:>10.1f} {r['timer_late_p50_ms']:>12.1f} ms {r['timer_late_p99_ms']:>5.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
