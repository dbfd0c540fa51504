"""The fashion_mnist plugin on the real shared files, and its local source (Debian's package folder)."""

import shutil

import numpy as np
import pytest

from framework import FwError
from framework.plugins.fashion_mnist import FashionMNIST, register_datasets
from framework.plugins.idx import IdxDataset, idx_md5
from framework.testing import check_dataset

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SHIPPED_MIRRORS = list(FashionMNIST.mirrors)
SHIPPED_LOCAL = tuple(FashionMNIST.local_sources)


@pytest.fixture(autouse=True)
def offline(mirror, monkeypatch):
    """Never reach the internet or the real /usr/share: mirrors 404 on the local server, no local source."""
    monkeypatch.setattr(FashionMNIST, "mirrors", [mirror.base + "/f1/", mirror.base + "/f2/"])
    monkeypatch.setattr(FashionMNIST, "local_sources", ())
    return mirror


def test_declaration_shares_the_idx_machinery():
    assert issubclass(FashionMNIST, IdxDataset)
    assert FashionMNIST.load_raw is IdxDataset.load_raw, "declare data only; the IDX code is shared"
    assert FashionMNIST.name == "fashion_mnist" and FashionMNIST.folder == "fashion-mnist"
    assert FashionMNIST.class_names == (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    assert FashionMNIST.md5["t10k-images-idx3-ubyte.gz"] == "8181f5470baa50b63fa0f6fddb340f0a"
    assert SHIPPED_MIRRORS[0] == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert SHIPPED_LOCAL == ("/usr/share/datasets/fashion-mnist",)
    registered = []
    register_datasets(registered.append)
    assert registered == [FashionMNIST]


def test_test_split_from_the_read_only_shared_copy(fashion_dir, offline):
    images, labels = FashionMNIST(fashion_dir).load_raw("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert idx_md5(images) == FashionMNIST.md5["t10k-images-idx3-ubyte.gz"]
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(labels).tolist() == [1000] * 10
    assert FashionMNIST(fashion_dir).class_name(labels[0]) == "Ankle boot"
    assert offline.hits == []


@pytest.mark.slow
def test_both_splits_pass_the_dataset_kit(fashion_full_dir):
    check_dataset(FashionMNIST, fashion_full_dir)
    x, t = FashionMNIST(fashion_full_dir).load("train", one_hot_label=True)
    assert x.shape == (60000, 784) and t.shape == (60000, 10)
    assert t.sum(axis=0).tolist() == [6000.0] * 10


def test_a_local_source_is_read_before_downloading(fashion_dir, tmp_path, monkeypatch, offline):
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    debian.mkdir()
    for name in TEST_FILES:
        shutil.copy(fashion_dir / name, debian / name)
    monkeypatch.setattr(FashionMNIST, "local_sources", (str(debian),))
    root = tmp_path / "cache" / "fashion-mnist"  # empty and not there yet
    images, labels = FashionMNIST(root).load_raw("test")
    assert idx_md5(images) == FashionMNIST.md5["t10k-images-idx3-ubyte.gz"] and len(labels) == 10000
    assert offline.hits == [], "nothing may be downloaded when a local source has the files"
    assert not root.exists(), "nothing is copied or cached into the dataset folder"


def test_a_damaged_local_copy_is_skipped_and_the_file_downloaded(fashion_dir, tmp_path, monkeypatch, offline, capsys):
    debian = tmp_path / "debian"
    debian.mkdir()
    (debian / TEST_FILES[0]).write_bytes(b"not a gzip file")
    shutil.copy(fashion_dir / TEST_FILES[1], debian / TEST_FILES[1])
    offline.serve("/f2/" + TEST_FILES[0], (fashion_dir / TEST_FILES[0]).read_bytes())
    monkeypatch.setattr(FashionMNIST, "local_sources", (str(debian),))
    root = tmp_path / "root"
    images, _ = FashionMNIST(root).load_raw("test")
    assert idx_md5(images) == FashionMNIST.md5[TEST_FILES[0]]
    assert offline.hits == ["/f1/" + TEST_FILES[0], "/f2/" + TEST_FILES[0]]  # labels came from the local copy
    assert f"ignoring {debian / TEST_FILES[0]}" in capsys.readouterr().err


def test_offline_with_no_copy_lists_the_mirrors_and_the_folder(tmp_path, offline):
    root = tmp_path / "fm"
    with pytest.raises(FwError) as e:
        FashionMNIST(root).load_raw("test")
    msg = str(e.value)
    assert offline.base + "/f1/t10k-images-idx3-ubyte.gz" in msg and str(root / TEST_FILES[0]) in msg
    assert "\n" not in msg
