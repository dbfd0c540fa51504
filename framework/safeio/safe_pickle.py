"""Load a pickled weights file without running code from it, in bounded time and memory.

``pickle.load`` calls whatever the file names, so an ordinary weights pickle
can run any command on load. Here only the few globals that numpy's own
pickles name are resolved, through the documented ``Unpickler.find_class``
(numpy 1.x ``numpy.core...`` and numpy 2 ``numpy._core...`` alike, without
importing the deprecated ``numpy.core`` alias); any other global is refused by
its dotted name before anything is called.

An allowlist alone is not enough. The BUILD opcode passes state from the file
to ``dtype.__setstate__``, and numpy trusts that state. So a file made only of
allowed globals can put an object field over raw bytes, and reading the array
then follows forged pointers (a segfault, or worse). So what the allowed
globals return are stand-ins (``_Dtype``, ``_Array``) whose ``__setstate__``
checks the state before numpy sees it, and only plain numeric dtypes (bool,
int, uint, float, complex) are built. Object arrays are never created, so
there is nothing to reject after loading.

Plain data is dangerous too: hashing a dict key that is a tuple nested
150,000 deep recurses in C until the process segfaults, and a few hundred
bytes of tuples that each hold the previous one twice take 2^60 steps to
hash or ``repr``. The unpickler has no hook for that, so before it runs, the
file's opcodes are read once (``_Opcodes``, following the format that
``pickletools`` documents) with what each puts on the stack, and the file must
have the one shape weight files have, a dict of str names to numeric arrays:

- dict keys must be str and values arrays;
- tuples hold at most 64 plain items (numbers, strings, bytes, dtypes), nested
  at most two deep, as in numpy's own array and dtype state;
- lists, sets, floats, out-of-band buffers, extension codes and object
  construction are refused;
- at most ``MAX_OPCODES`` opcodes, so time and memo size are bounded;
- no integer beyond 64 bits, no length beyond the file's size, and array
  shapes must match the bytes that come with them, before anything is allocated;
- at most three times the file's size in array data, however often the
  file's memo hands out the same bytes;
- an error quotes at most a few dozen characters of anything from the file.
"""

import copyreg
import io
import math
import pickle
import re
from struct import calcsize, unpack

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
        elif isinstance(x, (np.dtype, _Dtype)):
            emit(f"dtype({str(getattr(x, 'dtype', x))[:20]!r})")
        elif type(x) is _Made:
            emit(f"<{x.kind}>")
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


def _data_size(items):
    return sum(len(x) for x in items if type(x) in (bytes, bytearray, str)) if type(items) is tuple else 0


# -- what the allowed globals are, for the unpickler: checked functions and stand-ins


class _Checked:
    """An allowed global as the unpickler sees it: charges the array data in its arguments, then calls its function.

    No ``__dict__`` and no state: BUILD cannot set attributes on it.
    """

    __slots__ = ("func", "loader")

    def __init__(self, func, loader):
        self.func, self.loader = func, loader

    def __call__(self, *args):
        self.loader.charge(_data_size(args))
        return self.func(self.loader, *args)

    def __setstate__(self, state):
        raise _Refused("state for a function")


class _Dtype:
    """A dtype from the file: BUILD's state is checked before numpy sees it."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    def __setstate__(self, state):
        _build_dtype(self.dtype, state)


class _Array:
    """An array from the file: BUILD's state is checked, and its data charged, before numpy sees it."""

    __slots__ = ("array", "loader")

    def __init__(self, array, loader):
        self.array, self.loader = array, loader

    def __setstate__(self, state):
        self.loader.charge(_data_size(state))
        _build_array(self.array, state)


def _real_dtype(dtype):
    return _numeric(dtype.dtype if type(dtype) is _Dtype else dtype)


def _ndarray(loader, *args):
    # Calling the real class, e.g. ndarray((1,), 'O', buf), builds an object
    # array straight over raw bytes. No legitimate pickle does that.
    raise _Refused("a direct call to 'numpy.ndarray'")


