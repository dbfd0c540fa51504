"""The arrays dataset: an .npz of x and y (or x_train ... y_test), fw predict on .npy/.npz, and its errors."""

import json

import numpy as np
import pytest

import framework as fw_api
import framework.api
from framework.plugins.arrays import Arrays
from framework.testing import check_dataset
from own_data import config, make_npz
from test_cli import fw, one_line_error

ARRAYS = "{name: arrays, path: data.npz, classes: [low, middle, high]}"


def test_the_kit_passes_features_and_a_presplit_file(tmp_path):
    make_npz(tmp_path / "data.npz")
    check_dataset(Arrays, path=str(tmp_path / "data.npz"))
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "split.npz",
        x_train=rng.normal(size=(20, 3)),
        y_train=np.arange(20) % 2,
        x_test=rng.normal(size=(6, 3)),
        y_test=np.arange(6) % 2,
    )
    check_dataset(Arrays, path=str(tmp_path / "split.npz"))


@pytest.mark.parametrize("uint8", [False, True])
def test_train_run_and_predict_agree_on_the_same_rows(capsys, tmp_path, uint8):
    make_npz(tmp_path / "data.npz", uint8=uint8)
    cfg = config(tmp_path, ARRAYS)
    assert fw(capsys, "train", cfg)[0] == 0
    code, out, err = fw(capsys, "run", cfg, "--json")
    assert code == 0, err
    run = json.loads(out)
    loaded = fw_api.load_config(cfg)
    net, dataset = fw_api.api.build(loaded)
    x, t = fw_api.load_dataset(loaded, dataset=dataset)
    raw, _ = dataset.examples("test")
    np.save(tmp_path / "rows.npy", raw.reshape(len(raw), -1))  # flattened: also accepted
    np.savez(tmp_path / "rows.npz", x=raw)
    for inputs in ([tmp_path / "rows.npy"], [tmp_path / "rows.npz"]):
        code, out, err = fw(capsys, "predict", cfg, *inputs, "--json")
        assert code == 0, err
        records = [json.loads(line) for line in out.splitlines()]
        assert [r["label"] for r in records] == net.classify(x).tolist()
        assert [r["row"] for r in records] == list(range(len(raw)))
        assert sum(r["label"] == k for r, k in zip(records, t)) / len(t) == run["accuracy"] > 0.9
        assert {r["class"] for r in records} <= {"low", "middle", "high"}
    pixels = json.loads((tmp_path / "runs" / "w.dataset.json").read_text())["state"]["pixels"]
    assert (
        pixels is uint8
        and ("mean" in json.loads((tmp_path / "runs" / "w.dataset.json").read_text())["state"]) is not uint8
    )


def test_uint8_is_divided_by_255_and_floats_are_standardised(tmp_path):
    x, _ = make_npz(tmp_path / "data.npz", uint8=True)
    cfg = fw_api.load_config(config(tmp_path, ARRAYS), ["weights=null"])
    xt, _ = fw_api.api.load_split(cfg, "train")
    assert xt.max() <= 1 and np.isin(np.rint(xt * 255), np.arange(256)).all()
    make_npz(tmp_path / "data.npz")
    xt, _ = fw_api.api.load_split(cfg, "train")
    assert np.allclose(xt.mean(axis=0), 0, atol=1e-5) and np.allclose(xt.std(axis=0), 1, atol=1e-4)


@pytest.mark.parametrize(
    "arrays, fragments",
    [
        (dict(inputs=np.zeros((4, 2)), y=np.zeros(4, int)), ["holds inputs, y; the arrays dataset needs x and y"]),
        (
            dict(x=np.zeros((5, 2)), y=np.zeros(4, int)),
            ["x has 5 examples but y has 4 labels; they must be the same length"],
        ),
        (
            dict(x=np.zeros((4, 2)), y=np.array([0, 1, 2, 3])),
            ["y holds the label 3, but dataset.classes names 3 classes"],
        ),
        (dict(x=np.zeros((4, 2)), y=np.array([0.5, 1, 2, 0])), ["y must be whole-number labels of shape (N,)"]),
        (dict(x=np.zeros(4), y=np.zeros(4, int)), ["x must be numbers of shape (N, features)"]),
    ],
)
def test_bad_arrays_are_one_line(capsys, tmp_path, arrays, fragments):
    np.savez(tmp_path / "data.npz", **arrays)
    one_line_error(*fw(capsys, "train", config(tmp_path, ARRAYS)), str(tmp_path / "data.npz"), *fragments)


def test_a_damaged_or_forged_file_is_one_line(capsys, tmp_path):
    make_npz(tmp_path / "data.npz")
    data = (tmp_path / "data.npz").read_bytes()
    (tmp_path / "data.npz").write_bytes(data[: len(data) // 2])
    one_line_error(*fw(capsys, "train", config(tmp_path, ARRAYS)), "not a .npy or .npz file")
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 5), }"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(80))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "data.npz", x=np.arange(24.0).reshape(12, 2), y=np.arange(12) % 3)  # 3 for the test split
    assert fw(capsys, "train", config(tmp_path, "{name: arrays, path: data.npz}", epochs=1))[0] == 0
    one_line_error(
        *fw(capsys, "predict", config(tmp_path, "{name: arrays, path: data.npz}"), tmp_path / "obj.npy"),
        "dtype object; fw reads numbers only",
    )
    one_line_error(
        *fw(capsys, "predict", config(tmp_path, "{name: arrays, path: data.npz}"), tmp_path / "huge.npy"),
        "declares shape (100000000000, 5)",
        "the file is damaged",
    )  # sized before anything is allocated


def test_predict_names_the_shape_it_needs(capsys, tmp_path):
    make_npz(tmp_path / "data.npz")
    cfg = config(tmp_path, ARRAYS, epochs=1)
    assert fw(capsys, "train", cfg)[0] == 0
    np.save(tmp_path / "wrong.npy", np.zeros((3, 4), np.float32))
    one_line_error(
        *fw(capsys, "predict", cfg, tmp_path / "wrong.npy"), "shape (3, 4)", "examples have shape (5,): give (N, 5)"
    )
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 5)), b=np.zeros((3, 5)))
    one_line_error(*fw(capsys, "predict", cfg, tmp_path / "two.npz"), "holds a, b; fw predict reads its array x")
