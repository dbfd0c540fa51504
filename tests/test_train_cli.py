"""fw train as a user runs it: epoch lines, weights fw run can load, resume, plot, errors."""

import json
import os
from pathlib import Path

import pytest

from framework.cli import main
from test_cli import fw

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "fashion_train.yaml")


@pytest.fixture
def small(fashion_full_dir, tmp_path):
    """One epoch of a small network on the full Fashion-MNIST: about a second."""
    return [
        f"dataset.root={fashion_full_dir}",
        f"weights.path={tmp_path}/w.npz",
        "model.sizes=[784,16,10]",
        "train.epochs=1",
    ]


def test_train_then_run_reproduces_the_reported_accuracy(capsys, small, tmp_path):
    code, out, err = fw(capsys, "train", CONFIG, *small, "--json")
    assert code == 0, err
    [epoch] = [json.loads(line) for line in out.splitlines()]
    assert set(epoch) >= {"epoch", "train_loss", "train_accuracy", "test_accuracy", "seconds"}
    assert epoch["test_accuracy"] > 0.7
    assert (tmp_path / "w.npz").is_file() and not (tmp_path / "w.ckpt.npz").exists(), (
        "a finished run leaves no checkpoint"
    )
    command = err.strip().splitlines()[-1].strip()
    assert command.startswith("fw run ") and "model.sizes=[784,16,10]" in command

    code, out, err = fw(capsys, "run", CONFIG, *small, "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == epoch["test_accuracy"]


def test_text_output_has_one_line_per_epoch_and_the_run_command(capsys, small):
    code, out, _ = fw(capsys, "train", CONFIG, *small, "train.epochs=2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("epoch 1/2  loss ") and "test acc" in lines[0]
    assert lines[1].startswith("epoch 2/2")
    assert lines[-1].strip().startswith(f"fw run {CONFIG} ")


def test_keep_checkpoint_keeps_it(capsys, small, tmp_path):
    assert fw(capsys, "train", CONFIG, *small, "--keep-checkpoint")[0] == 0
    assert (tmp_path / "w.ckpt.npz").is_file()


def test_resume_continues_where_it_stopped(capsys, small):
    assert fw(capsys, "train", CONFIG, *small, "--keep-checkpoint")[0] == 0
    code, out, err = fw(capsys, "train", CONFIG, *small[:-1], "train.epochs=2", "--resume", "--json")
    assert code == 1 and "different dataset, model or train config" in err  # epochs is part of the fingerprint
    code, out, err = fw(capsys, "train", CONFIG, *small, "--resume")
    assert code == 0 and "resuming" in err and "after epoch 1 of 1" in err
    assert out.startswith("Test accuracy after epoch 1: ")  # nothing left to train: straight to the weights


def test_resume_refuses_other_examples_than_the_run_started_with(capsys, small, fashion_full_dir, tmp_path):
    """The fingerprint names the dataset, not its files or options: dataset.limit once resumed silently."""
    assert fw(capsys, "train", CONFIG, *small, "--keep-checkpoint")[0] == 0
    code, out, err = fw(capsys, "train", CONFIG, *small, "dataset.limit=5000", "--resume")
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert f"{tmp_path / 'w.ckpt.npz'} was written while training on other examples" in err
    assert "delete the checkpoint to start over" in err

    # The same files somewhere else are the same examples: that resumes.
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in fashion_full_dir.iterdir():
        if f.name.endswith(".gz"):
            (moved / f.name).symlink_to(f)
    code, out, err = fw(capsys, "train", CONFIG, *small, f"dataset.root={moved}", "--resume")
    assert code == 0 and "after epoch 1 of 1" in err, err


def test_ctrl_c_keeps_the_last_complete_epoch(capsys, small, monkeypatch):
    from framework.training import checkpoint

    real_save = checkpoint.save

    def save_then_interrupt(trainer, path):
        real_save(trainer, path)
        if len(trainer.history) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_interrupt)
    code, _, err = fw(capsys, "train", CONFIG, *small[:-1], "train.epochs=2")
    assert code == 130
    assert "interrupted; epoch 1 of 2 is saved in" in err and "--resume" in err
    monkeypatch.setattr(checkpoint, "save", real_save)
    code, out, err = fw(capsys, "train", CONFIG, *small[:-1], "train.epochs=2", "--resume", "--json")
    assert code == 0, err
    assert [json.loads(line)["epoch"] for line in out.splitlines()] == [2]


def test_plot_draws_a_png(capsys, small, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the 'plot' extra")
    code, _, err = fw(capsys, "train", CONFIG, *small, "--plot", tmp_path / "curve.png")
    assert code == 0, err
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pickle_format_writes_the_books_layout(capsys, small, tmp_path):
    from framework.safeio.safe_pickle import load

    out = tmp_path / "w.pkl"
    code, _, err = fw(
        capsys, "train", CONFIG, *small, f"weights.path={out}", "weights.format=pickle", "weights.importer=pickle"
    )
    assert code == 0, err
    weights = load(out)
    assert sorted(weights) == ["W1", "W2", "b1", "b2"] and weights["W1"].shape == (784, 16)


def test_untrainable_configs_fail_in_one_line_before_reading_data(capsys, small):
    code, _, err = fw(capsys, "train", CONFIG, *small, "model.activation=step2")
    assert code == 1 and "unknown activation 'step2'" in err
    code, _, err = fw(capsys, "train", CONFIG, *small, "weights=null")
    assert code == 1 and "set weights.path" in err
    code, _, err = fw(capsys, "train", CONFIG, *small, "train.loss=hinge")
    assert code == 1 and "train.loss: unknown loss 'hinge'" in err


def test_an_existing_weights_file_needs_force(capsys, small, tmp_path):
    (tmp_path / "w.npz").write_bytes(b"someone else's file")
    code, _, err = fw(capsys, "train", CONFIG, *small)
    assert code == 1 and "already exists; add --force to replace it" in err
    assert (tmp_path / "w.npz").read_bytes() == b"someone else's file"
    code, _, err = fw(capsys, "train", CONFIG, *small, "--force")
    assert code == 0, err


def test_global_debug_flag_shows_the_traceback(small):
    from framework import FwError

    with pytest.raises(FwError, match="unknown loss"):
        main(["--debug", "train", CONFIG, *small, "train.loss=hinge"])


def test_outputs_are_checked_before_any_training(capsys, small, tmp_path):
    (tmp_path / "w.npz").mkdir()
    code, out, err = fw(capsys, "train", CONFIG, *small, "--force")
    assert code == 1 and "is a folder; give a file name" in err and out == ""
    (tmp_path / "w.npz").rmdir()
    (tmp_path / "w.ckpt.npz").write_bytes(b"an earlier run")
    code, _, err = fw(capsys, "train", CONFIG, *small)
    assert code == 1 and "a checkpoint from an earlier run is at" in err and "--force starts over" in err
    (tmp_path / "curve.png").write_bytes(b"old plot")
    code, _, err = fw(capsys, "train", CONFIG, *small, "--plot", tmp_path / "curve.png", "--force")
    assert code == 0, err  # --force replaces the weights, the checkpoint and the plot
    code, _, err = fw(capsys, "train", CONFIG, *small, "--plot", tmp_path / "curve.jpg", "--force")
    assert code == 1 and "give a file name ending in .png" in err


def test_fw_run_warns_when_a_newer_checkpoint_waits(capsys, small, tmp_path):
    import os

    assert fw(capsys, "train", CONFIG, *small, "--keep-checkpoint")[0] == 0
    ckpt = tmp_path / "w.ckpt.npz"
    later = os.stat(tmp_path / "w.npz").st_mtime + 10
    os.utime(ckpt, (later, later))  # as after an interrupted second run
    code, _, err = fw(capsys, "run", CONFIG, *small)
    assert code == 0 and "is newer than" in err and "--resume completes it" in err
    import shlex

    assert f"fw train {shlex.join([str(CONFIG), *small])} --resume" in err, "the hint repeats the overrides it needs"
    (tmp_path / "w.npz").unlink()  # interrupted before any weights were written
    code, out, err = fw(capsys, "run", CONFIG, *small)
    assert (
        code == 1
        and (
            "but a training checkpoint is there: finish the training "
            f"with fw train {shlex.join([str(CONFIG), *small])} --resume"
        )
        in err
    )


def test_a_second_fw_train_to_the_same_path_is_refused(capsys, small, tmp_path):
    from framework.safeio.files import OutputLock

    (tmp_path / "w.ckpt.npz").write_bytes(b"the running one's checkpoint")
    with OutputLock(tmp_path / "w.npz", "test"):  # as if another fw train were running
        code, out, err = fw(capsys, "train", CONFIG, *small)
        assert code == 1 and out == ""
        assert err == (
            f"fw: error: a training run is in progress for {tmp_path / 'w.npz'} "
            f"(fw train, pid {os.getpid()}); wait for it to finish\n"
        )
        code, out, err = fw(capsys, "run", CONFIG, *small)  # and fw run gives the same one reason, no --resume
        assert code == 1 and "a training run is in progress" in err and "--resume" not in err and "--force" not in err
    (tmp_path / "w.ckpt.npz").unlink()
    assert not (tmp_path / "w.npz").exists()
    code, _, err = fw(capsys, "train", CONFIG, *small)  # released: now it runs
    assert code == 0, err
    left = sorted(p.name for p in tmp_path.iterdir())
    # the weights, what training derived from the data, the run record; no lock file or checkpoint
    assert left == ["w.config.yaml", "w.dataset.json", "w.metrics.jsonl", "w.npz"], left


def test_a_lock_left_by_a_killed_run_does_not_block(capsys, small, tmp_path):
    (tmp_path / ".w.npz.lock").write_text("999999")  # the file stays after kill -9; the flock does not
    code, _, err = fw(capsys, "train", CONFIG, *small)
    assert code == 0, err
