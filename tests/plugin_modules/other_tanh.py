"""A second third-party plugin that also calls its activation 'tanh'."""

import numpy as np

from framework import Activation, hookimpl


class OtherTanh(Activation):
    name = "tanh"

    def forward(self, x):
        return np.tanh(x)


class Softsign(Activation):
    name = "softsign"

    def forward(self, x):
        return x / (1 + np.abs(x))


@hookimpl
def register_activations(register):
    register(OtherTanh)
    register(Softsign)
