"""Callbacks: early stopping that restores the best weights, csv_logger, --resume, errors that name the
callback, and an outside callback installed as a package; on a few hundred real Fashion-MNIST images."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework.training.trainer import Trainer
from framework.training.validation import load_training_data
from test_cli import fw as run_fw, one_line_error

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "fashion_train.yaml")
EARLY = "train.callbacks=[{name: early_stopping, monitor: val_loss, patience: 1}]"


def args(root, tmp_path, *overrides):
    """900 images to train on, 300 held out; quick to overfit, so val_loss turns up within a few epochs."""
    return [
        f"dataset.root={root}",
        f"weights.path={tmp_path}/w.npz",
        "model.sizes=[784,64,10]",
        "dataset.limit=1200",
        "train.validation_fraction=0.25",
        "train.optimizer.lr=0.01",
        "train.lr_schedule=constant",
        "train.epochs=15",
        *overrides,
    ]


def weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_early_stopping_stops_and_writes_the_best_epochs_weights(capsys, fashion_full_dir, tmp_path):
    code, out, err = run_fw(capsys, "train", CONFIG, *args(fashion_full_dir, tmp_path, EARLY), "--json")
    assert code == 0, err
    epochs = [json.loads(line) for line in out.splitlines()]
    losses = [e["val_loss"] for e in epochs]
    best = int(np.argmin(losses)) + 1
    assert len(epochs) == best + 1 < 15, "patience 1: it stops at the first epoch that does not improve"
    assert f"Stopped after epoch {best + 1} of 15 by train.callbacks[0] (early_stopping)" in err
    assert f"epoch {best}'s (restored): {epochs[best - 1]['test_accuracy']:.4f}" in err

    # The weights written are those of the best epoch: the same run, trained to that epoch only.
    cfg = fw.load_config(CONFIG, args(fashion_full_dir, tmp_path / "b"))
    trainer = Trainer(cfg)
    (x, t), (xt, tt) = load_training_data(cfg, fw.get_registry())
    trainer.fit(x, t, xt, tt, until=best)
    written = weights(tmp_path / "w.npz")
    assert written.keys() == {"W1", "b1", "W2", "b2"}
    for i, layer in enumerate(layer for layer in trainer.net.layers if layer.params):
        assert np.array_equal(written[f"W{i + 1}"], layer.params["W"]) and np.array_equal(
            written[f"b{i + 1}"], layer.params["b"]
        )

    # fw run evaluates dataset.limit examples of its split; training reported on the whole test split
    code, out, err = run_fw(
        capsys, "run", CONFIG, *args(fashion_full_dir, tmp_path, EARLY, "dataset.limit=null"), "--json"
    )
    assert json.loads(out)["accuracy"] == epochs[best - 1]["test_accuracy"]


@pytest.mark.slow
def test_without_restore_best_the_last_epochs_weights_are_written(capsys, fashion_full_dir, tmp_path):
    early = "train.callbacks=[{name: early_stopping, monitor: val_loss, patience: 1, restore_best: false}]"
    code, out, err = run_fw(capsys, "train", CONFIG, *args(fashion_full_dir, tmp_path, early))
    assert code == 0, err
    assert "Stopped after epoch" in out and "restored" not in out
    last = out.splitlines()[
        out.splitlines().index(next(line for line in out.splitlines() if line.startswith("Stopped"))) - 1
    ]
    assert last.startswith("epoch ")


@pytest.mark.slow
def test_resume_restores_the_callbacks_state(capsys, fashion_full_dir, tmp_path, monkeypatch):
    from framework.training import checkpoint

    both = "train.callbacks=[{name: early_stopping, monitor: val_loss, patience: 2}, csv_logger]"
    code, out, err = run_fw(capsys, "train", CONFIG, *args(fashion_full_dir, tmp_path / "whole", both), "--json")
    assert code == 0, err
    whole = [json.loads(line) for line in out.splitlines()]
    best = int(np.argmin([e["val_loss"] for e in whole])) + 1
    assert len(whole) == best + 2 < 15

    # Cut the run right after the first epoch that did not improve: early stopping is then one epoch into
    # its patience, with the best weights kept aside. A fresh callback would start over and stop elsewhere.
    real_save = checkpoint.save

    def save_then_interrupt(trainer, path):
        real_save(trainer, path)
        if len(trainer.history) == best + 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_interrupt)
    cut = args(fashion_full_dir, tmp_path / "cut", both)
    assert run_fw(capsys, "train", CONFIG, *cut)[0] == 130
    monkeypatch.setattr(checkpoint, "save", real_save)
    code, out, err = run_fw(capsys, "train", CONFIG, *cut, "--resume", "--json")
    assert code == 0, err
    assert [json.loads(line)["epoch"] for line in out.splitlines()] == [best + 2]
    assert f"Stopped after epoch {best + 2} of 15" in err and f"epoch {best}'s (restored)" in err
    a, b = weights(tmp_path / "whole" / "w.npz"), weights(tmp_path / "cut" / "w.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)

    def rows(folder):
        with open(folder / "metrics.csv") as f:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]

    assert rows(tmp_path / "cut") == rows(tmp_path / "whole") and len(rows(tmp_path / "whole")) == best + 2
    with open(tmp_path / "whole" / "w.metrics.jsonl") as f:
        assert [json.loads(line) for line in f] == whole, "the run record holds the --json lines"


def test_a_monitor_the_run_does_not_report_is_one_line_before_training(capsys, fashion_full_dir, tmp_path):
    early = "train.callbacks=[{name: early_stopping, monitor: val_accuracy}]"
    one_line_error(
        *run_fw(capsys, "train", CONFIG, *args(fashion_full_dir, tmp_path, early, "train.validation_fraction=0")),
        "train.callbacks[0] (early_stopping): monitor 'val_accuracy' is not reported by this run",
        "set train.validation_fraction",
    )
    assert not (tmp_path / "w.ckpt.npz").exists()


@pytest.mark.parametrize(
    "entry, fragments",
    [
        ("early_stoping", ["train.callbacks[0]: unknown callback 'early_stoping'; did you mean 'early_stopping'?"]),
        (
            "{name: early_stopping, patients: 3}",
            ["train.callbacks[0]: callback 'early_stopping' does not accept 'patients'"],
        ),
        ("{name: early_stopping, monitor: lr}", ["mode must be min or max (it cannot be told from the name 'lr')"]),
        ("{name: early_stopping, patience: -1}", ["patience must be a whole number"]),
    ],
)
def test_bad_callback_entries_are_one_line_naming_the_key(capsys, tmp_path, entry, fragments):
    one_line_error(
        *run_fw(capsys, "train", CONFIG, f"weights.path={tmp_path}/w.npz", f"train.callbacks=[{entry}]"), *fragments
    )


BOOM = """
from framework import Callback, hookimpl

