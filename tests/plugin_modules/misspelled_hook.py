from framework import Activation, hookimpl


class Cube(Activation):
    name = "cube"

    def forward(self, x):
        return x**3


@hookimpl
def register_activation(register):  # missing the final "s"
    register(Cube)
