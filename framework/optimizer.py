"""The Optimizer base class that optimizer plugins subclass (the book's chapter 6)."""

from typing import ClassVar


class Optimizer:
    """Updates parameters in place from their gradients.

    Subclasses set ``name`` and implement ``update(params, grads)``, where both
    are lists of float32 arrays in the same order (W1, b1, W2, b2, ...).
    Config parameters (``optimizer: {name: adam, lr: 0.001}``) arrive as
    keyword arguments to ``__init__``. Keep per-parameter state in
    ``state()``/``load_state()`` arrays so a checkpoint can resume exactly.
    """

    name: ClassVar[str]

    def update(self, params, grads):
        raise NotImplementedError(f"{type(self).__name__} must implement update(params, grads)")

    def state(self) -> dict:
        """Arrays and numbers that ``load_state`` needs to continue bit for bit."""
        return {}

    def load_state(self, state: dict):
        pass
