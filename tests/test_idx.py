"""IDX parsing and the IdxDataset find/verify/re-download/cache flow, on tiny synthetic files."""

import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest

import framework.plugins.idx
from framework import FwError
from framework.plugins.idx import IMAGES, LABELS, IdxDataset, idx_md5, read_idx

RNG = np.random.default_rng(0)
ARRAYS = {
    "tr-images.gz": RNG.integers(0, 256, (6, 28, 28), dtype=np.uint8),
    "tr-labels.gz": np.array([0, 1, 2, 0, 1, 2], np.uint8),
    "te-images.gz": RNG.integers(0, 256, (4, 28, 28), dtype=np.uint8),
    "te-labels.gz": np.array([2, 2, 1, 0], np.uint8),
}


def idx_bytes(a: np.ndarray, magic_ndim=None, type_code=0x08) -> bytes:
    ndim = a.ndim if magic_ndim is None else magic_ndim
    return bytes([0, 0, type_code, ndim]) + np.array(a.shape, ">u4").tobytes() + a.tobytes()


PAYLOADS = {name: idx_bytes(a) for name, a in ARRAYS.items()}
GZ = {name: gzip.compress(p, mtime=0) for name, p in PAYLOADS.items()}


class Tiny(IdxDataset):
    name = "tiny"
    folder = "tiny"
    num_classes = 3
    files = {"train": ("tr-images.gz", "tr-labels.gz"), "test": ("te-images.gz", "te-labels.gz")}
    md5 = {name: hashlib.md5(p).hexdigest() for name, p in PAYLOADS.items()}
    mirrors = []


@pytest.fixture
def root(tmp_path):
    """A writable root holding all four good files."""
    d = tmp_path / "root"
    d.mkdir()
    for name, data in GZ.items():
        (d / name).write_bytes(data)
    return d


@pytest.fixture
def served(mirror, monkeypatch):
    """The good files on a second local mirror; the first one answers 404."""
    for name, data in GZ.items():
        mirror.serve(f"/good/{name}", data)
    monkeypatch.setattr(Tiny, "mirrors", [mirror.base + "/missing/", mirror.base + "/good"])
    return mirror


def no_part_files(*folders):
    return not [p for f in folders if f.exists() for p in f.rglob("*.part")]


# --- read_idx ------------------------------------------------------------------


def test_read_idx_roundtrip(root):
    assert np.array_equal(read_idx(root / "tr-images.gz", IMAGES), ARRAYS["tr-images.gz"])
    labels = read_idx(root / "te-labels.gz", LABELS)
    assert labels.dtype == np.uint8 and labels.tolist() == [2, 2, 1, 0]
    assert idx_md5(ARRAYS["tr-images.gz"]) == Tiny.md5["tr-images.gz"]


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda: GZ["tr-images.gz"][: len(GZ["tr-images.gz"]) // 2], "is truncated"),
        (lambda: b"plain bytes, no gzip header", "is corrupt or not a gzip file"),
        (lambda: GZ["tr-images.gz"][:-8] + b"\0" * 8, "is corrupt or not a gzip file"),  # bad CRC/size trailer
        (
            lambda: gzip.compress(idx_bytes(ARRAYS["tr-images.gz"], magic_ndim=1)),
            r"magic number 0x00000801 but 0x00000803 \(images\)",
        ),
        (lambda: gzip.compress(b"\x12\x34\x56\x78" + bytes(100)), r"is not an IDX file \(magic number 12345678\)"),
        (lambda: gzip.compress(idx_bytes(ARRAYS["tr-images.gz"], type_code=0x0D)), "type code 0x0d"),
        (lambda: gzip.compress(PAYLOADS["tr-images.gz"][:-784]), r"header \(6, 28, 28\) needs 4704"),  # count mismatch
        (
            lambda: gzip.compress(PAYLOADS["tr-images.gz"] + b"\0"),
            r"holds more than the 4704 data bytes its header \(6, 28, 28\)",
        ),
        (lambda: gzip.compress(b"\0\0\x08\x03\0\0"), "truncated inside its IDX header"),
    ],
    ids=[
        "truncated-gz",
        "not-gzip",
        "corrupt-trailer",
        "wrong-magic",
        "bad-magic",
        "type-code",
        "count",
        "extra",
        "header",
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, make, problem):
    path = tmp_path / "x-images.gz"
    path.write_bytes(make())
    with pytest.raises(FwError, match=problem) as e:
        read_idx(path, IMAGES)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "delete it and download it again" in msg and "\n" not in msg


