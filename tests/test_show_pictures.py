"""fw show --filters and --activations: the book's figure 7-24 and figures 6-10 to 6-14, drawn from a config."""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from conftest import REPO, need
from test_cli import fw as run_cli, one_line_error
from test_show_report_config import tiles_match

PIL = pytest.importorskip("PIL.Image", reason="Pillow is in the test extra: pip install -e '.[test]'")
CONFIGS = REPO / "configs"
pytestmark = pytest.mark.filterwarnings("ignore:weights is null")  # the tests' own networks, built untrained


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


@pytest.fixture
def mnist_cnn():
    data = need("book/params.pkl", "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
    weights = data / "book" / "params.pkl"
    return [CONFIGS / "mnist_cnn.yaml", f"dataset.root={data / 'mnist'}", f"weights.path={weights}"]


@pytest.fixture
def ch6(fashion_dir):
    return [CONFIGS / "ch6_init_std001.yaml", f"dataset.root={fashion_dir}", "weights=null"]


def expected_tiles(w):
    """The book's imshow(filters[i, 0], cmap=gray_r): each filter's own min white, its own max black."""
    w = np.asarray(w, np.float64)[:, 0]
    lo, hi = w.min(axis=(1, 2))[:, None, None], w.max(axis=(1, 2))[:, None, None]
    return np.rint(255 * (hi - w) / (hi - lo)).astype(np.uint8)


def test_filters_of_the_trained_chapter7_network_are_its_weights_scaled_per_filter(capsys, mnist_cnn, tmp_path):
    from framework.cli.show import filter_scale

    out = tmp_path / "filters.png"
    code, stdout, err = run_cli(capsys, "show", *mnist_cnn, "--filters", "--out", out)
    assert code == 0, err
    width, height = PIL.open(out).size
    assert stdout == f"wrote {out} ({width}x{height} px): 30 filters of model.layers[0] (conv2d)\n"
    with open(mnist_cnn[2].split("=", 1)[1], "rb") as f:
        w1 = pickle.load(f)["W1"].astype(np.float32)  # the book's own file, read here without fw
    assert w1.shape == (30, 1, 5, 5)
    tiles = expected_tiles(w1)
    assert all(t.min() == 0 and t.max() == 255 for t in tiles)
    scale = filter_scale(w1)
    assert scale * 5 >= 40, "tiles big enough to see"
    assert tiles_match(out, tiles[[0, 7, 17, 29]], scale=scale)
    globally = np.rint(255 * (w1.max() - w1[:, 0]) / (w1.max() - w1.min())).astype(np.uint8)
    assert not tiles_match(out, globally[[0]], scale=scale), "each filter has its own range, not the layer's"
    assert all(tiles_match(out, tiles[[i]], scale=scale) for i in range(30))


def test_random_filters_are_the_seeded_initialisation_and_differ_from_the_trained(capsys, mnist_cnn, tmp_path):
    from framework.cli.show import filter_scale

    random_png, again_png, trained_png = tmp_path / "random.png", tmp_path / "again.png", tmp_path / "trained.png"
    for out, extra in ((random_png, ["weights=null"]), (again_png, ["weights=null"]), (trained_png, [])):
        code, _, err = run_cli(capsys, "show", *mnist_cnn, *extra, "--filters", "--out", out)
        assert code == 0 and err == "", err  # no warning that random weights classify at chance
    net = fw.build_network(fw.load_config(mnist_cnn[0], [*map(str, mnist_cnn[1:]), "weights=null"]))
    w = net.layers[0].params["W"]
    scale = filter_scale(w)
    assert tiles_match(random_png, expected_tiles(w)[[0, 29]], scale=scale)
    assert not tiles_match(trained_png, expected_tiles(w)[[0]], scale=scale)
    assert np.array_equal(np.asarray(PIL.open(random_png)), np.asarray(PIL.open(again_png))), "seeded: the same twice"


def hidden_outputs(cfg_path, overrides):
    """Each activation layer's output but the last, on the split's first 1000 examples, computed here."""
    cfg = fw.load_config(cfg_path, overrides)
    net = fw.build_network(cfg)
    x, _ = fw.load_dataset(cfg)
    x = x[:1000].reshape(1000, -1).astype(np.float32)
    outputs = []
    for layer in net.layers[:-1]:
        x = layer(x, False)
        if layer.name in ("relu", "sigmoid"):
            outputs.append(x)
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["model.init=he"], ["model.activation=sigmoid", "model.init.std=1"]])
def test_activation_bars_are_numpys_histograms_of_each_hidden_layer(capsys, ch6, tmp_path, extra):
    from framework.cli.show import BAR, BIN_W, PLOT_H, plot_origins

    out = tmp_path / "activations.png"
    code, stdout, err = run_cli(capsys, "show", *ch6, *extra, "--activations", "--out", out)
    assert code == 0 and err == "", err
    assert stdout.endswith(": 4 activation histograms\n")
    outputs = hidden_outputs(ch6[0], [*map(str, ch6[1:]), *extra])
    assert len(outputs) == 4 and all(o.shape == (1000, 100) for o in outputs)
    hi = max(1.0, max(float(o.max()) for o in outputs))  # the book's 0..1, widened for ReLU's larger values
    assert (hi > 1) == (extra == ["model.init=he"])
    counts = [np.histogram(o, 30, range=(0, hi))[0] for o in outputs]
    shares = [c / c.sum() for c in counts]  # of each layer's values: layers of any size on one scale
    assert all(c.sum() == 100_000 for c in counts)
    tallest = max(s.max() for s in shares)
    pixels = np.asarray(PIL.open(out).convert("RGB"))
    is_bar = np.all(pixels == BAR, axis=2)
    for (left, base), share in zip(plot_origins(4), shares):
        for j, n in enumerate(share):
            column = is_bar[:base, left + j * BIN_W + BIN_W // 2]
            height = int(column.sum())
            assert height == round(PLOT_H * n / tallest), (j, n, height)
            assert not height or column[base - height :].all(), "one bar, standing on the baseline"
    assert is_bar.sum() == sum(round(PLOT_H * n / tallest) * (BIN_W - 1) for s in shares for n in s), "no other bars"


def test_no_convolution_no_hidden_layer_and_mixed_options_are_one_line_errors(
    capsys, ch6, fashion_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    one_line_error(*run_cli(capsys, "show", *ch6, "--filters"), "has no convolution", "--activations", "conv2d")
    flat = tmp_path / "flat.yaml"
    flat.write_text(
        f"dataset: {{name: fashion_mnist, root: {fashion_dir}}}\nmodel: {{sizes: [784, 10]}}\nweights: null\n"
    )
    one_line_error(*run_cli(capsys, "show", flat, "--activations"), "flat has no hidden activation layer", "--filters")
    one_line_error(*run_cli(capsys, "show", *ch6, "--filters", "--activations"), "give one of them")
    mixed = run_cli(capsys, "show", *ch6, "--activations", "--misclassified")
    one_line_error(*mixed, "--activations draws the network")
    one_line_error(*run_cli(capsys, "show", *ch6, "--filters", "--misclassified"), "--filters draws the network")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.yaml"], "no picture written"


def test_an_existing_picture_is_replaced_only_with_force(capsys, ch6, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("ch6_init_std001-activations.png").write_bytes(b"mine")
    refused = run_cli(capsys, "show", *ch6, "--activations")
    one_line_error(*refused, "ch6_init_std001-activations.png already exists", "--force")
    assert Path("ch6_init_std001-activations.png").read_bytes() == b"mine"
    code, _, err = run_cli(capsys, "show", *ch6, "--activations", "--force")
    assert code == 0, err
    assert PIL.open("ch6_init_std001-activations.png").size[0] > 600


@pytest.mark.slow
def test_the_docs_pictures_script_draws_every_picture(tmp_path, monkeypatch, capsys):
    """Into a folder given on the command line, with the data and the book's weights where the configs look.

    --quick: the pictures that need no training (the others train for minutes; the same fw commands)."""
    shared = need(
        "book/params.pkl", "book/deep_convnet_params.pkl", "mnist/t10k-images-idx3-ubyte.gz",
        "fashion-mnist/t10k-images-idx3-ubyte.gz",
    )  # fmt: skip
    monkeypatch.setenv("FW_DATA_DIR", str(shared))
    spec = importlib.util.spec_from_file_location("pictures", REPO / "docs" / "pictures.py")
    pictures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pictures)
    assert pictures.main([str(tmp_path), "--quick"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(pictures.PICTURES)
    for png in tmp_path.iterdir():
        assert PIL.open(png).format == "PNG"


@pytest.mark.slow
def test_layers_of_different_sizes_share_one_scale_of_shares(capsys, mnist_cnn, tmp_path):
    """The CNN's conv ReLU has 17,280,000 values, its dense ReLU 100,000: both histograms show."""
    from framework.cli.show import BAR, BIN_W, BINS, PLOT_H, plot_origins

    out = tmp_path / "activations.png"
    code, stdout, err = run_cli(capsys, "show", *mnist_cnn, "--activations", "--out", out)
    assert code == 0, err
    assert stdout.endswith(": 2 activation histograms\n")
    is_bar = np.all(np.asarray(PIL.open(out).convert("RGB")) == BAR, axis=2)
    plots = [is_bar[base - PLOT_H : base, left : left + BINS * BIN_W] for left, base in plot_origins(2)]
    heights = [plot.sum(axis=0).max() for plot in plots]
    assert min(heights) >= PLOT_H // 3, heights  # ReLU's zeros: about half of each layer's values


def test_values_that_are_not_finite_are_left_out_and_counted():
    """A layer that overflows (weights of a huge scale) still gets its histogram, saying what it left out."""
    from framework.cli.show import _note, activation_histograms

    layer = np.array([[0.0, 0.5, np.inf, np.nan]], np.float32)
    edges, counts = activation_histograms([layer, np.full((2, 2), np.nan, np.float32)])
    assert (edges[0], edges[-1]) == (0, 1) and [int(c.sum()) for c in counts] == [2, 0]
    assert _note(layer) == "mean 0.25, 50% zero, 2 not finite (left out)"
    assert _note(np.full((2, 2), np.nan, np.float32)) == "no finite value, 4 not finite (left out)"
