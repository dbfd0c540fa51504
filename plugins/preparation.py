"""A table's preparation as the network's first layer: blanks filled, numbers standardised, words one-hot.

Keras's design (``Normalization.adapt``, ``StringLookup``, ``CategoryEncoding``):
fitted on the training part when training starts, its parameters (fills,
means, stds, category lists) saved with the weights (in ``NAME.dataset.json``,
tied to the weights' hash), and exported inside the ONNX graph, so whatever
runs the network needs no secret about the data.

The layer's input is a table of *cells as numbers*, (N, F) float64, one column
per feature: a numeric column's value, NaN for a blank; a categorical column's
category number (its index in ``categories``), -1 for a category unseen in
training. ``encode`` turns a ``data.table.Table``'s text into that; ``forward``
turns it into the float32 (N, width) the rest of the network takes. A table of
numbers only stays on the float path: its width is F and ``forward`` is one
``where`` and one standardisation.
"""

import numpy as np

from framework import FwError, Layer

NUMERIC, CATEGORICAL, IGNORE = "numeric", "categorical", "ignore"
#: Cells that mean "no value" (compared after stripping spaces).
BLANKS = frozenset(["", "NA", "N/A", "NaN", "nan", "NAN", "null", "NULL", "?"])
NUMERIC_FILLS = ("median", "mean", "most_frequent")
CATEGORICAL_FILLS = ("missing", "most_frequent")
#: A word column with a distinct value in more than this share of its rows (and more than
#: ID_MIN of them) is an id or a name, not a feature.
ID_SHARE, ID_MIN = 0.9, 20
#: A value further than this many standard deviations outside the training range is noted.
FAR = 10.0
#: Columns the summary lists one by one; the rest are counted.
SHOWN = 50


