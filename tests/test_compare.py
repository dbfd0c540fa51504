"""Run records and fw compare: the table of final and best values, labels by the keys that differ, the PNG."""

import json
from pathlib import Path

import numpy as np
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


@pytest.mark.slow
def test_a_finished_train_leaves_its_resolved_config_and_its_json_lines(two_runs, capsys, tmp_path):
    folder = two_runs[0].parent / "sgd"
    assert sorted(p.name for p in folder.iterdir()) == [
        "weights.config.yaml",
        "weights.dataset.json",
        "weights.metrics.jsonl",
        "weights.npz",
    ]
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


@pytest.mark.slow
def test_fw_compare_prints_the_runs_side_by_side_and_draws_a_png(two_runs, capsys, tmp_path):
    out_png = tmp_path / "both.png"
    code, out, err = fw(capsys, "compare", *two_runs, "--out", out_png)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "final values; best val_accuracy over the epochs"
    assert lines[1].split()[:2] == ["epochs", "train_loss"]
    assert lines[1].endswith("best val_accuracy  run (differ in train.optimizer)")
    assert lines[2].endswith("  name=sgd, lr=0.1") and lines[3].endswith("  name=adam, lr=0.01")
    assert f"curves written to {out_png}" in out
    data = out_png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

    from PIL import Image

    with Image.open(out_png) as image:
        assert image.width > 2 * image.height > 0  # two panels side by side


@pytest.mark.slow
def test_fw_compare_json_has_final_and_best_values_per_run(two_runs, capsys, tmp_path):
    code, out, err = fw(
        capsys,
        "compare",
        two_runs[0].parent / "sgd",
        two_runs[1].parent / "adam" / "weights.metrics.jsonl",
        "--metric",
        "train_loss",
        "--json",
        "--out",
        tmp_path / "loss.png",
    )
    assert code == 0, err
    table = json.loads(out)
    assert table["metric"] == "train_loss" and table["differ_in"] == "train.optimizer"
    sgd, adam = table["runs"]
    assert sgd["label"] == "name=sgd, lr=0.1" and sgd["epochs"] == 3
    records = [
        json.loads(line) for line in (two_runs[0].parent / "sgd" / "weights.metrics.jsonl").read_text().splitlines()
    ]
    assert sgd["final"]["train_loss"] == records[-1]["train_loss"]
    best = min(records, key=lambda e: e["train_loss"])
    assert sgd["best"]["train_loss"] == {"value": best["train_loss"], "epoch": best["epoch"]}
    assert max(r["val_accuracy"] for r in records) == sgd["best"]["val_accuracy"]["value"]
    assert "curves written to" in err


@pytest.mark.slow
def test_a_config_that_never_finished_training_says_so(capsys, tmp_path, two_runs):
    lone = tmp_path / "lone.yaml"
    lone.write_text("weights: {importer: npz, path: lone/w.npz}\n")
    one_line_error(*fw(capsys, "compare", two_runs[0], lone), f"{lone} has no finished run", f"fw train {lone}")
    one_line_error(*fw(capsys, "compare", *two_runs, "--metric", "val_acc"), "--metric val_acc: not in the run record")
    one_line_error(*fw(capsys, "compare", "'ch6_nothing_*'"), "matches no file here and no bundled config")


