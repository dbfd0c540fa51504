"""fw export of a table's network carries its preparation: ONNX Runtime fed the raw CSV cells gives
fw predict's probabilities, and the model names no folder of the machine that wrote it."""

import json

import numpy as np
import onnx
import onnxruntime as ort

from own_data import FEATURES, config, make_csv
from test_cli import fw
from test_table_preparation import messy_config


def predicted(capsys, cfg, rows):
    """fw predict's probabilities of every class, (rows, classes), in class order."""
    code, out, err = fw(capsys, "predict", cfg, rows, "--json", "--top", "3")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    names = sorted({t["class"] for t in records[0]["top"]})
    return np.array([[{t["class"]: t["probability"] for t in r["top"]}[c] for c in names] for r in records]), names


def exported(capsys, cfg, tmp_path):
    out = tmp_path / "model.onnx"
    code, said, err = fw(capsys, "export", cfg, out)
    assert code == 0, err
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert str(tmp_path) not in out.read_bytes().decode("latin-1")  # no absolute path anywhere in the model
    return model, meta, ort.InferenceSession(str(out)), said


def test_a_numeric_table_exports_one_raw_input_with_blanks_as_nan(capsys, tmp_path):
    make_csv(tmp_path / "iris.csv")
    cfg = config(tmp_path, f"{{name: csv, path: {tmp_path / 'iris.csv'}, label: species}}")
    assert fw(capsys, "train", cfg)[0] == 0
    _, meta, session, said = exported(capsys, cfg, tmp_path)
    assert json.loads(meta["features"]) == list(FEATURES)
    assert json.loads(meta["columns"]) == [{"name": f, "type": "numeric"} for f in FEATURES]
    assert "path: iris.csv" in meta["config"] and "path: w.npz" in meta["config"]
    assert [i.name for i in session.get_inputs()] == ["input"] and "raw, NaN for a blank" in said
    rows = tmp_path / "new.csv"
    rows.write_text(",".join(FEATURES) + "\n10.5,40,70.2,99\n,42,,101\n13,43.5,72,\n")
    want, _ = predicted(capsys, cfg, rows)
    x = np.genfromtxt(rows, delimiter=",", skip_header=1, dtype=np.float32)  # blanks: NaN
    assert np.isnan(x).sum() == 3
    got = session.run(["probabilities"], {"input": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_table_with_words_exports_one_input_per_column_and_gives_fw_predicts_probabilities(capsys, tmp_path):
    cfg = messy_config(tmp_path)
    assert fw(capsys, "train", cfg)[0] == 0
    _, meta, session, _ = exported(capsys, cfg, tmp_path)
    types = {c["name"]: c["type"] for c in json.loads(meta["columns"])}
    assert types == {
        "size": "numeric",
        "color": "categorical",
        "city": "categorical",
        "year": "numeric",
        "weight": "numeric",
    }
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs == {
        "size": "tensor(float)",
        "color": "tensor(string)",
        "city": "tensor(string)",
        "year": "tensor(float)",
        "weight": "tensor(float)",
    }
    rows = tmp_path / "rows.csv"  # the training rows, words and blanks, and one with unseen words
    lines = (tmp_path / "messy.csv").read_text().splitlines()
    lines[5] = "48.5,purple,Tokyo,2030,70,a"
    rows.write_text("\n".join(lines) + "\n")
    want, names = predicted(capsys, cfg, rows)
    assert json.loads(meta["class_names"]) == names
    cells = [line.split(",") for line in lines[1:]]
    feed = {}
    for k, name in enumerate(["size", "color", "city", "year", "weight"]):
        column = [row[k] for row in cells]
        if types[name] == "numeric":
            feed[name] = np.array([float(v) if v else np.nan for v in column], np.float32).reshape(-1, 1)
        else:
            feed[name] = np.array(column, dtype=object).reshape(-1, 1)
    got = session.run(["probabilities"], feed)[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
