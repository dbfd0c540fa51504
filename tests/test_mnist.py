"""The MNIST plugin on the real shared test files (read-only; copied when a test needs to write)."""

import hashlib
import shutil

import numpy as np
import pytest

import framework.plugins.idx
from framework import FwError
from framework.plugins.idx import idx_md5
from framework.plugins.mnist import MNIST, register_datasets

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SHIPPED_MIRRORS = list(MNIST.mirrors)  # before any test points them at the local server


@pytest.fixture(autouse=True)
def local_mirrors(mirror, monkeypatch):
    """Never reach the internet: every MNIST mirror points at the local server (404 unless served).

    The test split fw ships is switched off too, so these tests exercise the download.
    """
    monkeypatch.setattr(MNIST, "mirrors", [mirror.base + "/m1/", mirror.base + "/m2/"])
    monkeypatch.setattr(MNIST, "local_sources", ())
    return mirror


@pytest.fixture
def test_root(mnist_dir, tmp_path):
    """A writable root holding only the two t10k files."""
    root = tmp_path / "mnist"
    root.mkdir()
    for name in TEST_FILES:
        shutil.copy(mnist_dir / name, root / name)
    return root


def test_declaration():
    assert MNIST.name == "mnist" and MNIST.folder == "mnist" and MNIST.num_classes == 10
    assert MNIST.files["test"] == TEST_FILES
    assert MNIST.md5["t10k-images-idx3-ubyte.gz"] == "2646ac647ad5339dbf082846283269ea"
    registered = []
    register_datasets(registered.append)
    assert registered == [MNIST]


def test_real_mirrors_in_order():
    assert SHIPPED_MIRRORS == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]


