"""The Initializer base class that weight-initialisation plugins subclass."""

from typing import ClassVar


class Initializer:
    """Draws the starting weights of one dense layer.

    Subclasses set ``name`` and implement ``__call__(fan_in, fan_out, rng)``
    returning a float32 array of shape (fan_in, fan_out); ``rng`` is a
    ``numpy.random.Generator``, so the same seed gives the same weights.
    Biases start at zero. Config parameters (``init: {name: normal, std: 0.01}``)
    arrive as keyword arguments to ``__init__``.
    """

    name: ClassVar[str]

    def __call__(self, fan_in, fan_out, rng):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(fan_in, fan_out, rng)")