class TablePreparation(Layer):
    """``columns``: one dict per feature column, as ``state()`` saves it:
    ``{name, type: numeric, blanks, fill, value, mean, std, low, high}`` or
    ``{name, type: categorical, blanks, fill, categories, value}`` (``value``: the
    number or category number a blank becomes; a category "" is the blanks' own)."""

    name = "table_preparation"
    thread_safe = True

    def __init__(self, columns, normalize=True):
        self.columns, self.normalize = columns, normalize
        numeric = [k for k, c in enumerate(columns) if c["type"] == NUMERIC]
        self.numeric_only = len(numeric) == len(columns)
        self._fill = np.array([_or_nan(c.get("value")) if c["type"] == NUMERIC else 0 for c in columns], np.float64)
        self._mean = np.array([c.get("mean", 0.0) if c["type"] == NUMERIC else 0 for c in columns], np.float64)
        self._std = np.array([c.get("std", 1.0) if c["type"] == NUMERIC else 1 for c in columns], np.float64)

    @property
    def features(self):
        return [c["name"] for c in self.columns]

    @property
    def width(self) -> int:
        return sum(len(c["categories"]) if c["type"] == CATEGORICAL else 1 for c in self.columns)

    def sources(self) -> list:
        """For each output column, the index of the feature column it comes from."""
        return [
            k
            for k, c in enumerate(self.columns)
            for _ in range(len(c["categories"]) if c["type"] == CATEGORICAL else 1)
        ]

    # --- the Layer contract ---------------------------------------------------------------------

    def build(self, input_shape, rng):
        return (self.width,)

    def forward(self, x, train=False):
        return self.apply(x, self.normalize)

    def apply(self, x, normalize):
        """``forward``, with or without the standardisation (``dataset.normalize``)."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if x.shape[1] != len(self.columns):
            raise FwError(
                f"table_preparation: rows have {x.shape[1]} values, "
                f"but the table has {len(self.columns)} feature columns"
            )
        y = np.where(np.isnan(x), self._fill, x)  # every column as a number: fill, standardise
        if normalize:
            y = (y - self._mean) / self._std
        if self.numeric_only:  # the float path
            return y.astype(np.float32)
        out = np.empty((len(x), self.width), np.float32)
        at = np.cumsum([0, *(len(c["categories"]) if c["type"] == CATEGORICAL else 1 for c in self.columns)])
        numeric = [k for k, c in enumerate(self.columns) if c["type"] == NUMERIC]
        out[:, at[numeric]] = y[:, numeric]
        for k, c in enumerate(self.columns):
            if c["type"] == CATEGORICAL:  # one-hot; -1 (unseen): all zeros
                out[:, at[k] : at[k + 1]] = x[:, k, None] == np.arange(len(c["categories"]))
        return out

    def to_onnx(self, graph, x):
        """Numbers only: the graph's float input ``x`` (N, F), blanks NaN. With words: one input per
        column, named after it, (N, 1) float or string, as skl2onnx writes them."""
        if self.numeric_only:
            return self._numbers_onnx(graph, x, self._fill, self._mean, self._std)
        parts = []
        for k, c in enumerate(self.columns):
            if c["type"] == NUMERIC:
                column = graph.input(c["name"], "float", 1)
                parts.append(
                    self._numbers_onnx(
                        graph, column, self._fill[k : k + 1], self._mean[k : k + 1], self._std[k : k + 1]
                    )
                )
            else:
                column = graph.input(c["name"], "string", 1)
                parts.append(self._words_onnx(graph, column, c))
        return graph.op("Concat", *parts, axis=1)

    def _numbers_onnx(self, graph, x, fill, mean, std):
        """In float64, as ``forward``: a year's 2020 less a mean of 2020.48 keeps its digits."""
        double = graph.op("Cast", x, to=11)  # DOUBLE
        y = graph.op("Where", graph.op("IsNaN", double), graph.constant(fill, np.float64), double)
        if self.normalize:
            y = graph.op("Div", graph.op("Sub", y, graph.constant(mean, np.float64)), graph.constant(std, np.float64))
        return graph.op("Cast", y, to=1)  # FLOAT

    def _words_onnx(self, graph, x, c):
        """Word -> category number (ai.onnx.ml LabelEncoder; unseen -1, blanks the fill's), then one-hot
        by Equal against 0..K-1 and Cast."""
        keys, values = _word_codes(c)
        codes = graph.op(
            "LabelEncoder", x, domain="ai.onnx.ml", keys_strings=keys, values_floats=values, default_float=-1.0
        )
        hot = graph.op("Equal", codes, np.arange(len(c["categories"]), dtype=np.float32).reshape(1, -1))
        return graph.op("Cast", hot, to=1)  # FLOAT

    @classmethod
    def from_onnx_table(cls, g):
        """The mirror of ``to_onnx``: the preparation from the nodes it wrote, read through ``g``
        (``onnx_import.OnnxTable``), checked as a saved one is. Fills come back as their values
        (``fill: constant``); blanks' counts and training ranges are not in the graph. (Not the
        Layer contract's ``from_onnx``, which reads one node into a ``model.layers`` entry.)"""
        names = [name for name, _ in g.columns]
        if all(kind == NUMERIC for _, kind in g.columns):
            if g.inputs != {"input": ("float", len(names))}:
                raise g.fail(
                    f"the graph's inputs are {_shown(g.inputs)}; "
                    f"a table of {len(names)} numeric columns has one, 'input' (batch, {len(names)}) float"
                )
            g.end, fill, mean, std = _numbers_from_onnx(g, "input", len(names))
            scale = zip(mean, std) if mean is not None else [(None, None)] * len(names)
            columns = [_numeric_column(name, f, m, sd) for name, f, (m, sd) in zip(names, fill, scale)]
            normalize = mean is not None
        else:
            want = {name: ("float" if kind == NUMERIC else "string", 1) for name, kind in g.columns}
            if g.inputs != want:
                raise g.fail(
                    f"the graph's inputs are {_shown(g.inputs)}, "
                    "not one (batch, 1) input per column of the metadata's 'columns'"
                )
            parts, columns, scaled = [], [], set()
            for name, kind in g.columns:
                if kind == NUMERIC:
                    y, fill, mean, std = _numbers_from_onnx(g, name, 1)
                    columns.append(_numeric_column(name, fill[0], *(None, None) if mean is None else (mean[0], std[0])))
                    scaled.add(mean is not None)
                else:
                    y, column = _words_from_onnx(g, name)
                    columns.append(column)
                parts.append(y)
            if len(scaled) > 1:
                raise g.fail("some numeric columns are standardised and some not; fw export standardises all or none")
            concat = g.join(parts, "Concat")
            if concat.inputs != parts or concat.attrs.get("axis") != 1:
                raise concat.fail(
                    "does not join the columns in the metadata's order along axis 1, as fw export writes it"
                )
            g.end, normalize = concat.output, scaled != {False}
        try:
            _check(columns)
        except ValueError as e:
            raise g.fail(str(e)) from None
        return cls(columns, normalize)

    # --- raw text in ------------------------------------------------------------------------------

    def encode(self, table, rows=None):
        """The table's feature cells as numbers (see the module), shape (len(rows), F); a word in a
        numeric column is a one-line error naming its row and column."""
        out = np.empty((len(table) if rows is None else len(rows), len(self.columns)), np.float64)
        if not table.__dict__.get("_columns") and not table.__dict__.get("_loaded"):
            table.preload(self.features)
        for k, c in enumerate(self.columns):
            if c["type"] == NUMERIC:
                v = numbers(table, c["name"])
                out[:, k] = v if rows is None else v[rows]
            else:
                out[:, k] = _codes(table.cells(c["name"], rows), c)
        return out

    def notes(self, table, x, rows=None) -> list:
        """Per row, what is worth saying beside its prediction: a category unseen in training, a value
        more than FAR standard deviations outside the training range."""
        notes = [[] for _ in range(len(x))]
        for k, c in enumerate(self.columns):
            unseen = np.flatnonzero(x[:, k] == -1) if c["type"] == CATEGORICAL else ()
            if len(unseen):
                cells = table.cells(c["name"], rows)
                for i in unseen:
                    word = cells[i].strip()
                    said = (
                        f"{word[:40]!r} was not seen in training"
                        if word not in BLANKS
                        else "a blank was not seen in training"
                    )
                    notes[i].append(f"{c['name']}: {said} (encoded as unseen)")
        ranged = [k for k, c in enumerate(self.columns) if c["type"] == NUMERIC and c.get("low") is not None]
        if ranged:  # all numeric columns at once: a table may have 100,000 of them
            low = np.array([self.columns[k]["low"] for k in ranged])
            high = np.array([self.columns[k]["high"] for k in ranged])
            v, std = x[:, ranged], self._std[ranged]
            out = np.maximum(low - v, v - high) / std  # how far outside the range, in standard deviations
            for i, j in np.argwhere(out > FAR):
                c = self.columns[ranged[j]]
                notes[i].append(
                    f"{c['name']}: {v[i, j]:.6g} is {out[i, j]:.3g} standard deviations outside the training range "
                    f"{c['low']:.6g}..{c['high']:.6g}"
                )
        return ["; ".join(n) if n else None for n in notes]

    def cell_text(self, k, value) -> str:
        """Column k's cell-as-number ``value`` as a person reads it (fw show)."""
        c = self.columns[k]
        if c["type"] == NUMERIC:
            return "" if np.isnan(value) else f"{value:.6g}"
        return "?" if value < 0 else c["categories"][int(value)] or "(blank)"

    # --- fitting and saving -----------------------------------------------------------------------

    def state(self) -> list:
        return self.columns

    @classmethod
    def from_state(cls, columns, normalize=True):
        """The layer from a saved ``columns`` list, checked (a hand-edited file is a ValueError naming the key)."""
        _check(columns)
        return cls(columns, normalize)

    @classmethod
    def from_statistics(cls, features, mean, std, fill="mean", normalize=True):
        """A ``.dataset.json`` from before column types: numbers only; a blank becomes the mean (fill None:
        stays NaN, and is refused, as it was)."""
        columns = [
            {"name": f, "type": NUMERIC, "blanks": 0, "fill": fill, "value": m if fill else None, "mean": m, "std": s}
            for f, m, s in zip(features, mean, std)
        ]
        return cls(columns, normalize)

    def summary(self) -> str:
        """What was fitted, one line a column: ``fw train`` and ``fw show`` print it."""
        head = ("column", "type", "blanks", "filled with", "categories / mean, std")
        body = []
        for c in self.columns[:SHOWN]:
            if c["type"] == NUMERIC:
                fill = f"{c['fill']} {c['value']:.6g}" if c.get("value") is not None else "-"
                stats = f"mean {c['mean']:.6g}, std {c['std']:.6g}"
            else:
                fill = "its own category" if c["fill"] == "missing" else f"{c['fill']} {c['categories'][c['value']]!r}"
                shown = [w or "(blank)" for w in c["categories"][:8]]
                stats = f"{len(c['categories'])}: " + ", ".join(shown) + (", ..." if len(c["categories"]) > 8 else "")
            body.append((c["name"], c["type"], str(c.get("blanks", "?")), fill, stats))  # "?": read from an ONNX graph
        widths = [max(len(r[j]) for r in [head, *body]) for j in range(4)]
        lines = ["  " + "  ".join(r[j].ljust(widths[j]) for j in range(4)) + "  " + r[4] for r in [head, *body]]
        rest = self.columns[SHOWN:]
        if rest:
            words = sum(c["type"] == CATEGORICAL for c in rest)
            lines.append(
                f"  ... and {len(rest):,} more columns: {len(rest) - words:,} numeric, {words:,} categorical, "
                f"{sum(c.get('blanks', 0) > 0 for c in rest):,} with blanks"
            )
        return f"preparation (fitted on the training part; {self.width} network inputs):\n" + "\n".join(
            line.rstrip() for line in lines
        )


