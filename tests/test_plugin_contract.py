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
OUTSIDE_SOFTMAX = """
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
"""


@pytest.fixture(scope="module")
def fashion():
    from conftest import need

    root = (
        need("fashion-mnist/train-images-idx3-ubyte.gz", "fashion-mnist/train-labels-idx1-ubyte.gz") / "fashion-mnist"
    )
    x, t = load_split(fw.load_config(CONFIG, [f"dataset.root={root}"]), "train")
    return root, x[:2000], t[:2000]


def train(fashion, tmp_path, *overrides):
    root, x, t = fashion
    plugin = tmp_path / "my_softmax.py"
    plugin.write_text(OUTSIDE_SOFTMAX)
    cfg = fw.load_config(
        CONFIG,
        [
            f"dataset.root={root}",
            f"weights.path={tmp_path}/w.npz",
            "model.sizes=[784,32,10]",
            "train.epochs=2",
            f"plugins=[{plugin}]",
            *overrides,
        ],
    )
    trainer = Trainer(cfg)
    return trainer, trainer.fit(x, t, x[:500], t[:500])


@pytest.mark.slow
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


#: A plugin that registers one class of four kinds through the one hook.
MIXED = """
import numpy as np
from framework import Activation, Layer, Loss, Optimizer, hookimpl

class Cube(Activation):
    name = "cube"
    def forward(self, x):
        return x * x * x

class Twice(Layer):
    name = "twice"
    def forward(self, x, train=False):
        return 2 * x

class L1(Loss):
    name = "l1"
    def forward(self, y, t):
        return float(np.abs(y - t).sum() / len(y))

class Still(Optimizer):
    name = "still"
    def update(self, params, grads):
        pass

@hookimpl
def register_classes(register):
    for cls in (Cube, Twice, L1, Still):
        register(cls)
"""


def test_register_classes_files_each_class_by_its_base_class(tmp_path):
    from framework.plugin_system.manager import get_registry

    (tmp_path / "mixed.py").write_text(MIXED)
    registry = get_registry([str(tmp_path / "mixed.py")])
    assert registry.get("activations", "cube", "k").__name__ == "Cube"
    assert registry.get("layers", "twice", "k").__name__ == "Twice" and "twice" not in registry.entries["activations"]
    assert registry.get("losses", "l1", "k").__name__ == "L1"
    assert registry.get("optimizers", "still", "k").__name__ == "Still"
    assert str(registry.providers["losses"]["l1"]) == f"plugin '{tmp_path / 'mixed.py'}'"


def test_register_classes_refuses_a_class_of_no_plugin_kind_in_one_line(tmp_path):
    from framework.plugin_system.manager import get_registry

    (tmp_path / "odd.py").write_text(MIXED.replace("(Cube, Twice, L1, Still)", "(Cube, dict)"))
    with pytest.raises(fw.FwError) as e:
        get_registry([str(tmp_path / "odd.py")])
    assert str(e.value) == (
        f"plugin '{tmp_path / 'odd.py'}' registered <class 'builtins.dict'>, which is not a subclass of any of "
        "framework.Activation, framework.Layer, framework.Dataset, framework.WeightImporter, framework.WeightWriter, "
        "framework.Optimizer, framework.Loss, framework.Initializer, framework.Callback"
    )


def test_the_builtin_names_come_from_the_modules_and_are_cached_until_one_changes(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys

    from framework.plugin_system import builtins

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    names = builtins.builtin_names()
    assert names["framework.plugins.losses"] == {"losses": ["cross_entropy", "mean_squared_error"]}
    assert names["framework.plugins.activations"]["activations"][:2] == ["sigmoid", "softmax"]
    assert "framework.plugins.idx" not in names  # a helper module that registers nothing
    # A second process reads the cache: it imports no plugin module to learn the names.
    code = (
        "import sys\nfrom framework.plugin_system.builtins import builtin_names\nbuiltin_names()\n"
        "print([m for m in sys.modules if m.startswith('framework.plugins.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
    # A cache whose files' stamps no longer match is not believed.
    [cache] = (tmp_path / "fw" / "builtins").iterdir()
    stale = json.loads(cache.read_text())
    stale["names"] = {}
    stale["stamps"][0][1] += 1  # as if a module had grown by a byte
    cache.write_text(json.dumps(stale))
    assert builtins.builtin_names() == names
