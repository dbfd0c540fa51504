"""An ONNX model into fw's layers: the sequential graphs that PyTorch's and Keras's exporters write.

The graph is walked from its one input to its one output. Each node on that
path becomes a layer (Gemm: dense, Conv: conv2d, ...) or is folded into one
(MatMul + Add: dense; Identity: nothing); the nodes that only work out a
flatten's target shape are evaluated on integers (``onnx_values``). Nothing of
the model runs: no operator, no custom op, and no file but the model is opened.
A tensor becomes an array only after its declared size is checked against the
bytes it holds.
"""

import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FwError
from ..safeio.files import open_input
from ..safeio.untrusted import clip
from . import optional_import
from .onnx_steps import STEPS
from .onnx_values import BATCH, Values, attributes, where
from .onnx_wire import parsed_size

MAX_BYTES = 256 << 20  # as for a downloaded weights file
MAX_VALUES = 1 << 28  # per example, in any tensor on the path
MAX_PARSED = 2 * MAX_BYTES  # what protobuf may take to parse a model: a 256 MiB one of weights takes 256 MiB
MAX_ENTRIES = 200_000  # in the encoding: nodes, tensors, names, sizes (a network of 1,000 nodes has about 50,000)
MAX_NODES = 1000  # a sequential network has a few dozen; 2,000 dense layers are more than a config can hold
MAX_NODE_ENTRIES = 64  # inputs, outputs and attributes of one node: fw's ops have a few, a Concat of a shape's pieces too
#: The ops fw reads, for the message about any other.
READS = "Gemm, MatMul+Add, Conv, MaxPool, AveragePool, Relu, Sigmoid, Tanh, Softmax, Flatten, Reshape, BatchNormalization, Dropout, Identity"


@dataclass
class Imported:
    """What a model becomes: ``model.layers`` entries, their arrays (``0.W``, ...), and where each came from."""

    layers: list = field(default_factory=list)
    arrays: dict = field(default_factory=dict)
    sources: list = field(default_factory=list)  # per layer: the node it came from, as errors name it
    input_shape: tuple = ()  # one example, from the graph's input
    producer: str = ""
    opset: int = 0
    dataset: dict = field(default_factory=dict)  # what an fw export's metadata says of its dataset


def read(path) -> Imported:
    """The layers and weights of the ONNX model at ``path``; anything fw cannot express is a one-line FwError."""
    onnx = optional_import("onnx", "onnx", "fw import-onnx")
    path = Path(path)
    model = _load(onnx, path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise FwError(f"{path}: the model declares no version of the standard ONNX operators (opset_import); the file is damaged")
    imported = _Walker(model.graph, path, opset).walk()
    imported.producer = clip(f"{model.producer_name} {model.producer_version}".strip(), 60) or "an unnamed exporter"
    imported.opset = opset
    imported.dataset = _fw_dataset({p.key: p.value for p in model.metadata_props})
    return imported


def _load(onnx, path):
    """The ModelProto, parsed from at most ``MAX_BYTES`` of a regular file (protobuf only parses: no code runs)."""
    f = open_input(path, missing=f"{path}: model file not found; give the path of an .onnx file",
                   needs="a model is read only from a regular file")  # fmt: skip
    with f:  # read as much as the file holds: f.read(MAX_BYTES + 1) would reserve 256 MiB for any model
        data = f.read(min(os.fstat(f.fileno()).st_size, MAX_BYTES) + 1)
    if len(data) > MAX_BYTES:
        raise FwError(f"{path}: larger than {MAX_BYTES >> 20} MiB; fw imports models of its own size (its networks hold a few MB)")
    entries, size = parsed_size(data, onnx.ModelProto.DESCRIPTOR, MAX_PARSED, MAX_ENTRIES)
    if entries > MAX_ENTRIES:
        raise FwError(f"{path}: its encoding holds more than {MAX_ENTRIES:,} entries (nodes, tensors, names, sizes); a network fw imports has far fewer, so fw does not parse it")
    if size > MAX_PARSED:
        raise FwError(
            f"{path}: parsing it would take more than {MAX_PARSED >> 20} MiB (counted from its encoding: values stored one by one, "
            "not as raw bytes); fw does not parse it. Save the model with its tensors as raw_data (onnx.numpy_helper.from_array does)"
        )
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf's DecodeError, and whatever a damaged file makes it raise
        raise FwError(f"{path}: not an ONNX model (protobuf cannot parse it: {clip(str(e), 80)})") from e
    if not model.graph.node:
        raise FwError(f"{path}: not an ONNX model, or one with no nodes: its graph is empty")
    _check_lengths(model, path)
    return model


def _check_lengths(model, path):
    """Refuse lists far longer than a network fw imports has, before the walk goes over them (a chain of a
    million Relus took 197 s to end in omegaconf's limit on a config's size)."""
    g = model.graph
    lists = [("nodes", g.node, MAX_NODES), ("initialisers", g.initializer, 4 * MAX_NODES), ("inputs", g.input, 4 * MAX_NODES + 1),
             ("outputs", g.output, MAX_NODE_ENTRIES), ("metadata entries", model.metadata_props, MAX_NODES), ("opsets", model.opset_import, MAX_NODE_ENTRIES)]  # fmt: skip
    for what, entries, most in lists:
        if len(entries) > most:
            raise FwError(f"{path}: its graph has {len(entries):,} {what}; fw imports sequential networks, which have at most {most:,} (its own have a few dozen)")
    for i, node in enumerate(g.node):
        for what, entries in (("inputs", node.input), ("outputs", node.output), ("attributes", node.attribute)):
            if len(entries) > MAX_NODE_ENTRIES:
                raise FwError(f"{path}: {where(i, node)} has {len(entries):,} {what}; the ops fw reads have a few, at most {MAX_NODE_ENTRIES}")


def _fw_dataset(metadata) -> dict:
    """``dataset.name`` and ``normalize`` from an fw export's config, read as plain YAML data (never resolved)."""
    text = metadata.get("config")
    if not text or "fw_version" not in metadata or len(text) > 1 << 20:
        return {}
    import yaml

    try:
        d = (yaml.safe_load(text) or {}).get("dataset") or {}
    except Exception:  # noqa: BLE001 - it is only a hint; an odd one is ignored
        return {}
    name, normalize = d.get("name"), d.get("normalize")
    out = {"name": name} if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name) else {}
    return out | ({"normalize": normalize} if isinstance(normalize, bool) else {})


