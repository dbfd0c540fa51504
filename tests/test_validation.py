"""train.validation_fraction, dataset.limit and weight decay: the hold-out, the 300-image subset, L2 on weights only."""

import json
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework.training.trainer import Trainer
from framework.training.validation import holdout, load_training_data
from test_cli import fw as run_fw, one_line_error

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "fashion_train.yaml"


def small(fashion_full_dir, tmp_path, *overrides):
    return [
        f"dataset.root={fashion_full_dir}",
        f"weights.path={tmp_path}/w.npz",
        "model.sizes=[784,24,10]",
        "train.epochs=2",
        "dataset.limit=1200",
        *overrides,
    ]


@pytest.fixture(scope="module")
def train_labels():
    from conftest import FASHION_TRAIN, need

    root = need(*(f"fashion-mnist/{f}" for f in FASHION_TRAIN)) / "fashion-mnist"
    cfg = fw.load_config(CONFIG, [f"dataset.root={root}"])
    from framework.api import load_split

    return load_split(cfg, "train")[1]


@pytest.mark.slow
def test_the_hold_out_is_disjoint_stratified_and_the_same_for_the_same_seed(train_labels):
    t = train_labels
    rows, val = holdout(t, 0.1, seed=0)
    assert len(np.intersect1d(rows, val)) == 0 and len(rows) + len(val) == len(t)
    assert np.array_equal(np.union1d(rows, val), np.arange(len(t)))
    assert len(val) == 6000
    assert np.array_equal(np.bincount(t[val]), np.full(10, 600)), "each class keeps its share"
    again_rows, again_val = holdout(t, 0.1, seed=0)
    assert np.array_equal(val, again_val) and np.array_equal(rows, again_rows)
    other = holdout(t, 0.1, seed=1)[1]
    assert not np.array_equal(val, other) and len(other) == 6000


def test_a_fraction_that_leaves_nothing_on_one_side_is_refused():
    with pytest.raises(fw.FwError, match=r"validation_fraction=0.01 holds out 0 of the 20"):
        holdout(np.arange(20) % 10, 0.01, seed=0)


def test_a_bad_fraction_names_the_key(capsys, tmp_path):
    one_line_error(
        *run_fw(capsys, "config", CONFIG, "train.validation_fraction=1"), "train.validation_fraction must be"
    )


@pytest.mark.slow
def test_training_never_sees_the_hold_out_and_reports_it_every_epoch(capsys, fashion_full_dir, tmp_path, monkeypatch):
    args = small(fashion_full_dir, tmp_path, "train.validation_fraction=0.25", "train.optimizer.lr=0.01")
    cfg = fw.load_config(CONFIG, args)
    (x, t), _ = load_training_data(cfg, fw.get_registry())
    rows, val = holdout(t, 0.25, cfg.train.seed)
    trained = {x[i].tobytes() for i in rows}
    held = {x[i].tobytes() for i in val} - trained  # (an image the dataset holds twice may be on both sides)
    seen = set()
    real_step = Trainer.step

    def spy(self, xb, tb):
        seen.update(row.tobytes() for row in xb)
        return real_step(self, xb, tb)

    monkeypatch.setattr(Trainer, "step", spy)
    code, out, err = run_fw(capsys, "train", CONFIG, *args, "--json")
    assert code == 0, err
    assert seen == trained and not (seen & held), "every image but the held-out ones is trained on"
    assert len(rows) + len(val) == 1200 and abs(len(val) - 300) <= 5  # a quarter of each class, rounded
    epochs = [json.loads(line) for line in out.splitlines()]
    assert [list(e) for e in epochs] == [
        ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy", "seconds", "lr"]
    ] * 2
    assert epochs[1]["val_loss"] < epochs[0]["val_loss"] and 0.5 < epochs[1]["val_accuracy"] <= 1


def test_without_validation_the_epochs_report_no_val_keys(capsys, fashion_full_dir, tmp_path):
    code, out, err = run_fw(capsys, "train", CONFIG, *small(fashion_full_dir, tmp_path), "train.epochs=1")
    assert code == 0, err
    assert "val acc" not in out and "test acc" in out


