"""check_layer and check_activation on plugins whose forward keeps the README's float32 rule by casting
its result: a correct backward passes, a wrong one is still caught (issue 26, item 3)."""

import numpy as np
import pytest

from framework import Activation, Layer
from framework.plugins.conv import Conv2D, MaxPool2D
from framework.plugins.layers import BatchNorm, Dense
from framework.testing import check_activation, check_layer


class LayerNorm(Layer):
    """A plugin author's layer normalisation over the features; forward ends with a cast to float32."""

    name = "layer_norm"

    def __init__(self, cast=True, mistake=None):
        # cast="all": computes in float32 throughout; "inside": too, but returns the input's dtype
        self.cast, self.mistake = cast, mistake

    def build(self, input_shape, rng):
        self.params["gamma"] = np.ones(input_shape, np.float32)
        self.params["beta"] = np.zeros(input_shape, np.float32)
        return input_shape

    def forward(self, x, train=False):
        dtype, in_float32 = x.dtype, self.cast in ("all", "inside")
        if in_float32:
            x = x.astype(np.float32)
        mu = x.mean(axis=1, keepdims=True)
        self.std = np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
        self.xhat = (x - mu) / self.std
        gamma, beta = self.params["gamma"], self.params["beta"]
        if in_float32:
            gamma, beta = gamma.astype(np.float32), beta.astype(np.float32)
        y = gamma * self.xhat + beta
        return y.astype(np.float32) if self.cast in (True, "all") else y.astype(dtype)

    def backward(self, dout):
        dxhat = dout * self.params["gamma"]
        self.grads["gamma"] = (dout * self.xhat).sum(axis=0).astype(np.float32)
        self.grads["beta"] = dout.sum(axis=0).astype(np.float32)
        mean_term = dxhat.mean(axis=1, keepdims=True)
        if self.mistake == "factor":
            dxhat = dxhat * 1.1
        if self.mistake == "missing term":
            mean_term = 0
        if self.mistake == "gamma":
            self.grads["gamma"] = dout.sum(axis=0).astype(np.float32)
        dx = (dxhat - mean_term - self.xhat * (dxhat * self.xhat).mean(axis=1, keepdims=True)) / self.std
        return dx.astype(dout.dtype)


def test_the_layer_norms_backward_is_right_by_an_independent_float64_check():
    """Not through the kit: the formula in float64 (cast=False), differentiated numerically here."""
    rng = np.random.default_rng(5)
    layer = LayerNorm(cast=False)
    layer.build((7,), rng)
    layer.params["gamma"] = rng.uniform(0.5, 1.5, 7)
    x, dout = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    layer.forward(x)
    dx = layer.backward(dout)
    numeric, eps = np.zeros_like(x), 1e-6
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (np.sum(layer.forward(up) * dout) - np.sum(layer.forward(down) * dout)) / (2 * eps)
    assert np.allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(10,), (5,), (32,)])
def test_a_correct_float32_casting_layer_passes(shape):
    check_layer(LayerNorm, shape)  # issue 26: "at index (1, 4) it gives -1.81265, numerically -1.91392"
    check_layer(LayerNorm, shape, cast=False)
    check_layer(LayerNorm, shape, cast="all")
    check_layer(LayerNorm, shape, cast="inside")  # float32 inside, float64 out: the kit sees the rounding


@pytest.mark.parametrize("seed", range(8))
def test_a_correct_float32_casting_layer_passes_for_any_seed(seed):
    check_layer(LayerNorm, (10,), seed=seed)


@pytest.mark.parametrize(
    "mistake, name", [("factor", "dL/dx"), ("missing term", "dL/dx"), ("gamma", r"grads\['gamma'\]")]
)
@pytest.mark.parametrize("cast", [True, False])
def test_a_wrong_backward_is_still_caught(mistake, name, cast):
    message = rf"check_layer\('LayerNorm'\): backward's {name} disagrees with the numerical gradient"
    if cast:  # the message says the check ran at float32 precision, and how to have it run in float64
        message += r".*forward returns float32 for float64 input.*astype\(x\.dtype\)"
    with pytest.raises(AssertionError, match=message):
        check_layer(LayerNorm, (10,), cast=cast, mistake=mistake)


