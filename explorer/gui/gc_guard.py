"""Python's cyclic garbage collector, run on the GUI thread only while the app has a window.

Left to itself the collector runs on whichever thread happens to allocate when a threshold is crossed,
often the training thread. If it then frees a Qt object kept alive only by a reference cycle (the
widgets of a closed window, a panel's lambdas), that object's C++ destructor runs off the GUI thread,
which Qt forbids. It was seen in the test suite: the training thread hung in ``QObject::~QObject``,
called from ``gc_collect_main`` in the middle of an LSTM forward, waiting for the GIL. So the automatic
collector is switched off and a GUI-thread timer collects instead, by the same thresholds (pyqtgraph's
``GarbageCollector`` does the same, for the same reason).
"""

from __future__ import annotations

import gc

import shiboken6
from PySide6 import QtCore

CHECK_INTERVAL_MS = 200  # how often the GUI thread looks at the collector's counts

_collector: "GuiThreadCollector | None" = None


class GuiThreadCollector(QtCore.QObject):
    """Collects on a timer of the thread it lives in, as the automatic collector would have."""

    def __init__(self, interval_ms: int = CHECK_INTERVAL_MS, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.collections = [0, 0, 0]  # per generation, for tests and curiosity
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        gc.disable()

    def check(self) -> None:
        """Collect the youngest generation over its threshold, and the older ones as theirs are crossed."""
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c0 <= t0 and c1 <= t1:
            return
        gen = 2 if (c1 > t1 and c2 > t2) else 1 if c1 > t1 else 0
        gc.collect(gen)
        self.collections[gen] += 1


def install(app: QtCore.QCoreApplication | None = None) -> GuiThreadCollector | None:
    """Switch the automatic collector off and collect on the GUI thread instead (once per application)."""
    global _collector
    app = app or QtCore.QCoreApplication.instance()
    if app is None:
        return None
    if _collector is None or not shiboken6.isValid(_collector):
        _collector = GuiThreadCollector(parent=app)
    return _collector
