"""The Optimizer base class that optimizer plugins subclass (the book's chapter 6)."""

from typing import ClassVar

from .layer import PerInstanceDict


class NamedArrays(list):
    """Arrays in network order that also know their names (``0.W``, ``0.b``, ``2.gamma``, ...).

    A plain list to an optimizer that zips ``params`` with ``grads``;
    ``names`` and ``items()`` for one that keeps state per parameter.
    """

    def __init__(self, names, arrays, weights=None):
        super().__init__(arrays)
        self.names = list(names)
        #: The names of the arrays that are weights, which weight decay applies to (see ``Layer.weight_names``).
        self.weights = frozenset(weights or ())

    def items(self):
        return zip(self.names, self)


class Optimizer:
    """Updates parameters in place from their gradients.

    Subclasses set ``name`` and implement ``update(params, grads)``: the
    network's float32 parameters and their gradients, in the same order
    (``params.items()`` also gives each one's name, ``"3.W"``). Config
    parameters (``optimizer: {name: adam, lr: 0.001}``) arrive as keyword
    arguments to ``__init__``.

    - ``lr``: the learning rate. ``train.lr_schedule`` sets it before every
      step; an optimizer that has none leaves it None and runs only with
      ``lr_schedule: constant``.
    - ``weight_decay``: L2 regularisation (the book's 6.4.1): ``decayed(params,
      grads)`` adds ``weight_decay * p`` to the gradient of each weight (not of
      biases or batch-norm parameters; ``params.weights`` names the weights).
      The built-in optimizers call it first in ``update``.
    - State per parameter: ``self.slot("m", name, p)`` is the array ``m`` of
      parameter ``name``, zeros shaped like ``p`` on first use. Slots are saved
      in checkpoints under the parameter's name, so ``--resume`` continues bit
      for bit. Other state (a step count): extend ``state()``/``load_state()``.
    """

    name: ClassVar[str]
    lr: float | None = None
    weight_decay: float = 0.0

    #: slot name -> parameter name -> array
    slots = PerInstanceDict()

    def update(self, params, grads):
        raise NotImplementedError(f"{type(self).__name__} must implement update(params, grads)")

    def decayed(self, params, grads):
        """``grads`` with ``weight_decay * p`` added for every weight ``p`` (new arrays; the rest as they are).

        The gradient of the book's ``0.5 * weight_decay * sum(W**2)`` added to
        the loss. Without weight decay, ``grads`` itself.
        """
        wd = self.weight_decay
        weights = getattr(params, "weights", ())
        if not wd or not weights:
            return grads
        import numpy as np

        wd = np.float32(wd)
        return [g + wd * p if name in weights else g for (name, p), g in zip(params.items(), grads)]

    def slot(self, slot, name, like):
        """Parameter ``name``'s state array ``slot``, made as zeros like ``like`` on first use."""
        table = self.slots.setdefault(slot, {})
        a = table.get(name)
        if a is None:
            import numpy as np

            a = table[name] = np.zeros_like(like)
        return a

    def state(self) -> dict:
        """What ``load_state`` needs to continue bit for bit: ``{"slots": {slot: {parameter: array}}, ...}``."""
        return {"slots": {slot: dict(table) for slot, table in self.slots.items()}}

    def load_state(self, state: dict):
        self.slots.clear()
        self.slots.update({slot: dict(table) for slot, table in state.get("slots", {}).items()})
