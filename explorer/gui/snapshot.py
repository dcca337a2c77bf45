"""Render a panel to PNG without a display (docs, slides): train N steps, draw, grab the window."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore  # noqa: E402

from explorer.core.atomic import atomic_write  # noqa: E402
from explorer.gui.app import make_app  # noqa: E402


def render_snapshot(config, steps: int, out: str | Path, size: tuple[int, int] = (1600, 1000)) -> Path:
    """The main window on ``config``'s family (RBM, autoencoder, deep network...), after ``steps`` steps.

    Whatever happens (a refused setting, a failed training, a file that cannot be written), the window is
    closed and its training thread stopped before the error goes on: a process that ends with Qt objects
    and a training thread still alive can crash at exit, after the error message."""
    from explorer.gui.main_window import MainWindow

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)  # before the training: a bad path fails at once
    app = make_app()
    # a throw-away settings file: a snapshot must not depend on (or change) the user's saved layout
    tmp = tempfile.mkdtemp(prefix="explorer-snapshot-")
    win = None
    try:
        settings = QtCore.QSettings(os.path.join(tmp, "settings.ini"), QtCore.QSettings.Format.IniFormat)
        win = MainWindow(config, settings=settings)
        return _train_and_grab(app, win, steps, out, size)
    finally:
        if win is not None:
            win.close()  # stops the training thread (the main window's close does)
            win.deleteLater()
        for _ in range(3):
            app.processEvents()
        shutil.rmtree(tmp, ignore_errors=True)


def _train_and_grab(app, win, steps: int, out: Path, size: tuple[int, int]) -> Path:
    from explorer.core.persist.commands import evaluate_now

    if win.session is None:
        raise ValueError("could not start training: " + win.notice.label.text())
    win.resize(*size)
    win.notice.hide()  # the "press Space" hint is for people, not pictures
    win.show()
    app.processEvents()
    _check_size(win, size)  # before the training: a size the panel cannot take fails at once
    s = win.session
    s.step(steps) if steps else None
    if not s.wait(timeout=600):
        raise RuntimeError("training did not finish in time")
    if s.error:
        raise ValueError(f"training failed: {s.error}")
    # evaluate once so the held-out curves have a point at the last step
    s.run_command(evaluate_now)
    s.request_snapshot()
    s.wait(timeout=60)
    deadline = QtCore.QDeadlineTimer(5000)
    while not deadline.hasExpired():
        app.processEvents()
        snap = s.latest_snapshot()
        if snap is not None and snap.step == s.trainer.step and win.panel._last_seq == snap.seq:
            break
        QtCore.QThread.msleep(20)
    for _ in range(5):
        app.processEvents()
        QtCore.QThread.msleep(10)
    _check_size(win, size)  # (the views, filled, may need more room than the empty ones did)
    image = win.grab()
    def write(tmp: Path) -> None:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"{out}: could not be written")

    return atomic_write(out, write)  # (the core's: fsynced, never over a device)


def _check_size(win, size: tuple[int, int]) -> None:
    """ValueError unless the window took ``size``: below the smallest its panel's views fit in, Qt keeps it
    larger, and a picture of another size than asked for (668x611 for 100x100) is not what was wanted."""
    if (win.width(), win.height()) != tuple(size):
        least = win.minimumSizeHint().expandedTo(win.minimumSize())
        raise ValueError(f"--size {size[0]}x{size[1]}: this panel's window cannot be that small; it needs at least "
                         f"{least.width()}x{least.height()}")
