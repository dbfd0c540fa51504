"""The config's one schema and the plugin contract: fw's initialiser only where a layer asks for it,
parameters checked from their annotations, the top-level batch_size honoured."""

from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework import Activation, FwError, Layer
from framework.core.initializer import Initializer
from framework.testing import check_layer

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "configs" / "mnist_infer.yaml"

PRELU = '''
import numpy as np
from framework import Layer, hookimpl


class PReLU(Layer):
    """PyTorch's nn.PReLU: a learned slope for negative inputs, starting at ``init``."""

    name = "prelu"

    def __init__(self, init=0.25):
        self.start = init

    def build(self, input_shape, rng):
        self.params["a"] = np.full(1, self.start, np.float32)
        return tuple(input_shape)

    def forward(self, x, train=False):
        if train:
            self.x = x
        return np.where(x > 0, x, self.params["a"] * x)

    def backward(self, dout):
        self.grads["a"] = np.array([np.sum(dout * np.minimum(self.x, 0))], np.float32)
        return np.where(self.x > 0, dout, self.params["a"] * dout)


@hookimpl
def register_layers(register):
    register(PReLU)
'''


@pytest.fixture
def prelu(tmp_path, monkeypatch):
    (tmp_path / "prelu_plugin.py").write_text(PRELU)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("prelu_plugin").PReLU


def test_a_layer_with_its_own_init_number_passes_the_kit_and_keeps_it(prelu):
    check_layer(prelu, (6,), init=0.25)
    check_layer(prelu, (2, 3, 3))
    from framework.config.assemble import LayerSpec, make_layer
    from framework.plugin_system.manager import get_registry

    layer = make_layer(
        prelu,
        LayerSpec("prelu", {"init": 0.5}, "model.layers[1]"),
        get_registry(),
        lambda: pytest.fail("drew fw's init"),
    )
    assert layer.start == 0.5


def test_a_layer_with_its_own_init_number_trains_from_a_config(prelu, tmp_path, mnist_dir):
    from framework.api import load_split
    from framework.training.trainer import Trainer

    layers = "model.layers=[{name: dense, units: 20}, {name: prelu, init: 0.25}, {name: dense, units: 10}, softmax]"
    cfg = fw.load_config(
        BOOK,
        [
            f"dataset.root={mnist_dir}",
            f"plugins=[{tmp_path / 'prelu_plugin.py'}]",
            layers,
            "train.epochs=2",
            f"weights.path={tmp_path}/w.pkl",
        ],
    )
    x, t = load_split(cfg, "test")
    trainer = Trainer(cfg)
    assert trainer.net.layers[1].params["a"][0] == np.float32(0.25)
    history = trainer.fit(x[:1000], t[:1000], x[1000:1500], t[1000:1500])
    assert history[-1].train_loss < history[0].train_loss
    assert trainer.net.layers[1].params["a"][0] != np.float32(0.25)  # the slope learned


class _Scale(Layer):
    """A layer written against last month's contract: an unannotated ``init`` that is fw's initialiser."""

    name = "old_scale"

    def __init__(self, units, init=None):
        self.units, self.init = units, init

    def build(self, input_shape, rng):
        self.params["W"] = self.init.draw((int(np.prod(input_shape)), self.units), rng)
        return (self.units,)

    def forward(self, x, train=False):
        return x.reshape(len(x), -1) @ self.params["W"]


class _Typed(_Scale):
    name = "typed_scale"

    def __init__(self, units, init: "Initializer | None" = "he"):
        self.units, self.init = units, init


class _OwnFloat(_Scale):
    name = "own_float"

    def __init__(self, units, init: float = 1.0):
        self.units, self.init = units, init


@pytest.mark.parametrize("cls, gets_initializer", [(_Scale, True), (_Typed, True), (_OwnFloat, False)])
def test_the_initialiser_goes_where_the_parameter_asks_for_it(cls, gets_initializer):
    from framework.config.assemble import takes_init

    assert takes_init(cls) is gets_initializer


def test_a_layer_of_the_old_contract_still_gets_fws_initialiser():
    check_layer(_Scale, (4,), units=3)  # it draws with self.init.draw: an Initializer, not None


