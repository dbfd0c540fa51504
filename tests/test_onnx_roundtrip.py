"""Everything fw exports, fw imports: every bundled config through fw export, fw import-onnx and fw run.

Each config runs with the book's weights where it uses them (mnist_infer,
mnist_cnn, mnist_deep_cnn), else with seeded random ones, its biases and
batch-norm statistics drawn too so that none is a no-op. The imported config
must classify every example as the original does: the same correct count from
fw run, before and after.
"""

import json
import warnings

import numpy as np
import pytest

import framework as fw
from conftest import SHARED, need
from framework.data import bundled
from test_cli import fw as run_fw
from test_onnx_configs import NEEDS

pytestmark = pytest.mark.slow

#: fw run on this many test images, before and after (the deep ConvNets take a while on all 10,000).
ROWS = "dataset.limit=1000"


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def seeded_weights(name, tmp_path):
    """Overrides giving ``name`` weights: the book's when it uses them, else seeded random ones in an npz file."""
    cfg = fw.load_config(name, require_weights=False)
    if cfg.weights is not None and cfg.weights.importer == "pickle":
        need(f"book/{cfg.weights.path.rsplit('/', 1)[-1]}")
        return []
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "weights is null": the random initialisation is the point here
        net = fw.build_network(fw.load_config(name, ["weights=null"]))
    draw = {"running_var": lambda a: rng.uniform(0.5, 2, a.shape), "gamma": lambda a: rng.uniform(0.5, 1.5, a.shape)}
    arrays = {
        k: draw.get(k.split(".", 1)[1], lambda a: a + rng.normal(0, 0.1, a.shape))(a)
        for k, a in net.state_dict().items()
    }
    path = tmp_path / "seeded.npz"
    np.savez(path, **{k: np.asarray(a, np.float32) for k, a in arrays.items()})
    return [f"weights={{importer: npz, path: '{path}'}}"]


def fw_run(capsys, config, *overrides):
    code, out, err = run_fw(capsys, "run", config, *overrides, "--json")
    assert code == 0, err
    return json.loads(out)["correct"]


@pytest.mark.parametrize("name", bundled.config_names())
def test_every_bundled_config_round_trips_with_the_same_correct_count(name, capsys, tmp_path, monkeypatch):
    need(*NEEDS.get(fw.load_config(name, require_weights=False).dataset.name, ()))  # a new dataset: add its files there
    monkeypatch.setenv("FW_DATA_DIR", str(SHARED))
    monkeypatch.chdir(tmp_path)
    weights = seeded_weights(name, tmp_path)
    onnx_path, back = tmp_path / f"{name}.onnx", tmp_path / "back.yaml"
    code, _, err = run_fw(capsys, "export", name, onnx_path, *weights)
    assert code == 0, err
    code, _, err = run_fw(capsys, "import-onnx", onnx_path, back)
    assert code == 0, err
    before, after = fw_run(capsys, name, *weights, ROWS), fw_run(capsys, back, ROWS)
    assert before == after
    cfg_a, cfg_b = fw.load_config(name, [*weights, ROWS]), fw.load_config(str(back), [ROWS])
    x, _ = fw.load_dataset(cfg_a)
    assert np.array_equal(fw.build_network(cfg_a).classify(x), fw.build_network(cfg_b).classify(x))
    if name == "mnist_deep_cnn":  # the book's dropout rule, a Mul by 1 - rate, comes back as a rescale
        assert before == 979 and "- rescale" in back.read_text()


def exported_and_read(net, tmp_path):
    import onnx

    from framework.interchange.onnx_export import export
    from framework.interchange.onnx_import import read

    rng = np.random.default_rng(3)
    for key, a in net.state_dict().items():
        a[...] = (
            rng.uniform(0.5, 2, a.shape) if key.endswith(("var", "scale", "gamma")) else rng.normal(0, 0.3, a.shape)
        )
    path = tmp_path / "net.onnx"
    classes = [f"c{i}" for i in range(net.output_shape[0])]
    onnx.save(export(net, class_names=classes, config_text="model: {}", fw_version="0.1.0"), str(path))
    imported = read(path, fw.get_registry())
    assert [e if isinstance(e, str) else e["name"] for e in imported.layers] == [layer.name for layer in net.layers]
    state = net.state_dict()
    assert sorted(imported.arrays) == sorted(state)
    for key, a in state.items():
        np.testing.assert_allclose(imported.arrays[key], a, rtol=1e-6, atol=0)
    return imported


def test_every_built_in_layer_reads_back_what_it_exports(tmp_path):
    """Export networks of every built-in layer that reads itself, read them back: the same layers and arrays.

    Only the book's dropout rule (a Mul) and the identity activation (nothing) come back as other layers."""
    from framework.plugin_system.builtins import builtin_names
    from framework.plugins.activations import ReLU, Sigmoid, Softmax
    from framework.plugins.binary_sigmoid import BinarySigmoid
    from framework.plugins.conv import AvgPool2D, Conv2D, MaxPool2D
    from framework.plugins.layers import BatchNorm, Dense, Dropout, Flatten
    from framework.plugins.rescale import Rescale

    layers = [
        Rescale(),
        Conv2D(4, 3, padding=1),
        BatchNorm(momentum=0.5, eps=1e-3),
        ReLU(),
        MaxPool2D(2),
        Conv2D(3, (3, 2), stride=(2, 1)),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dense(16),
        BatchNorm(),
        Dropout(0.25),
        Sigmoid(),
        Dense(5),
        Softmax(),
    ]
    binary = [Dense(8), ReLU(), Dense(1), BinarySigmoid()]  # what Sigmoid reads as, with the nodes after it
    registry = fw.get_registry()
    readers = {
        n
        for kinds in builtin_names().values()
        for n in kinds.get("layers", []) + kinds.get("activations", [])
        if registry.get("layers", n, "test").onnx_ops
    }
    assert {layer.name for layer in layers} == readers  # a new built-in reader: add it here
    imported = exported_and_read(fw.Network(layers).build((2, 13, 11), np.random.default_rng(0)), tmp_path)
    assert imported.layers[2] == {"name": "batch_norm", "momentum": 0.5, "eps": 0.001} and imported.layers[10] == {
        "name": "dropout",
        "rate": 0.25,
    }
    exported_and_read(fw.Network(binary).build((6,), np.random.default_rng(0)), tmp_path)


def test_rescale_keeps_the_layer_contract():
    from framework.plugins.rescale import Rescale
    from framework.testing import check_layer

    check_layer(Rescale, (3, 4))