def test_layer_lists_of_different_lengths_are_labelled_by_what_sets_them_apart():
    def run(name, layers, **train):
        return Run(
            Path(name),
            {
                "model": {"layers": layers},
                "train": {"optimizer": {"name": "sgd", **train}},
                "weights": {"path": f"{name}/w.npz"},
            },
            [],
        )

    plain = [{"name": "dense", "units": 100}, "relu", {"name": "dense", "units": 10}, "softmax"]
    bn = [{"name": "dense", "units": 100}, "batch_norm", "relu", {"name": "dense", "units": 10}, "softmax"]
    drop = [
        {"name": "dense", "units": 100},
        "relu",
        {"name": "dropout", "rate": 0.2},
        {"name": "dense", "units": 10},
        "softmax",
    ]
    assert run_labels([run("a", plain), run("b", bn)]) == (
        "model",
        ["layers without batch_norm", "layers with batch_norm"],
    )
    prefix, labels = run_labels([run("a", plain), run("b", plain, weight_decay=0.1), run("c", drop)])
    assert prefix == "" and labels == [
        "layers without dropout(rate=0.2)",
        "layers without dropout(rate=0.2), weight_decay=0.1",
        "layers with dropout(rate=0.2)",
    ]
    assert run_labels([run("a", plain), run("b", plain)]) == ("", ["a", "b"]), "the same config twice: the folder names"


# -- readable with many differences: short labels, 4 significant digits, the legend outside, no warnings ---------


