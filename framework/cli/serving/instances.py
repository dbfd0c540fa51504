"""A request's ``instances`` as ``fw predict``'s input batches, read by ``fw predict``'s own code.

An instance is a list of numbers shaped like one example (or flat), an object
``{column: value}`` for a table model, or ``{"b64": ...}``, an image file's
bytes, read as ``fw predict`` reads an image file. Every problem is an
``FwError`` naming the instance; the server answers it with 422.
"""

import base64
import binascii
import itertools
import os
import tempfile

import numpy as np

from ...data.table import Table
from ...errors import FwError
from ..predict import Batch, fitted, table_batch


def batches_of(instances, dataset) -> list:
    """``fw predict``'s batches for a request's instances (all of one kind: lists, objects, or images)."""
    if not isinstance(instances, list) or not instances:
        raise FwError('"instances" must be a non-empty list of examples, e.g. {"instances": [[0, 0, ...]]}')
    columns = dataset.feature_names or ()
    images = [isinstance(i, dict) and "b64" in i and "b64" not in columns for i in instances]
    if all(images):
        return [_image(k, item["b64"], dataset) for k, item in enumerate(instances)]
    if all(isinstance(i, dict) for i in instances) and not any(images):
        return [_rows(instances, dataset)]
    if not any(isinstance(i, dict) for i in instances):
        return [_arrays(instances, dataset)]
    raise FwError('instances: mixes lists, objects and {"b64": ...} images; send one kind per request')


def _arrays(instances, dataset):
    a = _pixels(instances) if dataset.pixels else None
    try:
        a = _floats(instances) if a is None else a
    except (ValueError, TypeError):
        raise FwError(
            f"instances: are not lists of numbers all of one shape; each must be one example of shape "
            f"{list(dataset.example_shape())} (or flat)"
        ) from None
    return Batch("instances", fitted("instances", a, dataset), list(range(len(a))))


def _pixels(instances):
    """Whole numbers from 0 to 255 in lists of one shape as uint8, a pixel dataset's own dtype (an image file's);
    None for anything else, which then goes numpy's way (its errors, fw's range check).

    ``bytes()`` reads a list of such numbers in C: an image in 7.7 us against numpy's 15.9 (``np.asarray``
    looks at each value twice, for the shape and dtype and then to copy it). The values are the same.
    """
    shape, first = [], instances
    while type(first) is list and first:
        shape.append(len(first))
        first = first[0]
    if type(first) is not int:
        return None
    rows = [instances]
    try:
        for n in shape[:-1]:  # every list at this depth has n items; then the next depth's
            if set(map(len, rows)) != {n}:
                return None
            rows = list(itertools.chain.from_iterable(rows))
        if set(map(len, rows)) != {shape[-1]}:
            return None
        data = b"".join(map(bytes, rows))  # bytes() takes only ints 0..255 (True and False as 1 and 0)
        return np.frombuffer(bytearray(data), np.uint8).reshape(shape)  # writable, as an image file's pixels are
    except (TypeError, ValueError):  # a number, text or object where a list should be; a value out of range;
        return None  # more axes than numpy takes


def _floats(instances):
    """``np.asarray(instances, dtype=np.float64)``, the same numbers; faster for whole numbers (pixels), which
    numpy reads as int64 in two thirds of the time, an int64 becoming the float64 Python's ``float`` gives it."""
    first = instances
    while isinstance(first, list) and first:
        first = first[0]
    if type(first) is int:
        try:
            a = np.asarray(instances)
        except (ValueError, TypeError):  # ragged, or not numbers: numpy's own error below
            a = None
        if a is not None and a.dtype == np.int64:
            return a.astype(np.float64)
    return np.asarray(instances, dtype=np.float64)


def _rows(instances, dataset):
    """Objects as a table, one row each, read as ``fw predict``
    reads a CSV's rows (so an error names "instances row 2")."""
    header = list(dict.fromkeys(key for item in instances for key in item))
    rows = [[_field(item.get(key), k, key) for key in header] for k, item in enumerate(instances)]
    numbers = list(range(1, len(rows) + 1))  # rows count from 1, as in fw predict's CSV files (and its messages)
    return table_batch("instances", Table("instances", header, numbers, rows=rows), dataset)


def _field(value, k, key):
    """A JSON value as a CSV field: numbers as written, text as it is, null as a blank."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise FwError(f"instances:{k}, column '{key}': {type(value).__name__} is not a value; give a number or text")


def _image(k, data, dataset):
    """``{"b64": ...}``: the bytes go through a private temporary file to the dataset's image reader."""
    name = f"instances:{k}"
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise FwError(f'{name}: "b64" is not base64 text; give an image file\'s bytes in base64') from None
    fd, path = tempfile.mkstemp(prefix="fw-serve-", suffix=".image")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        try:
            raw = dataset.example_from_image(path)
        except FwError as e:
            raise FwError(str(e).replace(path, name)) from None
    finally:
        os.unlink(path)
    return Batch(name, raw[None], [None])
