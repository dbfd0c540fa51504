"""Plugins that return what fw must refuse: a width that changes in the middle chunks, a build that never ends."""

import itertools

import numpy as np

from framework import Layer, hookimpl


class MiddleChunkWidth(Layer):
    """Right for the first and last chunks fw checked before; one column short in the middle ones."""

    name = "middle_chunk_width"
    calls = 0

    def build(self, input_shape, rng):
        return (16,)

    def forward(self, x, train=False):
        self.calls += 1
        y = np.zeros((len(x), 16), np.float32)
        return y[:, :-1] if 3 <= self.calls <= 6 else y


class EndlessBuild(Layer):
    name = "endless_build"

    def build(self, input_shape, rng):
        return itertools.count(1)  # tuple() of it would never end

    def forward(self, x, train=False):
        return x


@hookimpl
def register_layers(register):
    register(MiddleChunkWidth)
    register(EndlessBuild)