def test_built_in_layers_declare_their_initialiser():
    import inspect

    from framework.plugins.conv import Conv2D
    from framework.plugins.layers import Dense

    for cls in (Dense, Conv2D):
        assert "Initializer" in str(inspect.signature(cls).parameters["init"].annotation)


def test_an_activations_preferred_init_has_its_own_name_and_the_old_one_still_reads():
    from framework.plugins.activations import ReLU, Sigmoid

    assert ReLU.preferred_init == "he" and Sigmoid.preferred_init == "xavier"
    assert ReLU.init == "he" and ReLU().init == "he" and Sigmoid.init == "xavier"

    class Old(Activation):  # last month's way to say it
        name = "old_act"
        init = "he"

        def forward(self, x):
            return x

    class OwnInit(Activation):  # an activation whose own parameter is called init
        name = "own_init"

        def __init__(self, init=0.1):
            self.init = init

        def forward(self, x):
            return x

    assert Old.suggested_init() == "he" and Old.preferred_init == "xavier"
    assert OwnInit(init=0.3).init == 0.3 and OwnInit.suggested_init() == "xavier"


class _Rows(Layer):
    """The identity, noting how many rows each call is given."""

    name = "rows_seen"

    def build(self, input_shape, rng):
        self.seen = []
        return tuple(input_shape)

    def forward(self, x, train=False):
        self.seen.append(len(x))
        return x


