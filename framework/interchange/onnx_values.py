"""The constant values in an untrusted ONNX graph: tensors, attributes, and the little arithmetic of shapes.

Nothing here runs an operator of the model. A tensor becomes a numpy array only
after its declared shape has been checked against the bytes it holds, and one
kept in an external file is refused, so no other file is ever opened. The few
nodes that exporters use to work out a flatten's target shape (Shape, Gather,
Unsqueeze, Concat, Slice, ...) are evaluated here on plain integers, with the
batch size as a symbol, ``BATCH``.
"""

import math

import numpy as np

from ..errors import FwError
from ..safeio.untrusted import clip

#: ONNX TensorProto data types fw reads: float ones for weights, integer ones for shapes.
DTYPES = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    4: np.uint16,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
    12: np.uint32,
    13: np.uint64,
}
#: Where a tensor not stored as raw bytes keeps its values, by data type (float16 as its bits in int32_data).
_FIELDS = {1: "float_data", 7: "int64_data", 11: "double_data", 12: "uint64_data", 13: "uint64_data"}
MAX_RANK = 8
MAX_DEPTH = 64  # nodes in one shape computation
MAX_SHAPE_VALUES = 4096  # values an evaluated arithmetic node may make: shapes are short
#: Bytes that nodes may work out from constants, in all, each node's output counted before it is made:
#: as much as the largest model file fw reads holds (onnx_import.MAX_BYTES), so weights Transposed or
#: Cast by a node still come in, but not a (N, 1) x (1, N) Mul, nor a Cast chain, that makes gigabytes.
MAX_FOLDED = 256 << 20
_OBJECT_BYTES = 64  # an element of a symbolic (object) array: a pointer and, at worst, a Python int


class _Batch:
    """The batch size in a shape computation: known only when the model runs."""

    def __repr__(self):
        return "batch"


BATCH = _Batch()


def where(i, node) -> str:
    """``node 7 '/conv1/Conv' (Conv)``: how an error names a node (its position in the graph's list)."""
    name = f" {clip(repr(node.name), 60)}" if node.name else ""
    return f"node {i}{name} ({clip(node.op_type, 40)})"


