"""A scikit-learn pipeline through skl2onnx comes into fw as it is: its own preparation, its label output and all.

skl2onnx writes a classifier with two outputs, the label and the
probabilities (through ZipMap's dictionaries by default), a StandardScaler as
ai.onnx.ml's Scaler, and a Cast to float. fw reads the probabilities, the
Scaler as a ``rescale`` layer, and writes a config whose dataset does not
standardise the input again, so fw gives scikit-learn's probabilities.
"""

import csv
import json
import warnings

import numpy as np
import onnx
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import framework as fw
from test_cli import fw as run_fw


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    """Iris (scikit-learn ships it) as a CSV with its species' names, and a pipeline fitted on it."""
    folder = tmp_path_factory.mktemp("iris")
    data = load_iris()
    x = data.data.astype(np.float32)
    with open(folder / "iris.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        rows.writerows([*map(repr, map(float, r)), data.target_names[t]] for r, t in zip(x, data.target))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence: the weights need not be the best, only scikit-learn's
        pipeline = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=300, random_state=0)).fit(
            x, data.target
        )
    return folder, x, data.target, pipeline


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    """A binary table (scikit-learn's breast cancer data), the label as words, and a pipeline fitted on them."""
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("cancer")
    data = load_breast_cancer()
    x, words = data.data.astype(np.float32), data.target_names[data.target]
    with open(folder / "cancer.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow([*(f"f{i}" for i in range(x.shape[1])), "diagnosis"])
        rows.writerows([*map(repr, map(float, r)), w] for r, w in zip(x, words))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=300, random_state=0)).fit(x, words)
    return folder, x, words, pipeline


@pytest.mark.parametrize("options", [None, {"zipmap": False}], ids=["zipmap", "no-zipmap"])
def test_a_binary_classifier_reads_its_one_score_as_two_probabilities(capsys, tmp_path, cancer, options):
    """skl2onnx writes a binary classifier's probabilities as Sigmoid, then 1 - p and p concatenated: binary_sigmoid."""
    folder, x, words, pipeline = cancer
    model = to_onnx(pipeline, x[:1], options=options)
    assert [n.op_type for n in model.graph.node[7:10]] == ["Sigmoid", "Sub", "Concat"]  # what skl2onnx writes
    path, out = tmp_path / "cancer.onnx", tmp_path / "cancer.yaml"
    onnx.save(model, str(path))
    table = [f"dataset.path={folder / 'cancer.csv'}", f"dataset.test_path={folder / 'cancer.csv'}"]
    code, said, err = run_fw(capsys, "import-onnx", path, out, "dataset.name=csv", "dataset.label=diagnosis", *table)
    assert code == 0, err
    assert "model.layers[4] binary_sigmoid  <- node 7" in said and "ends without softmax" not in said
    cfg = fw.load_config(str(out))
    got, _ = fw.load_dataset(cfg)
    np.testing.assert_allclose(fw.build_network(cfg).predict(got), pipeline.predict_proba(x), rtol=0, atol=1e-4)
    code, ran, err = run_fw(capsys, "run", out)
    assert code == 0, err
    assert ran.startswith(f"Accuracy: {pipeline.score(x, words):.4f} ")


def test_binary_sigmoid_keeps_the_layer_contract():
    from framework.plugins.binary_sigmoid import BinarySigmoid
    from framework.testing import check_layer

    check_layer(BinarySigmoid, (1,))


@pytest.mark.parametrize("options", [None, {"zipmap": False}], ids=["zipmap", "no-zipmap"])
def test_a_pipeline_imported_without_surgery_gives_scikit_learns_probabilities(capsys, tmp_path, iris, options):
    folder, x, labels, pipeline = iris
    model = to_onnx(pipeline, x[:1], options=options)
    assert len(model.graph.output) == 2 and model.graph.node[0].op_type == "Scaler"  # what skl2onnx writes
    path, out = tmp_path / "iris.onnx", tmp_path / "iris.yaml"
    onnx.save(model, str(path))
    table = [f"dataset.path={folder / 'iris.csv'}", f"dataset.test_path={folder / 'iris.csv'}"]  # every row, in order
    code, said, err = run_fw(capsys, "import-onnx", path, out, "dataset.name=csv", "dataset.label=species", *table)
    assert code == 0, err
    assert "normalize: false" in out.read_text() and "so dataset.normalize is false" in said
    assert "model.layers[0] rescale  <- node 0 'Scaler' (Scaler)" in said and "left out" in said
    cfg = fw.load_config(str(out))
    got, t = fw.load_dataset(cfg)
    assert np.array_equal(got, x) and np.array_equal(t, labels)  # the raw values: fw prepares nothing
    np.testing.assert_allclose(fw.build_network(cfg).predict(got), pipeline.predict_proba(x), rtol=0, atol=1e-4)
    code, ran, err = run_fw(capsys, "run", out)
    assert code == 0, err
    assert ran.startswith(f"Accuracy: {pipeline.score(x, labels):.4f} ")
    code, said, err = run_fw(capsys, "predict", out, folder / "iris.csv", "--json", "--top", "3")  # the raw rows
    assert code == 0, err
    rows = [json.loads(line) for line in said.splitlines()]
    names = list(load_iris().target_names)
    predicted = np.array([[next(p["probability"] for p in r["top"] if p["class"] == c) for c in names] for r in rows])
    np.testing.assert_allclose(predicted, pipeline.predict_proba(x), rtol=0, atol=1e-4)


def test_classes_the_model_names_otherwise_than_the_dataset_are_pointed_out(capsys, tmp_path, iris):
    """A pipeline fitted on the species' names, read against a table whose labels are numbers: fw says so."""
    folder, x, labels, _ = iris
    table = tmp_path / "numbered.csv"
    with open(table, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        rows.writerows([*map(repr, map(float, r)), int(t)] for r, t in zip(x, labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = make_pipeline(StandardScaler(), MLPClassifier((4,), max_iter=50, random_state=0)).fit(
            x, load_iris().target_names[labels]
        )
    path = tmp_path / "named.onnx"
    onnx.save(to_onnx(named, x[:1]), str(path))
    code, said, err = run_fw(
        capsys,
        "import-onnx",
        path,
        tmp_path / "n.yaml",
        "dataset.name=csv",
        "dataset.label=species",
        f"dataset.path={table}",
    )
    assert code == 0, err
    assert (
        "note: the model's classes are setosa, versicolor, virginica (in its outputs' order), dataset 'csv' has 0, 1, 2"
        in said
    )
    code, said, err = run_fw(
        capsys,
        "import-onnx",
        path,
        tmp_path / "m.yaml",
        "dataset.name=csv",
        "dataset.label=species",
        f"dataset.path={folder / 'iris.csv'}",
    )
    assert code == 0, err
    assert "the model's classes" not in said  # the same names, in the same order
