"""Reading a numpy ``.npz`` archive that may be hostile: every size is checked before anything is unpacked.

A zip can declare gigabytes in a few megabytes, and a ``.npy`` header can
claim any shape. So the number of entries is bounded before the zip's
directory is parsed, every member's name, size (from the directory), dtype
and shape (from its ``.npy`` header) are checked, the sizes must agree, and
all members together may unpack to at most 32 MiB or 8 times the file's size.
Only then is any array read, with ``allow_pickle=False``. Used for weights
(the ``npz`` importer) and for fw train's checkpoints.
"""

import math
import os
from collections import Counter

from ..errors import FwError

MAX_MEMBERS = 10_000
FREE_BYTES = 32 << 20  # the arrays may always unpack to this much...
MAX_EXPANSION = 8  # ...or to this many times the file's size


def numeric(key, dtype) -> bool:
    """Plain numbers only: bool, int, float, complex, no fields, no sub-arrays."""
    return dtype.kind in "biufc" and dtype.fields is None and dtype.subdtype is None


def read_npz(f, path, *, check_names, allowed=numeric, layout, kind="weights") -> dict:
    """``{name: array}`` from the open regular file ``f``, after every check above.

    ``check_names(names)`` raises for names this kind of archive never holds;
    ``allowed(name, dtype)`` says which dtypes it may; ``layout`` ends the
    messages, e.g. "a weights .npz holds only .npy arrays (W1.npy, b1.npy, ...)".
    """
    import zipfile  # here: most runs read no archive

    try:
        with zipfile.ZipFile(_few_members(f, path, layout)) as archive:
            members = _check_members(archive, path, os.fstat(f.fileno()).st_size, check_names, allowed, layout, kind)
            return {key: _read(archive, path, key, *member) for key, member in members.items()}
    except FwError:
        raise
    except Exception as e:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError, ...
        raise FwError(f"{path}: not a readable .npz archive ({type(e).__name__}: {detail(e)}); {layout}") from e


def _few_members(f, path, layout):
    """``f``, rewound, once it is clear that its zip directory has at most ``MAX_MEMBERS`` entries.

    ``ZipFile`` builds an object for every entry before anything else can be
    checked (117 MB for 200,000 of them). Each entry starts with a signature,
    so counting those in the file bounds the entries without parsing any.
    """
    count, tail = 0, b""
    f.seek(0)
    while chunk := f.read(1 << 20):
        count += (tail + chunk).count(b"PK\x01\x02")
        tail = chunk[-3:]
    if count > MAX_MEMBERS:
        raise FwError(f"{path}: holds more than {MAX_MEMBERS:,} zip entries; {layout}")
    f.seek(0)
    return f


def _check_members(archive, path, size, check_names, allowed, layout, kind) -> dict:
    """``{name: (ZipInfo, (shape, fortran_order, dtype))}`` from the directory and the ``.npy`` headers alone."""
    import zipfile

    infos = archive.infolist()
    names = [info.filename for info in infos]
    odd = [n for n in names if not n.endswith(".npy")]
    if odd:
        raise FwError(f"{path}: holds {odd[0][:40]!r}, which is not a .npy array; {layout}")
    check_names([n[:-4] for n in names], path)
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise FwError(f"{path}: holds {twice[0][:40]!r} more than once; the file is damaged, write it again")
    total, limit = sum(info.file_size for info in infos), max(FREE_BYTES, MAX_EXPANSION * size)
    if total > limit:
        raise FwError(
            f"{path}: its arrays would unpack to {total:,} bytes from a {size:,}-byte file (at most {limit:,}: "
            f"{FREE_BYTES >> 20} MiB or {MAX_EXPANSION} times the file); refused as a zip bomb. "
            f"{kind.capitalize()} of that size compress little: save them uncompressed with numpy.savez"
        )
    members = {}
    for info in infos:
        key = info.filename[:-4]
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise FwError(
                f"{path}: array '{key}' is encrypted or compressed with zip method {info.compress_type}; "
                "numpy.savez and savez_compressed write plain or deflated members"
            )
        with archive.open(info) as member:
            shape, fortran, dtype = header = _header(member, path, key, allowed, kind)
            start = member.tell()
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != start + nbytes:
            raise FwError(
                f"{path}: array '{key}' is {info.file_size:,} bytes in the zip, but its .npy header describes "
                f"{start + nbytes:,} (shape {shape}, {dtype}); the file is damaged or forged"
            )
        members[key] = info, header
    return members


def _header(member, path, key, allowed, kind):
    import numpy as np

    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version not in ((1, 0), (2, 0)):  # 3.0 is only for utf-8 field names, never numeric arrays
            raise ValueError(f".npy format version {version}")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(member)  # numpy caps the header at 10,000 bytes
    except ValueError as e:
        raise FwError(
            f"{path}: array '{key}' has no valid .npy header ({detail(e)}); download or convert the file again"
        ) from e
    if dtype.hasobject:
        raise FwError(
            f"{path}: array '{key}' cannot be loaded without pickle (it holds Python objects); "
            f"{kind} must be numeric arrays"
        )
    if not allowed(key, dtype):
        raise FwError(
            f"{path}: array '{key}' has dtype {str(dtype)[:60]}; "
            f"{kind} must be numeric arrays (bool, int, float, complex)"
        )
    if len(shape) > 64 or any(n < 0 for n in shape):
        raise FwError(f"{path}: array '{key}' has an impossible shape {str(shape)[:60]}; the file is damaged or forged")
    return shape, fortran, dtype


def _read(archive, path, key, info, header):
    """The array, once its header is known to be sound: zipfile unpacks no more than the size checked."""
    import numpy as np

    try:
        with archive.open(info) as member:
            array = np.lib.format.read_array(member, allow_pickle=False)
    except Exception as e:  # a damaged member: zlib.error, BadZipFile (CRC), EOFError...
        raise FwError(
            f"{path}: array '{key}' is damaged ({type(e).__name__}: {detail(e)}); download or convert the file again"
        ) from e
    shape, _, dtype = header
    if array.shape != shape or array.dtype != dtype:  # the file changed while it was read
        raise FwError(f"{path}: array '{key}' changed while it was read; try again")
    return array


def detail(e) -> str:
    return " ".join(str(e)[:300].split())[:120]
