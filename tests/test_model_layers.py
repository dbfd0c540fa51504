"""model.layers configs: composed from layer plugins, sizes inferred, errors named by position."""

import json
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework import FwError
from framework.plugins.layers import Dense

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "configs" / "mnist_infer.yaml"
LAYERS = REPO / "configs" / "fashion_mlp_layers.yaml"

BOOK_AS_LAYERS = (
    "model.layers=[{name: dense, units: 50}, sigmoid, {name: dense, "
    "units: 100}, sigmoid, {name: dense, units: 10}, softmax]"
)


@pytest.fixture
def book(mnist_dir, book_weights):
    return [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]


def build(*overrides, config=BOOK):
    return fw.build_network(fw.load_config(config, list(overrides)))


def test_the_book_network_written_as_layers_is_the_shorthand(book):
    shorthand, layered = build(*book), build(*book, BOOK_AS_LAYERS)
    x, t = fw.load_dataset(fw.load_config(BOOK, book))
    assert [layer.name for layer in layered.layers] == [layer.name for layer in shorthand.layers]
    assert np.array_equal(layered.predict(x[:500]), shorthand.predict(x[:500]))
    assert fw.evaluate(layered, x, t).correct == 9352


@pytest.mark.parametrize("flatten, shape", [(True, (784,)), (False, (1, 28, 28))])
def test_input_sizes_come_from_the_dataset(mnist_dir, flatten, shape):
    cfg = fw.load_config(
        BOOK,
        [
            f"dataset.root={mnist_dir}",
            f"dataset.flatten={str(flatten).lower()}",
            "weights=null",
            "model.layers=[flatten, {name: dense, units: 20}, relu, {name: dense, units: 10}, softmax]",
        ],
    )
    with pytest.warns(fw.errors.FwWarning, match="chance-level"):
        net = fw.build_network(cfg)
    assert net.input_shape == shape and net.shapes[0] == (784,) and net.layers[1].W.shape == (784, 20)
    x, t = fw.load_dataset(cfg)
    assert 0.02 < fw.evaluate(net, x, t).accuracy < 0.3


def test_a_layer_takes_the_networks_initialiser_unless_it_names_its_own(mnist_dir):
    base = [f"dataset.root={mnist_dir}", "weights=null"]
    with pytest.warns(fw.errors.FwWarning):
        he = build(*base, "model.layers=[{name: dense, units: 100}, relu, {name: dense, units: 10}, softmax]")
        normal = build(
            *base,
            "model.layers=[{name: dense, units: 100, init: {name: normal, "
            "std: 0.01}}, relu, {name: dense, units: 10}, softmax]",
        )
    assert abs(he.layers[0].W.std() - np.sqrt(2 / 784)) < 0.002
    assert abs(normal.layers[0].W.std() - 0.01) < 0.0005


def test_an_override_edits_one_entry_and_may_add_a_parameter(mnist_dir):
    cfg = fw.load_config(
        LAYERS, ["model.layers[0].units=64", "model.layers[3].rate=0.5", "model.layers[4].init=xavier"]
    )
    assert cfg.model.layers[0].units == 64 and cfg.model.layers[3].rate == 0.5 and cfg.model.layers[4].init == "xavier"


