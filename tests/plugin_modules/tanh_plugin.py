"""A third-party activation written exactly as the README shows."""

import numpy as np

from framework import Activation, hookimpl


class Tanh(Activation):
    name = "tanh"

    def forward(self, x):
        return np.tanh(x)


class LeakyReLU(Activation):
    name = "leaky_relu_test"
    init = "he"

    def __init__(self, alpha=0.01):
        self.alpha = alpha

    def forward(self, x):
        return np.where(x > 0, x, self.alpha * x)


@hookimpl
def register_activations(register):
    register(Tanh)
    register(LeakyReLU)
