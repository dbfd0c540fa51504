"""What each ``fw`` command does; ``parser.py`` reads the arguments and ``__init__.py`` reports errors.

Imports happen inside the commands: each pays only for what it uses.
"""

import json
import sys
from pathlib import Path


def run(args):
    import time

    from .. import api
    from ..config import load_config
    from ..plugin_system.manager import get_registry

    start = time.perf_counter()
    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    _check_unfinished_training(cfg, args)
    net, dataset = api.build(cfg, registry)  # first: it checks the config against the dataset's shape
    x, t = api.load_dataset(cfg, registry, dataset)
    if not len(x):
        from ..errors import FwError

        raise FwError(
            f"the {cfg.dataset.split} split of dataset '{cfg.dataset.name}' is empty, "
            "so there is no accuracy to measure; "
            "give it examples (for a split of your own data, set dataset.test_fraction, e.g. 0.2)"
        )
    result = api.evaluate(net, x, t, cfg.batch_size)
    total_seconds = time.perf_counter() - start
    rate = result.total / result.seconds if result.seconds else float("inf")
    report = _class_report(dataset, t, result.predicted) if getattr(args, "report", False) else None
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
            f"Time: {result.seconds * 1000:.1f} ms to classify ({rate:,.0f} {_noun(dataset)}/s), "
            f"{total_seconds:.2f} s in all with loading"
        )
        if report:
            print()
            print(report.to_text())
    return 0


def train(args):
    from ..config import load_config
    from ..plugin_system.manager import get_registry
    from ..safeio.files import OutputLock, ensure_writable_dir, no_empty_new_folders
    from ..training import record
    from ..training.trainer import Trainer
    from ..training.user_files import check, in_use

    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    trainer = Trainer(cfg, registry)
    _refuse_while_training(trainer.output.path)
    trainer.output.check(overwrite=args.force, resume=args.resume)
    trainer.config_path, trainer.force = args.config, args.force  # what csv_logger and the record never replace
    check(trainer.output.path, "weights.path", used=in_use(cfg, args.config), force=True)  # --force: not the data
    record.check(cfg, args.config, args.force)
    if args.plot:
        from .plot import check_plot_available

        check_plot_available(args.plot, overwrite=args.force, used=in_use(cfg, args.config))
    with no_empty_new_folders(trainer.output.path.parent):  # a run that writes nothing leaves no folder
        ensure_writable_dir(trainer.output.path.parent, purpose="for weights.path")
        with OutputLock(trainer.output.path, "fw train's weights"):
            trainer.output.check(overwrite=args.force, resume=args.resume)  # again, now that no one else can write
            return _train(args, cfg, registry, trainer)


def _train(args, cfg, registry, trainer):
    import shlex

    from ..training import record
    from ..training.validation import load_training_data
    from .train_output import closing_lines, output

    ckpt = trainer.output.checkpoint_path
    command = shlex.join([args.config, *args.overrides])
    if args.resume:
        done = trainer.resume()
    (x, t), (x_test, t_test) = load_training_data(cfg, registry, trainer.dataset)
    if args.resume:
        trainer.check_data(x, t)  # other examples than the checkpoint's: one line, before any other
        print(f"resuming {ckpt} after epoch {done} of {cfg.train.epochs}", file=sys.stderr)
    epochs = cfg.train.epochs
    shown = output(args.json)  # the progress bar, then the epoch lines or --json
    try:
        history = trainer.fit(x, t, x_test, t_test, callbacks=shown)
    except KeyboardInterrupt:
        shown[0].close()  # the progress line, half drawn
        if trainer.history:
            print(
                f"fw: interrupted; epoch {trainer.history[-1].epoch} of {epochs} is saved in {ckpt}; "
                f"continue with: fw train {command} --resume",
                file=sys.stderr,
            )
        else:
            print("fw: interrupted before the first epoch ended; nothing was saved", file=sys.stderr)
        return 130
    path = trainer.output.write(trainer.net, trainer.dataset)
    if not args.keep_checkpoint:
        ckpt.unlink(missing_ok=True)  # the weights hold everything fw run needs
    record.write(cfg, history, command, config_path=args.config, force=args.force)
    if args.plot:
        from .plot import plot_history

        plot_history(history, args.plot, title=f"fw train {args.config}")
    out = sys.stderr if args.json else sys.stdout
    if args.plot:
        print(f"Learning curves written to {args.plot}", file=out)
    closing_lines(trainer, epochs, out)
    if hasattr(trainer.dataset, "preparation_summary"):  # a table: the preparation fitted, saved with the weights
        print(trainer.dataset.preparation_summary(), file=out)
    print(f"Weights written to {path}. Evaluate them with:", file=out)
    print(f"  fw run {command}", file=out)
    return 0


def predict(args):
    from .predict import predict

    return predict(args, _report_failures)