def _reconstruct_args(subtype, shape, typecode):
    # numpy always writes _reconstruct(ndarray, (0,), b'b') and BUILDs the real array.
    ndarray = (type(subtype) is _Checked and subtype.func is _ndarray) or (
        type(subtype) is _Made and subtype.name == _NDARRAY  # as _Opcodes sees it
    )
    made = type(typecode) is _Made  # b'b' written as a call (protocols 0-2): _Opcodes knows not its value
    if not ndarray or type(shape) is not tuple or shape != (0,) or not (made or typecode in (b"b", "b")):
        raise _Refused("'numpy._core.multiarray._reconstruct' with arguments numpy never writes")


def _reconstruct(loader, subtype, shape, typecode):
    _reconstruct_args(subtype, shape, typecode)
    return _Array(_np_core.multiarray._reconstruct(np.ndarray, (0,), b"b"), loader)


def _dtype(loader, spec, align=False, copy=False):
    # numpy writes dtype('f8', False, True). Always a fresh copy: numpy silently
    # ignores BUILD on its shared builtin dtypes, which would drop a big-endian byte order.
    if type(spec) is not str or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,7}", spec) or type(align) not in (bool, int):
        raise _Refused(f"'numpy.dtype' with arguments {brief((spec, align))}")
    return _Dtype(_numeric(np.dtype(spec, bool(align), True)))


def _frombuffer(loader, buf, dtype, shape, order, *axis_order):
    # Protocol 5: _frombuffer(bytearray, dtype, shape, 'C' or 'F'), or 'K' with the axis order.
    if type(buf) not in (bytes, bytearray):
        raise _Refused(f"array data of type {type(buf).__name__}")
    dtype = _real_dtype(dtype)
    _check_shape(shape, dtype, len(buf))
    if type(order) is not str or not (
        (order in ("C", "F") and not axis_order)
        or (order == "K" and len(axis_order) == 1 and _is_permutation(axis_order[0], len(shape)))
    ):
        raise _Refused(f"'numpy._core.numeric._frombuffer' with order {brief((order, *axis_order))}")
    return _Array(_np_core.numeric._frombuffer(buf, dtype, shape, order, *axis_order), loader)


def _is_permutation(axes, n):
    return type(axes) is tuple and all(type(i) is int for i in axes) and sorted(axes) == list(range(n))


def _latin1_args(text, encoding="utf-8", errors="strict"):
    # Protocol 0-2 store bytes as _codecs.encode(str, 'latin1').
    if type(text) is not str or type(encoding) is not str or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"'_codecs.encode' with encoding {brief(encoding)}")


def _latin1(loader, *args):
    _latin1_args(*args)
    return args[0].encode("latin1")


def _empty_bytes(loader):
    return b""  # protocol 0-2 write b'' as bytes()


_NDARRAY = ("numpy", "ndarray")

# (module, name): the checked function; what calling it puts on the stack, and the check of
# its arguments that needs no array data, for _Opcodes (so the file's first fault is the one reported)
_GLOBALS = {
    _NDARRAY: (_ndarray, "ndarray", None),
    ("numpy", "dtype"): (_dtype, "dtype", lambda *args: _dtype(None, *args)),
    ("_codecs", "encode"): (_latin1, "bytes", _latin1_args),
    ("__builtin__", "bytes"): (_empty_bytes, "bytes", None),
    ("builtins", "bytes"): (_empty_bytes, "bytes", None),
}
for _core in ("numpy.core", "numpy._core"):
    _GLOBALS[f"{_core}.multiarray", "_reconstruct"] = (_reconstruct, "ndarray", _reconstruct_args)
    _GLOBALS[f"{_core}.numeric", "_frombuffer"] = (_frombuffer, "ndarray", None)


def _allowed(module, name):
    """The entry of ``_GLOBALS`` for ``module.name``; refused by its dotted name if there is none."""
    try:
        return _GLOBALS[module, name]
    except KeyError:
        dotted = f"{module}.{name}"
        raise _Refused(f"'{dotted[:80]}{'...' if len(dotted) > 80 else ''}'") from None


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
            and sub is None
            and names is None
            and fields is None
            and elsize in (-1, d.itemsize)
            and alignment in (-1, d.alignment)
            and flags == d.flags
            and all(m is None for m in meta)
        )
    if not ok:
        raise _Refused(f"dtype state {brief(state)}")
    d.__setstate__(state)
    _numeric(d)


