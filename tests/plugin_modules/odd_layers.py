"""Layer plugins that break the contract in the ways users' layers do."""

import numpy as np

from framework import Layer, hookimpl


class NeedsImages(Layer):
    """build refuses a flat input."""

    name = "needs_images"

    def build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ValueError(f"needs (channels, height, width) input, got {input_shape}")
        return input_shape

    def forward(self, x, train=False):
        return x


class Halve(Layer):
    """A layer with no backward: fine for fw run, refused by fw train."""

    name = "halve"

    def forward(self, x, train=False):
        return x * np.float32(0.5)


class ForgetsGrads(Layer):
    """Has a parameter, but its backward never fills grads."""

    name = "forgets_grads"

    def build(self, input_shape, rng):
        self.params["gain"] = np.ones(input_shape, np.float32)
        return input_shape

    def forward(self, x, train=False):
        return x * self.params["gain"]

    def backward(self, dout):
        return dout * self.params["gain"]


@hookimpl
def register_layers(register):
    for cls in (NeedsImages, Halve, ForgetsGrads):
        register(cls)
