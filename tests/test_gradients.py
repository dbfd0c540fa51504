"""Backward passes against numerical gradients (the book's gradient_check.py), in float64."""

import numpy as np
import pytest

from framework.core.network import Network
from framework.plugin_system.manager import get_registry
from framework.plugins.layers import Dense

REG = get_registry()
RNG = np.random.default_rng(0)


def numerical_gradient(f, x, h=1e-6):
    """Central differences of the scalar f() with respect to each element of x, in place."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + h
        up = f()
        x[i] = keep - h
        down = f()
        x[i] = keep
        grad[i] = (up - down) / (2 * h)
    return grad


def activations_with_backward():
    return [name for name in REG.names("activations") if REG.entries["activations"][name].has_backward()]


def test_the_books_activations_all_have_derivatives():
    assert {"sigmoid", "relu", "identity", "softmax"} <= set(activations_with_backward())


@pytest.mark.parametrize("name", activations_with_backward())
def test_activation_backward(name):
    act = REG.entries["activations"][name]()
    x = RNG.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.1  # keep away from ReLU's and step's kink
    dout = RNG.standard_normal((4, 5))
    analytic = act.backward(x, act(x), dout)
    numeric = numerical_gradient(lambda: float(np.sum(act(x) * dout)), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def one_hot(labels, classes):
    return np.eye(classes)[labels]


@pytest.mark.parametrize("name", ["cross_entropy", "mean_squared_error"])
def test_loss_backward(name):
    loss = REG.entries["losses"][name]()
    y = RNG.uniform(0.05, 0.95, (6, 4))
    t = one_hot(RNG.integers(0, 4, 6), 4)
    numeric = numerical_gradient(lambda: loss.forward(y, t), y)
    np.testing.assert_allclose(loss.backward(y, t), numeric, rtol=1e-4, atol=1e-7)


def test_cross_entropy_fused_with_softmax_is_the_gradient_of_the_logits():
    loss = REG.entries["losses"]["cross_entropy"]()
    softmax = REG.entries["activations"]["softmax"]()
    a = RNG.standard_normal((6, 4))
    t = one_hot(RNG.integers(0, 4, 6), 4)
    numeric = numerical_gradient(lambda: loss.forward(softmax(a), t), a)
    np.testing.assert_allclose(loss.backward_fused(softmax(a), t), numeric, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    "hidden, output, loss",
    [
        ("sigmoid", "softmax", "cross_entropy"),
        ("relu", "softmax", "cross_entropy"),
        ("relu", "identity", "mean_squared_error"),
        ("sigmoid", "softmax", "mean_squared_error"),  # softmax not fused: its own backward
    ],
)
def test_whole_network_backprop_matches_numerical_gradients(hidden, output, loss):
    sizes = [5, 4, 3, 3]
    names = [hidden, hidden, output]
    layers = []
    for (n_in, n_out), name in zip(zip(sizes[:-1], sizes[1:]), names):
        W, b = RNG.standard_normal((n_in, n_out)) * 0.5, RNG.standard_normal(n_out) * 0.1
        layers += [Dense.from_weights(W, b), REG.entries["activations"][name]()]
    net = Network(layers).build((5,))
    for layer in net.layers[::2]:  # float64 from here on, for the numerical gradient
        layer.params.update({k: v.astype(np.float64) for k, v in layer.params.items()})
    loss_fn = REG.entries["losses"][loss]()
    fused = loss_fn.fuses_with(net.layers[-1])
    x = RNG.standard_normal((7, 5))
    t = one_hot(RNG.integers(0, 3, 7), 3)

    def f():
        return loss_fn.forward(net.forward(x), t)

    y = net.forward(x, train=True)
    dout = loss_fn.backward_fused(y, t) if fused else loss_fn.backward(y, t)
    net.backward(dout, len(net.layers) - fused)
    for p, g in zip(net.parameters(), net.gradients()):
        np.testing.assert_allclose(g, numerical_gradient(f, p), rtol=1e-4, atol=1e-7)
