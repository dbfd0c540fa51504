"""conv2d, max_pool2d and avg_pool2d: check_layer, a naive reference, shape errors, reused buffers,
and the book's SimpleConvNet (configs/fashion_cnn.yaml) learning from a few hundred real images."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework.core.network import Network
from framework.plugins.conv import AvgPool2D, Conv2D, MaxPool2D
from framework.testing import check_layer
from framework.training.trainer import Trainer
from test_cli import fw as run_cli

CNN = Path(__file__).resolve().parents[1] / "configs" / "fashion_cnn.yaml"

RNG = np.random.default_rng(0)


def build(cls, input_shape, **params):
    layer = cls(**params)
    out_shape = layer.build(input_shape, np.random.default_rng(1))
    return layer, out_shape


CONVS = [
    dict(input_shape=(1, 6, 7), filters=3, kernel_size=3),  # one channel, no padding, stride 1
    dict(input_shape=(3, 5, 5), filters=2, kernel_size=3, padding=1),
    dict(input_shape=(2, 7, 6), filters=2, kernel_size=(3, 2), stride=2, padding=(1, 0)),
    dict(input_shape=(2, 6, 6), filters=4, kernel_size=2, stride=(2, 1)),
    dict(input_shape=(2, 5, 4), filters=3, kernel_size=3, padding=3),  # padding wider than the kernel reaches
    dict(input_shape=(3, 4, 5), filters=2, kernel_size=1),
    dict(input_shape=(2, 7, 7), filters=2, kernel_size=3, stride=2, padding=2),
]

# The DeepConvNet's shapes, smaller: 3x3 with padding 1 and 2, 16 to 64 channels.
DEEP_CONVS = [
    dict(input_shape=(16, 4, 4), filters=16, kernel_size=3, padding=1),
    dict(input_shape=(16, 3, 3), filters=32, kernel_size=3, padding=1),
    dict(input_shape=(32, 3, 3), filters=32, kernel_size=3, padding=2),
    dict(input_shape=(16, 2, 2), filters=64, kernel_size=3, padding=1),
    dict(input_shape=(64, 2, 2), filters=16, kernel_size=3, padding=1),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CONVS + DEEP_CONVS, ids=str)
def test_conv_passes_check_layer(case):
    case = dict(case)
    check_layer(Conv2D, case.pop("input_shape"), **case)


POOLS = [
    dict(input_shape=(3, 6, 6), pool_size=2),
    dict(input_shape=(2, 7, 5), pool_size=2),  # an odd row and column that no window covers
    dict(input_shape=(2, 6, 7), pool_size=3, stride=1),  # overlapping windows
    dict(input_shape=(2, 7, 7), pool_size=(3, 2), stride=2),
    dict(input_shape=(1, 8, 8), pool_size=2, stride=3),  # gaps between windows
]


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("case", POOLS, ids=str)
def test_pool_passes_check_layer(cls, case):
    case = dict(case)
    check_layer(cls, case.pop("input_shape"), **case)


def naive_conv(x, W, b, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    f, _, kh, kw = W.shape
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros((len(x), f, oh, ow))
    for n in range(len(x)):
        for o in range(f):
            for i in range(oh):
                for j in range(ow):
                    out[n, o, i, j] = np.sum(x[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw] * W[o]) + b[o]
    return out


def naive_pool(x, size, stride, reduce):
    (kh, kw), (sh, sw) = size, stride
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros((*x.shape[:2], oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], axis=(2, 3))
    return out


@pytest.mark.parametrize("case", CONVS + [dict(input_shape=(1, 28, 28), filters=30, kernel_size=5)], ids=str)
def test_conv_forward_matches_a_naive_convolution(case):
    case = dict(case)
    input_shape = case.pop("input_shape")
    layer, out_shape = build(Conv2D, input_shape, **case)
    layer.params["b"][:] = RNG.standard_normal(layer.params["b"].shape)
    x = RNG.standard_normal((5, *input_shape)).astype(np.float32)
    expected = naive_conv(x, layer.params["W"], layer.params["b"], layer.stride, layer.padding)
    for train in (False, True):
        y = layer.forward(x, train=train)
        assert y.shape == (5, *out_shape) == expected.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls, reduce", [(MaxPool2D, np.max), (AvgPool2D, np.mean)])
@pytest.mark.parametrize("case", POOLS, ids=str)
def test_pool_forward_matches_a_naive_pool(cls, reduce, case):
    case = dict(case)
    input_shape = case.pop("input_shape")
    layer, out_shape = build(cls, input_shape, **case)
    x = RNG.standard_normal((4, *input_shape)).astype(np.float32)
    expected = naive_pool(x, layer.pool_size, layer.stride, reduce)
    for train in (False, True):
        y = layer.forward(x, train=train)
        assert y.shape == (4, *out_shape) == expected.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pooling_a_few_images_at_a_time_gives_the_same_result(cls, monkeypatch):
    """Pooling works through the batch in chunks; chunks of one image must give what one chunk gives."""
    import framework.plugins.conv as conv

    x = RNG.standard_normal((5, 3, 9, 8)).astype(np.float32)
    dout = RNG.standard_normal((5, 3, 4, 3)).astype(np.float32)
    results = []
    for chunk_bytes in (conv.POOL_CHUNK_BYTES, 1):
        monkeypatch.setattr(conv, "POOL_CHUNK_BYTES", chunk_bytes)
        layer, _ = build(cls, (3, 9, 8), pool_size=3, stride=2)
        y = layer.forward(x, train=True).copy()
        results.append((y, layer.backward(dout).copy(), layer.forward(x)))
        check_layer(cls, (2, 7, 6), pool_size=3, stride=2)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        results[1][0], naive_pool(x, (3, 3), (2, 2), np.max if cls is MaxPool2D else np.mean), rtol=1e-5, atol=1e-6
    )


def naive_conv_grads(x, W, dout, stride, padding):
    """dL/dx, dL/dW and dL/db of the naive convolution, in float64, for loss = sum(forward * dout)."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dW = np.zeros_like(xp), np.zeros(W.shape)
    f, _, kh, kw = W.shape
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            dW += np.einsum("nf,nchw->fchw", dout[:, :, i, j], window)
            dxp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += np.einsum("nf,fchw->nchw", dout[:, :, i, j], W)
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dW, dout.sum(axis=(0, 2, 3))


