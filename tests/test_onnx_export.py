"""fw export: every layer exports itself (Layer.to_onnx), the graph keeps its contract, ONNX Runtime agrees with fw."""

import json
import sys

import numpy as np
import onnx
import pytest

from framework import Network
from framework.interchange.onnx_export import export
from framework.plugin_system.builtins import builtin_names
from framework.plugin_system.manager import get_registry
from framework.plugins.activations import Identity, ReLU, Sigmoid, Softmax, Step
from framework.plugins.binary_sigmoid import BinarySigmoid
from framework.plugins.conv import AvgPool2D, Conv2D, MaxPool2D
from framework.plugins.layers import BatchNorm, Dense, Dropout, Flatten
from framework.plugins.rescale import Rescale
from onnx_kit import ort_session
from test_cli import BOOK, REPO, fw, one_line_error

ODD_LAYERS = REPO / "tests" / "plugin_modules" / "odd_layers.py"


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def session(model):
    return ort_session(model)


def exported(net, classes=None):
    n = net.output_shape[0]
    return export(net, class_names=classes or [f"c{i}" for i in range(n)], config_text="model: {}", fw_version="0.1.0")


def agree(net, x, model=None):
    """ORT on the exported model against fw on ``x``: same argmax everywhere, probabilities within 1e-5."""
    model = model or exported(net)
    got = session(model).run(["probabilities"], {"input": x})[0]
    want = net.predict(x)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))
    return got


def with_statistics(net, rng):
    """Batch-norm layers with running statistics and scales that are not the identity's."""
    for layer in net.layers:
        if isinstance(layer, BatchNorm):
            n = layer.params["gamma"].shape
            layer.params["gamma"][:] = rng.uniform(0.5, 2, n)
            layer.params["beta"][:] = rng.normal(size=n)
            layer.buffers["running_mean"][:] = rng.normal(size=n)
            layer.buffers["running_var"][:] = rng.uniform(0.2, 3, n)
        elif isinstance(layer, Rescale):
            layer.buffers["offset"][:] = rng.normal(size=layer.buffers["offset"].shape)
            layer.buffers["scale"][:] = rng.uniform(0.2, 3, layer.buffers["scale"].shape)
    return net


NETS = {
    "images through every image layer": (
        lambda: [
            Conv2D(4, 3, padding=1),
            BatchNorm(),
            ReLU(),
            MaxPool2D(2),
            Conv2D(3, (3, 2), stride=(2, 1)),
            AvgPool2D(2, stride=1),
            Dense(16),
            BatchNorm(momentum=0.5, eps=1e-3),
            Dropout(0.3),
            Sigmoid(),
            Dense(5),
            Softmax(),
        ],
        (2, 13, 11),
    ),
    "a flatten, then step and identity": (lambda: [Flatten(), Dense(7), Step(), Dense(3), Identity()], (3, 4)),
    "one score as two classes": (lambda: [Dense(1), BinarySigmoid()], (6,)),
    "the book's MLP shape": (lambda: [Rescale(), Dense(12), Sigmoid(), Dense(8), ReLU(), Dense(4), Softmax()], (20,)),
}


@pytest.mark.parametrize("name", NETS)
def test_onnx_runtime_agrees_with_fw(name):
    layers, shape = NETS[name]
    rng = np.random.default_rng(1)
    net = with_statistics(Network(layers()).build(shape, rng), rng)
    agree(net, rng.normal(size=(64, *shape)).astype(np.float32))


def test_every_built_in_layer_and_activation_exports():
    registry = get_registry()
    names = [n for kinds in builtin_names().values() for kind in ("layers", "activations") for n in kinds.get(kind, [])]
    missing = [n for n in names if not registry.get("layers", n, "test").has_onnx()]
    assert names and not missing, f"built-in layers without to_onnx: {missing}"
    covered = {type(layer).name for layers, _ in NETS.values() for layer in layers()}
    assert covered == set(names), f"not exercised here: {set(names) - covered}"


