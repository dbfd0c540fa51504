"""tanh, leaky_relu and gelu for fw: a plugin package found through the ``fw`` entry point."""

import math

import numpy as np

from framework import Activation, hookimpl

__version__ = "0.1.0"


class Tanh(Activation):
    name = "tanh"
    onnx_ops = ("Tanh",)  # optional: fw import-onnx reads this op as this layer

    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, dout):
        return dout * (1 - y * y)

    def to_onnx(self, graph, x):  # optional: fw export needs it
        return graph.op("Tanh", x)


class LeakyReLU(Activation):
    """x for x > 0, alpha * x otherwise. Config: ``{name: leaky_relu, alpha: 0.01}``."""

    name = "leaky_relu"
    init = "he"
    onnx_ops = ("LeakyRelu",)

    def __init__(self, alpha=0.01):
        alpha = float(alpha)
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        self.alpha = alpha

    def forward(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.alpha))

    def backward(self, x, y, dout):
        return dout * np.where(x > 0, 1, self.alpha).astype(dout.dtype)

    def to_onnx(self, graph, x):
        return graph.op("LeakyRelu", x, alpha=self.alpha)

    @classmethod
    def from_onnx(cls, node):  # optional: fw import-onnx needs it for a layer with parameters
        alpha = float(f"{node.attrs.get('alpha', 0.01):.7g}")  # ONNX keeps it as float32: 0.01, not 0.009999999776
        if not 0 <= alpha < 1:
            raise node.fail(f"alpha={alpha}; fw's leaky_relu takes alpha from 0 to below 1")
        return {"name": cls.name, "alpha": alpha}, {}


class GELU(Activation):
    """Gaussian error linear unit, with the tanh approximation (Hendrycks & Gimpel, 2016)."""

    name = "gelu"
    init = "he"
    _C = math.sqrt(2 / math.pi)

    def forward(self, x):
        c, k = x.dtype.type(self._C), x.dtype.type(0.044715)
        # Clip before cubing: x**3 overflows float32 near 7e12, and tanh is 1 long before that.
        u = np.clip(x, -100, 100)
        return x * (0.5 * (1 + np.tanh(c * (u + k * u**3)))).astype(x.dtype)

    def backward(self, x, y, dout):
        c, k = x.dtype.type(self._C), x.dtype.type(0.044715)
        u = np.clip(x, -100, 100)
        t = np.tanh(c * (u + k * u**3))
        dt = (1 - t * t) * c * (1 + 3 * k * u * u)
        return dout * (0.5 * (1 + t) + 0.5 * x * dt).astype(dout.dtype)

    def to_onnx(self, graph, x):
        """The same steps in ONNX operators (opset 20's Gelu has no clip, and opset 17 has no Gelu)."""
        f = np.float32
        u = graph.op("Clip", x, f(-100), f(100))
        inner = graph.op("Mul", graph.op("Add", u, graph.op("Mul", graph.op("Pow", u, f(3)), f(0.044715))), f(self._C))
        return graph.op("Mul", x, graph.op("Mul", graph.op("Add", graph.op("Tanh", inner), f(1)), f(0.5)))


@hookimpl
def register_activations(register):
    for cls in (Tanh, LeakyReLU, GELU):
        register(cls)
