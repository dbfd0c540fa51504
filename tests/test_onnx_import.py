"""fw import-onnx: the graphs PyTorch's and Keras's exporters write come in, and fw classifies as ONNX Runtime does.

Neither PyTorch nor TensorFlow is installed for the tests, so the graphs are
built here node by node in the shapes those exporters write (seen in their
output: torch.onnx.export, both exporters, and tf2onnx); ONNX Runtime runs the
original graph, and fw the imported config. benchmarks/torch_import.py does
the same with a real PyTorch model.
"""

import json
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import framework as fw
from conftest import need
from framework import FwError
from framework.interchange.onnx_import import read
from onnx_kit import ort_predict
from test_cli import BOOK, fw as run_fw, one_line_error


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def node(op, inputs, outputs, name=None, **attrs):
    return helper.make_node(op, inputs, outputs, name=name or f"/{op}_{outputs[0]}", **attrs)


def const(name, value, dtype=np.int64):
    return node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, dtype), name))


def model(nodes, weights, input_shape, *, opset=17, batch="batch", output="logits", producer=("pytorch", "2.13.0")):
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(w if isinstance(w, np.ndarray) else rng.normal(scale=0.2, size=w).astype(np.float32), n)
        for n, w in weights.items()
    ]
    g = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *input_shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer[0], producer_version=producer[1]
    )
    m.ir_version = 8
    return m


def torch_convnet(W1, b1, W2, b2, W3, b3):
    """The book's SimpleConvNet as torch.onnx.export(dynamo=False) writes it, x.view(x.size(0), -1) and all."""
    nodes = [
        node(
            "Conv",
            ["input", "conv1.weight", "conv1.bias"],
            ["c"],
            "/conv1/Conv",
            kernel_shape=[5, 5],
            pads=[0, 0, 0, 0],
            strides=[1, 1],
            dilations=[1, 1],
            group=1,
        ),
        node("Relu", ["c"], ["r"], "/Relu"),
        node(
            "MaxPool",
            ["r"],
            ["p"],
            "/pool/MaxPool",
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[0, 0, 0, 0],
            ceil_mode=0,
        ),
        node("Shape", ["p"], ["s"], "/Shape"),
        const("zero", 0),
        node("Gather", ["s", "zero"], ["n"], "/Gather", axis=0),
        const("axes", [0]),
        node("Unsqueeze", ["n", "axes"], ["n1"], "/Unsqueeze"),
        const("minus1", [-1]),
        node("Concat", ["n1", "minus1"], ["target"], "/Concat", axis=0),
        node("Reshape", ["p", "target"], ["flat"], "/Reshape"),
        node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h"], "/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
        node("Relu", ["h"], ["h1"], "/Relu_1"),
        node("Gemm", ["h1", "fc2.weight", "fc2.bias"], ["logits"], "/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
    ]
    weights = {
        "conv1.weight": W1,
        "conv1.bias": b1,
        "fc1.weight": W2.T.copy(),
        "fc1.bias": b2,
        "fc2.weight": W3.T.copy(),
        "fc2.bias": b3,
    }
    return model(nodes, weights, (1, 28, 28))


def keras_mlp():
    """A Keras-style MLP as tf2onnx writes it: a (batch, 28, 28) input flattened by Reshape to a constant,
    Dense as MatMul + Add (the bias first, too), then BatchNormalization, Dropout (a ratio input) and Softmax."""
    nodes = [
        node("Reshape", ["input", "flatten_shape"], ["f"], "sequential/flatten/Reshape"),
        node("MatMul", ["f", "dense/kernel"], ["m"], "sequential/dense/MatMul"),
        node("Add", ["m", "dense/bias"], ["a"], "sequential/dense/BiasAdd"),
        node("Relu", ["a"], ["r"], "sequential/dense/Relu"),
        node(
            "BatchNormalization",
            ["r", "bn/gamma", "bn/beta", "bn/mean", "bn/var"],
            ["bn"],
            "sequential/bn",
            epsilon=1e-3,
        ),
        node("Dropout", ["bn", "ratio"], ["d"], "sequential/dropout"),
        node("MatMul", ["d", "dense_1/kernel"], ["m1"], "sequential/dense_1/MatMul"),
        node("Add", ["dense_1/bias", "m1"], ["logits_"], "sequential/dense_1/BiasAdd"),
        node("Softmax", ["logits_"], ["probs"], "sequential/dense_1/Softmax", axis=-1),
    ]
    rng = np.random.default_rng(1)
    weights = {
        "flatten_shape": np.array([-1, 784], np.int64),
        "dense/kernel": (64, 784)[::-1],
        "dense/bias": (64,),
        "bn/gamma": rng.uniform(0.5, 2, 64).astype(np.float32),
        "bn/beta": (64,),
        "bn/mean": (64,),
        "bn/var": rng.uniform(0.5, 2, 64).astype(np.float32),
        "ratio": np.array(0.3, np.float32),
        "dense_1/kernel": (64, 10),
        "dense_1/bias": (10,),
    }
    return model(nodes, weights, (28, 28), batch="unk__6", output="probs", producer=("tf2onnx", "1.16.1"))


def every_op():
    """Every op mapping not covered above: padded, strided Conv; 4-D BatchNormalization; Sigmoid; AveragePool and
    MaxPool with strides other than their windows; Flatten; Gemm with W as (in, out), alpha and beta; Identity;
    MatMul with no bias, its weight transposed by a node; and a flatten target worked out through Shape, Slice,
    Cast and Concat."""
    rng = np.random.default_rng(2)
    nodes = [
        node("Conv", ["input", "cw", "cb"], ["c"], pads=[1, 2, 1, 2], strides=[2, 1], kernel_shape=[3, 3]),
        node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["bn"]),
        node("Sigmoid", ["bn"], ["s"]),
        node(
            "AveragePool",
            [
                "s",
            ],
            ["ap"],
            kernel_shape=[2, 2],
            strides=[1, 1],
        ),
        node("MaxPool", ["ap"], ["mp"], kernel_shape=[3, 3], strides=[2, 2]),
        node("Shape", ["mp"], ["shape"]),
        const("starts", [0]),
        const("ends", [1]),
        node("Slice", ["shape", "starts", "ends"], ["batch"]),
        node("Cast", ["batch"], ["batch64"], to=TensorProto.INT64),
        const("rest", [-1]),
        node("Concat", ["batch64", "rest"], ["target"], axis=0),
        node("Reshape", ["mp", "target"], ["flat"]),
        node("Flatten", ["flat"], ["flat2"], axis=1),  # already flat: no layer
        node("Gemm", ["flat2", "gw", "gb"], ["h"], alpha=0.5, beta=2.0),
        node("Identity", ["h"], ["i"]),
        node("Transpose", ["mw_t"], ["mw"], perm=[1, 0]),  # a weight kept as (out, in), transposed by a node
        node("MatMul", ["i", "mw"], ["logits"]),
    ]
    weights = {
        "cw": (5, 2, 3, 3),
        "cb": (5,),
        "g": rng.uniform(0.5, 2, 5).astype(np.float32),
        "be": (5,),
        "mu": (5,),
        "var": rng.uniform(0.5, 2, 5).astype(np.float32),
        "gw": (5 * 2 * 6, 12),
        "gb": (12,),
        "mw_t": (4, 12),
    }
    return model(nodes, weights, (2, 11, 12), opset=13)