def _build_array(a, state):
    # (version, shape, dtype, is_fortran, raw bytes); a list would mean an object array.
    if not isinstance(state, tuple) or len(state) != 5:
        raise pickle.UnpicklingError("bad numpy.ndarray state")
    version, shape, dtype, fortran, data = state
    dtype = _real_dtype(dtype)
    if type(data) not in (bytes, bytearray, str):
        raise _Refused(f"array data of type {type(data).__name__}")
    if type(version) is not int or type(fortran) not in (bool, int):
        raise _Refused(f"numpy.ndarray state {brief(state)}")
    _check_shape(shape, dtype, len(data))  # a str is latin-1: one character per byte
    a.__setstate__((version, shape, dtype, fortran, data))


class _Loader(pickle.Unpickler):
    """The unpickler: allowed globals only, as ``_Checked`` functions; no persistent ids; array data bounded."""

    def __init__(self, data):
        # latin1 lets Python 2 numpy pickles load (their array bytes are str).
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.size = len(data)
        self.left = 3 * self.size  # see charge

    def find_class(self, module, name):
        return _Checked(_allowed(module, name)[0], self)

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {brief(pid)}")

    def charge(self, nbytes):
        """Count array data made: ``_codecs.encode`` and BUILD inputs, and the arrays the dict holds.

        Each is at most the file's size when every array's data is in the file
        once; data reused through the memo is refused before it is copied again.
        """
        self.left -= nbytes
        if self.left < 0:
            raise _Refused(f"more than {3 * self.size:,} bytes of array data from a {self.size:,}-byte file")

    def arrays(self):
        """The file's dict of names to arrays (``_Opcodes`` saw it is one, of arrays)."""
        out = {}
        for key, value in self.load().items():
            if type(value) is not _Array:  # a call to numpy.ndarray, refused already: never reached
                raise _Refused(f"{brief(key, 40)} holding a {type(value).__name__}, not a numpy array")
            self.charge(value.array.nbytes)
            out[key] = value.array
        return out


# -- before unpickling: the opcodes, and what each puts on the stack


class _Made:
    """What ``_Opcodes`` knows of an object the unpickler would make: its kind (and a global's (module, name))."""

    __slots__ = ("kind", "name")

    def __init__(self, kind, name=None):
        self.kind, self.name = kind, name


_DICT, _MARK = _Made("dict"), _Made("mark")


def _kind(x):
    return x.kind if type(x) is _Made else "dtype" if type(x) is _Dtype else type(x).__name__


def _small_int(text):
    if len(text) > 24:  # spares int() a 4,300-digit parse
        raise _Refused(f"an integer of {len(text)} digits")
    try:
        return _bits64(int(text, 0))
    except ValueError:
        raise pickle.UnpicklingError(f"not an integer: {brief(text)}") from None


def _bits64(value):
    if value.bit_length() > 64:
        raise _Refused(f"an integer of {value.bit_length()} bits")
    return value


