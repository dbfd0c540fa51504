"""Run records and fw compare: the table of final and best values, labels by the keys that differ, the PNG."""

import json
from pathlib import Path

import pytest

from framework.cli.compare import run_labels
from framework.training.record import Run

from test_cli import fw, one_line_error

CONFIG = """\
dataset: {{name: fashion_mnist, root: '{root}', limit: 600}}
model: {{sizes: [784, 16, 10], activation: relu}}
train:
  epochs: 3
  validation_fraction: 0.2
  lr_schedule: constant
  optimizer: {optimizer}
weights: {{importer: npz, format: npz, path: {name}/weights.npz}}
"""


@pytest.fixture
def two_runs(capsys, fashion_full_dir, tmp_path):
    """Two trained configs in tmp_path, differing in the optimizer only."""
    paths = []
    for name, optimizer in (("sgd", "{name: sgd, lr: 0.1}"), ("adam", "{name: adam, lr: 0.01}")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(CONFIG.format(root=fashion_full_dir, optimizer=optimizer, name=name))
        code, _, err = fw(capsys, "train", path)
        assert code == 0, err
        paths.append(path)
    return paths


def test_a_finished_train_leaves_its_resolved_config_and_its_json_lines(two_runs, capsys, tmp_path):
    folder = two_runs[0].parent / "sgd"
    assert sorted(p.name for p in folder.iterdir()) == [
        "weights.config.yaml", "weights.dataset.json", "weights.metrics.jsonl", "weights.npz"]  # fmt: skip
    lines = [json.loads(line) for line in (folder / "weights.metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2, 3] and "val_accuracy" in lines[0]
    # The record's config is complete: a copy trains the same run again (into the same folder, so --force).
    again = tmp_path / "again.yaml"
    again.write_bytes((folder / "weights.config.yaml").read_bytes())
    code, out, err = fw(capsys, "train", again, "--force", "--json")
    assert code == 0, err
    again = [json.loads(line) for line in out.splitlines()]
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in again] == [
        {k: v for k, v in e.items() if k != "seconds"} for e in lines
    ]


def test_fw_compare_prints_the_runs_side_by_side_and_draws_a_png(two_runs, capsys, tmp_path):
    out_png = tmp_path / "both.png"
    code, out, err = fw(capsys, "compare", *two_runs, "--out", out_png)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "final values; best val_accuracy over the epochs"
    assert lines[1].split()[:3] == ["run", "(train.optimizer)", "epochs"] and "best val_accuracy" in lines[1]
    assert lines[2].startswith("name=sgd, lr=0.1 ") and lines[3].startswith("name=adam, lr=0.01 ")
    assert f"curves written to {out_png}" in out
    data = out_png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

    from PIL import Image

    with Image.open(out_png) as image:
        assert image.width > 2 * image.height > 0  # two panels side by side


def test_fw_compare_json_has_final_and_best_values_per_run(two_runs, capsys, tmp_path):
    code, out, err = fw(capsys, "compare", two_runs[0].parent / "sgd", two_runs[1].parent / "adam" / "weights.metrics.jsonl",
                        "--metric", "train_loss", "--json", "--out", tmp_path / "loss.png")  # fmt: skip
    assert code == 0, err
    table = json.loads(out)
    assert table["metric"] == "train_loss" and table["differ_in"] == "train.optimizer"
    sgd, adam = table["runs"]
    assert sgd["label"] == "name=sgd, lr=0.1" and sgd["epochs"] == 3
    records = [json.loads(line) for line in (two_runs[0].parent / "sgd" / "weights.metrics.jsonl").read_text().splitlines()]
    assert sgd["final"]["train_loss"] == records[-1]["train_loss"]
    best = min(records, key=lambda e: e["train_loss"])
    assert sgd["best"]["train_loss"] == {"value": best["train_loss"], "epoch": best["epoch"]}
    assert max(r["val_accuracy"] for r in records) == sgd["best"]["val_accuracy"]["value"]
    assert "curves written to" in err


def test_a_config_that_never_finished_training_says_so(capsys, tmp_path, two_runs):
    lone = tmp_path / "lone.yaml"
    lone.write_text("weights: {importer: npz, path: lone/w.npz}\n")
    one_line_error(*fw(capsys, "compare", two_runs[0], lone), f"{lone} has no finished run", f"fw train {lone}")
    one_line_error(*fw(capsys, "compare", *two_runs, "--metric", "val_acc"), "--metric val_acc: not in the run record")
    one_line_error(*fw(capsys, "compare", "'ch6_nothing_*'"), "matches no file here and no bundled config")


def test_layer_lists_of_different_lengths_are_labelled_by_what_sets_them_apart():
    def run(name, layers, **train):
        return Run(Path(name), {"model": {"layers": layers}, "train": {"optimizer": {"name": "sgd", **train}},
                                "weights": {"path": f"{name}/w.npz"}}, [])  # fmt: skip

    plain = [{"name": "dense", "units": 100}, "relu", {"name": "dense", "units": 10}, "softmax"]
    bn = [{"name": "dense", "units": 100}, "batch_norm", "relu", {"name": "dense", "units": 10}, "softmax"]
    drop = [{"name": "dense", "units": 100}, "relu", {"name": "dropout", "rate": 0.2}, {"name": "dense", "units": 10}, "softmax"]
    assert run_labels([run("a", plain), run("b", bn)]) == ("model", ["layers without batch_norm", "layers with batch_norm"])
    prefix, labels = run_labels([run("a", plain), run("b", plain, weight_decay=0.1), run("c", drop)])
    assert prefix == "" and labels == [
        "model.layers without dropout(rate=0.2)",
        "model.layers without dropout(rate=0.2), train.optimizer.weight_decay=0.1",
        "model.layers with dropout(rate=0.2)",
    ]
    assert run_labels([run("a", plain), run("b", plain)]) == ("", ["a", "b"]), "the same config twice: the folder names"
