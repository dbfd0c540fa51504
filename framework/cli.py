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
  fw run configs/mnist_infer.yaml --json"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fw", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", help="show the full traceback on errors")
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
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
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
    net = api.build_network(cfg, registry)
    x, t = api.load_dataset(cfg, registry)
    result = api.evaluate(net, x, t, cfg.batch_size)
    total_seconds = time.perf_counter() - start
    rate = result.total / result.seconds if result.seconds else float("inf")
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
                }
            )
        )
    else:
        print(f"Accuracy: {result.accuracy:.4f} ({result.correct}/{result.total} correct)")
        print(
            f"Time: {result.seconds * 1000:.1f} ms to classify ({rate:,.0f} images/s), "
            f"{total_seconds:.2f} s in all with loading"
        )
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
