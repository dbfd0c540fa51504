"""The ``fw`` command. Heavy imports happen inside the commands, so --help is fast."""

import argparse
import json
import sys

DESCRIPTION = """\
fw runs the neural networks that YAML configs describe. The book's chapter-3
network ("Deep Learning from Scratch") is configs/mnist_infer.yaml.

Data and weights are read from $FW_DATA_DIR (default ~/.cache/fw) and
downloaded there, with checksums, when missing.
Set FW_DISABLE_PLUGIN_AUTOLOAD=1 to skip installed third-party plugins."""

RUN_HELP = """\
Load CONFIG, apply KEY=VALUE overrides (omegaconf dotlist syntax), build the
network, classify the dataset split and print the accuracy, correct/total,
and the time taken.

examples:
  fw run configs/mnist_infer.yaml
  fw run configs/mnist_infer.yaml batch_size=1000
  fw run configs/mnist_infer.yaml model.sizes=[784,100,100,10] weights=null
  fw run configs/mnist_infer.yaml dataset.root=/data/mnist weights.path=/data/w.pkl
  fw run configs/mnist_infer.yaml --json
  fw run configs/fashion_infer.yaml --report   # per-class accuracy, confusion matrix"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fw", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    debug = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand without --debug must not reset `fw --debug COMMAND`'s True.
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--version", action="version", version=f"fw {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        parents=[debug],
        help="run a config and report its accuracy",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", metavar="CONFIG", help="path of a YAML config, e.g. configs/mnist_infer.yaml")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. batch_size=1000")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    run.add_argument(
        "--report",
        action="store_true",
        help="also print per-class accuracy and the confusion matrix, with class names "
        "(with --json: the keys class_names, per_class, confusion_matrix)",
    )
    run.set_defaults(func=cmd_run)

    plugins = sub.add_parser(
        "plugins",
        parents=[debug],
        help="list activations, datasets and importers and the plugins providing them",
        description="List every registered activation, dataset and weight importer, with the plugin "
        "(and distribution and version) that provides it, and any plugin that failed to load.",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of text")
    plugins.set_defaults(func=cmd_plugins)
    _add_inspection_commands(sub, debug)
    _add_train_command(sub, debug)
    return parser


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may follow options too: `fw show CONFIG --count 5 dataset.split=train`.
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
        "=" in e and not e.startswith("-") for e in extra
    ):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return 2
    from .errors import FwError

    _route_warnings()
    try:
        return args.func(args)
    except FwError as e:
        if args.debug:
            raise
        print(f"fw: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `fw plugins | head`: the reader has gone. Point stdout at devnull so the
        # interpreter's final flush stays quiet too (the recipe in Python's docs).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if args.debug:
            raise
        text = " ".join(str(e).split())
        print(f"fw: error: {type(e).__name__}: {text} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


def cmd_run(args):
    import time

    from . import api
    from .config import load_config
    from .plugins import get_registry

    start = time.perf_counter()
    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    x, t = api.load_dataset(cfg, registry)  # first: it checks model.sizes against the data
    net = api.build_network(cfg, registry)
    result = api.evaluate(net, x, t, cfg.batch_size)
    total_seconds = time.perf_counter() - start
    rate = result.total / result.seconds if result.seconds else float("inf")
    report = _class_report(cfg, registry, net, x, t) if getattr(args, "report", False) else None
    if args.json:
        print(
            json.dumps(
                {
                    "accuracy": result.accuracy,
                    "correct": result.correct,
                    "total": result.total,
                    "seconds": result.seconds,
                    "total_seconds": total_seconds,
                    "images_per_second": rate,
                    "config": args.config,
                    "overrides": args.overrides,
                    **(report.to_dict() if report else {}),
                }
            )
        )
    else:
        print(f"Accuracy: {result.accuracy:.4f} ({result.correct}/{result.total} correct)")
        print(
            f"Time: {result.seconds * 1000:.1f} ms to classify ({rate:,.0f} images/s), "
            f"{total_seconds:.2f} s in all with loading"
        )
        if report:
            print()
            print(report.to_text())
    return 0


def cmd_plugins(args):
    from .plugins import get_registry
    from .registry import KINDS

    registry = get_registry()
    if args.json:
        out = {
            kind: [
                {"name": name, **_provider_dict(registry.providers[kind][name])} for name in registry.names(kind)
            ]
            for kind in KINDS
        }
        out["failed"] = [{**_provider_dict(p), "error": msg} for p, msg in registry.failures]
        print(json.dumps(out, indent=2))
        return 0
    for kind in KINDS:
        print(f"{kind.replace('_', ' ')}:")
        names = registry.names(kind)
        width = max(map(len, names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.providers[kind][name]}")
        if not names:
            print("  (none)")
    if registry.failures:
        print("failed plugins:")
        for provider, msg in registry.failures:
            print(f"  {provider}: {msg}")
    return 0


CONFIG_HELP = """\
Print the configuration a run would use, as YAML: CONFIG merged over fw's
defaults, KEY=VALUE overrides applied, ${...} interpolations resolved and
checked. The output is itself a valid config for `fw run`.