def test_the_graph_keeps_its_contract():
    rng = np.random.default_rng(0)
    net = Network([Conv2D(2, 3), ReLU(), Dense(3), Softmax()]).build((1, 6, 6), rng)
    model = export(net, class_names=["cat", "dog", "ibis"], config_text="dataset: {name: pets}\n", fw_version="9.9")
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.opset_import[0].domain == ""
    [inp], [out] = model.graph.input, model.graph.output
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 6, 6]
    assert out.name == "probabilities" and [d.dim_value for d in out.type.tensor_type.shape.dim[1:]] == [3]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == ["cat", "dog", "ibis"]
    assert meta["fw_version"] == "9.9" and meta["config"] == "dataset: {name: pets}\n"
    assert sorted(t.name for t in model.graph.initializer) == ["0.W", "0.b", "2.W", "2.b"]
    for batch in (1, 7):  # the batch axis is free
        agree(net, rng.normal(size=(batch, 1, 6, 6)).astype(np.float32), model)


def test_dropout_exports_as_the_identity_and_the_books_rule_as_a_multiply():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    net = Network([Dropout(0.25), Identity()]).build((6,), rng)
    assert np.array_equal(session(exported(net)).run(None, {"input": x})[0], x)
    net.layers[0].inverted = False  # the book's Dropout: inference scales by 1 - rate
    model = exported(net)
    assert [n.op_type for n in model.graph.node] == ["Mul", "Identity"]
    assert np.array_equal(session(model).run(None, {"input": x})[0], x * np.float32(0.75))


@pytest.mark.parametrize("opset", [13, 21])
def test_other_opsets(opset):
    rng = np.random.default_rng(0)
    net = with_statistics(
        Network([Conv2D(2, 3), BatchNorm(), ReLU(), MaxPool2D(2), Dense(3), Dropout(0.1), Softmax()]).build(
            (1, 8, 8), rng
        ),
        rng,
    )
    model = export(net, class_names=list("abc"), config_text="", fw_version="0", opset=opset)
    assert model.opset_import[0].version == opset
    agree(net, rng.normal(size=(9, 1, 8, 8)).astype(np.float32), model)


