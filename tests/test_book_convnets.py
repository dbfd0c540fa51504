"""The book's own trained ConvNets on the real MNIST test set: chapter 7's 0.9600 and chapter 8's 0.9797.

The weights are not bundled; configs/mnist_cnn.yaml and configs/mnist_deep_cnn.yaml
download them on first use. These tests pass a local copy as weights.path
(never the network) and skip when ../shared/data/book has none.
"""

from pathlib import Path

import pytest

import framework as fw
from conftest import need
from test_cli import fw as run_cli

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BOOK_FILES = {  # config: (weights file, its SHA-256, the book code's count of correct answers)
    "mnist_cnn": ("params.pkl", "a5da99cffddafcfe5e686e79dc0ec3a7cc993b58e64f483b50960511e5e85344", 9600),
    "mnist_deep_cnn": (
        "deep_convnet_params.pkl",
        "4b7a27baee2037605afa94d3f514ca9fa9cc96623739328609765073cfd5f802",
        9797,
    ),
}


def overrides(name):
    data = need(f"book/{BOOK_FILES[name][0]}", "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
    return [f"dataset.root={data / 'mnist'}", f"weights.path={data / 'book' / BOOK_FILES[name][0]}"]


@pytest.mark.parametrize("name", sorted(BOOK_FILES))
def test_fw_run_prints_the_books_accuracy(capsys, name):
    code, out, err = run_cli(capsys, "run", CONFIGS / f"{name}.yaml", *overrides(name))
    assert code == 0, err
    correct = BOOK_FILES[name][2]
    assert out.startswith(f"Accuracy: {correct / 10000:.4f} ({correct}/10000 correct)")


@pytest.mark.parametrize("name", sorted(BOOK_FILES))
def test_the_configs_download_the_books_file_on_first_use(name):
    """Not bundled: a url and a checksum, and a path under $FW_DATA_DIR/book or ~/.cache/fw/book."""
    weights = fw.load_config(CONFIGS / f"{name}.yaml").weights
    file, sha256, _ = BOOK_FILES[name]
    chapter = 8 if "deep" in name else 7
    assert weights.url == f"https://github.com/oreilly-japan/deep-learning-from-scratch/raw/master/ch0{chapter}/{file}"
    assert weights.sha256 == sha256 and weights.importer == "pickle"
    assert Path(weights.path).name == file and Path(weights.path).parent.name == "book"


def test_the_deep_convnet_needs_the_books_dropout_rule():
    """Trained with dropout that scales at inference (inverted: false): PyTorch's rule gets 9796, not 9797."""
    cfg = fw.load_config(CONFIGS / "mnist_deep_cnn.yaml", overrides("mnist_deep_cnn"))
    net = fw.build_network(cfg)
    x, t = fw.load_dataset(cfg)
    dropouts = [layer for layer in net.layers if layer.name == "dropout"]
    assert [(d.rate, d.inverted) for d in dropouts] == [(0.5, False), (0.5, False)]
    for d in dropouts:
        d.inverted = True
    assert fw.evaluate(net, x, t).correct == 9796
