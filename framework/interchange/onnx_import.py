"""An ONNX model into fw's layers: the sequential graphs that PyTorch's, Keras's and skl2onnx's exporters write.

The graph is walked from its one input to its output (of a classifier's label
and probabilities, the probabilities: the label's branch is dropped). Each node
on that path is read by the layer that declares its op type (``Layer.onnx_ops``
and ``Layer.from_onnx``: Gemm by dense, Conv by conv2d, LeakyRelu by an
installed plugin's leaky_relu, ...), which may fold the node after it into
itself (MatMul + Add: dense); an Identity, or a Cast to float, is nothing. The
nodes that only work out a flatten's target shape are evaluated on integers
(``onnx_values``). Nothing of the model runs: no operator, no custom op, and no
file but the model is opened. A tensor becomes an array only after its declared
size is checked against the bytes it holds.

A table model of fw's own export starts with its preparation (one input per
column, or one ``input`` of raw numbers; blanks filled, numbers standardised,
words one-hot): the metadata's ``columns`` say so, and the preparation reads
itself back from those nodes (``TablePreparation.from_onnx_table``, through
``OnnxTable``), for the dataset to hold; the walk starts where it ends.
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
from ..safeio.untrusted import clip, describe_exception, describe_object, type_name
from . import optional_import
from .onnx_values import BATCH, Values, attributes, to_array, where
from .onnx_wire import parsed_size

MAX_BYTES = 256 << 20  # as for a downloaded weights file
MAX_VALUES = 1 << 28  # per example, in any tensor on the path
MAX_PARSED = 2 * MAX_BYTES  # what protobuf may take to parse a model: a 256 MiB one of weights takes 256 MiB
MAX_ENTRIES = 200_000  # in the encoding: nodes, tensors, names, sizes (a network of 1,000 nodes has about 50,000)
MAX_NODES = 1000  # a sequential network has a few dozen; 2,000 dense layers are more than a config can hold
MAX_NODE_ENTRIES = (
    64  # inputs, outputs and attributes of one node: fw's ops have a few, a Concat of a shape's pieces too
)
#: The domains of the standard ops, which layers' ``onnx_ops`` name (a custom domain's op is never read).
STANDARD = ("", "ai.onnx", "ai.onnx.ml")
#: Ops the walker reads itself: they change nothing (a Cast only when it casts to float, ONNX's type 1).
NOTHING = ("Identity", "Cast")
#: Ops whose inputs may come in either order: the network's tensor need not be the first.
COMMUTATIVE = ("Add", "Mul")
#: A table preparation's category words, per column (skl2onnx's and fw's; an id column has more).
MAX_CATEGORIES = 100_000
#: The metadata a table's preparation is named in (``features``, ``columns``), at most.
MAX_METADATA = 16 << 20
#: Ops that the layers of fw's example plugin package read, for the advice when it is not installed.
ELSEWHERE, PACKAGE = {"Tanh": "tanh", "LeakyRelu": "leaky_relu"}, "fw-extra-activations"


@dataclass
class Imported:
    """What a model becomes: ``model.layers`` entries, their arrays (``0.W``, ...), and where each came from."""

    layers: list = field(default_factory=list)
    arrays: dict = field(default_factory=dict)
    sources: list = field(default_factory=list)  # per layer: the node it came from, as errors name it
    input_shape: tuple = ()  # one example, from the graph's input
    output_shape: tuple = ()  # one example's output: (classes,) for a classifier
    producer: str = ""
    opset: int = 0
    dataset: dict = field(default_factory=dict)  # what an fw export's metadata says of its dataset
    prepares: bool = False  # the network's first layer prepares its input (standardises): the dataset must not
    dropped: list = field(default_factory=list)  # the outputs left out, as a message names them (a classifier's label)
    class_labels: list = field(
        default_factory=list
    )  # a classifier's own class labels, in its outputs' order (skl2onnx's)
    notes: list = field(default_factory=list)  # what the command found worth saying about the import
    table: object = (
        None  # a table's preparation, read from the nodes before the network (``TablePreparation.from_onnx_table``)
    )
    class_names: list = field(default_factory=list)  # an fw export's class names (its metadata), for the table's state
    model: str = ""  # the file read, as messages name it


def read(path, registry, make=None) -> Imported:
    """The layers and weights of the ONNX model at ``path``; anything fw cannot express is a one-line FwError.

    ``registry`` (``framework.get_registry()``) has the layers that read the ops, and the dataset whose
    ``preparation_class`` reads a table's preparation back (``from_onnx_table(OnnxTable)``: csv's).
    ``make(cls, name, params)`` makes a layer as the config will, to be built for its output shape
    (default: ``cls(**params)``).
    """
    onnx = optional_import("onnx", "onnx", "fw import-onnx")
    path = Path(path)
    model = _load(onnx, path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise FwError(
            f"{path}: the model declares no version of the standard ONNX operators (opset_import); the file is damaged"
        )
    metadata = {p.key: p.value for p in model.metadata_props}
    dataset = _fw_dataset(metadata)
    table = _table_columns(metadata, path)
    if table is not None:
        cls = registry.entries["datasets"].get(dataset.get("name", ""))
        preparation = getattr(cls, "preparation_class", None)
        if preparation is None:
            raise FwError(
                f"{path}: its metadata names a table's columns, but its dataset {clip(repr(dataset.get('name')), 40)} "
                "is none that prepares a table (csv); the file is damaged or forged"
            )
        table = preparation, table
    make = make or (lambda cls, name, params: cls(**params))
    imported = _Walker(model.graph, path, opset, registry, make, table).walk()
    imported.producer = clip(f"{model.producer_name} {model.producer_version}".strip(), 60) or "an unnamed exporter"
    imported.opset, imported.model = opset, str(path)
    imported.dataset = dataset
    if imported.table is not None:
        imported.class_names = _json(metadata, "class_names", path)
        imported.dataset["normalize"] = imported.table.normalize  # the dataset prepares as the graph did, once
    return imported


def _json(metadata, key, path):
    """Metadata entry ``key`` of an fw export, parsed as JSON; a bad one is a one-line error."""
    import json

    text = metadata.get(key, "")
    try:
        if len(text) > MAX_METADATA:
            raise ValueError(f"longer than {MAX_METADATA >> 20} MiB")
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FwError(
            f"{path}: its metadata {key!r} is not readable JSON ({clip(str(e), 80)}); the file is damaged or forged"
        ) from None


def _table_columns(metadata, path):
    """An fw export's table columns, ``[(name, type)]`` from its metadata, or None for another model."""
    if "fw_version" not in metadata or "columns" not in metadata:
        return None
    columns, features = _json(metadata, "columns", path), _json(metadata, "features", path)
    ok = (
        isinstance(columns, list)
        and 0 < len(columns) <= MAX_ENTRIES
        and all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and c.get("type") in ("numeric", "categorical")
            for c in columns
        )
    )
    if not ok or features != [c["name"] for c in columns]:
        raise FwError(
            f"{path}: its metadata 'columns' is not a list of {{name, type: numeric or categorical}} "
            "of the 'features' in order; the file is damaged or forged"
        )
    return [(c["name"], c["type"]) for c in columns]