def test_load_raw_from_a_read_only_copy(mnist_dir, local_mirrors, tmp_path):
    import shutil

    ro = tmp_path / "mnist"
    ro.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, ro / name)
    ro.chmod(0o555)  # like ../shared/data: fw must not write there, even as root
    before = sorted(p.name for p in ro.iterdir())
    ds = MNIST(ro)
    images, labels = ds.load_raw("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert idx_md5(images) == MNIST.md5["t10k-images-idx3-ubyte.gz"]
    assert idx_md5(labels) == MNIST.md5["t10k-labels-idx1-ubyte.gz"]
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # The folder is read-only: the cache goes under $XDG_CACHE_HOME, nothing is written there.
    assert sorted(p.name for p in ro.iterdir()) == before
    assert sorted(p.name for p in ds.cache_dir().iterdir()) == [
        "t10k-images-idx3-ubyte.npy",
        "t10k-labels-idx1-ubyte.npy",
    ]
    assert "/fw/npy/mnist-" in str(ds.cache_dir())
    assert local_mirrors.hits == []


def test_load_options(mnist_dir):
    ds = MNIST(mnist_dir)
    images, labels = ds.load_raw("test")

    x, t = ds.load("test")  # the book's defaults: normalize, flatten, integer labels
    assert x.shape == (10000, 784) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.array_equal(x, images.reshape(10000, 784) / np.float32(255))
    assert t.shape == (10000,) and t.dtype == np.int64 and np.array_equal(t, labels)

    x, _ = ds.load("test", flatten=False)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32

    x, _ = ds.load("test", normalize=False)
    assert x.max() == 255.0 and np.array_equal(x, images.reshape(10000, 784).astype(np.float32))

    _, t = ds.load("test", one_hot_label=True)
    assert t.shape == (10000, 10) and t.dtype == np.float32
    assert np.array_equal(t.sum(axis=1), np.ones(10000)) and np.array_equal(t.argmax(axis=1), labels)


def test_only_the_test_files_are_touched(test_root, local_mirrors):
    ds = MNIST(test_root)
    images, labels = ds.load_raw("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert sorted(p.name for p in test_root.iterdir()) == sorted(TEST_FILES)  # nothing written beside them
    assert sorted(p.name for p in ds.cache_dir().iterdir()) == [
        "t10k-images-idx3-ubyte.npy",
        "t10k-labels-idx1-ubyte.npy",
    ]
    assert local_mirrors.hits == []


def test_second_load_uses_the_npy_cache(test_root, monkeypatch):
    images, labels = MNIST(test_root).load_raw("test")
    for name in TEST_FILES:  # no gzip left to read
        (test_root / name).unlink()
    monkeypatch.setattr(framework.plugins.idx, "_decode", lambda *a: pytest.fail(f"read {a[0]}"))
    images2, labels2 = MNIST(test_root).load_raw("test")
    assert np.array_equal(images2, images) and np.array_equal(labels2, labels)


def test_corrupt_cache_is_rebuilt(test_root):
    MNIST(test_root).load_raw("test")
    cache = MNIST(test_root).cache_dir() / "t10k-images-idx3-ubyte.npy"
    data = bytearray(cache.read_bytes())
    data[-5000:] = bytes(5000)  # still a loadable .npy of the right shape, but wrong pixels
    cache.write_bytes(bytes(data))
    images, _ = MNIST(test_root).load_raw("test")
    assert idx_md5(images) == MNIST.md5["t10k-images-idx3-ubyte.gz"]
    assert hashlib.md5(cache.read_bytes()).hexdigest() != hashlib.md5(bytes(data)).hexdigest()  # rewritten


def test_read_only_copy_falls_back_to_xdg_cache(test_root, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    test_root.chmod(0o555)
    try:
        ds = MNIST(test_root)
        ds.load_raw("test")
        assert ds.cache_dir().parent == tmp_path / "xdg" / "fw" / "npy"
        assert (ds.cache_dir() / "t10k-images-idx3-ubyte.npy").is_file()
        assert not list(test_root.glob("*.npy"))
    finally:
        test_root.chmod(0o755)


def test_download_from_local_mirror(mnist_dir, tmp_path, local_mirrors):
    """The real t10k .gz files served locally: the first mirror 403s, the second serves them."""
    for name in TEST_FILES:
        local_mirrors.serve(f"/m1/{name}", b"Forbidden", status=403)
        local_mirrors.serve(f"/m2/{name}", (mnist_dir / name).read_bytes())
    root = tmp_path / "data" / "mnist"
    x, t = MNIST(root).load("test")
    assert x.shape == (10000, 784) and t.shape == (10000,)
    assert local_mirrors.hits == [f"/m{i}/{n}" for n in TEST_FILES for i in (1, 2)]
    assert not list(root.glob(".*.part"))


def test_train_split_missing_from_a_read_only_copy(test_root, local_mirrors):
    """train-images is not in a read-only copy (like ../shared/data): a clear error, no download.

    The copy is made read-only here, so the test holds whether ../shared is read-only or not.
    """
    test_root.chmod(0o555)
    try:
        with pytest.raises(
            FwError, match=rf"^{test_root}/train-images-idx3-ubyte.gz is missing, and folder {test_root} is read-only"
        ):
            MNIST(test_root).load_raw("train")
    finally:
        test_root.chmod(0o755)
    assert local_mirrors.hits == []


def test_train_split_unavailable(test_root, local_mirrors):
    with pytest.raises(FwError) as e:
        MNIST(test_root).load("train")
    msg = str(e.value)
    assert "\n" not in msg
    for i in (1, 2):
        assert f"{local_mirrors.base}/m{i}/train-images-idx3-ubyte.gz (HTTP 404" in msg
    assert (
        f"put it at {test_root}/train-images-idx3-ubyte.gz (this split also needs train-labels-idx1-ubyte.gz there), "
        "or run with dataset.root=FOLDER (the folder holding it) or FW_DATA_DIR=FOLDER (the folder holding mnist/)"
    ) in msg
    assert not list(test_root.glob("*train*")) and not list(test_root.glob(".*.part"))
