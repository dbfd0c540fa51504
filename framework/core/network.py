"""The Network: an ordered list of layers, one class for inference and training (the book's chapter 5).

``forward`` runs the layers in order and ``backward`` in reverse, as the
book's ``TwoLayerNet`` does; ``classify`` is the same forward pass, done in
chunks into buffers the network reuses (see docs/performance.md).
"""

import math

import numpy as np

from ..errors import FwError
from ..safeio.untrusted import describe_object
from . import threads
from .layer import Layer
from .memory import check as check_memory
from .optimizer import NamedArrays

#: Rows per chunk of ``Network.classify``: at most CHUNK_ROWS, and few enough that the
#: buffers of one chunk take about CHUNK_BYTES, so a chunk stays in cache between a matrix
#: product and its activation (docs/performance.md has the measurements behind 1024).
#: A ConvNet's layers take their own smaller chunks; for the DeepConvNet, 56 rows (8 MiB)
#: classified in 0.87-0.93 x the time of 28 (4 MiB), with fewer calls through its 20 layers.
CHUNK_BYTES = 8 << 20
CHUNK_ROWS = 1024


class Network:
    """Layers applied in order. ``build`` fixes every shape before the first call.

    ``labels[i]`` names layer i in errors, e.g. ``model.layers[3] (dense)``.
    A network made from Python (``Network([...])``) builds itself from the
    first input it sees.
    """

    def __init__(self, layers, labels=None):
        self.layers = list(layers)
        self.labels = list(labels) if labels else None
        self.input_shape = None
        self.shapes = None  # each layer's output shape (one example), from build

    # -- shapes ----------------------------------------------------------------------------

    def build(self, input_shape, rng=None):
        """Build every layer for ``input_shape`` (one example, no batch axis); ``rng`` draws initial weights."""
        rng = np.random.default_rng(0) if rng is None else rng
        if not self.labels or len(self.labels) != len(self.layers):
            self.labels = [f"layer {i} ({_name(layer)})" for i, layer in enumerate(self.layers)]
        shape = self.input_shape = tuple(int(s) for s in input_shape)
        self.shapes = []
        for i, layer in enumerate(self.layers):
            try:
                out = layer.build(shape, rng)
            except Exception as e:  # a plugin's build: whatever it raises, name the layer
                text = _text(e)
                raise self.error(i, text if str(shape) in text else f"{text} (input shape {shape})") from e
            shape = _as_shape(out)
            if shape is None:
                raise self.error(
                    i,
                    f"build returned {describe_object(out)}; "
                    "it must return the output shape, a tuple of positive whole numbers",
                )
            try:  # before any forward pass allocates it
                check_memory(4 * math.prod(shape), f"its output for one example, of shape {shape},")
            except FwError as e:
                raise self.error(i, str(e)) from None
            for key, p in layer.params.items():
                if not (isinstance(p, np.ndarray) and p.dtype == np.float32):
                    raise self.error(i, f"params['{key}'] must be a float32 numpy array, got {_describe(p)}")
            self.shapes.append(shape)
        for i, layer in enumerate(self.layers):
            layer.input_grad = i > 0  # nothing needs dL/dx of the network's input
        self._names = None
        return self

    @property
    def output_shape(self):
        return self.shapes[-1] if self.shapes else self.input_shape

    def as_input(self, x):
        """``x`` as a batch of this network's input shape (building the network on first use)."""
        x = np.asarray(x)
        if self.shapes is None:
            self.build(x.shape[1:])
        if x.shape[1:] != self.input_shape:
            if x.ndim < 1 or np.prod(x.shape[1:], dtype=np.int64) != np.prod(self.input_shape, dtype=np.int64):
                raise FwError(
                    f"the network takes examples of shape {self.input_shape}, but these have shape {x.shape[1:]}"
                )
            x = x.reshape(len(x), *self.input_shape)  # e.g. (N, 1, 28, 28) images for a dense network's (784,)
        return x

    # -- the forward and backward passes -------------------------------------------------

    def forward(self, x, train=False, *, check=True):
        """Every layer in order; ``train`` switches dropout and batch-norm to training behaviour.

        ``check``: that each layer's output has the shape ``build`` promised and
        keeps the dtype. Training checks its first step and then trusts them.
        """
        x = self.as_input(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # e.g. uint8 images
        for i, layer in enumerate(self.layers):
            try:
                y = layer(x, train)
            except FwError:
                raise
            except Exception as e:
                raise self.error(i, f"forward failed: {_text(e)}") from e
            if check:
                self._check(i, "forward", y, (len(x), *self.shapes[i]), x.dtype)
            x = y
        return x

    def predict(self, x):
        """The last layer's output for each row of ``x`` (the softmax probabilities)."""
        return self.forward(x, train=False)

    __call__ = predict

    def backward(self, dout, layers=None, *, check=True):
        """Propagate ``dout`` (dL/d output of layer ``layers - 1``) back through the first ``layers`` layers.

        ``layers`` defaults to all of them; training leaves out the last when
        the loss is fused with it (softmax with cross-entropy) and gives the
        gradient at its input directly. ``check`` as for ``forward``: each
        dL/dx has its layer's input shape and keeps the dtype.
        """
        count = len(self.layers) if layers is None else layers
        n, dtype = len(dout), dout.dtype
        for i in reversed(range(count)):
            layer = self.layers[i]
            try:
                dx = layer.backprop(dout)
            except FwError:
                raise
            except Exception as e:
                if i + 1 < count:  # unchecked steps: was it the layer above that handed over a bad dL/dx?
                    self._check(i + 1, "backward", dout, (n, *self.shapes[i]), dtype)
                raise self.error(i, f"backward failed: {_text(e)}") from e
            if check and (i or layer.input_grad):
                self._check(i, "backward", dx, (n, *(self.shapes[i - 1] if i else self.input_shape)), dout.dtype)
            dout = dx
        return dout

    def classify(self, x, chunk_rows=None):
        """``predict(x).argmax(axis=1)``, with less work and no per-chunk allocation.

        - Rows are independent, so ``x`` goes through a chunk at a time, and each
          layer with a ``forward_into`` writes into a float32 buffer reused by
          every chunk: two per output shape, so a layer never writes over its own
          input, and a thousand element-wise layers cost no more than one.
          Element-wise layers (``inplace``) overwrite the buffer they are given.
        - Every chunk's output is checked against the shape ``build`` promised.
        - When every layer is ``thread_safe`` (fw's own are), worker threads
          share the chunks (``framework.core.threads``), so a core that another
          program keeps busy does fewer of them rather than hold up the rest.
        - A last layer that declares ``monotonic`` (softmax) is skipped: it cannot
          move a row's argmax. (It could only break a tie its float32 rounding
          makes; skipped, the larger input wins.)
        """
        x = self.as_input(x)
        layers = self.layers
        if layers and layers[-1].monotonic:
            layers = layers[:-1]
        rows = max(1, min(chunk_rows or self.chunk_rows(), len(x)))
        steps = [
            (i, layer, type(layer).forward_into is not Layer.forward_into, layer.inplace)
            for i, layer in enumerate(layers)
        ]
        cast = x.dtype != np.float32  # e.g. float64 input: cast once per chunk, not in every layer
        labels = np.empty(len(x), np.intp)
        starts = range(0, len(x), rows)
        mine = {}  # per worker: its buffers, and its float32 copy of a chunk

        def task(worker, i):
            if worker not in mine:
                mine[worker] = _Buffers(rows), np.empty((rows, *x.shape[1:]), np.float32) if cast else None
            pool, as_float32 = mine[worker]
            start = starts[i]
            chunk = x[start : start + rows]
            k = len(chunk)
            if cast:
                chunk = as_float32[:k]
                np.copyto(chunk, x[start : start + k], casting="same_kind")
            chunk = self._through(steps, chunk, cast, pool)
            if np.isnan(chunk).any():
                raise self._nan_error(x[start : start + k])
            np.argmax(chunk.reshape(k, -1), axis=1, out=labels[start : start + k])

        if len(starts) > 1 and all(layer.thread_safe for layer in layers):
            threads.run(task, len(starts), linger=False)  # chunks shared out; the same numbers as one by one
        else:
            for i in range(len(starts)):
                task(0, i)
        return labels

    def _through(self, steps, chunk, owned, pool):
        """One chunk through every layer; ``owned``: may a layer overwrite the array it is given?"""
        k = len(chunk)
        for i, layer, fast, inplace in steps:
            try:
                if fast:
                    out = chunk if inplace and owned else pool.get(self.shapes[i], k, chunk)
                    y = layer.forward_into(chunk, out)
                    owned = _same_memory(y, out)
                else:
                    y, owned = layer(chunk), False
            except FwError:
                raise
            except Exception as e:
                raise self.error(i, f"forward failed: {_text(e)}") from e
            self._check(i, "forward", y, (k, *self.shapes[i]), np.float32)
            chunk = y
        return chunk

    def bytes_per_example(self):
        """Float32 bytes of one example's input and every layer's output."""
        return 4 * sum(math.prod(s) for s in (self.input_shape, *self.shapes))

    def chunk_rows(self):
        """Rows per chunk so that one chunk's buffers take about ``CHUNK_BYTES``.

        Counted: the outputs of layers that change the size of their input
        (element-wise layers work in the buffer they are given).
        """
        sizes = [int(np.prod(s)) for s in (self.input_shape, *self.shapes)]
        per_row = 4 * sum(b for a, b in zip(sizes, sizes[1:]) if a != b)
        return max(1, min(CHUNK_ROWS, CHUNK_BYTES // max(per_row, 1)))

    # -- parameters ------------------------------------------------------------------------

    def parameters(self):
        """Every trainable array, layer by layer, named ``0.W``, ...: what the optimizer updates in place."""
        names, weights = self._param_names()
        return NamedArrays(names, [p for layer in self.layers for p in layer.params.values()], weights)

    def gradients(self):
        """The gradient of each of ``parameters()``, in the same order and with the same names."""
        return NamedArrays(
            self._param_names()[0], [layer.grads.get(key) for layer in self.layers for key in layer.params]
        )

    _names = None  # (names, weights) once built: training asks every step

    def _param_names(self):
        """``(every parameter's name, the names of those that are weights)``; fixed once the layers are built."""
        if self._names is None or self.shapes is None:
            names = [f"{i}.{key}" for i, layer in enumerate(self.layers) for key in layer.params]
            weights = frozenset(
                f"{i}.{key}" for i, layer in enumerate(self.layers) for key in layer.params if layer.is_weight(key)
            )
            if self.shapes is None:
                return names, weights
            self._names = names, weights
        return self._names

    def check_gradients(self):
        """After a backward pass: did every layer fill a float32 gradient of the right shape for each parameter?"""
        for i, layer in enumerate(self.layers):
            for key, p in layer.params.items():
                g = layer.grads.get(key)
                if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != np.float32:
                    got = "nothing" if g is None else _describe(g)
                    raise self.error(
                        i,
                        f"backward must fill grads['{key}'] with a float32 array of shape {p.shape}, "
                        f"like params['{key}']; it left {got}",
                    )

    def non_finite(self):
        """``(layer index, name)`` of the first parameter or buffer holding NaN or Inf; None if all are finite."""
        for i, layer in enumerate(self.layers):
            for table in (layer.params, layer.buffers):
                for key, array in table.items():
                    if not np.isfinite(array).all():
                        return i, key
        return None

    def state_dict(self):
        """``{"<layer index>.<name>": array}`` for every layer's params and buffers (PyTorch's naming)."""
        return {
            f"{i}.{key}": array
            for i, layer in enumerate(self.layers)
            for table in (layer.params, layer.buffers)
            for key, array in table.items()
        }

    # -- errors ----------------------------------------------------------------------------

    def error(self, i, message) -> FwError:
        """``model.layers[3] (tanh, my_plugin.Tanh): message``; fw's own classes go unnamed."""
        cls = type(self.layers[i])
        label = self.labels[i]
        if not cls.__module__.startswith("framework.") and label.endswith(")"):
            label = f"{label[:-1]}, {cls.__module__}.{cls.__qualname__})"
        return FwError(f"{label}: {message}")

    def _check(self, i, method, y, shape, dtype):
        """A layer's result must have the promised shape and keep the dtype it was given (float32)."""
        if getattr(y, "shape", None) != shape:
            got = f"shape {y.shape}" if hasattr(y, "shape") else f"a {type(y).__name__}"
            promise = "build promised" if method == "forward" else "the layer's input has"
            raise self.error(i, f"{method} returned {got}, but {promise} {shape}")
        if y.dtype != dtype:
            raise self.error(
                i,
                f"{method} turned {np.dtype(dtype)} into {y.dtype}; "
                "keep the dtype (e.g. use x.dtype.type(0.5), not 0.5)",
            )

    def _nan_error(self, x):
        """Name the first layer whose output has a NaN (run again, step by step, on this chunk)."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if np.isnan(x).any():
                return self.error(i, "produced NaN; check its forward and the weights")
        return FwError("the network's output contains NaN; check the weights and any plugin layer's forward")

    def __repr__(self):
        return "Network(" + ", ".join(map(repr, self.layers)) + ")"


def _name(layer):
    return getattr(layer, "name", type(layer).__name__)


#: The most axes an example's shape may have: build returning anything longer (an endless iterator) is refused.
MAX_AXES = 16


def _as_shape(value):
    """``value`` as a shape: a short tuple or list of positive ints, else None (never iterated further)."""
    if not isinstance(value, (tuple, list)) or not 0 < len(value) <= MAX_AXES:
        return None
    ok = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in value)
    return tuple(int(s) for s in value) if ok else None


class _Buffers:
    """Float32 buffers of ``rows`` rows, two per output shape, made on first need."""

    def __init__(self, rows):
        self.rows, self.pairs = rows, {}

    def get(self, shape, k, avoid):
        """The first ``k`` rows of a buffer of ``shape`` that does not hold ``avoid``."""
        pair = self.pairs.setdefault(shape, [])
        for buffer in pair:
            if not np.may_share_memory(buffer, avoid):
                return buffer[:k]
        pair.append(np.empty((self.rows, *shape), np.float32))
        return pair[-1][:k]


def _same_memory(y, out):
    """Is ``y`` the buffer ``out`` (or a view of the same memory)?"""
    if y is out:
        return True
    base = out if out.base is None else out.base
    return isinstance(y, np.ndarray) and (y.base is base or y is base)


def _describe(a):
    return f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__


def _text(e):
    """``Type: message`` on one line, bounded, whatever the exception's ``__str__`` does.

    A ValueError (or FwError) is a layer's own complaint, e.g. about its
    parameters or shapes: its message alone says it.
    """
    from ..safeio.untrusted import describe_exception

    return describe_exception(e, 300, prefix=not isinstance(e, (ValueError, FwError)))
