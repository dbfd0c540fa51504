"""Tables as they come: words and blanks in csv, the preparation fitted on the train part, saved with
the weights, and applied to raw rows by fw predict."""

import json

import numpy as np
import pytest

import framework as fw_api
import framework.api
from own_data import config, make_csv
from test_cli import fw, one_line_error

COLORS, CITIES = ("red", "green", "blue"), ("Paris", "Oslo", "Rome", "Lima")
HEADER = "size,color,city,year,weight,kind"


def make_messy(path, n=300, seed=0):
    """A table as people have them: words, blanks spelled three ways, a numeric-looking year; the
    class is told by color and size. Returns the rows as (size, color, city, year, weight, kind) texts."""
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 3, n)
    size = rng.normal(size=n) * 5 + 50
    kind = (color + (size > 50)) % 3
    rows = []
    for i in range(n):
        s = "" if i % 10 == 3 else f"{size[i]:.3f}"
        c = ("", "NA")[i % 2] if i % 11 == 5 else COLORS[color[i]]
        city = "NaN" if i % 20 == 7 else CITIES[rng.integers(0, 4)]
        rows.append([s, c, city, str(2019 + i % 4), f"{rng.normal() * 3 + 70:.2f}", "abc"[kind[i]]])
    path.write_text("\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n")
    return rows


def messy_config(tmp_path, extra=""):
    make_messy(tmp_path / "messy.csv")
    return config(tmp_path, "{name: csv, path: messy.csv, label: kind" + extra + "}", epochs=40)


def test_a_table_with_words_and_blanks_trains_with_only_dataset_keys_and_predicts_raw_rows(capsys, tmp_path):
    cfg = messy_config(tmp_path)
    code, out, err = fw(capsys, "train", cfg)
    assert code == 0, err
    summary = out[out.index("preparation (fitted on the training part; 12 network inputs):") :]
    lines = {line.split()[0]: line for line in summary.splitlines()[2:7]}
    assert lines["size"].split()[1:4] == ["numeric", "25", "median"]  # 30 blanks, 25 of them in the train part
    assert (
        "categorical" in lines["color"]
        and "its own category" in lines["color"]
        and "(blank), blue, green, red" in lines["color"]
    )
    assert "5: (blank), Lima, Oslo, Paris, Rome" in lines["city"]
    assert lines["year"].split()[1] == "numeric" and lines["weight"].split()[2] == "0"
    code, out, err = fw(capsys, "run", cfg, "--json")
    assert code == 0 and json.loads(out)["accuracy"] >= 0.75, err
    code, shown, err = fw(capsys, "show", cfg, "--count", "60")
    assert code == 0 and shown.startswith(summary.split("Weights written")[0]), err  # fw show: the same preparation
    rows_shown = shown.splitlines()[-60:]
    assert any(line.split()[3] in COLORS for line in rows_shown) and any("(blank)" in line for line in rows_shown)
    rows = tmp_path / "new.csv"  # raw rows, columns in another order, no label: words, blanks, an unseen city
    rows.write_text("city,color,size,year,weight\nOslo,red,58.0,2020,71\nNA,,41.5,2021,69.5\nTokyo,blue,,2019,70\n")
    code, out, err = fw(capsys, "predict", cfg, rows, "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["class"] for r in records[:1]] == ["b"]  # red (0) and large: class 1
    assert "note" not in records[0] and "note" not in records[1]
    assert records[2]["note"] == "city: 'Tokyo' was not seen in training (encoded as unseen)"
    code, out, err = fw(capsys, "predict", cfg, rows)
    assert code == 0 and out.splitlines()[2].endswith(
        "note: city: 'Tokyo' was not seen in training (encoded as unseen)"
    )


def test_what_predict_feeds_the_network_is_the_training_preparation(tmp_path):
    """Raw rows read by fw predict's path are prepared exactly as the same rows were for training, and
    the fill is the train part's median, not the whole file's."""
    from framework.data.table import read_csv_file
    from framework.plugins.own_data import stratified_split

    cfg = fw_api.load_config(messy_config(tmp_path), ["weights=null"])
    _, dataset = fw_api.api.build(cfg)
    x, _ = fw_api.api.load_split(cfg, "train", dataset=dataset)
    assert x.shape == (240, 12) and np.isfinite(x).all()
    train_raw, _ = dataset.examples("train")
    size = dataset.preparation.columns[0]
    assert size["value"] == np.nanmedian(train_raw[:, 0]) != np.nanmedian(dataset.examples("test")[0][:, 0])
    table = read_csv_file(tmp_path / "messy.csv")
    y = np.array(["abc".index(k) for k in table.strings("kind")])
    train, _ = stratified_split(y, 0.2, 0)
    assert np.array_equal(dataset.prepare(dataset.examples_from_table(table))[train], x)


def test_types_and_fills_are_inferred_and_can_be_overridden(capsys, tmp_path):
    cfg = messy_config(
        tmp_path, ", columns: {year: categorical, city: ignore}, fill: {numeric: mean, color: most_frequent}"
    )
    net, dataset = fw_api.api.build(fw_api.load_config(cfg, ["weights=null"]))
    prep = dataset.preparation
    by_name = {c["name"]: c for c in prep.columns}
    assert list(by_name) == ["size", "color", "year", "weight"]
    assert by_name["year"]["type"] == "categorical" and by_name["year"]["categories"] == [
        "2019",
        "2020",
        "2021",
        "2022",
    ]
    raw, _ = dataset.examples("train")
    sizes = raw[:, 0]
    assert by_name["size"]["fill"] == "mean" and by_name["size"]["value"] == pytest.approx(np.nanmean(sizes))
    assert by_name["color"]["categories"] == ["blue", "green", "red"]  # no blank category: the most frequent fills
    assert prep.width == 1 + 3 + 4 + 1 and net.input_shape == (9,)
    one_line_error(
        *fw(capsys, "run", cfg, "weights=null", "dataset.columns.size=words"),
        "dataset.columns must map column names to",
    )
    one_line_error(
        *fw(capsys, "run", cfg, "weights=null", "dataset.fill.numeric=zero"),
        "dataset.fill: 'zero' for numeric column 'size'",
    )
    one_line_error(
        *fw(capsys, "run", cfg, "weights=null", "dataset.fill.colour=missing"),
        "dataset.fill:",
        "no column 'colour'; did you mean 'color'?",
    )


def test_an_id_like_column_is_refused_in_one_line_naming_it_and_how_to_leave_it_out(capsys, tmp_path):
    rows = make_messy(tmp_path / "messy.csv")
    lines = ["name," + HEADER, *(f"person {i}," + ",".join(r) for i, r in enumerate(rows))]
    (tmp_path / "messy.csv").write_text("\n".join(lines) + "\n")
    cfg = config(tmp_path, "{name: csv, path: messy.csv, label: kind}")
    one_line_error(
        *fw(capsys, "run", cfg, "weights=null"),
        "column 'name' holds a different value in 240 of its 240 training rows, like an id or a name",
        "leave it out with dataset.columns: {name: ignore}",
    )
    code, _, err = fw(capsys, "run", cfg, "weights=null", "dataset.columns.name=ignore")
    assert code == 0, err


def test_a_dataset_json_from_the_release_before_still_loads_and_gives_the_same_numbers(capsys, tmp_path):
    make_csv(tmp_path / "iris.csv")
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species}")
    assert fw(capsys, "train", cfg)[0] == 0
    state_file = tmp_path / "runs" / "w.dataset.json"
    record = json.loads(state_file.read_text())
    state = record["state"]
    mean, std = np.array(state["mean"]), np.array(state["std"])
    del state["columns"]  # the release before wrote class_names, shape, pixels, features, mean, std
    state_file.write_text(json.dumps(record))
    rows = tmp_path / "iris.csv"
    code, out, err = fw(capsys, "predict", cfg, rows, "--json")
    assert code == 0, err
    net, _ = fw_api.api.build(fw_api.load_config(cfg))
    assert "columns" not in json.loads(state_file.read_text())["state"]
    raw = np.loadtxt(rows, delimiter=",", skiprows=1, usecols=range(4))
    y = net.predict(((raw - mean) / std).astype(np.float32))
    got = np.array([r["probability"] for r in map(json.loads, out.splitlines())])
    assert np.allclose(got, y.max(axis=1), atol=1e-6)


