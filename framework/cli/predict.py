"""``fw predict``: a trained network's class for each new input: image files, ``.npy``/``.npz`` arrays, CSV rows.

Each input goes through the preparation the network was trained with
(``Dataset.prepare``, with what training derived from the data, read from
beside the weights); then the network runs over each input's rows in a call
of their own (``classified``), as ``fw serve`` runs each request's.
"""

import json
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from ..errors import FwError, FwWarning
from ..safeio.untrusted import printable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_OVERRIDE = re.compile(r"[A-Za-z_][\w.\[\]]*=")


@dataclass
class Batch:
    """One input's examples: ``raw`` as the dataset's own (N, ...), and each row's number (None for an image)."""

    name: str
    raw: np.ndarray
    rows: list
    notes: list | None = None  # a table's, per row: an unseen category, a value far outside the training data


def split_arguments(items):
    """``(inputs, overrides)``: KEY=VALUE items are overrides, unless a file has that name."""
    overrides = [i for i in items if _OVERRIDE.match(i) and not os.path.exists(i)]
    return [i for i in items if i not in overrides], overrides


def predict(args, report_failures):
    """The command; ``report_failures(registry)`` warns of plugins that failed to load, as every command does."""
    from ..config import load_config
    from ..plugin_system.manager import get_registry

    inputs, overrides = split_arguments([*args.inputs, *args.overrides])
    if not inputs:
        raise FwError(
            "fw predict needs at least one INPUT: an image, a .npy, .npz or .csv file, or - for CSV rows on stdin"
        )
    if inputs.count("-") > 1:
        raise FwError("standard input (-) can be read once; give - one time")
    if args.top < 1:
        raise FwError(f"--top must be at least 1, got {args.top}")
    cfg = load_config(args.config, overrides)
    registry = get_registry(cfg.plugins)
    report_failures(registry)
    net, dataset = build(cfg, registry)
    classes = dataset.num_classes
    if args.top > classes:
        raise FwError(
            f"--top {args.top} is more than the {classes} classes of dataset '{cfg.dataset.name}'; use 1 to {classes}"
        )
    batches = [read_input(name, dataset) for name in inputs]
    probabilities = np.concatenate(classified(net, batches, dataset, cfg.dataset))
    print_predictions(batches, probabilities, dataset, args.top, args.json)
    return 0


def prepared(batch, dataset, options):
    """The batch's examples as the network's input, prepared as in training (``options``: cfg.dataset);
    a value that is not a finite number once prepared is one line naming its input."""
    raw = _as_type(batch.raw, dataset.pixels)
    with np.errstate(over="ignore", invalid="ignore"):  # what overflows is refused next, naming where
        x = dataset.prepare(raw, normalize=options.normalize, flatten=options.flatten)
    _refuse_non_finite(x, raw, [batch], dataset)
    return x


def classified(net, batches, dataset, options) -> list:
    """Each batch's class probabilities (float64): every batch prepared and checked first (``prepared``), then
    the network run over each batch's rows alone, on one BLAS thread.

    An input's answer then depends on that input only, to the last bit: never
    on the inputs asked with it (fw predict's other files, fw serve's other
    requests), nor on the machine's cores. OpenBLAS's sum for one row depends
    on the rows multiplied with it (their count, the row's place among them)
    and on how its threads share the product out; the network's layers are
    plugins, so no layer-by-layer remedy can promise more than this does.
    """
    from ..core.threads import one_blas_thread

    xs = [prepared(b, dataset, options) if len(b.rows) else None for b in batches]
    with one_blas_thread():
        return [
            probabilities_of(net.predict(x), x, [b]) if x is not None else np.empty((0, dataset.num_classes))
            for x, b in zip(xs, batches)
        ]


def probabilities_of(y, x, batches):
    """The network's output ``y`` for ``x`` as class probabilities;
    one that is not finite is one line naming its input."""
    y = np.asarray(y, np.float64)
    if not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))[0])
        raise FwError(
            f"{_where(batches, i)}: the network's output is not a finite number (its input reaches "
            f"{float(np.abs(x[i]).max()):.3g} once prepared): the input "
            "is far outside the training data, or the weights are broken"
        )
    return _probabilities(y)