class _Opcodes:
    """Reads a pickle's opcodes once, before it is unpickled, and follows what each puts on the stack.

    Plain values (None, bools, ints, str, bytes, tuples of them) are kept as
    the file gives them; anything else is a ``_Made``. Every check that needs
    no numpy happens here, before the unpickler hashes, compares or allocates
    anything; the unpickler's ``find_class`` and the stand-ins check the rest.
    """

    def __init__(self, data):
        self.data, self.view, self.pos = data, memoryview(data), 0  # (slices of a view copy nothing)
        self.stack, self.memo, self.marks = [], {}, []
        self.flat = {id(()): ()}  # the tuples that hold no tuple, by id

    def read(self, n):
        if n > len(self.data) - self.pos:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.pos += n
        return self.view[self.pos - n : self.pos]

    def readline(self):
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise pickle.UnpicklingError("pickle data was truncated")
        line, self.pos = self.data[self.pos : end], end + 1
        return line

    def number(self, fmt):
        return unpack(fmt, self.read(calcsize(fmt)))[0]

    def check(self):
        """Read up to STOP; raise ``_Refused`` or UnpicklingError at the first opcode a weights file may not hold."""
        for _ in range(MAX_OPCODES):
            code = self.read(1).tobytes()
            if code in _REFUSED:
                raise _Refused(_REFUSED[code])
            if code not in _OPS:
                raise pickle.UnpicklingError(f"invalid load key, {code!r}.")
            if _OPS[code](self) is _STOP:
                return
        raise _Refused(f"more than {MAX_OPCODES:,} pickle opcodes")

    def push(self, x):
        self.stack.append(x)

    def pop(self):
        if not self.stack or self.stack[-1] is _MARK:
            raise pickle.UnpicklingError("unpickling stack underflow")
        return self.stack.pop()

    def pop_mark(self):
        if not self.marks:
            raise pickle.UnpicklingError("could not find MARK")
        start = self.marks.pop()
        items = self.stack[start + 1 :]
        del self.stack[start:]
        return items

    # -- plain values: ints of at most 64 bits, lengths no larger than the file

    def counted(self, fmt):
        n = self.number(fmt)
        if n < 0:
            raise pickle.UnpicklingError("negative byte count")
        return self.read(n)

    def blob(self, fmt, kind=bytes):
        """Short bytes as they are (a typecode); long ones, array data, as a ``_Made``: no copy, checked later."""
        data = self.counted(fmt)
        return kind(data) if len(data) <= _MAX_ITEMS else _Made(kind.__name__)

    def long(self, fmt):
        n = self.number(fmt)
        if n < 0:
            raise pickle.UnpicklingError("LONG pickle has negative byte count")
        if n > 8:
            raise _Refused(f"an integer of {n} bytes")
        self.push(int.from_bytes(self.read(n), "little", signed=True))

    def int_line(self):
        line = self.readline()  # protocol 0 writes True and False as INT 01 and 00
        self.push(False if line == b"00" else True if line == b"01" else _small_int(line.strip()))

    def long_line(self):
        line = self.readline()
        self.push(_small_int(line[:-1] if line.endswith(b"L") else line))

    def string_line(self):
        line = self.readline().rstrip()
        if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
            raise pickle.UnpicklingError("the STRING opcode argument must be quoted")
        self.push(line[1:-1].decode("unicode_escape"))  # Python 2's repr of a byte string, as latin-1 text

    # -- tuples: short, of plain items, at most two deep

    def tuple(self, items):
        if len(items) > _MAX_ITEMS:
            raise _Refused(f"a tuple of {len(items)} items")
        nested = False
        for x in items:
            if type(x) is tuple:
                if self.flat.get(id(x)) is not x:
                    raise _Refused("tuples nested more than two deep")
                nested = True
            elif not _plain(x):
                raise _Refused(f"a tuple item of type {_kind(x)}")
        t = tuple(items)
        if not nested:
            self.flat[id(t)] = t  # (the value keeps the id taken)
        self.push(t)

    def tuple_n(self, n):
        self.tuple([self.pop() for _ in range(n)][::-1])

    # -- the one dict: str keys, array values

    def set_items(self, target, items):
        if target is not _DICT:
            raise _Refused(f"items set on an object of type {_kind(target)}")
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for a dict")
        for key, value in zip(items[::2], items[1::2]):
            if type(key) is not str:
                raise _Refused(f"a non-str dict key {brief(key, 40)} ({_kind(key)})")
            if _kind(value) != "ndarray":
                raise _Refused(f"{brief(key, 40)} holding a {_kind(value)}, not a numpy array")

    def setitems(self):
        items = self.pop_mark()
        self.set_items(self.stack[-1] if self.stack else None, items)

    def setitem(self):
        value, key = self.pop(), self.pop()
        self.set_items(self.stack[-1] if self.stack else None, [key, value])

    def dict(self):
        self.set_items(_DICT, self.pop_mark())
        self.push(_DICT)

    def stop(self):
        top = self.pop()
        if top is not _DICT:
            raise _Refused(f"a top-level {_kind(top)} (not a dict)")
        if max(self.memo, default=0) > MAX_OPCODES:  # the unpickler's memo is a list that long
            raise _Refused(f"a memo index of {max(self.memo)}")
        return _STOP

    # -- globals, calls and state

    def global_(self, module, name):
        if type(module) is not str or type(name) is not str:
            raise pickle.UnpicklingError("STACK_GLOBAL requires str")
        _allowed(module, name)
        self.push(_Made("function", (module, name)))

    def global_lines(self):
        module, name = self.readline(), self.readline()
        self.global_(module.decode("utf-8", "replace"), name.decode("utf-8", "replace"))

    def extension(self, fmt):
        code = self.number(fmt)
        key = copyreg._inverted_registry.get(code)  # only to name it: numpy never writes an extension code
        raise _Refused(f"{'.'.join(key)[:80]!r} by extension code {code}" if key else f"extension code {code}")

    def reduce(self):
        args, func = self.pop(), self.pop()
        if type(func) is not _Made or func.kind != "function":
            raise _Refused(f"a call to an object of type {_kind(func)}")
        if func.name == _NDARRAY:
            raise _Refused("a direct call to 'numpy.ndarray'")
        if type(args) is not tuple:
            raise _Refused(f"call arguments of type {_kind(args)}")
        _, made, check = _GLOBALS[func.name]
        result = check(*args) if check else None
        self.push(result if type(result) is _Dtype else _Made(made))  # a dtype is made here too: build checks its state

    def build(self):
        state = self.pop()
        inst = self.stack[-1] if self.stack else None
        if type(inst) is _Dtype:
            inst.__setstate__(state)
        elif _kind(inst) != "ndarray":  # an array's state: checked by _Array.__setstate__, with its data
            raise _Refused(f"state for a {_kind(inst)}")

    def put(self, index):
        if not self.stack or self.stack[-1] is _MARK:
            raise pickle.UnpicklingError("no object to memoize")
        self.memo[index] = self.stack[-1]

    def get(self, index):
        if index not in self.memo:
            raise pickle.UnpicklingError(f"Memo value not found at index {index}")
        self.push(self.memo[index])

    def mark(self):
        self.marks.append(len(self.stack))
        self.push(_MARK)

    def frame(self):
        if self.number("<Q") > len(self.data) - self.pos:  # frames only group opcodes: nothing else to check
            raise pickle.UnpicklingError("pickle data was truncated")

    def inst(self):
        self.global_lines()  # refuses any global but numpy's own, by name
        raise _Refused("an INST call, which numpy never writes")

    def persistent_id(self, pid):
        raise _Refused(f"persistent id {brief(pid)}")


