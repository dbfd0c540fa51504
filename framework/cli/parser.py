"""The ``fw`` command line's parser and its help: one subcommand per job, each with examples."""

import argparse

from . import commands

DESCRIPTION = """\
fw runs the neural networks that YAML configs describe. The book's chapter-3
network ("Deep Learning from Scratch") is the bundled config mnist_infer:
`fw run mnist_infer` works from any folder, offline. `fw configs` lists the
bundled configs; CONFIG is a YAML file's path or a bundled config's name.

Data and weights are read from $FW_DATA_DIR (default ~/.cache/fw) and
downloaded there, with checksums, when missing.
Set FW_DISABLE_PLUGIN_AUTOLOAD=1 to skip installed third-party plugins."""


RUN_HELP = """\
Load CONFIG, apply KEY=VALUE overrides (omegaconf dotlist syntax), build the
network, classify the dataset split and print the accuracy, correct/total,
and the time taken.

examples:
  fw run mnist_infer                           # the bundled config, from any folder
  fw run configs/mnist_infer.yaml
  fw run configs/mnist_infer.yaml batch_size=1000
  fw run configs/mnist_infer.yaml model.sizes=[784,100,100,10] weights=null
  fw run configs/mnist_infer.yaml dataset.root=/data/mnist weights.path=/data/w.pkl
  fw run configs/mnist_infer.yaml --json
  fw run configs/fashion_infer.yaml --report   # per-class accuracy, confusion matrix"""


TRAIN_HELP = """\
Train the network CONFIG describes on its dataset's train split, report on
the test split after every epoch, and write the weights to weights.path
(npz by default; weights.format=pickle writes the book's W1, b1, ... pickle).
fw run CONFIG then evaluates them with no conversion.

After each epoch a checkpoint is written atomically next to the weights
(NAME.ckpt.npz). Ctrl-C (or SIGTERM) keeps the last complete epoch; --resume
continues it. A finished run removes it (--keep-checkpoint keeps it).
The same config and train.seed give bit-identical weights on one machine.
A finished run leaves its run record beside the weights w.npz: w.config.yaml
(the resolved config) and w.metrics.jsonl (the --json lines), which fw compare
reads. fw replaces no file it did not write unless --force is given, and never
the config or the data it trains from.

examples:
  fw train configs/fashion_train.yaml
  fw train configs/fashion_train.yaml train.epochs=20 train.optimizer.lr=0.002
  fw train fashion_train train.validation_fraction=0.1 \\
      'train.callbacks=[{name: early_stopping, monitor: val_accuracy, patience: 3}]'
  fw train ch6_overfit train.optimizer.weight_decay=0.1
  fw train configs/fashion_train.yaml "train.optimizer={name: momentum, lr: 0.05}"
  fw train configs/fashion_train.yaml --resume
  fw train configs/fashion_train.yaml --json --plot curve.png"""


PREDICT_HELP = """\
Classify new inputs with the trained network CONFIG describes: one line per
input (per row for arrays and CSV files) with its class name and probability.
Each input gets the preparation the network was trained with (image size and
colour, /255, the CSV's standardisation), taken from what fw train saved
beside the weights, so the training data is not needed.

INPUT is an image (.png, .jpg, .jpeg, .bmp, .gif), a .npy or .npz of examples
(an .npz's array x), a .csv whose header names the feature columns (in any
order; the label column may be left out), or - for CSV rows on standard input.
For mnist and fashion_mnist an image of any size is prepared as MNIST's digits
were: grey, light on dark, cropped to the ink, 20 px, centred by its mass.

examples:
  fw predict mnist_infer digit.png                  # a digit drawn in any paint program
  fw predict configs/wine.yaml new_wines.csv --top 3
  fw predict configs/flowers.yaml photos/*.jpg --json
  cat rows.csv | fw predict configs/wine.yaml -
  fw predict configs/digits.yaml x.npy weights.path=runs/other.npz"""


CONFIG_HELP = """\
Print the configuration a run would use, as YAML: CONFIG merged over fw's
defaults, KEY=VALUE overrides applied, ${...} interpolations resolved, paths
made absolute, and checked. The output is itself a valid config for `fw run`.
CONFIG is a YAML file's path or a bundled config's name (fw configs lists them).

examples:
  fw config mnist_infer > my.yaml        # a copy of the bundled config to edit
  fw config configs/mnist_infer.yaml
  fw config configs/mnist_infer.yaml model.activation=relu weights=null > relu.yaml"""


CONFIGS_HELP = """\
List the configs that ship with fw, each with its one-line description. Run
one by name from any folder (fw run mnist_infer), or copy one to edit
(fw config mnist_infer > my.yaml). A file at the same path wins over the name."""


