"""Load a pickled weights file without running code from it, in bounded time and memory.

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
uses the pure-Python unpickler, whose opcodes can be replaced. State is checked
before numpy sees it, and only plain numeric dtypes (bool, int, uint, float,
complex) are built. Object arrays are never created, so there is nothing to
reject after loading.

Plain data is dangerous too: hashing a dict key that is a tuple nested
150,000 deep recurses in C until the process segfaults, and a few hundred
bytes of tuples that each hold the previous one twice take 2^60 steps to
hash or ``repr``. So the file must have the one shape weight files have, a
dict of str names to numeric arrays, and each opcode is checked *before* the
object it makes is hashed, compared or stored:

- dict keys must be str and values arrays, checked before the key is hashed;
- tuples hold at most 64 plain items (numbers, strings, bytes, dtypes), nested
  at most two deep, as in numpy's own array and dtype state;
- lists, sets, floats, out-of-band buffers and object construction are refused;
- at most ``MAX_OPCODES`` opcodes, so time and memo size are bounded;
- no integer beyond 64 bits, no length beyond the file's size, and array
  shapes must match the bytes that come with them, before anything is allocated;
- at most three times the file's size in array data, however often the
  file's memo hands out the same bytes;
- an error quotes at most a few dozen characters of anything from the file.
"""

import copyreg
import math
import os
import pickle
import re
from struct import unpack

import numpy as np

from ..errors import FwError
from .files import open_weights

# numpy 2 moved numpy.core to numpy._core; numpy 1.x has only the former.
_np_core = getattr(np, "_core", None) or np.core

_NUMERIC = "biufc"  # dtype.kind: bool, int, uint, float, complex
MAX_OPCODES = 200_000  # ~35 per array: room for thousands of arrays
_MAX_ITEMS = 64  # numpy's longest tuple is a shape: at most 64 dimensions


class _Refused(pickle.UnpicklingError):
    """The file asks for something a weights file may not contain."""


def brief(obj, limit=60) -> str:
    """``repr(obj)`` cut to about ``limit`` characters, looking at no more of ``obj`` than it shows.

    Untrusted objects may be nested deep or share parts exponentially: a full
    ``repr`` could take forever or fill the memory.
    """
    out = []
    room = [limit]

    def emit(text):
        out.append(text[: max(room[0], 0)])
        room[0] -= len(text)

    def walk(x):
        if room[0] <= 0:
            return
        if type(x) in (tuple, list):
            emit("(" if type(x) is tuple else "[")
            for i, item in enumerate(x):
                if room[0] <= 0:
                    break
                emit(", " if i else "")
                walk(item)
            emit(("," if len(x) == 1 else "") + ")" if type(x) is tuple else "]")
        elif type(x) in (str, bytes, bytearray):
            emit(repr(x[:limit]))
        elif type(x) is int:
            emit(repr(x) if x.bit_length() <= 64 else f"<a {x.bit_length()}-bit int>")
        elif x is None or type(x) in (bool, float):
            emit(repr(x))
        elif isinstance(x, np.dtype):
            emit(f"dtype({str(x)[:20]!r})")
        else:
            emit(f"<{type(x).__name__}>")

    walk(obj)
    return "".join(out) + ("..." if room[0] < 0 else "")


def _numeric(dtype):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC or dtype.hasobject:
        if isinstance(dtype, np.dtype):
            raise _Refused(f"dtype {str(dtype)[:40]!r}")
        raise _Refused(f"a {type(dtype).__name__} in place of a dtype")
    return dtype


def _check_shape(shape, dtype, nbytes):
    """Refuse a shape that is not what ``nbytes`` of ``dtype`` data holds, before numpy sees it."""
    if type(shape) is not tuple or any(type(n) is not int or n < 0 for n in shape):
        raise _Refused(f"array shape {brief(shape)}")
    if math.prod(shape) * dtype.itemsize != nbytes:
        raise _Refused(f"an array of shape {brief(shape)} and dtype {dtype} over {nbytes} bytes of data")


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
    # numpy always writes _reconstruct(ndarray, (0,), b'b') and BUILDs the real array.
    if subtype is not _NDARRAY or type(shape) is not tuple or shape != (0,) or typecode not in (b"b", "b"):
        raise _Refused("'numpy._core.multiarray._reconstruct' with arguments numpy never writes")
    return _np_core.multiarray._reconstruct(np.ndarray, (0,), b"b")


