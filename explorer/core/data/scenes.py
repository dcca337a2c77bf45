"""Segmentation data: generated shape scenes with exact per-pixel masks, and the user's image/mask folders.

Generated scenes (:func:`generate_scenes`): each image holds a few filled shapes, circles (class 1),
squares (class 2) and triangles (class 3), at random sizes and positions, over a noisy and/or
textured background (class 0). Shapes may overlap: a later shape paints over an earlier one and its
mask does too, so the mask is always exactly what is drawn. Everything comes from one seed.

Mask folders (:func:`load_mask_folder`): pairs of PNG (or other image) files, in either layout

    DIR/images/NAME.png  +  DIR/masks/NAME.png          (the same file name in two sub-folders)
    DIR/NAME.png         +  DIR/NAME_mask.png           (a ``_mask`` suffix beside the image)

A mask holds the class number of each pixel (grey or palette PNG values 0, 1, 2, ...). Pairs whose
image and mask sizes differ, whose size is not the network's input size, whose mask has label values
beyond the classes, or whose files cannot be read are skipped; the note names each skipped file and
why. No usable pair at all is a :class:`DataError`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.core.data.datasets import DataError, Dataset
from explorer.core.data.images import is_image_file, read_image
from explorer.core.limits import check_memory

SHAPE_CLASSES = ("background", "circle", "square", "triangle")
SHAPE_KINDS = SHAPE_CLASSES[1:]
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class Shape:
    """One shape: ``kind`` in :data:`SHAPE_KINDS`, centre (cx, cy) in pixels (x = column), ``size``
    = radius of the circle, half side of the square, circumradius of the triangle; fill ``intensity``."""

    kind: str
    cx: float
    cy: float
    size: float
    intensity: float

    @property
    def label(self) -> int:
        return SHAPE_KINDS.index(self.kind) + 1


def shape_mask(shape: Shape, height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of the pixels the shape covers; pixel (row y, column x) is the point (x, y).

    circle: (x - cx)^2 + (y - cy)^2 <= r^2; square: |x - cx| <= r and |y - cy| <= r (axis-aligned);
    triangle: pointing up, vertices at angles 90, 210, 330 degrees on the circle of radius r
    (a point is inside when it is on the inner side of all three edges).
    """
    y, x = _grid(height, width)
    dx, dy = x - shape.cx, y - shape.cy
    r = shape.size
    if shape.kind == "circle":
        return dx * dx + dy * dy <= r * r
    if shape.kind == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape.kind == "triangle":
        # image rows grow downwards: the apex (angle 90 degrees) is at cy - r
        verts = [(shape.cx + r * math.cos(a), shape.cy - r * math.sin(a))
                 for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
        inside = np.ones((height, width), dtype=bool)
        for (x0, y0), (x1, y1) in zip(verts, verts[1:] + verts[:1]):
            # the sign of the cross product says on which side of the edge a point lies
            cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
            inside &= cross <= 1e-6
        return inside
    raise ValueError(f"unknown shape kind {shape.kind!r} (known: {', '.join(SHAPE_KINDS)})")


def render_scene(shapes: list[Shape], height: int, width: int, background: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Paint ``shapes`` in order over ``background`` (zeros if None): (image float32, mask int64).

    A later shape covers an earlier one in both the image and the mask.
    """
    image = (np.zeros((height, width), np.float32) if background is None
             else np.array(background, dtype=np.float32, copy=True))
    mask = np.zeros((height, width), np.int64)
    for s in shapes:
        m = shape_mask(s, height, width)
        image[m] = s.intensity
        mask[m] = s.label
    return image, mask


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> np.ndarray:
    """The pixels' (row, column) coordinates as float32 (2, H, W), made once per size (read-only): a data
    set of 1,200 scenes made them 3,600 times, a tenth of its 0.6 s."""
    grid = np.mgrid[0:height, 0:width].astype(np.float32)
    grid.flags.writeable = False
    return grid


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random texture in about [-1, 1]: two oriented stripe patterns and a blob field."""
    y, x = _grid(height, width)
    out = np.zeros((height, width), np.float32)
    for _ in range(2):
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4.0, 10.0)
        phase = rng.uniform(0, 2 * math.pi)
        out += 0.5 * np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period + phase)
    coarse = rng.standard_normal((height // 8 + 2, width // 8 + 2)).astype(np.float32)
    blobs = coarse.repeat(8, axis=0).repeat(8, axis=1)[:height, :width]  # each value over an 8x8 block
    blobs = _box_blur(blobs, 2)
    return out * 0.6 + blobs * 0.4


def _box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)^2 window (edges repeated): softens the blocky blob field."""
    p = np.pad(a, radius, mode="edge")
    h, w = a.shape
    k = 2 * radius + 1
    # the running sums start from zeros of the array's dtype (not sum()'s int 0) so they stay arrays
    rows = sum((p[i:i + h, :] for i in range(k)), np.zeros((h, p.shape[1]), p.dtype)) / k
    return sum((rows[:, j:j + w] for j in range(k)), np.zeros((h, w), rows.dtype)) / k


def random_shapes(rng: np.random.Generator, height: int, width: int, max_shapes: int) -> list[Shape]:
    """1..max_shapes shapes of random kind, size (10-25% of the smaller side) and position (centre inside)."""
    side = min(height, width)
    n = int(rng.integers(1, max_shapes + 1))
    shapes = []
    for _ in range(n):
        kind = SHAPE_KINDS[int(rng.integers(0, len(SHAPE_KINDS)))]
        size = float(rng.uniform(0.10, 0.25) * side)
        if kind == "triangle":
            size *= 1.25  # a triangle fills less of its circle: keep the areas comparable
        margin = min(size * 0.6, side / 2 - 1)
        cx = float(rng.uniform(margin, width - 1 - margin))
        cy = float(rng.uniform(margin, height - 1 - margin))
        shapes.append(Shape(kind, cx, cy, size, float(rng.uniform(0.6, 1.0))))
    return shapes


def generate_scenes(n: int, height: int = 32, width: int = 32, *, seed: int = 0, noise: float = 0.1,
                    texture: bool = True, max_shapes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes: images (n, H, W) float32 in [0, 1] and masks (n, H, W) int64 (0 = background,
    1 circle, 2 square, 3 triangle). Reproducible: the same arguments give the same arrays, and the
    same seed gives the same shapes (and masks) at any noise and texture setting.

    Background: a grey level in [0.05, 0.35], plus (``texture``) a random texture of amplitude 0.12.
    Shapes: fill intensity in [0.6, 1]. Then gaussian pixel noise of std ``noise`` over everything,
    clipped to [0, 1].
    """
    if n < 0 or height < 4 or width < 4:
        raise ValueError(f"scenes need n >= 0 and at least 4x4 pixels, got n={n}, {height}x{width}")
    if max_shapes < 1:
        raise ValueError(f"max_shapes must be at least 1, got {max_shapes}")
    # shapes and pixels draw from separate streams: the same seed gives the same shapes and masks
    # whatever the noise and texture settings
    shape_rng = np.random.default_rng([seed, 0])
    pixel_rng = np.random.default_rng([seed, 1])
    images = np.empty((n, height, width), np.float32)
    masks = np.empty((n, height, width), np.int64)
    for i in range(n):
        bg = np.full((height, width), pixel_rng.uniform(0.05, 0.35), np.float32)
        if texture:
            bg += 0.12 * _texture(pixel_rng, height, width)
        img, mask = render_scene(random_shapes(shape_rng, height, width, max_shapes), height, width, bg)
        if noise > 0:
            img = img + noise * pixel_rng.standard_normal((height, width)).astype(np.float32)
        images[i] = np.clip(img, 0.0, 1.0)
        masks[i] = mask
    return images, masks


def scenes_dataset(n_train: int, n_test: int, height: int, width: int, *, seed: int = 0, noise: float = 0.1,
                   texture: bool = True, max_shapes: int = 3) -> Dataset:
    """Generated scenes as a :class:`Dataset`: flat images in ``*_x`` (N, H*W) and flat masks in ``*_y``
    (N, H*W) int64. Training and held-out scenes come from different seeds (never the same scene)."""
    per_scene = height * width * (4 + 8) * 2  # float32 image, int64 mask, and their copies on the device
    check_memory(f"n_train = {n_train:,} scenes of {height}x{width}", n_train * per_scene, "n_train")
    check_memory(f"n_test = {n_test:,} scenes of {height}x{width}", n_test * per_scene, "n_test")
    tr_x, tr_y = generate_scenes(n_train, height, width, seed=seed, noise=noise, texture=texture,
                                 max_shapes=max_shapes)
    te_x, te_y = generate_scenes(n_test, height, width, seed=seed + 1_000_003, noise=noise, texture=texture,
                                 max_shapes=max_shapes)
    tex = "textured" if texture else "plain"
    return Dataset("scenes", tr_x.reshape(n_train, -1), tr_y.reshape(n_train, -1),
                   te_x.reshape(n_test, -1), te_y.reshape(n_test, -1), (height, width),
                   note=f"generated scenes: up to {max_shapes} shapes on a {tex} background, noise {noise:g}")


# -- the user's folder ----------------------------------------------------------------------------------
def find_mask_pairs(folder: str | Path) -> list[tuple[str, Path, Path | None]]:
    """(name, image path, mask path or None) for every image in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    pairs: list[tuple[str, Path, Path | None]] = []
    images_dir, masks_dir = folder / "images", folder / "masks"
    if images_dir.is_dir():
        masks = {p.stem: p for p in masks_dir.iterdir() if is_image_file(p)} if masks_dir.is_dir() else {}
        for p in sorted(images_dir.iterdir()):
            if is_image_file(p):
                pairs.append((p.stem, p, masks.get(p.stem)))
        return pairs
    files = {p.stem: p for p in folder.iterdir() if is_image_file(p)}
    for stem in sorted(files):
        if stem.endswith(MASK_SUFFIX):
            continue
        pairs.append((stem, files[stem], files.get(stem + MASK_SUFFIX)))
    return pairs


def load_mask_folder(folder: str | Path, height: int, width: int, n_classes: int, *, channels: int = 1,
                     seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The folder's usable image/mask pairs as a :class:`Dataset` (flat images, flat int64 masks),
    split at random (``seed``) into training and held-out pairs (``test_fraction``, at least one each
    when there are two or more pairs). ``channels`` 1 reads grey, 3 reads RGB (then ``*_x`` is
    (N, H*W*3) in H, W, C order). Skipped pairs are listed in ``Dataset.note``."""
    pairs = find_mask_pairs(folder)
    if not pairs:
        raise DataError(f"{folder}: no images found (expected images/NAME.png + masks/NAME.png, "
                        f"or NAME.png + NAME{MASK_SUFFIX}.png)")
    xs, ys, skipped = [], [], []
    mode = "RGB" if channels == 3 else "L"
    check_memory(f"{folder}: its {len(pairs):,} images of {height}x{width}",
                 len(pairs) * height * width * (4 * channels + 8) * 2)
    for _name, img_path, mask_path in pairs:
        if mask_path is None:
            skipped.append(f"{img_path.name}: no mask")
            continue
        try:
            img = read_image(img_path, mode)
            mask = read_image(mask_path, "labels")
        except DataError as exc:
            skipped.append(str(exc).replace(str(Path(folder)) + "/", ""))
            continue
        if img.shape[:2] != mask.shape:
            skipped.append(f"{img_path.name}: image {img.shape[0]}x{img.shape[1]} but mask "
                           f"{mask_path.name} {mask.shape[0]}x{mask.shape[1]}")
            continue
        if img.shape[:2] != (height, width):
            skipped.append(f"{img_path.name}: {img.shape[0]}x{img.shape[1]}, the network takes {height}x{width}")
            continue
        bad = np.unique(mask[(mask < 0) | (mask >= n_classes)])
        if bad.size:
            shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
            skipped.append(f"{mask_path.name}: label values {shown} beyond the {n_classes} classes 0..{n_classes - 1}")
            continue
        xs.append(img.reshape(-1))
        ys.append(mask.reshape(-1))
    note = f"{len(xs)} of {len(pairs)} pairs usable"
    if skipped:
        note += "; skipped: " + "; ".join(skipped)
    if not xs:
        raise DataError(f"{folder}: no usable image/mask pair ({note})")
    x = np.stack(xs).astype(np.float32)
    y = np.stack(ys).astype(np.int64)
    n = len(xs)
    order = np.random.default_rng(seed).permutation(n)
    if n == 1:
        tr, te = order, order
        note += "; only one pair: it is used for training and held-out evaluation alike"
    else:
        n_test = min(n - 1, max(1, int(round(n * test_fraction))))
        te, tr = order[:n_test], order[n_test:]
    return Dataset(f"folder {Path(folder).name}", x[tr], y[tr], x[te], y[te], (height, width), note=note)


__all__ = ["SHAPE_CLASSES", "SHAPE_KINDS", "Shape", "shape_mask", "render_scene", "random_shapes",
           "generate_scenes", "scenes_dataset", "find_mask_pairs", "load_mask_folder", "MASK_SUFFIX"]
