"""What each ONNX op on a network's path becomes in fw: one step per op.

A step gets the walker (``onnx_import._Walker``: its constants, helpers and the
layers made so far), the node's position and the node, and the shape of one
example reaching it. It adds the layer (or none) and returns the shape it
leaves and the node whose first output the path goes on from. Attributes fw
cannot honour (dilations, groups, asymmetric padding, ceil_mode, ...) are
refused by name, never dropped.
"""

import math

import numpy as np

from ..safeio.untrusted import clip
from .onnx_values import BATCH, attributes

MAX_WINDOW = 1 << 16  # kernel, stride and padding sizes, in pixels


def _compact(pair):
    """``5`` for (5, 5), else ``[3, 5]``: as a config writes a size."""
    return int(pair[0]) if pair[0] == pair[1] else [int(pair[0]), int(pair[1])]


def _pair(w, i, node, key, value, minimum):
    if len(value) != 2 or not all(minimum <= int(v) <= MAX_WINDOW for v in value):
        raise w.fail(i, node, f"{key}={list(value)}; fw reads two sizes from {minimum} to {MAX_WINDOW} (2-D images)")
    return int(value[0]), int(value[1])


def _windows(w, i, node, shape, window, strides, padding):
    """Output (height, width) of windows slid over a (C, H, W) example, floor-rounded as ONNX and fw both do."""
    if len(shape) != 3:
        raise w.fail(i, node, f"gets a tensor of shape (batch, {', '.join(map(str, shape))}); it needs (batch, channels, height, width)")
    if any(v != 1 for v in attributes(node, w.path).get("dilations", [1, 1])):
        raise w.fail(i, node, "has dilations; fw's layers have none")
    out = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(shape[1:], padding, window, strides)]
    if min(out) < 1:
        raise w.fail(i, node, f"its window {window} is larger than its input {shape}, so it has no output")
    return tuple(out)


def _gemm(w, i, node, shape):
    a = w.attrs(i, node, {"transA": (0,)})
    B = w.weight(i, node, 1)
    if B.ndim != 2:
        raise w.fail(i, node, f"its B has shape {B.shape}; a dense layer's weights are a matrix")
    W = B.T if a.get("transB", 0) else B  # PyTorch's Linear keeps (outputs, inputs) and sets transB
    C = w.weight(i, node, 2, required=False)
    if a.get("alpha", 1.0) != 1.0:
        W = W * np.float32(a["alpha"])
    if C is not None and a.get("beta", 1.0) != 1.0:
        C = C * np.float32(a["beta"])
    return w.dense(i, node, shape, W, C), node


def _matmul(w, i, node, shape):
    """MatMul, and the Add of a bias after it when there is one (Keras and the dynamo exporter write these)."""
    W, y = w.weight(i, node, 1), node.output[0]
    bias, last = None, node
    readers = w.users[y]
    if len(readers) == 1 and y != w.graph.output[0].name:
        j = readers[0]
        add = w.nodes[j]
        if add.op_type == "Add" and add.domain in ("", "ai.onnx") and len(add.input) == 2 and add.input[0] != add.input[1]:
            bias = w.weight(j, add, 1 if add.input[0] == y else 0)
            w.folded.add(j)
            last = add
    return w.dense(i, node, shape, W, bias), last


def _conv(w, i, node, shape):
    a = w.attrs(i, node, {"group": (1,), "auto_pad": ("NOTSET", "VALID")})
    W, b = w.weight(i, node, 1), w.weight(i, node, 2, required=False)
    if W.ndim != 4 or len(shape) != 3 or W.shape[1] != shape[0]:
        raise w.fail(i, node, f"its weights have shape {W.shape}, which does not fit its input (batch, {', '.join(map(str, shape))})")
    filters, kernel = W.shape[0], (W.shape[2], W.shape[3])
    if tuple(a.get("kernel_shape", kernel)) != kernel:
        raise w.fail(i, node, f"kernel_shape {a['kernel_shape']} differs from its weights' {kernel}")
    pads = a.get("pads", [0, 0, 0, 0])
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise w.fail(i, node, f"pads={pads}: fw's conv2d pads each side alike (top = bottom, left = right)")
    strides = _pair(w, i, node, "strides", a.get("strides", [1, 1]), 1)
    padding = _pair(w, i, node, "pads", pads[:2], 0)
    out = _windows(w, i, node, shape, kernel, strides, padding)
    if b is not None and b.shape != (filters,):
        raise w.fail(i, node, f"its bias has shape {b.shape}, not ({filters},)")
    layer = {"name": "conv2d", "filters": int(filters), "kernel_size": _compact(kernel)}
    layer |= {"stride": _compact(strides)} if strides != (1, 1) else {}
    layer |= {"padding": _compact(padding)} if padding != (0, 0) else {}
    w.add(i, node, layer, W=W, b=np.zeros(filters, np.float32) if b is None else b)
    return (filters, *out), node


