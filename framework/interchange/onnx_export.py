"""A built Network to an ONNX model: each layer adds its own nodes through ``Layer.to_onnx(graph, x)``.

The graph has one input, ``input`` (float32, ``(batch, *the network's input
shape)``, the batch axis dynamic), and one output, ``probabilities`` (the last
layer's output, ``(batch, classes)``). A table's network starts with its
preparation (``plugins.preparation``): numbers only, ``input`` is the raw
(batch, features) with NaN for a blank; with word columns, one input per column,
named after it, (batch, 1) float or string, as skl2onnx writes them. Blanks
are filled, numbers standardised and words one-hot inside the graph. Initialisers are named as fw's weights
files name the arrays (``0.W``, ``2.running_mean``), nodes after their layer
(``0.dense/Gemm``), so a checker's complaint names the layer that caused it.
The model's metadata holds the class names (a JSON list), the fw version, the
config (a path in it cut to its file name: a model carries no machine's paths)
and, for a table, ``features`` and ``columns`` (each column's name and
type). The model passes ``onnx.checker.check_model(full_check=True)``, and
each layer's output has the shape its ``build`` promised, before anything is
written.
"""

import json

import numpy as np

from ..errors import FwError
from ..safeio.untrusted import clip, describe_exception, describe_object
from . import DEFAULT_OPSET, optional_import

#: Softmax(axis=-1) means the last axis alone from opset 13 on (before, every axis after it, flattened).
MIN_OPSET = 13
INPUT, OUTPUT = "input", "probabilities"
METHOD_HINT = (
    "add to_onnx(self, graph, x), which adds its ONNX nodes and returns its output's name (see framework.Layer.to_onnx)"
)


class OnnxGraph:
    """What a layer's ``to_onnx(graph, x)`` builds with.

    - ``op(op_type, *inputs, **attributes)`` adds a node and returns the name of
      its output. Inputs are tensor names (``""`` for an omitted optional
      input); a number or numpy array becomes a constant (floats as float32).
    - ``weight(name, array)`` adds a float32 initialiser named after the layer
      (``3.W``) and returns that name.
    - ``input_shape`` and ``output_shape``: the layer's shapes, one example
      (no batch axis), as ``build`` saw and returned them; ``opset``: the
      ONNX opset being written.
    """

    def __init__(self, onnx, opset):
        self._onnx, self.opset = onnx, opset
        self.nodes, self.initializers = [], []
        self._tensors = {INPUT}
        self._node_names = set()
        self.inputs = []  # (name, "float" | "string", width) of the inputs ``input`` adds
        self.input_shape = self.output_shape = None

    def begin(self, index, name, input_shape, output_shape):
        """Start layer ``index``: the names made from now on carry its position and name."""
        self.index, self.input_shape, self.output_shape = index, tuple(input_shape), tuple(output_shape)
        self._prefix, self._constants = f"{index}.{name}", 0

    def input(self, name, kind, width):
        """A graph input of its own, (batch, width), float32 or string (a table's column); returns its name."""
        if name in self._tensors:
            raise ValueError(f"the graph already has a tensor named {name!r}; rename the column")
        self.inputs.append((name, kind, width))
        self._tensors.add(name)
        return name

    def op(self, op_type, *inputs, **attributes):
        names = [i if isinstance(i, str) else self.constant(i) for i in inputs]
        unknown = [n for n in names if n and n not in self._tensors]
        if unknown:
            raise ValueError(f"{op_type}'s input {clip(repr(unknown[0]), 60)} is not a tensor of the graph so far")
        node = base = f"{self._prefix}/{op_type}"
        k = 1
        while node in self._node_names:
            k += 1
            node = f"{base}_{k}"
        self._node_names.add(node)
        out = f"{node}_output"
        self.nodes.append(self._onnx.helper.make_node(op_type, names, [out], name=node, **attributes))
        self._tensors.add(out)
        return out

    def weight(self, name, array):
        return self._add(f"{self.index}.{name}", np.asarray(array, np.float32))

    def constant(self, value, dtype=None):
        """A constant tensor; floats become float32 unless ``dtype`` says otherwise."""
        a = np.asarray(value)
        if dtype is not None:
            a = a.astype(dtype)
        elif a.dtype.kind == "f":
            a = a.astype(np.float32)
        elif a.dtype.kind in "iu":
            a = a.astype(np.int64)
        self._constants += 1
        return self._add(f"{self._prefix}/const_{self._constants}", a)

    def _add(self, name, array):
        if name in self._tensors:
            raise ValueError(f"the graph already has a tensor named {name!r}; give each weight its own name")
        self.initializers.append(self._onnx.numpy_helper.from_array(array, name))  # copies the bytes, in C order
        self._tensors.add(name)
        return name

    def finish(self, x):
        """Make tensor ``x`` the graph's output, ``probabilities``; return that name."""
        producer = next((n for n in self.nodes if x in n.output), None)
        consumed = any(x in n.input for n in self.nodes)
        if producer is None or consumed:  # the input itself, a weight, or a tensor used before: copy it out
            self.nodes.append(self._onnx.helper.make_node("Identity", [x], [OUTPUT], name="output/Identity"))
        else:
            producer.output[list(producer.output).index(x)] = OUTPUT
        return OUTPUT