examples:
  fw config configs/mnist_infer.yaml
  fw config configs/mnist_infer.yaml model.activation=relu weights=null > relu.yaml"""

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

Needs Pillow (pip install Pillow)."""

CONVERT_HELP = """\
Convert a book-style weights pickle (a dict of numpy arrays such as
sample_weight.pkl) to a numpy .npz archive. The pickle is read with fw's
restricted unpickler, so no code in it runs; the .npz is written atomically.
Then use it with weights: {importer: npz, path: OUT.npz}: loading an .npz
never runs code (numpy.load with allow_pickle=False).

example:
  fw convert-weights ~/.cache/fw/book/sample_weight.pkl sample_weight.npz"""


def _add_inspection_commands(sub, debug):
    raw = argparse.RawDescriptionHelpFormatter
    config = sub.add_parser(
        "config", parents=[debug], help="print the fully resolved config a run would use",
        description=CONFIG_HELP, formatter_class=raw,
    )
    config.add_argument("config", metavar="CONFIG", help="path of a YAML config")
    config.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, as for fw run")
    config.set_defaults(func=cmd_config)

    show = sub.add_parser(
        "show", parents=[debug], help="save a PNG grid of dataset images (or the misclassified ones)",
        description=SHOW_HELP, formatter_class=raw,
    )
    show.add_argument("config", metavar="CONFIG", help="path of a YAML config; its dataset (and, with --misclassified, network)")
    show.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, as for fw run")
    show.add_argument("--count", type=int, default=20, metavar="N", help="how many images to show (default 20, at most 1000)")
    show.add_argument("--index", type=int, default=0, metavar="I", help="start at image I of the split (default 0)")
    show.add_argument("--columns", type=int, default=10, metavar="C", help="images per row (default 10)")
    show.add_argument(
        "--out", metavar="PNG", default=None,
        help="where to write the PNG (default: DATASET-SPLIT.png, or DATASET-SPLIT-misclassified.png, in the current folder)",
    )
    show.add_argument("--misclassified", action="store_true", help="run the network and show only the images it gets wrong")
    show.set_defaults(func=cmd_show)

    convert = sub.add_parser(
        "convert-weights", parents=[debug], help="convert a weights .pkl to a safe .npz",
        description=CONVERT_HELP, formatter_class=raw,
    )
    convert.add_argument("src", metavar="IN.pkl", help="a pickled dict of arrays, e.g. sample_weight.pkl")
    convert.add_argument("dst", metavar="OUT.npz", help="the .npz file to write")
    convert.add_argument("--force", action="store_true", help="replace OUT.npz if it exists")
    convert.set_defaults(func=cmd_convert_weights)


