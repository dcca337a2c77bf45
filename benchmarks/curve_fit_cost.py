"""What a curve plot's range fit costs the window's thread, on long curves.

    python benchmarks/curve_fit_cost.py [--series 6] [--points 100000] [--repeats 50]

Every redraw of a curve plot (``CurveView.redraw``) fits its ranges (``RangeKeeper.fit``): x along its
ladder, y over every series, and whether the first steps would squash the rest (see
``explorer/gui/widgets/views/plotting.py``). A long run's plot holds a point per step in each series, so
this is a pass over all of them on the window's thread at every redraw. Prints the median time of a fit,
in milliseconds, for series shaped like a classifier's loss (a fast fall, then noise), and on a log axis.
The plot is on screen (offscreen Qt), 900x300: the mark of the first steps past the edge ("▲ 2.05") looks
for a place along the edge where no curve passes under it, at every fit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=6)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()

    import numpy as np
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from explorer.gui.widgets.views import CurveView

    rng = np.random.default_rng(0)
    for logy in (False, True):
        view = CurveView("loss", logy=logy)
        steps = np.arange(args.points, dtype=float)
        for i in range(args.series):
            view.add_series(f"s{i}", f"series {i}", "#88c0d0")
            view.append(f"s{i}", steps, 0.05 + 2.0 * np.exp(-steps / 300.0) + 0.01 * rng.random(args.points))
        view.resize(900, 300)
        view.show()
        app.processEvents()
        view.redraw()
        app.processEvents()
        xs = [x for x, _ in view._drawn.values()]
        ys = [y for _, y in view._drawn.values()]
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            view.ranges.fit(xs, ys, xs)
            times.append(time.perf_counter() - t)
        print(f"{'log' if logy else 'linear'} axis, {args.series} x {args.points:,} points: "
              f"{statistics.median(times) * 1e3:.2f} ms a fit (median of {args.repeats}); "
              f"first steps past the edge: {view.ranges.off_scale}")
    app.processEvents()


if __name__ == "__main__":
    main()
