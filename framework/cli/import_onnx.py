"""``fw import-onnx``: a sequential ONNX model (PyTorch's,
Keras's, skl2onnx's, fw's own) as an fw config and its weights."""

import argparse

HELP = """\
Read MODEL.onnx, a sequential network such as PyTorch's torch.onnx.export,
Keras's or skl2onnx's exporters write it, and write OUT.yaml (its dataset,
model.layers, and weights: {importer: npz, path: OUT.npz}) and the weights,
OUT.npz, beside it.
KEY=VALUE overrides go into OUT.yaml, e.g. the dataset the model classifies.
Then `fw run OUT.yaml` evaluates the model, and `fw train OUT.yaml` trains it on.

Each layer reads the ONNX ops it declares (Layer.onnx_ops, Layer.from_onnx),
installed plugins' layers too. fw's own read Gemm, MatMul (+ Add), Conv,
MaxPool, AveragePool, Relu, Sigmoid, Softmax, Flatten and Reshape to
(batch, features) (also through the Shape/Gather/Concat nodes exporters
write for it), BatchNormalization, Dropout, and a model's own preparation
(ai.onnx.ml Scaler; Sub, Div, Add, Mul by constants) as rescale, after which
the dataset does not standardise again (dataset.normalize: false). fw's own
export of a csv model comes back with its preparation (blanks, one-hot,
standardisation), written to OUT.dataset.json as fw train writes it. Identity
and a Cast to float are nothing. Of a classifier's label and probabilities
(skl2onnx), the probabilities are read. Anything else, or a graph that
branches, is a one-line error naming the node. Importing runs nothing from
the model and opens no other file; every size is checked before anything is
allocated.

examples:
  fw import-onnx simple_convnet.onnx convnet.yaml
  fw import-onnx fashion.onnx fashion.yaml dataset.name=fashion_mnist
  fw import-onnx iris.onnx iris.yaml dataset.name=csv dataset.path=iris.csv dataset.label=species
  fw run convnet.yaml

Needs onnx (pip install onnx)."""