@pytest.mark.parametrize(
    "columns, said",
    [
        ("[]", "columns must be a non-empty list"),
        ('[{"name": "x", "type": "numeric", "mean": 0, "std": 0}]', "columns[0].std must be positive"),
        (
            '[{"name": "x", "type": "categorical", "categories": ["a", "a"]}]',
            "columns[0].categories must be a list of distinct",
        ),
        ('[{"name": "x", "type": "words"}]', "columns[0].type must be numeric or categorical"),
        (
            '[{"name": "sepal_length", "type": "categorical", "categories": ["a", "b"]}]',
            "columns make 2 inputs of sepal_length",
        ),
    ],
)
def test_a_hand_edited_preparation_is_one_line_naming_the_file(capsys, tmp_path, columns, said):
    make_csv(tmp_path / "iris.csv")
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species}", epochs=1)
    assert fw(capsys, "train", cfg)[0] == 0
    state_file = tmp_path / "runs" / "w.dataset.json"
    record = json.loads(state_file.read_text())
    record["state"]["columns"] = json.loads(columns)
    state_file.write_text(json.dumps(record))
    one_line_error(*fw(capsys, "predict", cfg, tmp_path / "iris.csv"), str(state_file), said, "run fw train again")


def test_a_row_far_outside_the_training_data_is_answered_with_a_note(capsys, tmp_path):
    make_csv(tmp_path / "iris.csv")
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species}", epochs=5)
    assert fw(capsys, "train", cfg)[0] == 0
    _, dataset = fw_api.api.build(fw_api.load_config(cfg))
    width = dataset.preparation.columns[2]
    low, high, std = width["low"], width["high"], width["std"]
    far = high + 12 * std
    rows = tmp_path / "new.csv"
    rows.write_text(
        "petal_width,petal_length,sepal_width,sepal_length\n100,70,40,10\n"
        f"100,{high + 9 * std},40,10\n100,{far},40,10\n"
    )
    code, out, err = fw(capsys, "predict", cfg, rows, "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert "note" not in records[0] and "note" not in records[1]  # 9 standard deviations out: no note
    assert records[2]["note"] == (
        f"petal_length: {far:.6g} is 12 standard deviations outside the training range {low:.6g}..{high:.6g}"
    )
    assert records[2]["class"] in ("setosa", "versicolor", "virginica")
    code, out, err = fw(capsys, "predict", cfg, rows)
    assert code == 0 and "note: petal_length:" in out.splitlines()[2] and "note" not in out.splitlines()[1]
