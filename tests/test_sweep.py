"""fw sweep on Optuna: two commands at once on one SQLite study,
best.yaml trained again, pruning, divergence, errors."""

import json
import os
import subprocess
import sys

import pytest

from test_cli import fw, one_line_error

pytestmark = pytest.mark.slow

optuna = pytest.importorskip(
    "optuna", reason="the test extra installs optuna; without it fw sweep is tested by its error"
)

SWEEP = """\
# a small search
dataset: {{name: fashion_mnist, root: '{root}', limit: 600}}
model:
  layers: [{{name: dense, units: 16}}, relu, {{name: dense, units: 10}}, softmax]
train:
  epochs: 2
  validation_fraction: 0.2
  lr_schedule: constant
  optimizer: {{name: sgd, lr: 0.05}}
weights: {{importer: npz, format: npz, path: runs/w.npz}}
sweep:
{sweep}
"""

RANDOM = """\
  metric: val_accuracy
  sampler: random
  pruner: none
  params:
    train.optimizer.lr: {low: 0.01, high: 0.5, log: true}
    model.layers[0].units: [8, 16, 32]
"""


def config(tmp_path, root, sweep=RANDOM, name="search.yaml"):
    path = tmp_path / name
    path.write_text(SWEEP.format(root=root, sweep=sweep))
    return path


def fw_sweep(*argv, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "sweep", *map(str, argv)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


def test_two_sweeps_at_once_share_one_sqlite_study(fashion_full_dir, tmp_path, capsys):
    path = config(tmp_path, fashion_full_dir)
    first, second = (
        fw_sweep(path, "--trials", 3, "--json", cwd=tmp_path),
        fw_sweep(path, "--trials", 3, "--json", cwd=tmp_path),
    )
    outs = [p.communicate(timeout=600) for p in (first, second)]
    for p, (_, err) in zip((first, second), outs):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path / 'runs' / 'sweep.db'}")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(6)), "all six trials there, none lost or duplicated"
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
    for t in trials:  # each trial trained its own values, in its own folder, with its own run record
        record = tmp_path / "runs" / "search" / f"trial_{t.number}"
        assert sorted(p.name for p in record.iterdir()) == [
            "weights.config.yaml",
            "weights.metrics.jsonl",
            "weights.npz",
        ]
        trained = (record / "weights.config.yaml").read_text()
        assert (
            f"lr: {t.params['train.optimizer.lr']!r}" in trained
            and f"units: {t.params['model.layers[0].units']}" in trained
        )
        assert t.value == json.loads((record / "weights.metrics.jsonl").read_text().splitlines()[-1])["val_accuracy"]
    assert len({(t.params["train.optimizer.lr"]) for t in trials}) == 6, "the two commands drew different values"

    last = max(outs, key=lambda o: len(json.loads(o[0])["trials"]))
    result = json.loads(last[0])
    assert list(result) == ["best_value", "best_params", "best_config", "trials"]
    assert result["best_value"] == study.best_value and result["best_params"] == study.best_params
    assert [r["number"] for r in result["trials"]][0] == study.best_trial.number, "best first"

    best_yaml = tmp_path / "runs" / "search" / "best.yaml"
    assert f"trial {study.best_trial.number}, val_accuracy {study.best_value}\n" in best_yaml.read_text(), (
        "the study's best"
    )
    code, out, err = fw(capsys, "train", best_yaml, "--json")
    assert code == 0, err
    again = [json.loads(line) for line in out.splitlines()]
    assert again[-1]["val_accuracy"] == study.best_value, "best.yaml trains again to its recorded value"
    assert (tmp_path / "runs" / "search" / "best" / "weights.npz").is_file()