def test_read_idx_corrupt_deflate_bytes(tmp_path):
    data = bytearray(GZ["tr-images.gz"])
    data[20:40] = b"\xff" * 20  # inside the deflate stream
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(data))
    # Garbled bytes at the start decode to a nonsense header, refused before anything is allocated.
    with pytest.raises(FwError, match=rf"^{path}: (is (corrupt|truncated)|has the header)"):
        read_idx(path)


# --- IdxDataset ----------------------------------------------------------------


def test_load_raw_and_cache(root, monkeypatch, capsys):
    images, labels = Tiny(root).load_raw("train")
    assert capsys.readouterr().err == ""  # good files: no download, no warning
    assert np.array_equal(images, ARRAYS["tr-images.gz"]) and np.array_equal(labels, ARRAYS["tr-labels.gz"])
    cache_dir = Tiny(root).cache_dir()
    assert sorted(p.name for p in cache_dir.iterdir()) == ["tr-images.npy", "tr-labels.npy"]  # only this split
    # Second load: from the .npy cache, no gzip at all.
    monkeypatch.setattr(framework.plugins.idx, "_decode", lambda *a: pytest.fail(f"read {a[0]}"))
    images2, labels2 = Tiny(root).load_raw("train")
    assert np.array_equal(images2, images) and np.array_equal(labels2, labels)


def test_only_the_split_files_are_needed(tmp_path, served):
    (tmp_path / "te-images.gz").write_bytes(GZ["te-images.gz"])
    (tmp_path / "te-labels.gz").write_bytes(GZ["te-labels.gz"])
    images, labels = Tiny(tmp_path).load_raw("test")
    assert images.shape == (4, 28, 28) and labels.tolist() == [2, 2, 1, 0]
    assert served.hits == [] and not (tmp_path / "tr-images.gz").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: gzip.compress(PAYLOADS["tr-images.gz"][:-1] + b"\x01", mtime=0),  # valid gzip, wrong checksum
        lambda b: b"<html>oops</html>",  # an error page saved by hand
    ],
    ids=["truncated", "wrong-checksum", "html"],
)
def test_a_bad_file_in_root_is_an_error_naming_it_and_is_left_alone(root, served, damage, capsys):
    """The folder's file is the user's: fw neither replaces it nor reads another copy in its place."""
    path = root / "tr-images.gz"
    path.write_bytes(damage(path.read_bytes()))
    before = path.read_bytes()
    with pytest.raises(FwError) as e:
        Tiny(root).load_raw("train")
    msg = str(e.value)
    assert msg.startswith(f"{path} ") and "\n" not in msg
    assert "so it is not tiny's tr-images.gz; delete it and fw downloads a fresh copy, or put a good copy there" in msg
    assert path.read_bytes() == before and served.hits == [] and no_part_files(root)


def test_missing_files_are_downloaded(tmp_path, served):
    root = tmp_path / "new" / "tiny"  # does not exist yet
    images, labels = Tiny(root).load_raw("test")
    assert np.array_equal(images, ARRAYS["te-images.gz"]) and labels.tolist() == [2, 2, 1, 0]
    assert sorted(p.name for p in root.iterdir()) == ["te-images.gz", "te-labels.gz"]  # the cache is elsewhere


def test_all_mirrors_fail(root, mirror, monkeypatch):
    monkeypatch.setattr(Tiny, "mirrors", [mirror.base + "/a/", mirror.base + "/b/"])
    mirror.serve("/b/tr-labels.gz", b"denied", status=403)
    (root / "tr-images.gz").unlink()
    with pytest.raises(FwError) as e:
        Tiny(root).load_raw("train")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{root / 'tr-images.gz'} is missing; could not download it: tried ")
    assert f"{mirror.base}/a/tr-images.gz (HTTP 404" in msg and f"{mirror.base}/b/tr-images.gz (HTTP 404" in msg
    # Every place fw looked, and each way to point it at a local copy.
    assert f"fw looked in {root};" in msg and f"put it at {root / 'tr-images.gz'}," in msg
    assert "dataset.root=FOLDER" in msg and "FW_DATA_DIR=FOLDER (the folder holding tiny/)" in msg
    assert no_part_files(root) and not (root / "tr-images.gz").exists()


