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
    #: False (the default): element-wise, so ``forward(x)[i, j]`` depends on
    #: ``x[i, j]`` alone. True: each output row depends on its whole input row,
    #: as softmax's does. ``framework.testing.check_activation`` checks
    #: element-wise independence only when this is False; rows never depend
    #: on other rows either way.
    rowwise: ClassVar[bool] = False
    #: True if it never changes which entry of a row is largest (softmax,
    #: sigmoid): a classifier that needs only the argmax may then skip it as
    #: the output layer. False (the default) is always safe.
    monotonic: ClassVar[bool] = False

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def forward_inplace(self, x):
        """``forward(x)``, allowed to overwrite ``x`` (a float32 buffer the network owns).

        Optional: override it to skip allocating an output per batch. The
        default calls ``forward(x)``, so every activation works without it.
        """
        return self.forward(x)

    def backward(self, x, y, dout):
        """Optional: the gradient with respect to the input, for training.

        ``x`` is the input ``forward`` saw, ``y`` its output ``forward(x)``
        (pass both, so sigmoid can use ``y`` and ReLU ``x``), and ``dout`` the
        gradient of the loss with respect to ``y``. Return ``dL/dx``, shaped
        like ``x``: ``dout * f'(x)`` for an element-wise activation. ``fw run``
        never calls it; ``check_activation`` checks it against a numerical
        gradient when a class defines it.
        """
        from .errors import FwError

        raise FwError(
            f"activation '{getattr(self, 'name', '?')}' ({type(self).__name__}) has no derivative; "
            "implement backward(self, x, y, dout) returning dL/dx (see framework.Activation.backward)"
        )

    @classmethod
    def has_backward(cls) -> bool:
        """True if this class (or a parent other than Activation) implements ``backward``."""
        return cls.backward is not Activation.backward

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"
