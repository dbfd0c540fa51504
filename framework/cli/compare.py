"""``fw compare``: training runs side by side, as a table of final and best values and as curves in one figure.

A run is the record a finished ``fw train`` leaves beside its weights
(``NAME.config.yaml`` and ``NAME.metrics.jsonl``; ``training/record.py``),
named by its folder, one of its files, or the config that trained it. Runs are
labelled by the config keys in which they differ.
"""

import json
import math
import sys
import textwrap
from collections import Counter
from functools import reduce
from pathlib import Path

HELP = """\
Compare finished training runs: print their final and best values side by
side, and draw their curves in one figure (one line per run, labelled by the
config keys in which the runs differ).

A RUN_OR_CONFIG is a run's folder (where fw train wrote its weights w.npz
and their record, w.config.yaml and w.metrics.jsonl), one of those record
files, or the config that trained it (a path or a bundled config's name), or
a pattern of bundled names in quotes.

examples:
  fw train ch6_optimizer_sgd && fw train ch6_optimizer_adam
  fw compare ch6_optimizer_sgd ch6_optimizer_adam --out optimizers.png
  fw compare 'ch6_optimizer_*' --metric train_loss
  fw compare runs/a runs/b --json

The figure needs matplotlib (pip install matplotlib)."""

#: Keys that say where a run is, not what it trained.
IGNORED = ("weights", "dataset.root", "sweep", "batch_size")


