"""fw train on a slice of the real Fashion-MNIST: learning, determinism, checkpoints, output."""

from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework.api import load_split
from framework.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "fashion_train.yaml"


@pytest.fixture(scope="module")
def fashion():
    from conftest import need

    root = (
        need(
            "fashion-mnist/train-images-idx3-ubyte.gz",
            "fashion-mnist/train-labels-idx1-ubyte.gz",
            "fashion-mnist/t10k-images-idx3-ubyte.gz",
            "fashion-mnist/t10k-labels-idx1-ubyte.gz",
        )
        / "fashion-mnist"
    )
    cfg = fw.load_config(CONFIG, [f"dataset.root={root}"])
    (x, t), (xt, tt) = load_split(cfg, "train"), load_split(cfg, "test")
    # A slice keeps the suite fast: 3,000 training and 1,000 test images.
    return root, x[:3000], t[:3000], xt[:1000], tt[:1000]


def config(fashion, tmp_path, *overrides):
    root = fashion[0]
    return fw.load_config(
        CONFIG,
        [
            f"dataset.root={root}",
            f"weights.path={tmp_path}/w.npz",
            "model.sizes=[784,32,10]",
            "train.epochs=3",
            *overrides,
        ],
    )


def fit(trainer, fashion, **kw):
    _, x, t, xt, tt = fashion
    return trainer.fit(x, t, xt, tt, **kw)


@pytest.mark.slow
def test_loss_falls_and_the_network_learns(fashion, tmp_path):
    history = fit(Trainer(config(fashion, tmp_path)), fashion)
    losses = [e.train_loss for e in history]
    assert losses[0] > losses[1] > losses[2]
    assert history[-1].test_accuracy > 0.7  # chance is 0.1


@pytest.mark.slow
def test_same_config_and_seed_give_bit_identical_weights(fashion, tmp_path):
    a, b = Trainer(config(fashion, tmp_path)), Trainer(config(fashion, tmp_path))
    fit(a, fashion)
    fit(b, fashion)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert np.array_equal(pa, pb)
    c = Trainer(config(fashion, tmp_path, "train.seed=1"))
    fit(c, fashion)
    assert not np.array_equal(a.net.parameters()[0], c.net.parameters()[0])


def test_interrupted_training_resumes_to_the_same_weights(fashion, tmp_path):
    whole = Trainer(config(fashion, tmp_path / "whole"))
    fit(whole, fashion)

    cut = Trainer(config(fashion, tmp_path / "cut"))

    def stop_after_first(epoch):
        if epoch.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cut, fashion, on_epoch=stop_after_first)
    assert cut.output.checkpoint_path.is_file() and not list(cut.output.checkpoint_path.parent.glob(".*.part"))

    resumed = Trainer(config(fashion, tmp_path / "cut"))
    assert resumed.resume() == 1
    history = fit(resumed, fashion)
    assert [e.epoch for e in history] == [1, 2, 3]
    for pa, pb in zip(whole.net.parameters(), resumed.net.parameters()):
        assert np.array_equal(pa, pb)


def test_resume_refuses_a_checkpoint_from_another_config(fashion, tmp_path):
    t = Trainer(config(fashion, tmp_path, "train.epochs=1"))
    fit(t, fashion)
    other = Trainer(config(fashion, tmp_path, "train.epochs=1", "model.sizes=[784,16,10]"))
    with pytest.raises(fw.FwError, match="different dataset, model or train config"):
        other.resume()
    with pytest.raises(fw.FwError, match="no checkpoint to resume from"):
        Trainer(config(fashion, tmp_path / "empty")).resume()


@pytest.mark.parametrize("fmt, importer", [("npz", "npz"), ("pickle", "pickle")])
def test_written_weights_load_in_fw_run_with_the_reported_accuracy(fashion, tmp_path, fmt, importer):
    suffix = {"npz": "npz", "pickle": "pkl"}[fmt]
    cfg = config(
        fashion,
        tmp_path,
        "train.epochs=1",
        f"weights.format={fmt}",
        f"weights.importer={importer}",
        f"weights.path={tmp_path}/w.{suffix}",
    )
    trainer = Trainer(cfg)
    [epoch] = fit(trainer, fashion)
    path = trainer.output.write(trainer.net)
    net = fw.build_network(cfg)
    _, _, _, xt, tt = fashion
    assert fw.evaluate(net, xt, tt).accuracy == epoch.test_accuracy
    assert not list(path.parent.glob(".*.part"))


