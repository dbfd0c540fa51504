"""The Loss base class that loss plugins subclass (the book's chapter 4)."""

from typing import ClassVar


class Loss:
    """A scalar measure of how far outputs ``y`` are from targets ``t``.

    ``t`` is one-hot, shape (N, classes), like ``y``. Subclasses set ``name``
    and implement ``forward(y, t)`` (the batch mean) and ``backward(y, t)``
    (dL/dy). A loss that pairs with an output activation the way
    cross-entropy pairs with softmax sets ``fused_activation`` to that
    activation's name and implements ``backward_fused(y, t)``, the gradient
    with respect to the activation's *input*: (y - t) / N for softmax with
    cross-entropy, as in the book's SoftmaxWithLoss layer.
    """

    name: ClassVar[str]
    fused_activation: ClassVar[str | None] = None

    def forward(self, y, t) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(y, t)")

    def backward(self, y, t):
        raise NotImplementedError(f"{type(self).__name__} must implement backward(y, t)")

    def backward_fused(self, y, t):
        raise NotImplementedError(f"{type(self).__name__} sets fused_activation but has no backward_fused(y, t)")
