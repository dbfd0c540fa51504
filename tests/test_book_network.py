"""The book's chapter-3 result, reproduced from the real MNIST test set and sample_weight.pkl."""

from pathlib import Path

import numpy as np
import pytest

import framework as fw
from framework.plugins.layers import Dense

BOOK = Path(__file__).resolve().parents[1] / "configs" / "mnist_infer.yaml"


def dense(net):
    return [layer for layer in net.layers if isinstance(layer, Dense)]


@pytest.fixture
def book_cfg(mnist_dir, book_weights):
    return fw.load_config(BOOK, [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"])


@pytest.mark.parametrize("batch_size", [1, 100, 10_000])
def test_accuracy_is_the_books_0_9352_at_any_batch_size(book_cfg, batch_size):
    net = fw.build_network(book_cfg)
    x, t = fw.load_dataset(book_cfg)
    result = fw.evaluate(net, x, t, batch_size=batch_size)
    assert (result.correct, result.total) == (9352, 10000)
    assert result.accuracy == 0.9352


def test_the_network_is_the_books_784_50_100_10_in_float32(book_cfg):
    net = fw.build_network(book_cfg)
    assert [(d.W.shape, d.b.shape) for d in dense(net)] == [
        ((784, 50), (50,)),
        ((50, 100), (100,)),
        ((100, 10), (10,)),
    ]
    assert [layer.name for layer in net.layers] == ["dense", "sigmoid", "dense", "sigmoid", "dense", "softmax"]
    x, _ = fw.load_dataset(book_cfg)
    y = net.predict(x[:5])
    assert y.dtype == np.float32 and y.shape == (5, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)


def test_the_tanh_sigmoid_matches_the_books_formula(book_cfg):
    """The book writes 1/(1+exp(-x)); ours must give the same predictions."""
    net = fw.build_network(book_cfg)
    x, t = fw.load_dataset(book_cfg)

    def book_predict(x):
        (W1, b1), (W2, b2), (W3, b3) = [(d.W, d.b) for d in dense(net)]
        sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731 - the book's sigmoid, in one line
        a3 = sig(sig(x @ W1 + b1) @ W2 + b2) @ W3 + b3
        e = np.exp(a3 - a3.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    ours, book = net.predict(x), book_predict(x)
    np.testing.assert_allclose(ours, book, atol=1e-6)
    assert np.count_nonzero(book.argmax(1) == t) == 9352


def test_one_hot_labels_evaluate_the_same(book_cfg):
    book_cfg.dataset.one_hot_label = True
    x, t = fw.load_dataset(book_cfg)
    assert t.shape == (10000, 10)
    assert fw.evaluate(fw.build_network(book_cfg), x, t).correct == 9352


def test_unflattened_images_are_flattened_for_the_dense_network(book_cfg):
    book_cfg.dataset.flatten = False
    x, t = fw.load_dataset(book_cfg)
    assert x.shape == (10000, 1, 28, 28)
    assert fw.evaluate(fw.build_network(book_cfg), x, t).correct == 9352


def test_other_sizes_with_random_weights_build_and_run_near_chance(mnist_dir):
    cfg = fw.load_config(
        BOOK,
        [f"dataset.root={mnist_dir}", "model.sizes=[784,100,100,10]", "model.activation=relu", "weights=null"],
    )
    with pytest.warns(fw.errors.FwWarning, match="chance-level"):
        net = fw.build_network(cfg)
    assert [d.W.shape for d in dense(net)] == [(784, 100), (100, 100), (100, 10)]
    # He initialisation for ReLU: std sqrt(2/fan_in).
    assert abs(dense(net)[0].W.std() - np.sqrt(2 / 784)) < 0.002
    x, t = fw.load_dataset(cfg)
    assert 0.02 < fw.evaluate(net, x, t).accuracy < 0.3
    with pytest.warns(fw.errors.FwWarning):
        again = fw.build_network(cfg)
    assert np.array_equal(dense(again)[0].W, dense(net)[0].W), "the same seed gives the same weights"


def test_sizes_that_do_not_match_the_weights_name_layer_and_shapes(book_cfg):
    book_cfg.model.sizes = [784, 100, 100, 10]
    with pytest.raises(fw.FwError) as e:
        fw.build_network(book_cfg)
    msg = str(e.value)
    assert "dense layer 1 (W1)" in msg and "expects shape (784, 100)" in msg and "has (784, 50)" in msg
    assert "model.sizes=[784,50,100,10]" in msg


def test_dense_is_x_at_w_plus_b():
    d = Dense.from_weights(np.eye(3), np.arange(3))
    assert np.array_equal(d.forward(np.ones((2, 3), np.float32)), [[1, 2, 3], [1, 2, 3]])


def test_transposed_weights_are_recognised_as_such():
    from framework.data.weights import check_weights

    arrays = {"W1": np.zeros((100, 784), np.float32), "b1": np.zeros(100, np.float32)}
    with pytest.raises(fw.FwError, match=r"has \(100, 784\) \(transposed: fw's W is \(inputs, outputs\)"):
        check_weights(arrays, [784, 100], "torch.npz")
