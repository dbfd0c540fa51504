"""The csv dataset: training, fw run, fw predict on new rows, its parameters, and one line per bad table."""

import json
import shutil

import numpy as np
import pytest

import framework as fw_api
import framework.api
from framework import FwError
from framework.config.datasets import make_dataset
from framework.plugins.csv_dataset import CSVDataset
from framework.testing import check_dataset
from framework.training.trainer import Trainer
from framework.training.validation import load_training_data
from own_data import CLASSES, FEATURES, config, make_csv
from test_cli import fw, one_line_error

CSV = "{name: csv, path: data/iris.csv, label: species}"


@pytest.fixture
def trained(capsys, tmp_path):
    """A config trained on a CSV in tmp_path/data; returns the config's path."""
    (tmp_path / "data").mkdir()
    make_csv(tmp_path / "data" / "iris.csv")
    cfg = config(tmp_path, CSV)
    code, _, err = fw(capsys, "train", cfg)
    assert code == 0, err
    return cfg


def test_the_kit_passes_the_csv_dataset(tmp_path):
    make_csv(tmp_path / "iris.csv")
    check_dataset(CSVDataset, path=str(tmp_path / "iris.csv"), label="species")


def test_predict_gives_fw_runs_classes_for_the_same_rows_in_any_column_order(capsys, trained, tmp_path):
    code, out, err = fw(capsys, "run", trained, "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["accuracy"] > 0.9 and run["total"] == 24  # a stratified fifth of 120 rows
    cfg = fw_api.load_config(trained)
    net, dataset = fw_api.api.build(cfg)
    x, t = fw_api.load_dataset(cfg, dataset=dataset)
    raw, _ = dataset.examples("test")
    rows = tmp_path / "new.csv"  # the columns reversed, and no label
    rows.write_text(
        ",".join(FEATURES[::-1]) + "\n" + "\n".join(",".join(repr(float(v)) for v in r[::-1]) for r in raw) + "\n"
    )
    code, out, err = fw(capsys, "predict", trained, rows, "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in records] == net.classify(x).tolist()
    assert [r["row"] for r in records] == list(range(1, 25)) and {r["input"] for r in records} == {str(rows)}
    assert sum(r["label"] == k for r, k in zip(records, t)) / len(t) == run["accuracy"]
    assert all(r["class"] == CLASSES[r["label"]] for r in records)


def test_after_training_the_csv_is_not_needed(capsys, trained, tmp_path):
    rows = tmp_path / "new.csv"
    shutil.copy(tmp_path / "data" / "iris.csv", rows)  # with its label column, which predict ignores
    code, before, err = fw(capsys, "predict", trained, rows, "--top", "2")
    assert code == 0, err
    shutil.move(tmp_path / "data", tmp_path / "elsewhere")
    code, after, err = fw(capsys, "predict", trained, rows, "--top", "2")
    assert code == 0, err
    assert after == before and len(after.splitlines()) == 120
    first = after.splitlines()[0].split()
    assert first[0] == f"{rows}:1" and first[1] in CLASSES and first[3:5] == ["top", "2:"]
    one_line_error(*fw(capsys, "run", trained), "CSV file not found", str(tmp_path / "data" / "iris.csv"))


def test_a_state_file_from_other_weights_is_refused(capsys, trained, tmp_path):
    state = tmp_path / "runs" / "w.dataset.json"
    saved = state.read_text()
    arrays = dict(np.load(tmp_path / "runs" / "w.npz"))
    arrays["b1"] = arrays["b1"] + 1  # weights from another run (dense layers: the book's W1, b1, ... layout)
    np.savez(tmp_path / "runs" / "w.npz", **arrays)
    one_line_error(*fw(capsys, "predict", trained, tmp_path / "data" / "iris.csv"), str(state), "other weights")
    state.write_text(saved.replace('"class_names"', '"class_nams"'))
    one_line_error(*fw(capsys, "run", trained), str(state), "not a readable dataset state")


def test_normalize_standardises_with_the_train_part_and_never_divides_by_255(tmp_path):
    x, _ = make_csv(tmp_path / "iris.csv")
    cfg = fw_api.load_config(config(tmp_path, "{name: csv, path: iris.csv, label: species}"))
    train, test = (fw_api.api.load_split(cfg, s) for s in ("train", "test"))
    assert np.allclose(train[0].mean(axis=0), 0, atol=1e-6) and np.allclose(train[0].std(axis=0), 1, atol=1e-5)
    dataset = make_dataset(cfg, fw_api.get_registry())
    raw_train, _ = dataset.examples("train")
    raw_test, _ = dataset.examples("test")
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    assert np.allclose(test[0], (raw_test - mean) / std, atol=1e-5)  # the train part's statistics, not the test's
    cfg.dataset.normalize = False
    assert np.array_equal(fw_api.api.load_split(cfg, "test")[0], raw_test.astype(np.float32))  # raw, not /255
    assert raw_test.max() > 90


def test_the_hold_out_is_stratified_seeded_and_test_path_replaces_it(tmp_path):
    make_csv(tmp_path / "iris.csv", n=300)
    registry = fw_api.get_registry()

    def labels(*overrides):
        cfg = fw_api.load_config(config(tmp_path, "{name: csv, path: iris.csv, label: species}"), list(overrides))
        return make_dataset(cfg, registry).examples("test")

    (_, t), (_, again) = labels(), labels()
    assert np.bincount(t).tolist() == [20, 20, 20] and np.array_equal(t, again)
    rows = labels()[0]
    assert not np.array_equal(rows, labels("dataset.seed=1")[0])
    assert len(labels("dataset.test_fraction=0.5")[1]) == 150
    make_csv(tmp_path / "other.csv", n=30, seed=5)
    x, t = labels(f"dataset.test_path={tmp_path / 'other.csv'}")
    assert len(t) == 30 and np.bincount(t).tolist() == [10, 10, 10]


def test_whole_number_labels_sort_as_numbers(tmp_path):
    make_csv(tmp_path / "t.csv", labels=(10, 2, 1))
    ds = CSVDataset(path=str(tmp_path / "t.csv"), label="species")
    assert ds.class_names == ("1", "2", "10") and ds.num_classes == 3


def test_limit_takes_a_seeded_shuffle_of_the_training_rows_and_fw_run_of_its_split(capsys, tmp_path):
    make_csv(tmp_path / "iris.csv", n=300)
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species, limit: 30}")
    loaded = fw_api.load_config(cfg)
    trainer = Trainer(loaded)
    (x, t), (x_test, t_test) = load_training_data(loaded, fw_api.get_registry(), trainer.dataset)
    assert len(x) == 30 and len(x_test) == 60  # the test split is reported in full
    everything, _ = fw_api.api.load_split(fw_api.load_config(cfg, ["dataset.limit=null"]), "train")
    assert not np.array_equal(x, everything[:30])  # shuffled first
    assert np.array_equal(x, fw_api.api.load_split(loaded, "train")[0])  # seeded: the same 30 every time
    assert fw(capsys, "train", cfg)[0] == 0
    code, out, _ = fw(capsys, "run", cfg, "--json")
    assert code == 0 and json.loads(out)["total"] == 30


def test_report_and_show_name_the_classes_and_show_prints_rows(capsys, trained):
    code, out, _ = fw(capsys, "run", trained, "--report")
    assert code == 0 and all(name in out for name in CLASSES)
    code, out, _ = fw(capsys, "show", trained, "--count", "3")
    assert code == 0
    summary, rows = out.split("csv test:")
    assert summary.startswith("preparation (fitted on the training part; 4 network inputs):")
    assert all(f"  {name}" in summary for name in FEATURES)
    lines = ("csv test:" + rows).splitlines()
    assert lines[0] == "csv test: rows 0 to 2 of 24"
    assert lines[1].split() == ["row", "class", *FEATURES] and lines[2].split()[1] in CLASSES and len(lines) == 5
    code, out, _ = fw(capsys, "show", trained, "--misclassified")
    assert code == 0 and ("predicted" in out or out.startswith("no misclassified rows"))
    one_line_error(*fw(capsys, "show", trained, "--out", "x.png"), "fw show draws images", "prints")


@pytest.mark.parametrize(
    "row, fragments",
    [
        (
            "a,1,2,3,setosa",
            [
                "column 'sepal_length' holds a different value in 96 of its 96 training rows, like an id",
                "dataset.columns: {sepal_length: ignore}",
            ],
        ),  # a column of names
        ("1,2,3,setosa", ["row 61 (line 62) has 4 values, but the header names 5 columns"]),
        (
            "1,2,x7,3,setosa",
            [
                "row 61 (line 62), column 'petal_length': 'x7' is not a number, and the column is numeric",
                "dataset.columns: {petal_length: categorical}",
            ],
        ),
        ("1,2,inf,3,setosa", ["row 61 (line 62), column 'petal_length': 'inf' is not a finite number"]),
        ("1,2,3,4,", ["row 61 (line 62), column 'species': the value is missing"]),
    ],
)
def test_a_bad_table_is_one_line_naming_the_row_and_column(capsys, tmp_path, row, fragments):
    make_csv(tmp_path / "iris.csv")
    lines = (tmp_path / "iris.csv").read_text().splitlines()
    if row.startswith("a,"):
        lines = [lines[0]] + [f"a{i}" + line[line.index(",") :] for i, line in enumerate(lines[1:])]
    else:
        lines[61] = row
    (tmp_path / "iris.csv").write_text("\n".join(lines) + "\n")
    one_line_error(
        *fw(capsys, "run", config(tmp_path, "{name: csv, path: iris.csv, label: species}"), "weights=null"),
        str(tmp_path / "iris.csv"),
        *fragments,
    )


@pytest.mark.parametrize(
    "dataset, fragments",
    [
        (
            "{name: csv, path: iris.csv, lable: species}",
            [
                "dataset.lable: dataset 'csv' has no parameter 'lable'; did you mean 'dataset.label'?",
                "it accepts: path, label, features, test_fraction, test_path, seed, columns, fill",
                "name, split, normalize",
            ],
        ),
        (
            "{name: csv, path: iris.csv, label: specie}",
            ["dataset.label:", "has no column 'specie'; did you mean 'species'?"],
        ),
        (
            "{name: csv, path: iris.csv, label: species, features: [sepal_lenght]}",
            ["dataset.features:", "did you mean 'sepal_length'?"],
        ),
        ("{name: csv, path: iris.csv}", ["dataset.label: dataset 'csv' needs the name of its label column"]),
        (
            "{name: csv, path: iris.csv, label: species, test_fraction: 1}",
            ["dataset.test_fraction must be a number from 0"],
        ),
        ("{name: csv, path: iris.csv, label: species, limit: 0}", ["dataset.limit must be a positive whole number"]),
        (
            "{name: mnist, roott: /data}",
            ["dataset.roott: dataset 'mnist' has no parameter 'roott'; did you mean 'dataset.root'?"],
        ),
    ],
)
def test_dataset_keys_are_checked_against_the_chosen_dataset(capsys, tmp_path, dataset, fragments):
    make_csv(tmp_path / "iris.csv")
    one_line_error(*fw(capsys, "run", config(tmp_path, dataset), "weights=null"), *fragments)


def test_a_null_key_of_another_dataset_is_no_typo(capsys, tmp_path):
    """configs/mnist_infer.yaml switched to a CSV on the command line still holds root: null."""
    make_csv(tmp_path / "iris.csv")
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {name: mnist, root: null}\nmodel: {sizes: [4, 3]}\nweights: null\n")
    code, out, err = fw(
        capsys, "run", path, "dataset.name=csv", f"dataset.path={tmp_path / 'iris.csv'}", "dataset.label=species"
    )
    assert code == 0, err
    with pytest.raises(FwError, match="no parameter 'root'"):
        make_dataset(fw_api.load_config(path, ["dataset.name=csv", "dataset.root=/x"]), fw_api.get_registry())
