"""Python's cyclic garbage collector, run on the GUI thread only while the app has a window.

Left to itself the collector runs on whichever thread happens to allocate when a threshold is crossed,
often the training thread. If it then frees a Qt object kept alive only by a reference cycle (the
widgets of a closed window, a panel's lambdas), that object's C++ destructor runs off the GUI thread,
which Qt forbids. It was seen in the test suite: the training thread hung in ``QObject::~QObject``,
called from ``gc_collect_main`` in the middle of an LSTM forward, waiting for the GIL. pyqtgraph's
``GarbageCollector`` is the cure: it switches the automatic collector off and collects by the same
thresholds from a timer of the thread that makes it, the GUI thread.
"""

from __future__ import annotations

from pyqtgraph.util.garbage_collector import GarbageCollector

CHECK_INTERVAL_S = 0.2  # how often the GUI thread looks at the collector's counts

_collector: GarbageCollector | None = None


def install() -> GarbageCollector:
    """Switch the automatic collector off and collect on the GUI thread instead (once per process).

    Call it on the GUI thread, with the application made, before a training thread starts."""
    global _collector
    if _collector is None:
        _collector = GarbageCollector(interval=CHECK_INTERVAL_S)
    return _collector
