"""``binary_sigmoid``: one score as two classes' probabilities, ``[1 - sigmoid(z), sigmoid(z)]``.

scikit-learn's binary classifiers give one score per example, and skl2onnx
writes their probabilities as Sigmoid, then ``1 - p`` and ``p`` concatenated:
``fw import-onnx`` reads those three nodes as this layer, and ``fw export``
writes them back, so such a model classifies into two classes as fw's do.
"""

import numpy as np

from framework import Layer, hookimpl


class BinarySigmoid(Layer):
    """(N, 1) scores to (N, 2) probabilities: class 0's ``1 - sigmoid(z)``, class 1's ``sigmoid(z)``."""

    name = "binary_sigmoid"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads

    def build(self, input_shape, rng):
        if tuple(input_shape) != (1,):
            raise ValueError(
                f"it takes one score per example, (batch, 1), not {tuple(input_shape)}; "
                "end the layer before it with 1 unit"
            )
        return (2,)

    def forward(self, x, train=False):
        with np.errstate(over="ignore"):
            p = 1 / (1 + np.exp(-x))
        if train:
            self.p = p
        return np.concatenate([1 - p, p], axis=1)

    def backward(self, dout):
        p = self.p
        return (dout[:, 1:] - dout[:, :1]) * p * (1 - p)

    def to_onnx(self, graph, x):
        """skl2onnx's nodes: Sigmoid, then 1 - p and p concatenated."""
        p = graph.op("Sigmoid", x)
        return graph.op("Concat", graph.op("Sub", np.float32(1), p), p, axis=1)


@hookimpl
def register_layers(register):
    register(BinarySigmoid)
