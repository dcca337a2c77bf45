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
    assert gc_guard.install() is collector  # once per application

    _Marker.freed_on = []

    def worker():
        _Marker()  # garbage in a cycle, made on another thread
        junk = [[] for _ in range(5 * gc.get_threshold()[0])]  # allocations that would trigger a collection
        del junk

    t = threading.Thread(target=worker, name="worker")
    t.start()
    t.join()
    assert _Marker.freed_on == []  # the worker's allocations collected nothing
    qtbot.waitUntil(lambda: bool(_Marker.freed_on), timeout=5000)
    assert _Marker.freed_on == [threading.main_thread().name]
    assert sum(collector.collections) >= 1
    win.close()


def test_the_check_collects_by_the_thresholds(qtbot):
    collector = gc_guard.install()
    collector.thresholds = (10**9, 10**9, 10**9)  # nothing is over its threshold: no collection
    try:
        before = list(collector.collections)
        collector.check()
        assert collector.collections == before
        collector.thresholds = (0, 10**9, 10**9)  # the youngest generation only
        collector.check()
        assert collector.collections[0] == before[0] + 1 and collector.collections[1:] == before[1:]
    finally:
        collector.thresholds = gc.get_threshold()
