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


def random_dense(sizes, init, seed):
    """Seeded (W, b) pairs: He (std sqrt(2/n)) for ReLU, Xavier (std sqrt(1/n)) otherwise."""
    rng = np.random.default_rng(seed)
    gain = 2.0 if init == "he" else 1.0
    return [
        (
            (rng.standard_normal((n_in, n_out)) * np.sqrt(gain / n_in)).astype(np.float32),
            np.zeros(n_out, np.float32),
        )
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