def test_the_book_network_in_onnx_runtime_gives_0_9352(capsys, tmp_path, mnist_dir, book_weights):
    out = tmp_path / "book.onnx"
    code, stdout, err = fw(capsys, "export", BOOK, out, f"dataset.root={mnist_dir}", f"weights.path={book_weights}")
    assert code == 0, err
    assert stdout.startswith(
        f"wrote {out}: opset 17, input 'input' (batch, 784) float32 -> output 'probabilities' (batch, 10)"
    )
    import framework as fwapi

    cfg = fwapi.load_config(BOOK, [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"])
    x, t = fwapi.load_dataset(cfg)
    p = ort_session(str(out)).run(["probabilities"], {"input": x})[0]
    assert (p.argmax(axis=1) == t).sum() == 9352
    net = fwapi.build_network(cfg)
    np.testing.assert_allclose(p, net.predict(x), rtol=0, atol=1e-5)
    assert np.array_equal(p.argmax(axis=1), net.classify(x))


def test_an_existing_output_is_kept_without_force(capsys, tmp_path, mnist_dir, book_weights):
    out = tmp_path / "book.onnx"
    out.write_bytes(b"mine")
    args = [BOOK, out, f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
    one_line_error(*fw(capsys, "export", *args), "already exists", "--force")
    assert out.read_bytes() == b"mine"
    code, _, err = fw(capsys, "export", *args, "--force", "--opset", "13")
    assert code == 0, err
    assert onnx.load(str(out)).opset_import[0].version == 13


def test_output_suffix_and_opset_are_checked(capsys, tmp_path):
    one_line_error(*fw(capsys, "export", BOOK, tmp_path / "m.onx"), "must end with .onnx")
    one_line_error(*fw(capsys, "export", BOOK, tmp_path / "m.onnx", "--opset", "12"), "--opset 12", "opsets 13 to")
    assert not list(tmp_path.iterdir())


def test_a_plugin_layer_without_to_onnx_is_named_with_its_position_and_the_method(capsys, tmp_path):
    config = tmp_path / "halve.yaml"
    config.write_text(
        f"model:\n  layers: [{{name: dense, units: 10}}, halve, softmax]\nweights: null\nplugins: ['{ODD_LAYERS}']\n"
    )
    code, out, err = fw(capsys, "export", config, tmp_path / "m.onnx")
    err = err.splitlines()[-1] + "\n"  # after the warning that weights: null is chance-level
    one_line_error(
        code,
        out,
        err,
        "model.layers[1] (halve, fw_local_plugin_odd_layers_",
        ".Halve)",
        "has no ONNX export",
        "to_onnx(self, graph, x)",
    )
    assert not (tmp_path / "m.onnx").exists()


class BadNode(Dense):
    name = "bad_node"

    def to_onnx(self, graph, x):
        return graph.op("Gemm", x)  # Gemm needs B


class ReturnsNothing(Dense):
    name = "returns_nothing"

    def to_onnx(self, graph, x):
        graph.op("Relu", x)


class WrongShape(Dense):
    name = "wrong_shape"

    def to_onnx(self, graph, x):
        return graph.op("Identity", x)  # says units, gives its input


@pytest.mark.parametrize(
    "cls, fragments",
    [
        (BadNode, ["layer 1 (bad_node, test_onnx_export.BadNode): its ONNX nodes fail onnx.checker", "Gemm"]),
        (
            ReturnsNothing,
            [
                "layer 1 (returns_nothing, test_onnx_export.ReturnsNothing): to_onnx returned None",
                "name of its output tensor",
            ],
        ),
        (
            WrongShape,
            [
                "layer 1 (wrong_shape, test_onnx_export.WrongShape): to_onnx gives an output of shape (batch, 6)",
                "build promised (3,)",
            ],
        ),
    ],
)
def test_a_plugin_whose_nodes_are_wrong_is_named(cls, fragments):
    from framework import FwError

    net = Network([ReLU(), cls(3), Softmax()]).build((6,), np.random.default_rng(0))
    with pytest.raises(FwError) as e:
        exported(net)
    assert "\n" not in str(e.value)
    for fragment in fragments:
        assert fragment in str(e.value)


def test_without_onnx_it_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    one_line_error(
        *fw(capsys, "export", BOOK, tmp_path / "m.onnx"),
        "fw export needs the onnx package",
        "pip install onnx",
        "pip install -e '.[onnx]'",
    )


@pytest.mark.slow
def test_the_example_packages_layers_export(extra_activations, extra_layers, monkeypatch):
    monkeypatch.syspath_prepend(str(extra_activations))
    monkeypatch.syspath_prepend(str(extra_layers))
    from fw_extra_activations import GELU, LeakyReLU, Tanh
    from fw_extra_layers import Scale

    rng = np.random.default_rng(3)
    net = Network(
        [Dense(16), GELU(), Scale(0.5), Dense(16), LeakyReLU(0.1), Dense(8), Tanh(), Dense(4), Softmax()]
    ).build((10,), rng)
    net.layers[2].params["gain"][:] = rng.normal(size=16)
    x = rng.normal(scale=3, size=(200, 10)).astype(np.float32)
    x[0, :] = 300  # GELU's clip
    agree(net, x)


class ExportsTheWrongFunction(Dense):
    name = "wrong_function"

    def to_onnx(self, graph, x):
        return graph.op("Relu", super().to_onnx(graph, x))  # forward has no ReLU


def test_the_plugin_kit_checks_to_onnx_in_onnx_runtime():
    from framework.testing import check_layer

    check_layer(Dense, (6,), units=3)
    with pytest.raises(
        AssertionError,
        match=r"check_layer\('ExportsTheWrongFunction'\): to_onnx: "
        r"ONNX Runtime's output differs from forward's by up to",
    ):
        check_layer(ExportsTheWrongFunction, (6,), units=3)
    with pytest.raises(
        AssertionError,
        match=r"to_onnx: layer 0 \(returns_nothing, test_onnx_export.ReturnsNothing\): to_onnx returned None",
    ):
        check_layer(ReturnsNothing, (6,), units=3)


@pytest.mark.parametrize(
    "command, words",
    [("export", ["--opset N", "examples:", "onnx.checker"]), ("import-onnx", ["OUT.npz", "examples:", "sequential"])],
)
def test_help_has_examples(capsys, command, words):
    with pytest.raises(SystemExit):
        fw(capsys, command, "--help")
    out = capsys.readouterr().out
    for word in words:
        assert word in out