def to_array(t, source):
    """The numpy array of TensorProto ``t``, once its shape and the bytes it holds agree; else a FwError."""
    what = f"{source}: tensor {clip(repr(t.name), 60)}"
    if t.data_location == 1 or len(t.external_data):
        raise FwError(
            f"{what} keeps its data in an external file; fw reads only models that hold their weights "
            "(save it with onnx.save(model, path, save_as_external_data=False), "
            "or export from PyTorch with external_data=False)"
        )
    if t.HasField("segment"):
        raise FwError(f"{what} is split into segments; fw reads only whole tensors")
    dtype = DTYPES.get(t.data_type)
    if dtype is None:
        raise FwError(
            f"{what} has ONNX data type {t.data_type}, which fw does not read; "
            "weights must be float16, float32 or float64"
        )
    dims = tuple(t.dims)
    if len(dims) > MAX_RANK or any(d < 0 for d in dims):
        raise FwError(f"{what} has an impossible shape {clip(str(dims), 60)}; the file is damaged or forged")
    count, dtype = math.prod(dims), np.dtype(dtype)
    if t.raw_data:
        if len(t.raw_data) != count * dtype.itemsize:
            raise FwError(
                f"{what} declares shape {dims} of {dtype} ({count * dtype.itemsize:,} bytes) but holds "
                f"{len(t.raw_data):,} bytes; the file is damaged or forged"
            )
        return np.frombuffer(t.raw_data, dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    values = getattr(t, _FIELDS.get(t.data_type, "int32_data"))
    if len(values) != count:
        raise FwError(
            f"{what} declares shape {dims} ({count:,} values) but holds {len(values):,}; the file is damaged or forged"
        )
    if dtype == np.float16:
        return np.array(values, np.uint16).view(np.float16).reshape(dims)
    return np.array(values, dtype).reshape(dims)


def attributes(node, source) -> dict:
    """A node's plain attributes (ints, floats, strings and lists of them) by name; tensors as arrays."""
    got = {}
    for a in node.attribute:
        kind = a.type
        if kind == 1:
            got[a.name] = a.f
        elif kind == 2:
            got[a.name] = a.i
        elif kind == 3:
            got[a.name] = a.s.decode("utf-8", "replace")
        elif kind == 4:
            got[a.name] = to_array(a.t, source)
        elif kind in (6, 7):
            values = a.floats if kind == 6 else a.ints
            if len(values) > MAX_SHAPE_VALUES:  # a Python object each: 8 to 36 bytes for every 1 of the file
                raise FwError(
                    f"{source}: node {clip(repr(node.name), 60)} ({clip(node.op_type, 40)}): "
                    f"its attribute {clip(repr(a.name), 40)} "
                    f"holds {len(values):,} values; "
                    f"fw reads lists of at most {MAX_SHAPE_VALUES:,} there (sizes, axes, a shape)"
                )
            got[a.name] = list(values)
    return got


class Values:
    """The constants of a graph, and the values of the nodes that only compute with them.

    ``data_shapes`` maps each tensor on the network's path to its shape (one
    example), which a Shape node reads with ``BATCH`` in front.
    """

    def __init__(self, graph, source, opset, data_shapes, batch):
        self.source, self.opset, self.data_shapes, self.batch = source, opset, data_shapes, batch
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {out: (i, node) for i, node in enumerate(graph.node) for out in node.output if out}
        self._known = {}
        self.folded = 0  # bytes worked out so far, against MAX_FOLDED

    def is_constant(self, name) -> bool:
        return name in self.initializers or name in self._known

    def get(self, name, i, node, depth=0):
        """The value of tensor ``name``, an input of ``node`` (number ``i``): a constant, or a shape worked out."""
        if name in self._known:
            return self._known[name]
        if name in self.initializers:
            value = to_array(self.initializers[name], self.source)
        elif name in self.data_shapes:
            raise FwError(
                f"{self.source}: {where(i, node)} takes the network's tensor {clip(repr(name), 60)} as a second input; "
                "fw networks are sequential, one layer after another, so fw cannot import this model"
            )
        elif name not in self.producers:
            raise FwError(
                f"{self.source}: {where(i, node)} reads {clip(repr(name), 60)}, "
                "which no node or initialiser makes; the file is damaged"
            )
        else:
            if depth >= MAX_DEPTH:
                raise FwError(
                    f"{self.source}: {where(i, node)}: its input is worked out by "
                    f"more than {MAX_DEPTH} nodes in a row; fw does not follow that far"
                )
            value = self._evaluate(*self.producers[name], depth + 1)
        self._known[name] = value
        return value

    def _evaluate(self, i, node, depth):
        op = node.op_type if node.domain in ("", "ai.onnx") else None
        rule = _RULES.get(op, False)
        if rule is False:
            raise FwError(
                f"{self.source}: {where(i, node)} computes an input of the network's path from constants, and fw "
                f"works out only {', '.join(sorted(_RULES))} there"
            )
        a = attributes(node, self.source)
        inputs = [] if op == "Shape" else [self.get(n, i, node, depth) if n else None for n in node.input]
        try:
            if op != "Shape":
                self._budget(i, node, *_output_size(op, inputs, a))
            value = self._shape_of(node.input[0], a, i, node, depth) if op == "Shape" else rule(inputs, a)
        except (
            ValueError,
            IndexError,
            TypeError,
            KeyError,
        ) as e:  # a malformed node: its inputs or attributes do not fit
            raise FwError(
                f"{self.source}: {where(i, node)} cannot be worked out on its constant inputs ({clip(str(e), 120)})"
            ) from e
        value = np.asarray(value)
        if value.size > MAX_SHAPE_VALUES and op in ("Mul", "Unsqueeze"):
            raise FwError(f"{self.source}: {where(i, node)} makes {value.size:,} values; a shape has a few")
        return value

    def _budget(self, i, node, count, dtype):
        """Count the ``count`` values of ``dtype`` the node is about to make against MAX_FOLDED, or refuse it."""
        nbytes = count * (_OBJECT_BYTES if dtype.kind == "O" else dtype.itemsize)
        if self.folded + nbytes > MAX_FOLDED:
            made = f" (after {self.folded:,} bytes worked out for earlier nodes)" if self.folded else ""
            raise FwError(
                f"{self.source}: {where(i, node)} would make {count:,} "
                f"values ({nbytes:,} bytes) from its constant inputs{made}; "
                f"fw works out at most {MAX_FOLDED >> 20} MiB from a "
                "model's constants (what the largest model it reads "
                "holds), so the file is damaged or forged"
            )
        self.folded += nbytes

    def _shape_of(self, name, a, i, node, depth):
        """What Shape gives: ``[BATCH, *shape]`` for a tensor of the network's path, else a constant's shape."""
        if name in self.data_shapes:
            dims = np.array([self.batch, *self.data_shapes[name]], dtype=object)
        else:
            dims = np.array(self.get(name, i, node, depth).shape, np.int64)
        return dims[a.get("start", 0) : a.get("end", len(dims))]

    def ints(self, name, i, node):
        """An input that must hold whole numbers (axes, a target shape), as a list."""
        value = self.get(name, i, node)
        if value.size > MAX_SHAPE_VALUES:  # before tolist, which makes an object of each
            raise FwError(
                f"{self.source}: {where(i, node)}: input {clip(repr(name), 60)} holds {value.size:,} values; "
                "a shape has a few"
            )
        if value.dtype.kind not in "iuO":
            raise FwError(
                f"{self.source}: {where(i, node)}: input {clip(repr(name), 60)} "
                f"must hold whole numbers, not {value.dtype}"
            )
        return value.reshape(-1).tolist()


def _output_size(op, inputs, a):
    """``(values, dtype)`` of what ``op`` makes of ``inputs``, from their shapes alone: nothing is allocated.

    An op that may return a view (Reshape, Transpose, ...) is counted as a copy; Identity makes nothing.
    """
    if op == "Constant":
        value = _constant(inputs, a)
        return value.size, value.dtype
    x = inputs[0]
    if op == "Identity" or x is None:
        return 0, np.dtype(np.uint8)
    if op == "Mul":
        return math.prod(np.broadcast_shapes(x.shape, np.shape(inputs[1]))), np.result_type(x, inputs[1])
    if op == "Concat":
        return sum(v.size for v in inputs if v is not None), np.result_type(*(v.dtype for v in inputs if v is not None))
    if op == "Gather":
        axis = a.get("axis", 0)
        axis += x.ndim if axis < 0 else 0
        if not 0 <= axis < x.ndim:
            raise IndexError(f"axis {a.get('axis', 0)} is out of range for a tensor of rank {x.ndim}")
        return math.prod(x.shape[:axis]) * np.size(inputs[1]) * math.prod(x.shape[axis + 1 :]), x.dtype
    if op == "Cast" and x.dtype != object:
        return x.size, np.dtype(DTYPES.get(a.get("to"), x.dtype))
    return x.size, x.dtype


def _axes(inputs, a):
    """Unsqueeze's and Squeeze's axes: an attribute before opset 13, an input from 13 on."""
    axes = inputs[1] if len(inputs) > 1 and inputs[1] is not None else a.get("axes")
    return [int(v) for v in np.asarray(axes).reshape(-1)] if axes is not None else None


def _unsqueeze(inputs, a):
    x, axes = inputs[0], _axes(inputs, a)
    rank = x.ndim + len(axes)
    for axis in sorted(v + rank if v < 0 else v for v in axes):
        x = np.expand_dims(x, axis)
    return x


def _squeeze(inputs, a):
    axes = _axes(inputs, a)
    return np.squeeze(inputs[0], axis=tuple(axes) if axes is not None else None)


def _slice(inputs, a):
    if len(inputs) > 1:  # opset 10 on: starts, ends, axes, steps are inputs
        starts, ends = (np.asarray(v).reshape(-1).tolist() for v in inputs[1:3])
        axes = np.asarray(inputs[3]).reshape(-1).tolist() if len(inputs) > 3 and inputs[3] is not None else None
        steps = np.asarray(inputs[4]).reshape(-1).tolist() if len(inputs) > 4 and inputs[4] is not None else None
    else:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    x = inputs[0]
    index = [slice(None)] * x.ndim
    for k, (s, e) in enumerate(zip(starts, ends)):
        axis = axes[k] if axes else k
        index[axis] = slice(int(s), int(e), int(steps[k]) if steps else 1)
    return x[tuple(index)]


def _reshape(inputs, a):
    x, target = inputs[0], [int(v) for v in np.asarray(inputs[1]).reshape(-1)]
    target = [x.shape[k] if v == 0 and not a.get("allowzero") else v for k, v in enumerate(target)]
    return x.reshape(target)


def _cast(inputs, a):
    x, to = inputs[0], DTYPES.get(a.get("to"))
    return x if x.dtype == object or to is None else x.astype(to)


def _constant(inputs, a):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            v = a[key]
            return np.asarray(v, np.float32 if "float" in key else np.int64) if not isinstance(v, np.ndarray) else v
    raise ValueError("a Constant with no numeric value")


def _concat(inputs, a):
    symbolic = any(x.dtype == object for x in inputs)
    return np.concatenate([x.astype(object) if symbolic else x for x in inputs], axis=a.get("axis", 0))


_RULES = {
    "Constant": _constant,
    "Identity": lambda inputs, a: inputs[0],
    "Cast": _cast,
    "Shape": None,  # Values._shape_of: it reads a tensor's shape, not its values
    "Gather": lambda inputs, a: np.take(inputs[0], np.asarray(inputs[1], np.int64), axis=a.get("axis", 0)),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Slice": _slice,
    "Transpose": lambda inputs, a: np.transpose(inputs[0], a.get("perm")),
    "Reshape": _reshape,
    "Mul": lambda inputs, a: np.multiply(inputs[0], inputs[1]),
}
