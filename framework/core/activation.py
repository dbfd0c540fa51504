"""The Activation base class that activation plugins subclass: a Layer with no parameters."""

from typing import ClassVar

from .layer import Layer

#: What a Layer keeps that is not an activation's own parameter (left out of its repr).
_BOOKKEEPING = {"params", "grads", "buffers", "x", "y", "input_grad"}


class _OldName:
    """``init``, the old name of ``preferred_init``: read on a class it gives ``suggested_init()``.

    A non-data descriptor, so a subclass's ``init = "he"`` or an instance's ``self.init = 0.25`` wins.
    """

    def __get__(self, obj, owner):
        return owner.suggested_init()


class Activation(Layer):
    """An element-wise (or row-wise) function: a layer whose author writes only the function.

    Subclasses set ``name`` (the name configs use) and implement
    ``forward(x)``, and for training ``backward(x, y, dout)``. Parameters given
    in the config, as in ``activation: {name: leaky_relu, alpha: 0.01}``,
    arrive as keyword arguments to ``__init__``. The base class keeps the
    ``x`` and ``y`` of a training ``forward`` and hands them to ``backward``.
    """

    #: Weight initialisation that suits the layers feeding this activation when
    #: weights are drawn: "he" (ReLU family) or "xavier" (sigmoid, tanh...).
    #: (An activation written for the old contract sets ``init = "he"``; that still counts,
    #: and ``Activation.init`` still reads this. ``init`` is free for the layer's own parameter.)
    preferred_init: ClassVar[str] = "xavier"
    init = _OldName()  # reads preferred_init; an instance's own ``init`` (a parameter) hides it
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
    #: The network may hand ``forward_into`` its own buffer: see ``forward_inplace``.
    inplace: ClassVar[bool] = True

    noun: ClassVar[str] = "activation"
    missing: ClassVar[str] = "no derivative"
    backward_hint: ClassVar[str] = "backward(self, x, y, dout) returning dL/dx (see framework.Activation.backward)"

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
        raise self.no_backward()

    @classmethod
    def has_backward(cls) -> bool:
        """True if this class (or a parent other than Activation) implements ``backward``."""
        return cls.backward is not Activation.backward

    @classmethod
    def suggested_init(cls):
        """``preferred_init``, or a string ``init`` that a class written for the old contract set."""
        for klass in cls.__mro__:
            own = vars(klass)
            if "preferred_init" in own:
                return own["preferred_init"]
            if isinstance(own.get("init"), str):
                return own["init"]
        return None

    def __call__(self, x, train=False):
        y = self.forward(x)
        if train:
            self.x, self.y = x, y
        return y

    def backprop(self, dout):
        return self.backward(self.x, self.y, dout)

    def forward_into(self, x, out):
        if type(self).forward_inplace is Activation.forward_inplace:
            return self.forward(x)  # no in-place version: the network will not own the result
        if out is not x:
            out[...] = x
        return self.forward_inplace(out)

    def __repr__(self):
        params = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if k not in _BOOKKEEPING and not k.startswith("_")
        )
        return f"{type(self).__name__}({params})"
