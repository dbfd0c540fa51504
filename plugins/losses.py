"""The book's losses: cross-entropy (fused with softmax) and mean squared error."""

import numpy as np

from framework import Loss, hookimpl

_EPS = np.float32(1e-7)  # the book's delta, keeps log(0) finite


class CrossEntropy(Loss):
    """-sum(t * log(y)), averaged over the batch: the book's cross_entropy_error."""

    name = "cross_entropy"

    def fuses_with(self, layer):
        """After a softmax (any layer that declares ``outputs_probabilities``),
        the gradient at its input is (y - t) / N."""
        return layer.outputs_probabilities

    def forward(self, y, t):
        return float(-np.sum(t * np.log(y + _EPS)) / len(y))

    def backward(self, y, t):
        return -t / (y + _EPS) / np.float32(len(y))

    def backward_fused(self, y, t):
        """d(loss)/d(softmax input) = (y - t) / N: the book's SoftmaxWithLoss.backward."""
        return (y - t) / np.float32(len(y))


class MeanSquaredError(Loss):
    """0.5 * sum((y - t)**2), averaged over the batch."""

    name = "mean_squared_error"

    def forward(self, y, t):
        return float(0.5 * np.sum((y - t) ** 2) / len(y))

    def backward(self, y, t):
        return (y - t) / np.float32(len(y))


@hookimpl
def register_classes(register):
    register(CrossEntropy)
    register(MeanSquaredError)