def add_parser(sub, debug):
    import argparse

    p = sub.add_parser(
        "compare",
        parents=[debug],
        help="compare training runs: a table of final and best values, and their curves",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN_OR_CONFIG", help="a run's folder, or the config that trained it")
    p.add_argument(
        "--metric",
        metavar="M",
        help="the metric to compare (default: val_accuracy when every run has it, else test_accuracy)",
    )
    p.add_argument(
        "--out",
        metavar="PNG",
        help="where to draw the curves (default: compare-METRIC.png in the current "
        "folder; with --json, none unless given)",
    )
    p.add_argument("--json", action="store_true", help="print the table as one JSON object")
    p.add_argument("--force", action="store_true", help="replace the PNG if it exists")
    p.set_defaults(func=compare)


def compare(args):
    from ..errors import FwError
    from ..safeio.files import check_writable

    runs = [find_run(name) for name in expand(args.runs)]
    metric = args.metric or ("val_accuracy" if all(_has(r, "val_accuracy") for r in runs) else "test_accuracy")
    missing = [str(r.folder) for r in runs if not _has(r, metric)]
    if missing:
        raise FwError(f"--metric {metric}: not in the run record of {', '.join(missing)}; {_metrics_hint(runs)}")
    out = Path(args.out) if args.out else None if args.json else Path(f"compare-{metric}.png")  # --json: no PNG unasked
    if out is not None:
        if out.suffix.lower() != ".png":
            raise FwError(f"--out {out}: fw compare draws PNG files; give a name ending in .png")
        check_writable(out, "--out", args.force)
    prefix, labels = run_labels(runs)
    table = summary(runs, labels, metric, prefix)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print(to_text(table))
    drawn = draw(runs, labels, metric, prefix, out, required=bool(args.out)) if out else None
    if drawn:
        print(f"curves written to {drawn}", file=sys.stderr if args.json else sys.stdout)
    return 0


# -- finding the runs --------------------------------------------------------------------


def expand(names):
    """Each name, with a quoted pattern (``'ch6_optimizer_*'``)
    expanded over folders and YAML files here, else bundled configs."""
    import fnmatch

    from ..data import bundled
    from ..errors import FwError

    out = []
    for name in names:
        if any(c in name for c in "*?[") and not Path(name).exists():
            found = [p for p in Path().glob(name) if p.is_dir() or p.suffix.lower() in (".yaml", ".yml")]
            matches = sorted(map(str, found)) or fnmatch.filter(bundled.config_names(), name)
            if not matches:
                raise FwError(f"'{name}' matches no file here and no bundled config (fw configs lists them)")
            out += matches
        else:
            out.append(name)
    return out


def find_run(name):
    """The run record that ``name`` (a run's folder, one of its two files, or a config) stands for."""
    from ..config import load_config
    from ..errors import FwError
    from ..training import record

    path = Path(name)
    if path.is_dir():
        return record.read(*record.in_folder(path))
    if path.is_file() and (pair := record.of_file(path)):
        return record.read(*pair)
    cfg = load_config(name)
    pair = record.of_weights(cfg.weights.path)
    if not pair:
        where = record.paths(cfg.weights.path)[0].parent
        raise FwError(f"{name} has no finished run: no run record in {where}; train it first with: fw train {name}")
    return record.read(*pair)


# -- labels --------------------------------------------------------------------------------


def run_labels(runs):
    """``(common prefix, [label per run])``: each run by the config keys in which the runs differ.

    Below the prefix the runs share, a key is named by its last part when no
    other key ends the same (``lr``, not ``train.optimizer.lr``), else by as
    many parts as tell it apart (``model.seed``, ``train.seed``).
    """
    per_run = [{} for _ in runs]
    _differ([r.config for r in runs], "", per_run)
    keys = list(dict.fromkeys(k for d in per_run for k in d))
    prefix = _common_prefix(keys)
    names = _short_keys({k: k[len(prefix) :].lstrip(".") for k in keys})
    labels = []
    for run, diffs in zip(runs, per_run):
        parts = [f"{names[k]}{v}" for k, v in diffs.items()]
        labels.append(", ".join(parts) or run.folder.absolute().name)
    if len(set(labels)) < len(labels):  # the same settings twice: tell them apart by folder
        labels = [f"{label} ({run.folder.absolute().name})" for label, run in zip(labels, runs)]
    return prefix, labels


_MISSING = object()


def _differ(values, key, out):
    """Fill ``out[i][key] = "=value"`` (or `` with ...``) for every key whose values differ between the runs."""
    if key in IGNORED or (key.startswith("train.callbacks") and key.endswith(".path")):
        return
    if all(isinstance(v, dict) for v in values):
        for k in dict.fromkeys(k for v in values for k in v):
            _differ([v.get(k, _MISSING) for v in values], f"{key}.{k}" if key else k, out)
    elif all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        for i in range(len(values[0])):
            _differ([v[i] for v in values], f"{key}[{i}]", out)
    elif all(isinstance(v, list) for v in values):
        _differ_lists(values, key, out)
    elif any(v != values[0] for v in values):
        for label, v in zip(out, values):
            if v is not _MISSING:
                label[key] = f"={_short(v)}"


def _differ_lists(values, key, out):
    """Lists of different lengths (``model.layers`` with and without batch_norm): the entries that set each apart."""
    counts = [Counter(_short(e) for e in v) for v in values]
    common = reduce(lambda a, b: a & b, counts)
    extras = [c - common for c in counts]
    every = sorted({e for c in extras for e in c})
    for label, extra in zip(out, extras):
        if extra:
            label[key] = " with " + ", ".join(f"{e}×{n}" if n > 1 else e for e, n in extra.items())
        else:
            label[key] = " without " + ", ".join(every)


def _short(value):
    """A config value in a few characters: ``dropout(rate=0.2)`` for ``{name: dropout, rate: 0.2}``."""
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        args = ",".join(f"{k}={_short(v)}" for k, v in value.items() if k != "name")
        return f"{value['name']}({args})" if args else value["name"]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"  # lr=0.004044, not 0.004043878009515107
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return "..." + value[-(MAX_VALUE - 3) :]  # a path's end says the most
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


#: The most characters of a string value in a label.
MAX_VALUE = 24


def _short_keys(keys):
    """``{key: its shortest dotted ending that no other key has}``, from ``{key: its name below the prefix}``."""
    split = {k: name.split(".") for k, name in keys.items()}
    names = {}
    for k, parts in split.items():
        n = 1
        while n < len(parts) and any(p[-n:] == parts[-n:] for o, p in split.items() if o != k):
            n += 1
        names[k] = ".".join(parts[-n:])
    return names


def _common_prefix(keys):
    """The dotted parent all ``keys`` share (``train.optimizer`` for its name and lr), or ''."""
    if not keys:
        return ""
    parts = [k.split(".")[:-1] for k in keys]
    shared = []
    for level in zip(*parts):
        if len(set(level)) > 1:
            break
        shared.append(level[0])
    return ".".join(shared)


# -- the table -------------------------------------------------------------------------------


def _has(run, metric):
    return bool(run.epochs) and all(metric in e for e in run.epochs)


def _metrics_hint(runs):
    from ..core.callback import METRICS

    common = [m for m in METRICS if all(_has(r, m) for r in runs)]
    return f"the runs all have: {', '.join(common) or 'none'}"


def summary(runs, labels, metric, prefix):
    """The table as data: per run its final value of every metric and the best of each, with its epoch."""
    from ..core.callback import METRICS, mode_of

    rows = []
    for run, label in zip(runs, labels):
        shown = [m for m in METRICS if _has(run, m)]
        best = {}
        for m in shown:
            pick = max if mode_of(m) == "max" else min
            finite = [e for e in run.epochs if math.isfinite(e[m])]  # a NaN first epoch is no best
            if finite:
                e = pick(finite, key=lambda e, m=m: e[m])
                best[m] = {"value": e[m], "epoch": e["epoch"]}
        final = run.epochs[-1] if run.epochs else {}
        rows.append(
            {
                "run": str(run.folder),
                "label": label,
                "epochs": len(run.epochs),
                "final": {m: final[m] for m in shown},
                "best": best,
            }
        )
    return {"metric": metric, "differ_in": prefix, "runs": rows}


def to_text(table):
    """Aligned columns: the final value of each metric (4 significant digits), the best of the compared one and
    its epoch, then the run's label, last as in fw sweep's table, so a long one leaves the numbers in line."""
    from ..core.callback import METRICS

    metric, rows = table["metric"], table["runs"]
    shown = [m for m in METRICS if any(m in r["final"] for r in rows)]
    run = "run" + (f" (differ in {table['differ_in']})" if table["differ_in"] else "")
    head = ["epochs", *shown, f"best {metric}", run]
    body = []
    for r in rows:
        best = r["best"].get(metric)
        cells = [str(r["epochs"]), *(_number(r["final"][m]) if m in r["final"] else "-" for m in shown)]
        body.append([*cells, f"{_number(best['value'])} (epoch {best['epoch']})" if best else "-", r["label"]])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head) - 1)]
    indent = " " * (sum(widths) + 2 * len(widths))
    lines = []
    for row in [head, *body]:
        label = textwrap.wrap(row[-1], LABEL_WIDTH, break_on_hyphens=False) or [""]
        lines.append("  ".join([*(c.rjust(w) for c, w in zip(row, widths)), label[0]]))
        lines += [indent + more for more in label[1:]]
    return "final values; best " + metric + " over the epochs\n" + "\n".join(lines)