class Boom(Callback):
    name = "boom"

    def on_epoch_end(self, epoch, logs):
        raise RuntimeError("boom in epoch %d" % epoch)

@hookimpl
def register_callbacks(register):
    register(Boom)
"""


@pytest.mark.slow
def test_a_callback_that_raises_is_named(capsys, fashion_full_dir, tmp_path):
    (tmp_path / "boom.py").write_text(BOOM)
    run = args(fashion_full_dir, tmp_path, f"plugins=[{tmp_path / 'boom.py'}]", "train.callbacks=[boom]")
    code, out, err = run_fw(capsys, "train", CONFIG, *run)
    assert code == 1 and "Traceback" not in err
    [line] = err.splitlines()
    assert (
        line.startswith("fw: error: train.callbacks[0] (boom, fw_local_plugin_boom_")
        and ".Boom): on_epoch_end failed: " in line
    )
    assert line.endswith("RuntimeError: boom in epoch 1")


STEPS = """
import sys
from framework import Callback, hookimpl

class OldSteps(Callback):  # written when on_batch_end took no logs
    name = "old_steps"

    def on_batch_end(self, epoch, batch, batches):
        print(f"old {epoch} {batch}/{batches}", file=sys.stderr)

    def on_epoch_end(self, epoch, logs):
        return False

class NewSteps(Callback):
    name = "new_steps"

    def on_batch_end(self, epoch, batch, batches, logs):
        print(f"new {epoch} {batch}/{batches} {sorted(logs)} {0 <= logs['accuracy'] <= 1}", file=sys.stderr)

    def on_epoch_end(self, epoch, logs):
        return False

@hookimpl
def register_classes(register):
    register(OldSteps)
    register(NewSteps)
