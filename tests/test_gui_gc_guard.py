"""Python's cyclic collector runs on the GUI thread only, so no Qt object is ever freed on the training thread."""

import gc
import threading

from explorer.gui import gc_guard
from explorer.gui.main_window import MainWindow


class _Marker:
    """Part of a reference cycle; records the thread that frees it."""

    freed_on: list[str] = []

    def __init__(self):
        self.me = self  # a cycle: only the cyclic collector frees it

    def __del__(self):
        _Marker.freed_on.append(threading.current_thread().name)


def test_a_window_moves_collection_to_the_gui_thread(qtbot, settings):
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    collector = gc_guard.install()
    assert collector is not None and collector.timer.isActive()
    assert not gc.isenabled()  # the automatic collector is off: no thread collects by accident
    assert gc_guard.install() is collector  # once per process

    _Marker.freed_on = []

    def worker():
        _Marker()  # garbage in a cycle, made on another thread
        junk = [[] for _ in range(5 * gc.get_threshold()[0])]  # allocations that would trigger a collection
        del junk

    t = threading.Thread(target=worker, name="worker")
    t.start()
    t.join()
    assert _Marker.freed_on == []  # the worker's allocations collected nothing
    qtbot.waitUntil(lambda: bool(_Marker.freed_on), timeout=5000)  # the GUI thread's timer collected it
    assert _Marker.freed_on == [threading.main_thread().name]
    win.close()


def test_the_check_collects_by_the_thresholds(qtbot):
    collector = gc_guard.install()
    collector.timer.stop()  # only the explicit checks below collect
    collector.threshold = (10**9, 10**9, 10**9)  # nothing is over its threshold: no collection
    try:
        _Marker.freed_on = []
        _Marker()
        collector.check()
        assert _Marker.freed_on == []
        collector.threshold = (0, 10**9, 10**9)  # the youngest generation is over: it is collected
        collector.check()
        assert _Marker.freed_on == [threading.main_thread().name]
    finally:
        collector.threshold = gc.get_threshold()
        collector.timer.start()
