"""The book's chapter-3 activations: sigmoid, softmax, ReLU, identity and step."""

import numpy as np

from framework import Activation, hookimpl


class Sigmoid(Activation):
    """1 / (1 + exp(-x)), computed as 0.5 * (1 + tanh(x / 2)).

    The same function, but tanh never overflows: the book's form warns and
    loses precision for x below about -88 in float32.
    """

    name = "sigmoid"
    monotonic = True

    def forward(self, x):
        return 0.5 * (1 + np.tanh(0.5 * x))

    def forward_inplace(self, x):
        """The same four float32 steps as ``forward``, with no temporaries."""
        x *= 0.5
        np.tanh(x, out=x)
        x += 1
        x *= 0.5
        return x

    def backward(self, x, y, dout):
        return dout * y * (1 - y)


class ReLU(Activation):
    name = "relu"
    init = "he"

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, x, y, dout):
        return dout * (x > 0)


class Softmax(Activation):
    """Row-wise softmax; subtracting the row max keeps exp from overflowing."""

    name = "softmax"
    rowwise = True  # each output row depends on the whole input row
    monotonic = True  # the largest input of a row gives its largest output

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def forward_inplace(self, x):
        x -= x.max(axis=-1, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=-1, keepdims=True)
        return x

    def backward(self, x, y, dout):
        """The Jacobian product: y * (dout - sum(dout * y)) per row."""
        return y * (dout - np.sum(dout * y, axis=-1, keepdims=True))


class Identity(Activation):
    """The book's identity_function: the output layer for regression."""

    name = "identity"

    def forward(self, x):
        return x

    def backward(self, x, y, dout):
        return dout


class Step(Activation):
    """The book's step_function: 1 where x > 0, else 0 (as x's float dtype, not int)."""

    name = "step"

    def forward(self, x):
        return (x > 0).astype(x.dtype if x.dtype.kind == "f" else np.float32)

    def backward(self, x, y, dout):
        return np.zeros_like(dout)  # zero wherever it is defined (x != 0)


@hookimpl
def register_activations(register):
    for cls in (Sigmoid, Softmax, ReLU, Identity, Step):
        register(cls)
