"""fw sweep off the bundled path: own datasets (no dataset.root),
KEY=VALUE overrides, study names, bad --storage URLs."""

import contextlib
import hashlib
import json
import os
import subprocess
import sys

import pytest

from own_data import make_csv, make_image_folder, make_npz
from test_cli import fw, one_line_error

pytestmark = pytest.mark.slow

optuna = pytest.importorskip("optuna", reason="the test extra installs optuna")

SWEEP = """\
dataset: {dataset}
model:
  layers: [{{name: dense, units: 8}}, relu, {{name: dense, units: {classes}}}, softmax]
train: {{epochs: 3, batch_size: 16, validation_fraction: 0.2, optimizer: {{name: adam, lr: 0.01}}}}
weights: {{importer: npz, format: npz, path: runs/w.npz}}
sweep:
  metric: val_accuracy
  sampler: random
  pruner: none
  params:
    train.optimizer.lr: {{low: 0.001, high: 0.1, log: true}}
"""


def own_config(tmp_path, dataset, classes=3):
    path = tmp_path / "own.yaml"
    path.write_text(SWEEP.format(dataset=dataset, classes=classes))
    return path


def csv_config(tmp_path):
    make_csv(tmp_path / "iris.csv")
    return own_config(tmp_path, "{name: csv, path: iris.csv, label: species}")


def load_study(tmp_path, name="own"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'runs' / 'sweep.db'}")


@pytest.mark.parametrize("kind", ["csv", "arrays", "image_folder", "fashion_mnist"])
def test_a_config_without_dataset_root_is_swept_with_an_override(capsys, tmp_path, monkeypatch, kind, request):
    if kind == "csv":
        path = csv_config(tmp_path)
    elif kind == "arrays":
        make_npz(tmp_path / "data.npz")
        path = own_config(tmp_path, "{name: arrays, path: data.npz}")
    elif kind == "image_folder":
        make_image_folder(tmp_path / "photos", per_class=10)
        path = own_config(tmp_path, "{name: image_folder, path: photos, size: [6, 6]}")
    else:  # written by hand: no root, the data found in $FW_DATA_DIR
        monkeypatch.setenv("FW_DATA_DIR", str(request.getfixturevalue("fashion_full_dir").parent))
        path = own_config(tmp_path, "{name: fashion_mnist, split: test, limit: 300}", classes=10)
    monkeypatch.chdir(tmp_path)
    code, out, err = fw(capsys, "sweep", path, "train.epochs=2", "model.layers[0].units=5", "--trials", 2, "--json")
    assert code == 0, err
    trials = load_study(tmp_path).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(len(t.intermediate_values) == 2 for t in trials), "2 epochs each: the override"
    best = json.loads(out)["best_config"]
    assert best["train"]["epochs"] == 2 and best["model"]["layers"][0]["units"] == 5, "best.yaml carries the overrides"
    best_yaml = (tmp_path / "runs" / "own" / "best.yaml").read_text()
    assert "fw sweep " in best_yaml and "train.epochs=2 'model.layers[0].units=5'" in best_yaml.splitlines()[0]
    code, out, err = fw(capsys, "train", tmp_path / "runs" / "own" / "best.yaml", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["val_accuracy"] == load_study(tmp_path).best_value
    assert len(out.splitlines()) == 2, "trained again with the override's 2 epochs"


def test_overrides_are_part_of_the_studys_fingerprint(capsys, tmp_path, monkeypatch):
    path = csv_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert fw(capsys, "sweep", path, "train.epochs=1", "--trials", 1)[0] == 0
    one_line_error(
        *fw(capsys, "sweep", path, "train.epochs=2", "--trials", 1),
        "study 'own'",
        "holds trials of another config",
        "train.epochs differ",
    )
    one_line_error(
        *fw(capsys, "sweep", path, "train.epochs=1", "dataset.path=other.csv", "--trials", 1), "dataset.path differ"
    )
    assert fw(capsys, "sweep", path, "train.epochs=1", "--trials", 1)[0] == 0, "the same overrides add to the study"
    assert len(load_study(tmp_path).get_trials()) == 2
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "iris.csv").rename(moved / "iris.csv")  # the same data in another folder, as on another machine
    assert fw(capsys, "sweep", path, "train.epochs=1", f"dataset.path={moved / 'iris.csv'}", "--trials", 1)[0] == 0
    assert len(load_study(tmp_path).get_trials()) == 3


