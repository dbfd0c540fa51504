"""fw predict on the book's network: drawn digits read as MNIST presents them, arrays, stdin, output and errors."""

import io
import json
import sys

import numpy as np
import pytest

import framework as fw_api
from framework.plugins.idx import read_idx
from own_data import FEATURES, config, make_csv
from test_cli import BOOK, fw, one_line_error

DIGITS = 250


@pytest.fixture
def book(mnist_dir, book_weights):
    return [BOOK, f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]


def drawn(image, rng):
    """An MNIST digit as a person might draw it: dark on white (or on transparency), scaled up, off-centre."""
    from PIL import Image

    scale = int(rng.integers(3, 9))
    ink = Image.fromarray(255 - image).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    side = int(rng.integers(28 * scale + 20, 28 * scale + 300))
    at = (int(rng.integers(0, side - 28 * scale)), int(rng.integers(0, side - 28 * scale)))
    if rng.random() < 0.25:  # a transparent background, black ink: what many paint programs save
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        alpha = Image.fromarray(image).resize(ink.size, Image.Resampling.BICUBIC)
        canvas.paste(Image.new("RGBA", ink.size, (0, 0, 0, 255)), at, alpha)
        return canvas, ".png"
    canvas = Image.new("L", (side, side), 255)
    canvas.paste(ink, at)
    return canvas.convert("RGB"), ".jpg" if rng.random() < 0.25 else ".png"


@pytest.mark.slow
def test_drawn_digits_are_read_as_mnist_presents_them(capsys, tmp_path, book, mnist_dir):
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:DIGITS]
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")[:DIGITS]
    rng = np.random.default_rng(0)
    files = []
    for i, image in enumerate(images):
        picture, suffix = drawn(image, rng)
        files.append(tmp_path / f"{i:03d}{suffix}")
        picture.save(files[-1], quality=95) if suffix == ".jpg" else picture.save(files[-1])
    cfg = fw_api.load_config(book[0], book[1:])
    net = fw_api.build_network(cfg)
    x, t = fw_api.load_dataset(cfg)
    originals = float(np.mean(net.classify(x[:DIGITS]) == t[:DIGITS]))  # what fw run gets on these images
    code, out, err = fw(capsys, "predict", *book, *files, "--json")
    assert code == 0, err
    predicted = [json.loads(line)["label"] for line in out.splitlines()]
    accuracy = float(np.mean(np.array(predicted) == labels))
    assert len(predicted) == DIGITS and abs(accuracy - originals) <= 0.03, (accuracy, originals)


def test_a_28x28_mnist_image_comes_back_as_itself(tmp_path, mnist_dir):
    """An MNIST image is already cropped, 20 px and centred by mass: preparing it again changes little."""
    from PIL import Image

    from framework.plugins.imaging import mnist_style

    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:50]
    diffs = [np.abs(mnist_style(Image.fromarray(a)).astype(int) - a).mean() for a in images]
    assert np.median(diffs) < 12  # mean absolute difference per pixel, of 255


def test_arrays_rows_and_top_k(capsys, tmp_path, book, mnist_dir):
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:5]
    np.save(tmp_path / "five.npy", images)
    np.save(tmp_path / "flat.npy", images.reshape(5, 784).astype(np.float32))  # raw 0..255 values, as floats
    code, out, err = fw(capsys, "predict", *book, tmp_path / "five.npy", tmp_path / "flat.npy", "--top", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == ["7", "2", "1", "0", "4"] * 2  # the first five test labels
    assert lines[0].startswith(f"{tmp_path / 'five.npy'}:0 ") and lines[5].startswith(f"{tmp_path / 'flat.npy'}:0 ")
    assert lines[0].split()[3:5] == ["top", "3:"] and len(lines[0].split(", ")) == 3
    code, out, _ = fw(capsys, "predict", *book, tmp_path / "five.npy", "--json", "--top", "2")
    record = json.loads(out.splitlines()[0])
    assert list(record) == ["input", "row", "label", "class", "probability", "top"]
    assert record["row"] == 0 and record["class"] == "7" and record["label"] == 7
    assert [set(t) for t in record["top"]] == [{"class", "probability"}] * 2
    assert record["top"][0]["probability"] == record["probability"] >= record["top"][1]["probability"]


def test_one_clear_line_per_bad_input(capsys, tmp_path, book):
    (tmp_path / "notes.txt").write_text("hi")
    one_line_error(
        *fw(capsys, "predict", *book, tmp_path / "notes.txt"), "fw predict reads images", ".npy, .npz and .csv"
    )
    one_line_error(*fw(capsys, "predict", *book, tmp_path / "none.npy"), "no such file")
    np.save(tmp_path / "odd.npy", np.zeros((2, 27, 27), np.uint8))
    one_line_error(
        *fw(capsys, "predict", *book, tmp_path / "odd.npy"), "shape (2, 27, 27)", "give (N, 28, 28) or (N, 784)"
    )
    np.save(tmp_path / "hot.npy", np.full((1, 784), 300.0))
    one_line_error(
        *fw(capsys, "predict", *book, tmp_path / "hot.npy"), "values from 300.0 to 300.0", "pixels from 0 to 255"
    )
    one_line_error(
        *fw(capsys, "predict", *book, tmp_path / "odd.npy", "--top", "11"), "--top 11 is more than the 10 classes"
    )
    one_line_error(*fw(capsys, "predict", *book, tmp_path / "odd.npy", "--top", "0"), "--top must be at least 1")
    one_line_error(*fw(capsys, "predict", *book, tmp_path / "a.csv"), "CSV file not found")
    make_csv(tmp_path / "rows.csv")
    one_line_error(*fw(capsys, "predict", *book, tmp_path / "rows.csv"), "dataset 'mnist' has no named columns")
    one_line_error(*fw(capsys, "predict", *book), "needs at least one INPUT")


def test_csv_rows_on_standard_input(capsys, tmp_path, monkeypatch):
    make_csv(tmp_path / "iris.csv")
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species}")
    assert fw(capsys, "train", cfg)[0] == 0
    rows = "\n".join((tmp_path / "iris.csv").read_text().splitlines()[:4])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(rows.encode())))
    code, out, err = fw(capsys, "predict", cfg, "-", "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["input"], r["row"]) for r in records] == [("-", 1), ("-", 2), ("-", 3)]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(",".join(FEATURES[:3]).encode() + b"\n1,2,3\n")))
    one_line_error(*fw(capsys, "predict", cfg, "-"), "-: has no column 'petal_width'; the network takes the columns")


def test_overrides_may_follow_the_inputs(capsys, tmp_path, book, mnist_dir):
    np.save(tmp_path / "one.npy", read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:1])
    code, out, err = fw(capsys, "predict", BOOK, tmp_path / "one.npy", *book[1:], "--top", "2", "batch_size=7")
    assert code == 0, err
    assert out.split()[1] == "7"
