"""The book's chapter-3 activations: sigmoid, softmax, ReLU, identity and step."""

import numpy as np

from framework import Activation, hookimpl


class Sigmoid(Activation):
    """The book's ``1 / (1 + exp(-x))``.

    For x below about -88, exp(-x) overflows float32 to inf and the result is
    1 / inf = 0, the right limit; that overflow is expected, so its warning is
    silenced. (It is this form rather than ``0.5 * (1 + tanh(x / 2))`` because
    numpy's float32 exp is cheaper than its tanh; README, Performance.)
    """

    name = "sigmoid"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    monotonic = True

    def forward(self, x):
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))

    def forward_inplace(self, x):
        """The same float32 steps as ``forward``, with no temporaries."""
        np.negative(x, out=x)
        with np.errstate(over="ignore"):
            np.exp(x, out=x)
        x += 1
        return np.divide(1, x, out=x)

    def backward(self, x, y, dout):
        return dout * y * (1 - y)

    def to_onnx(self, graph, x):
        return graph.op("Sigmoid", x)


class ReLU(Activation):
    name = "relu"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    init = "he"

    def forward(self, x):
        return np.maximum(x, 0)

    def forward_inplace(self, x):
        """In the network's own buffer: a ConvNet's feature maps get no new array per chunk."""
        return np.maximum(x, 0, out=x)

    def backward(self, x, y, dout):
        return dout * (x > 0)

    def to_onnx(self, graph, x):
        return graph.op("Relu", x)


class Softmax(Activation):
    """Row-wise softmax; subtracting the row max keeps exp from overflowing."""

    name = "softmax"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
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

    def to_onnx(self, graph, x):
        return graph.op("Softmax", x, axis=-1)


class Identity(Activation):
    """The book's identity_function: the output layer for regression."""

    name = "identity"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads

    def forward(self, x):
        return x

    def backward(self, x, y, dout):
        return dout

    def to_onnx(self, graph, x):
        return graph.op("Identity", x)


class Step(Activation):
    """The book's step_function: 1 where x > 0, else 0 (as x's float dtype, not int)."""

    name = "step"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads

    def forward(self, x):
        return (x > 0).astype(x.dtype if x.dtype.kind == "f" else np.float32)

    def backward(self, x, y, dout):
        return np.zeros_like(dout)  # zero wherever it is defined (x != 0)

    def to_onnx(self, graph, x):
        """1.0 where x > 0, else 0.0: Greater, cast to float (ONNX's TensorProto.FLOAT is 1)."""
        return graph.op("Cast", graph.op("Greater", x, np.float32(0)), to=1)


@hookimpl
def register_activations(register):
    for cls in (Sigmoid, Softmax, ReLU, Identity, Step):
        register(cls)
