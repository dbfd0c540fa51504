"""``fw export``: a config's network, with its weights, as an ONNX model that ONNX Runtime and other tools run."""

import argparse

HELP = """\
Build the network CONFIG describes, load its weights (weights.path), and
write it as an ONNX model: one input `input`, float32 (batch, *the network's
input shape), the batch size free; one output `probabilities` (batch, classes).
The model's metadata holds the class names (JSON), the fw version and the
config. Every layer exports itself (Layer.to_onnx); the model is checked with
onnx.checker (full_check) before it is written, atomically.

The model takes what fw's network takes: the dataset's images as floats, so
with dataset.normalize: true, pixels divided by 255. A csv table's model takes
raw cells and prepares them itself (blanks filled, numbers standardised, words
one-hot): numbers only, one input `input` (batch, features), NaN for a blank;
with word columns, one input per column, named after it, (batch, 1) float32 or
string. The metadata's `features` and `columns` name them.

examples:
  fw export mnist_infer mnist.onnx
  fw export configs/fashion_cnn.yaml cnn.onnx weights.path=runs/fashion_cnn/weights.npz
  fw export configs/fashion_train.yaml mlp.onnx --opset 13

Needs onnx (pip install onnx). Run the model with onnxruntime; see docs/guides/export-import.md."""


def add_command(sub, debug, config_arg):
    from ..interchange import DEFAULT_OPSET

    export = sub.add_parser(
        "export",
        parents=[debug],
        help="write a config's network, with its weights, as an ONNX model",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("config", metavar="CONFIG", help=config_arg)
    export.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, as for fw run")
    export.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"the ONNX opset to write (default {DEFAULT_OPSET})",
    )
    export.add_argument("--force", action="store_true", help="replace OUT.onnx if it exists")
    export.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from omegaconf import OmegaConf

    from .. import __version__, api
    from ..config import load_config
    from ..errors import FwError
    from ..interchange import onnx_export, optional_import
    from ..plugin_system.manager import get_registry
    from ..safeio.files import check_writable, write_output
    from ..safeio.untrusted import printable
    from .commands import _report_failures

    out = Path(args.out)
    if out.name in ("", "..") or out.is_dir():  # `fw export m.yaml .`: a folder has no suffix to change
        raise FwError(
            f"output {args.out} is a folder; "
            f"give the ONNX file to write in it, e.g. {out / Path(args.config).stem}.onnx"
        )
    if out.suffix != ".onnx":
        raise FwError(f"output {out} must end with .onnx; e.g. {out.with_suffix('.onnx')}")
    optional_import("onnx", "onnx", "fw export")  # before any work
    check_writable(out, "output", args.force)
    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    net, dataset = api.build(cfg, registry)
    names = [dataset.class_name(i) for i in range(dataset.num_classes)]
    prep = (
        dataset.preparation_layer(cfg.dataset.normalize) if hasattr(dataset, "preparation_layer") else None
    )  # a table's
    model = onnx_export.export(
        net,
        class_names=names,
        config_text=OmegaConf.to_yaml(cfg),
        fw_version=__version__,
        opset=args.opset,
        preparation=prep,
    )
    data = model.SerializeToString()
    write_output(out, lambda f: f.write(data))
    shape = ", ".join(map(str, net.input_shape))
    ins = [i for i in model.graph.input]
    taken = f"input 'input' (batch, {shape}) float32"
    if prep is not None:  # a table: raw cells in, its preparation inside the graph
        taken = (
            f"input 'input' (batch, {len(prep.columns)}) float32, raw, NaN for a blank"
            if len(ins) == 1
            else f"{len(ins)} inputs, one per column (batch, 1), float32 or string, raw"
        )
    print(
        f"wrote {out}: opset {args.opset}, {taken} -> output 'probabilities' "
        f"(batch, {net.output_shape[0]}); {len(model.graph.node)} nodes, "
        f"{len(model.graph.initializer)} initialisers, {len(data):,} bytes"
    )
    print(f"classes: {printable(', '.join(names))}")  # a table's or a folder's names, escape codes and all
    return 0