def _load(onnx, path):
    """The ModelProto, parsed from at most ``MAX_BYTES`` of a regular file (protobuf only parses: no code runs)."""
    f = open_input(
        path,
        missing=f"{path}: model file not found; give the path of an .onnx file",
        needs="a model is read only from a regular file",
    )
    with f:  # read as much as the file holds: f.read(MAX_BYTES + 1) would reserve 256 MiB for any model
        data = f.read(min(os.fstat(f.fileno()).st_size, MAX_BYTES) + 1)
    if len(data) > MAX_BYTES:
        raise FwError(
            f"{path}: larger than {MAX_BYTES >> 20} MiB; fw imports models of its own size (its networks hold a few MB)"
        )
    entries, size = parsed_size(data, onnx.ModelProto.DESCRIPTOR, MAX_PARSED, MAX_ENTRIES)
    if entries > MAX_ENTRIES:
        raise FwError(
            f"{path}: its encoding holds more than {MAX_ENTRIES:,} entries (nodes, tensors, names, sizes); "
            "a network fw imports has far fewer, so fw does not parse it"
        )
    if size > MAX_PARSED:
        raise FwError(
            f"{path}: parsing it would take more than {MAX_PARSED >> 20} "
            "MiB (counted from its encoding: values stored one by one, "
            "not as raw bytes); fw does not parse it. Save the model with "
            "its tensors as raw_data (onnx.numpy_helper.from_array does)"
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
    lists = [
        ("nodes", g.node, MAX_NODES),
        ("initialisers", g.initializer, 4 * MAX_NODES),
        ("inputs", g.input, 4 * MAX_NODES + 1),
        ("outputs", g.output, MAX_NODE_ENTRIES),
        ("metadata entries", model.metadata_props, MAX_NODES),
        ("opsets", model.opset_import, MAX_NODE_ENTRIES),
    ]
    for what, entries, most in lists:
        if len(entries) > most:
            raise FwError(
                f"{path}: its graph has {len(entries):,} {what}; "
                f"fw imports sequential networks, which have at most {most:,} (its own have a few dozen)"
            )
    for i, node in enumerate(g.node):
        for what, entries in (("inputs", node.input), ("outputs", node.output), ("attributes", node.attribute)):
            if len(entries) > MAX_NODE_ENTRIES:
                raise FwError(
                    f"{path}: {where(i, node)} has {len(entries):,} {what}; "
                    f"the ops fw reads have a few, at most {MAX_NODE_ENTRIES}"
                )


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
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name)):
        return {}
    out = {"name": name} | ({"normalize": normalize} if isinstance(normalize, bool) else {})
    # the dataset's own keys that say which rows it holds: a file's name (fw export keeps no folder, and
    # one named here would be read by fw run), the label column, the hold-out
    for key in ("path", "test_path"):
        v = d.get(key)
        if (
            isinstance(v, str)
            and 0 < len(v) <= 255
            and re.fullmatch(r"(?!~)[^/\\\x00-\x1f]+", v)
            and v not in (".", "..")
        ):
            out[key] = v
    label, fraction, seed = d.get("label"), d.get("test_fraction"), d.get("seed")
    if isinstance(label, str) and 0 < len(label) <= 200 and label.isprintable():
        out["label"] = label
    if isinstance(fraction, float | int) and not isinstance(fraction, bool) and 0 <= fraction < 1:
        out["test_fraction"] = fraction
    if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 1 << 63:
        out["seed"] = seed
    return out


