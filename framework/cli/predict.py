"""``fw predict``: a trained network's class for each new input: image files, ``.npy``/``.npz`` arrays, CSV rows.

Each input goes through the preparation the network was trained with
(``Dataset.prepare``, with what training derived from the data, read from
beside the weights); then the network runs over each input's rows in a call
of their own (``classified``), as ``fw serve`` runs each request's.
"""

import contextlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from ..data.dataset import Dataset
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


def classified(net, batches, dataset, options) -> list:
    """Each batch's class probabilities (float64): every batch prepared as in training and checked first,
    then the network run over each batch's rows alone, on one BLAS thread.

    An input's answer then depends on that input only, to the last bit: never
    on the inputs asked with it (fw predict's other files, fw serve's other
    requests), nor on the machine's cores. OpenBLAS's sum for one row depends
    on the rows multiplied with it (their count, the row's place among them)
    and on how its threads share the product out; the network's layers are
    plugins, so no layer-by-layer remedy can promise more than this does.
    fw's own checks around the network look at each row alone, so they run
    over all the batches at once (``_check_all``, ``_probabilities_each``):
    fw serve's batch of one-image requests pays for each once, not per request.
    """
    from ..core.threads import one_blas_thread

    with np.errstate(over="ignore"):  # 1e300 becomes float32's inf, refused by _check_all below, naming where
        raws = [_as_type(b.raw, dataset.pixels) if len(b.rows) else None for b in batches]
    xs = []
    with _check_all(xs, raws, batches, dataset), np.errstate(over="ignore", invalid="ignore"):
        xs.extend(_prepared_each(raws, dataset, options))  # what overflows is refused by _check_all, naming where
    ys = []
    with (
        _first_error(lambda: _probabilities_each(ys, xs, batches, dataset.num_classes)),
        one_blas_thread(),
        np.errstate(over="ignore", invalid="ignore", divide="ignore"),  # a result that is not finite is one line below
    ):
        for x in xs:
            ys.append(np.asarray(net.predict(x), np.float64) if x is not None else None)
    return _probabilities_each(ys, xs, batches, dataset.num_classes)


def _prepared_each(raws, dataset, options):
    """Each raw input (None: none) prepared by ``dataset.prepare``: a plugin's, input by input.

    fw's own ``Dataset.prepare`` works value by value (a cast, then a division
    or a standardisation, each rounded alone), so small inputs go through it in
    one call, each given its rows back in memory of its own, as its own call
    would have left them for the network.
    """
    present = [raw for raw in raws if raw is not None]
    if (
        len(present) > 1
        and type(dataset).prepare is Dataset.prepare
        and len({raw.dtype for raw in present}) == 1  # a dtype may choose the way (pixels, unless pinned)
        and sum(raw.size for raw in present) <= _TOGETHER
    ):
        try:
            together = np.concatenate(present)
        except ValueError:  # inputs of different shapes: the network will say so, input by input
            pass
        else:
            x = dataset.prepare(together, normalize=options.normalize, flatten=options.flatten)
            parts, start = iter(present), 0
            out = []
            for raw in raws:
                if raw is None:
                    out.append(None)
                    continue
                end = start + len(next(parts))
                out.append(x[start:end].copy())
                start = end
            return out
    return [
        dataset.prepare(raw, normalize=options.normalize, flatten=options.flatten) if raw is not None else None
        for raw in raws
    ]


#: At most this many prepared values are copied together to be checked at once; more are checked input by input.
_TOGETHER = 1 << 20


@contextlib.contextmanager
def _first_error(check_so_far):
    """An FwError from the block comes after ``check_so_far()``'s, so the first input's error is the one told."""
    try:
        yield
    except FwError:
        check_so_far()
        raise


@contextlib.contextmanager
def _check_all(xs, raws, batches, dataset):
    """``_refuse_non_finite`` for each input prepared into ``xs`` by the block: a value that is not a finite
    number once prepared is one line naming its input; small inputs in one pass (a row's finiteness is its own)."""

    def check():
        present = [x for x in xs if x is not None]
        together = 1 < len(present) and sum(x.size for x in present) <= _TOGETHER
        if together and np.isfinite(np.concatenate(present, axis=None)).all():
            return
        for x, raw, batch in zip(xs, raws, batches):
            if x is not None:
                _refuse_non_finite(x, raw, [batch], dataset)

    with _first_error(check):
        yield
    check()


def _probabilities_each(ys, xs, batches, classes):
    """``probabilities_of`` each batch's output in ``ys`` (None: no rows), its softmax decided batch by batch.

    What is per row runs over all the rows at once: the finiteness check, and
    the row minima and row sums behind ``_probabilities``' decision (the same
    numbers for a row in any company, numpy reducing each row of a C-ordered
    array alone). The softmax, where one is needed, is the batch's own call.
    """
    present = [k for k, y in enumerate(ys) if y is not None]
    out = [np.empty((0, classes)) if y is None else y for y in ys]
    if not present:
        return out
    y = ys[present[0]] if len(present) == 1 else np.concatenate([ys[k] for k in present])
    if not np.isfinite(y).all():
        for k in present:
            probabilities_of(ys[k], xs[k], [batches[k]])  # raises for the first input at fault
    counts = [len(ys[k]) for k in present]
    starts = np.cumsum([0, *counts[:-1]])
    if y.shape[1]:
        as_is = np.minimum.reduceat(y.min(axis=1), starts) >= 0
        as_is &= np.maximum.reduceat(np.abs(y.sum(axis=1) - 1), starts) <= _SUMS_TO_ONE
    else:
        as_is = np.zeros(len(present), bool)
    for k, keep in zip(present, as_is.tolist()):
        if not keep:
            out[k] = _softmax(ys[k])
    return out


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
    size = math.prod(int(n) for n in shape)  # not np.prod: 2 us a request for fw serve
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


#: How far from 1 a row's sum may be for the network's outputs to be taken as probabilities (np.allclose's test).
_SUMS_TO_ONE = 1e-3 + 1e-5


def _probabilities(y):
    """The network's outputs when they are probabilities (softmax last), else their softmax."""
    if y.size and (y.min() >= 0) and np.abs(y.sum(axis=1) - 1).max() <= _SUMS_TO_ONE:
        return y
    return _softmax(y)


def _softmax(y):
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def records(batches, probabilities, dataset, top, order=None):
    """Each example's answer as ``fw predict --json`` prints it: input, row, label, class, probability, top K.

    ``order``: each row's classes from the most probable, if sorted already (fw serve sorts a batch at once)."""
    if order is None:
        order = np.argsort(-probabilities, axis=1, kind="stable")
    order = order[:, :top].tolist()  # Python's ints and floats: numpy's scalars cost more, one by one
    out, i = [], 0
    for batch in batches:
        for r, row in enumerate(batch.rows):
            p = probabilities[i].tolist()
            best = [{"class": dataset.class_name(k), "probability": p[k]} for k in order[i]]
            record = {"input": batch.name, "row": row, "label": order[i][0], **best[0], "top": best}
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
