"""Does Qt (PySide6) let go of Python's global lock while it paints? Here: no.

A Python thread counts as fast as it can, on a core of its own, while the main thread sleeps, runs
Python, or makes Qt calls that take milliseconds each in C++ (scaling an image, painting it). If
PySide6 let go of the lock during those calls, the counter would run as fast as while the main
thread sleeps. It runs slower than while the main thread runs Python. So the window's painting holds
the lock for all its CPU time, C++ included. See docs/performance.md ("Python's global lock").

    python benchmarks/qt_gil.py
"""

from __future__ import annotations

import os
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402


def main() -> int:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    assert app is not None  # QPainter needs one
    image = QtGui.QImage(2000, 2000, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtGui.QColor(10, 20, 30))
    target = QtGui.QImage(1600, 1000, QtGui.QImage.Format.Format_ARGB32)
    count, stop = [0], [False]

    def counter() -> None:
        while not stop[0]:
            count[0] += 1

    def rate(fn, seconds: float = 1.5) -> float:
        c0, t0 = count[0], time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            fn()
        return (count[0] - c0) / (time.perf_counter() - t0)

    def scale() -> None:
        image.scaled(1500, 1500, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                     QtCore.Qt.TransformationMode.SmoothTransformation)

    def paint() -> None:
        p = QtGui.QPainter(target)
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(QtCore.QRectF(0, 0, 1600, 1000), image)
        p.end()

    threading.Thread(target=counter, daemon=True).start()
    rows = [("sleeps (time.sleep)", lambda: time.sleep(0.01)),
            ("runs Python", lambda: sum(i * i for i in range(20000))),
            ("QImage.scaled (C++)", scale),
            ("QPainter.drawImage (C++)", paint)]
    print("a Python thread's count per second while the main thread ...")
    for name, fn in rows:
        print(f"  {name:28s} {rate(fn):12,.0f}")
    stop[0] = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