def readers(registry) -> dict:
    """op type -> the layer classes that read it (``onnx_ops``), fw's own before installed plugins'."""
    found = defaultdict(list)
    names = registry.names("layers")
    builtin = {n for n in names if getattr(registry.providers["layers"].get(n), "builtin", False)}
    for name in sorted(names, key=lambda n: (n not in builtin, n)):
        cls = registry.entries["layers"].get(name)
        ops = getattr(cls, "onnx_ops", None) or ()
        for op in (ops,) if isinstance(ops, str) else ops:  # ("Relu") is a string, not a tuple: read it as meant
            if isinstance(op, str):
                found[op].append(cls)
    return dict(found)


class OnnxNode:
    """A node on the network's path, as a layer's ``from_onnx`` reads it (see ``Layer.from_onnx``)."""

    def __init__(self, walker, i, node, input_shape, x):
        self._w, self._i, self._node, self._x = walker, i, node, x
        self.op_type, self.domain, self.input_shape, self.opset = node.op_type, node.domain, input_shape, walker.opset
        self.inputs, self.outputs = list(node.input), list(node.output)  # tensor names
        self.attrs = attributes(node, walker.path)
        self.last = node  # the node whose first output the path goes on from (the Add of MatMul + Add)

    @property
    def batch(self):
        """The model's batch size: a number, or ``onnx_values.BATCH`` when it is left to run time."""
        return self._w.values.batch

    def fail(self, problem) -> FwError:
        """The error to raise: ``MODEL: node 3 '/fc/Gemm' (Gemm): PROBLEM``."""
        return self._w.fail(self._i, self._node, problem)

    def weight(self, k, required=True):
        """Input ``k``, a float constant of the model (a weight); None when optional and absent."""
        return self._w.weight(self._i, self._node, k, required)

    def value(self, k):
        """Input ``k``, a constant of any type (a flag, a shape); None when absent."""
        name = self._node.input[k] if k < len(self._node.input) else ""
        return self._w.values.get(name, self._i, self._node) if name else None

    def ints(self, k):
        """Input ``k``, whole numbers (axes, a target shape), as a list; worked out through Shape/Gather/... nodes."""
        name = self._node.input[k] if k < len(self._node.input) else ""
        if not name:
            raise self.fail(f"has no input {k + 1}, which it needs")
        return self._w.values.ints(name, self._i, self._node)

    def operand(self):
        """The constant input of an element-wise op with two (Add, Sub, Mul, Div) that is not the network's tensor."""
        names = list(self._node.input)
        if len(names) != 2 or names[0] == names[1]:
            raise self.fail(f"has {len(names)} inputs; fw reads it with two, the network's tensor and a constant")
        if names[0] != self._x and self.op_type not in COMMUTATIVE:
            raise self.fail(
                "takes the network's tensor as its second input, "
                f"which fw's layers do not compute ({names[0]} {self.op_type} x)"
            )
        return self.weight(1 if names[0] == self._x else 0)

    def allow(self, **allowed):
        """Refuse an attribute value fw's layer cannot honour: ``allowed`` maps a name to its possible values."""
        for key, ok in allowed.items():
            if key in self.attrs and self.attrs[key] not in ok:
                raise self.fail(
                    f"{key}={clip(repr(self.attrs[key]), 40)}; "
                    f"fw's layer supports {key} {' or '.join(map(repr, ok))} only"
                )
        return self.attrs

    def readers(self):
        """The nodes that read this one's output, not taken yet, as OnnxNodes (their ``input_shape`` None);
        none when it is the network's output."""
        w, y = self._w, self.last.output[0]
        if y == w.output:
            return []
        return [OnnxNode(w, j, w.nodes[j], None, y) for j in w.users[y] if j not in w.folded and j not in w.walked]

    def take(self, *nodes):
        """Take ``nodes`` (some of ``readers``, the last one last) into this layer: the path goes on from the last."""
        for n in nodes:
            self._w.folded.add(n._i)
        self.last = nodes[-1]._node

    def fold(self, *op_types):
        """The node after this one, taken into this layer, when it is one of ``op_types`` and the only
        reader of this one's output; else None."""
        after = self.readers()
        if len(after) != 1 or after[0].op_type not in op_types or after[0].domain not in STANDARD:
            return None
        self.take(after[0])
        return after[0]