def export(net, *, class_names, config_text, fw_version, opset=DEFAULT_OPSET, preparation=None):
    """The ONNX ``ModelProto`` of a built ``net``, checked; every error is one line naming the layer.

    ``preparation``: a table's ``TablePreparation``, put before the network's layers."""
    onnx = optional_import("onnx", "onnx", "fw export")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise FwError(
            f"--opset {opset}: fw exports opsets {MIN_OPSET} to {newest} (the installed onnx's newest); "
            f"the default is {DEFAULT_OPSET}"
        )
    for i, layer in enumerate(net.layers):
        if not layer.has_onnx():
            raise net.error(i, f"has no ONNX export, so fw export cannot write it; {METHOD_HINT}")
    graph = OnnxGraph(onnx, opset)
    h, floats = onnx.helper, onnx.TensorProto.FLOAT
    start, inputs = INPUT, [h.make_tensor_value_info(INPUT, floats, ["batch", *net.input_shape])]
    props = {
        "class_names": json.dumps(list(class_names)),
        "fw_version": fw_version,
        "config": _without_paths(config_text),
    }
    if preparation is not None:
        start, inputs = _add_preparation(onnx, graph, preparation)
        props["features"] = json.dumps(preparation.features)
        props["columns"] = json.dumps([{"name": c["name"], "type": c["type"]} for c in preparation.columns])
    outputs = _add_layers(net, graph, start)
    outputs[-1:] = [graph.finish(outputs[-1] if outputs else start)]
    body = h.make_graph(
        graph.nodes,
        "fw",
        inputs,
        [h.make_tensor_value_info(OUTPUT, floats, ["batch", *net.output_shape])],
        graph.initializers,
    )
    opsets = [h.make_opsetid("", opset)]
    if any(n.domain == "ai.onnx.ml" for n in graph.nodes):
        opsets.append(h.make_opsetid("ai.onnx.ml", 2))  # LabelEncoder with float values
    model = h.make_model(body, opset_imports=opsets, producer_name="fw", producer_version=fw_version)
    model.ir_version = h.find_min_ir_version_for(opsets)  # the oldest runtime that knows the opset can load it
    h.set_model_props(model, props)
    _check(onnx, model, net, outputs)
    return model


def _add_preparation(onnx, graph, prep):
    """The preparation's nodes; ``(its output, the graph's inputs)``."""
    h = onnx.helper
    graph.begin("input", prep.name, (len(prep.columns),), (prep.width,))
    try:
        y = prep.to_onnx(graph, INPUT)
    except ValueError as e:
        raise FwError(f"the table's preparation cannot be exported: {e}") from e
    if not graph.inputs:
        return y, [h.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, ["batch", len(prep.columns)])]
    kinds = {"float": onnx.TensorProto.FLOAT, "string": onnx.TensorProto.STRING}
    return y, [h.make_tensor_value_info(name, kinds[kind], ["batch", width]) for name, kind, width in graph.inputs]


def _without_paths(config_text):
    """The config with each absolute path cut to its file name: the model names no folder of this machine."""
    import os

    from omegaconf import OmegaConf

    def cut(node):
        if isinstance(node, dict):
            return {k: cut(v) for k, v in node.items()}
        if isinstance(node, list):
            return [cut(v) for v in node]
        if isinstance(node, str) and (os.path.isabs(node) or node.startswith("~")):
            return os.path.basename(node.rstrip("/")) or node
        return node

    try:
        tree = OmegaConf.to_container(OmegaConf.create(config_text))
    except Exception:  # noqa: BLE001 - not YAML: keep none of it rather than a path
        return ""
    kept = cut(tree)
    return config_text if kept == tree else OmegaConf.to_yaml(OmegaConf.create(kept))


def _add_layers(net, graph, start=INPUT):
    """Every layer's ``to_onnx`` in order; the names of their output tensors."""
    x, shape, outputs = start, net.input_shape, []
    for i, layer in enumerate(net.layers):
        graph.begin(i, getattr(layer, "name", type(layer).__name__), shape, net.shapes[i])
        try:
            y = layer.to_onnx(graph, x)
        except FwError:
            raise
        except Exception as e:  # a plugin's to_onnx: whatever it raises, name the layer
            raise net.error(
                i, f"to_onnx failed: {describe_exception(e, 300, prefix=not isinstance(e, ValueError))}"
            ) from e
        if not (isinstance(y, str) and y in graph._tensors):
            raise net.error(
                i,
                f"to_onnx returned {describe_object(y)}; "
                "it must return the name of its output tensor, as graph.op returns it",
            )
        outputs.append(y)
        x, shape = y, net.shapes[i]
    return outputs


def _check(onnx, model, net, outputs):
    """Each layer's output shape against what ``build`` promised, then ``onnx.checker`` with full shape inference.

    The shapes come first: the checker would blame a wrong shape on the layer
    where it meets the declared output, not the layer that made it.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model)  # lenient: what it cannot infer stays unknown
    except Exception:  # noqa: BLE001 - the checker below words what is wrong
        inferred = None
    if inferred is not None:
        _check_shapes(inferred.graph, net, outputs)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # onnx's ValidationError or InferenceError, worded by its C++ checker
        text = " ".join(str(e).split())
        where = next((i for i, name in enumerate(_prefixes(net)) if name in text), None)
        if where is None:
            raise FwError(f"the exported graph fails onnx.checker: {clip(text, 400)}") from e
        raise net.error(where, f"its ONNX nodes fail onnx.checker: {clip(text, 400)}") from e


def _check_shapes(g, net, outputs):
    found = {v.name: v for v in [*g.value_info, *g.output]}
    for i, name in enumerate(outputs):
        dims = found[name].type.tensor_type.shape.dim if name in found else None
        if not dims:
            continue
        got = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)[1:]
        want = net.shapes[i]
        if len(got) != len(want) or any(g_ is not None and g_ != w for g_, w in zip(got, want)):
            shown = "(batch, " + ", ".join("?" if d is None else str(d) for d in got) + ")"
            raise net.error(i, f"to_onnx gives an output of shape {shown}, but build promised {want} per example")


def _prefixes(net):
    return [f"{i}.{getattr(layer, 'name', type(layer).__name__)}/" for i, layer in enumerate(net.layers)]
