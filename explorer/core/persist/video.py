"""Encoding a list of RGB frames (a recording of a panel while it trains) into a GIF or an MP4.

Qt-free, so the same code serves the window's recorder and any script. Both encoders:

* take frames as (H, W, 3) uint8 numpy arrays, all of one size;
* call ``progress(done, total)`` once per frame, from the calling thread (the window runs the encode on a
  plain thread and polls what the callback stored; the callback itself must not touch widgets);
* stop early when ``cancel`` (a callable returning True, or an object with ``is_set()`` such as a
  ``threading.Event``) says so, raising :class:`EncodeCancelled`;
* write atomically: the file is built under a temporary name beside the target and moved over it at the
  end, so a failure or a cancel leaves neither a partial file nor a temporary one, and an existing
  file of that name untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.atomic import atomic_write

VIDEO_SUFFIXES = (".gif", ".mp4")
Progress = Callable[[int, int], None] | None


class VideoError(ValueError):
    """A recording cannot be encoded (bad frames, missing encoder); the message is one line."""


class EncodeCancelled(Exception):
    """The encode was cancelled; nothing was written."""


def _cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def _check_frames(frames: Sequence[np.ndarray], fps: float) -> tuple[int, int]:
    """The common (height, width) of ``frames``; a VideoError naming the first bad frame otherwise."""
    if len(frames) == 0:
        raise VideoError("nothing to encode: the recording has no frames")
    if not (np.isfinite(fps) and 0 < fps <= 120):
        raise VideoError(f"frame rate must be between 0 and 120 frames/s, got {fps}")
    shape = None
    for i, f in enumerate(frames):
        a = np.asarray(f)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
            raise VideoError(f"frame {i} is not an (H, W, 3) uint8 RGB image (shape {a.shape}, {a.dtype})")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise VideoError(f"frame {i} is {a.shape[1]}x{a.shape[0]}, frame 0 is {shape[1]}x{shape[0]}: "
                             "all frames of a recording must have one size")
    assert shape is not None, "frames is not empty (checked above)"
    return int(shape[0]), int(shape[1])


def _shared_palette(frames: Sequence[np.ndarray], samples: int = 12, max_pixels: int = 600_000):
    """One 256-colour palette for the whole animation, from a few frames spread over it.

    A shared palette keeps colours steady from frame to frame (a per-frame palette makes flat areas
    flicker) and lets the GIF writer store only what changed between frames."""
    from PIL import Image

    idx = np.unique(np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int))
    h, w = np.asarray(frames[0]).shape[:2]
    stride = max(1, int(np.ceil(np.sqrt(h * w * len(idx) / max_pixels))))
    sample = np.concatenate([np.asarray(frames[i])[::stride, ::stride] for i in idx], axis=0)
    return Image.fromarray(np.ascontiguousarray(sample), "RGB").quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def encode_gif(frames: Sequence[np.ndarray], path, fps: float, progress: Progress = None,
               cancel: Any = None) -> Path:
    """Write ``frames`` to ``path`` as an endlessly looping GIF at ``fps`` frames per second.

    One palette is shared by all frames, without dithering (charts and images of a live panel have few
    colours and large flat areas, which dithering would speckle). GIF stores delays in hundredths of a
    second, so the rate is rounded to that; identical consecutive frames (a paused run) are merged into
    one longer frame by the writer."""
    from PIL import Image

    _check_frames(frames, fps)
    total = len(frames)
    palette = _shared_palette(frames)
    duration_ms = max(20, int(round(100.0 / fps)) * 10)

    def quantised():
        for i, f in enumerate(frames):
            if _cancelled(cancel):
                raise EncodeCancelled("the encode was cancelled")
            img = Image.fromarray(np.ascontiguousarray(f), "RGB").quantize(
                palette=palette, dither=Image.Dither.NONE)
            if progress is not None and i + 1 < total:  # the last step is reported once the file is written
                progress(i + 1, total)
            yield img

    def write(tmp: Path) -> None:
        it = quantised()
        first = next(it)
        first.save(tmp, format="GIF", save_all=True, append_images=it, duration=duration_ms, loop=0,
                   optimize=False, disposal=1)

    out = atomic_write(path, write)
    if progress is not None:
        progress(total, total)
    return out


def _even_pad(a: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by one edge pixel: yuv420p halves both, so they must be even."""
    h, w = a.shape[:2]
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(a)


def mp4_codec() -> str:
    """The codec an MP4 gets: H.264 (libx264) when this PyAV build has it, else MPEG-4 part 2."""
    av = require_av()
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 (PyAV raises its own error types for an unknown codec)
            continue
    raise VideoError("this PyAV build has neither the libx264 nor the mpeg4 encoder: MP4 cannot be written")


AV_MISSING = ('writing MP4 needs the PyAV package, which is not installed: pip install av '
              '(or pip install "network-explorer[video]"), or save the recording as .gif')


def require_av():
    """The ``av`` module (PyAV, an optional dependency: the ``[video]`` extra), or a VideoError that names
    the package and the command that installs it."""
    try:
        import av
    except ImportError:
        raise VideoError(AV_MISSING) from None
    return av


def encode_mp4(frames: Sequence[np.ndarray], path, fps: float, progress: Progress = None,
               cancel: Any = None, codec: str | None = None) -> Path:
    """Write ``frames`` to ``path`` as an MP4 (H.264 if available, else MPEG-4), yuv420p, at ``fps``.

    ``codec`` forces an encoder ("libx264" or "mpeg4"); by default :func:`mp4_codec` picks one.
    Odd sizes are padded by one pixel (repeating the edge) to the even size yuv420p needs."""
    av = require_av()
    h, w = _check_frames(frames, fps)
    codec = mp4_codec() if codec is None else codec
    total = len(frames)
    H, W = h + h % 2, w + w % 2
    rate = Fraction(fps).limit_denominator(1000)

    def write(tmp: Path) -> None:
        container = av.open(str(tmp), mode="w", format="mp4")
        written = False
        try:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height = W, H
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                # crf 20: crisp text and lines; a recording of a panel is mostly still, so it stays small
                stream.options = {"crf": "20", "preset": "medium"}
            else:
                stream.bit_rate = int(max(2_000_000, W * H * float(fps) * 0.3))
            for i, f in enumerate(frames):
                if _cancelled(cancel):
                    raise EncodeCancelled("the encode was cancelled")
                frame = av.VideoFrame.from_ndarray(_even_pad(np.asarray(f)), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                if progress is not None and i + 1 < total:
                    progress(i + 1, total)
            for packet in stream.encode():  # flush the frames the encoder still holds
                container.mux(packet)
            written = True
        finally:
            try:
                container.close()
            except Exception:  # noqa: BLE001 (after a failure, closing may fail too: report the first fault)
                if written:
                    raise

    try:
        out = atomic_write(path, write)
    except (EncodeCancelled, VideoError):
        raise
    except av.error.FFmpegError as exc:
        raise VideoError(f"the MP4 encoder failed: {exc}") from None
    if progress is not None:
        progress(total, total)
    return out


def encode_video(frames: Sequence[np.ndarray], path, fps: float, progress: Progress = None,
                 cancel: Any = None) -> Path:
    """GIF or MP4, chosen by the suffix of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return encode_gif(frames, path, fps, progress, cancel)
    if suffix == ".mp4":
        return encode_mp4(frames, path, fps, progress, cancel)
    raise VideoError(f"{Path(path).name}: a recording is saved as .gif or .mp4, not {suffix or 'no suffix'}")