SHOW_HELP = """\
Write a PNG grid of images from the config's dataset split with their class
names, like the book's mnist_show.py but saved to a file. With
--misclassified, run the config's network and show only the images it gets
wrong, with the true class (black) and the predicted one (red).

examples:
  fw show configs/mnist_infer.yaml
  fw show configs/fashion_infer.yaml --count 50 --index 100 --out fashion.png
  fw show configs/mnist_infer.yaml --misclassified --out mistakes.png
  fw show configs/mnist_infer.yaml dataset.split=train --count 10

With --filters, draw the network's first convolution's filters instead, each
scaled to its own range (the book's figure 7-24); weights=null draws them
untrained (seeded by model.seed). With --activations, draw a histogram of each
hidden layer's activations on the first 1000 examples of the split (the book's
figures 6-10 to 6-14):
  fw show mnist_cnn --filters --out filters.png
  fw show mnist_cnn --filters weights=null --out filters-random.png
  fw show ch6_init_std001 --activations weights=null --out std001.png

Needs Pillow (pip install Pillow)."""


CONVERT_HELP = """\
Convert a weights file between the formats fw reads: a pickle (.pkl, a dict of
numpy arrays such as the book's sample_weight.pkl), a numpy archive (.npz) and
safetensors (.safetensors). Each suffix names its format. The input is read as
fw run reads it: a pickle through fw's restricted unpickler, so no code in it
runs; an .npz or .safetensors with its header checked first. The output is
written atomically. Then use it with weights: {importer: FORMAT, path: OUT}:
loading an .npz or a .safetensors file never runs code.

examples:
  fw convert-weights ~/.cache/fw/book/sample_weight.pkl sample_weight.npz
  fw convert-weights runs/fashion_cnn/weights.npz weights.safetensors

.safetensors needs the safetensors package (pip install safetensors)."""


CONFIG_ARG = "a YAML config: its path, or a bundled config's name (fw configs lists them), e.g. mnist_infer"