def build(cfg, registry):
    """The network and its dataset, with everything preparing a new input needs derived now.

    Without the state ``fw train`` saved beside the weights, that comes from
    the training data; if that cannot be read, the error says what is missing.
    """
    from .. import api
    from ..config.datasets import make_dataset
    from ..data.trained import state_path

    dataset = make_dataset(cfg, registry)
    try:
        dataset.example_shape()
        dataset.num_classes  # noqa: B018 - learnt from the data unless restored
        dataset.pixels = dataset.takes_pixels()  # pinned: the new inputs' dtype must not decide it
        if cfg.dataset.normalize and not dataset.pixels:
            dataset.standardization()
    except FwError as e:
        saved = state_path(cfg.weights.path) if cfg.weights is not None and cfg.weights.path else None
        if saved is None or saved.exists():
            raise
        raise FwError(
            f"{e} (fw predict needs no training data when fw train's {saved.name} is beside the weights; "
            f"there is none at {saved})"
        ) from e
    return api.build(cfg, registry, dataset)


def read_input(name, dataset) -> Batch:
    """One INPUT as raw examples of the dataset's own shape; a problem is one line naming it."""
    from ..data.table import read_csv, read_csv_file, read_text

    if name == "-":
        return table_batch(name, read_csv(read_text(sys.stdin.buffer, "-"), "-"), dataset)
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".csv":
        return table_batch(name, read_csv_file(name), dataset)
    if suffix in (".npy", ".npz"):
        a = fitted(name, _array_of(name), dataset)
        batch = Batch(name, a, list(range(len(a))))
        if not dataset.pixels and a.dtype.kind == "f":  # NaN is a CSV's blank, never an array's
            _refuse_non_finite(a, a, [batch], dataset)
        return batch
    if suffix in IMAGE_SUFFIXES:
        return Batch(name, dataset.example_from_image(name)[None], [None])
    if not os.path.exists(name):
        raise FwError(f"{name}: no such file")
    raise FwError(
        f"{name}: fw predict reads images ({', '.join(IMAGE_SUFFIXES)}), .npy, .npz and .csv files, "
        "or - for CSV rows on standard input"
    )


def table_batch(name, table, dataset):
    """Raw CSV rows (words and blanks) as the dataset encodes them, with each row's notes."""
    raw = dataset.examples_from_table(table)
    notes = dataset.table_notes(table, raw) if hasattr(dataset, "table_notes") else None
    return Batch(name, raw, list(range(1, len(table) + 1)), notes)


def _array_of(name):
    """The inputs in a .npy, or in a .npz its ``x`` (else ``x_test``, else its only array)."""
    from ..data.arrays_file import load_arrays

    arrays = load_arrays(name)
    for key in ("x", "x_test"):
        if key in arrays:
            return arrays[key]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise FwError(
        f"{name}: holds {', '.join(sorted(arrays)) or 'no arrays'}; "
        "fw predict reads its array x (or x_test, or a lone array)"
    )


def fitted(name, a, dataset):
    """``a`` as (N, *example shape): examples as the dataset's own, flattened, or with a channel axis of 1."""
    shape = dataset.example_shape()
    size = int(np.prod(shape))
    if a.ndim >= 2 and a.shape[1:] in (shape, (size,), (1, *shape)):
        a = a.reshape(len(a), *shape)
    else:
        flat = f" or (N, {size})" if len(shape) > 1 else ""
        raise FwError(
            f"{name}: holds an array of shape {a.shape}, but dataset '{dataset.name}' examples have shape {shape}: "
            f"give (N, {', '.join(map(str, shape))}){flat}"
        )
    if dataset.pixels and a.size:
        low, high = a.min(), a.max()
        if low < 0 or high > 255:
            raise FwError(
                f"{name}: holds values from {low} to {high}, but dataset '{dataset.name}' takes pixels from 0 to 255"
            )
        if a.dtype.kind == "f" and high <= 1:
            import warnings

            warnings.warn(
                f"{name}: its values lie within 0..1, "
                "but the network takes pixels from 0 to 255 (it divides them by 255 "
                "itself); multiply them by 255 if they were already divided",
                FwWarning,
                stacklevel=2,
            )
    return a