def fit(table, names, rows, *, types=None, fills=None):
    """A ``TablePreparation`` fitted on ``rows`` of ``table`` (the training part).

    ``types``: ``{column: numeric | categorical | ignore}`` overriding what the
    training part's cells say; ``fills``: ``{numeric: median | mean | most_frequent,
    categorical: missing | most_frequent, <column>: one of those or a number}``.
    The numeric columns' statistics are computed together, over the (rows, columns)
    matrix: a table of 100,000 columns is fitted in a fraction of a second.
    """
    types, fills = dict(types or {}), dict(fills or {})
    names = [name for name in names if types.get(name) != IGNORE]
    table.preload(names)
    kinds = {}
    for name in names:
        kind = types.get(name)
        if kind is None and table.loaded(name) is None:  # words in most cells: categorical; a stray word
            v, words = parsed(table, name)  # among numbers is a typo, refused by numbers()
            kind = (
                CATEGORICAL
                if words is not None and int(words[rows].sum()) > int((~np.isnan(v[rows])).sum())
                else NUMERIC
            )
        kinds[name] = kind or NUMERIC
    numeric = [name for name in names if kinds[name] == NUMERIC]
    fitted = {}
    if numeric:
        x = np.column_stack([numbers(table, name) for name in numeric])[rows]
        fitted = dict(zip(numeric, _numeric(numeric, x, [fills.get(n, fills.get(NUMERIC, "median")) for n in numeric])))
    for name in names:
        if kinds[name] == CATEGORICAL:
            fill = fills.get(name, fills.get(CATEGORICAL, "missing"))
            fitted[name] = _categorical(table, name, table.cells(name, rows), fill, len(rows))
    if not fitted:
        raise FwError(f"{table.source}: dataset.columns leaves no feature column to learn from")
    return TablePreparation([fitted[name] for name in names])


