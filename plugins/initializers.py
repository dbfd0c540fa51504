"""Weight initialisers from the book's chapter 6: He, Xavier and the fixed-std normal."""

from typing import Annotated

import numpy as np

from framework import Initializer, hookimpl


class He(Initializer):
    """std = sqrt(2 / fan_in): keeps ReLU activations from shrinking layer by layer."""

    name = "he"

    def __call__(self, fan_in, fan_out, rng):
        return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)


class Xavier(Initializer):
    """std = sqrt(1 / fan_in), the book's form of Xavier for sigmoid and tanh."""

    name = "xavier"

    def __call__(self, fan_in, fan_out, rng):
        return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(1.0 / fan_in)).astype(np.float32)


class Normal(Initializer):
    """A fixed standard deviation, the book's ``weight_init_std=0.01``."""

    name = "normal"

    def __init__(self, std: Annotated[float, "a positive finite number"] = 0.01):
        if std <= 0:
            raise ValueError(f"std must be a positive finite number, got {std!r}")
        self.std = std

    def __call__(self, fan_in, fan_out, rng):
        return (rng.standard_normal((fan_in, fan_out)) * self.std).astype(np.float32)


@hookimpl
def register_initializers(register):
    for cls in (He, Xavier, Normal):
        register(cls)