# -- weight decay --------------------------------------------------------------------------------


def one_step(optimizer, layers):
    """One update with zero gradients: only weight decay moves anything."""
    from framework import Network

    net = Network(layers).build((4,))
    before = {k: v.copy() for k, v in net.state_dict().items()}
    for layer in net.layers:
        for key, p in layer.params.items():
            layer.grads[key] = np.zeros_like(p)
    optimizer.update(net.parameters(), net.gradients())
    return before, net.state_dict()


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "adam"])
def test_every_builtin_optimizer_decays_weights_and_not_biases_or_batch_norm(name):
    from framework.plugins.layers import BatchNorm, Dense

    registry = fw.get_registry()
    optimizer = registry.get("optimizers", name, "train.optimizer")(lr=0.1, weight_decay=0.5)
    dense = Dense(3)
    before, after = one_step(optimizer, [dense, BatchNorm(), Dense(2)])
    for key in ("0.W", "2.W"):  # every weight steps towards 0 (AdaGrad's and Adam's steps are about lr, whatever W is)
        assert np.array_equal(np.sign(after[key] - before[key]), -np.sign(before[key])), f"{name} decays {key}"
    for key in ("0.b", "1.gamma", "1.beta", "2.b"):
        assert np.array_equal(after[key], before[key]), f"{name} leaves {key} alone"
    if name == "sgd":  # W - lr * wd * W exactly
        assert np.allclose(after["0.W"], before["0.W"] * (1 - 0.1 * 0.5))


def test_a_layer_declares_its_weights_by_name_or_by_shape():
    from framework import Layer

    class Both(Layer):
        name = "both"

        def build(self, input_shape, rng):
            self.params["kernel"] = np.ones(input_shape, np.float32)  # 1-D, but declared a weight
            self.params["scale"] = np.ones((2, 2), np.float32)  # 2-D, but declared not to be
            return input_shape

        weight_names = ("kernel",)

    class ByShape(Both):
        name = "by_shape"
        weight_names = None

    sgd = fw.get_registry().get("optimizers", "sgd", "train.optimizer")(lr=0.1, weight_decay=1.0)
    before, after = one_step(sgd, [Both()])
    assert np.allclose(after["0.kernel"], 0.9) and np.array_equal(after["0.scale"], before["0.scale"])
    before, after = one_step(sgd, [ByShape()])
    assert np.array_equal(after["0.kernel"], before["0.kernel"]) and np.allclose(after["0.scale"], 0.9)


def test_weight_decay_zero_changes_nothing_and_a_negative_one_is_refused(capsys, tmp_path):
    sgd = fw.get_registry().get("optimizers", "sgd", "train.optimizer")
    grads = [np.ones(3, np.float32)]
    assert sgd(weight_decay=0).decayed(None, grads) is grads
    one_line_error(
        *run_fw(capsys, "config", CONFIG, "train.optimizer.weight_decay=-1"),
        "train.optimizer: optimizer 'adam': weight_decay must be a number, 0 or more",
    )


@pytest.mark.slow
def test_weight_decay_keeps_the_weights_smaller_on_real_data(fashion_full_dir, tmp_path):
    def norm(*overrides):
        cfg = fw.load_config(
            CONFIG, small(fashion_full_dir, tmp_path, "train.optimizer={name: sgd, lr: 0.1}", *overrides)
        )
        trainer = Trainer(cfg)
        (x, t), (xt, tt) = load_training_data(cfg, fw.get_registry())
        history = trainer.fit(x, t, xt[:500], tt[:500])
        return sum(float(np.sum(w * w)) for n, w in trainer.net.parameters().items() if n.endswith("W")), history

    plain, h1 = norm()
    decayed, h2 = norm("train.optimizer.weight_decay=0.1")
    assert decayed < 0.9 * plain
    assert h2[-1].test_accuracy > 0.6  # it still learns
