"""Load a pickled weights file without running code from it.

``pickle.load`` calls whatever the file names, so an ordinary weights pickle
can run any command on load. Here only the few globals that numpy's own
pickles name are resolved (numpy 1.x ``numpy.core...`` and numpy 2
``numpy._core...`` alike, without importing the deprecated ``numpy.core``
alias); any other global is refused by its dotted name before anything is
called.

An allowlist alone is not enough. The BUILD opcode passes state from the file
to ``dtype.__setstate__``, and numpy trusts that state. So a file made only of
allowed globals can put an object field over raw bytes, and reading the array
then follows forged pointers (a segfault, or worse). This is why the loader
uses the pure-Python unpickler, whose BUILD can be replaced. State is checked
before numpy sees it, and only plain numeric dtypes (bool, int, uint, float,
complex) are built. Object arrays are never created, so there is nothing to
reject after loading.
"""

import pickle

import numpy as np

from .errors import FwError

# numpy 2 moved numpy.core to numpy._core; numpy 1.x has only the former.
_np_core = getattr(np, "_core", None) or np.core

_NUMERIC = "biufc"  # dtype.kind: bool, int, uint, float, complex


class _Refused(pickle.UnpicklingError):
    """The file asks for something a weights file may not contain."""


def _numeric(dtype):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC or dtype.hasobject:
        if isinstance(dtype, np.dtype):
            raise _Refused(f"dtype {str(dtype)!r}")
        raise _Refused(f"a {type(dtype).__name__} in place of a dtype")
    return dtype


class _NdarrayToken:
    """What ``numpy.ndarray`` resolves to: only ``_reconstruct`` accepts it.

    Calling the real class, e.g. ``ndarray((1,), 'O', buf)``, builds an object
    array straight over raw bytes. No legitimate pickle does that.
    """

    __slots__ = ()

    def __call__(self, *args):
        raise _Refused("a direct call to 'numpy.ndarray'")


_NDARRAY = _NdarrayToken()


def _reconstruct(subtype, shape, typecode):
    # numpy always writes _reconstruct(ndarray, (0,), 'b') and BUILDs the real array.
    if subtype is not _NDARRAY or shape != (0,):
        raise _Refused("'numpy._core.multiarray._reconstruct' with arguments numpy never writes")
    a = _np_core.multiarray._reconstruct(np.ndarray, (0,), typecode)
    _numeric(a.dtype)
    return a


def _dtype(spec, align=False, copy=False):
    # Always a fresh copy: numpy silently ignores BUILD on its shared builtin
    # dtypes, which would drop a big-endian byte order.
    return _numeric(np.dtype(spec, bool(align), True))


def _scalar(dtype, data=None):
    return _np_core.multiarray.scalar(_numeric(dtype), data)


def _frombuffer(buf, dtype, shape, order, *axis_order):
    return _np_core.numeric._frombuffer(buf, _numeric(dtype), shape, order, *axis_order)


def _latin1(text, encoding="utf-8", errors="strict"):
    # Protocol 0-2 store bytes as _codecs.encode(str, 'latin1').
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"'_codecs.encode' with encoding {encoding!r}")
    return text.encode("latin1")


def _empty_bytes():
    return b""  # protocol 0-2 write b'' as bytes()


_GLOBALS = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}
for _core in ("numpy.core", "numpy._core"):
    _GLOBALS[f"{_core}.multiarray", "_reconstruct"] = _reconstruct
    _GLOBALS[f"{_core}.multiarray", "scalar"] = _scalar
    _GLOBALS[f"{_core}.numeric", "_frombuffer"] = _frombuffer


def _build_dtype(d, state):
    # numpy writes (3, byteorder, None, None, None, -1, -1, 0); subarrays,
    # fields, sizes and flags are exactly what could forge an object layout.
    ok = isinstance(state, tuple) and len(state) in (8, 9)
    if ok:
        version, order, sub, names, fields, elsize, alignment, flags, *meta = state
        ints = (version, elsize, alignment, flags)
        ok = (
            all(type(i) is int for i in ints)
            and version in (3, 4)
            and type(order) is str
            and order in ("<", ">", "|", "=")
            and sub is None and names is None and fields is None
            and elsize in (-1, d.itemsize)
            and alignment in (-1, d.alignment)
            and flags == d.flags
            and all(m is None for m in meta)
        )
    if not ok:
        raise _Refused(f"dtype state {state!r:.80}")
    d.__setstate__(state)
    _numeric(d)


def _build_array(a, state):
    # (version, shape, dtype, is_fortran, raw bytes); a list would mean an object array.
    if not isinstance(state, tuple) or len(state) != 5:
        raise pickle.UnpicklingError("bad numpy.ndarray state")
    _numeric(state[2])
    if not isinstance(state[4], (bytes, bytearray, str)):
        raise _Refused(f"array data of type {type(state[4]).__name__}")
    a.__setstate__(state)


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler: unlike the C one, its BUILD can be replaced."""

    def find_class(self, module, name):
        try:
            return _GLOBALS[module, name]
        except KeyError:
            raise _Refused(f"'{module}.{name}'") from None

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {pid!r:.60}")

    def _load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is np.ndarray:
            _build_array(inst, state)
        elif isinstance(inst, np.dtype):
            _build_dtype(inst, state)
        else:
            raise _Refused(f"state for a {type(inst).__name__}")

    def _load_global(self):
        # Unlike the C unpickler, the Python one accepts a line cut short, so a
        # truncated file would read as a refused partial name.
        module, name = self.readline(), self.readline()
        if not name.endswith(b"\n"):
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(self.find_class(module[:-1].decode("utf-8"), name[:-1].decode("utf-8")))

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.GLOBAL[0]] = _load_global


def load(path):
    """Unpickle ``path``, allowing only numeric numpy arrays and plain data.

    Raises ``FwError`` naming the file for anything refused, truncated or corrupt.
    """
    try:
        with open(path, "rb") as f:
            # latin1 lets Python 2 numpy pickles load (their array bytes are str).
            return _Unpickler(f, encoding="latin1").load()
    except _Refused as e:
        what = " ".join(str(e).split())  # a repr may span lines; the message must not
        raise FwError(
            f"{path}: refused to unpickle {what}: weight pickles may only contain numeric numpy "
            "arrays; if you trust the file, convert it to .npz (numpy.savez) and use that"
        ) from e
    except OSError as e:
        raise FwError(f"{path}: cannot read the weights file: {e.strerror or e}") from e
    except Exception as e:  # EOFError, UnpicklingError, ValueError, ... from a damaged file
        detail = " ".join(str(e).split())[:200]
        raise FwError(
            f"{path}: not a readable pickle ({type(e).__name__}: {detail}); "
            "the file is truncated or corrupt, download it again"
        ) from e
