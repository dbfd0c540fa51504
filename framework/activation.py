"""The Activation base class that activation plugins subclass."""

from typing import ClassVar


class Activation:
    """An element-wise (or row-wise) function applied between dense layers.

    Subclasses set ``name`` (the name configs use) and implement
    ``forward(x)``. Parameters given in the config, as in
    ``activation: {name: leaky_relu, alpha: 0.01}``, arrive as keyword
    arguments to ``__init__``.
    """

    name: ClassVar[str]
    #: Weight initialisation that suits this activation when ``weights`` is null:
    #: "he" (ReLU family) or "xavier" (sigmoid, tanh...).
    init: ClassVar[str] = "xavier"

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"