@pytest.mark.parametrize(
    "case", CONVS + [DEEP_CONVS[2], dict(input_shape=(16, 28, 28), filters=16, kernel_size=3, padding=1)], ids=str
)
def test_conv_backward_matches_the_naive_gradients(case):
    """For batches spanning several chunks, and the DeepConvNet's 28x28 maps."""
    case = dict(case)
    input_shape = case.pop("input_shape")
    layer, out_shape = build(Conv2D, input_shape, **case)
    x = RNG.standard_normal((7, *input_shape)).astype(np.float32)
    dout = RNG.standard_normal((7, *out_shape)).astype(np.float32)
    layer.step = 3  # images per chunk: 3, 3 and 1
    layer.forward(x, train=True)
    dx = layer.backward(dout)
    expected = naive_conv_grads(x, layer.params["W"], dout, layer.stride, layer.padding)
    for got, want in zip((dx, layer.grads["W"], layer.grads["b"]), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_max_pool_sends_a_tied_windows_gradient_to_one_input():
    """After a ReLU most windows are all zeros: the gradient must not be copied to each of them."""
    layer, _ = build(MaxPool2D, (2, 4, 6), pool_size=2)
    x = np.zeros((3, 2, 4, 6), np.float32)
    x[0, 0, 0, :2] = 5  # a tie of two non-zero values
    layer.forward(x, train=True)
    dout = RNG.standard_normal((3, 2, 2, 3)).astype(np.float32)
    dx = layer.backward(dout)
    windows = dx.reshape(3, 2, 2, 2, 3, 2)
    assert (np.count_nonzero(windows, axis=(3, 5)) == 1).all()
    np.testing.assert_allclose(windows.sum(axis=(3, 5)), dout, rtol=1e-6)
    assert dx[0, 0, 0, 0] == dout[0, 0, 0, 0]  # the first of the tied maxima


def test_layers_keep_float32_for_float32_input():
    conv, shape = build(Conv2D, (2, 8, 8), filters=3, kernel_size=3, padding=1)
    pool, _ = build(MaxPool2D, shape, pool_size=2)
    x = RNG.standard_normal((4, 2, 8, 8)).astype(np.float32)
    y = pool.forward(conv.forward(x, train=True), train=True)
    dx = conv.backward(pool.backward(np.ones_like(y)))
    assert {a.dtype for a in [y, dx, *conv.params.values(), *conv.grads.values()]} == {np.dtype(np.float32)}


def test_conv_build_uses_the_initializer_it_is_given():
    """fw puts an Initializer (fan_in, fan_out, rng) -> (fan_in, fan_out) in ``init`` before build."""
    seen = []

    def init(fan_in, fan_out, rng):
        seen.append((fan_in, fan_out))
        return np.arange(fan_in * fan_out, dtype=np.float32).reshape(fan_in, fan_out)

    layer = Conv2D(4, (3, 2), init=init)
    layer.build((2, 5, 5), np.random.default_rng(0))
    assert seen == [(12, 4)]
    W = layer.params["W"]
    assert W.shape == (4, 2, 3, 2) and W.dtype == np.float32
    np.testing.assert_array_equal(W[1].ravel(), np.arange(12) * 4 + 1)  # filter 1 is column 1 of init's matrix


def test_default_init_is_he():
    layer, _ = build(Conv2D, (3, 20, 20), filters=200, kernel_size=5)
    assert layer.params["W"].std() == pytest.approx(np.sqrt(2 / 75), rel=0.05)
    assert not layer.params["b"].any()


@pytest.mark.parametrize(
    "layer, input_shape, message",
    [
        (
            Conv2D(2, 5),
            (1, 4, 4),
            "layer 0 (conv2d): its kernel 5x5 is larger than its input 1x4x4, so it has no output",
        ),
        (
            Conv2D(2, (3, 7), padding=1),
            (1, 6, 4),
            "its kernel 3x7 is larger than its input 1x6x4 (8x6 with padding 1x1)",
        ),
        (MaxPool2D(3), (8, 2, 2), "layer 0 (max_pool2d): its pool window 3x3 is larger than its input 8x2x2"),
        (
            AvgPool2D((1, 5), stride=2),
            (8, 3, 3),
            "layer 0 (avg_pool2d): its pool window 1x5 is larger than its input 8x3x3",
        ),
        (
            Conv2D(2, 3),
            (784,),
            "layer 0 (conv2d): it takes images shaped (channels, height, width), got input shape (784,); "
            "set dataset.flatten: false",
        ),
        (MaxPool2D(2), (30, 100), "got input shape (30, 100)"),
    ],
)
def test_shapes_that_do_not_fit_are_one_line_errors_naming_the_layer(layer, input_shape, message):
    with pytest.raises(fw.FwError) as e:
        Network([layer]).build(input_shape)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "cls, params, words",
    [
        (Conv2D, dict(filters=0, kernel_size=3), ["filters", "positive"]),
        (Conv2D, dict(filters=2.5, kernel_size=3), ["filters", "2.5"]),
        (Conv2D, dict(filters=2, kernel_size=0), ["kernel_size", "positive"]),
        (Conv2D, dict(filters=2, kernel_size="3"), ["kernel_size", "'3'"]),
        (Conv2D, dict(filters=2, kernel_size=(3, 3, 3)), ["kernel_size", "pair"]),
        (Conv2D, dict(filters=2, kernel_size=3, stride=0), ["stride", "positive"]),
        (Conv2D, dict(filters=2, kernel_size=3, padding=-1), ["padding", "zero or more"]),
        (Conv2D, dict(filters=2, kernel_size=True), ["kernel_size"]),
        (MaxPool2D, dict(pool_size=0), ["pool_size", "positive"]),
        (AvgPool2D, dict(pool_size=2, stride=(1, 0)), ["stride", "positive"]),
    ],
)
def test_bad_parameters_are_one_line_errors(cls, params, words):
    with pytest.raises(ValueError) as e:
        cls(**params)
    for word in words:
        assert word in str(e.value)


