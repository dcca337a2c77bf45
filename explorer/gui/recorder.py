"""Recording the window's views while a model trains, then saving the recording as a GIF or an MP4.

A GUI-thread QTimer grabs the window's content (the central view and the docked views, without the
menu, toolbar and status bar) a few times a second and keeps each grab as an RGB numpy array. Raw
frames are large (a 1280x800 grab is 3 MB), so a recording stops by itself at a memory bound or a
duration bound and says so. Encoding (``core/video.py``) runs on a plain Python thread that sees only
the frames and a small dict it writes progress into; a GUI-thread QTimer polls that dict and feeds the
status bar's progress bar. No widget is touched off the GUI thread.

The file is written atomically by the encoder: closing the window while it encodes first waits for the
encode (the window closes when the file is written); closing again cancels it, and nothing is written.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.core.persist.video import VIDEO_SUFFIXES, EncodeCancelled, VideoError, encode_gif, encode_mp4, require_av
from explorer.core.safe_read import one_line
from explorer.core.sizes import format_bytes

DEFAULT_FPS = 8.0
MAX_WIDTH = 1280  # wider grabs are scaled down: a projector-sized recording, a quarter of a 4K screen's bytes
MAX_BYTES = 600 * 2**20  # raw frames held in memory during a recording
MAX_SECONDS = 10 * 60.0

IDLE, RECORDING, HELD, ENCODING = "idle", "recording", "held", "encoding"
# a save dialog that answers sooner than this was never seen by anyone: the desktop's own dialog failed
DIALOG_FAILED_S = 0.3

_REC_STYLE = ("QLabel#recLabel { color: #ffffff; background: #c62828; border-radius: 3px; "
              "font-weight: bold; padding: 1px 8px; }")


def format_clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def qimage_to_rgb(img: QtGui.QImage) -> np.ndarray:
    """A copy of ``img`` as an (H, W, 3) uint8 RGB array (rows of a QImage are padded to 4 bytes)."""
    img = img.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def ask_save_path(parent: QtWidgets.QWidget, title: str, start: str, filters: str) -> tuple[str, str]:
    """The save dialog: (path, chosen filter), or ("", "") when the user cancels.

    A desktop whose file-dialog service fails (a portal that is not running, say) makes Qt's static dialog
    return at once with no file name, as if cancelled, and nothing was ever on the screen. An answer that
    quick cannot be a person's: the question is asked again with Qt's own dialog, which always shows.
    """
    t0 = time.monotonic()
    path, chosen = QtWidgets.QFileDialog.getSaveFileName(parent, title, start, filters)
    if not path and time.monotonic() - t0 < DIALOG_FAILED_S:
        path, chosen = QtWidgets.QFileDialog.getSaveFileName(
            parent, title, start, filters, "", QtWidgets.QFileDialog.Option.DontUseNativeDialog)
    return path, chosen


class PanelRecorder(QtCore.QObject):
    """Records ``window``'s views to frames in memory and encodes them to a GIF or MP4 file.

    For a user: the action (Ctrl+Shift+R) starts a recording; pressing it again stops it and asks where
    to save. A stopped recording is never dropped unasked: cancelling the dialog keeps its frames, and the
    notice offers to save them or to discard them. For code and tests: ``start()``, ``stop()``,
    ``save(path)`` (no dialogs), ``discard()``.
    """

    sigStateChanged = QtCore.Signal(str)

    def __init__(self, window: QtWidgets.QMainWindow, fps: float = DEFAULT_FPS, max_width: int = MAX_WIDTH,
                 max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS):
        super().__init__(window)
        self.window = window
        self.fps = float(fps)
        self.max_width = int(max_width)
        self.max_bytes = int(max_bytes)
        self.max_seconds = float(max_seconds)
        self.frames: list[np.ndarray] = []
        self.state = IDLE
        self.last_path: Path | None = None  # the last file written
        self.last_error: str | None = None
        self.stop_reason: str | None = None  # why the last recording stopped by itself
        self._t0 = 0.0
        self._t_last = 0.0
        self._frame_size: tuple[int, int] | None = None  # (w, h) of frame 0; later grabs are fitted to it
        self._job: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._close_pending = False
        self._last_dir = str(Path.home())

        self.grab_timer = QtCore.QTimer(self)
        self.grab_timer.timeout.connect(self._grab_frame)
        self.poll_timer = QtCore.QTimer(self)
        self.poll_timer.setInterval(100)
        self.poll_timer.timeout.connect(self._poll_encode)

        self.action = QtGui.QAction("Record panel…", window)
        self.action.setIconText("● Record")
        self.action.setShortcut(QtGui.QKeySequence("Ctrl+Shift+R"))
        self.action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        self.action.setToolTip("Record the views while the model trains, then save a GIF or MP4 (Ctrl+Shift+R)")
        self.action.triggered.connect(self.toggle)
        window.addAction(self.action)

        sb = window.statusBar()
        self.rec_label = QtWidgets.QLabel("")
        self.rec_label.setObjectName("recLabel")
        self.rec_label.setStyleSheet(_REC_STYLE)
        self.rec_label.hide()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("recordProgress")
        self.progress.setMaximumWidth(240)
        self.progress.setFormat("encoding %v/%m frames")
        self.progress.hide()
        # permanent widgets: a temporary status-bar message does not hide them
        sb.addPermanentWidget(self.rec_label)
        sb.addPermanentWidget(self.progress)
        window.installEventFilter(self)

    # -- state ---------------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.state == RECORDING

    @property
    def encoding(self) -> bool:
        return self.state == ENCODING

    @property
    def frame_bytes(self) -> int:
        return sum(f.nbytes for f in self.frames)

    def _set_state(self, state: str) -> None:
        self.state = state
        text, icon = {RECORDING: ("Stop recording", "■ Stop rec"),
                      HELD: ("Save recording…", "● Save rec"),
                      ENCODING: ("Encoding recording…", "● Encoding")}.get(state, ("Record panel…", "● Record"))
        self.action.setText(text)
        self.action.setIconText(icon)
        self.action.setEnabled(state != ENCODING)
        self.rec_label.setVisible(state == RECORDING)
        self.sigStateChanged.emit(state)

    def _notice(self, text: str, error: bool = False, action=None, more=None) -> None:
        notice = getattr(self.window, "notice", None)
        if notice is not None:
            notice.show_message(text, error=error, action=action, more=more)
        else:
            self.window.statusBar().showMessage(text, 8000)

    # -- the user's action ---------------------------------------------------------------------------
    def toggle(self) -> None:
        """Start; or stop and ask where to save; or ask again for a recording that stopped by itself."""
        if self.state == IDLE:
            self.start()
        elif self.state in (RECORDING, HELD):
            self.stop()
            self.ask_and_save()

    def ask_and_save(self) -> None:
        """The save dialog. Cancelled, the frames stay held and the notice offers to save or discard them."""
        if not self.frames:
            self.discard()
            self._notice("Nothing to save: no frame could be grabbed (the window was hidden or minimised "
                         "while it recorded).", error=True)
            return
        family = getattr(self.window, "family", "panel")
        name = f"{family}-{time.strftime('%Y%m%d-%H%M%S')}.gif"
        path, chosen = ask_save_path(self.window, "Save the recording", str(Path(self._last_dir) / name),
                                     "GIF animation (*.gif);;MP4 video (*.mp4)")
        if not path:
            n = len(self.frames)
            self._notice(f"Recording not saved: the save dialog was closed without a file name. Its {n} "
                         f"frame{'s' * (n != 1)} are kept until you save or discard them.",
                         action=("Save recording…", self.ask_and_save), more=("Discard it", self.discard_asked))
            return
        if Path(path).suffix.lower() not in VIDEO_SUFFIXES:
            path += ".mp4" if "mp4" in chosen.lower() else ".gif"
        self._last_dir = str(Path(path).parent)
        self.save(path)

    # -- recording -----------------------------------------------------------------------------------
    def start(self, fps: float | None = None) -> bool:
        """Begin a new recording (any held frames are dropped). False while an encode is running."""
        if self.state == ENCODING:
            self._notice("A recording is still being encoded; start the next one when it is written.", error=True)
            return False
        if fps is not None:
            self.fps = float(fps)
        self.frames = []
        self._frame_size = None
        self.stop_reason = None
        self._t0 = self._t_last = time.monotonic()
        self._set_state(RECORDING)
        self._update_label()
        self.grab_timer.start(max(1, int(round(1000.0 / self.fps))))
        self._grab_frame()  # frame 0 now, so a recording is never empty
        return True

    def stop(self) -> int:
        """Stop grabbing; the frames are held until ``save`` or ``discard``. Returns the frame count."""
        self.grab_timer.stop()
        if self.state == RECORDING:
            self._set_state(HELD if self.frames else IDLE)
        return len(self.frames)

    def discard(self) -> None:
        self.grab_timer.stop()
        self.frames = []
        if self.state in (RECORDING, HELD):
            self._set_state(IDLE)

    def discard_asked(self) -> None:
        """Discard, because the user said so (the notice's button), and say so."""
        n = len(self.frames)
        self.discard()
        self._notice(f"Recording discarded ({n} frame{'s' * (n != 1)}).")

    def content_rect(self) -> QtCore.QRect:
        """The central view plus the docked views, in window coordinates (no menu, toolbars, status bar)."""
        w = self.window
        central = w.centralWidget()
        rect = central.geometry() if central is not None else w.rect()
        for dock in w.findChildren(QtWidgets.QDockWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly):
            if dock.isVisible() and not dock.isFloating():
                rect = rect.united(dock.geometry())
        return rect.intersected(w.rect())

    def grab_image(self) -> QtGui.QImage:
        """One grab of the window's content, scaled to at most ``max_width`` wide."""
        img = self.window.grab(self.content_rect()).toImage()
        if img.width() > self.max_width:
            img = img.scaledToWidth(self.max_width, QtCore.Qt.TransformationMode.SmoothTransformation)
        return img

    def _fit(self, img: QtGui.QImage) -> QtGui.QImage:
        """A grab of another size (the window or a dock was resized) fitted into frame 0's size."""
        w0, h0 = self._frame_size
        if (img.width(), img.height()) == (w0, h0):
            return img
        canvas = QtGui.QImage(w0, h0, QtGui.QImage.Format.Format_RGB888)
        canvas.fill(self.window.palette().color(QtGui.QPalette.ColorRole.Window))
        scaled = img.scaled(w0, h0, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                            QtCore.Qt.TransformationMode.SmoothTransformation)
        p = QtGui.QPainter(canvas)
        p.drawImage((w0 - scaled.width()) // 2, (h0 - scaled.height()) // 2, scaled)
        p.end()
        return canvas

    def _grab_frame(self) -> None:
        if self.state != RECORDING:
            return
        img = self.grab_image()
        if img.isNull() or img.width() < 2 or img.height() < 2:
            return
        if self._frame_size is None:
            self._frame_size = (img.width(), img.height())
        frame = qimage_to_rgb(self._fit(img))
        self.frames.append(frame)
        self._t_last = time.monotonic()
        self._update_label()
        elapsed = self._t_last - self._t0
        if self.frame_bytes + frame.nbytes > self.max_bytes:
            self._stop_by_itself(f"the memory limit ({format_bytes(self.max_bytes)}) was reached")
        elif elapsed + 1.0 / self.fps > self.max_seconds:
            self._stop_by_itself(f"the length limit ({format_clock(self.max_seconds)}) was reached")

    def _stop_by_itself(self, why: str) -> None:
        self.stop_reason = why
        n = self.stop()
        self._notice(f"Recording stopped: {why}, {n} frames are held.",
                     action=("Save recording…", self.ask_and_save), more=("Discard it", self.discard_asked))

    def _update_label(self) -> None:
        n = len(self.frames)
        self.rec_label.setText(f"● REC {format_clock(time.monotonic() - self._t0)} · {n} frame{'s' * (n != 1)}")
        self.rec_label.setToolTip(f"{format_bytes(self.frame_bytes)} of {format_bytes(self.max_bytes)} held; "
                                  f"{self.fps:g} frames/s; Ctrl+Shift+R stops and saves")

    def effective_fps(self) -> float:
        """The rate that plays the recording back in real time: the timer's rate, or the measured one when
        grabs fell behind it (a busy machine) by more than 10%."""
        n = len(self.frames)
        span = self._t_last - self._t0
        if n < 3 or span <= 0:
            return self.fps
        measured = max(0.1, round((n - 1) / span, 1))  # a tidy rate for the file's header
        return measured if measured < 0.9 * self.fps else self.fps

    # -- saving --------------------------------------------------------------------------------------
    def save(self, path: str | Path, fps: float | None = None) -> bool:
        """Encode the held (or current) recording to ``path`` (.gif or .mp4) on a worker thread.

        Returns False with a notice when there is nothing to save, the suffix is wrong or an MP4 lacks PyAV;
        the frames are kept then. The outcome shows in the notice bar; ``last_path`` / ``last_error`` record it."""
        if self.state == ENCODING:
            self._notice("A recording is already being encoded.", error=True)
            return False
        self.stop()
        path = Path(path)
        if not self.frames:
            self._notice("There is no recording to save.", error=True)
            return False
        suffix = path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            self._notice(f"{path.name}: save a recording as .gif or .mp4.", error=True)
            return False
        if suffix == ".mp4":
            try:
                require_av()  # an optional package: without it the frames stay, to be saved as .gif
            except VideoError as exc:
                self._notice(str(exc), error=True)
                return False
        fps = float(fps) if fps is not None else self.effective_fps()
        frames, self.frames = self.frames, []
        job: dict[str, Any] = {"path": path, "frames": len(frames), "done": 0, "total": len(frames),
                               "result": None, "error": None, "cancelled": False, "cancel": threading.Event()}
        encoder = encode_gif if suffix == ".gif" else encode_mp4

        def work() -> None:  # worker thread: only the frames and the job dict, never a widget
            try:
                job["result"] = encoder(frames, path, fps, progress=lambda d, t: job.update(done=d, total=t),
                                        cancel=job["cancel"])
            except EncodeCancelled:
                job["cancelled"] = True
            except (VideoError, OSError) as exc:
                job["error"] = one_line(exc)
            except Exception as exc:  # noqa: BLE001 (an encoder's own failure must reach the user, not kill the thread)
                job["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            finally:
                frames.clear()
                job["finished"] = True

        self._job = job
        self.last_error = None
        self.progress.setRange(0, len(frames))
        self.progress.setValue(0)
        self.progress.show()
        self._set_state(ENCODING)
        self._thread = threading.Thread(target=work, name="recording-encoder", daemon=True)
        self._thread.start()
        self.poll_timer.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the encode thread ends (True) or ``timeout`` passes. The GUI still needs a
        ``_poll_encode`` (its timer) to show the outcome."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        return not t.is_alive()

    def cancel_encode(self, timeout: float = 30.0) -> None:
        """Cancel a running encode and wait for it: the target file is not written."""
        job = self._job
        if job is None:
            return
        job["cancel"].set()
        self.wait(timeout)
        self._poll_encode()

    def _poll_encode(self) -> None:
        job = self._job
        if job is None:
            self.poll_timer.stop()
            return
        self.progress.setMaximum(max(1, int(job["total"])))
        self.progress.setValue(int(job["done"]))
        if not job.get("finished"):
            return
        self.poll_timer.stop()
        self.progress.hide()
        self._job = None
        self._thread = None
        if job["cancelled"]:
            self.last_error = "cancelled"
            self._notice(f"Recording not saved: the encode was cancelled ({job['path'].name} was not written).")
        elif job["error"]:
            self.last_error = job["error"]
            self._notice(f"Could not save the recording to {job['path']}: {job['error']}", error=True)
        else:
            self.last_path = Path(job["result"])
            size = self.last_path.stat().st_size if self.last_path.exists() else 0
            self._notice(f"Recording saved to {self.last_path} ({format_bytes(size)}, {job['frames']} frames).")
        self._set_state(IDLE)  # after the notice: a listener sees the outcome
        if self._close_pending:
            self._close_pending = False
            QtCore.QTimer.singleShot(0, self.window, self.window.close)

    # -- closing the window ----------------------------------------------------------------------------
    def shut_down(self) -> None:
        """For a closing window: stop grabbing and drop unsaved frames; cancel an encode (nothing written)."""
        self.discard()
        if self._job is not None:
            self.cancel_encode()
        self.poll_timer.stop()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if obj is self.window and event.type() == QtCore.QEvent.Type.Close:
            if self.state == ENCODING and not self._close_pending:
                # the first close waits for the file; a second one cancels it
                self._close_pending = True
                self._notice("Writing the recording; the window closes when it is saved. "
                             "Close again to discard it.")
                event.ignore()
                return True
            self._close_pending = False
            self.shut_down()
        return False
