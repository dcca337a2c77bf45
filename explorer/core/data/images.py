"""Reading the user's own image files (PNG, JPEG, BMP...) into numpy, with one-line errors.

Used by the image-folder data sets (CNN classes, FCN image/mask pairs). Qt-free: Pillow decodes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from explorer.core.data.datasets import DataError
from explorer.core.limits import MAX_IMAGE_PIXELS
from explorer.core.safe_read import one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_image(path, mode: str = "L") -> np.ndarray:
    """The image at ``path`` as an array: mode ``"L"`` grey float32 (H, W) in [0, 1], ``"RGB"`` float32
    (H, W, 3) in [0, 1], ``"labels"`` the raw integer values (H, W) as int64 (for masks: a palette or
    grey PNG's values are the class numbers). Any fault raises :class:`DataError` naming the file.

    An image of more than ``MAX_IMAGE_PIXELS`` pixels (a decompression bomb: a small file that decodes to
    gigabytes) is refused from its header, before its pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's own guard: an error past twice this
    try:
        with warnings.catch_warnings():  # Pillow warns past the limit: refused below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened as im:
            width, height = im.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: {width}x{height} pixels, more than the limit of {MAX_IMAGE_PIXELS:,} "
                                f"pixels per image")
            im.load()
            if mode == "labels":
                labels = im if im.mode in ("L", "P", "I", "I;16", "1") else im.convert("L")
                return np.asarray(labels).astype(np.int64)
            arr = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Image.DecompressionBombError:
        raise DataError(f"{path}: more than the limit of {MAX_IMAGE_PIXELS:,} pixels per image") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file (unreadable or corrupt)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read the image ({one_line(exc)})") from None
    return np.ascontiguousarray(arr)


def write_png(path, array: np.ndarray) -> None:
    """Write a (H, W) uint8/int array (grey or labels) or (H, W, 3) uint8 as PNG (tests, examples)."""
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = a.astype(np.uint8)
    Image.fromarray(a).save(Path(path), format="PNG")
