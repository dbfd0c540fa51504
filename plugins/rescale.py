"""``rescale``: ``(x - offset) * scale`` per value, fixed;
what an imported model's own arithmetic on its tensor becomes.

A model from another framework often prepares its input itself: skl2onnx's
StandardScaler is ai.onnx.ml's Scaler, a PyTorch model's normalisation a Sub
and a Div by constants. ``fw import-onnx`` reads those (and an Add or a Mul by
a constant, as fw's own non-inverted dropout exports) as this layer, and, when
it comes first, writes a config whose dataset does no standardisation of its
own (``prepares_input``), so the input is not prepared twice.
"""

import math

import numpy as np

from framework import Layer, hookimpl

#: Values per example fw keeps an offset and a scale for (16 MiB of each): far above a table's or an image's.
MAX_VALUES = 1 << 22


class Rescale(Layer):
    """``(x - offset) * scale``, with ``offset`` and ``scale`` of one example's shape, saved with the
    weights and never trained (ONNX-ML's Scaler). Built without weights, it is the identity."""

    name = "rescale"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    onnx_ops = ("Scaler", "Sub", "Div", "Add", "Mul")
    #: As a network's first layer it prepares the input: ``fw import-onnx`` turns the dataset's own off.
    prepares_input = True

    def build(self, input_shape, rng):
        self.buffers["offset"] = np.zeros(input_shape, np.float32)
        self.buffers["scale"] = np.ones(input_shape, np.float32)
        return tuple(input_shape)

    def forward(self, x, train=False):
        return (x - self.buffers["offset"]) * self.buffers["scale"]

    def backward(self, dout):
        return dout * self.buffers["scale"]

    def to_onnx(self, graph, x):
        return graph.op(
            "Mul",
            graph.op("Sub", x, graph.weight("offset", self.buffers["offset"])),
            graph.weight("scale", self.buffers["scale"]),
        )

    @classmethod
    def from_onnx(cls, node):
        """Scaler, or Sub, Div, Add or Mul by a constant; the Mul or Div by a constant after it, folded in."""
        shape = node.input_shape
        if math.prod(shape) > MAX_VALUES:
            raise node.fail(
                f"acts on {math.prod(shape):,} values per example; "
                f"fw's rescale keeps an offset and a scale for each, at most {MAX_VALUES:,}"
            )
        if node.op_type == "Scaler":
            offset, scale = (
                np.asarray(node.attrs.get(k, [d]), np.float32) for k, d in (("offset", 0.0), ("scale", 1.0))
            )
            if len(shape) != 1 or offset.size not in (1, shape[0]) or scale.size not in (1, shape[0]):
                raise node.fail(
                    f"has {offset.size} offsets and {scale.size} scales for (batch, {', '.join(map(str, shape))}); "
                    "fw reads a Scaler on (batch, features) with one of each per feature, or one for all"
                )
        else:
            c = _example(node, node.operand(), shape)
            offset = {"Sub": c, "Add": -c}.get(node.op_type, np.float32(0))
            scale = {"Mul": c, "Div": _inverse(node, c)}.get(node.op_type, np.float32(1))
        while (after := node.fold("Mul", "Div")) is not None:  # PyTorch's normalisation: Sub, then Div
            c = _example(after, after.operand(), shape)
            scale = scale * (c if after.op_type == "Mul" else _inverse(after, c))
        full = np.zeros(shape, np.float32)
        return cls.name, {"offset": full + offset, "scale": full + scale}


def _example(node, c, shape):
    """Constant ``c`` as it acts on one example: it may not grow the tensor, nor differ along the batch."""
    c = np.asarray(c, np.float32)
    lead = c.ndim - len(shape)
    try:
        fits = (
            lead <= 1
            and (lead < 1 or c.shape[0] == 1)
            and np.broadcast_shapes(c.shape[max(lead, 0) :], shape) == tuple(shape)
        )
    except ValueError:  # shapes that do not broadcast
        fits = False
    if not fits:
        raise node.fail(
            f"its constant has shape {c.shape}, which does not act on each example of shape {tuple(shape)} alone"
        )
    return c.reshape(c.shape[lead:]) if lead == 1 else c


def _inverse(node, c):
    if not np.all(np.isfinite(c)) or np.any(c == 0):
        raise node.fail("divides by zero, or by a value that is not finite; the file is damaged")
    with np.errstate(over="ignore"):
        inverse = (1 / c.astype(np.float64)).astype(np.float32)
    if not np.all(np.isfinite(inverse)):
        raise node.fail("divides by a value so small that its inverse is beyond float32; the file is damaged")
    return inverse


@hookimpl
def register_layers(register):
    register(Rescale)
