"""CSV tables: a header line naming the columns, then one row per example.

Read by the ``csv`` dataset and by ``fw predict`` for new rows. Every problem
is one line naming the file, the row (and its line) and the column.
"""

import csv
import io
import re
from dataclasses import dataclass

from ..errors import FwError

_INT = re.compile(r"[+-]?\d{1,18}")
_LINE_END = re.compile(rb"[\r\n]")
MAX_LINE = 16 << 20  # bytes: room for a row of a million numbers; a longer line is no table's


@dataclass
class Table:
    """A CSV's header and rows; ``lines[i]`` is the file line of row i (rows count from 1).

    The rows are ``texts`` (lines without quoting, split only when a column is
    read) or, for a CSV with quotes, ``rows`` (lists of fields from the csv module).
    """

    source: str
    header: list
    lines: list
    rows: list | None = None
    texts: list | None = None

    def __post_init__(self):
        self.positions = {name: k for k, name in enumerate(self.header)}  # a wide table's names, found at once

    def __len__(self):
        return len(self.lines)

    def column(self, k) -> list:
        """Column ``k``'s fields, as written."""
        if self.rows is not None:
            return [row[k] for row in self.rows]
        if k == len(self.header) - 1:  # the last column (often the label): one split from the right
            return [text.rpartition(",")[2] for text in self.texts]
        return [text.split(",", k + 1)[k] for text in self.texts]

    def cells(self, name, rows=None):
        """Column ``name``'s fields as written (blanks and all), of every row or of the row indices ``rows``."""
        k = self.index(name)
        columns = self.__dict__.setdefault("_columns", {})
        if k not in columns:  # every column at once: split each line once
            fields = self.rows if self.rows is not None else [text.split(",") for text in self.texts]
            columns.update(enumerate(zip(*fields)) if fields else ((j, ()) for j in range(len(self.header))))
        column = columns[k]
        return column if rows is None else [column[i] for i in rows]

    def preload(self, names):
        """Read the columns ``names`` with numpy's C parser, when the text has no quotes: those that look
        numeric (in the first rows) as float64 (``loaded``, when every value is a finite number), the rest
        as text for ``cells``. A table of 100,000 rows and 20 columns: 0.3 s rather than 0.8."""
        import numpy as np

        if not self.texts:
            return
        wanted = [self.index(name) for name in names]
        first = self.texts[0].split(",")
        numeric = wanted
        found = self._loadtxt(wanted) if all(_number(first[k]) for k in wanted) else None  # numbers only: one pass
        if found is None:
            sample = [text.split(",") for text in self.texts[:100]]
            numeric = [k for k in wanted if all(_number(row[k]) and row[k].strip() for row in sample)]
            found = self._loadtxt(numeric) if numeric else None
        loaded = self.__dict__.setdefault("_loaded", {})
        if found is not None:
            loaded.update((k, found[:, j]) for j, k in enumerate(numeric))
        rest = [k for k in wanted if k not in loaded]
        if rest:
            text = np.loadtxt(
                io.StringIO("\n".join(self.texts)),
                delimiter=",",
                usecols=rest,
                dtype=str,
                comments=None,
                quotechar=None,
                ndmin=2,
            )
            self.__dict__.setdefault("_columns", {}).update((k, text[:, j].tolist()) for j, k in enumerate(rest))

    def loaded(self, name):
        """Column ``name`` as float64 if ``preload`` found it all finite numbers, else None."""
        return self.__dict__.get("_loaded", {}).get(self.index(name))

    def where(self, i, column=None) -> str:
        """``wine.csv row 17 (line 18), column 'alcohol'`` for row index i (0-based)."""
        at = f"{self.source} row {i + 1} (line {self.lines[i]})"
        return f"{at}, column '{column}'" if column is not None else at

    def index(self, name, key=None) -> int:
        """The position of column ``name``; ``key`` is the config key that named it, for the error."""
        try:
            return self.positions[name]
        except (KeyError, TypeError):
            import difflib

            close = difflib.get_close_matches(str(name), self.header, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            who = f"{key}: " if key else ""
            raise FwError(
                f"{who}{self.source} has no column '{name}'; {hint}its columns are: {_listed(self.header)}"
            ) from None

    def _loadtxt(self, columns):
        """numpy's C parser on unquoted text: the columns as float64 when every value is a finite number, else None
        (and the cell by cell path finds and names the first value that is not)."""
        import warnings

        import numpy as np

        if self.texts is None or not self.texts:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = np.loadtxt(
                    io.StringIO("\n".join(self.texts)),
                    delimiter=",",
                    usecols=columns,
                    dtype=np.float64,
                    comments=None,
                    ndmin=2,
                    quotechar=None,
                )
        except (ValueError, Warning):
            return None
        return out if out.shape == (len(self), len(columns)) and np.isfinite(out).all() else None

    def strings(self, name, key=None) -> list:
        """Column ``name``, stripped; a missing value is an error naming its row."""
        k = self.index(name, key)
        values = [value.strip() for value in self.column(k)]
        if "" in values:
            i = values.index("")
            raise FwError(f"{self.where(i, name)}: the value is missing; fill it in or drop the row")
        return values


def read_csv(text: str, source: str) -> Table:
    """Parse CSV text: the first line is the header; blank lines are skipped; every row must have one
    value per column."""
    if "\0" in text[:4096]:
        raise FwError(f"{source}: is binary, not CSV text")
    if '"' in text:
        reader = csv.reader(io.StringIO(text))
        rows, lines = [], []
        limit = csv.field_size_limit(MAX_LINE)  # the module's own 128 KiB is lower than a line may be
        try:
            for row in reader:
                if row and any(field.strip() for field in row):
                    rows.append(row)
                    lines.append(reader.line_num)
        except csv.Error as e:
            where = f"row {len(rows)} (line {reader.line_num})" if rows else f"line {reader.line_num}"
            reason = f"a quoted value runs past {MAX_LINE >> 20} MiB" if "field limit" in str(e) else str(e)
            raise FwError(f"{source} {where}: {reason}; check that its quotes are paired") from None
        finally:
            csv.field_size_limit(limit)
        texts = None
        widths = [len(row) for row in rows]
    else:  # no quoting: lines are split only as columns are read, several times faster than csv.reader
        numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        lines, texts = [n for n, _ in numbered], [line for _, line in numbered]
        rows = [texts[0].split(",")] if texts else []
        widths = [t.count(",") + 1 for t in texts]
    if not lines:
        raise FwError(f"{source} is empty; a CSV starts with a header line naming its columns")
    header, header_line = [h.strip() for h in (rows[0] if rows else [])], lines[0]
    if "" in header:
        raise FwError(f"{source} line {header_line}: column {header.index('') + 1} of the header has no name")
    seen = set()
    for name in header:
        if name in seen:
            raise FwError(f"{source} line {header_line}: the header names column {_short(name)} twice")
        seen.add(name)
    if texts is None:
        table = Table(source, header, lines[1:], rows=rows[1:])
    else:
        table = Table(source, header, lines[1:], texts=texts[1:])
    for i, width in enumerate(widths[1:]):
        if width != len(header):
            raise FwError(
                f"{table.where(i)} has {width} values, but the header names {len(header)} columns; "
                "every row needs one value per column"
            )
    return table


def read_csv_file(path, what="CSV file") -> Table:
    """``read_csv`` of a file: regular files only, UTF-8 (a byte-order mark is allowed)."""
    from ..safeio.files import open_input

    with open_input(path, missing=f"{what} not found: {path}", needs="give the path of a CSV file") as f:
        text = read_text(f, path)
    return read_csv(text, str(path))


def read_text(f, source) -> str:
    """The binary stream ``f`` as UTF-8 text, read a MiB at a time: a line longer than ``MAX_LINE`` is
    refused as soon as it is seen, not after the whole of it is in memory (a 512 MB number)."""
    data, newlines, run = bytearray(), 0, 0  # run: the bytes since the last newline
    while chunk := f.read(1 << 20):
        ends = _LINE_END.search(chunk)  # \r too: a classic Mac CSV ends its lines so
        if ends and run + ends.start() > MAX_LINE:
            run += ends.start()
        elif ends:
            run = (
                len(chunk) - max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) - 1
            )  # lines within the chunk are shorter than it
        else:
            run += len(chunk)
        if run > MAX_LINE:
            raise FwError(
                f"{source} line {newlines + 1}: longer than {MAX_LINE >> 20} MiB; a CSV line holds one example's "
                "values (is this a CSV file?)"
            )
        newlines += chunk.count(b"\n")
        data += chunk
    return decode(data, source)


def decode(data: bytes, source) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FwError(f"{source}: not UTF-8 text (byte {e.start}); save the CSV as UTF-8") from None


def label_classes(values):
    """The distinct labels, sorted: as numbers when every label is a whole number (2 before 10), else as text."""
    distinct = set(values)
    if all(_INT.fullmatch(v) for v in distinct):
        by_value = {}
        for v in distinct:
            by_value.setdefault(int(v), v)
        return [str(n) for n in sorted(by_value)]
    return sorted(distinct)


def canonical_label(value: str, numeric: bool) -> str:
    return str(int(value)) if numeric and _INT.fullmatch(value) else value


def _number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _short(text):
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _listed(names, limit=30):
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
