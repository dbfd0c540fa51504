"""The Initializer base class that weight-initialisation plugins subclass."""

from typing import ClassVar


class Initializer:
    """Draws the starting weights of a layer.

    Subclasses set ``name`` and implement ``__call__(fan_in, fan_out, rng)``
    returning a float32 array of shape (fan_in, fan_out); ``rng`` is a
    ``numpy.random.Generator``, so the same seed gives the same weights.
    Biases start at zero. Config parameters (``init: {name: normal, std: 0.01}``)
    arrive as keyword arguments to ``__init__``. ``draw`` gives any shape.
    """

    name: ClassVar[str]

    def __call__(self, fan_in, fan_out, rng):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(fan_in, fan_out, rng)")

    def draw(self, shape, rng, out_axis=-1):
        """Weights of any ``shape``: see ``draw``."""
        return draw(self, shape, rng, out_axis)


def draw(init, shape, rng, out_axis=-1):
    """Weights shaped ``shape`` from ``init(fan_in, fan_out, rng)``, any callable of that form.

    ``out_axis`` is the axis of the layer's outputs: -1 for a dense layer's
    (inputs, units), 0 for a convolution's (filters, channels, kh, kw). The
    fan-in is the product of the other axes, so a filter draws like a dense
    layer of that many inputs.
    """
    import math

    import numpy as np

    from .memory import check

    shape = tuple(int(s) for s in shape)
    # Initialisers draw in float64, then keep float32: 12 bytes a weight while drawing.
    check(12 * math.prod(shape), f"drawing its weights of shape {shape}")
    axis = out_axis % len(shape)
    fan_out = shape[axis]
    rest = shape[:axis] + shape[axis + 1 :]
    matrix = np.asarray(init(int(np.prod(rest)), fan_out, rng), np.float32)  # (fan_in, fan_out)
    return np.ascontiguousarray(np.moveaxis(matrix.reshape(*rest, fan_out), -1, axis))