def test_pairs_and_ints_mean_the_same():
    a, _ = build(Conv2D, (2, 9, 9), filters=3, kernel_size=3, stride=2, padding=1)
    b, _ = build(Conv2D, (2, 9, 9), filters=3, kernel_size=[3, 3], stride=(2, 2), padding=(1, 1))
    b.params["W"][...] = a.params["W"]
    x = RNG.standard_normal((2, 2, 9, 9)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_forward_into_a_strided_buffer_fills_it():
    layer, out_shape = build(Conv2D, (2, 6, 6), filters=3, kernel_size=3)
    x = RNG.standard_normal((4, 2, 6, 6)).astype(np.float32)
    out = np.zeros((4, 6, 4, 4), np.float32)[:, ::2]
    assert layer.forward_into(x, out) is out
    np.testing.assert_array_equal(out, layer.forward(x))


def test_training_batches_of_changing_size_reuse_the_buffers_correctly():
    conv, shape = build(Conv2D, (2, 9, 9), filters=3, kernel_size=3, padding=1)
    pool, _ = build(MaxPool2D, shape, pool_size=2)
    for n in (6, 2, 6):  # larger, smaller, larger again
        x = RNG.standard_normal((n, 2, 9, 9)).astype(np.float32)
        y = pool.forward(conv.forward(x, train=True), train=True)
        expected = naive_pool(naive_conv(x, conv.params["W"], conv.params["b"], (1, 1), (1, 1)), (2, 2), (2, 2), np.max)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        dx = conv.backward(pool.backward(np.ones_like(y)))
        assert dx.shape == x.shape


@pytest.mark.parametrize("cls, params", [(Conv2D, dict(filters=30, kernel_size=5)), (MaxPool2D, dict(pool_size=2))])
def test_forward_into_allocates_no_big_buffer_per_chunk(cls, params):
    """fw run's chunks go through one workspace sized on first use, not a new im2col buffer each time."""
    input_shape = (1, 28, 28) if cls is Conv2D else (30, 24, 24)
    layer, out_shape = build(cls, input_shape, **params)
    x = RNG.standard_normal((300, *input_shape)).astype(np.float32)
    out = np.empty((300, *out_shape), np.float32)
    layer.forward_into(x, out)  # sizes the workspace
    np.testing.assert_array_equal(out, layer.forward(x))
    tracemalloc.start()
    try:
        for start in range(0, 300, 100):
            layer.forward_into(x[start : start + 100], out[start : start + 100])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"forward_into allocated {peak} bytes for chunks whose buffers take megabytes"
    np.testing.assert_array_equal(out, layer.forward(x))


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory):
    """configs/fashion_cnn.yaml trained on 600 real training images: 3 epochs, a few seconds.

    Module-scoped, so it runs before the per-test isolation of conftest; it
    sets the same environment itself.
    """
    from conftest import FASHION_TEST, FASHION_TRAIN, need

    root = need(*(f"fashion-mnist/{f}" for f in FASHION_TEST + FASHION_TRAIN)) / "fashion-mnist"
    work = tmp_path_factory.mktemp("cnn")
    overrides = [f"dataset.root={root}", f"weights.path={work}/cnn.npz", "train.epochs=3", "train.batch_size=50"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(work))
        env.setenv("XDG_CACHE_HOME", str(work / ".cache"))
        env.delenv("FW_DATA_DIR", raising=False)
        env.setenv("FW_DISABLE_PLUGIN_AUTOLOAD", "1")
        cfg = fw.load_config(CNN, overrides)
        trainer = Trainer(cfg)
        x, t = fw.load_dataset(fw.load_config(CNN, [*overrides, "dataset.split=train"]))
        xt, tt = fw.load_dataset(cfg)
        history = trainer.fit(x[:600], t[:600], xt[:1000], tt[:1000])
        trainer.output.write(trainer.net)
    return overrides, history, (xt[:1000], tt[:1000])