"""


@pytest.mark.slow
def test_on_batch_end_of_either_contract_is_called_every_step(capsys, fashion_full_dir, tmp_path):
    """Logs reach an on_batch_end that takes them; one written before, (epoch, batch, batches), still works."""
    (tmp_path / "steps.py").write_text(STEPS)
    run = args(
        fashion_full_dir,
        tmp_path,
        f"plugins=[{tmp_path / 'steps.py'}]",
        "train.callbacks=[old_steps, new_steps]",
        "train.epochs=1",
        "train.validation_fraction=0",
        "dataset.limit=300",
        "train.batch_size=100",
    )
    code, out, err = run_fw(capsys, "train", CONFIG, *run)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith(("old", "new"))]
    assert lines == [
        f"{kind} 1 {b}/3" + (" ['accuracy', 'loss'] True" if kind == "new" else "")
        for b in (1, 2, 3)
        for kind in ("old", "new")
    ]


PRINT_LR = """
import sys
from framework import Callback, hookimpl

class PrintLR(Callback):
    name = "print_lr"

    def __init__(self, every=1):
        self.every, self.printed = every, 0

    def on_train_begin(self, logs):
        print(f"print_lr: {logs['epochs']} epochs", file=sys.stderr)

    def on_epoch_end(self, epoch, logs):
        if epoch % self.every == 0:
            self.printed += 1
            print(f"print_lr: epoch {epoch} lr {logs['lr']:.6f} (line {self.printed})", file=sys.stderr)

    def state(self):
        return {"printed": self.printed}

    def load_state(self, state):
        self.printed = state["printed"]

@hookimpl
def register_callbacks(register):
    register(PrintLR)
"""


@pytest.fixture(scope="module")
def print_lr_site(tmp_path_factory):
    """The issue's PrintLR as an installable package, pip-installed into a folder."""
    from conftest import pip_install

    pkg = tmp_path_factory.mktemp("fw-print-lr")
    (pkg / "fw_print_lr.py").write_text(PRINT_LR)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "fw-print-lr"\nversion = "0.2.0"\n\n[tool.setuptools]\npy-modules = ["fw_print_lr"]\n\n'
        '[project.entry-points.fw]\nprint_lr = "fw_print_lr"\n'
    )
    return pip_install(pkg, tmp_path_factory.mktemp("print-lr-install"))


def fw_process(*argv, site):
    import os

    env = {**os.environ, "PYTHONPATH": str(site), "FW_DISABLE_PLUGIN_AUTOLOAD": ""}
    return subprocess.run(
        [sys.executable, "-m", "framework.cli", *map(str, argv)], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_an_installed_callback_is_listed_and_runs(print_lr_site, fashion_full_dir, tmp_path):
    out = fw_process("plugins", "--json", site=print_lr_site)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)["callbacks"]
    assert {(c["name"], c["distribution"], c["version"]) for c in listed} >= {
        ("print_lr", "fw-print-lr", "0.2.0"),
        ("early_stopping", "fw", fw.__version__),
        ("csv_logger", "fw", fw.__version__),
    }
    text = fw_process("plugins", site=print_lr_site).stdout
    assert "callbacks:" in text and "print_lr" in text

    run = args(fashion_full_dir, tmp_path, "train.epochs=4", "train.callbacks=[{name: print_lr, every: 2}]")
    out = fw_process("train", CONFIG, *run, site=print_lr_site)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("print_lr:")]
    assert lines[0] == "print_lr: 4 epochs"
    assert [line.split(" lr ")[0] for line in lines[1:]] == ["print_lr: epoch 2", "print_lr: epoch 4"]
    assert len(out.stdout.splitlines()) == 4 + 3  # the epoch lines still print, through their own callback


def test_csv_logger_writes_beside_the_weights_by_default(capsys, fashion_full_dir, tmp_path):
    code, out, err = run_fw(
        capsys, "train", CONFIG, *args(fashion_full_dir, tmp_path, "train.epochs=2", "train.callbacks=[csv_logger]")
    )
    assert code == 0, err
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and {"val_accuracy", "test_accuracy", "lr"} <= set(rows[0])


def test_a_csv_logger_path_in_a_config_file_is_relative_to_the_file(fashion_full_dir, tmp_path):
    cfg_file = tmp_path / "sub" / "c.yaml"
    cfg_file.parent.mkdir()
    cfg_file.write_text("train:\n  callbacks: [{name: csv_logger, path: logs/run.csv}]\n")
    cfg = fw.load_config(cfg_file, ["weights.path=w.npz"])
    assert cfg.train.callbacks[0].path == str(tmp_path / "sub" / "logs" / "run.csv")