def build_parser(argv=None):
    """The ``fw`` parser; given the command line ``argv``, only its command's parser is built.

    A command's parser is built, and the module with its help imported (and,
    without cached bytecode, compiled), only for that command: ``fw run``
    does not pay for the thirteen. ``fw``, ``fw --help`` and an unknown
    command get every command, for the list and the error.
    """
    parser = argparse.ArgumentParser(
        prog="fw", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    debug = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand without --debug must not reset `fw --debug COMMAND`'s True.
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--version", action="version", version=f"fw {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    named = _command(argv)
    for names, add in COMMANDS:
        if named is None or named in names:
            add(sub, debug)
    parser.commands = sub.choices  # name -> its parser, for usage errors in the subcommand's own words
    return parser


def _command(argv):
    """The command ``argv`` names (its first word that is not an option); None if it names none of fw's, or
    asks for fw's own help first (``fw -h run``)."""
    for word in argv or ():
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word if any(word in names for names, _ in COMMANDS) else None
    return None


def _add_export_command(sub, debug):
    from . import export

    export.add_command(sub, debug, CONFIG_ARG)


def _add_serve_command(sub, debug):
    from . import serve

    serve.add_command(sub, debug, CONFIG_ARG)


def _add_import_onnx_command(sub, debug):
    from . import import_onnx

    import_onnx.add_command(sub, debug)


def _add_compare_command(sub, debug):
    from . import compare

    compare.add_parser(sub, debug)


def _add_sweep_command(sub, debug):
    from . import sweep

    sweep.add_parser(sub, debug)


def _add_run_command(sub, debug):
    run = sub.add_parser(
        "run",
        parents=[debug],
        help="run a config and report its accuracy",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", metavar="CONFIG", help=CONFIG_ARG)
    run.add_argument(
        "overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. batch_size=1000"
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    run.add_argument(
        "--report",
        action="store_true",
        help="also print per-class accuracy and the confusion matrix, with class names "
        "(with --json: the keys class_names, per_class, confusion_matrix)",
    )
    run.set_defaults(func=commands.run)


def _add_predict_command(sub, debug):
    cmd = sub.add_parser(
        "predict",
        parents=[debug],
        help="classify new inputs (images, arrays, CSV rows) with a trained network",
        usage="fw predict [-h] [--debug] [--top K] [--json] CONFIG INPUT... [KEY=VALUE ...]",
        description=PREDICT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("config", metavar="CONFIG", help=CONFIG_ARG)
    cmd.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, .npy/.npz/.csv files or - (stdin), then any config overrides",
    )
    cmd.add_argument("--top", type=int, default=1, metavar="K", help="also list the K likeliest classes (default 1)")
    cmd.add_argument(
        "--json", action="store_true", help="one JSON object per line: input, row, label, class, probability, top"
    )
    cmd.set_defaults(func=commands.predict, overrides=[])


def _add_plugins_command(sub, debug):
    plugins = sub.add_parser(
        "plugins",
        parents=[debug],
        help="list what the plugins provide, and which plugins failed",
        description="List every registered activation, layer, dataset, weight importer and writer, "
        "optimizer, loss, initialiser and callback, with the plugin (and distribution and version) that provides it, "
        "any plugin that failed to load, and any name two plugins both registered.",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of text")
    plugins.set_defaults(func=commands.plugins)


def _add_train_command(sub, debug):
    train = sub.add_parser(
        "train",
        parents=[debug],
        help="learn the weights of a config's network",
        description=TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", metavar="CONFIG", help=CONFIG_ARG)
    train.add_argument(
        "overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=5"
    )
    train.add_argument("--json", action="store_true", help="print one JSON object per epoch instead of text")
    train.add_argument("--plot", metavar="PNG", help="draw the loss and accuracy curves to PNG (needs matplotlib)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint next to weights.path")
    train.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file at weights.path, and files beside it that fw did not write",
    )
    train.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep NAME.ckpt.npz after a finished run (by default it is removed once the weights are written)",
    )
    train.set_defaults(func=commands.train)


def _add_inspection_commands(sub, debug):
    raw = argparse.RawDescriptionHelpFormatter
    config = sub.add_parser(
        "config",
        parents=[debug],
        help="print the fully resolved config a run would use",
        description=CONFIG_HELP,
        formatter_class=raw,
    )
    config.add_argument("config", metavar="CONFIG", help=CONFIG_ARG)
    config.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, as for fw run")
    config.set_defaults(func=commands.config)

    configs = sub.add_parser(
        "configs",
        parents=[debug],
        help="list the bundled configs, which run by name from any folder",
        description=CONFIGS_HELP,
        formatter_class=raw,
    )
    configs.set_defaults(func=commands.configs)

    show = sub.add_parser(
        "show",
        parents=[debug],
        help="save a PNG grid of dataset images (or the misclassified ones)",
        description=SHOW_HELP,
        formatter_class=raw,
    )
    show.add_argument(
        "config", metavar="CONFIG", help=f"{CONFIG_ARG}; its dataset (and, with --misclassified, network)"
    )
    show.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, as for fw run")
    show.add_argument(
        "--count", type=int, default=20, metavar="N", help="how many images to show (default 20, at most 1000)"
    )
    show.add_argument("--index", type=int, default=0, metavar="I", help="start at image I of the split (default 0)")
    show.add_argument("--columns", type=int, default=None, metavar="C", help="images per row (default 10; 8 filters)")
    show.add_argument(
        "--out",
        metavar="PNG",
        default=None,
        help="where to write the PNG (default: DATASET-SPLIT.png, DATASET-SPLIT-misclassified.png, "
        "CONFIG-filters.png or CONFIG-activations.png, in the current folder)",
    )
    show.add_argument(
        "--misclassified", action="store_true", help="run the network and show only the images it gets wrong"
    )
    show.add_argument(
        "--filters", action="store_true", help="draw the first convolution's filters (of the config's weights)"
    )
    show.add_argument(
        "--activations",
        action="store_true",
        help="draw a histogram of each hidden layer's activations on the split's first 1000 examples",
    )
    show.add_argument("--force", action="store_true", help="replace the PNG if it exists")
    show.set_defaults(func=commands.show)

    convert = sub.add_parser(
        "convert-weights",
        parents=[debug],
        help="convert weights between pickle, npz and safetensors",
        description=CONVERT_HELP,
        formatter_class=raw,
    )
    convert.add_argument("src", metavar="IN", help="a weights file: .pkl, .npz or .safetensors, e.g. sample_weight.pkl")
    convert.add_argument("dst", metavar="OUT", help="the file to write: .npz, .safetensors or .pkl")
    convert.add_argument("--force", action="store_true", help="replace OUT if it exists")
    convert.set_defaults(func=commands.convert_weights)


def _version():
    from .. import __version__

    return __version__


#: Each command's names and the function that adds its parser (or parsers), in ``fw --help``'s order.
COMMANDS = (
    (("run",), _add_run_command),
    (("train",), _add_train_command),
    (("predict",), _add_predict_command),
    (("plugins",), _add_plugins_command),
    (("config", "configs", "show", "convert-weights"), _add_inspection_commands),
    (("export",), _add_export_command),
    (("serve",), _add_serve_command),
    (("import-onnx",), _add_import_onnx_command),
    (("compare",), _add_compare_command),
    (("sweep",), _add_sweep_command),
)
