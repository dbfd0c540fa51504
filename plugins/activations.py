"""The book's chapter-3 activations: sigmoid, softmax and ReLU."""

import numpy as np

from framework import Activation, hookimpl


class Sigmoid(Activation):
    """1 / (1 + exp(-x)), computed as 0.5 * (1 + tanh(x / 2)).

    The same function, but tanh never overflows: the book's form warns and
    loses precision for x below about -88 in float32.
    """

    name = "sigmoid"

    def forward(self, x):
        return 0.5 * (1 + np.tanh(0.5 * x))


class ReLU(Activation):
    name = "relu"
    init = "he"

    def forward(self, x):
        return np.maximum(x, 0)


class Softmax(Activation):
    """Row-wise softmax; subtracting the row max keeps exp from overflowing."""

    name = "softmax"

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


@hookimpl
def register_activations(register):
    for cls in (Sigmoid, Softmax, ReLU):
        register(cls)
