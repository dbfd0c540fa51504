"""A plugin class that loads fine and raises later, when fw calls it: an exception whose ``__str__`` raises."""

from framework import Activation, hookimpl


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("__str__ refuses")


class UnprintableForward(Activation):
    name = "unprintable_forward"

    def forward(self, x):
        raise Unprintable()


@hookimpl
def register_activations(register):
    register(UnprintableForward)
