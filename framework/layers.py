"""Layers and the Network: the book's ``predict()`` as a sequence of callables."""

import numpy as np

from .activation import Activation
from .errors import FwError

#: Rows per step of ``Network.classify``: small enough that the book's hidden
#: layers (1024 x 150 float32, 600 KiB) stay in cache between the matrix
#: product and the activation, large enough that BLAS gets few calls (each
#: multi-threaded call waits for all its threads). 1024 was the fastest of
#: 512-10000 on the 2-core benchmark machine (README, Performance).
CHUNK_ROWS = 1024


class Dense:
    """The affine layer ``x @ W + b`` (the book's ``np.dot(x, W1) + b1``)."""

    def __init__(self, W, b):
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        self.b = np.ascontiguousarray(b, dtype=np.float32)

    def __call__(self, x, out=None):
        """``x @ W + b``, written into ``out`` (shape (len(x), n_out)) when it is given."""
        y = np.matmul(x, self.W, out=out)
        y += self.b
        return y

    def __repr__(self):
        return f"Dense({self.W.shape[0]}, {self.W.shape[1]})"


class Network:
    """Dense layers alternating with activation layers, applied in order."""

    def __init__(self, layers):
        self.layers = list(layers)

    def predict(self, x):
        """The last layer's output for each row of ``x`` (the softmax probabilities)."""
        return self._forward(self.layers, x)

    __call__ = predict

    def classify(self, x, chunk_rows=CHUNK_ROWS):
        """``predict(x).argmax(axis=1)``, with less work and no per-batch allocation.

        - Rows are independent, so ``x`` goes through ``chunk_rows`` at a time,
          and each Dense layer writes into one float32 buffer reused by every chunk.
        - A last activation that declares ``monotonic`` (softmax) is skipped:
          it cannot move a row's argmax. (It could only break a tie its float32
          rounding makes; skipped, the larger input wins.)
        """
        layers = self.layers
        if layers and getattr(layers[-1], "monotonic", False):
            layers = layers[:-1]
        rows = max(1, min(chunk_rows, len(x)))
        buffers = [np.empty((rows, l.W.shape[1]), np.float32) if isinstance(l, Dense) else None for l in layers]
        as_float32 = None if x.dtype == np.float32 else np.empty((rows, *x.shape[1:]), np.float32)
        labels = np.empty(len(x), np.intp)
        for start in range(0, len(x), rows):
            chunk = x[start : start + rows]
            if as_float32 is not None:  # e.g. float64 input: cast once here, not in every layer
                chunk = as_float32[: len(chunk)]
                np.copyto(chunk, x[start : start + rows], casting="same_kind")
            y = self._forward(layers, chunk, buffers)
            if np.isnan(y).any():
                raise self._nan_error(layers, x[start : start + rows])
            np.argmax(y, axis=1, out=labels[start : start + len(chunk)])
        return labels

    @staticmethod
    def _forward(layers, x, buffers=None):
        """Apply ``layers``; activations overwrite arrays this pass made instead of allocating.

        A layer that fails (typically a plugin activation) is named in a one-line error.
        """
        owned = False  # is x an array made here (not the caller's input)?
        for i, layer in enumerate(layers):
            shape = x.shape
            try:
                if isinstance(layer, Dense):
                    x = layer(x, out=None if buffers is None else buffers[i][: len(x)])
                    owned = True
                    continue
                if owned and isinstance(layer, Activation):
                    x = layer.forward_inplace(x)
                else:
                    x, owned = layer(x), False
                if getattr(x, "shape", None) != shape:
                    raise ValueError(
                        f"it turned shape {shape} into {getattr(x, 'shape', type(x).__name__)}; forward must keep the shape"
                    )
            except FwError:
                raise
            except Exception as e:
                raise layer_error(i + 1, layer, e) from e
        return x

    @staticmethod
    def _nan_error(layers, x):
        """Name the first layer whose output has a NaN (run again, step by step, on this chunk)."""
        for i, layer in enumerate(layers, 1):
            x = layer(x)
            if np.isnan(x).any():
                return FwError(
                    f"layer {i} of the network, {_describe(layer)}, produced NaN; check its forward and the weights"
                )
        return FwError("the network's output contains NaN; check the weights and any plugin activation's forward")

    @property
    def dense(self):
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def __repr__(self):
        return "Network(" + ", ".join(map(repr, self.layers)) + ")"


def _describe(layer):
    if isinstance(layer, Activation):
        return f"activation '{getattr(layer, 'name', '?')}' ({type(layer).__module__}.{type(layer).__name__})"
    return repr(layer)


def layer_error(index, layer, e) -> FwError:
    """A one-line error naming the layer (typically a plugin's activation) that raised ``e``."""
    return FwError(f"layer {index} of the network, {_describe(layer)}, failed: {type(e).__name__}: {e}")
