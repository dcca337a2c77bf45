"""Where the GUI thread's time goes while a family trains in the window with its views refreshing.

Prints, for one family: how much of the wall time the GUI thread spent painting each view (by its
title), in the panel's refresh (turning snapshots into images), and elsewhere; then the top
functions of a cProfile of the GUI thread. Use it to find what to make cheaper when the
"visible" ratio of `run.py` is low.

    python benchmarks/gui_profile.py --family rbm --seconds 10 --data-dir ~/data/mnist
    python benchmarks/gui_profile.py --family cnn --no-cprofile
    python benchmarks/gui_profile.py --family autoencoder --no-cprofile --no-draw     # the base load
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does (see explorer/cli/__init__.py)
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _view_title(widget) -> str:
    from explorer.gui.widgets.views import _ViewFrame

    w = widget
    while w is not None:
        if isinstance(w, _ViewFrame):
            return f"{type(w).__name__}: {w.title.text()[:40]}"
        w = w.parentWidget()
    return f"{type(widget).__name__} (not a shared view)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="rbm")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--refresh-hz", type=float, default=20.0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--no-cprofile", action="store_true", help="only the per-view paint times")
    ap.add_argument("--no-draw", action="store_true",
                    help="the panel takes its snapshots and metrics but draws nothing: the GUI thread's base load")
    args = ap.parse_args(argv)
    os.environ["NETWORK_EXPLORER_CACHE"] = tempfile.mkdtemp(prefix="gui-profile-")

    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from soak import _config

    from explorer.gui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    paint_s: dict[str, float] = collections.defaultdict(float)
    paints: dict[str, int] = collections.defaultdict(int)
    refresh_s = [0.0]
    real_paint = pg.GraphicsView.paintEvent

    def timed_paint(self, ev):
        t = time.perf_counter()
        try:
            return real_paint(self, ev)
        finally:
            key = _view_title(self)
            paint_s[key] += time.perf_counter() - t
            paints[key] += 1

    pg.GraphicsView.paintEvent = timed_paint
    if os.environ.get("PROFILE_AXIS_CACHE"):
        real_init = pg.AxisItem.__init__

        def cached_init(self, *a, **k):
            real_init(self, *a, **k)
            self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)

        pg.AxisItem.__init__ = cached_init
    settings = QtCore.QSettings(os.path.join(os.environ["NETWORK_EXPLORER_CACHE"], "s.ini"),
                                QtCore.QSettings.Format.IniFormat)
    win = MainWindow(_config(args.family, args.data_dir), settings=settings, refresh_hz=args.refresh_hz)
    w, h = (int(v) for v in args.size.split("x"))
    win.resize(w, h)
    win.show()
    panel = win.panel
    if args.no_draw:
        panel.show_snapshot = lambda snap: None
        panel.snapshot_parts = lambda snap: []
        panel.add_metrics = lambda steps, evals: None
    real_refresh = panel.refresh

    def timed_refresh():
        t = time.perf_counter()
        try:
            return real_refresh()
        finally:
            refresh_s[0] += time.perf_counter() - t

    panel.refresh = timed_refresh
    prof = None
    state = {}

    def begin() -> None:
        nonlocal prof
        paint_s.clear()
        paints.clear()
        refresh_s[0] = 0.0
        state.update(t0=time.perf_counter(), s0=win.session.trainer.step, c0=time.thread_time(), r0=win.redraws)
        if not args.no_cprofile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()

    def end() -> None:
        if prof is not None:
            prof.disable()
        state.update(t1=time.perf_counter(), s1=win.session.trainer.step, c1=time.thread_time(), r1=win.redraws)
        app.quit()

    QtCore.QTimer.singleShot(300, win.toggle_play)
    QtCore.QTimer.singleShot(3000, begin)  # after a warm-up
    QtCore.QTimer.singleShot(int(3000 + args.seconds * 1000), end)
    app.exec()
    win.close()

    wall = state["t1"] - state["t0"]
    cpu = state["c1"] - state["c0"]
    tr = win.session.trainer
    print(f"{args.family}: {wall:.1f} s, {(state['s1'] - state['s0']) * tr.batch_size / wall:,.0f} samples/s, "
          f"{(state['r1'] - state['r0']) / wall:.1f} redraw ticks/s; GUI thread CPU {cpu / wall:.0%} of one core")
    total_paint = sum(paint_s.values())
    print(f"  painting views   {total_paint / wall:6.1%} of wall time")
    for key, s in sorted(paint_s.items(), key=lambda kv: -kv[1]):
        print(f"    {s / wall:6.1%}  {1000 * s / max(1, paints[key]):6.1f} ms x {paints[key] / wall:4.1f}/s  {key}")
    print(f"  panel.refresh    {refresh_s[0] / wall:6.1%} of wall time (curves and snapshots into items)")
    if prof is not None:
        import pstats

        print()
        pstats.Stats(prof).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("PROFILE_TOP", "25")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
