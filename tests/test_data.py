"""Tests for explorer.core.data.datasets: IDX validation, data sets, splits, upscaling, downloads.

Every IDX file here is made by the test itself; nothing reads real data sets or the network.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.core.data import datasets as D
from explorer.core.data.datasets import DataError

# --------------------------------------------------------------------------- helpers

def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """A valid IDX file for ``arr`` (big-endian payload)."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = struct.pack(">HBB", 0, code, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + np.asarray(arr).astype(dt).tobytes()


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, gz: bool = False) -> Path:
    raw = idx_bytes(arr, code)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_images(n: int, h: int = 4, w: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def fake_labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=n, dtype=np.uint8)


def write_pair(folder: Path, prefix: str, n: int, gz: bool = True, seed: int = 0):
    sfx = ".gz" if gz else ""
    imgs, labs = fake_images(n, seed=seed), fake_labels(n, seed=seed)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", imgs, gz=gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", labs, gz=gz)
    return imgs, labs


def assert_error_names(path: Path, fn, *args, match: str | None = None):
    with pytest.raises(DataError) as info:
        fn(*args)
    msg = str(info.value)
    assert path.name in msg
    assert "\n" not in msg
    if match:
        assert match in msg
    return msg


# --------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_ubyte(tmp_path, gz):
    arr = fake_images(5, 3, 7)
    p = write_idx(tmp_path / "x.idx", arr, gz=gz)
    out = D.read_idx(p)
    assert out.dtype == np.uint8 and out.shape == (5, 3, 7)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("code,dtype", [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                        (0x0D, np.float32), (0x0E, np.float64)])
def test_round_trip_other_dtypes_native_endian(tmp_path, code, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 10).astype(dtype)
    out = D.read_idx(write_idx(tmp_path / "x.idx", arr, code=code))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_gzip_detected_by_magic_not_extension(tmp_path):
    arr = fake_labels(10)
    p = tmp_path / "labels.raw"  # gz content, misleading name
    p.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(D.read_idx(p), arr)
    q = tmp_path / "labels.gz"  # raw content, misleading name
    q.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(D.read_idx(q), arr)


def test_truncated_payload(tmp_path):
    p = tmp_path / "trunc-idx3-ubyte"
    p.write_bytes(idx_bytes(fake_images(3))[:-5])
    assert_error_names(p, D.read_idx, p, match="truncated: expected 48 bytes of data")


def test_trailing_bytes(tmp_path):
    p = tmp_path / "trailing-idx3-ubyte"
    p.write_bytes(idx_bytes(fake_images(3)) + b"\x00\x01")
    assert_error_names(p, D.read_idx, p, match="trailing")


def test_bad_magic(tmp_path):
    p = tmp_path / "badmagic"
    raw = bytearray(idx_bytes(fake_labels(4)))
    raw[0] = 0x12
    p.write_bytes(bytes(raw))
    assert_error_names(p, D.read_idx, p, match="magic")


def test_bad_dtype_code(tmp_path):
    p = tmp_path / "badcode"
    raw = bytearray(idx_bytes(fake_labels(4)))
    raw[2] = 0x0A
    p.write_bytes(bytes(raw))
    assert_error_names(p, D.read_idx, p, match="0x0a")


@pytest.mark.parametrize("ndim", [0, 5])
def test_bad_ndim(tmp_path, ndim):
    p = tmp_path / "badndim"
    p.write_bytes(struct.pack(">HBB", 0, 0x08, ndim) + b"\x00" * 40)
    assert_error_names(p, D.read_idx, p, match="dimensions")


def test_header_truncated(tmp_path):
    p = tmp_path / "shorthdr"
    p.write_bytes(struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">I", 10))
    assert_error_names(p, D.read_idx, p, match="header truncated")


def test_header_shorter_than_magic(tmp_path):
    p = tmp_path / "tiny"
    p.write_bytes(b"\x00\x00")
    assert_error_names(p, D.read_idx, p, match="header too short")


def test_empty_file(tmp_path):
    p = tmp_path / "empty-idx1-ubyte"
    p.write_bytes(b"")
    assert_error_names(p, D.read_idx, p, match="empty")


def test_missing_file(tmp_path):
    p = tmp_path / "nowhere-idx1-ubyte"
    assert_error_names(p, D.read_idx, p, match="not found")


def test_directory_is_unreadable(tmp_path):
    p = tmp_path / "adir"
    p.mkdir()
    assert_error_names(p, D.read_idx, p, match="cannot read")


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "corrupt.gz"
    good = gzip.compress(idx_bytes(fake_images(20)))
    p.write_bytes(good[:10] + b"garbage!" * 20)  # valid gzip header, then garbage
    assert_error_names(p, D.read_idx, p, match="gzip")


