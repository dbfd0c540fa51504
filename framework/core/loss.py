"""The Loss base class that loss plugins subclass (the book's chapter 4)."""

from typing import ClassVar


class Loss:
    """A scalar measure of how far outputs ``y`` are from targets ``t``.

    ``t`` is one-hot, shape (N, classes), like ``y``. Subclasses set ``name``
    and implement ``forward(y, t)`` (the batch mean) and ``backward(y, t)``
    (dL/dy). A loss that pairs with the network's last layer the way
    cross-entropy pairs with softmax says so in ``fuses_with(layer)`` and
    implements ``backward_fused(y, t)``, the gradient with respect to that
    layer's *input*: (y - t) / N for softmax with cross-entropy, as in the
    book's SoftmaxWithLoss layer. Training then skips that layer's backward.
    """

    name: ClassVar[str]

    def forward(self, y, t) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(y, t)")

    def backward(self, y, t):
        raise NotImplementedError(f"{type(self).__name__} must implement backward(y, t)")

    def fuses_with(self, layer) -> bool:
        """True if ``backward_fused`` gives the gradient at ``layer``'s input (``layer`` is the network's last)."""
        return False

    def backward_fused(self, y, t):
        raise NotImplementedError(f"{type(self).__name__}.fuses_with is true, but it has no backward_fused(y, t)")
