"""Hostile inputs to fw predict (issue 26, items 4.3, 4.4 and 4.5): never a silently wrong answer.

A tampered NAME.dataset.json, an input row that is not a finite number, a 16-bit
or EXIF-rotated picture, an image too large to decode, a file in a format fw
never meant to open. Every input is built in tmp_path.
"""

import json

import numpy as np
import pytest

from own_data import config, make_csv, make_image_folder
from test_cli import fw, one_line_error

pytestmark = pytest.mark.hostile

CSV = "{name: csv, path: data/iris.csv, label: species}"
FOLDER = "{name: image_folder, path: photos, size: [8, 8], color: rgb}"


@pytest.fixture
def table(capsys, tmp_path):
    """A config trained on a CSV in tmp_path/data; returns (config, state file, some rows to predict)."""
    (tmp_path / "data").mkdir()
    make_csv(tmp_path / "data" / "iris.csv", n=60)
    cfg = config(tmp_path, CSV, epochs=5)
    code, _, err = fw(capsys, "train", cfg)
    assert code == 0, err
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join((tmp_path / "data" / "iris.csv").read_text().splitlines()[:4]) + "\n")
    return cfg, tmp_path / "runs" / "w.dataset.json", rows


@pytest.fixture
def photos(capsys, tmp_path):
    """A config trained on an image folder; returns (config, state file, one of its images)."""
    root = tmp_path / "img"
    make_image_folder(root / "photos", per_class=4)
    cfg = config(root, FOLDER, epochs=5)
    code, _, err = fw(capsys, "train", cfg)
    assert code == 0, err
    return cfg, root / "runs" / "w.dataset.json", root / "photos" / "red" / "000.png"


def tamper(path, **changes):
    record = json.loads(path.read_text())
    record["state"].update(changes)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "key, value, said",
    [
        ("std", [float("nan"), 1, 1, 1], "std[0] is nan"),
        ("std", [1, 0, 1, 1], "std[1] is 0"),
        ("std", [1, 1, -2.5, 1], "std[2] is -2.5"),
        ("mean", [1, 1, 1, float("inf")], "mean[3] is inf"),
        ("mean", [1, 1, 1], "mean holds 3 values"),
        (
            "mean",
            [1, 10**400, 1, 1],
            "mean[1] is " + "1" + "0" * 56 + "...; each must be a finite number",
        ),  # an int beyond float64's range
        ("shape", [10**400], "shape must be a list of positive whole numbers (below 2**31)"),
        ("class_names", ["setosa", "setosa", "virginica"], "class_names names 'setosa' twice"),
        ("class_names", ["setosa", "", "virginica"], "class_names[1] is empty"),
        (
            "features",
            ["sepal_length", "sepal_length", "petal_length", "petal_width"],
            "features names 'sepal_length' twice",
        ),
        ("pixels", True, "pixels is true"),
    ],
)
def test_a_tampered_table_state_is_refused_naming_the_file_and_key(capsys, table, key, value, said):
    cfg, state, rows = table
    tamper(state, **{key: value})
    one_line_error(*fw(capsys, "predict", cfg, rows), str(state), said)


@pytest.mark.parametrize(
    "changes, said",
    [
        ({"size": [9, 9]}, "size [9, 9] does not match shape [3, 8, 8]"),
        ({"color": "grayscale"}, "color 'grayscale' does not match shape [3, 8, 8]"),
        ({"pixels": False}, "pixels is false"),
        ({"class_names": ["red", "red", "blue"]}, "class_names names 'red' twice"),
    ],
)
def test_a_tampered_image_state_is_refused_naming_the_file_and_key(capsys, photos, changes, said):
    cfg, state, image = photos
    tamper(state, **changes)
    one_line_error(*fw(capsys, "predict", cfg, image), str(state), said)


def test_a_state_nested_100000_deep_is_one_line(capsys, table):
    cfg, state, rows = table
    text = state.read_text()
    state.write_text(text.replace('"state":', '"deep": ' + "[" * 100_000 + "]" * 100_000 + ', "state":', 1))
    one_line_error(*fw(capsys, "predict", cfg, rows), str(state), "nested too deeply")


@pytest.mark.parametrize("value, said", [("1e300", "1e+300 is too large"), ("-1e300", "-1e+300 is too large")])
def test_a_row_too_large_for_float32_is_refused_naming_row_and_column(capsys, table, tmp_path, value, said):
    cfg, _, rows = table
    lines = rows.read_text().splitlines()
    lines[2] = ",".join([*lines[2].split(",")[:2], value, *lines[2].split(",")[3:]])
    rows.write_text("\n".join(lines) + "\n")
    one_line_error(*fw(capsys, "predict", cfg, rows), f"{rows}:2, column 'petal_length'", said)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_an_array_is_refused_naming_row_and_column(capsys, table, photos, tmp_path, value):
    cfg, _, _ = table
    a = np.full((3, 4), 50.0)
    a[2, 1] = value
    np.save(tmp_path / "rows.npy", a)
    one_line_error(
        *fw(capsys, "predict", cfg, tmp_path / "rows.npy"),
        f"rows.npy:2, column 'sepal_width': {value!r} is not a finite number",
    )
    cfg, _, _ = photos
    images = np.full((2, 3, 8, 8), 100.0, np.float32)
    images[1, 2, 5, 6] = value
    np.save(tmp_path / "images.npy", images)
    if np.isinf(value):  # out of 0..255, refused as such
        one_line_error(*fw(capsys, "predict", cfg, tmp_path / "images.npy"), "takes pixels from 0 to 255")
        return
    one_line_error(
        *fw(capsys, "predict", cfg, tmp_path / "images.npy"), "images.npy:1, value at (2, 5, 6)", "not a finite number"
    )


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's overflow warnings would print two lines more
def test_weights_that_overflow_never_print_nan_probabilities(capsys, table, tmp_path):
    from framework.safeio.files import file_hash

    cfg, state, rows = table
    weights = tmp_path / "runs" / "w.npz"
    arrays = dict(np.load(weights))
    arrays["W1"] = np.full_like(arrays["W1"], 3e38)  # finite, but x @ W1 is not
    np.savez(weights, **arrays)
    record = json.loads(state.read_text())
    record["weights_sha256"] = file_hash(weights)
    state.write_text(json.dumps(record))
    one_line_error(*fw(capsys, "predict", cfg, rows), str(rows), "the network's output is not a finite number")


