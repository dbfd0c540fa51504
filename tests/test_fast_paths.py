"""The forward pass stays float32 and reuses its buffers; the fast paths give the same answers.

These test properties, never times: the timings live in benchmarks/.
"""

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import framework.plugins.idx
from framework import Activation
from framework.core import threads
from framework.core.network import CHUNK_ROWS, Network
from framework.plugins.activations import ReLU, Sigmoid, Softmax
from framework.plugins.layers import Dense

RNG = np.random.default_rng(0)
REPO = Path(__file__).resolve().parents[1]


def book_shaped_net(output=None):
    """The book's 784-50-100-10 sigmoid/softmax network, with random weights."""
    sizes = [784, 50, 100, 10]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Dense.from_weights(RNG.standard_normal((n_in, n_out)) * 0.1, RNG.standard_normal(n_out)), Sigmoid()]
    layers[-1] = output or Softmax()
    return Network(layers)


def images(n, dtype=np.float32):
    return RNG.random((n, 784)).astype(dtype)


class Spy:
    """Records (input dtype, output) of every Dense and activation call, keeping outputs alive."""

    def __init__(self, monkeypatch):
        self.outputs = []

        def spy(original):
            def wrapper(layer, x, *args, **kwargs):
                y = original(layer, x, *args, **kwargs)
                self.outputs.append((x.dtype, y))
                return y

            return wrapper

        for cls, method in [
            *((Dense, m) for m in ("forward", "forward_into")),
            *((c, m) for c in (Sigmoid, Softmax) for m in ("forward", "forward_inplace")),
        ]:
            monkeypatch.setattr(cls, method, spy(getattr(cls, method)))

    def dtypes(self):
        return {str(d) for d, _ in self.outputs} | {str(y.dtype) for _, y in self.outputs}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_classify_never_upcasts_to_float64(monkeypatch, dtype):
    net = book_shaped_net()
    spy = Spy(monkeypatch)
    net.classify(images(2 * CHUNK_ROWS + 5, dtype))
    assert spy.outputs and spy.dtypes() == {"float32"}


def test_predict_stays_float32(monkeypatch):
    net = book_shaped_net()
    spy = Spy(monkeypatch)
    y = net.predict(images(50))
    assert y.dtype == np.float32 and spy.dtypes() == {"float32"}


def retained_bytes(net, x, monkeypatch):
    """Memory still held after classify(x) when every layer output is kept alive."""
    with monkeypatch.context() as m:
        Spy(m)  # holds a reference to every array each layer returned
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            net.classify(x)
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()


def test_classify_allocates_its_buffers_once_not_per_chunk(monkeypatch):
    """Four more chunks may only cost four more chunks' labels (8 bytes a row).

    A layer output allocated per chunk (even one freed at once, were the spy
    not holding it) would add at least 1024 x 10 float32 per chunk. One
    worker: with two, each that takes a chunk has its own buffers, and
    whether the second takes any of two chunks depends on timing.
    """
    monkeypatch.setattr(threads.workers(), "count", 1)
    net = book_shaped_net()
    few = retained_bytes(net, images(2 * CHUNK_ROWS), monkeypatch)
    many = retained_bytes(net, images(6 * CHUNK_ROWS), monkeypatch)
    labels = 4 * CHUNK_ROWS * np.dtype(np.intp).itemsize
    assert many - few < labels + 32 * 1024, (few, many)


def test_classify_peak_memory_is_its_buffers(monkeypatch):
    """No temporary beside the reusable buffers: not from Dense (x @ W + b), nor from sigmoid.

    Each worker thread that shares the chunks has its own set."""
    net = book_shaped_net()
    x = images(3 * CHUNK_ROWS)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        net.classify(x)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    workers = threads.workers().count  # each has its own set of buffers, and some bookkeeping
    buffers = CHUNK_ROWS * (50 + 100 + 10) * 4 * workers
    labels = len(x) * np.dtype(np.intp).itemsize
    assert peak < buffers + labels + 64 * 1024 * workers, peak  # a temporary would take 200 KB


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, CHUNK_ROWS, 10_000])
def test_classify_is_the_argmax_of_predict_at_any_chunk_size(chunk_rows):
    net = book_shaped_net()
    x = images(2500)
    assert np.array_equal(net.classify(x, chunk_rows=chunk_rows), net.predict(x).argmax(axis=1))


def test_only_a_monotonic_last_activation_is_skipped():
    class Negate(Activation):  # a third-party activation: name and forward only
        name = "negate"

        def forward(self, x):
            return -x

    net = book_shaped_net(output=Negate())
    x = images(300)
    logits = Network(net.layers[:-1]).predict(x)
    # Not monotonic, so it runs: the answer is the argmin of the logits.
    assert np.array_equal(net.classify(x), logits.argmin(axis=1))
    assert np.array_equal(net.classify(x), net.predict(x).argmax(axis=1))


def test_a_plain_third_party_activation_works_in_hidden_layers():
    class Halve(Activation):
        name = "halve"

        def forward(self, x):
            return x / 2

    net = book_shaped_net()
    net.layers[1] = Halve()
    x = images(2100)
    assert np.array_equal(net.classify(x), net.predict(x).argmax(axis=1))


@pytest.mark.parametrize("cls", [Sigmoid, Softmax, ReLU])
def test_inplace_forward_is_bitwise_the_same(cls):
    x = (RNG.standard_normal((64, 10)) * 30).astype(np.float32)
    expected = cls().forward(x)
    buf = x.copy()
    out = cls().forward_inplace(buf)
    assert out is buf and out.dtype == np.float32 and np.array_equal(out, expected)