def test_own_csv_config_with_an_override_two_jobs_on_sqlite(tmp_path):
    """The issue's bar: fw sweep on an own CSV config, with an override, two trial processes on one SQLite study."""
    path = csv_config(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "framework.cli", "sweep", path, "train.epochs=2", "--trials", "4", "--jobs", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ},
    )
    assert run.returncode == 0, run.stderr
    assert "4 more, 2 at a time" in run.stderr and "4 trials in " in run.stdout
    trials = load_study(tmp_path).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] and {t.state.name for t in trials} == {"COMPLETE"}
    assert all(len(t.intermediate_values) == 2 for t in trials), "every process trained with the override"
    assert "  epochs: 2\n" in (tmp_path / "runs" / "own" / "best.yaml").read_text()


@pytest.mark.parametrize("name", ["../x", "ABS", "a/b", "..", ".", "", "a\\b", "tab\there"])
def test_a_study_name_is_a_name_not_a_path(capsys, tmp_path, monkeypatch, name):
    path = csv_config(tmp_path)
    name = str(tmp_path / "abs" / "x") if name == "ABS" else name
    monkeypatch.chdir(tmp_path)
    one_line_error(*fw(capsys, "sweep", path, "--study", name), "--study", "a study's name is a name, not a path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv", "own.yaml"], "nothing written anywhere"


def a_text_file(path):  # like /etc/passwd
    path.write_bytes(b"root:x:0:0:root:/root:/bin/bash\nfw:x:1000:1000::/home/fw:/bin/sh\n")


def another_apps_database(path):
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE contacts (name TEXT)")
        db.execute("INSERT INTO contacts VALUES ('Ann')")
        db.commit()


def a_damaged_database(path):
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 4)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (a_text_file, "is not a SQLite database"),
        (
            another_apps_database,
            "is a SQLite database of something else (tables contacts), and fw sweep would add its tables",
        ),
        (a_damaged_database, "looks like a SQLite database but cannot be read"),
    ],
)
def test_a_users_file_is_refused_and_left_alone(capsys, tmp_path, monkeypatch, make, fragment):
    path = tmp_path / "mine"
    make(path)
    digest, mtime = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    monkeypatch.chdir(tmp_path)
    for storage in (f"sqlite:///{path}", "sqlite:///mine"):
        one_line_error(
            *fw(capsys, "sweep", csv_config(tmp_path), "--storage", storage), f"mine {fragment}", "give a new file name"
        )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv", "mine", "own.yaml"], "no lock, journal or runs/"


@pytest.mark.parametrize(
    "storage, fragments",
    [
        ("sqlite:///", ["names no file", "in memory"]),
        ("sqlite://", ["names no file", "in memory"]),
        ("sqlite:///:memory:", ["names no file"]),
        ("sqlite:////proc/fw-sweep.db", ["/proc/fw-sweep.db is inside /proc"]),
        ("sqlite:////proc/self/status", ["/proc/self/status is inside /proc"]),
        ("sqlite:////dev/null", ["/dev/null is inside /dev"]),
        ("sqlite:///TMP", ["is a folder; give a file in it"]),
        ("sqlite:///TMP/iris.csv/sweep.db", ["iris.csv is not a folder"]),
        ("foo://db.example.org/x", ["--storage foo://db.example.org/x: SQLAlchemy knows no database 'foo'"]),
        ("postgres://u@h/x", ["SQLAlchemy knows no database 'postgres'; PostgreSQL's is postgresql://"]),
        ("postgresql+nodriver://h/x", ["knows no database 'postgresql+nodriver'"]),
        ("not a url", ["--storage not a url: not a database URL"]),
        (
            "mysql+pymysql://u:secret@127.0.0.1:9/db",
            ["its driver, pymysql, is not installed; pip install pymysql", "u:***@"],
        ),
    ],
)
def test_a_storage_fw_cannot_use_is_one_line(capsys, tmp_path, monkeypatch, storage, fragments):
    monkeypatch.setitem(sys.modules, "pymysql", None)  # not installed, whatever this machine has
    path = csv_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = fw(capsys, "sweep", path, "--storage", storage.replace("TMP", str(tmp_path)))
    one_line_error(code, out, err, *fragments)
    assert "secret" not in err, "the password is not printed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv", "own.yaml"], "nothing written"


def test_a_best_yaml_fw_did_not_write_is_refused_before_any_trial(capsys, tmp_path, monkeypatch):
    """Issue 26, 4.1: fw never replaces a file it did not write; the study's best.yaml is one of its names."""
    path = csv_config(tmp_path)
    (tmp_path / "runs" / "own").mkdir(parents=True)
    mine = tmp_path / "runs" / "own" / "best.yaml"
    mine.write_text("# my own notes\nlr: 0.1\n")
    monkeypatch.chdir(tmp_path)
    one_line_error(*fw(capsys, "sweep", path, "--trials", "1"), f"{mine} exists and fw sweep did not write it")
    assert mine.read_text() == "# my own notes\nlr: 0.1\n"
    assert sorted(p.name for p in mine.parent.iterdir()) == ["best.yaml"], "no trial ran"
