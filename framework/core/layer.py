"""The Layer base class that layer plugins subclass (the book's chapter-5 layers).

A layer has ``forward(x, train=False)`` and, for training, ``backward(dout)``;
``build(input_shape, rng)`` creates its parameters once the input shape is
known, so a config writes ``{name: dense, units: 100}``, never the input size.
"""

from typing import ClassVar


class PerInstanceDict:
    """A dict each instance gets on first use, so a subclass need not call ``super().__init__()``.

    A non-data descriptor: the first access stores the dict in the instance,
    which from then on finds it there directly.
    """

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj.__dict__.setdefault(self.name, {})


class Layer:
    """One step of a network: an affine map, an activation, dropout, batch-norm, ...

    The contract, all a layer needs:

    - ``name``: the name ``model.layers`` uses, as in ``{name: dense, units: 100}``.
    - ``__init__`` parameters: the config's, as keyword arguments (``units=100``).
    - ``build(input_shape, rng)`` (optional): ``input_shape`` is one example's
      shape without the batch axis, e.g. ``(784,)`` or ``(1, 28, 28)``; ``rng``
      a ``numpy.random.Generator`` seeded from the config. Create the trainable
      float32 arrays in ``self.params`` and return the output shape.
    - ``forward(x, train=False)``: ``train`` is True inside ``fw train`` (dropout
      drops, batch-norm uses and updates batch statistics). fw calls it with
      ``train=True`` before ``backward``; keep what backward needs then.
    - ``backward(dout)`` (optional; ``fw train`` needs it): return dL/dx and,
      for every key ``k`` of ``self.params``, fill ``self.grads[k]`` (same shape).
    - ``params``, ``grads``, ``buffers``: dicts of arrays the base class
      provides (no ``super().__init__()`` needed); see each below.

    Optional, each for a layer that wants it (see each below): what it
    declares (``weight_names``, ``outputs_probabilities``), fw's initialiser
    (an ``init: Initializer`` parameter), inference fast paths
    (``forward_into``, ``inplace``, ``monotonic``, ``thread_safe``,
    ``input_grad``), export (``to_onnx``) and import (``onnx_ops`` and
    ``from_onnx``).

    The rest is fw's own, called by the network and the messages; a layer
    does not override it. The network runs a layer through ``__call__`` and
    ``backprop``, which run ``forward`` and ``backward``; ``Activation``
    overrides them to keep the ``x`` and ``y`` its one-argument ``forward``
    cannot.
    """

    # --- The contract -------------------------------------------------------------------------

    name: ClassVar[str]

    #: Trainable arrays by name; the optimizer updates them in place from ``grads``.
    params = PerInstanceDict()
    #: ``backward`` fills ``grads[k]`` for each ``k`` in ``params``, with the same shape.
    grads = PerInstanceDict()
    #: Arrays saved with the weights but not trained (batch-norm's running statistics).
    buffers = PerInstanceDict()

    def build(self, input_shape, rng):
        """Create ``self.params`` for this input shape and return the output shape."""
        return tuple(input_shape)

    def forward(self, x, train=False):
        """The layer's output for the batch ``x``; ``train`` is True in ``fw train`` (see the class's contract)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, train=False)")

    def backward(self, dout):
        """Optional, for training: dL/dx for the gradient ``dout`` at the output, filling ``self.grads``."""
        raise self.no_backward()

    # --- Optional: declarations -----------------------------------------------------------------

    #: The keys of ``params`` that are weights (matrices, kernels): weight decay applies to
    #: them, never to biases or normalisation parameters. None: every parameter with two or
    #: more dimensions (``W`` of dense and conv2d; not ``b``, ``gamma`` or ``beta``).
    weight_names: ClassVar[tuple[str, ...] | None] = None
    #: True for a softmax over the last axis (each output row is ``softmax`` of its input row):
    #: ``cross_entropy`` then gives the gradient at this layer's input, (y - t) / N, and training
    #: starts backward there, so as the network's last layer it needs no ``backward``.
    outputs_probabilities: ClassVar[bool] = False

    # An initialiser: a layer that draws weights declares an ``init`` parameter
    # annotated ``framework.Initializer`` (``def __init__(self, units, init:
    # Initializer | None = None)``). fw then passes it one, resolved from the
    # layer's ``init:`` key, else ``model.init``, else the network's first
    # activation's ``preferred_init`` (He for ReLU). Draw with ``self.init(fan_in,
    # fan_out, rng)`` or ``self.init.draw(shape, rng)``. Built from Python without
    # one, ``init`` is None: pick a default. Any other ``init`` parameter is the
    # layer's own (``init: float = 0.25``) and gets its config value as given; an
    # unannotated one gets the Initializer when its default is None or a string.

    # --- Optional: fast paths for inference and training ---------------------------------------

    def forward_into(self, x, out):
        """``forward(x, train=False)``, written into ``out``.

        ``out`` is a float32 buffer of the output's shape that the network owns
        and reuses for every chunk (``out is x`` when ``inplace`` is True and x
        is the network's own). Return ``out`` or a view of it. The default
        returns ``forward(x)``, so a layer works without this.
        """
        return self(x)

    #: True if ``forward_into(x, out)`` accepts ``out is x`` (element-wise layers): the
    #: network then hands it its own buffer to overwrite.
    inplace: ClassVar[bool] = False
    #: True if, as the last layer, it never changes which entry of a row is the
    #: largest (softmax): a classifier may then skip it.
    monotonic: ClassVar[bool] = False
    #: True if inference (``forward_into``, or ``forward`` with train False) may run on two
    #: chunks at once from two threads: it keeps nothing in ``self`` while it works. When
    #: every layer says so, ``classify`` shares its chunks between worker threads
    #: (``framework.core.threads``); the default False keeps them on one.
    thread_safe: ClassVar[bool] = False
    #: False when nothing needs dL/dx, as for the network's first layer: ``backward``
    #: may then skip computing it and return None. A hint fw sets; ignoring it is fine.
    input_grad: bool = True

    # --- Optional: export ----------------------------------------------------------------------

    def to_onnx(self, graph, x):
        """``fw export`` needs it: add this layer's inference to an ONNX graph.

        ``x`` is the name of the input tensor; return the name of the output
        tensor. ``graph.op("Relu", x)`` adds a node and returns its output's
        name (attributes as keywords, e.g. ``graph.op("Gemm", x, w, b,
        transB=0)``; a number or numpy array among the inputs becomes a
        constant); ``graph.weight("W", array)`` adds an initialiser named after
        the layer (``3.W``); ``graph.input_shape`` and ``graph.output_shape``
        are this layer's shapes (one example). No import of ``onnx`` is
        needed: fw does that.
        """
        raise NotImplementedError(f"{type(self).__name__} has no to_onnx(graph, x)")

    # --- Optional: import ----------------------------------------------------------------------

    #: The ONNX op types ``from_onnx`` reads, e.g. ``("Relu",)`` (ops of the standard domains,
    #: ``ai.onnx`` and ``ai.onnx.ml``): ``fw import-onnx`` hands it each node of these types on a
    #: network's path, and its refusal of any other op lists the ops every installed layer reads.
    onnx_ops: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_onnx(cls, node):
        """``fw import-onnx`` needs it (the mirror of ``to_onnx``): this layer's part of a model, read from ONNX.

        ``node`` is an ONNX node of one of ``onnx_ops`` (``framework.interchange.onnx_import.OnnxNode``):
        ``node.op_type``, ``node.attrs`` (its attributes by name), ``node.input_shape`` (one example,
        no batch axis) and ``node.opset``; ``node.weight(k)``, its input ``k`` as a float array (a
        constant of the model); ``node.operand()``, the constant other input of an element-wise op
        (Add, Mul, ...); ``node.fold(*op_types)``, the node after it when it is one of those and reads
        only this one's output, taken into this layer (the Add of MatMul + Add); ``node.fail(problem)``,
        the one-line error naming the node. No import of ``onnx`` is needed: fw does that.

        Return ``(entry, arrays)``: the ``model.layers`` entry (``"relu"``, ``{"name": "dense",
        "units": 10}``) and the arrays of its ``params`` and ``buffers`` by key (``{"W": ..., "b":
        ...}``); fw builds the layer to learn its output shape. Return None when the node changes
        nothing (no layer), and ``NotImplemented`` to leave the node to another layer that reads
        the op. The default, for a layer with no parameters, is ``(cls.name, {})``.
        """
        return cls.name, {}

    # --- fw's own: a layer does not override these ------------------------------------------------

    #: How messages name this kind of plugin, what it lacks without backward, and how to add it.
    noun: ClassVar[str] = "layer"
    missing: ClassVar[str] = "no backward"
    backward_hint: ClassVar[str] = "backward(self, dout) returning dL/dx and filling self.grads"

    def __call__(self, x, train=False):
        """What the network runs: ``forward(x, train)``."""
        return self.forward(x, train)

    def backprop(self, dout):
        """What the network runs in training, after ``self(x, train=True)``: ``backward(dout)``."""
        return self.backward(dout)

    @classmethod
    def has_backward(cls) -> bool:
        return cls.backward is not Layer.backward

    @classmethod
    def has_onnx(cls) -> bool:
        """Does this class export itself to ONNX (``fw export``)?"""
        return cls.to_onnx is not Layer.to_onnx

    def is_weight(self, key) -> bool:
        """Does weight decay apply to ``params[key]``? See ``weight_names``."""
        names = self.weight_names
        return key in names if names is not None else self.params[key].ndim >= 2

    @classmethod
    def suggested_init(cls) -> str | None:
        """The initialiser that suits the layers feeding this one ("he" for ReLU); None: no opinion."""
        return None

    def no_backward(self, why="", fix="implement"):
        """The error for a missing ``backward``: ``layer 'x' (X) has no backward{why}; {fix} backward(...)``."""
        from ..errors import FwError

        return FwError(
            f"{self.noun} '{getattr(self, 'name', '?')}' ({type(self).__name__}) has {self.missing}{why}; "
            f"{fix} {self.backward_hint}"
        )

    def __repr__(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"