TRAIN_HELP = """\
Train the network CONFIG describes on its dataset's train split, report on
the test split after every epoch, and write the weights to weights.path
(npz by default; weights.format=pickle writes the book's W1, b1, ... pickle).
fw run CONFIG then evaluates them with no conversion.

After each epoch a checkpoint is written atomically next to the weights
(NAME.ckpt.npz). Ctrl-C keeps the last complete epoch; --resume continues it.
The same config and train.seed give bit-identical weights on one machine.

examples:
  fw train configs/fashion_train.yaml
  fw train configs/fashion_train.yaml train.epochs=20 train.optimizer.lr=0.002
  fw train configs/fashion_train.yaml "train.optimizer={name: momentum, lr: 0.05}"
  fw train configs/fashion_train.yaml --resume
  fw train configs/fashion_train.yaml --json --plot curve.png"""


def _add_train_command(sub, debug):
    train = sub.add_parser(
        "train", parents=[debug], help="learn the weights of a config's network",
        description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", metavar="CONFIG", help="path of a YAML config, e.g. configs/fashion_train.yaml")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=5")
    train.add_argument("--json", action="store_true", help="print one JSON object per epoch instead of text")
    train.add_argument("--plot", metavar="PNG", help="draw the loss and accuracy curves to PNG (needs matplotlib)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint next to weights.path")
    train.add_argument("--force", action="store_true", help="replace an existing file at weights.path")
    train.set_defaults(func=cmd_train)


def cmd_train(args):
    import dataclasses
    import shlex

    from .config import load_config
    from .plugins import get_registry
    from .progress import ProgressBar
    from .train import Trainer, train_split_data

    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    trainer = Trainer(cfg, registry)
    trainer.check_output(overwrite=args.force or args.resume)
    if args.plot:
        from .plot import check_plot_available

        check_plot_available(args.plot)
    ckpt = trainer.checkpoint_path
    if args.resume:
        done = trainer.resume()
        print(f"resuming {ckpt} after epoch {done} of {cfg.train.epochs}", file=sys.stderr)
    elif ckpt.exists():
        print(f"fw: note: starting over; the checkpoint {ckpt} will be replaced (--resume continues it)", file=sys.stderr)
    (x, t), (x_test, t_test) = train_split_data(cfg, registry)
    bar = ProgressBar()
    epochs = cfg.train.epochs

    def on_epoch(e):
        if args.json:
            print(json.dumps(dataclasses.asdict(e)), flush=True)
        else:
            print(
                f"epoch {e.epoch:>{len(str(epochs))}}/{epochs}  loss {e.train_loss:.4f}  "
                f"train acc {e.train_accuracy:.4f}  test acc {e.test_accuracy:.4f}  {e.seconds:.2f} s",
                flush=True,
            )

    try:
        history = trainer.fit(
            x, t, x_test, t_test, on_epoch=on_epoch, progress=lambda ep, done, total: bar(f"epoch {ep}/{epochs}", done, total)
        )
    except KeyboardInterrupt:
        bar.clear()
        if trainer.history:
            print(
                f"fw: interrupted; epoch {trainer.history[-1].epoch} of {epochs} is saved in {ckpt}; "
                f"continue with: fw train {shlex.join([args.config, *args.overrides])} --resume",
                file=sys.stderr,
            )
        else:
            print("fw: interrupted before the first epoch ended; nothing was saved", file=sys.stderr)
        return 130
    path = trainer.save_weights()
    if args.plot:
        from .plot import plot_history

        plot_history(history, args.plot, title=f"fw train {args.config}")
    out = sys.stderr if args.json else sys.stdout
    final = history[-1] if history else None
    if final:
        print(f"Test accuracy after epoch {final.epoch}: {final.test_accuracy:.4f}", file=out)
    print(f"Weights written to {path}. Evaluate them with:", file=out)
    print(f"  fw run {shlex.join([args.config, *args.overrides])}", file=out)
    return 0


def _dataset(cfg, registry):
    return registry.get("datasets", cfg.dataset.name, "dataset.name")(cfg.dataset.root)


