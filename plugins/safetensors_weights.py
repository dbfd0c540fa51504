"""Weights as safetensors, the field's format for tensors that cannot run code: an importer and a writer.

A ``.safetensors`` file is an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and byte range (``data_offsets``), then the
raw bytes. The names are fw's own, as in a ``.npz``: ``0.W, 0.b, 1.gamma, ...``
(or the book's ``W1, b1, ...``). Both go through the ``safetensors`` package,
an optional extra imported only when this format is used.

Before the package reads anything, the header is checked here against the
file: its length, every tensor's declared size against its byte range, and
the ranges against each other and the data, so a header that lies is refused
in one line before any array is made.
"""

import json
import math
import os
from pathlib import Path

from framework import FwError, WeightImporter, WeightWriter, hookimpl

MAX_HEADER = 4 << 20  # bytes of JSON: room for far more than MAX_TENSORS entries
MAX_TENSORS = 10_000  # as for a .npz
#: safetensors dtypes numpy holds, with their item sizes (BF16 and the F8 types have no numpy dtype).
DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}


def _package(purpose):
    from framework.interchange import optional_import

    return optional_import("safetensors.numpy", "safetensors", purpose)


class SafetensorsImporter(WeightImporter):
    """Named arrays from a ``.safetensors`` file, its header checked against the file first."""

    name = "safetensors"

    def load(self, path) -> dict:
        from framework.safeio.files import open_weights

        st = _package("weights.importer=safetensors")
        path = Path(path)
        try:
            f = open_weights(path)
        except FileNotFoundError:
            raise FwError(f"{path}: weights file not found; set weights.path to a .safetensors file") from None
        except OSError as e:
            raise FwError(f"{path}: cannot read the weights file: {e.strerror or e}") from e
        with f:
            size = os.fstat(f.fileno()).st_size
            check_header(f, size, path)
            f.seek(0)
            data = f.read(size + 1)
        if len(data) != size:
            raise FwError(f"{path}: changed while it was read; try again")
        try:
            return st.load(data)
        except Exception as e:  # safetensors' own SafetensorError: what the checks above did not foresee
            raise FwError(f"{path}: not a readable safetensors file ({' '.join(str(e).split())[:120]})") from e


def check_header(f, size, path) -> dict:
    """The header of the open file ``f`` (``size`` bytes), checked against the file; ``{name: entry}``."""
    from framework.data.weights import check_names

    if size < 8:
        raise FwError(
            f"{path}: {size} bytes, too short for a safetensors file (it starts with an 8-byte header length)"
        )
    n = int.from_bytes(f.read(8), "little")
    if n > MAX_HEADER:
        raise FwError(
            f"{path}: its header claims {n:,} bytes, more than the {MAX_HEADER:,} fw reads; "
            "the file is damaged or forged"
        )
    if n > size - 8:
        raise FwError(
            f"{path}: its header claims {n:,} bytes, but only {size - 8:,} follow; the file is cut off or forged"
        )
    try:
        header = json.loads(f.read(n), object_pairs_hook=_no_repeats)
    except (ValueError, RecursionError) as e:
        raise FwError(
            f"{path}: its header is not valid JSON ({' '.join(str(e).split())[:80]}); "
            "not a safetensors file, or a damaged one"
        ) from e
    if not isinstance(header, dict):
        raise FwError(f"{path}: its header is not a JSON object of tensors; not a safetensors file")
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    if len(entries) > MAX_TENSORS:
        raise FwError(f"{path}: names {len(entries):,} tensors; fw reads at most {MAX_TENSORS:,}")
    check_names(entries, path)
    data = size - 8 - n
    spans = sorted((_span(name, e, data, path), name) for name, e in entries.items())
    end, before = 0, None
    for (start, stop), name in spans:
        if start < end:
            raise FwError(
                f"{path}: '{name}' (bytes {start:,}-{stop:,}) overlaps the data of '{before}'; the header is forged"
            )
        if start > end:
            raise FwError(f"{path}: bytes {end:,}-{start:,} of its data belong to no tensor; the file is damaged")
        end, before = stop, name
    if end != data:
        raise FwError(f"{path}: its tensors end at byte {end:,} of {data:,} bytes of data; the file is damaged")
    return entries


def _span(name, entry, data, path):
    """``(start, stop)`` of one tensor's bytes, once its dtype, shape and offsets agree with each other and the file."""
    shape, offsets = (entry.get(k) if isinstance(entry, dict) else None for k in ("shape", "data_offsets"))
    dtype = entry.get("dtype") if isinstance(entry, dict) else None
    if dtype not in DTYPES:
        shown = json.dumps(dtype)[:20]
        raise FwError(f"{path}: '{name}' has dtype {shown}; fw reads {', '.join(DTYPES)} (convert BF16 to F32 first)")
    if not (isinstance(shape, list) and len(shape) <= 64 and all(type(d) is int and d >= 0 for d in shape)):
        raise FwError(f"{path}: '{name}' has no valid shape (a list of sizes); the file is damaged or forged")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise FwError(f"{path}: '{name}' has no valid data_offsets [start, end]; the file is damaged or forged")
    start, stop = offsets
    nbytes = math.prod(shape) * DTYPES[dtype]
    if stop - start != nbytes:
        raise FwError(
            f"{path}: '{name}' declares shape {tuple(shape)} of {dtype}, {nbytes:,} bytes, but its data_offsets hold "
            f"{stop - start:,}; the header lies about sizes"
        )
    if stop > data:
        raise FwError(
            f"{path}: '{name}' runs to byte {stop:,} of the data, which has {data:,}; the file is cut off or forged"
        )
    return start, stop


def _no_repeats(pairs):
    """A JSON object as a dict, refusing a name given twice (json keeps the last one silently).

    One pass with a set: the header may hold hundreds of thousands of names.
    """
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise ValueError(f"the name {k[:40]!r} appears twice")
        seen.add(k)
    return dict(pairs)


class SafetensorsWriter(WeightWriter):
    """A ``.safetensors`` file of the named arrays (read back by the ``safetensors`` importer)."""

    name = "safetensors"
    suffixes = (".safetensors",)

    def __init__(self):
        self._st = _package("weights.format=safetensors")  # checked when the writer is chosen, before training

    def write(self, f, arrays):
        import numpy as np

        f.write(self._st.save({k: np.ascontiguousarray(a) for k, a in arrays.items()}))


@hookimpl
def register_weight_importers(register):
    register(SafetensorsImporter)


@hookimpl
def register_weight_writers(register):
    register(SafetensorsWriter)
