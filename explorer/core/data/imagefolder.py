"""A folder of the user's own labelled images as a data set: one sub-folder per class.

    my_images/
        cat/    a.png b.jpg ...
        dog/    c.png ...

Every image is read with :func:`explorer.core.data.images.read_image` (grey or RGB). A folder is rarely
perfectly clean, so instead of refusing it the loader keeps what it can use and says what it left out:
files that cannot be decoded, and images whose size differs from the most common size (a network has
one input size). The counts and the first few names go into ``Dataset.note``, shown to the user.
A folder with no class sub-folders, or no usable image at all, is a :class:`DataError`.

The split is per class and seeded: 20% of each class with at least two images is held out, so
every class with enough images is both learned and tested.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.core.data.datasets import DataError, Dataset
from explorer.core.data.images import is_image_file, read_image
from explorer.core.limits import check_memory

HELD_OUT_FRACTION = 0.2
MAX_NAMED = 3  # skipped files named in the note (the rest are counted)


@dataclass(frozen=True, eq=False)
class ImageFolderDataset(Dataset):
    """A :class:`Dataset` whose rows are (C*H*W) channel-first pixels; ``channels`` is 1 (grey) or 3 (RGB)."""

    channels: int = 1
    class_names: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()       # "path: reason" for every file left out


def _class_dirs(root: Path) -> list[Path]:
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def load_image_folder(path, mode: str = "L", seed: int = 0) -> ImageFolderDataset:
    """Load ``path`` (one sub-folder per class, sorted by name = label 0, 1, ...) as grey ("L") or RGB images."""
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    if path is None or str(path).strip() == "":
        raise DataError("no image folder chosen: pick a folder with one sub-folder of images per class")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    classes = _class_dirs(root)
    if not classes:
        raise DataError(f"{root}: no class sub-folders (put the images of each class in a sub-folder named after it)")
    images: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    skipped: list[str] = []
    held = 0  # bytes of the images read so far: twice that while they are stacked into one array
    for label, d in enumerate(classes):
        for f in sorted(p for p in d.iterdir() if is_image_file(p)):
            try:
                images.append(read_image(f, mode))
            except DataError as exc:
                skipped.append(f"{f}: {str(exc).split(': ', 1)[-1]}")
                continue
            held += images[-1].nbytes
            check_memory(f"{root}: its images", 2 * held)
            labels.append(label)
            names.append(str(f))
    if not images:
        raise DataError(f"{root}: no readable images in its {len(classes)} class sub-folder(s)")
    sizes = Counter(im.shape[:2] for im in images)
    (h, w), _ = sizes.most_common(1)[0]
    keep = [i for i, im in enumerate(images) if im.shape[:2] == (h, w)]
    for i in range(len(images)):
        if images[i].shape[:2] != (h, w):
            skipped.append(f"{names[i]}: {images[i].shape[1]}x{images[i].shape[0]} pixels, "
                           f"not the common {w}x{h}")
    c = 3 if mode == "RGB" else 1
    x = np.stack([images[i] for i in keep]).astype(np.float32)
    x = (x.transpose(0, 3, 1, 2) if c == 3 else x[:, None]).reshape(len(keep), -1)
    y = np.asarray([labels[i] for i in keep], dtype=np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in range(len(classes)):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * HELD_OUT_FRACTION)) if len(idx) >= 2 else 0
        n_test = max(n_test, 1) if len(idx) >= 2 else 0
        test_idx += idx[:n_test].tolist()
        train_idx += idx[n_test:].tolist()
    if not test_idx:
        raise DataError(f"{root}: too few images to hold any out (a class needs at least 2 usable images)")
    tr, te = np.asarray(sorted(train_idx)), np.asarray(sorted(test_idx))
    note = (f"image folder {root}: {len(classes)} classes ({', '.join(d.name for d in classes[:10])}"
            f"{', ...' if len(classes) > 10 else ''}), {w}x{h} {'RGB' if c == 3 else 'grey'}, "
            f"{len(tr)} training / {len(te)} held-out images")
    if skipped:
        shown = "; ".join(skipped[:MAX_NAMED])
        more = f" and {len(skipped) - MAX_NAMED} more" if len(skipped) > MAX_NAMED else ""
        note += f"; skipped {len(skipped)} file(s): {shown}{more}"
    return ImageFolderDataset(
        name="folder", train_x=np.ascontiguousarray(x[tr]), train_y=y[tr], test_x=np.ascontiguousarray(x[te]),
        test_y=y[te], image_shape=(int(h), int(w)), note=note, channels=c,
        class_names=tuple(d.name for d in classes), skipped=tuple(skipped))
