"""Layers and the Network: the book's ``predict()`` as a sequence of callables."""

import numpy as np


class Dense:
    """The affine layer ``x @ W + b`` (the book's ``np.dot(x, W1) + b1``)."""

    def __init__(self, W, b):
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        self.b = np.ascontiguousarray(b, dtype=np.float32)

    def __call__(self, x):
        return x @ self.W + self.b

    def __repr__(self):
        return f"Dense({self.W.shape[0]}, {self.W.shape[1]})"


class Network:
    """Dense layers alternating with activation layers, applied in order."""

    def __init__(self, layers):
        self.layers = list(layers)

    def predict(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    __call__ = predict

    @property
    def dense(self):
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def __repr__(self):
        return "Network(" + ", ".join(map(repr, self.layers)) + ")"