class OnnxTable:
    """A table's preparation as fw export writes it before the network, for ``TablePreparation.from_onnx_table``.

    ``columns``: ``[(name, numeric | categorical)]`` from the metadata; ``inputs``: the graph's
    inputs, ``{name: ("float" | "string", width)}``. ``step(x, *op_types)`` takes the nodes that
    read tensor ``x``, which must be exactly those ops, in that order; the reader sets ``end`` to
    the tensor the network starts from. Every node taken is left out of the network's walk.
    """

    def __init__(self, walker, columns):
        self._w, self.columns, self.path = walker, columns, walker.path
        self.taken, self.end = set(), None
        constants = {t.name for t in walker.graph.initializer}
        self.inputs = {}
        for v in walker.graph.input:
            if v.name in constants:
                continue
            t = v.type.tensor_type
            dims = list(t.shape.dim) if v.type.HasField("tensor_type") else []
            kind = {1: "float", 8: "string"}.get(t.elem_type) if dims else None
            width = dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else 0
            if kind is None or width < 1:
                raise self.fail(
                    f"the input {clip(repr(v.name), 40)} is not a (batch, width) "
                    "float or string tensor, as fw export writes a table's"
                )
            self.inputs[v.name] = (kind, width)

    def fail(self, problem) -> FwError:
        return FwError(
            f"{self.path}: the table's preparation (the nodes before the network, "
            f"which the metadata's 'columns' announce): {problem}; the file is damaged or forged"
        )

    def reads(self, x) -> list:
        """The op types of the nodes reading tensor ``x`` (not taken yet), sorted."""
        return sorted(self._w.nodes[j].op_type for j in self._w.users[x] if j not in self.taken)

    def join(self, xs, op_type):
        """The one ``op_type`` node that reads every tensor of ``xs``,
        read by nothing else (a Concat of the columns)."""
        users = {j for x in xs for j in self._w.users[x]}
        j = min(users) if len(users) == 1 else None
        if j is None or self._w.nodes[j].op_type != op_type or j in self.taken:
            raise self.fail(f"the columns' parts go to {len(users)} nodes, where fw export writes one {op_type}")
        self.taken.add(j)
        return _TableNode(self, j, self._w.nodes[j])

    def step(self, x, *op_types):
        """The nodes reading tensor ``x``: exactly ``op_types`` (standard ops;
        LabelEncoder of ai.onnx.ml), in that order."""
        users = [j for j in self._w.users[x] if j not in self.taken]
        found = sorted(self._w.nodes[j].op_type for j in users)
        if found != sorted(op_types):
            said = ", ".join(clip(op, 40) for op in found[:4]) or "no node"
            raise self.fail(f"tensor {clip(repr(x), 60)} goes to {said}, where fw export writes {', '.join(op_types)}")
        out = []
        for op in op_types:
            j = next(j for j in users if self._w.nodes[j].op_type == op and j not in self.taken)
            node = self._w.nodes[j]
            if node.domain not in STANDARD or len(node.output) != 1:
                raise self.fail(f"{where(j, node)} is not the standard op with one output that fw export writes")
            self.taken.add(j)
            out.append(_TableNode(self, j, node))
        return out