def plugins(args):
    from ..plugin_system.manager import get_registry
    from ..plugin_system.registry import KINDS

    registry = get_registry().load_all()

    def others(kind, name):
        """The plugins besides the listed one that registered ``name``: it is unusable until one goes."""
        return registry.ambiguous.get((KINDS[kind].table, name), [])[1:]

    if args.json:
        out = {kind: [] for kind in KINDS}
        for kind in KINDS:
            for name in registry.listed(kind):
                entry = {"name": name, **_provider_dict(registry.providers[kind][name])}
                if others(kind, name):
                    entry["ambiguous_with"] = [_provider_dict(p) for p in others(kind, name)]
                out[kind].append(entry)
        out["failed"] = [{**_provider_dict(p), "error": msg} for p, msg in registry.failures]
        out["name_clashes"] = [{**_provider_dict(p), "error": msg} for p, msg in registry.clashes]
        print(json.dumps(out, indent=2))
        return 0
    for kind in KINDS:
        print(f"{kind.replace('_', ' ')}:")
        names = registry.listed(kind)
        width = max(map(len, names), default=0)
        for name in names:
            clash = others(kind, name)
            clash = (
                f"  AMBIGUOUS, also by {', '.join(map(str, clash))}: unusable until one is uninstalled" if clash else ""
            )
            print(f"  {name:<{width}}  {registry.providers[kind][name]}{clash}")
        if not names:
            print("  (none)")
    if registry.failures:
        print("failed plugins (skipped):")
        for provider, msg in registry.failures:
            print(f"  {provider}: {msg}")
    if registry.clashes:
        print("name clashes (only these names were refused):")
        for _, msg in registry.clashes:
            print(f"  {msg}")
    return 0


def config(args):
    import warnings

    from omegaconf import OmegaConf

    from ..config import load_config
    from ..config.assemble import check_names, expanded_layers
    from ..errors import FwWarning
    from ..plugin_system.manager import get_registry

    # A minimal config shows its defaults, even before it names its weights.
    cfg = load_config(args.config, args.overrides, require_weights=False)
    check_names(cfg, get_registry(cfg.plugins))
    if cfg.model.layers is None:  # the shorthand, written out: a start for editing the long form
        cfg.model.layers = expanded_layers(cfg)
        cfg.model.sizes = cfg.model.activation = cfg.model.output_activation = None
    if cfg.weights is not None and cfg.weights.path is None and cfg.weights.url is None:
        warnings.warn(
            "weights.path and weights.url are both null: fw run needs one of them (weights.path=FILE), "
            "or weights=null for random weights",
            FwWarning,
            stacklevel=2,
        )
    print(f"# fw config {' '.join([args.config, *args.overrides])}")
    print(OmegaConf.to_yaml(cfg), end="")
    return 0


def configs(args):
    from ..data import bundled

    names = bundled.config_names()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:<{width}}  {bundled.config_description(name)}")
    print(
        f"run one: fw run NAME; copy one to edit: fw config NAME > my.yaml (from {bundled.configs_dir()})",
        file=sys.stderr,
    )
    return 0