def imported_network(m, tmp_path, *overrides):
    """``fw import-onnx`` of ``m``, then the network ``fw run`` would build from what it wrote."""
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    code, out, err = _import(path, tmp_path, overrides)
    assert code == 0, err
    cfg = fw.load_config(str(tmp_path / "imported.yaml"))
    return fw.build_network(cfg), cfg, out


def _import(path, tmp_path, overrides):
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from framework.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["import-onnx", str(path), str(tmp_path / "imported.yaml"), *map(str, overrides)])
    return code, out.getvalue(), err.getvalue()


def agree(m, net, x):
    """ORT on the original graph against fw on the imported network."""
    want = ort_predict(m, x)
    got = np.concatenate([net.predict(x[a : a + 1000]) for a in range(0, len(x), 1000)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert (got.argmax(axis=1) != want.argmax(axis=1)).sum() <= len(x) // 10_000  # a float tie at most


@pytest.mark.slow
def test_the_books_convnet_as_pytorch_writes_it(tmp_path, mnist_dir):
    arrays = (
        fw.get_registry()
        .get("weight_importers", "pickle", "test")()
        .load(need("book/params.pkl") / "book" / "params.pkl")
    )
    m = torch_convnet(*(arrays[k].astype(np.float32) for k in ("W1", "b1", "W2", "b2", "W3", "b3")))
    net, cfg, out = imported_network(m, tmp_path, f"dataset.root={mnist_dir}")
    assert [type(layer).name for layer in net.layers] == [
        "conv2d",
        "relu",
        "max_pool2d",
        "flatten",
        "dense",
        "relu",
        "dense",
    ]
    assert "model.layers[3] flatten  <- node 10 '/Reshape' (Reshape)" in out and "ends without softmax" in out
    x, t = fw.load_dataset(cfg)
    agree(m, net, x[:2000])
    assert (net.classify(x) == t).sum() == 9600  # the book's figure for these weights


def test_a_keras_style_mlp(tmp_path, fashion_dir):
    m = keras_mlp()
    net, cfg, _ = imported_network(m, tmp_path, "dataset.name=fashion_mnist", f"dataset.root={fashion_dir}")
    assert [type(layer).name for layer in net.layers] == [
        "flatten",
        "dense",
        "relu",
        "batch_norm",
        "dropout",
        "dense",
        "softmax",
    ]
    assert (cfg.dataset.flatten, net.layers[3].eps, net.layers[4].rate) == (False, 1e-3, 0.3)
    x, _ = fw.load_dataset(cfg)
    agree(m, net, x.reshape(-1, 28, 28)[:2000])


def test_every_other_op(tmp_path):
    m = every_op()
    imported = read_model(m, tmp_path)
    assert imported.layers == [
        {"name": "conv2d", "filters": 5, "kernel_size": 3, "stride": [2, 1], "padding": [1, 2]},
        "batch_norm",
        "sigmoid",
        {"name": "avg_pool2d", "pool_size": 2, "stride": 1},
        {"name": "max_pool2d", "pool_size": 3, "stride": 2},
        "flatten",
        {"name": "dense", "units": 12},
        {"name": "dense", "units": 4},
    ]
    registry, layers = fw.get_registry(), []
    for entry in imported.layers:
        name, params = (
            (entry, {}) if isinstance(entry, str) else (entry["name"], {k: v for k, v in entry.items() if k != "name"})
        )
        layers.append(registry.get("layers", name, "test")(**params))
    net = fw.Network(layers).build(imported.input_shape)
    from framework.data.weights import load_weights

    load_weights(net, imported.arrays, "test")
    agree(m, net, np.random.default_rng(0).normal(size=(300, 2, 11, 12)).astype(np.float32))


def read_model(m, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(m, str(path))
    return read(path, fw.get_registry())


@pytest.fixture
def trained_mlp(tmp_path, fashion_dir, monkeypatch):
    """fashion_mlp_layers (batch_norm, dropout) after one epoch on 2,000 test images."""
    from framework.training.trainer import Trainer

    monkeypatch.chdir(tmp_path)
    overrides = [f"dataset.root={fashion_dir}", f"weights.path={tmp_path / 'w.npz'}", "train.epochs=1"]
    trainer = Trainer(fw.load_config("fashion_mlp_layers", overrides))
    x, t = fw.load_dataset(trainer.cfg)
    trainer.fit(x[:2000], t[:2000], x[:100], t[:100])
    trainer.output.write(trainer.net)
    return overrides[:2]


def round_trip(capsys, tmp_path, config, overrides, rows=None):
    """fw export, fw import-onnx, fw run: the imported network predicts what the original does (on ``rows`` images)."""
    onnx_path, out = tmp_path / "m.onnx", tmp_path / "back.yaml"
    code, _, err = run_fw(capsys, "export", config, onnx_path, *overrides)
    assert code == 0, err
    code, stdout, err = run_fw(
        capsys, "import-onnx", onnx_path, out, *[o for o in overrides if o.startswith("dataset.root")]
    )
    assert code == 0, err
    assert f"wrote {out} and {out.with_suffix('.npz')}; run it: fw run {out}" in stdout
    code, ran, err = run_fw(capsys, "run", out, "--json")
    assert code == 0, err
    cfg_a, cfg_b = fw.load_config(config, overrides), fw.load_config(str(out))
    x, t = fw.load_dataset(cfg_a)
    before = fw.build_network(cfg_a).classify(x[:rows])
    assert np.array_equal(before, fw.build_network(cfg_b).classify(x[:rows]))
    return (before == t[:rows]).sum(), json.loads(ran), out.read_text()


@pytest.mark.slow
def test_round_trip_of_an_mlp_with_batch_norm_and_dropout(capsys, tmp_path, trained_mlp):
    correct, after, text = round_trip(capsys, tmp_path, "fashion_mlp_layers", trained_mlp)
    assert correct == after["correct"] and after["accuracy"] > 0.5
    assert "name: fashion_mnist" in text  # from the export's own metadata
    assert "- name: dropout\n    rate: 0.2" in text and "- batch_norm" in text


@pytest.mark.slow
def test_round_trip_of_a_convnet(capsys, tmp_path, mnist_dir):
    config = tmp_path / "convnet.yaml"
    config.write_text(
        f"dataset: {{name: mnist, root: '{mnist_dir}', flatten: false}}\n"
        "model:\n  layers: [{name: conv2d, filters: 30, kernel_size: 5}, relu, {name: max_pool2d, pool_size: 2},\n"
        "           {name: dense, units: 100}, relu, {name: dense, units: 10}, softmax]\n"
        f"weights: {{importer: pickle, path: '{need('book/params.pkl') / 'book' / 'params.pkl'}'}}\n"
    )
    _, after, text = round_trip(capsys, tmp_path, str(config), [], rows=2000)  # fw run: all 10,000
    assert after["correct"] == 9600  # the book's figure for these weights
    assert "flatten: false" in text


def test_what_it_writes(capsys, tmp_path):
    path = tmp_path / "k.onnx"
    onnx.save(keras_mlp(), str(path))
    code, out, err = run_fw(
        capsys, "import-onnx", path, tmp_path / "k.yaml", "dataset.name=fashion_mnist", "batch_size=50"
    )
    assert code == 0, err
    text = (tmp_path / "k.yaml").read_text()
    assert text.startswith(f"# Imported by fw import-onnx from {path} (tf2onnx 1.16.1, opset 17).")
    assert (
        "weights:\n  importer: npz\n  path: k.npz\n" in text
        and "batch_size: 50" in text
        and "name: fashion_mnist" in text
    )
    assert "train:" not in text  # the defaults are left out
    with np.load(tmp_path / "k.npz") as w:
        assert sorted(w.files) == ["1.W", "1.b", "3.beta", "3.gamma", "3.running_mean", "3.running_var", "5.W", "5.b"]
    one_line_error(*run_fw(capsys, "import-onnx", path, tmp_path / "k.yaml"), "already exists", "--force")
    assert run_fw(capsys, "import-onnx", path, tmp_path / "k.yaml", "--force")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npz", "k.onnx", "k.yaml"]  # no .part left


# -- what fw cannot import: one line each, and nothing written ---------------------------------


def refused(capsys, tmp_path, m, *fragments, overrides=()):
    path = tmp_path / "bad.onnx"
    if isinstance(m, bytes):
        path.write_bytes(m)
    else:
        onnx.save(m, str(path))
    one_line_error(*run_fw(capsys, "import-onnx", path, tmp_path / "out.yaml", *overrides), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def mlp_with(extra_nodes, extra_weights=None, last="h"):
    nodes = [node("Gemm", ["input", "w", "b"], ["h"], "/fc/Gemm", transB=1), *extra_nodes]
    return model(nodes, {"w": (10, 6), "b": (10,), **(extra_weights or {})}, (6,), output=last)


def test_an_unknown_op_names_the_op_the_node_and_its_position(capsys, tmp_path):
    m = mlp_with([node("Elu", ["h"], ["e"], "/act/Elu")], last="e")
    refused(
        capsys,
        tmp_path,
        m,
        "node 1 '/act/Elu' (Elu): fw has no layer for this op",
        "fw's layers and the installed plugins' read Add, AveragePool, BatchNormalization, Cast, Conv",
    )


def test_a_branching_graph_says_fw_networks_are_sequential(capsys, tmp_path):
    m = mlp_with([node("Relu", ["h"], ["r"], "/relu"), node("Add", ["h", "r"], ["s"], "/residual/Add")], last="s")
    refused(
        capsys,
        tmp_path,
        m,
        "the graph branches",
        "'/relu' (Relu) and node 2 '/residual/Add' (Add)",
        "fw networks are sequential",
    )


def test_a_cycle_ends_with_a_line(capsys, tmp_path):
    m = mlp_with([node("Relu", ["h"], ["r"], "/a"), node("Relu", ["r"], ["input"], "/b")], last="never")
    refused(capsys, tmp_path, m, "comes round again: the graph has a cycle")


def test_two_inputs_are_not_a_sequential_network(capsys, tmp_path):
    m = mlp_with([])
    m.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 6]))
    refused(capsys, tmp_path, m, "the graph has 2 input(s)", "fw networks are sequential")


@pytest.mark.parametrize(
    "op, attrs, fragment",
    [
        ("MaxPool", {"kernel_shape": [2, 2], "ceil_mode": 1}, "ceil_mode=1; fw's layer supports ceil_mode 0 only"),
        ("MaxPool", {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}, "fw's pooling layers do not pad"),
        ("Conv", {"group": 2}, "group=2"),
        ("Conv", {"dilations": [2, 2]}, "has dilations"),
        ("Conv", {"pads": [1, 0, 0, 0]}, "pads each side alike"),
        ("Softmax", {"axis": 1}, "fw's softmax takes it over each row"),
    ],
)
def test_attributes_fw_cannot_honour_are_refused_by_name(capsys, tmp_path, op, attrs, fragment):
    inputs = ["input", "w"] if op == "Conv" else ["input"]
    m = model(
        [node(op, inputs, ["y"], f"/x/{op}", **attrs)],
        {"w": (4, 2, 3, 3)} if op == "Conv" else {},
        (2, 8, 8),
        output="y",
    )
    refused(capsys, tmp_path, m, f"node 0 '/x/{op}' ({op})", fragment)


def test_a_reshape_that_is_not_a_flatten_is_refused(capsys, tmp_path):
    m = model(
        [node("Reshape", ["input", "shape"], ["y"], "/view")],
        {"shape": np.array([-1, 2, 32], np.int64)},
        (4, 4, 4),
        output="y",
    )
    refused(capsys, tmp_path, m, "node 0 '/view' (Reshape): reshapes (batch, 4, 4, 4) to (-1, 2, 32)", "a flatten")


def test_a_shape_computation_fw_cannot_follow_is_named(capsys, tmp_path):
    nodes = [
        node("Shape", ["input"], ["s"]),
        node("ReduceProd", ["s"], ["n"], "/prod"),
        node("Reshape", ["input", "n"], ["y"], "/view"),
    ]
    refused(
        capsys,
        tmp_path,
        model(nodes, {}, (4, 4), output="y"),
        "node 1 '/prod' (ReduceProd) computes an input",
        "fw works out only",
    )


def test_a_very_long_shape_computation_stops_with_a_line(capsys, tmp_path):
    nodes = [const("t0", [-1, 16])] + [node("Identity", [f"t{k}"], [f"t{k + 1}"]) for k in range(500)]
    nodes.append(node("Reshape", ["input", "t500"], ["y"], "/view"))
    refused(capsys, tmp_path, model(nodes, {}, (4, 4), output="y"), "worked out by more than 64 nodes")


def test_training_mode_dropout_is_refused(capsys, tmp_path):
    m = mlp_with(
        [node("Dropout", ["h", "r", "on"], ["d"], "/drop")],
        {"r": np.array(0.5, np.float32), "on": np.array(True)},
        last="d",
    )
    refused(capsys, tmp_path, m, "node 1 '/drop' (Dropout): has training_mode on")


def test_a_layer_fw_lacks_names_the_node_and_the_plugin(capsys, tmp_path):
    refused(
        capsys,
        tmp_path,
        mlp_with([node("Tanh", ["h"], ["t"], "/act/Tanh")], last="t"),
        "node 1 '/act/Tanh' (Tanh): needs a 'tanh' layer",
        "fw-extra-activations",
    )


def test_an_input_of_another_dataset_is_named(capsys, tmp_path):
    m = model(
        [node("Flatten", ["input"], ["f"]), node("Gemm", ["f", "w", "b"], ["y"], transB=1)],
        {"w": (10, 3 * 32 * 32), "b": (10,)},
        (3, 32, 32),
        output="y",
    )
    refused(
        capsys,
        tmp_path,
        m,
        "the model takes examples of shape (3, 32, 32), but dataset 'mnist' gives (1, 28, 28)",
        "name the dataset it classifies: dataset.name=image_folder "
        "dataset.path=FOLDER 'dataset.size=[32, 32]' dataset.color=rgb",
    )


@pytest.mark.parametrize(
    "inputs, classes, advice",
    [
        (
            784,
            3,
            "dataset.name=csv dataset.path=TABLE.csv dataset.label=COLUMN "
            "(a table of 784 feature columns and 3 classes)",
        ),
        (
            6,
            10,
            "dataset.name=csv dataset.path=TABLE.csv dataset.label=COLUMN "
            "(a table of 6 feature columns and 10 classes)",
        ),
    ],
)
def test_an_output_of_another_dataset_names_the_overrides_to_set(capsys, tmp_path, inputs, classes, advice):
    m = model(
        [node("Gemm", ["input", "w", "b"], ["y"], transB=1)],
        {"w": (classes, inputs), "b": (classes,)},
        (inputs,),
        output="y",
    )
    fragments = [f"gives {classes} scores per example (one per class), but dataset 'mnist' has 10 classes", advice]
    if inputs != 784:
        fragments[0] = "the model takes examples of shape (6,), but dataset 'mnist' gives (784,)"
    refused(capsys, tmp_path, m, *fragments)


def test_ten_classes_of_28x28_images_name_the_datasets_that_fit(capsys, tmp_path, tmp_path_factory):
    table = tmp_path_factory.mktemp("table") / "t.csv"
    table.write_text("a,b,y\n1,2,x\n3,4,z\n5,6,x\n7,8,z\n9,1,x\n")
    m = model(
        [node("Flatten", ["input"], ["f"]), node("Gemm", ["f", "w", "b"], ["y"], transB=1)],
        {"w": (10, 784), "b": (10,)},
        (1, 28, 28),
        output="y",
    )
    refused(
        capsys,
        tmp_path,
        m,
        "the model takes examples of shape (1, 28, 28), but dataset 'csv' gives (2,)",
        "name the dataset it classifies: dataset.name=fashion_mnist or "
        "dataset.name=mnist, or for your own data dataset.name=image_folder",
        overrides=["dataset.name=csv", f"dataset.path={table}", "dataset.label=y"],
    )


def test_a_bad_override_names_the_override(capsys, tmp_path):
    refused(capsys, tmp_path, mlp_with([]), "dataset.nme", "did you mean 'dataset.name'", overrides=["dataset.nme=x"])


# -- hostile files: refused before anything is allocated or opened ------------------------------------


def test_a_tensor_whose_bytes_disagree_with_its_shape_is_refused(capsys, tmp_path):
    m = mlp_with([])
    w = m.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([1 << 40, 1 << 20])  # 2^60 values declared, 240 bytes held
    refused(
        capsys,
        tmp_path,
        m,
        "tensor 'w' declares shape (1099511627776, 1048576)",
        "holds 240 bytes",
        "damaged or forged",
    )


def test_external_data_is_refused_without_opening_the_file(capsys, tmp_path):
    secret = tmp_path / "secret.bin"
    m = mlp_with([])
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=str(secret))
    opened = []
    sys.addaudithook(
        lambda event, args: opened.append(args[0]) if event == "open" and "secret" in str(args[0]) else None
    )
    path = tmp_path / "bad.onnx"
    onnx.save(m, str(path))
    one_line_error(
        *run_fw(capsys, "import-onnx", path, tmp_path / "o.yaml"),
        "keeps its data in an external file",
        "external_data=False",
    )
    assert not opened