class CastingDenseReLU(Layer):
    """A fused dense + ReLU that casts: kinks (at 0) within the larger float32 step must not be blamed."""

    name = "dense_relu"

    def build(self, input_shape, rng):
        self.params["W"] = (rng.standard_normal((input_shape[0], 40)) * 0.5).astype(np.float32)
        return (40,)

    def forward(self, x, train=False):
        self.x = x
        self.a = x @ self.params["W"]
        return np.maximum(self.a, 0).astype(np.float32)

    def backward(self, dout):
        da = dout * (self.a > 0)
        self.grads["W"] = (self.x.T @ da).astype(np.float32)
        return (da @ self.params["W"].T).astype(dout.dtype)


@pytest.mark.parametrize("seed", range(6))
def test_kinks_near_the_inputs_are_not_blamed(seed):
    check_layer(CastingDenseReLU, (12,), seed=seed)


def test_a_forward_that_returns_float16_for_float64_input_is_named_as_the_reason():
    class Half(LayerNorm):
        def forward(self, x, train=False):
            return super().forward(x, train).astype(np.float16 if x.dtype == np.float64 else np.float32)

    with pytest.raises(AssertionError, match=r"forward returns float16 for float64 input.*astype\(x\.dtype\)"):
        check_layer(Half, (6,))


class CastingTanh(Activation):
    name = "casting_tanh"

    def forward(self, x):
        return np.tanh(x).astype(np.float32)

    def backward(self, x, y, dout):
        return (dout * (1 - np.tanh(x) ** 2)).astype(dout.dtype)


def test_a_float32_casting_activation_passes_and_a_wrong_one_is_caught():
    check_activation(CastingTanh)
    wrong = type(
        "Wrong", (CastingTanh,), {"backward": lambda self, x, y, dout: (dout * (1 - np.tanh(x))).astype(dout.dtype)}
    )
    with pytest.raises(
        AssertionError, match=r"backward disagrees with the numerical gradient.*forward returns float32"
    ):
        check_activation(wrong)


def behind_a_cast(cls, factor=None):
    """A built-in layer (a correct backward) whose forward ends with a cast to float32; with ``factor``,
    a backward whose dL/dx is that many times too large."""
    ns = {"forward": lambda self, x, train=False: cls.forward(self, x, train).astype(np.float32)}
    if factor:
        ns["backward"] = lambda self, dout: cls.backward(self, dout) * factor
    return type(f"Cast{cls.__name__}", (cls,), ns)


BUILTIN = [
    (Dense, (12,), {"units": 6}),
    (BatchNorm, (3, 4, 4), {}),
    (Conv2D, (2, 5, 5), {"filters": 3, "kernel_size": 3, "padding": 1}),
    (MaxPool2D, (2, 6, 6), {"pool_size": 2}),  # kinks wherever two values of a window are close
]


@pytest.mark.parametrize("cls, shape, params", BUILTIN, ids=lambda c: getattr(c, "name", ""))
@pytest.mark.parametrize("seed", range(3))
def test_builtin_layers_behind_a_float32_cast_pass_and_a_wrong_factor_is_caught(cls, shape, params, seed):
    check_layer(behind_a_cast(cls), shape, seed=seed, **params)
    with pytest.raises(
        AssertionError, match=r"backward's dL/dx disagrees .* forward returns float32 for float64 input"
    ):
        check_layer(behind_a_cast(cls, factor=1.1), shape, seed=seed, **params)


@pytest.mark.parametrize("mistake", ["factor", "missing term"])
def test_a_forward_that_rounds_to_float32_inside_is_checked_at_float32_precision(mistake):
    with pytest.raises(
        AssertionError,
        match=r"disagrees with the numerical gradient.*moves by 1e-12, as when it rounds to float32 inside.*x's dtype",
    ):
        check_layer(LayerNorm, (10,), cast="inside", mistake=mistake)


class Float32Weights(Layer):
    """A dense layer that keeps x's dtype but rounds its weights to float32: only the parameter's
    gradient meets the rounding."""

    name = "float32_weights"

    def build(self, input_shape, rng):
        self.params["W"] = (rng.standard_normal((input_shape[0], 5)) * 0.3).astype(np.float32)
        return (5,)

    def forward(self, x, train=False):
        self.x = x
        return np.tanh(x @ self.params["W"].astype(np.float32))

    def backward(self, dout):
        y = np.tanh(self.x @ self.params["W"].astype(np.float32))
        da = dout * (1 - y * y)
        self.grads["W"] = (self.x.T @ da).astype(np.float32)
        return (da @ self.params["W"].T).astype(dout.dtype)


@pytest.mark.parametrize("seed", range(4))
def test_a_parameter_rounded_to_float32_inside_is_not_blamed(seed):
    check_layer(Float32Weights, (8,), seed=seed)