def words_text(text):
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parsed(table, name):
    """``(values, words)`` of a column, once per table: float64 with NaN for a blank and for a word, and
    a mask of the words (None when there are none)."""
    cache = table.__dict__.setdefault("_parsed", {})
    if name in cache:
        return cache[name]
    if (v := table.loaded(name)) is not None:
        cache[name] = v, None
        return cache[name]
    cells = table.cells(name)
    try:
        result = np.array(cells, dtype=np.float64), None  # numpy's C parser; blanks and words fall through
    except ValueError:
        value = {}
        for cell in dict.fromkeys(cells):
            try:
                value[cell] = float(cell)
            except ValueError:
                value[cell] = np.nan if cell.strip() in BLANKS else None
        v = np.fromiter((np.inf if (x := value[c]) is None else x for c in cells), np.float64, len(cells))
        words = np.fromiter((value[c] is None for c in cells), bool, len(cells))
        v[words] = np.nan
        result = v, words if words.any() else None
    cache[name] = result
    return result


def numbers(table, name):
    """A numeric column's cells as float64, blanks NaN; a word or an infinity is a one-line error naming its row."""
    if (v := table.loaded(name)) is not None:  # every value a finite number
        return v
    v, words = parsed(table, name)
    if words is not None:
        i = int(np.flatnonzero(words)[0])
        raise FwError(
            f"{table.where(i, name)}: {words_text(table.cells(name)[i])} "
            "is not a number, and the column is numeric; give a "
            f"number, or leave it blank (or make the column words with dataset.columns: {{{name}: categorical}})"
        )
    bad = np.isinf(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FwError(
            f"{table.where(i, name)}: {words_text(table.cells(name)[i])} is not a finite number; "
            "give a number there, or leave it blank"
        )
    return v


def _numeric(names, x, fills):
    """The numeric columns' entries, from their training values ``x`` (rows, columns), NaN for a blank.
    Mean and std are those of the filled columns, reduced along axis 0 as fw always has."""
    blank = np.isnan(x)
    empty = np.flatnonzero(blank.all(axis=0))
    if len(empty):
        name = names[empty[0]]
        raise FwError(
            f"dataset.path: column '{name}' is blank in every training row; "
            f"leave it out with dataset.columns: {{{name}: ignore}}"
        )
    values = np.empty(len(names))
    for policy in set(map(str, fills)):
        cols = [j for j, f in enumerate(fills) if str(f) == policy]
        fill = fills[cols[0]]
        if isinstance(fill, int | float) and not isinstance(fill, bool):
            values[cols] = float(fill)
        elif fill in ("median", "mean"):
            part = x[:, cols]
            values[cols] = (
                (np.nanmedian if fill == "median" else np.nanmean)(part, axis=0)
                if blank[:, cols].any()
                else (np.median(part, axis=0) if fill == "median" else part.mean(axis=0))
            )
        elif fill == "most_frequent":
            for j in cols:
                u, n = np.unique(x[~blank[:, j], j], return_counts=True)
                values[j] = u[np.argmax(n)]
        else:
            raise FwError(
                f"dataset.fill: '{fill}' for numeric column '{names[cols[0]]}'; "
                f"choose one of {', '.join(NUMERIC_FILLS)}, or a number"
            )
    filled = np.where(blank, values, x) if blank.any() else x
    mean, std = filled.mean(axis=0), filled.std(axis=0)
    std[std < 1e-12] = 1.0
    low = np.where(blank, np.inf, x).min(axis=0)
    high = np.where(blank, -np.inf, x).max(axis=0)
    counts = blank.sum(axis=0)
    return [
        {
            "name": name,
            "type": NUMERIC,
            "blanks": int(counts[j]),
            "fill": fills[j],
            "value": float(values[j]),
            "mean": float(mean[j]),
            "std": float(std[j]),
            "low": float(low[j]),
            "high": float(high[j]),
        }
        for j, name in enumerate(names)
    ]


def _categorical(table, name, cells, fill, rows):
    stripped = [c.strip() for c in cells]
    blank = [s in BLANKS for s in stripped]
    counts = {}
    for s, b in zip(stripped, blank):
        if not b:
            counts[s] = counts.get(s, 0) + 1
    if rows > ID_MIN and len(counts) > ID_SHARE * rows:
        raise FwError(
            f"{table.source}: column '{name}' holds a different value in {len(counts)} of its {rows} training rows, "
            f"like an id or a name, so it cannot be a feature; leave it out with dataset.columns: {{{name}: ignore}}"
        )
    categories = sorted(counts)
    blanks = sum(blank)
    if fill == "missing":
        if blanks:
            categories = ["", *categories]  # the blanks' own category, named "" (shown as "(blank)")
        value = 0 if blanks else None
    elif fill == "most_frequent":
        value = categories.index(max(counts, key=lambda w: (counts[w], w)))
    else:
        raise FwError(
            f"dataset.fill: '{fill}' for categorical column '{name}'; choose one of {', '.join(CATEGORICAL_FILLS)}"
        )
    if not categories:
        raise FwError(
            f"dataset.path: column '{name}' is blank in every training row; "
            f"leave it out with dataset.columns: {{{name}: ignore}}"
        )
    return {"name": name, "type": CATEGORICAL, "blanks": blanks, "fill": fill, "value": value, "categories": categories}


def _word_codes(c):
    """The (word, category number) pairs a column's cells map through: each category, and each blank
    spelling to the blanks' category when there is one."""
    keys = [w for w in c["categories"] if w]
    values = [float(c["categories"].index(w)) for w in keys]
    if c.get("value") is not None:
        keys += sorted(BLANKS)
        values += [float(c["value"])] * len(BLANKS)
    return keys, values


def _codes(cells, c):
    """Each cell's category number: -1 when unseen (a blank, when training had none and the fill is 'missing')."""
    index = {w: float(k) for k, w in enumerate(c["categories"]) if w}
    if c.get("value") is not None:
        index.update(dict.fromkeys(BLANKS, float(c["value"])))
    distinct = {cell: index.get(cell.strip(), -1.0) for cell in dict.fromkeys(cells)}
    return np.fromiter((distinct[cell] for cell in cells), np.float64, len(cells))


def _check(columns):
    if not isinstance(columns, list) or not columns:
        raise ValueError("columns must be a non-empty list")
    seen = set()
    for k, c in enumerate(columns):
        where = f"columns[{k}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"] or c["name"] in seen:
            raise ValueError(f"{where} must be a mapping with a name of its own")
        seen.add(c["name"])
        if not isinstance(c.get("blanks", 0), int):
            raise ValueError(f"{where}.blanks must be a whole number")
        if c.get("type") == NUMERIC:
            for key in ("value", "mean", "std", "low", "high"):
                v = c.get(key)
                if key in ("mean", "std") and v is None:
                    raise ValueError(f"{where}.{key} is missing")
                if v is not None and not (isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)):
                    raise ValueError(f"{where}.{key} must be a finite number")
            if c["std"] <= 0:
                raise ValueError(f"{where}.std must be positive")
        elif c.get("type") == CATEGORICAL:
            words = c.get("categories")
            if not (
                isinstance(words, list)
                and words
                and all(isinstance(w, str) for w in words)
                and len(set(words)) == len(words)
            ):
                raise ValueError(f"{where}.categories must be a list of distinct strings")
            v = c.get("value")
            if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(words)):
                raise ValueError(f"{where}.value must be null or a category number")
        else:
            raise ValueError(f"{where}.type must be numeric or categorical")