def add_command(sub, debug):
    cmd = sub.add_parser(
        "import-onnx",
        parents=[debug],
        help="turn an ONNX model (PyTorch, Keras, fw export) into a config and weights",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("model", metavar="MODEL.onnx", help="the ONNX model to read")
    cmd.add_argument("out", metavar="OUT.yaml", help="the config to write; the weights go to OUT.npz beside it")
    cmd.add_argument(
        "overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="written into OUT.yaml, e.g. dataset.name=fashion_mnist",
    )
    cmd.add_argument("--force", action="store_true", help="replace OUT.yaml and OUT.npz if they exist")
    cmd.set_defaults(func=run)


def run(args):
    import os
    from pathlib import Path

    import numpy as np

    from ..data.trained import state_path, write_state
    from ..errors import FwError
    from ..interchange import onnx_import
    from ..safeio.files import check_writable, temp_path, write_output

    out = Path(args.out)
    if out.name in ("", "..") or out.is_dir():  # `fw import-onnx m.onnx .`: a folder has no suffix to change
        raise FwError(
            f"output {args.out} is a folder; give the config to write in it, e.g. {out / Path(args.model).stem}.yaml"
        )
    if out.suffix not in (".yaml", ".yml"):
        raise FwError(f"output {out} must end with .yaml; e.g. {out.with_suffix('.yaml')}")
    weights = out.with_suffix(".npz")
    check_writable(out, "output", args.force)
    check_writable(weights, "output (the weights beside it)", args.force)
    imported = onnx_import.read(args.model, *_layer_maker())
    if imported.table is not None:
        check_writable(state_path(weights), "output (the table's preparation beside the weights)", args.force)
    draft = temp_path(out)  # the config, checked under its own name before it takes OUT.yaml's
    try:
        cfg, state = _checked_config(imported, draft, out, weights, args.overrides)
        text = _config_text(cfg, imported, args.model, out, weights)
        write_output(weights, lambda f: np.savez(f, **imported.arrays))
        if state is not None:  # as fw train writes it: what the csv dataset prepares raw rows with
            write_state(weights, cfg.dataset.name, state)
        write_output(draft, lambda f: f.write(text.encode()))
        os.replace(draft, out)
    finally:
        draft.unlink(missing_ok=True)
    _report(imported, args.model, out, weights, cfg)
    return 0


def _layer_maker():
    """fw's registry, and a maker of layers as fw run makes them when weights follow: nothing is drawn."""
    from ..config.assemble import LayerSpec, _Unset, make_layer
    from ..plugin_system.manager import get_registry

    registry = get_registry()
    return registry, lambda cls, name, params: make_layer(
        cls, LayerSpec(name, params, f"layer '{name}'"), registry, _Unset
    )


def _checked_config(imported, draft, out, weights, overrides):
    """The validated config OUT.yaml will hold, its network built and loaded with the model's weights, and
    the dataset state to write beside the weights (a table's preparation; else None).

    The draft is loaded as fw run would load OUT.yaml, overrides and all, so an
    error here is one fw run would have met.
    """
    from omegaconf import OmegaConf

    from ..config import load_config
    from ..errors import FwError
    from ..plugin_system.manager import get_registry
    from ..safeio.files import write_output
    from .commands import _report_failures

    dataset = {**imported.dataset, "flatten": len(imported.input_shape) == 1}
    base = {
        "dataset": dataset,
        "model": {"layers": imported.layers},
        "weights": {"importer": "npz", "path": weights.name},
    }
    text = OmegaConf.to_yaml(OmegaConf.create(base))
    write_output(draft, lambda f: f.write(text.encode()))
    try:
        cfg = load_config(draft, overrides)
    except FwError as e:
        raise FwError(str(e).replace(str(draft), str(out))) from e
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    _check_names(cfg, registry, imported)
    if imported.prepares and not any(o.split("=", 1)[0].strip() == "dataset.normalize" for o in overrides):
        dataset = registry.get("datasets", cfg.dataset.name, "dataset.name")
        if getattr(dataset, "pixels", None) is not True:  # a dataset that would standardise what the model standardises
            cfg.dataset.normalize = False
    return cfg, _check_network(cfg, registry, imported)


def _check_names(cfg, registry, imported):
    """Every layer the model needs is one fw has: Tanh needs a tanh plugin, for one."""
    from ..errors import FwError

    for entry, source in zip(imported.layers, imported.sources):
        name = entry if isinstance(entry, str) else entry["name"]
        if name not in registry.entries["layers"]:
            extra = " (pip install ./examples/fw-extra-activations, from a clone of fw)" if name == "tanh" else ""
            raise FwError(
                f"{source}: needs a '{name}' layer, which no installed plugin provides; "
                f"install one{extra} and import again"
            )


def _check_network(cfg, registry, imported):
    """Build the network as fw run will, for the config's dataset, and load the model's weights into it."""
    import numpy as np

    from ..config.assemble import assemble, input_shape
    from ..config.datasets import make_dataset
    from ..data.weights import load_weights
    from ..errors import FwError

    dataset = make_dataset(cfg, registry, trained=False)  # the model's weights, not a file that may lie beside OUT.npz
    if imported.table is not None:
        _restore_table(dataset, cfg, imported)
    model, data = imported.input_shape, input_shape(cfg, dataset)
    first = cfg.model.layers[0] if cfg.model.layers else None
    flattens_first = (first if isinstance(first, str) else getattr(first, "name", None)) in ("dense", "flatten")
    if model != data and not (flattens_first and np.prod(model) == np.prod(data)):
        raise FwError(
            f"the model takes examples of shape {model}, but dataset '{cfg.dataset.name}' gives {data} "
            f"(dataset.flatten={cfg.dataset.flatten}); "
            f"name the dataset it classifies: {_dataset_advice(registry, imported)}"
        )
    classes = dataset.num_classes
    if imported.output_shape != (classes,):
        shown = imported.output_shape[0] if len(imported.output_shape) == 1 else imported.output_shape
        raise FwError(
            f"the model gives {shown} scores per example (one per class), but dataset '{cfg.dataset.name}' has "
            f"{classes} classes; name the dataset it classifies: {_dataset_advice(registry, imported)}"
        )
    net, _ = assemble(cfg, registry, np.random.default_rng(0), weights_follow=True, dataset=dataset)
    load_weights(net, imported.arrays, "the model's weights")
    state = dataset.state() if imported.table is not None else None
    names = [dataset.class_name(k) for k in range(classes)]
    numbered = [str(k) for k in range(classes)]  # labels fitted as 0..k-1 say nothing of the names
    if imported.class_labels and imported.class_labels not in (names, numbered):
        imported.notes.append(
            f"the model's classes are {', '.join(imported.class_labels)} (in its outputs' order), dataset "
            f"'{cfg.dataset.name}' has {', '.join(names)}: fw takes output k as the "
            "dataset's class k, so check they are the same classes in the same order"
        )
    return state


def _restore_table(dataset, cfg, imported):
    """Give the dataset the table's preparation the model's first nodes hold, as fw train's state file would."""
    from ..data.trained import _checked
    from ..errors import FwError
    from ..safeio.untrusted import clip

    prep = imported.table
    state = {
        "class_names": imported.class_names,
        "shape": [prep.width],
        "pixels": False,
        "features": prep.features,
        "columns": prep.columns,
    }
    try:
        _checked(state)
        dataset.restore(state)
    except ValueError as e:
        raise FwError(
            f"{imported.model}: its class names (metadata 'class_names') and table's preparation "
            f"are no dataset state fw can use: {clip(str(e), 120)}; the file is damaged or forged"
        ) from e
    if getattr(dataset, "preparation", None) is None:
        raise FwError(
            f"{imported.model}: the model prepares a table's columns ({', '.join(prep.features)[:80]}), but dataset "
            f"'{cfg.dataset.name}' takes no table; "
            "import it with dataset.name=csv dataset.path=TABLE.csv dataset.label=COLUMN"
        )


def _dataset_advice(registry, imported):
    """The overrides that name a dataset the model fits: the installed ones of its shape and classes, else your own."""
    import math

    n, out = math.prod(imported.input_shape), imported.output_shape
    classes = out[0] if len(out) == 1 else None
    fits = []
    for name in registry.names("datasets"):
        cls = registry.entries["datasets"].get(name)
        shape, names = getattr(cls, "shape", None), getattr(cls, "class_names", None)
        if isinstance(shape, tuple) and math.prod(shape) == n and names is not None and len(names) == classes:
            fits.append(f"dataset.name={name}")
    if len(imported.input_shape) == 1:
        own = (
            "dataset.name=csv dataset.path=TABLE.csv dataset.label=COLUMN "
            f"(a table of {n} feature columns and {classes} classes)"
        )
    else:
        c, h, w = (1, *imported.input_shape) if len(imported.input_shape) == 2 else imported.input_shape
        color = "grayscale" if c == 1 else "rgb"
        own = (
            f"dataset.name=image_folder dataset.path=FOLDER 'dataset.size=[{h}, {w}]' "
            f"dataset.color={color} (one subfolder per class, {classes} classes)"
        )
    return f"{' or '.join(fits)}, or for your own data {own}" if fits else own


def _config_text(cfg, imported, model, out, weights):
    """OUT.yaml: the dataset, the layers, the weights, and whatever else differs from fw's defaults."""
    import os

    from omegaconf import OmegaConf

    from ..config.schema import SCHEMA

    data = OmegaConf.to_container(cfg)
    text = {"dataset": data.pop("dataset"), "model": {"layers": data["model"].pop("layers")}}
    text["model"] |= {k: v for k, v in data.pop("model").items() if v != SCHEMA["model"][k]}
    w = data.pop("weights")
    if w is not None:  # beside OUT.yaml, named as such, so the two can move together
        beside = w["path"] == os.path.normpath(weights.absolute())
        w = {"importer": w.pop("importer"), "path": weights.name if beside else w.pop("path")} | {
            k: v for k, v in w.items() if v is not None and k != "path"
        }
    text["weights"] = w
    text |= {k: v for k, v in data.items() if v != SCHEMA[k]}
    head = (
        f"# Imported by fw import-onnx from {model} ({imported.producer}, "
        f"opset {imported.opset}).\n# Run it: fw run {out}\n"
    )
    return head + OmegaConf.to_yaml(OmegaConf.create(text))


def _name(entry):
    return entry if isinstance(entry, str) else entry["name"]


def _report(imported, model, out, weights, cfg):
    from ..safeio.untrusted import clip

    print(
        f"read {model} ({imported.producer}, opset {imported.opset}): "
        f"input (batch, {', '.join(map(str, imported.input_shape))})"
    )
    for i, (entry, source) in enumerate(zip(imported.layers, imported.sources)):
        params = ", ".join(f"{k}: {v}" for k, v in entry.items() if k != "name") if isinstance(entry, dict) else ""
        shown = f"{entry['name']} ({params})" if params else entry if isinstance(entry, str) else entry["name"]
        print(f"  model.layers[{i}] {shown}  <- {source}")
    if imported.dropped:
        print(
            f"note: read the model's probabilities; its other output{'s' if len(imported.dropped) > 1 else ''} "
            f"({', '.join(clip(repr(d), 40) for d in imported.dropped)}, the label fw run works out itself) left out"
        )
    for note in imported.notes:
        print(f"note: {note}")
    if imported.prepares and not cfg.dataset.normalize:
        print(
            f"note: the model prepares its input itself (model.layers[0] {_name(imported.layers[0])}), "
            "so dataset.normalize is false: fw does not standardise it again"
        )
    if imported.table is not None:
        from ..data.trained import state_path

        print(
            "note: the model's first nodes prepare the table's "
            f"columns ({clip(', '.join(imported.table.features), 80)}): "
            f"blanks filled{', numbers standardised' if imported.table.normalize else ''}"
            f"{'' if imported.table.numeric_only else ', words one-hot'}; "
            f"wrote that preparation to {state_path(weights)}, beside the weights, as fw train does"
        )
    print(f"wrote {out} and {weights}; run it: fw run {out}")
    last = imported.layers[-1] if imported.layers else None
    if last not in ("softmax", "binary_sigmoid"):  # the layers that end in probabilities
        print(
            "note: the model ends without softmax, so it gives scores, not probabilities; fw run classifies by them "
            "all the same. Add softmax to model.layers to train it with fw train's cross_entropy."
        )
