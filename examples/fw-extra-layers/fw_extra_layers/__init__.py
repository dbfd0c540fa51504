"""A layer plugin for fw, found through the ``fw`` entry point: the Layer contract's own example."""

import numpy as np

from framework import Layer, hookimpl

__version__ = "0.1.0"


class Scale(Layer):
    """``x * factor * gain``: a fixed factor and a trainable gain per input value."""

    name = "scale"

    def __init__(self, factor=2.0):
        self.factor = factor

    def build(self, input_shape, rng):
        self.params["gain"] = np.ones(input_shape, np.float32)
        return input_shape

    def forward(self, x, train=False):
        self.x = x
        return x * self.factor * self.params["gain"]

    def backward(self, dout):
        self.grads["gain"] = (dout * self.x * self.factor).sum(axis=0)
        return dout * self.factor * self.params["gain"]

    def to_onnx(self, graph, x):  # optional: fw export needs it
        return graph.op("Mul", graph.op("Mul", x, np.float32(self.factor)), graph.weight("gain", self.params["gain"]))


@hookimpl
def register_layers(register):
    register(Scale)