def _numbers_from_onnx(g, x, n):
    """``_numbers_onnx`` read back from input ``x`` of ``n`` columns: ``(its output, fill, mean, std)``,
    mean and std None when it does not standardise."""
    (double,) = g.step(x, "Cast")
    if double.attrs.get("to") != 11:
        raise double.fail("does not cast to double, as fw export writes it")
    isnan, where = g.step(double.output, "IsNaN", "Where")
    if where.inputs[::2] != [isnan.output, double.output]:
        raise where.fail("does not fill the blanks that IsNaN finds, as fw export writes it")
    fill, mean, std = where.constant(1, (n,)), None, None
    (after,) = g.step(where.output, "Sub" if g.reads(where.output) == ["Sub"] else "Cast")
    if after.op_type == "Sub":
        mean = after.constant(1, (n,))
        (div,) = g.step(after.output, "Div")
        std = div.constant(1, (n,))
        (after,) = g.step(div.output, "Cast")
    if after.attrs.get("to") != 1:
        raise after.fail("does not cast back to float, as fw export writes it")
    return after.output, fill, mean, std


def _numeric_column(name, fill, mean=None, std=None):
    column = {"name": name, "type": NUMERIC, "fill": "constant", "value": float(fill)}
    return column | ({"mean": 0.0, "std": 1.0} if mean is None else {"mean": float(mean), "std": float(std)})