#: A longer label goes on in lines of its own under the first, in the label's column.
LABEL_WIDTH = 80


def _number(value):
    """4 significant digits, trailing zeros kept so that a column lines up: 0.8500, 0.001234, 12.35."""
    return f"{value:#.4g}"


# -- the figure ------------------------------------------------------------------------------


def draw(runs, labels, metric, prefix, out, required):
    """The curves, one line per run: train loss, and the compared metric (with train accuracy dashed).

    Without matplotlib: an error when ``--out`` was asked for, else a note on stderr.
    """
    from ..errors import FwError
    from ..safeio.files import write_output

    try:
        import matplotlib
    except ImportError as e:
        hint = "install it with `pip install matplotlib` (or `pip install -e '.[plot]'` in a clone of fw)"
        if required:
            raise FwError(f"fw compare --out needs matplotlib; {hint}") from e
        print(f"fw: no figure drawn: matplotlib is not installed; {hint}", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["train_loss"] + ([metric] if metric != "train_loss" else [])
    width = 6 * len(panels)
    # The legend goes under the panels, labels wrapped to the figure's width: never over a curve, never off the edge.
    wrap = int(width * 14)  # characters of the legend's small font in a line
    names = [textwrap.fill(label, wrap) for label in labels]
    longest = max(len(line) for name in names for line in name.splitlines())
    columns = max(1, min(len(names), wrap // (longest + 6)))
    rows = sum(max(len(name.splitlines()) for name in names[i : i + columns]) for i in range(0, len(names), columns))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 4.5 + 0.2 * rows), squeeze=False, layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, name) in enumerate(zip(runs, names)):
        colour = colours[i % len(colours)]
        epochs = [e["epoch"] for e in run.epochs]
        for ax, m in zip(axes[0], panels):
            ax.plot(epochs, [e[m] for e in run.epochs], color=colour, label=name)
            if m == metric and m.endswith("accuracy") and m != "train_accuracy" and _has(run, "train_accuracy"):
                ax.plot(epochs, [e["train_accuracy"] for e in run.epochs], color=colour, linestyle="--", alpha=0.6)
    for ax, m in zip(axes[0], panels):
        dashed = " (dashed: train_accuracy)" if m == metric and m.endswith("accuracy") and m != "train_accuracy" else ""
        ax.set(xlabel="epoch", ylabel=m, title=m + dashed)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(
        *axes[0][0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=columns,
        fontsize="small",
        title=f"differ in {prefix}" if prefix else None,
        frameon=False,
    )
    write_output(out, lambda f: fig.savefig(f, format="png", dpi=90, bbox_inches="tight"))
    plt.close(fig)
    return out
