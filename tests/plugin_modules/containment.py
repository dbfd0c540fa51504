"""Plugins that misbehave in ways fw must contain: a width that changes in the middle chunks, a build that
never ends, and a thread left running at exit."""

import itertools
import threading

import numpy as np

from framework import Activation, Layer, hookimpl


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


class Lingers(Activation):
    """Starts a non-daemon thread that never ends, as a careless plugin's background poller would."""

    name = "lingers"

    def forward(self, x):
        if not any(t.name == "lingering-poller" for t in threading.enumerate()):
            threading.Thread(target=threading.Event().wait, name="lingering-poller").start()
        return x


@hookimpl
def register_layers(register):
    register(MiddleChunkWidth)
    register(EndlessBuild)


@hookimpl
def register_activations(register):
    register(Lingers)