def _class_names(dataset):
    return [dataset.class_name(i) for i in range(dataset.num_classes)]


def _class_report(cfg, registry, net, x, t):
    from .report import ClassReport, predict_labels

    return ClassReport.from_labels(t, predict_labels(net, x, cfg.batch_size), _class_names(_dataset(cfg, registry)))


def cmd_config(args):
    from omegaconf import OmegaConf

    from .config import load_config

    cfg = load_config(args.config, args.overrides)
    print(f"# fw config {' '.join([args.config, *args.overrides])}")
    print(OmegaConf.to_yaml(cfg), end="")
    return 0


def cmd_show(args):
    from pathlib import Path

    from . import api
    from .config import load_config
    from .errors import FwError
    from .plugins import get_registry
    from .show import BLACK, GREY, RED, pillow, render_grid, save_png, select

    if not 1 <= args.count <= 1000:
        raise FwError(f"--count must be between 1 and 1000, got {args.count}")
    if args.columns < 1:
        raise FwError(f"--columns must be at least 1, got {args.columns}")
    pillow()  # fail before any work if Pillow is missing
    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    d = cfg.dataset
    suffix = "-misclassified" if args.misclassified else ""
    out = Path(args.out) if args.out else Path(f"{d.name}-{d.split}{suffix}.png")
    if out.suffix.lower() != ".png":
        raise FwError(f"--out {out}: fw show writes PNG files; give a name ending in .png")
    dataset = _dataset(cfg, registry)
    images, labels = dataset.load_raw(d.split)
    labels = labels.astype(int)
    where = f"{d.name} {d.split}"
    if args.misclassified:
        from .report import predict_labels

        net = api.build_network(cfg, registry)
        x, _ = api.load_dataset(cfg, registry)
        predicted = predict_labels(net, x, cfg.batch_size)
        wrong = predicted != labels
        picked = select(len(images), args.index, args.count, wrong)
        captions = [
            [(f"#{i}", GREY), (f"true: {dataset.class_name(labels[i])}", BLACK),
             (f"pred: {dataset.class_name(predicted[i])}", RED)]
            for i in picked
        ]
        title = (
            f"{where}: {len(picked)} of the {int(wrong.sum())} misclassified images "
            f"(accuracy {1 - wrong.mean():.4f}), from index {args.index}"
        )
        if not len(picked):
            print(f"no misclassified images in {where} from index {args.index} on; nothing written")
            return 0
    else:
        picked = select(len(images), args.index, args.count)
        captions = [[(f"#{i}", GREY), (dataset.class_name(labels[i]), BLACK)] for i in picked]
        title = f"{where}: images {picked[0]} to {picked[-1]} of {len(images)}"
    sheet = render_grid(images[picked], captions, title, columns=args.columns)
    save_png(sheet, out)
    print(f"wrote {out} ({sheet.width}x{sheet.height} px): {title}")
    return 0


def cmd_convert_weights(args):
    from .convert import pickle_to_npz
    from .weights import _sizes_hint as sizes_hint

    result = pickle_to_npz(args.src, args.dst, force=args.force)
    arrays = result["arrays"]
    shapes = ", ".join(f"{k} {tuple(a.shape)} {a.dtype}" for k, a in sorted(arrays.items()))
    print(f"wrote {args.dst}: {shapes}")
    print(f"sha256: {result['sha256']}")
    print(f"use it with: weights: {{importer: npz, path: {args.dst}}}{sizes_hint(arrays)}")
    return 0


def _provider_dict(p):
    return {"plugin": p.plugin, "distribution": p.dist, "version": p.version}


def _report_failures(registry):
    for provider, msg in registry.failures:
        print(f"fw: warning: {provider} failed to load and was skipped: {msg}", file=sys.stderr)


def _route_warnings():
    """Show fw's warnings as one 'fw: warning:' line, not Python's file:line form."""
    import warnings

    from .errors import FwWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FwWarning):
            print(f"fw: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _version():
    from . import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