def show(args):
    from pathlib import Path

    from .. import api
    from ..config import load_config
    from ..config.datasets import make_dataset
    from ..errors import FwError
    from ..plugin_system.manager import get_registry
    from ..safeio.files import check_writable
    from .show import captions, network_picture, pillow, render_grid, rows_text, save_png, select

    picture = "filters" if args.filters else "activations" if args.activations else None
    if args.filters and args.activations:
        raise FwError(
            "--filters and --activations draw different pictures; give one of them (run fw show twice for both)"
        )
    if picture and args.misclassified:
        raise FwError(f"--{picture} draws the network, --misclassified the images it gets wrong; give one of them")
    if not 1 <= args.count <= 1000:
        raise FwError(f"--count must be between 1 and 1000, got {args.count}")
    columns = args.columns if args.columns is not None else 8 if picture else 10
    if columns < 1:
        raise FwError(f"--columns must be at least 1, got {columns}")
    cfg = load_config(args.config, args.overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    if picture:
        name = Path(args.config).stem
        out = Path(args.out) if args.out else Path(f"{name}-{picture}.png")
        if out.suffix.lower() != ".png":
            raise FwError(f"--out {out}: fw show writes PNG files; give a name ending in .png")
        if out.parent.is_dir():  # a missing folder is save_png's one line
            check_writable(out, "--out", args.force)
        pillow()
        sheet, what = network_picture(cfg, registry, picture, name=name, columns=columns)
        save_png(sheet, out)
        print(f"wrote {out} ({sheet.width}x{sheet.height} px): {what}")
        return 0
    d = cfg.dataset
    net, dataset = api.build(cfg, registry) if args.misclassified else (None, make_dataset(cfg, registry))
    table = len(dataset.example_shape()) == 1
    if table and args.out:
        raise FwError(
            f"--out {args.out}: fw show draws images, "
            f"and dataset '{d.name}' holds table rows, which it prints; drop --out"
        )
    if not table:
        pillow()  # fail before reading the images if Pillow is missing
    suffix = "-misclassified" if args.misclassified else ""
    out = Path(args.out) if args.out else Path(f"{d.name}-{d.split}{suffix}.png")
    if out.suffix.lower() != ".png":
        raise FwError(f"--out {out}: fw show writes PNG files; give a name ending in .png")
    if out.parent.is_dir():  # a missing folder is save_png's one line
        check_writable(out, "--out", args.force)  # before any work: fw replaces no file unasked
    images, labels = dataset.examples(d.split, d.limit)
    labels = labels.astype(int)
    where, noun = f"{d.name} {d.split}", "rows" if table else "images"
    predicted = None
    if args.misclassified:
        predicted = net.classify(dataset.prepare(images, normalize=d.normalize, flatten=d.flatten))
        wrong = predicted != labels
        picked = select(len(images), args.index, args.count, wrong, noun)
        title = (
            f"{where}: {len(picked)} of the {int(wrong.sum())} misclassified {noun} "
            f"(accuracy {1 - wrong.mean():.4f}), from index {args.index}"
        )
        if not len(picked):
            print(
                f"no misclassified {noun} in {where} from index {args.index} on; "
                f"nothing {'shown' if table else 'written'}"
            )
            return 0
    else:
        picked = select(len(images), args.index, args.count, noun=noun)
        title = f"{where}: {noun} {picked[0]} to {picked[-1]} of {len(images)}"
    if table:
        if hasattr(dataset, "preparation_summary"):
            print(dataset.preparation_summary())
        print(title)
        print(rows_text(dataset, images, labels, picked, predicted))
        return 0
    sheet = render_grid(images[picked], captions(dataset, labels, predicted, picked), title, columns=columns)
    save_png(sheet, out)
    print(f"wrote {out} ({sheet.width}x{sheet.height} px): {title}")
    return 0


def convert_weights(args):
    from ..data.weights import _sizes_hint as sizes_hint
    from .convert import convert

    result = convert(args.src, args.dst, force=args.force)
    arrays = result["arrays"]
    shapes = ", ".join(f"{k} {tuple(a.shape)} {a.dtype}" for k, a in sorted(arrays.items()))
    print(f"wrote {args.dst}: {shapes}")
    print(f"sha256: {result['sha256']}")
    print(f"use it with: weights: {{importer: {result['importer']}, path: {args.dst}}}{sizes_hint(arrays)}")
    return 0


def _noun(dataset):
    """What the dataset's examples are called: a table's are rows."""
    return "rows" if len(dataset.example_shape()) == 1 else "images"


def _class_names(dataset):
    return [dataset.class_name(i) for i in range(dataset.num_classes)]


def _class_report(dataset, t, predicted):
    from .report import ClassReport

    return ClassReport.from_labels(t, predicted, _class_names(dataset))


def _provider_dict(p):
    return {"plugin": p.plugin, "distribution": p.dist, "version": p.version}


def _check_unfinished_training(cfg, args):
    """An interrupted fw train left a checkpoint: say so, with the exact command that finishes it."""
    import shlex
    import warnings

    from ..errors import FwError, FwWarning
    from ..training.checkpoint_path import unfinished

    if cfg.weights is not None and cfg.weights.path:
        _refuse_while_training(Path(cfg.weights.path).expanduser())
    checkpoint = unfinished(cfg.weights)
    if checkpoint is None:
        return
    path = checkpoint.with_name(checkpoint.name.removesuffix(".ckpt.npz") + Path(cfg.weights.path).suffix)
    resume = f"fw train {shlex.join([args.config, *args.overrides])} --resume"
    if not path.is_file():
        raise FwError(
            f"weights file not found: {path} (weights.path), "
            f"but a training checkpoint is there: finish the training with {resume}"
        )
    warnings.warn(
        f"{checkpoint} is newer than {path}: a training run did not finish; "
        f"{resume} completes it (these are the older weights)",
        FwWarning,
        stacklevel=2,
    )


def _refuse_while_training(weights_path):
    """A training run holds these weights' lock: say that, and only that (not --force, not --resume)."""
    from ..errors import FwError
    from ..safeio.files import OutputLock

    if pid := OutputLock.holder(weights_path):
        raise FwError(f"a training run is in progress for {weights_path} (fw train, pid {pid}); wait for it to finish")


def _report_failures(registry):
    """Warn of plugins that failed to load or lost a name: those so far, and those a later lookup loads."""
    for provider, msg in registry.failures:
        _warn_plugin_problem(provider, msg, clash=False)
    for provider, msg in registry.clashes:
        _warn_plugin_problem(provider, msg, clash=True)
    registry.on_problem = _warn_plugin_problem


def _warn_plugin_problem(provider, msg, clash):
    if clash:
        print(f"fw: warning: {msg} (see fw plugins)", file=sys.stderr)
    else:
        print(f"fw: warning: {provider} failed to load and was skipped: {msg}", file=sys.stderr)


def route_warnings(debug=False):
    """Show every warning as one 'fw: warning:' line, not Python's two (file:line, then the source line):
    fw's own as they are worded, others (numpy's overflow in a plugin's layer) with their kind and origin.
    ``debug`` (--debug) keeps Python's form for the others."""
    import warnings

    from ..errors import FwWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FwWarning):
            print(f"fw: warning: {message}", file=sys.stderr)
        elif debug:
            default(message, category, filename, lineno, file, line)
        else:
            print(f"fw: warning: {category.__name__}: {message} ({filename}:{lineno})", file=sys.stderr)

    warnings.showwarning = show