# What a tuple may hold: numpy's array and dtype state, and the arguments of the functions above.
_PLAIN = (type(None), bool, int, str, bytes, bytearray, _Dtype)


def _plain(x):
    return type(x) in _PLAIN or (type(x) is _Made and (x.kind in ("bytes", "bytearray") or x.name == _NDARRAY))


_STOP = object()
_O = _Opcodes
_OPS = {
    pickle.PROTO: lambda o: o.number("<B"),
    pickle.FRAME: _O.frame,
    pickle.STOP: _O.stop,
    pickle.MARK: _O.mark,
    pickle.NONE: lambda o: o.push(None),
    pickle.NEWTRUE: lambda o: o.push(True),
    pickle.NEWFALSE: lambda o: o.push(False),
    pickle.INT: _O.int_line,
    pickle.BININT: lambda o: o.push(o.number("<i")),
    pickle.BININT1: lambda o: o.push(o.number("<B")),
    pickle.BININT2: lambda o: o.push(o.number("<H")),
    pickle.LONG: _O.long_line,
    pickle.LONG1: lambda o: o.long("<B"),
    pickle.LONG4: lambda o: o.long("<i"),
    pickle.STRING: _O.string_line,
    pickle.BINSTRING: lambda o: o.push(str(o.counted("<i"), "latin1")),
    pickle.SHORT_BINSTRING: lambda o: o.push(str(o.counted("<B"), "latin1")),
    pickle.UNICODE: lambda o: o.push(o.readline().decode("raw_unicode_escape")),
    pickle.BINUNICODE: lambda o: o.push(str(o.counted("<I"), "utf-8", "surrogatepass")),
    pickle.SHORT_BINUNICODE: lambda o: o.push(str(o.counted("<B"), "utf-8", "surrogatepass")),
    pickle.BINUNICODE8: lambda o: o.push(str(o.counted("<Q"), "utf-8", "surrogatepass")),
    pickle.BINBYTES: lambda o: o.push(o.blob("<I")),
    pickle.SHORT_BINBYTES: lambda o: o.push(o.blob("<B")),
    pickle.BINBYTES8: lambda o: o.push(o.blob("<Q")),
    pickle.BYTEARRAY8: lambda o: o.push(o.blob("<Q", bytearray)),
    pickle.EMPTY_TUPLE: lambda o: o.push(()),
    pickle.TUPLE: lambda o: o.tuple(o.pop_mark()),
    pickle.TUPLE1: lambda o: o.tuple_n(1),
    pickle.TUPLE2: lambda o: o.tuple_n(2),
    pickle.TUPLE3: lambda o: o.tuple_n(3),
    pickle.EMPTY_DICT: lambda o: o.push(_DICT),
    pickle.DICT: _O.dict,
    pickle.SETITEM: _O.setitem,
    pickle.SETITEMS: _O.setitems,
    pickle.GLOBAL: _O.global_lines,
    pickle.STACK_GLOBAL: lambda o: o.global_(*reversed([o.pop(), o.pop()])),
    pickle.INST: _O.inst,
    pickle.EXT1: lambda o: o.extension("<B"),
    pickle.EXT2: lambda o: o.extension("<H"),
    pickle.EXT4: lambda o: o.extension("<i"),
    pickle.REDUCE: _O.reduce,
    pickle.BUILD: _O.build,
    pickle.PUT: lambda o: o.put(_small_int(o.readline())),
    pickle.BINPUT: lambda o: o.put(o.number("<B")),
    pickle.LONG_BINPUT: lambda o: o.put(o.number("<I")),
    pickle.MEMOIZE: lambda o: o.put(len(o.memo)),
    pickle.GET: lambda o: o.get(_small_int(o.readline())),
    pickle.BINGET: lambda o: o.get(o.number("<B")),
    pickle.LONG_BINGET: lambda o: o.get(o.number("<I")),
    pickle.PERSID: lambda o: o.persistent_id(o.readline().decode("ascii", "replace")),
    pickle.BINPERSID: lambda o: o.persistent_id(o.pop()),
}
_REFUSED = {
    code: what
    for what, names in {
        "a float": "FLOAT BINFLOAT",
        "a list": "EMPTY_LIST LIST APPEND APPENDS",
        "a set": "EMPTY_SET FROZENSET ADDITEMS",
        "an object built by its class": "OBJ NEWOBJ NEWOBJ_EX",
        "an out-of-band buffer (protocol 5)": "NEXT_BUFFER READONLY_BUFFER",
        "a POP or DUP opcode, which numpy never writes": "POP POP_MARK DUP",
    }.items()
    for code in (getattr(pickle, name) for name in names.split())
}


def load(path) -> dict:
    """Unpickle ``path``: a dict of str names to numeric numpy arrays, and nothing else.

    Raises ``FwError`` naming the file for anything refused, truncated or corrupt,
    in time and memory bounded by the file's size.
    """
    try:
        with open_weights(path) as f:
            data = f.read()
        _Opcodes(data).check()
        return _Loader(data).arrays()
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
    except Exception:  # noqa: BLE001 - e.g. an int too long to print
        text = ""
    return " ".join(text.split())[:200]