def _as_type(raw, pixels):
    """One dtype for every input: uint8 pixels stay so (the training data's exact path), the rest float."""
    if pixels:
        return raw if raw.dtype == np.uint8 else raw.astype(np.float32)
    return raw.astype(np.float64)


def _refuse_non_finite(x, raw, batches, dataset):
    """NaN, Inf, or a value float32 cannot hold once prepared (1e300) would give NaN probabilities: one line
    naming the input, row and column instead."""
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return
    i, j = (int(k) for k in np.argwhere(bad)[0])
    if (
        raw.ndim == 2 and raw.shape[1] != flat.shape[1] and hasattr(dataset, "preparation")
    ):  # a one-hot table: its column
        j = dataset.preparation.sources()[j]
    value = raw.reshape(len(raw), -1)[i, j].item()
    names = dataset.feature_names
    if names is not None and j < len(names):
        column = f"column '{names[j]}'"
    else:
        column = (
            f"value at {tuple(int(k) for k in np.unravel_index(j, raw.shape[1:]))}" if raw.ndim > 2 else f"column {j}"
        )
    what = (
        "is not a finite number"
        if not np.isfinite(value)
        else "is too large for the network's float32 input once prepared"
    )
    raise FwError(
        f"{_where(batches, i)}, {column}: {value!r} {what}; give finite numbers of the size of the training data"
    )


def _where(batches, i):
    """``name:row`` (or the image's name) of example ``i`` of the concatenated batches."""
    for batch in batches:
        if i < len(batch.rows):
            row = batch.rows[i]
            return batch.name if row is None else f"{batch.name}:{row}"
        i -= len(batch.rows)
    raise IndexError(i)


def _probabilities(y):
    """The network's outputs when they are probabilities (softmax last), else their softmax."""
    if y.size and (y.min() >= 0) and np.abs(y.sum(axis=1) - 1).max() <= 1e-3 + 1e-5:  # np.allclose's test, faster
        return y
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def records(batches, probabilities, dataset, top):
    """Each example's answer as ``fw predict --json`` prints it: input, row, label, class, probability, top K."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    out, i = [], 0
    for batch in batches:
        for r, row in enumerate(batch.rows):
            best = [{"class": dataset.class_name(int(k)), "probability": float(probabilities[i, k])} for k in order[i]]
            record = {"input": batch.name, "row": row, "label": int(order[i, 0]), **best[0], "top": best}
            if batch.notes and batch.notes[r]:
                record["note"] = batch.notes[r]
            out.append(record)
            i += 1
    return out


def print_predictions(batches, probabilities, dataset, top, as_json):
    """One line per example: its input (``name:row`` for tables), class and probability, and the top K."""
    answers = records(batches, probabilities, dataset, top)
    if not answers:  # only empty inputs
        return
    if as_json:
        print("\n".join(json.dumps(record) for record in answers))
        return
    lines = []
    for r in answers:
        where = r["input"] if r["row"] is None else f"{r['input']}:{r['row']}"
        more = f"  top {top}: " + ", ".join(f"{b['class']} {b['probability']:.4f}" for b in r["top"]) if top > 1 else ""
        note = f"  note: {r['note']}" if "note" in r else ""
        lines.append((where, printable(r["class"]), f"{r['probability']:.4f}", printable(more + note)))
    widths = [max(len(line[j]) for line in lines) for j in range(2)]
    for where, name, p, more in lines:
        print(f"{where:<{widths[0]}}  {name:<{widths[1]}}  {p}{more}".rstrip())