@pytest.mark.parametrize(
    "content, fragment", [(b"", "its graph is empty"), (b"\xff" * 64, "not an ONNX model (protobuf cannot parse it")]
)
def test_not_a_model(capsys, tmp_path, content, fragment):
    refused(capsys, tmp_path, content, "bad.onnx", fragment)


def test_too_large_a_file_is_refused_before_parsing(capsys, tmp_path, monkeypatch):
    from framework.interchange import onnx_import

    monkeypatch.setattr(onnx_import, "MAX_BYTES", 100)
    refused(capsys, tmp_path, mlp_with([]), "larger than 0 MiB")


def test_a_fifo_is_refused_at_once(capsys, tmp_path):
    import os

    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    one_line_error(*run_fw(capsys, "import-onnx", fifo, tmp_path / "o.yaml"), "is a FIFO, not a regular file")


def test_without_onnx_it_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    one_line_error(
        *run_fw(capsys, "import-onnx", tmp_path / "m.onnx", tmp_path / "o.yaml"),
        "fw import-onnx needs the onnx package",
        "pip install onnx",
    )


def test_the_book_exported_then_imported_keeps_its_accuracy(capsys, tmp_path, mnist_dir, book_weights):
    data = [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
    assert run_fw(capsys, "export", BOOK, tmp_path / "b.onnx", *data)[0] == 0
    assert run_fw(capsys, "import-onnx", tmp_path / "b.onnx", tmp_path / "b.yaml", data[0])[0] == 0
    code, out, err = run_fw(capsys, "run", tmp_path / "b.yaml")
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")


@pytest.mark.slow
def test_mutated_models_end_in_a_layer_list_or_one_line(capsys, tmp_path):
    """Models with shapes, attributes, ops, inputs and types changed at random: each import either works or
    ends in one line fw words itself (never a traceback, nor the 'rerun with --debug' of an unforeseen error)."""
    import random

    rng = random.Random(0)
    W = np.random.default_rng(0).normal(size=(4320, 100)).astype(np.float32)
    base = torch_convnet(
        np.ones((30, 1, 5, 5), np.float32),
        np.zeros(30, np.float32),
        W,
        np.zeros(100, np.float32),
        np.ones((100, 10), np.float32),
        np.zeros(10, np.float32),
    )
    ops = [
        "Relu",
        "Gemm",
        "MatMul",
        "Conv",
        "MaxPool",
        "Flatten",
        "Reshape",
        "Softmax",
        "Dropout",
        "Identity",
        "Shape",
        "Concat",
        "Slice",
        "Sub",
        "Div",
        "Mul",
        "Add",
        "Scaler",
        "Cast",
        "BatchNormalization",
    ]
    outcomes = set()
    for _ in range(120):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        g = m.graph
        r = rng.random()
        if r < 0.25:
            t = rng.choice(g.initializer)
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 7, 1 << 40])
        elif r < 0.5:
            a = rng.choice([a for n in g.node for a in n.attribute if a.ints or a.type == 2])
            if a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice([0, 3, -1, 1 << 40])
            else:
                a.i = rng.choice([-1, 1, 5])
        elif r < 0.7:
            rng.choice(g.node).op_type = rng.choice(ops)
        elif r < 0.85:
            n = rng.choice([n for n in g.node if n.input])
            n.input[rng.randrange(len(n.input))] = rng.choice(
                [*(o for k in g.node for o in k.output), "input", "nowhere"]
            )
        else:
            rng.choice(g.initializer).data_type = rng.choice([6, 7, 8, 16])
        path = tmp_path / "m.onnx"
        onnx.save(m, str(path))
        code, out, err = run_fw(capsys, "import-onnx", path, tmp_path / "m.yaml", "--force")
        assert code in (0, 1) and "Traceback" not in err and "--debug" not in err, err
        assert code == 0 or (err.startswith("fw: error: ") and err.count("\n") == 1), err
        outcomes.add(code)
    assert outcomes == {0, 1}


