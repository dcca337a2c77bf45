"""What several test files need: waiting for a condition, small configurations, a shown main window.

Imported as ``from tests.helpers import ...`` (the repository root is on the tests' path). Qt is
imported only by :func:`open_window`, so the core's tests run without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``pred`` every 5 ms until it holds (True) or ``timeout`` seconds have passed (False)."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def wait_for(pred: Callable[[], bool], timeout: float = 60.0, what: str = "the condition") -> None:
    """As :func:`wait_until`, but an AssertionError naming ``what`` when ``timeout`` passes."""
    if not wait_until(pred, timeout):
        raise AssertionError(f"timed out waiting for {what}")


def tiny_rbm_config(**kw: Any):
    """An RBM on 4x4 bars with 8 hidden units: a session steps it in a few milliseconds."""
    from explorer.core.families.rbm.trainer import RBMConfig

    cfg: dict[str, Any] = dict(dataset="bars", bars_size=4, hidden=8, batch_size=10, device="cpu", seed=1)
    cfg.update(kw)
    return RBMConfig(**cfg)


def small_recurrent_config(cls: type | None = None, **kw: Any):
    """A small adding-problem run (T = 12, 8 units) of ``cls`` (LSTMConfig by default, or RNNConfig)."""
    from explorer.core.families.recurrent.trainer import LSTMConfig

    base: dict[str, Any] = dict(task="adding", length=12, hidden=8, n_train=256, eval_samples=64, batch_size=16,
                                device="cpu", compare_every=2)
    base.update(kw)
    return (cls or LSTMConfig)(**base)


def narrowed_unet_small(divisor: int):
    """The unet-small preset with its channels divided by ``divisor`` (the classifier keeps its 4 classes)."""
    from explorer.core.spec.network import load_preset

    spec = load_preset("unet-small")
    for layer in spec.layers:
        oc = layer.params.get("out_channels")
        if oc is not None and oc != 4:
            layer.params["out_channels"] = oc // divisor
    return spec


def open_window(qtbot, settings, config, size: tuple[int, int] | None = None):
    """A main window on ``config``, resized to ``size`` if given, shown and exposed; the caller closes it."""
    from explorer.gui.main_window import MainWindow

    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    if size is not None:
        win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win


def log_drawing_parts(make_parts: Callable[..., list[Callable[[], None]]], log: list[str]):
    """``make_parts`` (a panel's ``snapshot_parts`` or ``metrics_parts``) with each part logged as it runs
    ("part i"); as the first part runs, something else the window has to do is asked for, a zero timer that
    logs "other": where "other" lands in the log tells whether the window was free between the parts."""
    from PySide6 import QtCore

    def logged(*args: Any) -> list[Callable[[], None]]:
        def wrap(i: int, part: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                log.append(f"part {i}")
                if i == 0:
                    QtCore.QTimer.singleShot(0, lambda: log.append("other"))
                part()
            return run
        return [wrap(i, p) for i, p in enumerate(make_parts(*args))]
    return logged