def test_evaluate_classifies_batch_size_rows_at_a_time():
    from framework.core.network import Network

    rows = _Rows()
    net = Network([rows]).build((3,), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((250, 3)).astype(np.float32)
    t = x.argmax(axis=1)
    assert fw.evaluate(net, x, t, batch_size=100).correct == 250
    assert sorted(rows.seen) == [50, 100, 100]
    rows.seen.clear()
    fw.evaluate(net, x, t)  # no batch size: classify's own chunks
    assert rows.seen == [250]


def test_fw_run_classifies_the_configs_batch_size_rows_at_a_time(mnist_dir, book_weights, monkeypatch):
    from framework.cli import main
    from framework.core.network import Network

    sizes = []
    classify = Network.classify
    monkeypatch.setattr(
        Network, "classify", lambda self, x, chunk_rows=None: sizes.append(chunk_rows) or classify(self, x, chunk_rows)
    )
    assert main(["run", str(BOOK), f"dataset.root={mnist_dir}", f"weights.path={book_weights}", "batch_size=1000"]) == 0
    assert sizes == [1000]


def test_a_mistyped_plugin_parameter_gets_a_did_you_mean_like_a_dataset_key():
    with pytest.raises(
        FwError,
        match=r"^model.layers\[0\]: layer 'dense' does not accept 'unit'; "
        r"it accepts: units, init; did you mean 'units'\?$",
    ):
        fw.build_network(fw.load_config(BOOK, ["weights=null", "model.layers=[{name: dense, unit: 10}, softmax]"]))
    with pytest.raises(
        FwError,
        match=r"train.optimizer: optimizer 'adam' does not accept 'lrr'; it accepts: lr, .*; did you mean 'lr'\?$",
    ):
        from framework.config.assemble import check_names
        from framework.plugin_system.manager import get_registry

        check_names(fw.load_config(BOOK, ["weights=null", "train.optimizer.lrr=0.1"]), get_registry())


TYPED = '''
from __future__ import annotations  # string annotations: fw evaluates them

import numpy as np
from framework import Layer, hookimpl


class Noisy(Layer):
    """Declares its parameters' types and checks none of them itself."""

    name = "noisy"

    def __init__(self, units: int, rate: float = 0.5, tag: str | None = None, scale: float = None):
        self.units, self.rate, self.tag = units, rate, tag

    def build(self, input_shape, rng):
        self.params["W"] = np.zeros((int(np.prod(input_shape)), self.units), np.float32)
        return (self.units,)

    def forward(self, x, train=False):
        return x.reshape(len(x), -1) @ self.params["W"]


@hookimpl
def register_layers(register):
    register(Noisy)
'''


@pytest.mark.parametrize(
    "entry, message",
    [
        ("{name: noisy, units: abc}", "model.layers[0]: layer 'noisy': units must be a whole number, got 'abc'"),
        ("{name: noisy, units: 2.5}", "model.layers[0]: layer 'noisy': units must be a whole number, got 2.5"),
        (
            "{name: noisy, units: 3, rate: true}",
            "model.layers[0]: layer 'noisy': rate must be a finite number, got True",
        ),
        (
            "{name: noisy, units: 3, rate: .nan}",
            "model.layers[0]: layer 'noisy': rate must be a finite number, got nan",
        ),
        ("{name: noisy, units: 3, tag: [1]}", "model.layers[0]: layer 'noisy': tag must be a string or null, got [1]"),
    ],
)
def test_a_plugins_parameters_are_checked_from_its_annotations(tmp_path, entry, message):
    from framework.config.assemble import check_names
    from framework.plugin_system.manager import get_registry

    (tmp_path / "typed_plugin.py").write_text(TYPED)
    cfg = fw.load_config(
        BOOK, ["weights=null", f"plugins=[{tmp_path / 'typed_plugin.py'}]", f"model.layers=[{entry}, softmax]"]
    )
    with pytest.raises(FwError) as e:
        check_names(cfg, get_registry(cfg.plugins))
    assert str(e.value) == message


def test_values_that_fit_the_annotations_pass_and_null_means_a_none_default(tmp_path):
    from framework.config.assemble import check_names
    from framework.plugin_system.manager import get_registry

    (tmp_path / "typed_plugin.py").write_text(TYPED)
    entry = "{name: noisy, units: 10, rate: 1, tag: null, scale: null}"  # an int is a float; null: scale's default
    cfg = fw.load_config(
        BOOK, ["weights=null", f"plugins=[{tmp_path / 'typed_plugin.py'}]", f"model.layers=[{entry}, softmax]"]
    )
    check_names(cfg, get_registry(cfg.plugins))


def test_the_built_in_plugins_declare_their_types_and_keep_the_words():
    from framework.config.assemble import create
    from framework.plugin_system.manager import get_registry

    registry = get_registry()
    cases = [
        (
            "optimizers",
            {"name": "adam", "beta1": "high"},
            "train.optimizer: optimizer 'adam': beta1 must be a positive finite number, got 'high'",
        ),
        (
            "callbacks",
            {"name": "early_stopping", "patience": 1.5},
            "train.callbacks[0]: callback 'early_stopping': "
            "patience must be a whole number of epochs, 0 or more, got 1.5",
        ),
        (
            "callbacks",
            {"name": "early_stopping", "restore_best": "no"},
            "train.callbacks[0]: callback 'early_stopping': restore_best must be true or false, got 'no'",
        ),
        (
            "initializers",
            {"name": "normal", "std": "wide"},
            "model.init: initializer 'normal': std must be a positive finite number, got 'wide'",
        ),
    ]
    for kind, value, message in cases:
        with pytest.raises(FwError) as e:
            create(registry, kind, value, message.split(":")[0])
        assert str(e.value) == message


@pytest.mark.parametrize(
    "text, message",
    [
        ("dataset:\n  name: mnist\nbatch_size: 0\n", ":line 3: batch_size must be a positive whole number"),
        ("model:\n  layers:\n    - relu\n    - 3\n", ":line 4: model.layers[1] must be a layer name such as relu"),
        (
            "train:\n  epochs: 2\n  optimizer: {name: sgd}\n  lr_schedule: fast\n",
            ":line 4: train.lr_schedule must be constant",
        ),
        ("model:\n  seed: 1\n  sizs: [784, 10]\n", ":line 3: unknown key 'model.sizs'; did you mean 'model.sizes'?"),
    ],
)
def test_an_error_in_a_config_file_names_the_line_that_set_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(FwError) as e:
        fw.load_config(path, ["weights=null"])
    assert str(e.value).startswith(f"{path}{message}"), str(e.value)


def test_an_override_is_named_as_the_source_not_a_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 5\n")
    with pytest.raises(FwError, match=r"^override 'batch_size=0': batch_size must be"):
        fw.load_config(path, ["weights=null", "batch_size=0"])


def test_numpy_numbers_from_python_fit_int_and_float_annotations():
    from framework.core.params import fits
    from framework.plugins.layers import BatchNorm

    check_layer(BatchNorm, (4,), momentum=np.float32(0.5), eps=np.float64(1e-3))  # e.g. read from an array
    assert fits(np.int64(3), int) and not fits(np.bool_(True), int) and not fits(np.float32("nan"), float)
