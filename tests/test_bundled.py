"""The chapter-3 job's inputs ship with fw: exactly three files, intact, used before any download."""

import hashlib
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from framework import FwError
from framework.api import weights_path
from framework.data import bundled
from framework.plugins.mnist import MNIST
from framework.safeio.download import gzip_payload_md5
from framework.safeio.files import file_hash

REPO = Path(__file__).resolve().parents[1]
BOOK_SHA256 = "b7f55a27988ba34c3777b0f1bbd464817c8a4db855723e6ff26f703501917a13"  # ../shared/data/README.md
SHIPPED = {"mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz", "book/sample_weight.pkl"}


def test_exactly_the_three_files_ship_and_they_are_the_checksummed_originals():
    data = REPO / "plugins" / "data"
    files = {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
    assert files == SHIPPED | {"README.md"}, "only the chapter-3 job's inputs (and their credits) ship"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert gzip_payload_md5(data / "mnist" / name) == MNIST.md5[name]
    assert file_hash(data / "book" / "sample_weight.pkl") == BOOK_SHA256
    assert sum((data / f).stat().st_size for f in SHIPPED) == 1_835_272  # 1.84 MB; ship nothing larger
    assert bundled.data_dir("mnist") == data / "mnist"  # the installed package finds them (editable here)


def test_credits_name_the_authors_and_licences():
    for text in ((REPO / "plugins" / "data" / "README.md").read_text(), (REPO / "README.md").read_text()):
        assert "LeCun" in text and "Cortes" in text and "Burges" in text and "CC BY-SA 3.0" in text
        assert "oreilly-japan/deep-learning-from-scratch" in text and "MIT" in text


@pytest.fixture
def offline_mnist(mirror, monkeypatch):
    """MNIST's mirrors on a local server that serves nothing, so any download attempt is seen."""
    monkeypatch.setattr(MNIST, "mirrors", [mirror.base + "/m/"])
    return mirror


def test_an_empty_root_reads_the_bundled_test_split_without_downloading(offline_mnist, tmp_path):
    root = tmp_path / "cache" / "mnist"
    x, t = MNIST(root).load("test")
    assert x.shape == (10000, 784) and t[:5].tolist() == [7, 2, 1, 0, 4]
    assert offline_mnist.hits == []
    # The decoded cache lands in the user cache as usual; the package folder is only read.
    assert sorted(p.name for p in MNIST(root).cache_dir().iterdir()) == [
        "t10k-images-idx3-ubyte.npy",
        "t10k-labels-idx1-ubyte.npy",
    ]
    assert not root.exists()


def test_the_train_split_is_not_bundled_and_is_downloaded(offline_mnist, tmp_path):
    with pytest.raises(FwError, match="train-images-idx3-ubyte.gz"):
        MNIST(tmp_path / "mnist").load_raw("train")
    assert offline_mnist.hits == ["/m/train-images-idx3-ubyte.gz"]


def weights(path, url, sha256=BOOK_SHA256):
    path = str(path) if path else None
    return OmegaConf.create({"importer": "pickle", "path": path, "url": url, "sha256": sha256, "format": None})


def test_missing_book_weights_come_from_the_bundled_copy_before_any_download(mirror, tmp_path):
    url = mirror.serve("/sample_weight.pkl", b"not the weights")
    got = weights_path(weights(tmp_path / "book" / "sample_weight.pkl", url))
    assert got == bundled.data_dir("book") / "sample_weight.pkl" and file_hash(got) == BOOK_SHA256
    assert mirror.hits == [] and not (tmp_path / "book").exists()
    # weights.path: null (the download cache) works the same way.
    assert weights_path(weights(None, url)) == got


def test_a_file_at_weights_path_wins_over_the_bundled_copy(mirror, tmp_path, book_weights):
    mine = tmp_path / "mine.pkl"
    mine.write_bytes(book_weights.read_bytes())
    assert weights_path(weights(mine, mirror.serve("/w.pkl", b""))) == mine


def test_other_weights_are_downloaded_as_before(mirror, tmp_path):
    body = b"other weights"
    url = mirror.serve("/w.pkl", body)
    got = weights_path(weights(tmp_path / "w.pkl", url, hashlib.sha256(body).hexdigest()))
    assert got == tmp_path / "w.pkl" and got.read_bytes() == body and mirror.hits == ["/w.pkl"]


def test_a_damaged_bundled_copy_is_not_used(mirror, tmp_path, monkeypatch, book_weights):
    damaged = tmp_path / "pkg" / "book"
    damaged.mkdir(parents=True)
    (damaged / "sample_weight.pkl").write_bytes(book_weights.read_bytes()[:-1])
    monkeypatch.setattr(bundled, "data_dir", lambda name: tmp_path / "pkg" / name)
    url = mirror.serve("/sample_weight.pkl", book_weights.read_bytes())
    got = weights_path(weights(tmp_path / "w.pkl", url))
    assert got == tmp_path / "w.pkl" and mirror.hits == ["/sample_weight.pkl"]