@pytest.mark.slow
def test_the_simple_convnet_learns_from_a_few_hundred_images(trained_cnn):
    overrides, history, (xt, tt) = trained_cnn
    losses = [e.train_loss for e in history]
    assert losses == sorted(losses, reverse=True), f"the training loss should fall every epoch: {losses}"
    assert history[-1].test_accuracy > 0.6, (
        f"chance is 0.1; 600 images should give well above it, got {history[-1].test_accuracy}"
    )


@pytest.mark.slow
def test_fw_run_loads_every_layers_parameters_and_gets_the_same_accuracy(trained_cnn):
    overrides, history, (xt, tt) = trained_cnn
    cfg = fw.load_config(CNN, overrides)
    with np.load(cfg.weights.path) as z:
        shapes = {k: z[k].shape for k in z.files}
    # the book's SimpleConvNet names its parameters W1, b1 (the convolution), W2, b2, W3, b3 too
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    net = fw.build_network(cfg)
    assert [layer.name for layer in net.layers] == ["conv2d", "relu", "max_pool2d", "dense", "relu", "dense", "softmax"]
    assert net.shapes[:4] == [(30, 24, 24), (30, 24, 24), (30, 12, 12), (100,)]
    assert fw.evaluate(net, xt, tt).accuracy == history[-1].test_accuracy
    assert np.array_equal(net.classify(xt), net.predict(xt).argmax(axis=1))


@pytest.mark.slow
def test_fw_show_misclassified_runs_the_cnn(capsys, trained_cnn, tmp_path):
    overrides, history, _ = trained_cnn
    out = tmp_path / "mistakes.png"
    code, stdout, err = run_cli(capsys, "show", str(CNN), *overrides, "--misclassified", "--count", 5, "--out", out)
    assert code == 0, err
    assert "5 of the" in stdout and "misclassified images" in stdout and out.stat().st_size > 0


def test_fw_run_on_flattened_images_says_what_to_set(capsys, fashion_dir, tmp_path):
    code, _, err = run_cli(
        capsys, "run", str(CNN), f"dataset.root={fashion_dir}", "dataset.flatten=true", "weights=null"
    )
    assert code == 1
    [line] = err.strip().splitlines()
    assert "model.layers[0] (conv2d)" in line and "(784,)" in line and "dataset.flatten: false" in line