class _Walker:
    """Follows the network's one path through the graph, turning nodes into layers."""

    def __init__(self, graph, path, opset):
        self.graph, self.path, self.opset = graph, path, opset
        self.nodes = list(graph.node)
        self.users = defaultdict(list)  # tensor -> the nodes that read it, but Shape (which reads no values)
        for i, node in enumerate(self.nodes):
            for name in dict.fromkeys(node.input):
                if name and node.op_type != "Shape":
                    self.users[name].append(i)
        self.input, shape, batch = self._input()
        self.shapes = {self.input: shape}
        self.values = Values(graph, path, opset, self.shapes, batch)
        self.out = Imported(input_shape=shape)
        self.folded = set()  # nodes taken into a layer already (the Add of MatMul + Add)
        self.walked = set()

    def _input(self):
        """The graph's one real input (not an initialiser listed as an input): its name, shape and batch size."""
        g, path = self.graph, self.path
        constants = {t.name for t in g.initializer}
        inputs = [v for v in g.input if v.name not in constants]
        if len(inputs) != 1 or len(g.output) != 1:
            names = ", ".join(clip(repr(v.name), 40) for v in inputs[:5])
            raise FwError(
                f"{path}: the graph has {len(inputs)} input(s) ({names}) and {len(g.output)} output(s); "
                "fw networks are sequential, with one input (the images) and one output"
            )
        v = inputs[0]
        t = v.type.tensor_type
        if not v.type.HasField("tensor_type") or t.elem_type != 1:
            raise FwError(f"{path}: the input {clip(repr(v.name), 40)} is not a float32 tensor; fw networks take float32 images")
        dims = list(t.shape.dim)
        fixed = [d.dim_value if d.HasField("dim_value") else 0 for d in dims[1:]]
        if not 2 <= len(dims) <= 4 or min(fixed) < 1 or math.prod(fixed) > MAX_VALUES:
            shown = ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
            raise FwError(
                f"{path}: the input {clip(repr(v.name), 40)} has shape ({clip(shown, 80)}); fw reads (batch, features) "
                "or (batch, channels, height, width) with every size but the batch fixed"
            )
        batch = dims[0].dim_value if dims[0].HasField("dim_value") else BATCH
        return v.name, tuple(fixed), batch

    def walk(self) -> Imported:
        x, output = self.input, self.graph.output[0].name
        while True:
            users = [i for i in self.users[x] if i not in self.folded]
            if len(users) > 1 or (users and x == output):
                readers = " and ".join(where(i, self.nodes[i]) for i in users[:2])
                raise FwError(
                    f"{self.path}: the graph branches: tensor {clip(repr(x), 60)} goes to {readers}"
                    f"{' as well as to the output' if x == output else ''}; fw networks are sequential, one layer "
                    "after another from the input to the output, so fw cannot import this model"
                )
            if not users:
                break
            i = users[0]
            node = self.nodes[i]
            if i in self.folded or i in self.walked:
                raise FwError(f"{self.path}: {where(i, node)} comes round again: the graph has a cycle, which ONNX forbids; the file is damaged")
            self.walked.add(i)
            step = STEPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            if step is None:
                domain = f" of domain {clip(repr(node.domain), 40)}" if node.domain not in ("", "ai.onnx") else ""
                raise FwError(f"{self.path}: {where(i, node)}{domain}: fw has no layer for this op; fw reads {READS}")
            if node.input[0] != x:
                raise FwError(f"{self.path}: {where(i, node)} takes the network's tensor as input {list(node.input).index(x) + 1}, not first; fw reads only the order exporters write")
            shape, last = step(self, i, node, self.shapes[x])
            x = self._advance(i, node, shape, last)
        if x != output:
            raise FwError(f"{self.path}: the network's path ends at tensor {clip(repr(x), 60)}, which is not the graph's output; the file is damaged")
        return self.out

    def _advance(self, i, node, shape, last):
        """The tensor the path goes on from (``last``'s first output), of ``shape``; a node's
        other outputs (Dropout's mask, MaxPool's indices, ...) must go nowhere."""
        for extra in node.output[1:]:
            if extra and (self.users[extra] or extra == self.graph.output[0].name):
                raise FwError(f"{self.path}: {where(i, node)}: its output {clip(repr(extra), 40)} is used, which only training uses; fw imports models for inference")
        x = last.output[0]
        if math.prod(shape) > MAX_VALUES:
            raise FwError(f"{self.path}: {where(i, node)} makes {math.prod(shape):,} values per example; fw refuses more than {MAX_VALUES:,}")
        self.shapes[x] = tuple(int(s) for s in shape)
        return x

    # -- helpers for the steps ---------------------------------------------------------------

    def fail(self, i, node, problem):
        return FwError(f"{self.path}: {where(i, node)}: {problem}")

    def weight(self, i, node, k, required=True):
        """Input ``k`` of the node, a float constant (a weight); None when optional and absent."""
        name = node.input[k] if k < len(node.input) else ""
        if not name:
            if required:
                raise self.fail(i, node, f"has no input {k + 1}, which it needs")
            return None
        a = self.values.get(name, i, node)
        if a.dtype.kind != "f":
            raise self.fail(i, node, f"its input {clip(repr(name), 40)} holds {a.dtype}; weights must be floating point")
        return a

    def attrs(self, i, node, allowed):
        """The node's attributes, refusing values fw cannot honour: ``allowed`` maps a name to its only value."""
        a = attributes(node, self.path)
        for key, ok in allowed.items():
            if key in a and a[key] not in ok:
                raise self.fail(i, node, f"{key}={clip(repr(a[key]), 40)}; fw's layer supports {key} {' or '.join(map(repr, ok))} only")
        return a

    def add(self, i, node, layer, **arrays):
        index = len(self.out.layers)
        self.out.layers.append(layer)
        self.out.sources.append(where(i, node))
        for key, a in arrays.items():
            self.out.arrays[f"{index}.{key}"] = np.ascontiguousarray(a, np.float32)

    def flat(self, i, node, shape):
        if len(shape) != 1:
            raise self.fail(i, node, f"gets a tensor of shape (batch, {', '.join(map(str, shape))}); fw reads it only on (batch, features)")

    def dense(self, i, node, shape, W, b):
        self.flat(i, node, shape)
        if W.ndim != 2 or W.shape[0] != shape[0]:
            raise self.fail(i, node, f"its weights have shape {W.shape}, which does not take the {shape[0]} values per example it gets")
        units = W.shape[1]
        b = np.zeros(units, W.dtype) if b is None else b
        if b.size not in (1, units) or b.ndim > 2:
            raise self.fail(i, node, f"its bias has shape {b.shape}; a dense layer of {units} units needs ({units},)")
        self.add(i, node, {"name": "dense", "units": int(units)}, W=W, b=np.broadcast_to(b.reshape(-1), (units,)))
        return (units,)