def test_predict_does_not_touch_its_input():
    net = Network([Sigmoid(), Dense.from_weights(np.eye(3), np.zeros(3)), Sigmoid()])
    x = np.ones((2, 3), np.float32)
    net.predict(x)
    net.classify(x)
    assert np.array_equal(x, np.ones((2, 3)))


# --- the .npy cache ------------------------------------------------------------------


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A verified cache of a small uint8 array, and its expected MD5; time runs 3 s ahead."""
    array = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = tmp_path / "images.npy"
    np.save(path, array)
    real = framework.plugins.idx.time.time_ns
    monkeypatch.setattr(framework.plugins.idx.time, "time_ns", lambda: real() + 3_000_000_000)  # past the racy window
    return path, array, framework.plugins.idx.idx_md5(array)


def test_cache_is_memory_mapped_read_only(cached):
    path, array, md5 = cached
    got = framework.plugins.idx._read_cache(path, 3, md5)
    assert np.array_equal(got, array) and type(got) is np.ndarray and not got.flags.writeable


def test_a_verified_cache_is_not_hashed_again(cached, monkeypatch):
    path, array, md5 = cached
    assert framework.plugins.idx._read_cache(path, 3, md5) is not None  # hashed, and remembered
    monkeypatch.setattr(framework.plugins.idx, "idx_md5", lambda a: pytest.fail("hashed again"))
    assert np.array_equal(framework.plugins.idx._read_cache(path, 3, md5), array)


@pytest.mark.parametrize("damage", ["same-size rewrite", "replaced", "truncated", "other md5 asked"])
def test_a_changed_cache_is_hashed_again_and_refused(cached, damage):
    path, array, md5 = cached
    assert framework.plugins.idx._read_cache(path, 3, md5) is not None
    flipped = array.copy()
    flipped[0, 0, 0] ^= 1
    stat = os.stat(path)
    if damage == "same-size rewrite":
        with open(path, "r+b") as f:  # in place: same inode, same size
            f.seek(-1, os.SEEK_END)
            last = f.read(1)[0]
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last ^ 1]))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the mtime put back
    elif damage == "replaced":
        np.save(path.with_name("new.npy"), flipped)
        os.replace(path.with_name("new.npy"), path)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    else:
        md5 = "0" * 32
    assert framework.plugins.idx._read_cache(path, 3, md5) is None


def test_the_books_network_fast_path_is_the_plain_layer_by_layer_path(mnist_dir, book_weights):
    """On the real data, classify's chunks, buffers, in-place activations and skipped softmax
    give the labels of the plain path, layer by layer, bit for bit."""
    import framework as fw

    cfg = fw.load_config(
        REPO / "configs" / "mnist_infer.yaml", [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
    )
    net = fw.build_network(cfg)
    x, t = fw.load_dataset(cfg)
    fast = net.classify(x)
    plain = x
    for layer in net.layers:  # allocating, no buffers, softmax included
        plain = layer.forward(plain)
    assert np.array_equal(plain.argmax(axis=1), fast) and np.count_nonzero(fast == t) == 9352


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 7), (100, 16, 28, 28)], ids=["a few rows", "feature maps in parts"])
def test_relu_in_training_is_the_plain_activation_path_in_its_own_buffers(monkeypatch, dtype, shape):
    """ReLU trains in arrays it keeps (shared out between workers): the same bits as Activation's
    plain path, no new output once its arrays exist, and its previous output overwritten."""
    monkeypatch.setattr(threads.workers(), "count", 2)
    x = RNG.standard_normal(shape).astype(dtype)
    x.flat[:5] = [0.0, -0.0, np.inf, -np.inf, np.nan]
    dout = RNG.standard_normal(shape).astype(dtype)
    plain = ReLU()
    expected_y = Activation.__call__(plain, x, True).copy()
    expected_dx = Activation.backprop(plain, dout).copy()

    relu = ReLU()
    y1 = relu(x, True)
    np.testing.assert_array_equal(y1, expected_y)
    assert y1.dtype == dtype
    np.testing.assert_array_equal(relu.backprop(dout), expected_dx)
    y2 = relu(-x, True)  # the same buffer again: what training returned is valid until the next call
    assert np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y2, np.maximum(-x, 0))
    assert not np.shares_memory(relu(x), y2), "inference gets a new array"


def test_a_subclass_of_relu_that_changes_forward_trains_with_its_own_functions():
    class Leaky(ReLU):
        name = "test_leaky"

        def forward(self, x):
            return np.where(x > 0, x, 0.1 * x)

        def backward(self, x, y, dout):
            return dout * np.where(x > 0, 1.0, 0.1)

    x = np.array([[-2.0, 3.0]], np.float32)
    layer = Leaky()
    np.testing.assert_allclose(layer(x, True), [[-0.2, 3.0]])
    np.testing.assert_allclose(layer.backprop(np.ones_like(x)), [[0.1, 1.0]])


def test_relu_on_a_dense_layers_few_rows_leaves_openblas_threads_alone():
    """One part: no worker, and OpenBLAS keeps its threads for the dense products around it
    (holding it to one thread there changed an MLP's training bits and slowed its epoch 25%)."""
    import time

    workers = threads.workers()
    time.sleep(3 * threads.BLAS_LINGER)  # any earlier hold has ended
    assert not workers.held
    relu = ReLU()
    relu(RNG.standard_normal((100, 100)).astype(np.float32), True)
    relu.backprop(np.ones((100, 100), np.float32))
    assert not workers.held