def _words_from_onnx(g, x):
    """``_words_onnx`` read back from input ``x``: ``(its output, the column's entry)``. The categories
    are the LabelEncoder's words by number; a number no word maps to is the blanks' own ("")."""
    (codes,) = g.step(x, "LabelEncoder")
    keys, values = codes.strings("keys_strings"), codes.floats("values_floats")
    if codes.domain != "ai.onnx.ml" or codes.attrs.get("default_float") != -1.0 or len(keys) != len(values):
        raise codes.fail("is not the ai.onnx.ml LabelEncoder of words to numbers (unseen: -1) that fw export writes")
    (hot,) = g.step(codes.output, "Equal")
    dims = hot.dims(1)
    k = dims[1] if dims is not None and len(dims) == 2 and dims[0] == 1 else 0
    if not 0 < k <= len(keys) + 1 or not np.array_equal(hot.constant(1, (1, k)), np.arange(k)[None]):
        raise hot.fail(
            "does not compare the category numbers with a constant 0, "
            "1, ..., K-1 (one per category), as fw export writes it"
        )
    (cast,) = g.step(hot.output, "Cast")
    if cast.attrs.get("to") != 1:
        raise cast.fail("does not cast back to float, as fw export writes it")
    categories, blank = [None] * k, set()
    for word, v in zip(keys, values):
        if not (0 <= v < k and v == int(v)):  # NaN fails the first test
            raise codes.fail(f"maps {words_text(word)} to {v!r}, not a category number below {k}")
        if word in BLANKS:
            blank.add(int(v))
        elif categories[int(v)] is not None:
            raise codes.fail(f"maps two words to category {int(v)}")
        else:
            categories[int(v)] = word
    if blank and (len(blank) > 1 or not BLANKS <= set(keys)):
        raise codes.fail("does not map every spelling of a blank to one category")
    value = blank.pop() if blank else None
    unnamed = [j for j, w in enumerate(categories) if w is None]
    if unnamed not in ([], [value]):
        raise codes.fail(f"maps no word to category {unnamed[0]}")
    if unnamed:
        categories[value] = ""
    fill = "missing" if value is None or categories[value] == "" else "most_frequent"
    return cast.output, {"name": x, "type": CATEGORICAL, "fill": fill, "value": value, "categories": categories}


def _shown(inputs):
    return ", ".join(f"{_clipped(n)} ({k}, width {w})" for n, (k, w) in list(inputs.items())[:5]) or "none"


def _clipped(name):
    return repr(name if len(name) <= 40 else name[:37] + "...")


def _or_nan(value):
    return np.nan if value is None else value