def test_truncated_gzip(tmp_path):
    p = tmp_path / "truncated.gz"
    good = gzip.compress(idx_bytes(fake_images(20)))
    p.write_bytes(good[: len(good) // 2])
    assert_error_names(p, D.read_idx, p, match="gzip")


# --------------------------------------------------------------------------- load_idx_pair

def test_pair_ok(tmp_path):
    imgs, labs = write_pair(tmp_path, "t10k", 12)
    images, labels = D.load_idx_pair(tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(images, imgs)
    np.testing.assert_array_equal(labels, labs)


def test_pair_count_mismatch(tmp_path):
    ip = write_idx(tmp_path / "imgs-idx3-ubyte", fake_images(10))
    lp = write_idx(tmp_path / "labs-idx1-ubyte", fake_labels(9))
    with pytest.raises(DataError) as info:
        D.load_idx_pair(ip, lp)
    msg = str(info.value)
    assert ip.name in msg and lp.name in msg
    assert "10 images" in msg and "9 labels" in msg


def test_images_file_given_as_labels(tmp_path):
    ip = write_idx(tmp_path / "imgs-idx3-ubyte", fake_images(10))
    other = write_idx(tmp_path / "other-idx3-ubyte", fake_images(10, seed=1))
    msg = assert_error_names(other, D.load_idx_pair, ip, other, match="expected a labels file")
    assert "3-D" in msg


def test_labels_file_given_as_images(tmp_path):
    lp = write_idx(tmp_path / "labs-idx1-ubyte", fake_labels(10))
    assert_error_names(lp, D.load_idx_pair, lp, lp, match="expected an images file")


def test_labels_out_of_range(tmp_path):
    ip = write_idx(tmp_path / "imgs-idx3-ubyte", fake_images(3))
    lp = write_idx(tmp_path / "labs-idx1-ubyte", np.array([1, 2, 12], dtype=np.uint8))
    assert_error_names(lp, D.load_idx_pair, ip, lp, match="12")


# --------------------------------------------------------------------------- mnist-style loading

def test_load_mnist_all_four(tmp_path):
    tr_i, tr_l = write_pair(tmp_path, "train", 30, gz=True, seed=1)
    te_i, te_l = write_pair(tmp_path, "t10k", 10, gz=False, seed=2)
    ds = D.load_dataset("mnist", tmp_path)
    assert ds.name == "mnist" and ds.image_shape == (4, 4) and ds.n_visible == 16
    assert ds.train_x.shape == (30, 16) and ds.test_x.shape == (10, 16)
    assert ds.train_x.dtype == np.float32 and ds.train_x.flags.c_contiguous
    assert ds.train_y.dtype == np.int64
    np.testing.assert_allclose(ds.train_x, tr_i.reshape(30, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.test_y, te_l)
    assert 0.0 <= ds.train_x.min() and ds.train_x.max() <= 1.0


def test_load_mnist_t10k_only_is_split(tmp_path):
    imgs, labs = write_pair(tmp_path, "t10k", 50)
    ds = D.load_dataset("fashion-mnist", tmp_path, seed=3)
    assert ds.train_x.shape == (40, 16) and ds.test_x.shape == (10, 16)
    assert "t10k" in ds.note and "80/20" in ds.note
    # the split is a permutation of the file: every image used exactly once
    together = np.concatenate([ds.train_x, ds.test_x]) * 255
    assert sorted(map(bytes, np.rint(together).astype(np.uint8))) == sorted(map(bytes, imgs.reshape(50, -1)))
    again = D.load_dataset("fashion-mnist", tmp_path, seed=3)
    np.testing.assert_array_equal(again.test_x, ds.test_x)


def test_dot_variant_names_found(tmp_path):
    write_idx(tmp_path / "t10k-images.idx3-ubyte", fake_images(10))
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", fake_labels(10))
    files = D.find_idx_files("mnist", tmp_path)
    assert set(files) == {"t10k-images", "t10k-labels"}
    assert D.load_dataset("mnist", tmp_path).train_x.shape == (8, 16)


def test_missing_files_message(tmp_path):
    with pytest.raises(DataError) as info:
        D.load_dataset("mnist", tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg
    for fname in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert fname in msg
    assert "--data-dir" in msg and "--download" in msg
    assert msg == D.missing_files_message("mnist", tmp_path)


def test_no_data_dir_uses_cache_and_reports_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))
    assert D.default_cache_dir() == tmp_path / "cache"
    with pytest.raises(DataError, match="--download"):
        D.load_dataset("mnist")


def test_unknown_name_and_bad_upscale():
    with pytest.raises(DataError):
        D.load_dataset("cifar")
    for bad in (0, 5):
        with pytest.raises(DataError):
            D.load_dataset("digits", upscale=bad)


# --------------------------------------------------------------------------- digits / upscale

def test_digits_shapes_and_split():
    ds = D.load_dataset("digits")
    assert ds.image_shape == (8, 8) and ds.n_visible == 64
    assert len(ds.train_x) + len(ds.test_x) == 1797
    assert len(ds.test_x) == round(1797 * 0.2) and len(ds.train_x) == 1797 - len(ds.test_x)
    for x in (ds.train_x, ds.test_x):
        assert x.dtype == np.float32 and x.shape[1] == 64 and x.flags.c_contiguous
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert ds.train_x.max() == 1.0
    assert ds.train_y.dtype == np.int64 and set(np.unique(ds.train_y)) == set(range(10))


def test_the_bundled_digits_load_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any import of scikit-learn now fails
    images, labels = D._digits_arrays()
    assert images.shape == (1797, 64) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert int(images.sum()) == 561718 and images.min() == 0 and images.max() == 16
    assert images[0].reshape(8, 8)[1].tolist() == [0, 0, 13, 15, 10, 15, 5, 0]  # the first digit, a 0
    assert labels[:10].tolist() == list(range(10))
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    ds = D.load_dataset("digits")
    assert len(ds.train_x) + len(ds.test_x) == 1797 and ds.train_x.max() == 1.0


def test_the_bundled_digits_are_scikit_learns():
    datasets = pytest.importorskip("sklearn.datasets")  # the comparison needs scikit-learn (the [bench] extra)
    reference = datasets.load_digits()
    images, labels = D._digits_arrays()
    np.testing.assert_array_equal(images, reference.data)
    np.testing.assert_array_equal(labels, reference.target)


def test_a_damaged_digits_file_is_named(tmp_path, monkeypatch):
    broken = tmp_path / "digits.npz"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    monkeypatch.setattr(D, "DIGITS_FILE", broken)
    with pytest.raises(DataError, match=r"digits\.npz: the bundled digits cannot be read"):
        D.load_dataset("digits")
    np.savez(broken, images=np.zeros((10, 64), np.uint8), labels=np.zeros(10, np.uint8))
    with pytest.raises(DataError, match=r"shape \(10, 64\)"):
        D.load_dataset("digits")


def test_digits_split_deterministic_by_seed():
    a, b = D.load_dataset("digits", seed=0), D.load_dataset("digits", seed=0)
    np.testing.assert_array_equal(a.test_x, b.test_x)
    np.testing.assert_array_equal(a.train_y, b.train_y)
    c = D.load_dataset("digits", seed=1)
    assert not np.array_equal(a.test_x, c.test_x)


def test_digits_upscale():
    base = D.load_dataset("digits")
    up = D.load_dataset("digits", upscale=2)
    assert up.image_shape == (16, 16) and up.n_visible == 256
    assert up.train_x.shape == (len(base.train_x), 256) and up.train_x.dtype == np.float32
    assert up.train_x.min() >= 0.0 and up.train_x.max() <= 1.0
    np.testing.assert_array_equal(up.train_y, base.train_y)
    # smooth, not blocky: the enlarged image keeps the mean brightness roughly
    np.testing.assert_allclose(up.train_x.mean(), base.train_x.mean(), atol=0.02)
    up4 = D.load_dataset("digits", upscale=4)
    assert up4.image_shape == (32, 32) and up4.test_x.shape[1] == 1024


def test_upscale_identity_and_constant():
    x = np.random.default_rng(0).random((3, 12)).astype(np.float32)
    same, shape = D.upscale_images(x, (3, 4), 1)
    assert shape == (3, 4)
    np.testing.assert_array_equal(same, x)
    const = np.full((2, 12), 0.7, dtype=np.float32)
    up, shape = D.upscale_images(const, (3, 4), 3)
    assert shape == (9, 12) and up.shape == (2, 108)
    np.testing.assert_allclose(up, 0.7, atol=1e-6)


# --------------------------------------------------------------------------- bars

def test_bars_and_stripes_structure():
    x, y = D.bars_and_stripes(size=6, n_samples=300, seed=4)
    assert x.shape == (300, 36) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert set(np.unique(y)) == {0, 1}
    imgs = x.reshape(-1, 6, 6)
    cols_const = (imgs == imgs[:, :1, :]).all(axis=(1, 2))   # every column constant: bars
    rows_const = (imgs == imgs[:, :, :1]).all(axis=(1, 2))   # every row constant: stripes
    assert cols_const[y == 0].all()
    assert rows_const[y == 1].all()
    x2, y2 = D.bars_and_stripes(size=6, n_samples=300, seed=4)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_bars_dataset_and_size_limits():
    ds = D.load_dataset("bars", bars_size=5, seed=1)
    assert ds.image_shape == (5, 5)
    assert ds.train_x.shape == (2000, 25) and ds.test_x.shape == (500, 25)
    assert ds.train_y is not None and ds.test_y is not None
    for bad in (1, 33):
        with pytest.raises(DataError):
            D.load_dataset("bars", bars_size=bad)


# --------------------------------------------------------------------------- download

def make_mirror(folder: Path) -> dict[str, str]:
    """Write the four .gz files into ``folder``; return their md5s."""
    folder.mkdir()
    write_pair(folder, "train", 20, gz=True, seed=5)
    write_pair(folder, "t10k", 10, gz=True, seed=6)
    return {f: hashlib.md5((folder / f).read_bytes()).hexdigest() for f in D.DOWNLOAD_FILES}


def test_download_from_file_url(tmp_path):
    sums = make_mirror(tmp_path / "mirror")
    dest = tmp_path / "dest"
    calls = []
    out = D.download_dataset("mnist", dest, base_url=(tmp_path / "mirror").as_uri() + "/",
                             checksums=sums, progress=lambda d, t: calls.append((d, t)))
    assert out == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(D.DOWNLOAD_FILES)
    for f in D.DOWNLOAD_FILES:
        assert (dest / f).read_bytes() == (tmp_path / "mirror" / f).read_bytes()
    ds = D.load_dataset("mnist", dest)
    assert ds.train_x.shape == (20, 16) and ds.test_x.shape == (10, 16)

    # progress: per file, increasing byte counts ending at the file size
    assert calls
    by_total: dict[int, list[int]] = {}
    for done, total in calls:
        by_total.setdefault(total, []).append(done)
    sizes = sorted((tmp_path / "mirror" / f).stat().st_size for f in D.DOWNLOAD_FILES)
    assert sorted(by_total) == sorted(set(sizes))
    for total, dones in by_total.items():
        assert dones == sorted(dones) and dones[-1] == total

    # second call: everything present and valid, nothing fetched
    calls.clear()
    D.download_dataset("mnist", dest, base_url=(tmp_path / "mirror").as_uri(), checksums=sums,
                       progress=lambda d, t: calls.append((d, t)))
    assert calls == []


def test_download_wrong_checksum_leaves_nothing(tmp_path):
    sums = make_mirror(tmp_path / "mirror")
    bad = dict(sums, **{"train-images-idx3-ubyte.gz": "0" * 32})
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        D.download_dataset("mnist", dest, base_url=(tmp_path / "mirror").as_uri(), checksums=bad)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "0" * 32 in msg
    assert sums["train-images-idx3-ubyte.gz"] in msg
    assert not (dest / "train-images-idx3-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in dest.iterdir())


def test_download_unreachable_names_folder(tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        D.download_dataset("fashion-mnist", dest, base_url=(tmp_path / "no-such-mirror").as_uri())
    msg = str(info.value)
    assert "could not download" in msg and str(dest) in msg
    assert list(dest.iterdir()) == []


def test_load_dataset_download_into_cache(tmp_path, monkeypatch):
    sums = make_mirror(tmp_path / "mirror")
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(D.MIRRORS, "mnist", ((tmp_path / "mirror").as_uri() + "/",))
    monkeypatch.setitem(D.CHECKSUMS, "mnist", sums)
    ds = D.load_dataset("mnist", tmp_path / "empty", download=True)
    assert ds.train_x.shape == (20, 16)
    assert (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()
    # later, without a folder, the cache is found without downloading again
    assert D.load_dataset("mnist").test_x.shape == (10, 16)


@pytest.mark.parametrize("family", ["cnn", "rbm"])
@pytest.mark.parametrize("shape, words", [((10, 0, 28), "images of 0 x 28 pixels"),
                                          ((0, 28, 28), "holds no images (its header says a count of 0)")])
def test_an_idx_file_with_a_zero_size_is_refused_naming_it(tmp_path, capsys, family, shape, words):
    """A count or a side of 0 reached training: a reshape error and exit 3 (CNN), or numpy's words (RBM)."""
    from explorer.cli import main

    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.zeros(shape, np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.zeros(shape[0], np.uint8))
    assert main(["train", family, "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("explorer: error: ") and "\n" not in err
    assert "-images-idx3-ubyte: " + words in err