def test_an_activation_without_a_derivative_names_what_to_add(fashion, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugin_modules"))
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()
    cfg = config(fashion, tmp_path, "model.activation=tanh", "plugins=[tanh_plugin]")
    with pytest.raises(fw.FwError, match=r"activation 'tanh' \(Tanh\) has no derivative.*backward\(self, x, y, dout\)"):
        Trainer(cfg)
    plugins._build.cache_clear()


def test_bad_optimizer_parameters_are_one_line_errors(fashion, tmp_path):
    with pytest.raises(fw.FwError, match=r"train.optimizer: optimizer 'adam' does not accept 'lrr'.*it accepts: lr"):
        Trainer(config(fashion, tmp_path, "train.optimizer.lrr=0.1"))
    with pytest.raises(fw.FwError, match=r"train.optimizer: unknown optimizer 'adamw'"):
        Trainer(config(fashion, tmp_path, "train.optimizer.name=adamw"))


def test_learning_rate_schedules_start_at_the_base_lr_and_end_at_zero():
    from framework.training.trainer import SCHEDULES

    flat, cosine = SCHEDULES["flat_cosine"], SCHEDULES["cosine"]
    assert flat(0) == flat(0.74) == 1.0 and cosine(0) == 1.0
    assert flat(1.0) == pytest.approx(0, abs=1e-12) and cosine(1.0) == pytest.approx(0, abs=1e-12)
    assert 0 < flat(0.9) < flat(0.8) < 1
    assert SCHEDULES["constant"] is None


def test_divergence_stops_with_advice_instead_of_writing_nan_weights(fashion, tmp_path):
    cfg = config(fashion, tmp_path, "train.optimizer={name: sgd, lr: 1e30}", "train.loss=mean_squared_error")
    trainer = Trainer(cfg)
    with pytest.raises(
        fw.FwError,
        match=r"training diverged in epoch 1 at step \d+ of \d+: (the loss became (nan|inf)|.* "
        r"became Inf or NaN|values overflowed .*); lower train.optimizer.lr \(now 1e\+30\)",
    ):
        fit(trainer, fashion)
    assert not trainer.output.checkpoint_path.exists() and not trainer.output.path.exists()


def test_output_is_checked_before_training(fashion, tmp_path):
    with pytest.raises(fw.FwError, match="weights.format=pickle but weights.importer=npz"):
        Trainer(config(fashion, tmp_path, "weights.format=pickle"))
    with pytest.raises(fw.FwError, match=r"should end with .npz for weights.format=npz"):
        Trainer(config(fashion, tmp_path, f"weights.path={tmp_path}/w.txt"))
    existing = tmp_path / "w.npz"
    existing.write_bytes(b"precious")
    trainer = Trainer(config(fashion, tmp_path))
    with pytest.raises(fw.FwError, match="already exists; add --force to replace it"):
        trainer.output.check()
    trainer.output.check(overwrite=True)
    assert existing.read_bytes() == b"precious"


def test_resume_names_what_changed(fashion, tmp_path):
    fit(Trainer(config(fashion, tmp_path, "train.epochs=1")), fashion)
    with pytest.raises(fw.FwError, match=r"train.epochs: checkpoint 1, config 2"):
        Trainer(config(fashion, tmp_path, "train.epochs=2")).resume()


def test_unflattened_images_train_too(fashion, tmp_path):
    _, x, t, xt, tt = fashion
    trainer = Trainer(config(fashion, tmp_path, "train.epochs=1"))
    [epoch] = trainer.fit(x.reshape(-1, 1, 28, 28), t, xt.reshape(-1, 1, 28, 28), tt)
    assert epoch.test_accuracy > 0.5


@pytest.mark.parametrize(
    "activation, expected",
    [
        ("boom", r"model.layers\[1\] \(boom, bad_forward.Boom\): forward failed: ZeroDivisionError: oops"),
        (
            "shrink",
            r"model.layers\[1\] \(shrink, bad_forward.Shrink\): "
            r"forward returned shape \(100, 3\), but build promised \(100, 32\)",
        ),
        ("not_a_number", r"model.layers\[1\] \(not_a_number, bad_forward.NotANumber\): returned NaN for finite input"),
    ],
)
def test_a_misbehaving_plugin_activation_is_named_in_training_too(fashion, tmp_path, monkeypatch, activation, expected):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugin_modules"))
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()
    try:
        # a derivative is needed to train at all; give the bad classes a harmless one
        import bad_forward

        for cls in (bad_forward.Boom, bad_forward.Shrink, bad_forward.NotANumber):
            monkeypatch.setattr(cls, "backward", lambda self, x, y, dout: dout, raising=False)
        trainer = Trainer(config(fashion, tmp_path, f"model.activation={activation}", "plugins=[bad_forward]"))
        with pytest.raises(fw.FwError, match=expected):
            fit(trainer, fashion)
    finally:
        plugins._build.cache_clear()


def test_a_collapse_to_chance_level_is_warned_about(fashion, tmp_path):
    trainer = Trainer(config(fashion, tmp_path, "train.epochs=1", "train.optimizer.lr=1e6"))
    with pytest.warns(
        fw.errors.FwWarning, match=r"chance level for 10 classes; .*lower train.optimizer.lr \(now 1000000.0\)"
    ):
        fit(trainer, fashion)


def test_an_empty_train_split_is_an_error_not_a_division_by_zero(fashion, tmp_path):
    _, x, t, xt, tt = fashion
    with pytest.raises(fw.FwError, match="the train split of dataset 'fashion_mnist' is empty"):
        Trainer(config(fashion, tmp_path)).fit(x[:0], t[:0], xt, tt)


def test_labels_outside_the_networks_outputs_are_refused(fashion, tmp_path):
    _, x, t, xt, tt = fashion
    t = t.copy()
    t[5] = -1  # would index one-hot targets from the end
    with pytest.raises(
        fw.FwError, match=r"the train labels of dataset 'fashion_mnist' run from -1 to 9, .* labels must be 0 to 9"
    ):
        Trainer(config(fashion, tmp_path)).fit(x, t, xt, tt)


@pytest.mark.parametrize(
    "accuracy, majority, classes, expected",
    [
        (0.12, 0.1, 10, True),  # ten balanced classes, nothing learnt
        (0.5, 0.1, 10, False),
        (0.75, 0.5, 2, False),  # two classes: 75% is learning (fw 0.1 warned here)
        (0.51, 0.5, 2, True),
        (1.0, 1.0, 1, False),  # one output: nothing to warn about
        (0.9, 0.9, 10, True),  # 90% of the labels are one class: 0.9 is no better than guessing it
    ],
)
def test_chance_level_is_measured_against_guessing_the_commonest_class(accuracy, majority, classes, expected):
    from framework.training.trainer import at_chance_level

    assert at_chance_level(accuracy, majority, classes) is expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda z: z.update({"net.0.W": np.ones(1, np.float32)}),
            r"model.layers\[0\] \(dense\), 'W': the network has shape \(784, 32\), the file \(1,\)",
        ),
        (lambda z: z.update({"net.0.W": z["net.0.W"].astype(np.int32)}), r"'0.W' must be a floating-point numpy array"),
        (lambda z: z.pop("net.2.b"), r"has no array '2.b' for model.layers\[2\] \(dense\), 'b'"),
        (
            lambda z: z.update({"slot.m.0.W": np.ones(1, np.float32)}),
            r"optimizer state 'm' of parameter 0.W has shape \(1,\) float32, but the parameter is \(784, 32\) float32",
        ),
    ],
)
def test_a_hand_edited_checkpoint_is_refused_not_broadcast(fashion, tmp_path, edit, message):
    """Every array of a checkpoint is checked against the network before any is used."""
    trainer = Trainer(config(fashion, tmp_path, "train.epochs=1"))
    fit(trainer, fashion)
    with np.load(trainer.output.checkpoint_path) as z:
        arrays = dict(z)
    edit(arrays)
    np.savez(trainer.output.checkpoint_path, **arrays)
    with pytest.raises(fw.FwError, match=message):
        Trainer(config(fashion, tmp_path, "train.epochs=1")).resume()


def test_the_train_split_is_digested_once_for_a_check_and_the_fit_that_follows(fashion, tmp_path, monkeypatch):
    """fw train --resume checks the examples before its "resuming" line, then fit checks what it
    is given: the same arrays are hashed once; other arrays are hashed again, and must match."""
    from framework.training import checkpoint

    _, x, t, xt, tt = fashion
    Trainer(config(fashion, tmp_path)).fit(x, t, xt, tt, until=1)
    resumed = Trainer(config(fashion, tmp_path))
    resumed.resume()
    calls = []
    real = checkpoint.data_digest
    monkeypatch.setattr(checkpoint, "data_digest", lambda *a: calls.append(1) or real(*a))
    resumed.check_data(x, t)
    resumed.fit(x, t, xt, tt)
    assert len(calls) == 1
    changed = x.copy()
    changed[0, 0] += 1
    again = Trainer(config(fashion, tmp_path))
    again.resume()
    again.check_data(x, t)
    with pytest.raises(fw.FwError, match="other examples"):
        again.fit(changed, t, xt, tt)
    assert len(calls) == 3