# -- what layers read of themselves: plugins, a model's own preparation, casts -----------------------


def leaky_mlp(alpha=0.1):
    """What torch.onnx.export writes for Linear, LeakyReLU(alpha), Linear (benchmarks: the same with torch)."""
    nodes = [
        node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], "/fc1/Gemm", alpha=1.0, beta=1.0, transB=1),
        node("LeakyRelu", ["h"], ["a"], "/act/LeakyRelu", alpha=alpha),
        node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["logits"], "/fc2/Gemm", alpha=1.0, beta=1.0, transB=1),
    ]
    return model(nodes, {"fc1.weight": (32, 784), "fc1.bias": (32,), "fc2.weight": (10, 32), "fc2.bias": (10,)}, (784,))


@pytest.fixture
def extra_installed(extra_activations, monkeypatch):
    """examples/fw-extra-activations installed and seen by this process's registry."""
    from framework.plugin_system import manager as plugins

    monkeypatch.syspath_prepend(str(extra_activations))
    monkeypatch.delenv("FW_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    plugins._build.cache_clear()
    yield
    plugins._build.cache_clear()


def test_a_plugins_layer_reads_its_own_op(tmp_path, extra_installed):
    m = leaky_mlp()
    net, cfg, out = imported_network(m, tmp_path)
    assert [type(layer).name for layer in net.layers] == ["dense", "leaky_relu", "dense"]
    assert (
        net.layers[1].alpha == 0.1
        and "model.layers[1] leaky_relu (alpha: 0.1)  <- node 1 '/act/LeakyRelu' (LeakyRelu)" in out
    )
    agree(m, net, np.random.default_rng(0).uniform(0, 1, size=(500, 784)).astype(np.float32) / 10)


def test_the_refusal_lists_the_ops_installed_plugins_read(capsys, tmp_path, extra_installed):
    refused(
        capsys,
        tmp_path,
        mlp_with([node("Elu", ["h"], ["e"], "/act/Elu")], last="e"),
        "fw has no layer for this op",
        "Identity, LeakyRelu, MatMul",
    )


def test_without_the_plugin_the_op_names_the_package_to_install(capsys, tmp_path):
    refused(
        capsys,
        tmp_path,
        leaky_mlp(),
        "node 1 '/act/LeakyRelu' (LeakyRelu): needs a 'leaky_relu' layer",
        "pip install ./examples/fw-extra-activations",
    )


def test_a_models_own_normalisation_becomes_a_rescale_layer(capsys, tmp_path, mnist_dir):
    """PyTorch's transforms.Normalize folded into the model: Sub and Div by per-channel constants, then a Cast to
    float that changes nothing. mnist's own normalisation (pixels to 0..1) stays: it is not a standardisation."""
    nodes = [
        node("Sub", ["input", "mean"], ["centred"], "/Sub"),
        node("Div", ["centred", "std"], ["scaled"], "/Div"),
        node("Cast", ["scaled"], ["as_float"], "/Cast", to=TensorProto.FLOAT),
        node("Flatten", ["as_float"], ["f"], "/Flatten"),
        node("Gemm", ["f", "w", "b"], ["z"], "/fc/Gemm", transB=1),
        node("Softmax", ["z"], ["logits"], "/Softmax", axis=-1),
    ]
    weights = {
        "mean": np.full((1, 1, 1), 0.1307, np.float32),
        "std": np.full((1, 1, 1), 0.3081, np.float32),
        "w": (10, 784),
        "b": (10,),
    }
    m = model(nodes, weights, (1, 28, 28))
    net, cfg, out = imported_network(m, tmp_path, f"dataset.root={mnist_dir}", "dataset.flatten=false")
    assert [type(layer).name for layer in net.layers] == ["rescale", "flatten", "dense", "softmax"]
    assert "model.layers[0] rescale  <- node 0 '/Sub' (Sub)" in out and cfg.dataset.normalize is True
    x, _ = fw.load_dataset(cfg)
    agree(m, net, x[:2000])


def test_a_cast_that_changes_the_values_is_refused(capsys, tmp_path):
    m = mlp_with([node("Cast", ["h"], ["c"], "/Cast", to=TensorProto.INT64)], last="c")
    refused(
        capsys,
        tmp_path,
        m,
        "node 1 '/Cast' (Cast): casts the network's float32 values to ONNX type 7",
        "a Cast to float only",
    )


def test_of_two_float_outputs_fw_cannot_tell_which_is_the_network(capsys, tmp_path):
    m = mlp_with([node("Relu", ["h"], ["r"], "/relu")], last="r")
    m.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    refused(capsys, tmp_path, m, "the graph has 2 outputs ('r', 'h'), 2 of them float tensors", "fw reads one")


def test_the_constant_of_a_sub_must_act_on_each_example_alone(capsys, tmp_path):
    m = mlp_with([node("Sub", ["h", "c"], ["s"], "/Sub")], {"c": (5, 10)}, last="s")
    refused(
        capsys,
        tmp_path,
        m,
        "node 1 '/Sub' (Sub): its constant has shape (5, 10), which does not act on each example of shape (10,) alone",
    )


READERS = '''
import numpy as np
from framework import Layer, hookimpl


class ShiftBy(Layer):
    """Reads an Elu of alpha 2 only (as nothing sensible would), and leaves any other to the next reader."""

    name = "shift_by"
    onnx_ops = ("Elu",)

    def __init__(self, by=0.0):
        self.by = by

    def forward(self, x, train=False):
        return x + np.float32(self.by)

    @classmethod
    def from_onnx(cls, node):
        return ({"name": cls.name, "by": 1.5}, {}) if node.attrs.get("alpha") == 2.0 else NotImplemented


class Careless(Layer):
    name = "ztail"
    onnx_ops = ("Elu",)

    def forward(self, x, train=False):
        return x

    @classmethod
    def from_onnx(cls, node):
        return "ztail"  # not (entry, arrays)


@hookimpl
def register_layers(register):
    register(ShiftBy)
    register(Careless)
'''


@pytest.mark.parametrize(
    "alpha, outcome",
    [
        (2.0, {"name": "shift_by", "by": 1.5}),
        (1.0, "layer 'ztail' read it as 'ztail'; from_onnx must return (a model.layers entry, a dict of arrays)"),
    ],
)
def test_a_reader_may_leave_a_node_to_the_next_and_a_wrong_answer_is_one_line(tmp_path, alpha, outcome):
    from framework.plugin_system.manager import get_registry

    plugin = tmp_path / "readers.py"
    plugin.write_text(READERS)
    path = tmp_path / "m.onnx"
    onnx.save(mlp_with([node("Elu", ["h"], ["e"], "/act/Elu", alpha=alpha)], last="e"), str(path))
    registry = get_registry((str(plugin),))
    if isinstance(outcome, dict):
        assert read(path, registry).layers[1] == outcome
    else:
        with pytest.raises(
            FwError, match=r"node 1 '/act/Elu' \(Elu\): " + outcome.replace("(", r"\(").replace(")", r"\)")
        ):
            read(path, registry)
