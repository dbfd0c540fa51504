"""Activations that misbehave at run time, as an outsider's plugin might."""

import numpy as np

from framework import Activation, hookimpl


class Shrink(Activation):
    name = "shrink"

    def forward(self, x):
        return x[:, :3]


class Boom(Activation):
    name = "boom"

    def forward(self, x):
        raise ZeroDivisionError("oops")


class NotANumber(Activation):
    name = "not_a_number"

    def forward(self, x):
        return np.full_like(x, np.nan)


@hookimpl
def register_activations(register):
    for cls in (Shrink, Boom, NotANumber):
        register(cls)
