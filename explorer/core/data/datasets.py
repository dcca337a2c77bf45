"""Data sets for Network Explorer: loading, validating, splitting and downloading.

Every data set reaches the models in one layout (see :class:`Dataset`): float32
rows of flattened images with values in [0, 1], so a model never has to know
where its pixels came from.

The IDX reader is deliberately strict. A truncated download or a file with
trailing bytes would otherwise turn into a silently wrong array (shifted
pixels, misaligned labels) and the user would only see a network that "does
not learn". Every fault raises :class:`DataError` with one line that names the
file and what is wrong with it, so the GUI can show it as is.

This module is Qt-free and uses only numpy and the standard library (urllib for
downloads); the digits are bundled with the package (``bundled/``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import struct
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.core import paths
from explorer.core.atomic import atomic_write
from explorer.core.limits import check_memory

__all__ = [
    "DataError",
    "Dataset",
    "DATASET_NAMES",
    "load_dataset",
    "read_idx",
    "load_idx_pair",
    "bars_and_stripes",
    "find_idx_files",
    "missing_files_message",
    "default_cache_dir",
    "download_dataset",
    "upscale_images",
]

ProgressFn = Callable[[int, int], None]


class DataError(ValueError):
    """A data file or data set is unusable; the message names the file and the fault, one line."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """One data set, already split, in the layout every model consumes.

    ``eq=False``: the fields are numpy arrays, so a generated ``__eq__`` /
    ``__hash__`` would be ambiguous or fail; identity is what callers need.
    """

    name: str                   # "digits", "bars", "mnist", "fashion-mnist"
    train_x: np.ndarray         # float32, shape (N, H*W), values in [0, 1], C-contiguous
    train_y: np.ndarray | None  # int64 labels (N,) or None
    test_x: np.ndarray          # held-out, same layout
    test_y: np.ndarray | None
    image_shape: tuple[int, int]  # (H, W)
    note: str = ""              # human-readable remark, e.g. about a split, shown in the GUI

    @property
    def n_visible(self) -> int:
        """Number of input units a model needs: H*W."""
        return int(self.image_shape[0] * self.image_shape[1])


DATASET_NAMES = ("digits", "bars", "mnist", "fashion-mnist")

# The four standard IDX files, by role.
IDX_ROLES = ("train-images", "train-labels", "t10k-images", "t10k-labels")
_IDX_BASENAMES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "t10k-images": "t10k-images-idx3-ubyte",
    "t10k-labels": "t10k-labels-idx1-ubyte",
}

# Download mirrors, tried in order.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# md5 of the distributed .gz files (torchvision's well-known table).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

DOWNLOAD_FILES = tuple(_IDX_BASENAMES[r] + ".gz" for r in IDX_ROLES)

# IDX type codes -> big-endian numpy dtypes (the format stores data big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_HELD_OUT_FRACTION = 0.2
_BARS_TRAIN = 2000


# ---------------------------------------------------------------------------
# IDX files


_TRAILING_READ = 1 << 20  # bytes read past what the header promises, to report trailing data


def _idx_bytes(path: Path) -> bytes:
    """The bytes of an IDX file, decompressed if it is gzipped, never much more than its header promises
    (trailing data is still seen): a small gzip file that would decompress to gigabytes
    is refused from its header, against the memory limit, before it is decompressed."""
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == _GZIP_MAGIC
            if not gzipped:
                check_memory(f"{path}: an IDX file of {os.fstat(fh.fileno()).st_size:,} bytes",
                             2 * os.fstat(fh.fileno()).st_size)
                fh.seek(0)
                return fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        with gzip.open(path, "rb") as gz:
            head = gz.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES or not 1 <= head[3] <= 4:
                return head + gz.read(1024)  # not an IDX header: the checks below say what is wrong
            dims_bytes = gz.read(4 * head[3])
            if len(dims_bytes) < 4 * head[3]:
                return head + dims_bytes
            dims = struct.unpack(f">{head[3]}I", dims_bytes)
            expected = math.prod(dims) * _IDX_DTYPES[head[2]].itemsize
            check_memory(f"{path}: an IDX file of shape {tuple(dims)} once decompressed", 2 * expected)
            return head + dims_bytes + gz.read(expected + _TRAILING_READ)
    except (EOFError, OSError, zlib.error) as exc:
        reason = str(exc) or type(exc).__name__
        raise DataError(f"{path}: corrupt or truncated gzip data ({reason})") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian array.

    Compression is detected by the gzip magic bytes, not the file name, because
    browsers and mirrors often decompress files without renaming them (or the
    reverse). Every structural fault raises :class:`DataError` naming the file.
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO or a device: read forever
        raise DataError(f"{path}: cannot read: not a regular file (a device or pipe), refused")
    data = _idx_bytes(path)

    if len(data) == 0:
        raise DataError(f"{path}: file is empty, not an IDX file")
    if len(data) < 4:
        raise DataError(
            f"{path}: header too short ({len(data)} bytes; an IDX file starts with a 4-byte magic number)"
        )
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataError(
            f"{path}: not an IDX file (magic number starts with 0x{zero:04x}, expected 0x0000)"
        )
    if code not in _IDX_DTYPES:
        raise DataError(
            f"{path}: unknown IDX data type code 0x{code:02x} "
            "(expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)"
        )
    if ndim == 0 or ndim > 4:
        raise DataError(f"{path}: unsupported number of dimensions {ndim} (expected 1 to 4)")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{path}: header truncated (expected {header_len} header bytes for {ndim} dimensions, "
            f"found {len(data)})"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: dimensions near 2**32 cannot wrap round
    found = len(data) - header_len
    if found < expected:
        raise DataError(
            f"{path}: truncated: expected {expected} bytes of data for shape {tuple(dims)}, found {found}"
        )
    if found > expected:
        raise DataError(
            f"{path}: {found - expected} trailing bytes after the data for shape {tuple(dims)} "
            f"(expected {expected} bytes, found {found}); refusing to guess"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    # astype to the native byte order also copies, so the result is writable
    # and does not pin the (possibly large) decompressed buffer.
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def load_idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read an images/labels IDX pair and check that they belong together.

    Returns ``(images uint8 (N, H, W), labels uint8 (N,))``. Swapped files,
    mismatched counts and out-of-range labels are caught here rather than as
    a baffling shape error deep inside training.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path}: expected an images file (3-D unsigned bytes N x H x W, magic 2051), "
            f"found a {images.ndim}-D {images.dtype} array of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{labels_path}: expected a labels file (1-D unsigned bytes, magic 2049), "
            f"found a {labels.ndim}-D {labels.dtype} array of shape {labels.shape}"
        )
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: holds no images (its header says a count of 0)")
    if 0 in images.shape[1:]:
        raise DataError(f"{images_path}: images of {images.shape[1]} x {images.shape[2]} pixels; "
                        f"a size of 0 is not an image")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has "
            f"{labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())} out of range (expected 0 to 9)")
    return images, labels


def _role_candidates(role: str) -> list[str]:
    base = _IDX_BASENAMES[role]
    dotted = base.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
    return [base, base + ".gz", dotted, dotted + ".gz"]


def find_idx_files(name: str, data_dir) -> dict[str, Path]:
    """Find the standard IDX files in ``data_dir``.

    Returns a dict whose keys are among ``IDX_ROLES`` (only the files found).
    Accepts raw or ``.gz`` and the ``train-images.idx3-ubyte`` dot variant. If
    ``data_dir`` holds none of them but has a sub-folder named after the data
    set (``data/mnist``), that sub-folder is used, so a parent folder works too.
    """
    if data_dir is None:
        return {}
    folder = Path(data_dir).expanduser()

    def scan(d: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for role in IDX_ROLES:
            for cand in _role_candidates(role):
                p = d / cand
                if p.is_file():
                    found[role] = p
                    break
        return found

    found = scan(folder)
    if not found and (folder / name).is_dir():
        found = scan(folder / name)
    return found


def missing_files_message(name: str, data_dir) -> str:
    """One line telling the user which files are expected, where, and how to get them."""
    expected = ", ".join(_IDX_BASENAMES[r] for r in IDX_ROLES)
    where = f"in {Path(data_dir).expanduser()}" if data_dir is not None else "(no data folder given)"
    found = find_idx_files(name, data_dir)
    found_txt = f"; found only {', '.join(p.name for p in found.values())}" if found else ""
    return (
        f"{name} data not found {where}: expected {expected} (.gz or raw; the t10k pair alone is "
        f"enough){found_txt}. Put the four IDX files (.gz or raw) in a folder and pass it with "
        f"--data-dir or File > Open data folder, or use --download"
    )


# ---------------------------------------------------------------------------
# Downloading


def default_cache_dir() -> Path:
    """Where downloads go: ``$NETWORK_EXPLORER_CACHE`` if set, else the user's cache folder
    (~/.cache/network-explorer on Linux; see ``explorer.core.paths``)."""
    return paths.cache_dir()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, into: Path, name: str, want: str | None, timeout: float, progress: ProgressFn | None) -> None:
    """Stream ``url`` into the file ``into``, checking its md5 against ``want`` (DataError if it differs).

    ``into`` is the temporary file of an atomic write beside the target: the target appears only once
    the whole file has come and matched, and nothing is left behind otherwise.
    """
    h = hashlib.md5()
    with open(into, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
        try:
            total = int(resp.headers.get("Content-Length") or 0)
        except (TypeError, ValueError):
            total = 0
        done = 0
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    got = h.hexdigest()
    if want is not None and got != want:
        raise DataError(
            f"{name}: checksum mismatch after download from {url} "
            f"(expected md5 {want}, got {got}); the file was discarded"
        )


def download_dataset(name: str, dest_dir=None, *, base_url: str | None = None,
                     checksums: dict[str, str] | None = None,
                     progress: ProgressFn | None = None, timeout: float = 30.0) -> Path:
    """Download the four .gz IDX files of ``name`` into ``dest_dir`` and return it.

    Mirrors are tried in order (``base_url`` replaces them, e.g. a ``file://``
    URL in tests). Each file is streamed to a temp file, its md5 checked, then
    moved into place atomically, so an interrupted or corrupted download never
    leaves a file that looks complete. Files already present with the right
    checksum are skipped. ``checksums`` maps file name -> md5 and replaces the
    built-in table; a file it does not list is not verified. ``progress`` gets
    ``(bytes done, total bytes or 0)`` for the current file, once per chunk.
    """
    name = _normalise_name(name)
    if name not in MIRRORS:
        raise DataError(f"cannot download {name!r}: only mnist and fashion-mnist can be downloaded")
    dest = Path(dest_dir).expanduser() if dest_dir is not None else default_cache_dir() / name
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create download folder ({exc.strerror or exc})") from None
    sums = CHECKSUMS[name] if checksums is None else checksums
    bases = (base_url,) if base_url is not None else MIRRORS[name]

    for fname in DOWNLOAD_FILES:
        target = dest / fname
        want = sums.get(fname)
        if target.is_file() and (want is None or _md5(target) == want):
            continue
        reasons = []
        for base in bases:
            url = base if base.endswith("/") else base + "/"
            url += fname
            try:
                fetch = functools.partial(_fetch, url, name=fname, want=want, timeout=timeout, progress=progress)
                atomic_write(target, fetch, suffix=".part")
            except DataError:
                raise
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reasons.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                continue
            break
        else:
            raise DataError(
                f"could not download {fname} from any mirror ({'; '.join(reasons)}); "
                f"offline? put the files in {dest} yourself"
            )
    return dest


# ---------------------------------------------------------------------------
# Synthetic and bundled data


def bars_and_stripes(size: int = 8, n_samples: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The classic bars-and-stripes toy set for RBMs.

    Convention: label 0 = "bars" = vertical bars, every column constant;
    label 1 = "stripes" = horizontal stripes, every row constant. Each bar or
    stripe is on with probability 0.5, so all-off / all-on images occur under
    both labels (they satisfy both conditions). Returns
    ``(x float32 (n, size*size) of exact 0/1, y int64 (n,))``.
    """
    if not isinstance(size, (int, np.integer)) or not 2 <= size <= 32:
        raise DataError(f"bars: size must be an integer from 2 to 32, got {size!r}")
    if n_samples < 1:
        raise DataError(f"bars: n_samples must be at least 1, got {n_samples!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n_samples).astype(np.int64)
    bits = rng.random((n_samples, size)) < 0.5
    vertical = np.broadcast_to(bits[:, None, :], (n_samples, size, size))    # columns constant
    horizontal = np.broadcast_to(bits[:, :, None], (n_samples, size, size))  # rows constant
    imgs = np.where(labels[:, None, None] == 0, vertical, horizontal)
    x = np.ascontiguousarray(imgs.reshape(n_samples, size * size), dtype=np.float32)
    return x, labels


def _interp_matrix(n: int, factor: int) -> np.ndarray:
    """(n*factor, n) matrix of linear-interpolation weights (pixel centres aligned).

    Each row is a convex combination of at most two source pixels, so values
    never leave the input's range.
    """
    out = np.arange(n * factor, dtype=np.float64)
    src = np.clip((out + 0.5) / factor - 0.5, 0.0, n - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = src - i0
    m = np.zeros((n * factor, n), dtype=np.float64)
    rows = np.arange(n * factor)
    np.add.at(m, (rows, i0), 1.0 - w)
    np.add.at(m, (rows, i1), w)
    return m.astype(np.float32)


def upscale_images(x: np.ndarray, image_shape, factor: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Enlarge flattened images by an integer factor with bilinear interpolation.

    Small images (8x8 digits) are hard to watch in the GUI and too small for
    some conv layouts; smooth enlargement keeps them looking like digits rather
    than blocks. Pure numpy (two matrix products). ``factor == 1`` returns
    ``x`` unchanged. Output is float32 clipped to [0, 1].
    """
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise DataError(f"upscale factor must be a positive integer, got {factor!r}")
    h, w = int(image_shape[0]), int(image_shape[1])
    if factor == 1:
        return x, (h, w)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != h * w:
        raise DataError(f"upscale: expected images of shape (N, {h * w}), got {x.shape}")
    imgs = x.reshape(-1, h, w).astype(np.float32, copy=False)
    ah = _interp_matrix(h, factor)
    aw = _interp_matrix(w, factor)
    out = np.matmul(ah, np.matmul(imgs, aw.T))  # (N, h*f, w*f)
    np.clip(out, 0.0, 1.0, out=out)
    hh, ww = h * factor, w * factor
    return np.ascontiguousarray(out.reshape(-1, hh * ww), dtype=np.float32), (hh, ww)


def _split_indices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic held-out split: seeded permutation, last 20% held out."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * _HELD_OUT_FRACTION))
    return perm[: n - n_test], perm[n - n_test:]


DIGITS_FILE = Path(__file__).resolve().parent / "bundled" / "digits.npz"


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits (pixels 0..16 as float32, labels as int64), from the copy bundled with the
    package: scikit-learn's ``load_digits()`` data, without scikit-learn (``bundled/README.md`` gives the
    source and the licence). A missing or damaged copy is a DataError naming the file."""
    try:
        with np.load(DIGITS_FILE, allow_pickle=False) as table:
            images, labels = table["images"], table["labels"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{DIGITS_FILE}: the bundled digits cannot be read ({exc}); reinstall the package") from None
    if images.shape != (1797, 64) or labels.shape != (1797,):
        raise DataError(f"{DIGITS_FILE}: the bundled digits have shape {images.shape} and labels {labels.shape}, "
                        "not (1797, 64) and (1797,); reinstall the package")
    return images.astype(np.float32), labels.astype(np.int64)


def _load_digits(seed: int) -> Dataset:
    data, y = _digits_arrays()
    x = (data / 16.0).clip(0.0, 1.0)
    tr, te = _split_indices(len(x), seed)
    return Dataset(
        name="digits",
        train_x=np.ascontiguousarray(x[tr]), train_y=y[tr],
        test_x=np.ascontiguousarray(x[te]), test_y=y[te],
        image_shape=(8, 8),
        note=f"scikit-learn digits: {len(tr)} training, {len(te)} held out (seeded 80/20 split, seed {seed})",
    )


def _load_bars(size: int, seed: int) -> Dataset:
    n_test = _BARS_TRAIN // 4
    x, y = bars_and_stripes(size, _BARS_TRAIN + n_test, seed)
    return Dataset(
        name="bars",
        train_x=np.ascontiguousarray(x[:_BARS_TRAIN]), train_y=y[:_BARS_TRAIN],
        test_x=np.ascontiguousarray(x[_BARS_TRAIN:]), test_y=y[_BARS_TRAIN:],
        image_shape=(size, size),
        note=f"bars and stripes {size}x{size}: label 0 = vertical bars, 1 = horizontal stripes",
    )


def _to_float(images: np.ndarray) -> np.ndarray:
    n = images.shape[0]
    return np.ascontiguousarray(images.reshape(n, -1), dtype=np.float32) / np.float32(255.0)


def _load_idx_dataset(name: str, files: dict[str, Path], seed: int) -> Dataset | None:
    """Build a Dataset from found IDX files, or None if no complete pair is there."""
    have_train = "train-images" in files and "train-labels" in files
    have_test = "t10k-images" in files and "t10k-labels" in files
    folder = next(iter(files.values())).parent if files else None
    if have_train and have_test:
        tr_img, tr_lab = load_idx_pair(files["train-images"], files["train-labels"])
        te_img, te_lab = load_idx_pair(files["t10k-images"], files["t10k-labels"])
        if tr_img.shape[1:] != te_img.shape[1:]:
            raise DataError(
                f"{files['t10k-images']}: images are {te_img.shape[1:]} but "
                f"{files['train-images']} has {tr_img.shape[1:]}"
            )
        return Dataset(
            name=name,
            train_x=_to_float(tr_img), train_y=tr_lab.astype(np.int64),
            test_x=_to_float(te_img), test_y=te_lab.astype(np.int64),
            image_shape=(int(tr_img.shape[1]), int(tr_img.shape[2])),
            note=f"{name} from {folder}: {len(tr_img)} training, {len(te_img)} test images",
        )
    if have_train or have_test:
        kind = "t10k" if have_test else "train"
        img, lab = load_idx_pair(files[f"{kind}-images"], files[f"{kind}-labels"])
        tr, te = _split_indices(len(img), seed)
        x = _to_float(img)
        y = lab.astype(np.int64)
        which = "t10k (test)" if have_test else "training"
        return Dataset(
            name=name,
            train_x=np.ascontiguousarray(x[tr]), train_y=y[tr],
            test_x=np.ascontiguousarray(x[te]), test_y=y[te],
            image_shape=(int(img.shape[1]), int(img.shape[2])),
            note=(
                f"only the {which} files of {name} were found in {folder}; they were split 80/20 "
                f"(seed {seed}) into {len(tr)} training and {len(te)} held-out images"
            ),
        )
    return None


def _normalise_name(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def load_dataset(name: str, data_dir: str | Path | None = None, *, upscale: int = 1,
                 bars_size: int = 8, seed: int = 0, download: bool = False,
                 progress: ProgressFn | None = None) -> Dataset:
    """Load a data set by name, split into training and held-out parts.

    ``digits`` and ``bars`` need no files. ``mnist`` / ``fashion-mnist`` are
    read from IDX files in ``data_dir`` (or, when no folder is given, from the
    download cache); if they are missing, ``download=True`` fetches them into
    ``default_cache_dir()/name``, otherwise a :class:`DataError` explains what
    to put where. ``upscale`` (1..4) enlarges the images of any data set.
    """
    key = _normalise_name(name)
    if key not in DATASET_NAMES:
        raise DataError(f"unknown data set {name!r} (choose from {', '.join(DATASET_NAMES)})")
    if not isinstance(upscale, (int, np.integer)) or not 1 <= upscale <= 4:
        raise DataError(f"upscale must be an integer from 1 to 4, got {upscale!r}")

    ds: Dataset | None
    if key == "digits":
        ds = _load_digits(seed)
    elif key == "bars":
        ds = _load_bars(bars_size, seed)
    else:
        search_dir = data_dir if data_dir is not None else default_cache_dir() / key
        ds = _load_idx_dataset(key, find_idx_files(key, search_dir), seed)
        if ds is None:
            if not download:
                raise DataError(missing_files_message(key, data_dir))
            dest = download_dataset(key, default_cache_dir() / key, progress=progress)
            ds = _load_idx_dataset(key, find_idx_files(key, dest), seed)
            if ds is None:  # pragma: no cover - download_dataset guarantees the files
                raise DataError(missing_files_message(key, dest))

    if upscale != 1:
        train_x, shape = upscale_images(ds.train_x, ds.image_shape, upscale)
        test_x, _ = upscale_images(ds.test_x, ds.image_shape, upscale)
        note = f"{ds.note}; upscaled x{upscale} to {shape[0]}x{shape[1]}".lstrip("; ")
        ds = Dataset(ds.name, train_x, ds.train_y, test_x, ds.test_y, shape, note)
    return ds