def _png(path, width, height, idat=b"\x78\x9c\x03\x00\x00\x00\x00\x01"):
    """A PNG whose header declares ``width`` x ``height`` grey pixels; its data need not hold them."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(capsys, photos, tmp_path):
    from PIL import Image

    from framework.plugins.imaging import image_array

    cfg, _, image = photos
    grey = np.asarray(Image.open(image).convert("L"))
    Image.fromarray(grey).save(tmp_path / "eight.png")
    Image.frombytes("I;16", grey.shape[::-1], (grey.astype("<u2") * 257).tobytes()).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode == "I;16"
    for color in ("grayscale", "rgb"):
        assert np.array_equal(
            image_array(tmp_path / "sixteen.png", (8, 8), color), image_array(tmp_path / "eight.png", (8, 8), color)
        )
    code, eight, err = fw(capsys, "predict", cfg, tmp_path / "eight.png", "--json")
    assert code == 0, err
    code, sixteen, err = fw(capsys, "predict", cfg, tmp_path / "sixteen.png", "--json")
    assert code == 0, err
    assert json.loads(sixteen)["top"] == json.loads(eight)["top"]


def test_a_jpeg_with_exif_orientation_6_is_read_upright(tmp_path):
    from PIL import Image

    from framework.plugins.imaging import image_array

    upright = np.zeros((64, 48, 3), np.uint8)
    upright[:32] = 255  # white above, black below
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a phone stores a portrait photo
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    for size in ((8, 8), (16, 12)):
        want = image_array(tmp_path / "upright.jpg", size, "rgb").astype(int)
        got = image_array(tmp_path / "phone.jpg", size, "rgb").astype(int)
        assert np.abs(got - want).mean() < 8, np.abs(got - want).mean()


@pytest.mark.parametrize("width, height", [(1, 89_000_000), (89_000_000, 1), (9400, 9400), (5001, 5001)])
def test_an_image_of_too_many_pixels_is_refused_before_decoding(capsys, photos, tmp_path, width, height):
    cfg, _, _ = photos
    huge = _png(tmp_path / "huge.png", width, height)
    one_line_error(*fw(capsys, "predict", cfg, huge), str(huge), f"{width}x{height} pixels is more than fw decodes")


def test_an_eps_file_named_png_never_reaches_pillows_eps_plugin(capsys, photos, tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    reached = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: reached.append(self) or 1 / 0)
    cfg, _, _ = photos
    eps = tmp_path / "drawing.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n")
    one_line_error(*fw(capsys, "predict", cfg, eps), str(eps), "not a format fw reads: PNG, JPEG, BMP, GIF")
    assert reached == []


def test_class_names_from_the_state_reach_the_terminal_escaped(capsys, table):
    cfg, state, rows = table
    tamper(state, class_names=["\x1b]0;owned\x07setosa", "versicolor\x1b[2J", "\u202evirginica"])
    code, out, err = fw(capsys, "predict", cfg, rows, "--top", "3")
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07setosa" in out and "versicolor\\x1b[2J" in out and "\\u202evirginica" in out


@pytest.mark.parametrize(
    "key, value, said",
    [
        ("class_names", list("0123456798"), "class_names is ['0', '1', '2', '3', '4', '5', '6', '7', '9', '8']"),
        ("shape", [14, 56], "shape is [14, 56], but dataset 'mnist' always has [28, 28]"),
    ],
)
def test_a_state_that_renames_or_reshapes_mnist_is_refused(capsys, tmp_path, mnist_dir, book_weights, key, value, said):
    import shutil

    from framework.data.trained import write_state
    from framework.plugins.idx import read_idx
    from test_cli import BOOK

    weights = shutil.copy(book_weights, tmp_path / "book.pkl")
    write_state(weights, "mnist", {"class_names": list("0123456789"), "shape": [28, 28], "pixels": True, key: value})
    np.save(tmp_path / "digits.npy", read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:10])
    args = [BOOK, f"dataset.root={mnist_dir}", f"weights.path={weights}", tmp_path / "digits.npy"]
    one_line_error(*fw(capsys, "predict", *args), str(tmp_path / "book.dataset.json"), said)
