"""The book's chapter-3 activations: sigmoid, softmax, ReLU, identity and step."""

import functools

import numpy as np

from framework import Activation, hookimpl
from framework.core import threads
from framework.core.scratch import Scratch


class Sigmoid(Activation):
    """The book's ``1 / (1 + exp(-x))``.

    For x below about -88, exp(-x) overflows float32 to inf and the result is
    1 / inf = 0, the right limit; that overflow is expected, so its warning is
    silenced. (It is this form rather than ``0.5 * (1 + tanh(x / 2))`` because
    numpy's float32 exp is cheaper than its tanh; docs/performance.md.)
    """

    name = "sigmoid"
    onnx_ops = ("Sigmoid",)
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

    @classmethod
    def from_onnx(cls, node):
        """Sigmoid; of one score per example with ``1 - p`` and ``p`` concatenated after it (skl2onnx's binary
        classifier), the two classes' probabilities: ``binary_sigmoid``."""
        after = node.readers()
        if node.input_shape == (1,) and len(after) == 2:
            sub, concat = sorted(after, key=lambda n: n.op_type != "Sub")
            p = node.outputs[0]
            one = sub.value(0) if sub.op_type == "Sub" and sub.inputs[1:] == [p] else None
            if (
                one is not None
                and one.size == 1
                and float(one.reshape(-1)[0]) == 1
                and concat.op_type == "Concat"
                and concat.inputs == [sub.outputs[0], p]
                and concat.attrs.get("axis") in (1, -1)
            ):
                node.take(sub, concat)
                return "binary_sigmoid", {}
        return cls.name, {}


class ReLU(Activation):
    """``max(x, 0)``.

    In training it writes its output and gradient into arrays it keeps from
    one batch to the next, a part at a time on the worker threads: on a
    ConvNet's feature maps a fresh array each time cost more in page faults
    than the arithmetic (docs/performance.md). What it returns in training is
    valid until its next call. A subclass that changes ``forward`` or
    ``backward`` gets the plain ``Activation`` path.
    """

    name = "relu"
    onnx_ops = ("Relu",)
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    preferred_init = "he"

    def forward(self, x):
        return np.maximum(x, 0)

    @functools.cached_property
    def _scratch(self):
        return Scratch()

    def __call__(self, x, train=False):
        if not train:
            return self.forward(x)
        own = type(self).forward is ReLU.forward and type(self).backward is ReLU.backward
        self._kept = own and isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64) and x.ndim > 0
        if not self._kept:
            return super().__call__(x, train)
        y = self._scratch("y", x.shape, x.dtype)
        threads.over_rows(lambda a, b: np.maximum(x[a:b], 0, out=y[a:b]), len(x), x[:1].nbytes)
        self.x, self.y = x, y
        return y

    def backprop(self, dout):
        if not getattr(self, "_kept", False):
            return super().backprop(dout)
        y = self.y
        dx = self._scratch("dx", y.shape, y.dtype)
        threads.over_rows(lambda a, b: np.multiply(dout[a:b], y[a:b] > 0, out=dx[a:b]), len(y), y[:1].nbytes)
        return dx

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
    onnx_ops = ("Softmax",)
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    rowwise = True  # each output row depends on the whole input row
    monotonic = True  # the largest input of a row gives its largest output
    outputs_probabilities = True  # cross_entropy gives the gradient at its input: training skips its backward

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

    @classmethod
    def from_onnx(cls, node):
        """Softmax over each row of (batch, classes): axis -1 or 1 (before opset 13, 1 is the default)."""
        axis, shape = node.attrs.get("axis", -1 if node.opset >= 13 else 1), node.input_shape
        if len(shape) != 1 or axis not in (1, -1):
            raise node.fail(
                f"takes softmax over axis {axis} of a (batch, {', '.join(map(str, shape))}) tensor; "
                "fw's softmax takes it over each row of (batch, classes)"
            )
        return cls.name, {}

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