def test_the_command_line_replaces_the_files_network_whichever_form(book):
    cfg = fw.load_config(BOOK, [*book, "model.layers=[{name: dense, units: 10}, softmax]"])
    assert cfg.model.sizes is None and cfg.model.activation is None and len(cfg.model.layers) == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model.layers=[{name: dense, units: 10}, rellu]"],
            "model.layers[1]: unknown layer 'rellu'; did you mean 'relu'?",
        ),
        (
            ["model.layers=[{name: dense, unit: 10}, softmax]"],
            "model.layers[0]: layer 'dense' does not accept 'unit'; it accepts: units, init",
        ),
        (
            ["model.layers=[{name: dense, units: 10}, {name: dropout, rate: 1.5}, softmax]"],
            "model.layers[1]: layer 'dropout': rate must be at least 0 and below 1, got 1.5",
        ),
        (
            ["model.layers=[{name: dense, units: 12}, softmax]"],
            "model.layers: the network's output has shape (12,), but dataset 'mnist' has 10 classes",
        ),
        (
            ["model.layers=[{name: dense, units: 10, init: hee}, softmax]"],
            "model.layers[0].init: unknown initializer 'hee'",
        ),
        (
            ["model.layers=[{name: dense, units: 10}, softmax]", "model.activation=relu"],
            "model.layers and model.activation are both set",
        ),
    ],
)
def test_config_errors_name_the_layer_by_position(mnist_dir, overrides, message):
    with pytest.raises(FwError) as e:
        build(f"dataset.root={mnist_dir}", "weights=null", *overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_giving_both_forms_in_one_file_is_an_error_naming_both(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("model:\n  sizes: [784, 10]\n  layers: [{name: dense, units: 10}, softmax]\nweights: null\n")
    with pytest.raises(FwError, match=r"model.layers and model.sizes are both set"):
        fw.load_config(path)


@pytest.fixture
def odd_layers(monkeypatch):
    from framework.plugin_system import manager as plugin_manager

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugin_modules"))
    plugin_manager._build.cache_clear()
    yield "plugins=[odd_layers]"
    plugin_manager._build.cache_clear()


def test_a_build_that_fails_is_named_by_position(mnist_dir, odd_layers):
    with pytest.raises(FwError) as e:
        build(
            f"dataset.root={mnist_dir}",
            "weights=null",
            odd_layers,
            "model.layers=[{name: dense, units: 10}, needs_images, softmax]",
        )
    assert str(e.value) == (
        "model.layers[1] (needs_images, odd_layers.NeedsImages): needs (channels, height, width) input, got (10,)"
    )


def test_fw_train_refuses_a_layer_without_backward_before_reading_data(tmp_path, odd_layers):
    from framework.training.trainer import Trainer

    (tmp_path / "no-data-here").mkdir()  # an empty folder: reading data would fail
    cfg = fw.load_config(
        LAYERS,
        [
            f"dataset.root={tmp_path}/no-data-here",
            f"weights.path={tmp_path}/w.npz",
            odd_layers,
            "model.layers=[{name: dense, units: 10}, halve, softmax]",
        ],
    )
    with pytest.raises(
        FwError,
        match=r"model.layers\[1\]: layer 'halve' \(Halve\) has no backward, "
        r"so fw train cannot use it; add backward\(self, dout\)",
    ):
        Trainer(cfg)


def test_fw_train_names_a_layer_whose_backward_leaves_no_gradient(fashion_dir, tmp_path, odd_layers):
    from framework.training.trainer import Trainer

    cfg = fw.load_config(
        LAYERS,
        [
            f"dataset.root={fashion_dir}",
            f"weights.path={tmp_path}/w.npz",
            odd_layers,
            "model.layers=[{name: dense, units: 10}, forgets_grads, softmax]",
        ],
    )
    trainer = Trainer(cfg)
    x, t = fw.load_dataset(cfg)
    with pytest.raises(
        FwError,
        match=r"model.layers\[1\] \(forgets_grads, odd_layers.ForgetsGrads\): backward must fill grads\['gain'\]",
    ):
        trainer.fit(x[:200], t[:200], x[:50], t[:50])


def save_trained_layout(tmp_path, net):
    path = tmp_path / "w.npz"
    np.savez(path, **net.state_dict())
    return path


def test_weights_that_do_not_fit_name_the_first_layer_and_parameter_that_differ(mnist_dir, tmp_path):
    base = [
        f"dataset.root={mnist_dir}",
        "model.layers=[{name: dense, units: 16}, relu, {name: dense, units: 10}, softmax]",
    ]
    with pytest.warns(fw.errors.FwWarning):
        net = build(*base, "weights=null")
    path = save_trained_layout(tmp_path, net)
    assert build(*base, "weights.importer=npz", f"weights.path={path}", "weights.url=null", "weights.sha256=null")
    with pytest.raises(FwError) as e:
        build(
            *base,
            "model.layers[0].units=32",
            "weights.importer=npz",
            f"weights.path={path}",
            "weights.url=null",
            "weights.sha256=null",
        )
    assert f"{path}: model.layers[0] (dense), 'W': the network has shape (784, 32), the file (784, 16)" in str(e.value)


def test_the_books_layout_fits_dense_layers_only(book):
    with pytest.raises(
        FwError,
        match=r"holds the book's layout \(W1, b1, ...\), which fits dense layers only, "
        r"but model.layers\[1\] \(batch_norm\) has gamma, beta",
    ):
        build(
            *book,
            "model.layers=[{name: dense, units: 50}, batch_norm, sigmoid, "
            "{name: dense, units: 100}, sigmoid, {name: dense, units: 10}, softmax]",
        )


def test_weights_written_by_fw_0_1_still_load(book, tmp_path):
    """fw 0.1's fw train wrote W1, b1, ... into its .npz: the book's layout."""
    import pickle

    with open(book[1].split("=", 1)[1], "rb") as f:
        arrays = pickle.load(f)  # the trusted book file, only to write a 0.1-style npz from it
    path = tmp_path / "w01.npz"
    np.savez(path, **arrays)
    net = build(book[0], "weights.importer=npz", f"weights.path={path}", "weights.url=null", "weights.sha256=null")
    x, t = fw.load_dataset(fw.load_config(BOOK, book))
    assert fw.evaluate(net, x, t).correct == 9352


def test_fw_config_prints_a_layered_config_that_runs_the_same(capsys, book, tmp_path):
    from test_cli import fw as cli

    code, out, err = cli(capsys, "config", BOOK, *book, BOOK_AS_LAYERS)
    assert code == 0, err
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(out)
    code, out, err = cli(capsys, "run", resolved, "--json")
    assert code == 0, err
    assert json.loads(out)["correct"] == 9352


def test_a_plain_network_from_python_builds_itself_from_its_first_input():
    rng = np.random.default_rng(0)
    net = fw.Network([Dense.from_weights(rng.standard_normal((4, 3)), np.zeros(3))])
    y = net.predict(np.ones((2, 4), np.float32))
    assert y.shape == (2, 3) and net.input_shape == (4,)