def _dtype(spec, align=False, copy=False):
    # numpy writes dtype('f8', False, True). Always a fresh copy: numpy silently
    # ignores BUILD on its shared builtin dtypes, which would drop a big-endian byte order.
    if type(spec) is not str or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,7}", spec) or type(align) not in (bool, int):
        raise _Refused(f"'numpy.dtype' with arguments {brief((spec, align))}")
    return _numeric(np.dtype(spec, bool(align), True))


def _frombuffer(buf, dtype, shape, order, *axis_order):
    # Protocol 5: _frombuffer(bytearray, dtype, shape, 'C' or 'F'), or 'K' with the axis order.
    if type(buf) not in (bytes, bytearray):
        raise _Refused(f"array data of type {type(buf).__name__}")
    _check_shape(shape, _numeric(dtype), len(buf))
    if type(order) is not str or not (
        (order in ("C", "F") and not axis_order)
        or (order == "K" and len(axis_order) == 1 and _is_permutation(axis_order[0], len(shape)))
    ):
        raise _Refused(f"'numpy._core.numeric._frombuffer' with order {brief((order, *axis_order))}")
    return _np_core.numeric._frombuffer(buf, dtype, shape, order, *axis_order)


def _is_permutation(axes, n):
    return type(axes) is tuple and all(type(i) is int for i in axes) and sorted(axes) == list(range(n))


def _latin1(text, encoding="utf-8", errors="strict"):
    # Protocol 0-2 store bytes as _codecs.encode(str, 'latin1').
    if type(text) is not str or type(encoding) is not str or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"'_codecs.encode' with encoding {brief(encoding)}")
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
    _GLOBALS[f"{_core}.numeric", "_frombuffer"] = _frombuffer
_CALLABLE = {id(f): f for f in _GLOBALS.values()}

# What a tuple may hold: numpy's array and dtype state, and the arguments of the functions above.
_PLAIN = (type(None), bool, int, str, bytes, bytearray, np.dtype, _NdarrayToken)


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
        )  # fmt: skip
    if not ok:
        raise _Refused(f"dtype state {brief(state)}")
    d.__setstate__(state)
    _numeric(d)


def _build_array(a, state):
    # (version, shape, dtype, is_fortran, raw bytes); a list would mean an object array.
    if not isinstance(state, tuple) or len(state) != 5:
        raise pickle.UnpicklingError("bad numpy.ndarray state")
    version, shape, dtype, fortran, data = state
    _numeric(dtype)
    if type(data) not in (bytes, bytearray, str):
        raise _Refused(f"array data of type {type(data).__name__}")
    if type(version) is not int or type(fortran) not in (bool, int):
        raise _Refused(f"numpy.ndarray state {brief(state)}")
    _check_shape(shape, dtype, len(data))  # a str is latin-1: one character per byte
    a.__setstate__(state)


class _File:
    """The weights file for the unpickler: no read is larger than what is left of it.

    A length field in the file cannot make the reader allocate more than the
    file holds; such a file is merely truncated.
    """

    def __init__(self, f):
        self._f = f
        self.size = self.left = os.fstat(f.fileno()).st_size

    def read(self, n):
        if n > self.left:
            raise pickle.UnpicklingError("pickle data was truncated")
        data = self._f.read(n)
        self.left -= len(data)
        return data

    def readline(self):
        line = self._f.readline()
        self.left -= len(line)
        return line