def record(folder, config, epochs):
    """A run record as fw train leaves it: ``w.config.yaml`` (with fw's marker line) and ``w.metrics.jsonl``."""
    import yaml

    folder.mkdir(parents=True)
    marker = "# The resolved config of: fw train x.yaml\n"
    (folder / "w.config.yaml").write_text(marker + yaml.safe_dump(config, sort_keys=False))
    lines = [
        {
            "epoch": e,
            "train_loss": 1.0 / e + 0.0123456,
            "train_accuracy": 0.8 + e / 100,
            "val_loss": 0.5,
            "val_accuracy": 0.7 + e / 50,
            "test_accuracy": 0.75,
            "seconds": 1.0,
            "lr": 0.1,
        }
        for e in range(1, epochs + 1)
    ]
    (folder / "w.metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return folder


def config(**changes):
    """A resolved config; ``changes`` replace its sections' keys (``train={"epochs": 10}``)."""
    cfg = {
        "dataset": {"name": "fashion_mnist", "normalize": True, "root": "/data/a"},
        "model": {
            "layers": [
                {"name": "dense", "units": 256},
                "relu",
                {"name": "dropout", "rate": 0.2},
                {"name": "dense", "units": 10},
                {"name": "dropout", "rate": 0.2},
                "softmax",
            ],
            "seed": 0,
        },
        "train": {
            "epochs": 15,
            "batch_size": 100,
            "seed": 0,
            "lr_schedule": "flat_cosine",
            "optimizer": {"name": "adam", "lr": 0.001},
        },
        "weights": {"path": "w.npz"},
    }
    for section, keys in changes.items():
        cfg[section] = {**cfg[section], **keys}
    return cfg


@pytest.fixture
def far_apart(tmp_path):
    """Two runs that differ in twelve keys, as two trials of a sweep do, and in where they are."""
    layers = config()["model"]["layers"]
    layers = [
        {"name": "dense", "units": 512},
        layers[1],
        {"name": "dropout", "rate": 0.3},
        layers[3],
        {"name": "dropout", "rate": 0.25},
        layers[5],
    ]
    other = config(
        dataset={"normalize": False, "root": "/data/b"},
        model={"layers": layers, "seed": 3},
        train={
            "epochs": 10,
            "seed": 3,
            "lr_schedule": "cosine",
            "batch_size": 50,
            "optimizer": {"name": "sgd", "lr": 0.004043878009515107, "weight_decay": 1.2345678e-05},
        },
    )
    return record(tmp_path / "adam_run", config(), 15), record(tmp_path / "sgd_run", other, 10)


def test_labels_name_the_keys_that_differ_by_their_last_part_when_that_is_unambiguous(far_apart):
    assert run_labels_of(far_apart) == [
        "normalize=true, units=256, layers[2].rate=0.2, layers[4].rate=0.2, model.seed=0, epochs=15, batch_size=100, "
        "train.seed=0, lr_schedule=flat_cosine, name=adam, lr=0.001",
        "normalize=false, units=512, layers[2].rate=0.3, layers[4].rate=0.25, model.seed=3, epochs=10, batch_size=50, "
        "train.seed=3, lr_schedule=cosine, name=sgd, lr=0.004044, weight_decay=1.235e-05",
    ]


def test_the_table_keeps_its_numbers_in_line_to_4_significant_digits_and_the_labels_last(far_apart, capsys, tmp_path):
    code, out, err = fw(capsys, "compare", *far_apart, "--out", tmp_path / "c.png")
    assert code == 0, err
    *lines, written = out.splitlines()
    assert written.startswith("curves written to")
    head = lines[1]
    assert head.split("  ") == [
        "epochs",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "test_accuracy",
        "best val_accuracy",
        "run",
    ]
    at = head.index("run")
    rows = [i for i, line in enumerate(lines) if line[:at].strip()][2:]  # a row's first line; its label goes on below
    assert len(rows) == 2 and max(map(len, lines)) <= at + 80
    adam = lines[rows[0] : rows[1]]
    assert adam[0].split()[:3] == ["15", "0.07901", "0.9500"]  # 4 significant digits, trailing zeros kept
    assert lines[rows[1]].split()[:3] == ["10", "0.1123", "0.9000"]
    assert " ".join(line[at:] for line in adam) == run_labels_of(far_apart)[0]
    assert lines[rows[1]][at:].startswith("normalize=false")


def run_labels_of(folders):
    from framework.training import record as records

    return run_labels([records.read(*records.in_folder(folder)) for folder in folders])[1]


@pytest.mark.slow
def test_the_png_draws_without_a_warning_and_nothing_runs_off_its_edge(far_apart, tmp_path):
    """Run with -W error::UserWarning: matplotlib's 'Tight layout not applied' once made fw compare fail there."""
    import subprocess
    import sys

    from PIL import Image

    out_png = tmp_path / "c.png"
    command = [
        sys.executable,
        "-W",
        "error::UserWarning",
        "-m",
        "framework.cli",
        "compare",
        *far_apart,
        "--out",
        out_png,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Warning" not in done.stderr, done.stderr
    with Image.open(out_png) as image:
        dark = np.asarray(image.convert("L")) < 128  # text and lines
    assert dark.any() and not (dark[:, -2:].any() or dark[-2:, :].any()), "text runs off the right or bottom edge"


def test_the_legend_is_outside_the_panels_and_inside_the_picture(far_apart, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from framework.cli import compare
    from framework.training import record as records

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure draw() made, to measure it
    runs = [records.read(*records.in_folder(folder)) for folder in far_apart]
    prefix, labels = run_labels(runs)
    compare.draw(runs, labels, "val_accuracy", prefix, tmp_path / "c.png", required=True)
    [fig] = figures
    renderer = fig.canvas.get_renderer()
    [legend] = fig.legends
    box = legend.get_window_extent(renderer)
    assert all(" ".join(t.get_text().split("\n")) == label for t, label in zip(legend.get_texts(), labels))
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), "the legend covers no panel"
        assert box.y1 < ax.get_tightbbox(renderer).y0, "the legend is under the panels"
    saved = fig.get_tightbbox(renderer)  # in inches; bbox_inches="tight" saves this much of the figure
    inches = box.transformed(fig.dpi_scale_trans.inverted())
    assert saved.x0 <= inches.x0 and inches.x1 <= saved.x1 and saved.y0 <= inches.y0, "the legend is in the picture"


def test_json_writes_no_png_unless_out_is_given(far_apart, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = fw(capsys, "compare", *far_apart, "--json")
    assert code == 0, err
    assert not list(tmp_path.glob("*.png")) and "curves written" not in err
    assert json.loads(out)["runs"][1]["label"].endswith("lr=0.004044, weight_decay=1.235e-05")
    code, out, err = fw(capsys, "compare", *far_apart, "--json", "--out", "mine.png")
    assert code == 0 and (tmp_path / "mine.png").is_file() and "curves written to mine.png" in err
