"""Weights as safetensors: written and read for every built-in layer, converted to and from pickle and npz,
and a header that lies refused in one line before any array is made."""

import json
import pickle
import sys

import numpy as np
import pytest

from framework import FwError, Network
from framework.data.weights import load_weights
from framework.plugins.activations import ReLU, Softmax
from framework.plugins.conv import AvgPool2D, Conv2D, MaxPool2D
from framework.plugins.layers import BatchNorm, Dense, Dropout, Flatten
from framework.plugins.safetensors_weights import MAX_HEADER, SafetensorsImporter, SafetensorsWriter
from test_cli import BOOK, fw, one_line_error


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def every_layer(seed):
    layers = [
        Conv2D(3, 3, padding=1),
        BatchNorm(),
        ReLU(),
        MaxPool2D(2),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dense(8),
        BatchNorm(),
        Dropout(0.2),
        Dense(4),
        Softmax(),
    ]
    net = Network(layers).build((1, 8, 8), np.random.default_rng(seed))
    for k, a in net.state_dict().items():  # running statistics too, not just their initial 0 and 1
        a[...] = np.random.default_rng(seed + len(k)).normal(size=a.shape) ** 2
    return net


def test_every_built_in_layer_round_trips(tmp_path):
    net = every_layer(0)
    path = tmp_path / "w.safetensors"
    with open(path, "wb") as f:
        SafetensorsWriter().write(f, net.state_dict())
    arrays = SafetensorsImporter().load(path)
    assert sorted(arrays) == sorted(net.state_dict()) and "1.running_var" in arrays
    other = every_layer(1)
    load_weights(other, arrays, path)
    for key, a in net.state_dict().items():
        assert np.array_equal(other.state_dict()[key], a) and arrays[key].dtype == np.float32
    x = np.random.default_rng(2).normal(size=(5, 1, 8, 8)).astype(np.float32)
    assert np.array_equal(other.predict(x), net.predict(x))


