"""File › Export model ▸ ONNX… / safetensors…: the current model written for use outside the app.

The export itself (``explorer.core.persist.export``) runs on the training thread between two steps, like
Save run, so it never reads weights half-way through an update; the window stays responsive and the
result (the file and its size, or what went wrong) comes back to the notice bar through a queued
signal.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from explorer.core.persist.commands import export_model
from explorer.core.persist.export import LABELS, ExportError, file_size_text, require_onnx

FILTERS = {"onnx": "ONNX model (*.onnx)", "safetensors": "safetensors weights (*.safetensors)"}


class ModelExporter(QtCore.QObject):
    """Owns the "Export model" submenu of a :class:`MainWindow` and does the exports it asks for."""

    # (message, is_error): emitted on the training thread, delivered on the GUI thread (queued)
    sigDone = QtCore.Signal(str, bool)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.last_dir = Path.home()
        self.menu = QtWidgets.QMenu("Export model", window)
        self.menu.setObjectName("exportModelMenu")
        self.actions = {}
        self._running: list[tuple[threading.Event, Any]] = []  # exports posted to the training thread
        tips = {"onnx": "The network's forward pass with its current weights, for any ONNX runtime",
                "safetensors": "The current weights (and optimiser state), as in a run folder"}
        for kind in ("onnx", "safetensors"):
            act = self.menu.addAction(f"{LABELS[kind]}…")
            act.setObjectName(f"exportModel_{kind}")
            act.setToolTip(tips[kind])
            act.triggered.connect(lambda _=False, kind=kind: self.choose(kind))
            self.actions[kind] = act
        self.menu.setToolTipsVisible(True)
        self.sigDone.connect(self._show, QtCore.Qt.ConnectionType.QueuedConnection)

    def default_name(self, kind: str) -> str:
        s = self.window.session
        if s is None:
            return f"model.{kind}"
        return f"{s.trainer.family}-step{s.trainer.step}.{kind}"

    def choose(self, kind: str) -> None:
        """Ask where to write, then export there; without the onnx package, say what to install instead."""
        if kind == "onnx":
            try:
                require_onnx()
            except ExportError as exc:
                self.window.notice.show_message(str(exc), error=True)
                return
        start = str(self.last_dir / self.default_name(kind))
        title = f"Export the model as {LABELS[kind]}"
        scrubbed = self._scrubbed_to()
        s = self.window.session
        if scrubbed is not None and (s is None or scrubbed != s.trainer.step):
            title += f" (its weights now, not those of step {scrubbed} on show)"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, title, start, FILTERS[kind])
        if path:
            if not path.lower().endswith(f".{kind}"):
                path += f".{kind}"
            self.last_dir = Path(path).parent
            self.export_model(kind, path)

    def _scrubbed_to(self) -> int | None:
        """The step the views show when the timeline is scrubbed back (None: live). The timeline keeps what the
        views drew, not the weights: an export writes the model as it is now, and says so."""
        panel = getattr(self.window, "panel", None)
        snap = getattr(panel, "viewing", None)
        return None if snap is None else int(snap.step)

    def export_model(self, kind: str, path: str | Path) -> threading.Event:
        """Export the current model as ``kind`` ("onnx" | "safetensors") to ``path`` on the training thread.

        Returns an event set when done; the notice bar then shows the file and its size, or the error.
        """
        done = threading.Event()
        s = self.window.session
        if s is None:
            self.window.notice.show_message("No model to export yet.", error=True)
            done.set()
            return done
        path = Path(path)
        scrubbed = self._scrubbed_to()

        def exported(result: tuple[str, str, int] | None, error: BaseException | None) -> None:
            try:
                if error is None:
                    out, family, step = result
                    note = ("" if scrubbed is None or scrubbed == step else
                            f" (Its weights at step {step}: the timeline keeps the views of step {scrubbed}, not "
                            "its weights.)")
                    self.sigDone.emit(f"Exported the {family} model at step {step} as {LABELS[kind]}: "
                                      f"{out} ({file_size_text(out)}).{note}", False)
                else:  # any failure is a message, never a failed training run
                    self.sigDone.emit(f"Could not export the model as {LABELS[kind]} to {path}: {error}", True)
            finally:
                done.set()

        if s.is_alive:
            # the GUI side keeps ``exported`` (and so this object and its window) until the result arrives:
            # were the training thread to drop the last reference, Qt objects would be destroyed from
            # there (PySide defers that to an arbitrary later moment on the GUI thread, even mid-paint)
            self._running.append((done, exported))
            saves = getattr(self.window, "_saves", None)
            if isinstance(saves, list):  # the window waits for it before stopping the thread on close
                saves.append(done)
            s.run_command(export_model, kind, str(path), on_done=exported)
        else:  # no training thread: nothing else touches the model
            try:
                result, error = export_model(s, kind, str(path)), None
            except Exception as exc:  # noqa: BLE001 - reported as a message
                result, error = None, exc
            exported(result, error)
        return done

    @QtCore.Slot(str, bool)
    def _show(self, message: str, error: bool) -> None:
        self._running = [(done, work) for done, work in self._running if not done.is_set()]  # released here
        self.window.notice.show_message(message, error=error)
        self.window.statusBar().showMessage(message, 6000)