def test_another_command_adds_trials_and_a_diverging_trial_fails_while_the_sweep_goes_on(
    fashion_full_dir, tmp_path, capsys, monkeypatch
):
    grid = "  sampler: grid\n  pruner: none\n  params:\n    train.optimizer.lr: [0.05, 1.0e+12]\n"
    path = config(tmp_path, fashion_full_dir, grid)
    monkeypatch.chdir(tmp_path)
    code, out, err = fw(capsys, "sweep", path, "--trials", 2)
    assert code == 0, err
    assert "trial 0: " in err and "failed: training diverged" in err
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["trial", "state", "val_accuracy"]
    assert rows[1].split()[1] == "complete" and rows[2].split()[1] == "fail"
    assert "2 trials in " in out and "the study holds 2" in out
    code, out, err = fw(capsys, "sweep", path, "--trials", 1, "--json")
    assert code == 0, err
    assert len(json.loads(out)["trials"]) == 3, "a second command adds to the study"


def test_pruning_stops_trials_that_fall_behind(fashion_full_dir, tmp_path, capsys, monkeypatch):
    pruned = RANDOM.replace("pruner: none", "pruner: median").replace(
        "{low: 0.01, high: 0.5, log: true}", "{low: 1.0e-5, high: 0.5, log: true}"
    )
    # random, not tpe: lrs down to 1e-5 keep coming, and those trials fall behind the median after epoch 1
    path = config(tmp_path, fashion_full_dir, pruned)
    path.write_text(path.read_text().replace("limit: 600", "limit: 3000"))  # enough steps for lrs to tell apart
    monkeypatch.chdir(tmp_path)
    code, out, err = fw(capsys, "sweep", path, "--trials", 12, "--json")
    assert code == 0, err
    states = [t["state"] for t in json.loads(out)["trials"]]
    assert "pruned" in states and "complete" in states
    assert "pruned after epoch 1" in err


def test_jobs_runs_trials_in_separate_processes_on_one_storage(fashion_full_dir, tmp_path):
    path = config(tmp_path, fashion_full_dir)
    sweep = fw_sweep(path, "--trials", 3, "--jobs", 2, "--study", "parallel", cwd=tmp_path)
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err
    assert "3 more, 2 at a time" in err and "3 trials in " in out
    study = optuna.load_study(study_name="parallel", storage=f"sqlite:///{tmp_path / 'runs' / 'sweep.db'}")
    assert sorted(t.number for t in study.get_trials()) == [0, 1, 2]
    assert all((tmp_path / "runs" / "parallel" / f"trial_{n}" / "weights.npz").is_file() for n in range(3))


@pytest.mark.parametrize(
    "sweep, fragments",
    [
        ("  params:\n    model.layerz[0].units: [8, 16]\n", ["sweep.params['model.layerz[0].units']", "unknown key"]),
        (
            "  params:\n    model.layers[0].unit: [8, 16]\n",
            ["sweep.params['model.layers[0].unit']", "does not accept 'unit'"],
        ),
        (
            "  params:\n    train.optimizer.lr: {low: 0.1, high: 0.01}\n",
            ["sweep.params['train.optimizer.lr'] needs numbers low < high"],
        ),
        (
            "  sampler: grid\n  params:\n    train.optimizer.lr: {low: 0.01, high: 0.1}\n",
            ["sweep.sampler=grid", "is a range"],
        ),
        ("  metric: val_acc\n  params:\n    train.optimizer.lr: [0.1]\n", ["sweep.metric must be a per-epoch metric"]),
        ("  params: {}\n", ["sweep.params is empty"]),
    ],
)
def test_a_bad_sweep_section_is_one_line_naming_the_key(capsys, tmp_path, sweep, fragments):
    path = config(tmp_path, tmp_path, sweep)
    one_line_error(*fw(capsys, "sweep", path), *fragments)
    assert not (tmp_path / "runs" / "sweep.db").exists(), "nothing is run or stored"


def test_choosing_on_val_without_a_validation_split_is_refused(capsys, tmp_path):
    path = config(tmp_path, tmp_path, "  params:\n    train.optimizer.lr: [0.1, 0.2]\n")
    path.write_text(path.read_text().replace("validation_fraction: 0.2", "validation_fraction: 0"))
    one_line_error(*fw(capsys, "sweep", path), "sweep.metric=val_accuracy needs a validation split")


def test_without_optuna_fw_sweep_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    one_line_error(*fw(capsys, "sweep", config(tmp_path, tmp_path)), "pip install optuna", "pip install -e '.[sweep]'")