class _TableNode:
    """A node of a table's preparation: its ``inputs``, ``output``, ``attrs``, and constant inputs."""

    def __init__(self, table, i, node):
        self._t, self._i, self._node = table, i, node
        self.op_type, self.domain, self.inputs, self.output = (
            node.op_type,
            node.domain,
            list(node.input),
            node.output[0],
        )
        scalars = [
            a for a in node.attribute if a.type in (1, 2, 3)
        ]  # LabelEncoder's lists are read by strings and floats
        self.attrs = (
            attributes(node, table.path) if node.op_type != "LabelEncoder" else attributes(_Only(scalars), table.path)
        )

    def fail(self, problem) -> FwError:
        return self._t.fail(f"{where(self._i, self._node)} {problem}")

    def dims(self, k):
        """The shape of input ``k`` when it is a constant, else None."""
        t = self._t._w.values.initializers.get(self.inputs[k] if k < len(self.inputs) else "")
        return None if t is None else tuple(t.dims)

    def constant(self, k, shape):
        """Input ``k``, a constant of ``shape``, as float64 (its size checked before it is read)."""
        name = self.inputs[k] if k < len(self.inputs) else ""
        t = self._t._w.values.initializers.get(name)
        if t is None or tuple(t.dims) != tuple(shape):
            raise self.fail(
                f"takes {clip(repr(name), 60)} as input {k + 1}, "
                f"where fw export writes a constant of shape {tuple(shape)}"
            )
        a = to_array(t, self._t.path)
        if a.dtype.kind not in "fb":
            raise self.fail(f"its constant {clip(repr(name), 60)} holds {a.dtype}, not numbers")
        return a.astype(np.float64)

    def strings(self, key):
        """Attribute ``key``, a list of strings (LabelEncoder's keys), at most ``MAX_CATEGORIES``."""
        try:
            return [w.decode("utf-8") for w in self._listed(key, "strings", "words")]
        except UnicodeDecodeError:
            raise self.fail(f"has a word in {clip(repr(key), 40)} that is not UTF-8 text") from None

    def floats(self, key):
        """Attribute ``key``, a list of floats (LabelEncoder's values), at most ``MAX_CATEGORIES``."""
        return list(self._listed(key, "floats", "values"))

    def _listed(self, key, field, noun):
        a = next((a for a in self._node.attribute if a.name == key), None)
        if a is None:
            return []
        items = getattr(a, field)
        if len(items) > MAX_CATEGORIES:
            raise self.fail(
                f"lists {len(items):,} {noun} in {clip(repr(key), 40)}; "
                f"a table's column has at most {MAX_CATEGORIES:,} categories"
            )
        return items