def _refuse(what):
    def op(self):
        raise _Refused(what)

    return op


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler with every opcode a weights pickle needs checked, and no others."""

    def __init__(self, f):
        self._file = _File(f)
        # latin1 lets Python 2 numpy pickles load (their array bytes are str).
        super().__init__(self._file, encoding="latin1")
        self._opcodes = 0
        self._bytes_left = 3 * self._file.size  # see _charge
        self._flat = {id(()): ()}  # tuples holding no tuple, by id (the value keeps the id taken)

    def find_class(self, module, name):
        try:
            return _GLOBALS[module, name]
        except KeyError:
            dotted = f"{module}.{name}"
            raise _Refused(f"'{dotted[:80]}{'...' if len(dotted) > 80 else ''}'") from None

    def get_extension(self, code):
        # Not through copyreg's cache: a code another unpickler resolved must still meet find_class.
        key = copyreg._inverted_registry.get(code)
        if not key:
            raise pickle.UnpicklingError(f"unregistered extension code {code}")
        self.append(self.find_class(*key))

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {brief(pid)}")

    def _charge(self, nbytes):
        """Count array data made: ``_codecs.encode`` and BUILD inputs, and the arrays the dict holds.

        Each is at most the file's size when every array's data is in the file
        once; data reused through the memo is refused before it is copied again.
        """
        self._bytes_left -= nbytes
        if self._bytes_left < 0:
            raise _Refused(f"more than {3 * self._file.size:,} bytes of array data from a {self._file.size:,}-byte file")

    @staticmethod
    def _data_size(items):
        return sum(len(x) for x in items if type(x) in (bytes, bytearray, str)) if type(items) is tuple else 0

    # -- plain values: ints of at most 64 bits, lengths no larger than the file

    def _small_int(self, text):
        if len(text) > 24:  # spares int() a 4,300-digit parse
            raise _Refused(f"an integer of {len(text)} digits")
        value = int(text, 0)
        if value.bit_length() > 64:
            raise _Refused(f"an integer of {value.bit_length()} bits")
        return value

    def _load_int(self):
        data = self.readline()  # protocol 0 writes True and False as INT 01 and 00
        self.append(False if data == b"00\n" else True if data == b"01\n" else self._small_int(data.strip()))

    def _load_long(self):
        text = self.readline()[:-1]
        self.append(self._small_int(text[:-1] if text.endswith(b"L") else text))

    def _long(self, n):
        if n < 0:
            raise pickle.UnpicklingError("LONG pickle has negative byte count")
        if n > 8:
            raise _Refused(f"an integer of {n} bytes")
        self.append(int.from_bytes(self.read(n), "little", signed=True))

    def _load_long1(self):
        self._long(self.read(1)[0])

    def _load_long4(self):
        self._long(unpack("<i", self.read(4))[0])

    def _load_bytearray8(self):
        (n,) = unpack("<Q", self.read(8))
        if n > self._file.size:  # bytearray(n) would fill n bytes before reading any
            raise pickle.UnpicklingError("pickle data was truncated")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    # -- tuples: short, of plain items, at most two deep

    def _tuple(self, items):
        if len(items) > _MAX_ITEMS:
            raise _Refused(f"a tuple of {len(items)} items")
        nested = False
        for x in items:
            if type(x) is tuple:
                if self._flat.get(id(x)) is not x:
                    raise _Refused("tuples nested more than two deep")
                nested = True
            elif not isinstance(x, _PLAIN):
                raise _Refused(f"a tuple item of type {type(x).__name__}")
        t = tuple(items)
        if not nested:
            self._flat[id(t)] = t
        return t

    def _load_tuple(self):
        items = self.pop_mark()  # first: it changes what self.append appends to
        self.append(self._tuple(items))

    def _load_empty_tuple(self):
        self.append(())

    @staticmethod
    def _tuple_n(n):
        def op(self):
            if len(self.stack) < n:
                raise pickle.UnpicklingError("not enough items on the stack for a tuple")
            self.stack[-n:] = [self._tuple(self.stack[-n:])]

        return op

    # -- the one dict: str keys, checked before they are hashed; array values

    def _set_items(self, target, items):
        if type(target) is not dict:
            raise _Refused(f"items set on an object of type {type(target).__name__}")
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for a dict")
        for key, value in zip(items[::2], items[1::2]):
            if type(key) is not str:
                raise _Refused(f"a non-str dict key {brief(key, 40)} ({type(key).__name__})")
            if type(value) is not np.ndarray:
                raise _Refused(f"{brief(key, 40)} holding a {type(value).__name__}, not a numpy array")
        for key, value in zip(items[::2], items[1::2]):
            self._charge(value.nbytes)
            target[key] = value

    def _load_dict(self):
        d = {}
        self._set_items(d, self.pop_mark())
        self.append(d)

    def _load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._set_items(self.stack[-1], [key, value])

    def _load_setitems(self):
        items = self.pop_mark()
        self._set_items(self.stack[-1], items)

    def _load_stop(self):
        if self.stack and type(self.stack[-1]) is not dict:
            raise _Refused(f"a top-level {type(self.stack[-1]).__name__} (not a dict)")
        pickle._Unpickler.load_stop(self)

    # -- calls: only the functions above, with a tuple of arguments

    def _load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if _CALLABLE.get(id(func)) is not func:
            raise _Refused(f"a call to an object of type {type(func).__name__}")
        if type(args) is not tuple:
            raise _Refused(f"call arguments of type {type(args).__name__}")
        self._charge(self._data_size(args))
        self.stack[-1] = func(*args)

    def _load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        self._charge(self._data_size(state))
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

    def _load_inst(self):
        self._load_global()  # refuses any global but numpy's own, by name
        raise _Refused("an INST call, which numpy never writes")


def _opcode(name):
    return getattr(pickle, name)[0]


def _counted(op):
    def counted(self):
        self._opcodes += 1
        if self._opcodes > MAX_OPCODES:
            raise _Refused(f"more than {MAX_OPCODES:,} pickle opcodes")
        op(self)

    return counted


# Opcodes run as the pure-Python unpickler runs them: none makes anything unchecked.
_KEPT = """PROTO FRAME STOP MARK NONE NEWTRUE NEWFALSE BININT BININT1 BININT2 STRING BINSTRING SHORT_BINSTRING
UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINBYTES SHORT_BINBYTES BINBYTES8 EMPTY_DICT STACK_GLOBAL
EXT1 EXT2 EXT4 PUT BINPUT LONG_BINPUT MEMOIZE GET BINGET LONG_BINGET PERSID BINPERSID"""
_REPLACED = {
    "INT": _Unpickler._load_int, "LONG": _Unpickler._load_long, "LONG1": _Unpickler._load_long1,
    "LONG4": _Unpickler._load_long4, "BYTEARRAY8": _Unpickler._load_bytearray8,
    "TUPLE": _Unpickler._load_tuple, "EMPTY_TUPLE": _Unpickler._load_empty_tuple,
    "TUPLE1": _Unpickler._tuple_n(1), "TUPLE2": _Unpickler._tuple_n(2), "TUPLE3": _Unpickler._tuple_n(3),
    "DICT": _Unpickler._load_dict, "SETITEM": _Unpickler._load_setitem, "SETITEMS": _Unpickler._load_setitems,
    "STOP": _Unpickler._load_stop, "REDUCE": _Unpickler._load_reduce, "BUILD": _Unpickler._load_build,
    "GLOBAL": _Unpickler._load_global, "INST": _Unpickler._load_inst,
}  # fmt: skip
_REFUSED = {
    "a float": "FLOAT BINFLOAT",
    "a list": "EMPTY_LIST LIST APPEND APPENDS",
    "a set": "EMPTY_SET FROZENSET ADDITEMS",
    "an object built by its class": "OBJ NEWOBJ NEWOBJ_EX",
    "an out-of-band buffer (protocol 5)": "NEXT_BUFFER READONLY_BUFFER",
    "a POP or DUP opcode, which numpy never writes": "POP POP_MARK DUP",
}
_table = {_opcode(name): pickle._Unpickler.dispatch[_opcode(name)] for name in _KEPT.split()}
_table.update({_opcode(name): op for name, op in _REPLACED.items()})
_table.update({_opcode(name): _refuse(what) for what, names in _REFUSED.items() for name in names.split()})
_Unpickler.dispatch = {code: _counted(op) for code, op in _table.items()}


def load(path) -> dict:
    """Unpickle ``path``: a dict of str names to numeric numpy arrays, and nothing else.

    Raises ``FwError`` naming the file for anything refused, truncated or corrupt,
    in time and memory bounded by the file's size.
    """
    try:
        with open_weights(path) as f:
            return _Unpickler(f).load()
    except _Refused as e:
        what = " ".join(str(e).split())  # a repr may span lines; the message must not
        raise FwError(
            f"{path}: refused to unpickle {what}: a weights pickle may only hold a dict of names to numeric "
            "numpy arrays; if you trust the file, convert it to .npz (numpy.savez) and use that"
        ) from e
    except FwError:
        raise
    except OSError as e:
        raise FwError(f"{path}: cannot read the weights file: {e.strerror or e}") from e
    except Exception as e:  # EOFError, UnpicklingError, ValueError, ... from a damaged file
        raise FwError(
            f"{path}: not a readable pickle ({type(e).__name__}: {_detail(e)}); "
            "the file is truncated or corrupt, download it again"
        ) from e


def _detail(e) -> str:
    try:
        text = str(e)[:400]
    except Exception:  # e.g. an int too long to print
        text = ""
    return " ".join(text.split())[:200]