def _pool(name):
    def step(w, i, node, shape):
        a = w.attrs(i, node, {"ceil_mode": (0,), "auto_pad": ("NOTSET", "VALID"), "storage_order": (0,)})
        if "kernel_shape" not in a:
            raise w.fail(i, node, "has no kernel_shape")
        kernel = _pair(w, i, node, "kernel_shape", a["kernel_shape"], 1)
        if any(a.get("pads", [])):
            raise w.fail(i, node, f"pads={a['pads']}; fw's pooling layers do not pad")
        strides = _pair(w, i, node, "strides", a.get("strides", [1, 1]), 1)  # ONNX's default stride is 1, fw's the window
        out = _windows(w, i, node, shape, kernel, strides, (0, 0))
        stride = {"stride": _compact(strides)} if strides != kernel else {}  # fw's default stride is the window
        w.add(i, node, {"name": name, "pool_size": _compact(kernel)} | stride)
        return (shape[0], *out), node

    return step


def _activation(name):
    def step(w, i, node, shape):
        w.add(i, node, name)
        return shape, node

    return step


def _softmax(w, i, node, shape):
    axis = attributes(node, w.path).get("axis", -1 if w.opset >= 13 else 1)  # before 13: axis 1, rows flattened
    if len(shape) != 1 or axis not in (1, -1):
        raise w.fail(i, node, f"takes softmax over axis {axis} of a (batch, {', '.join(map(str, shape))}) tensor; fw's softmax takes it over each row of (batch, classes)")
    w.add(i, node, "softmax")
    return shape, node


def _to_flat(w, i, node, shape):
    if len(shape) > 1:
        w.add(i, node, "flatten")
    return (math.prod(shape),), node


def _flatten(w, i, node, shape):
    axis = attributes(node, w.path).get("axis", 1)
    if axis + (len(shape) + 1 if axis < 0 else 0) != 1:
        raise w.fail(i, node, f"axis={axis} keeps more than the batch axis; fw's flatten gives (batch, features)")
    return _to_flat(w, i, node, shape)


def _reshape(w, i, node, shape):
    """A Reshape to (batch, features): its target a constant, or the Shape/Gather/Concat chain exporters write."""
    target = w.values.ints(node.input[1], i, node) if len(node.input) > 1 else []
    batch, n = w.values.batch, math.prod(shape)
    keeps_batch = bool(target) and (target[0] is BATCH or target[0] == -1 or (target[0] == 0 and not attributes(node, w.path).get("allowzero")) or (isinstance(batch, int) and target[0] == batch))
    if len(target) == 2 and keeps_batch and (target[1] == n or (target[1] == -1 and target[0] != -1)):
        return _to_flat(w, i, node, shape)
    shown = clip(", ".join(map(str, target)), 80)
    raise w.fail(i, node, f"reshapes (batch, {', '.join(map(str, shape))}) to ({shown}); fw reads only a Reshape to (batch, features), a flatten")


def _batch_norm(w, i, node, shape):
    a = w.attrs(i, node, {"training_mode": (0,), "spatial": (1,)})
    if len(shape) not in (1, 3):
        raise w.fail(i, node, f"gets a tensor of shape (batch, {', '.join(map(str, shape))}); fw's batch_norm takes (batch, features) or images")
    stats = [w.weight(i, node, k) for k in (1, 2, 3, 4)]
    if any(s.shape != (shape[0],) for s in stats):
        raise w.fail(i, node, f"its statistics have shapes {[s.shape for s in stats]}, not ({shape[0]},) each")
    if (stats[3] < 0).any():
        raise w.fail(i, node, "its running variance has negative values; the file is damaged")
    eps, momentum = (float(f"{a.get(k, d):.7g}") for k, d in (("epsilon", 1e-5), ("momentum", 0.9)))  # float32, as written
    if eps <= 0 or not 0 <= momentum < 1:
        raise w.fail(i, node, f"epsilon={eps}, momentum={momentum}; fw's batch_norm needs epsilon > 0 and 0 <= momentum < 1")
    layer = {"name": "batch_norm"} | ({"momentum": momentum} if momentum != 0.9 else {}) | ({"eps": eps} if eps != 1e-5 else {})
    gamma, beta, mean, var = stats
    w.add(i, node, layer if len(layer) > 1 else "batch_norm", gamma=gamma, beta=beta, running_mean=mean, running_var=var)
    return shape, node


def _dropout(w, i, node, shape):
    """The identity at inference, kept as a dropout layer with its rate (so the config can be trained on)."""
    rate = attributes(node, w.path).get("ratio", 0.5)  # an attribute before opset 12
    ratio = w.weight(i, node, 1, required=False)
    if ratio is not None:
        if ratio.size != 1:
            raise w.fail(i, node, f"its ratio has shape {ratio.shape}; a rate is one number")
        rate = float(ratio.reshape(-1)[0])
    if len(node.input) > 2 and node.input[2]:
        mode = w.values.get(node.input[2], i, node)
        if mode.size != 1 or bool(mode.reshape(-1)[0]):
            raise w.fail(i, node, "has training_mode on, so it drops values at inference; fw imports models for inference")
    if not 0 <= rate < 1:
        raise w.fail(i, node, f"ratio {rate}; a dropout rate is at least 0 and below 1")
    w.add(i, node, {"name": "dropout", "rate": float(f"{rate:.7g}")})
    return shape, node


STEPS = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Conv": _conv,
    "MaxPool": _pool("max_pool2d"),
    "AveragePool": _pool("avg_pool2d"),
    "Relu": _activation("relu"),
    "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"),
    "Softmax": _softmax,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "BatchNormalization": _batch_norm,
    "Dropout": _dropout,
    "Identity": lambda w, i, node, shape: (shape, node),
}