class _Only:
    """A node with only some of its attributes, for ``attributes``."""

    def __init__(self, attribute):
        self.attribute = attribute


def _labels(values, most=1000):
    """Class labels as text, when there are few enough to be a classifier's (each clipped as a message shows it)."""
    if len(values) > most:
        return []
    return [clip(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v), 60) for v in values]


class _Walker:
    """Follows the network's one path through the graph, turning nodes into layers."""

    def __init__(self, graph, path, opset, registry, make, table=None):
        self.graph, self.path, self.opset, self.registry, self.make = graph, path, opset, registry, make
        self.readers = readers(registry)
        self.nodes = list(graph.node)
        self.output, dropped = self._output()
        kept = self._needed() if dropped else range(len(self.nodes))  # a label's branch is left out
        self.users = defaultdict(list)  # tensor -> the nodes that read it, but Shape (which reads no values)
        for i in kept:
            node = self.nodes[i]
            for name in dict.fromkeys(node.input):
                if name and node.op_type != "Shape":
                    self.users[name].append(i)
        self.shapes = {}
        self.folded = set()  # nodes taken into a layer already (the Add of MatMul + Add)
        self.walked = set()
        prepared = None
        if table is None:
            self.input, shape, batch = self._input()
            self.values = Values(graph, path, opset, self.shapes, batch)
        else:  # the table's preparation reads itself; the network starts where it ends
            self.values = Values(graph, path, opset, self.shapes, BATCH)
            cls, columns = table
            reader = OnnxTable(self, columns)
            prepared = cls.from_onnx_table(reader)
            self.walked |= reader.taken
            self.input, shape = reader.end, (prepared.width,)
        self.shapes[self.input] = shape
        self.out = Imported(
            input_shape=shape, dropped=dropped, class_labels=self._class_labels() if dropped else [], table=prepared
        )

    def _input(self):
        """The graph's one real input (not an initialiser listed as an input): its name, shape and batch size."""
        g, path = self.graph, self.path
        constants = {t.name for t in g.initializer}
        inputs = [v for v in g.input if v.name not in constants]
        if len(inputs) != 1 or not g.output:
            names = ", ".join(clip(repr(v.name), 40) for v in inputs[:5])
            raise FwError(
                f"{path}: the graph has {len(inputs)} input(s) ({names}) and {len(g.output)} output(s); "
                "fw networks are sequential, with one input (the images, or a table's rows) and one output"
            )
        v = inputs[0]
        t = v.type.tensor_type
        if not v.type.HasField("tensor_type") or t.elem_type != 1:
            raise FwError(
                f"{path}: the input {clip(repr(v.name), 40)} is not a float32 tensor; fw networks take float32 images"
            )
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

    def _output(self):
        """The tensor the network ends at, and the outputs left out: of a classifier's label and probabilities
        (skl2onnx writes both), the probabilities, before the ZipMap that turns them into dictionaries."""
        outputs = list(self.graph.output)
        if len(outputs) == 1:
            return outputs[0].name, []
        producers = {out: node for node in self.nodes for out in node.output}
        probabilities, labels = [], []
        for v in outputs:
            made = producers.get(v.name)
            if made is not None and made.op_type == "ZipMap" and made.domain == "ai.onnx.ml" and made.input:
                probabilities.append(made.input[0])
            elif v.type.HasField("tensor_type") and v.type.tensor_type.elem_type == 1:
                probabilities.append(v.name)
            else:
                labels.append(v.name)
        if len(probabilities) != 1:
            names = ", ".join(clip(repr(v.name), 40) for v in outputs[:5])
            raise FwError(
                f"{self.path}: the graph has {len(outputs)} outputs ({names}), "
                f"{len(probabilities)} of them float tensors; "
                "fw reads one: a network's output, or a classifier's probabilities beside its label"
            )
        return probabilities[0], labels

    def _class_labels(self):
        """A classifier's class labels as its label branch holds them: ZipMap's, or the constant that
        ArrayFeatureExtractor picks the label from (skl2onnx's); [] when there are none to read."""
        constants = {t.name: t for t in self.graph.initializer}
        for node in self.nodes:
            if node.domain != "ai.onnx.ml":
                continue
            if node.op_type == "ZipMap":
                for a in node.attribute:
                    if a.name in ("classlabels_strings", "classlabels_int64s"):
                        return _labels(a.strings or a.ints)
            if node.op_type == "ArrayFeatureExtractor" and node.input and node.input[0] in constants:
                t = constants[node.input[0]]
                if t.data_type == 8 and not t.raw_data:  # strings
                    return _labels(t.string_data)
                if t.data_type == 7 and len(t.dims) == 1 and t.dims[0] <= 1000:  # before tolist makes an object of each
                    return _labels(to_array(t, self.path).tolist())
        return []

    def _needed(self):
        """The nodes the network's output is worked out from (others feed only the outputs left out)."""
        producers = {out: i for i, node in enumerate(self.nodes) for out in node.output if out}
        needed, todo = set(), [self.output]
        while todo:
            i = producers.get(todo.pop())
            if i is not None and i not in needed:
                needed.add(i)
                todo.extend(n for n in self.nodes[i].input if n)
        return sorted(needed)

    def walk(self) -> Imported:
        x, output = self.input, self.output
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
                raise FwError(
                    f"{self.path}: {where(i, node)} comes round again: "
                    "the graph has a cycle, which ONNX forbids; the file is damaged"
                )
            self.walked.add(i)
            if node.input[0] != x and node.op_type not in COMMUTATIVE:
                raise FwError(
                    f"{self.path}: {where(i, node)} takes the network's tensor as input "
                    f"{list(node.input).index(x) + 1}, not first; fw reads only the order exporters write"
                )
            shape, last = self._read(i, node, self.shapes[x], x)
            x = self._advance(i, node, shape, last)
        if x != output:
            raise FwError(
                f"{self.path}: the network's path ends at tensor {clip(repr(x), 60)}, "
                "which is not the graph's output; the file is damaged"
            )
        self.out.output_shape = self.shapes[x]
        return self.out

    def _read(self, i, node, shape, x):
        """Node ``i`` as the layer that reads its op: ``(the shape it leaves, the node the path goes on from)``."""
        standard = node.domain in STANDARD
        if standard and node.op_type in NOTHING:
            to = attributes(node, self.path).get("to", 1)
            if to != 1:
                raise self.fail(
                    i,
                    node,
                    f"casts the network's float32 values to ONNX type {to}; "
                    "fw's layers compute on float32, so fw reads a Cast to float only",
                )
            return shape, node
        classes = self.readers.get(node.op_type, []) if standard else []
        reader = OnnxNode(self, i, node, shape, x)
        for cls in classes:
            try:
                got = cls.from_onnx(reader)
            except FwError:
                raise
            except Exception as e:  # a plugin's from_onnx: whatever it raises, name the node and the layer
                raise self.fail(
                    i, node, f"layer '{cls.name}' ({type_name(cls)}) failed to read it: {describe_exception(e, 200)}"
                ) from e
            if got is NotImplemented:
                continue
            if got is None:
                return shape, reader.last
            return self._layer(i, node, cls, got, shape), reader.last
        if not standard:
            raise self.fail(
                i,
                node,
                f"of domain {clip(repr(node.domain), 40)}: fw reads the "
                "standard ONNX ops only (of the domains ai.onnx and ai.onnx.ml)",
            )
        if node.op_type in ELSEWHERE:
            name = ELSEWHERE[node.op_type]
            raise self.fail(
                i,
                node,
                f"needs a '{name}' layer, which no installed plugin provides; "
                f"install one (pip install ./examples/{PACKAGE}, from a clone of fw) and import again",
            )
        ops = ", ".join(sorted({*self.readers, *NOTHING}))
        raise self.fail(i, node, f"fw has no layer for this op; fw's layers and the installed plugins' read {ops}")

    def _layer(self, i, node, cls, got, shape):
        """Add the layer ``from_onnx`` returned (``(entry, arrays)``)
        and return its output shape, from its own ``build``."""
        ok = (
            isinstance(got, tuple)
            and len(got) == 2
            and isinstance(got[1], dict)
            and all(isinstance(k, str) for k in got[1])
        )
        entry = got[0] if ok else None
        name = entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else None
        layer_cls = self.registry.entries["layers"].get(name) if isinstance(name, str) else None
        if layer_cls is None:
            raise self.fail(
                i,
                node,
                f"layer '{cls.name}' read it as {describe_object(got)}; "
                "from_onnx must return (a model.layers entry, a dict of arrays) of an installed layer",
            )
        params = {k: v for k, v in entry.items() if k != "name"} if isinstance(entry, dict) else {}
        try:
            out = self.make(layer_cls, name, params).build(shape, np.random.default_rng(0))
        except Exception as e:  # its parameters do not fit its input: the model is not one this layer can be
            raise self.fail(
                i,
                node,
                f"as {name} on (batch, {', '.join(map(str, shape))}): "
                f"{describe_exception(e, 200, prefix=not isinstance(e, (ValueError, FwError)))}",
            ) from e
        self.add(i, node, entry, **got[1])
        if len(self.out.layers) == 1 and getattr(layer_cls, "prepares_input", False):
            self.out.prepares = True
        return tuple(out)

    def _advance(self, i, node, shape, last):
        """The tensor the path goes on from (``last``'s first output), of ``shape``; a node's
        other outputs (Dropout's mask, MaxPool's indices, ...) must go nowhere."""
        for extra in node.output[1:]:
            if extra and (self.users[extra] or extra == self.output):
                raise FwError(
                    f"{self.path}: {where(i, node)}: its output {clip(repr(extra), 40)} is used, "
                    "which only training uses; fw imports models for inference"
                )
        x = last.output[0]
        if math.prod(shape) > MAX_VALUES:
            raise FwError(
                f"{self.path}: {where(i, node)} makes {math.prod(shape):,} values per example; "
                f"fw refuses more than {MAX_VALUES:,}"
            )
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
            raise self.fail(
                i, node, f"its input {clip(repr(name), 40)} holds {a.dtype}; weights must be floating point"
            )
        return a

    def add(self, i, node, layer, **arrays):
        index = len(self.out.layers)
        self.out.layers.append(layer)
        self.out.sources.append(where(i, node))
        for key, a in arrays.items():
            self.out.arrays[f"{index}.{key}"] = np.ascontiguousarray(a, np.float32)
