"""What fw's own layers' ``from_onnx`` share: sizes, windows and flattens, read from an ONNX node.

Each takes the ``OnnxNode`` being read (``onnx_import.OnnxNode``). Attributes
fw cannot honour (dilations, asymmetric padding, ...) are refused by name,
never dropped.
"""

import math

import numpy as np

from ..safeio.untrusted import clip
from .onnx_values import BATCH

MAX_WINDOW = 1 << 16  # kernel, stride and padding sizes, in pixels


def compact(pair):
    """``5`` for (5, 5), else ``[3, 5]``: as a config writes a size."""
    return int(pair[0]) if pair[0] == pair[1] else [int(pair[0]), int(pair[1])]


def pair(node, key, value, minimum):
    """Two sizes of a 2-D window from attribute ``key``, each from ``minimum`` to MAX_WINDOW."""
    if len(value) != 2 or not all(minimum <= int(v) <= MAX_WINDOW for v in value):
        raise node.fail(f"{key}={list(value)}; fw reads two sizes from {minimum} to {MAX_WINDOW} (2-D images)")
    return int(value[0]), int(value[1])


def windows(node, window, strides, padding):
    """Check that windows slid over the node's (C, H, W) input have an output, floor-rounded as ONNX and fw both do."""
    shape = node.input_shape
    if len(shape) != 3:
        raise node.fail(f"gets a tensor of shape {batch_shape(shape)}; it needs (batch, channels, height, width)")
    if any(v != 1 for v in node.attrs.get("dilations", [1, 1])):
        raise node.fail("has dilations; fw's layers have none")
    out = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(shape[1:], padding, window, strides)]
    if min(out) < 1:
        raise node.fail(f"its window {window} is larger than its input {shape}, so it has no output")


def batch_shape(shape) -> str:
    return f"(batch, {', '.join(map(str, shape))})"


def flat(node):
    """Refuse an input that is not (batch, features)."""
    if len(node.input_shape) != 1:
        raise node.fail(
            f"gets a tensor of shape {batch_shape(node.input_shape)}; fw reads it only on (batch, features)"
        )


def dense_entry(node, W, b):
    """``({name: dense, units}, {W, b})`` for ``x @ W + b`` on the node's (batch, features) input."""
    flat(node)
    n = node.input_shape[0]
    if W.ndim != 2 or W.shape[0] != n:
        raise node.fail(f"its weights have shape {W.shape}, which does not take the {n} values per example it gets")
    units = W.shape[1]
    b = np.zeros(units, W.dtype) if b is None else b
    if b.size not in (1, units) or b.ndim > 2:
        raise node.fail(f"its bias has shape {b.shape}; a dense layer of {units} units needs ({units},)")
    return {"name": "dense", "units": int(units)}, {"W": W, "b": np.broadcast_to(b.reshape(-1), (units,))}


def flattens(node) -> bool:
    """Is this Flatten or Reshape a flatten to (batch, features)? A Reshape's target may be a constant or the
    Shape/Gather/Concat chain exporters write; any other reshape is refused."""
    shape = node.input_shape
    if node.op_type == "Flatten":
        axis = node.attrs.get("axis", 1)
        if axis + (len(shape) + 1 if axis < 0 else 0) != 1:
            raise node.fail(f"axis={axis} keeps more than the batch axis; fw's flatten gives (batch, features)")
        return True
    target, batch, n = node.ints(1), node.batch, math.prod(shape)
    keeps_batch = bool(target) and (
        target[0] is BATCH
        or target[0] == -1
        or (target[0] == 0 and not node.attrs.get("allowzero"))
        or (isinstance(batch, int) and target[0] == batch)
    )
    if len(target) == 2 and keeps_batch and (target[1] == n or (target[1] == -1 and target[0] != -1)):
        return True
    shown = clip(", ".join(map(str, target)), 80)
    raise node.fail(
        f"reshapes {batch_shape(shape)} to ({shown}); fw reads only a Reshape to (batch, features), a flatten"
    )
