"""The plugin contract without traps (issue 27, item 2): what a plugin declares, not what class it is."""

from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework.api import load_split
from framework.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "fashion_train.yaml"

#: A softmax written outside fw, as a plugin author would: it declares what it is, and has no backward.
OUTSIDE_SOFTMAX = '''
import numpy as np
from framework import Activation, hookimpl

class MySoftmax(Activation):
    name = "my_softmax"
    rowwise = True
    outputs_probabilities = True

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

@hookimpl
def register_activations(register):
    register(MySoftmax)
'''


@pytest.fixture(scope="module")
def fashion():
    from conftest import need

    root = need("fashion-mnist/train-images-idx3-ubyte.gz", "fashion-mnist/train-labels-idx1-ubyte.gz") / "fashion-mnist"
    x, t = load_split(fw.load_config(CONFIG, [f"dataset.root={root}"]), "train")
    return root, x[:2000], t[:2000]


def train(fashion, tmp_path, *overrides):
    root, x, t = fashion
    plugin = tmp_path / "my_softmax.py"
    plugin.write_text(OUTSIDE_SOFTMAX)
    cfg = fw.load_config(CONFIG, [f"dataset.root={root}", f"weights.path={tmp_path}/w.npz", "model.sizes=[784,32,10]",
                                  "train.epochs=2", f"plugins=[{plugin}]", *overrides])  # fmt: skip
    trainer = Trainer(cfg)
    return trainer, trainer.fit(x, t, x[:500], t[:500])


def test_an_outside_softmax_without_backward_trains_exactly_as_the_builtin_one(fashion, tmp_path):
    builtin, _ = train(fashion, tmp_path, "model.output_activation=softmax")
    outside, history = train(fashion, tmp_path, "model.output_activation=my_softmax")
    assert type(outside.net.layers[-1]).__name__ == "MySoftmax" and outside.fused
    assert history[-1].train_loss < history[0].train_loss
    for a, b in zip(builtin.net.parameters(), outside.net.parameters()):
        assert np.array_equal(a, b)


def test_cross_entropy_fuses_with_any_layer_that_declares_it_and_no_other():
    from framework.plugins.activations import Sigmoid, Softmax
    from framework.plugins.losses import CrossEntropy, MeanSquaredError

    class Probabilities(fw.Layer):
        name = "probabilities"
        outputs_probabilities = True

    assert CrossEntropy().fuses_with(Softmax()) and CrossEntropy().fuses_with(Probabilities())
    assert not CrossEntropy().fuses_with(Sigmoid()) and not MeanSquaredError().fuses_with(Softmax())
