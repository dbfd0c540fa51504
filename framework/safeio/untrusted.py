"""One bounded line about an exception or object that fw did not make: a plugin's, or one about a file.

Such an exception may quote a value whose ``repr`` takes 2**60 steps (tuples
that share references) or runs to megabytes. So fw quotes only plain values
(str, numbers, ...) itself, never calls ``repr`` on anything else, and cuts
what it quotes to one line. A plugin is trusted code: an exception's own
``__str__`` is called as it is (an exception it raises is survived).
"""

import sys
import types

#: Characters of a plugin's text quoted in one message.
LIMIT = 300
_PLAIN = (str, int, float, bool, type(None))


def clip(text: str, limit: int = LIMIT) -> str:
    """``text`` on one line of at most ``limit`` characters,
    escape codes escaped (``printable``); ``...`` marks a cut."""
    head = text[: 2 * limit]  # collapse whitespace only in what can be shown
    line = printable(" ".join(head.split()))
    if len(line) > limit or len(head) < len(text):
        return line[: max(limit - 3, 0)].rstrip() + "..."
    return line


def describe_exception(e: BaseException, limit: int = LIMIT, prefix: bool = True) -> str:
    """``Type: message`` in at most ``limit`` characters; an exception raised by its ``__str__`` is survived.

    ``prefix=False`` leaves out ``Type: `` when there is a message, for fw's own FwError.
    """
    name = type_name(type(e))
    try:
        text = _message(e)
    except Exception:  # noqa: BLE001 - the caller gets a line, even about a broken exception
        text = "(its message cannot be shown)"
    if not text:
        return clip(name, limit)
    return clip(f"{name}: {text}" if prefix else text, limit)


def describe_object(obj, limit: int = 80) -> str:
    """A short description of ``obj`` that calls none of its methods: a plain value's repr, else its type."""
    if type(obj) in _PLAIN:
        return clip(repr(obj), limit)
    if isinstance(obj, type):
        return clip(f"<class '{_getset(type, '__module__', obj)}.{type_name(obj)}'>", limit)
    return f"<{type_name(type(obj))} object>"


def type_name(cls) -> str:
    """The class's own ``__name__``, read past any metaclass trickery."""
    try:
        name = type.__dict__["__name__"].__get__(cls)
    except Exception:  # noqa: BLE001 - not a class at all
        return "?"
    return clip(name, 80)


def _message(e):
    args = BaseException.__dict__["args"].__get__(e)
    impl = _lookup(type(e), "__str__")
    if not isinstance(impl, types.WrapperDescriptorType):  # the plugin's own __str__
        try:
            return str.__str__(str(e))[: 2 * LIMIT]  # an exact str, even from a str subclass
        except Exception:  # noqa: BLE001 - a plugin's __str__ may raise anything
            return "(its __str__ raised an exception)"
    plain = len(args) <= 5 and all(type(a) in _PLAIN for a in (*args, *_extra_fields(e)))
    if plain:
        return str(e)  # a built-in __str__ over plain values: safe, and bounded by clip
    if len(args) == 1:
        return _plain_repr(args[0])
    return ", ".join(_plain_repr(a) for a in args[:5]) + (", ..." if len(args) > 5 else "")


def _extra_fields(e):
    """Attributes that built-in ``__str__`` methods quote besides ``args``."""
    if isinstance(e, OSError):
        return [OSError.filename.__get__(e), OSError.filename2.__get__(e)]
    if isinstance(e, SyntaxError):
        return [SyntaxError.msg.__get__(e), SyntaxError.filename.__get__(e)]
    return []


def _plain_repr(value):
    if type(value) is str:
        return repr(value[: 2 * LIMIT])
    return repr(value) if type(value) in _PLAIN else f"<{type_name(type(value))} object>"


def _lookup(cls, attr):
    """``cls.attr`` from the classes' own dicts, as Python finds special methods (no metaclass)."""
    for klass in type.__dict__["__mro__"].__get__(cls):
        namespace = type.__dict__["__dict__"].__get__(klass)
        if attr in namespace:
            return namespace[attr]
    return None


def _getset(owner, attr, obj):
    try:
        value = owner.__dict__[attr].__get__(obj)
    except Exception:  # noqa: BLE001 - a hostile descriptor may raise anything
        return "?"
    return value if type(value) is str else "?"


#: Top-level packages whose frames are skipped when saying where an exception came from.
_NOT_THE_CAUSE = frozenset(sys.stdlib_module_names) | {"numpy", "omegaconf", "pluggy", "yaml"}


def origin(e: BaseException) -> str:
    """``in module.function (file:line)`` for the innermost frame of ``e``'s traceback in fw or plugin code.

    Frames of the standard library and of fw's dependencies are skipped: for
    ``sys.exit(0)`` in an activation's ``forward``, this names that ``forward``.
    """
    tb = BaseException.__dict__["__traceback__"].__get__(e)
    found = None
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__")
        if not (isinstance(module, str) and module.partition(".")[0] in _NOT_THE_CAUSE):
            found = tb
        tb = tb.tb_next
    if found is None:
        return "outside fw and its plugins"
    code, module = found.tb_frame.f_code, found.tb_frame.f_globals.get("__name__")
    where = f"{module}.{code.co_qualname}" if isinstance(module, str) else code.co_qualname
    return clip(f"in {where} ({code.co_filename}:{found.tb_lineno})", 2 * LIMIT)


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on written as its escape: ``\\x1b``, ``\\u202e``.

    Text from a file (an ONNX model's producer, a node's name) may hold escape
    codes that recolour, retitle or clear the terminal it is printed on, or a
    right-to-left override that shows a name backwards.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
