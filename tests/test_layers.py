"""The built-in layers against the Layer contract, and the kit that checks it."""

import numpy as np
import pytest

from framework import Layer
from framework.plugins.layers import BatchNorm, Dense, Dropout, Flatten
from framework.testing import check_layer


@pytest.mark.parametrize(
    "cls, shape, params",
    [
        (Dense, (6,), {"units": 4}),
        (Dense, (2, 3, 3), {"units": 5}),  # an image input is flattened, as the book's Affine does
        (Dropout, (7,), {"rate": 0.3}),
        (Dropout, (7,), {"rate": 0.0}),
        (Dropout, (2, 3, 3), {"rate": 0.5, "inverted": False}),
        (BatchNorm, (5,), {}),
        (BatchNorm, (3, 4, 4), {"momentum": 0.5}),  # per channel
        (Flatten, (2, 3, 4), {}),
    ],
)
def test_every_builtin_layer_keeps_the_contract(cls, shape, params):
    check_layer(cls, shape, **params)


def test_dropout_drops_only_in_training_and_keeps_the_expected_value():
    layer = Dropout(rate=0.25)
    layer.build((1000,), np.random.default_rng(0))
    x = np.ones((50, 1000), np.float32)
    assert np.array_equal(layer.forward(x), x), "inactive at inference"
    y = layer.forward(x, train=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01 and np.allclose(y[kept], 1 / 0.75)
    assert abs(y.mean() - 1) < 0.02


def test_the_books_dropout_drops_without_scaling_and_scales_at_inference():
    layer = Dropout(rate=0.25, inverted=False)
    layer.build((1000,), np.random.default_rng(0))
    x = np.ones((50, 1000), np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32 and (y == 0.75).all() and (x == 1).all()
    out = np.empty_like(x)
    assert layer.forward_into(x, out) is out and np.array_equal(out, y)
    assert layer.forward_into(x, x) is x and np.array_equal(x, y), "in place, as the network runs it"
    x = np.ones((50, 1000), np.float32)
    y = layer.forward(x, train=True)
    assert set(np.unique(y)) == {0, 1} and abs(y.mean() - 0.75) < 0.01
    assert np.array_equal(layer.backward(x), y), "the gradient goes through the kept values, unscaled"


@pytest.mark.parametrize("value", [None, "false", 0])
def test_dropout_inverted_must_be_true_or_false(value):
    with pytest.raises(ValueError, match=f"inverted must be true .* or false .*, got {value!r}"):
        Dropout(rate=0.5, inverted=value)


def test_batch_norm_normalises_in_training_and_uses_running_statistics_after():
    layer = BatchNorm(momentum=0.0)  # running statistics = the last batch's
    layer.build((3,), np.random.default_rng(0))
    x = np.random.default_rng(1).normal(5, 2, (500, 3)).astype(np.float32)
    y = layer.forward(x, train=True)
    assert np.allclose(y.mean(0), 0, atol=1e-5) and np.allclose(y.std(0), 1, atol=1e-3)
    np.testing.assert_allclose(layer.buffers["running_mean"], x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.forward(x), y, atol=1e-4)  # inference with those statistics


def test_the_kit_catches_a_wrong_backward():
    class Scale(Layer):
        name = "scale"

        def build(self, input_shape, rng):
            self.params["gain"] = np.ones(input_shape, np.float32)
            return input_shape

        def forward(self, x, train=False):
            self.x = x
            return x * 2 * self.params["gain"]

        def backward(self, dout):
            self.grads["gain"] = (dout * self.x).sum(axis=0)  # forgets the factor 2
            return dout * 2 * self.params["gain"]

    with pytest.raises(AssertionError, match=r"check_layer\('Scale'\): backward's grads\['gain'\] disagrees"):
        check_layer(Scale, (3,))


def test_the_kit_catches_a_broken_promise_of_build():
    class Wrong(Layer):
        name = "wrong"

        def build(self, input_shape, rng):
            return (3,)

        def forward(self, x, train=False):
            return x

    with pytest.raises(AssertionError, match=r"forward returned shape \(4, 5\); build promised \(4, 3\)"):
        check_layer(Wrong, (5,))


def test_the_kit_catches_examples_that_leak_into_each_other():
    class Center(Layer):  # subtracts the batch mean even at inference
        name = "center"

        def forward(self, x, train=False):
            return x - x.mean(axis=0)

    with pytest.raises(AssertionError, match="examples must not depend on each other"):
        check_layer(Center, (3,))