@pytest.mark.slow
def test_fw_train_writes_safetensors_and_fw_run_reads_them(capsys, tmp_path, fashion_full_dir):
    w = tmp_path / "w.safetensors"
    args = [
        "configs/fashion_train.yaml",
        f"dataset.root={fashion_full_dir}",
        "train.epochs=1",
        "weights.format=safetensors",
        "weights.importer=safetensors",
        f"weights.path={w}",
    ]
    code, out, err = fw(capsys, "train", *args)
    assert code == 0, err
    assert w.read_bytes()[8:9] == b"{"  # a safetensors header
    code, out, err = fw(capsys, "run", *args, "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] > 0.75


def test_convert_weights_between_all_three_formats(capsys, tmp_path, book_weights, mnist_dir):
    original = pickle.loads(book_weights.read_bytes())
    st, npz, pkl = tmp_path / "w.safetensors", tmp_path / "w.npz", tmp_path / "w.pkl"
    for src, dst, importer in ((book_weights, st, "safetensors"), (st, npz, "npz"), (npz, pkl, "pickle")):
        code, out, err = fw(capsys, "convert-weights", src, dst)
        assert code == 0, err
        assert (
            f"use it with: weights: {{importer: {importer}, path: {dst}}}; the file fits model.sizes=[784,50,100,10]"
            in out
        )
    from framework.plugins.pickle_importer import PickleImporter

    back = PickleImporter().load(pkl)
    assert sorted(back) == sorted(original) and all(np.array_equal(back[k], original[k]) for k in original)
    code, out, err = fw(
        capsys, "run", BOOK, f"dataset.root={mnist_dir}", "weights.importer=safetensors", f"weights.path={st}"
    )
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")


def test_convert_weights_names_the_formats_it_knows(capsys, tmp_path, book_weights):
    one_line_error(
        *fw(capsys, "convert-weights", book_weights, tmp_path / "w.h5"),
        "must end with .npz, .safetensors, .pkl, .pickle",
    )


def test_without_the_package_it_says_how_to_install_it(capsys, tmp_path, book_weights, monkeypatch):
    for module in ("safetensors", "safetensors.numpy"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    one_line_error(
        *fw(capsys, "convert-weights", book_weights, tmp_path / "w.safetensors"),
        "needs the safetensors package",
        "pip install safetensors",
        "'.[safetensors]'",
    )
    assert not (tmp_path / "w.safetensors").exists()


# -- hostile headers: each refused in one line, naming the file ----------------------------------


def st_file(path, header, data=b"", length=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes((len(text) if length is None else length).to_bytes(8, "little") + text + data)
    return path


def refused(path, *fragments):
    with pytest.raises(FwError) as e:
        SafetensorsImporter().load(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


F32 = {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]}


def test_a_header_that_lies_about_sizes(tmp_path):
    lie = {"0.W": {"dtype": "F32", "shape": [1 << 30, 1 << 30], "data_offsets": [0, 40]}}
    refused(
        st_file(tmp_path / "w.safetensors", lie, bytes(40)),
        "'0.W' declares shape (1073741824, 1073741824) of F32",
        "data_offsets hold 40",
        "lies about sizes",
    )


def test_a_header_too_long(tmp_path):
    refused(
        st_file(tmp_path / "w.safetensors", b"{}", length=MAX_HEADER + 1),
        f"claims {MAX_HEADER + 1:,} bytes, more than the {MAX_HEADER:,}",
    )
    refused(
        st_file(tmp_path / "w.safetensors", {"0.W": F32}, bytes(40), length=1000),
        "claims 1,000 bytes, but only",
        "cut off or forged",
    )


def test_a_header_whose_tensors_overlap(tmp_path):
    header = {"0.W": F32, "0.b": {"dtype": "F32", "shape": [10], "data_offsets": [20, 60]}}
    refused(
        st_file(tmp_path / "w.safetensors", header, bytes(60)),
        "'0.b' (bytes 20-60) overlaps the data of '0.W'",
        "forged",
    )


@pytest.mark.parametrize(
    "header, data, fragment",
    [
        (
            {"0.W": {"dtype": "F32", "shape": [10], "data_offsets": [0, 80]}},
            bytes(40),
            "declares shape (10,) of F32, 40 bytes",
        ),
        (
            {"0.W": {"dtype": "F32", "shape": [10], "data_offsets": [40, 80]}},
            bytes(40),
            "runs to byte 80 of the data, which has 40",
        ),
        (
            {"0.W": F32, "0.b": {"dtype": "F32", "shape": [1], "data_offsets": [44, 48]}},
            bytes(48),
            "bytes 40-44 of its data belong to no tensor",
        ),
        ({"0.W": F32}, bytes(41), "end at byte 40 of 41"),
        ({"0.W": {"dtype": "BF16", "shape": [10], "data_offsets": [0, 20]}}, bytes(20), 'dtype "BF16"'),
        ({"0.W": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 40]}}, bytes(40), "no valid shape"),
        ({"0.W": {"dtype": "F32", "shape": [10], "data_offsets": [40, 0]}}, bytes(40), "no valid data_offsets"),
        ({"os.system": F32}, bytes(40), "unexpected array name(s) os.system"),
        (b'{"0.W": {"dtype": "F32"}, "0.W": {}}', b"", "the name '0.W' appears twice"),
        (b"[" * 100_000 + b"]" * 100_000, b"", "not valid JSON"),
        (b"not json", b"", "not valid JSON"),
        ([1, 2], b"", "not a JSON object of tensors"),
    ],
)
def test_other_damaged_headers(tmp_path, header, data, fragment):
    refused(st_file(tmp_path / "w.safetensors", header, data), fragment)


def test_a_file_too_short_for_a_header(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"\x01\x00")
    refused(tmp_path / "w.safetensors", "2 bytes, too short")


def test_a_header_fw_reads_the_package_reads_too(tmp_path):
    """What passes fw's checks is what the safetensors package writes: the check refuses no real file."""
    from safetensors.numpy import save

    path = tmp_path / "w.safetensors"
    path.write_bytes(
        save({"0.W": np.ones((3, 2), np.float32), "0.b": np.zeros(2, np.float64), "1.n": np.arange(4)}, {"by": "test"})
    )
    arrays = SafetensorsImporter().load(path)
    assert arrays["0.W"].shape == (3, 2) and arrays["0.b"].dtype == np.float64 and list(arrays["1.n"]) == [0, 1, 2, 3]