def test_bad_cache_is_rebuilt_never_trusted(root, tmp_path):
    Tiny(root).load_raw("train")
    cache = Tiny(root).cache_dir() / "tr-images.npy"
    flipped = ARRAYS["tr-images.gz"].copy()
    flipped[0, 0, 0] ^= 1
    np.save(tmp_path / "flipped.npy", flipped)
    for bad in ("garbage", "truncated", "flipped-pixel", "wrong-dtype", "pickle", "symlink", "fifo", "folder"):
        cache.unlink() if not cache.is_dir() else cache.rmdir()
        if bad == "garbage":
            cache.write_bytes(b"not a npy file")
        elif bad == "truncated":
            np.save(cache, ARRAYS["tr-images.gz"])
            cache.write_bytes(cache.read_bytes()[:1000])
        elif bad == "flipped-pixel":
            np.save(cache, flipped)  # a valid .npy with the right shape: only the checksum catches it
        elif bad == "wrong-dtype":
            np.save(cache, ARRAYS["tr-images.gz"].astype(np.int16))
        elif bad == "pickle":
            np.save(cache, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
        elif bad == "symlink":  # even a link to a good copy: fw never follows a link at its cache path
            cache.symlink_to(tmp_path / "flipped.npy")
        elif bad == "fifo":
            os.mkfifo(cache)  # opened blindly, it would hang the run
        else:
            cache.mkdir()
        images, _ = Tiny(root).load_raw("train")
        assert np.array_equal(images, ARRAYS["tr-images.gz"]), bad
        if bad == "folder":  # not fw's to delete: it warns that it cannot write the cache there
            assert cache.is_dir()
            continue
        assert cache.is_file() and not cache.is_symlink(), bad
        assert idx_md5(np.load(cache, allow_pickle=False)) == Tiny.md5["tr-images.gz"], bad  # rewritten
    assert no_part_files(root, cache.parent)
    assert np.array_equal(np.load(tmp_path / "flipped.npy"), flipped)  # the link's target is left alone


@pytest.mark.parametrize("writable", [True, False], ids=["writable-root", "read-only-root"])
def test_cache_lives_under_xdg_never_in_root(root, tmp_path, monkeypatch, writable):
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    before = sorted(p.name for p in root.iterdir())
    root.chmod(0o755 if writable else 0o555)
    try:
        ds = Tiny(root)
        ds.load_raw("test")
        cache_dir = ds.cache_dir()
        assert cache_dir.parent == xdg / "fw" / "npy" and cache_dir.name.startswith("tiny-")
        assert sorted(p.name for p in cache_dir.iterdir()) == ["te-images.npy", "te-labels.npy"]
        assert sorted(p.name for p in root.iterdir()) == before  # the user's folder is left as it was
        # Another root with the same folder name gets its own cache.
        assert Tiny(tmp_path / "elsewhere" / "root").cache_dir() != cache_dir
    finally:
        root.chmod(0o755)


def test_read_only_root_with_a_bad_file(root, served):
    (root / "te-labels.gz").write_bytes(b"junk")
    root.chmod(0o555)
    try:
        with pytest.raises(FwError, match=r"te-labels.gz is corrupt .*, so it is not tiny's te-labels.gz; delete it"):
            Tiny(root).load_raw("test")
        assert served.hits == []
    finally:
        root.chmod(0o755)


def test_unwritable_cache_is_skipped(root, monkeypatch, capsys):
    import framework.safeio.files

    monkeypatch.setattr(framework.safeio.files, "temp_path", lambda p: root / "no-such-dir" / "x.part")
    ds = Tiny(root)
    images, _ = ds.load_raw("test")
    assert images.shape == (4, 28, 28)
    assert "cannot write cache" in capsys.readouterr().err and not list(ds.cache_dir().glob("*.npy"))


def test_unknown_split_and_mismatched_declaration(root, monkeypatch):
    with pytest.raises(FwError, match="has no split 'valid'.*train, test"):
        Tiny(root).load_raw("valid")
    monkeypatch.setattr(Tiny, "num_classes", 2)
    with pytest.raises(FwError, match="6 images and tr-labels.gz 6 labels \\(max 2\\) for 2 classes"):
        Tiny(root).load_raw("train")
    shutil.copy(root / "te-labels.gz", root / "tr-labels.gz")
    monkeypatch.setitem(Tiny.md5, "tr-labels.gz", Tiny.md5["te-labels.gz"])
    monkeypatch.setattr(Tiny, "num_classes", 3)
    with pytest.raises(FwError, match="6 images and tr-labels.gz 4 labels"):
        Tiny(root).load_raw("train")
