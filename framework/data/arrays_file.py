"""Numeric arrays from a ``.npy`` or ``.npz`` file, read without pickle and sized before they are made.

Every array's shape and dtype come from its ``.npy`` header, and must agree
with the bytes that hold it (the file's size, or the zip member's), before
anything is allocated; object arrays are refused (loading them runs pickle).
"""

import math
from pathlib import Path

from ..errors import FwError

MAX_BYTES = 4 << 30  # all arrays of one file, unpacked


def load_arrays(path) -> dict:
    """``{name: array}`` of an ``.npz``; a ``.npy`` gives ``{"x": array}``."""
    from ..safeio.files import open_input

    path = Path(path)
    f = open_input(path, missing=f"{path}: no such file", needs="arrays are read from a regular .npy or .npz file")
    with f:
        try:
            if f.read(6) == b"\x93NUMPY":
                f.seek(0)
                return {"x": _read_npy(f, path, "x", _size(f))}
            f.seek(0)
            return _read_npz(f, path)
        except FwError:
            raise
        except Exception as e:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError...
            reason = " ".join(str(e).split())[:120] or type(e).__name__
            raise FwError(f"{path}: not a readable .npy or .npz file ({reason})") from e


def _size(f):
    import os

    return os.fstat(f.fileno()).st_size


def _read_npz(f, path):
    import zipfile

    if not zipfile.is_zipfile(f):
        raise FwError(f"{path}: not a .npy or .npz file (write one with numpy.save or numpy.savez)")
    f.seek(0)
    out = {}
    with zipfile.ZipFile(f) as archive:
        infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
        if sum(i.file_size for i in infos) > MAX_BYTES:
            raise FwError(f"{path}: its arrays unpack to more than {MAX_BYTES >> 30} GiB; fw reads smaller files")
        for info in infos:
            if info.flag_bits & 0x1:
                raise FwError(f"{path}: array '{info.filename[:-4]}' is encrypted")
            with archive.open(info) as member:
                out[info.filename[:-4]] = _read_npy(member, path, info.filename[:-4], info.file_size)
    return out


def _read_npy(f, path, name, size):
    """One ``.npy`` from the open file ``f`` of ``size`` bytes, its header checked against that size."""
    import numpy as np

    fmt = np.lib.format
    version = fmt.read_magic(f)
    read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if read_header is None:
        raise FwError(f"{path}: array '{name}' has .npy format version {version}, which fw does not read")
    shape, fortran, dtype = read_header(f)
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise FwError(
            f"{path}: array '{name}' has dtype {str(dtype)[:40]}; fw reads numbers only (no objects, text or records)"
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if f.tell() + nbytes != size:
        raise FwError(
            f"{path}: array '{name}' declares shape {shape} ({nbytes:,} bytes) "
            f"but holds {size - f.tell():,}; the file is damaged"
        )
    buf = np.empty(nbytes, np.uint8)
    view, got = memoryview(buf), 0
    while got < nbytes and (n := f.readinto(view[got:])):
        got += n
    if got < nbytes:
        raise FwError(f"{path}: array '{name}' ends after {got:,} of its {nbytes:,} bytes; the file is truncated")
    return buf.view(dtype).reshape(shape, order="F" if fortran else "C")


def first_non_finite(a, chunk=1 << 20):
    """``(row, index within the row's flattened values)`` of the first NaN or Inf in ``a``, or None.

    A chunk of rows at a time, so the check costs no copy of ``a``.
    """
    import numpy as np

    if a.dtype.kind != "f" or not a.size:
        return None
    flat = a.reshape(len(a), -1)
    rows = max(1, chunk // flat.shape[1])
    for start in range(0, len(flat), rows):
        bad = ~np.isfinite(flat[start : start + rows])
        if bad.any():
            row, at = np.argwhere(bad)[0]
            return start + int(row), int(at)
    return None
