"""One bounded line about an exception or object that fw did not make: a plugin's.

A plugin's exception is untrusted. Its ``__str__`` may raise, loop, print
megabytes, or quote a value whose ``repr`` takes 2**60 steps (tuples that
share references). So fw quotes only plain values (str, numbers, ...) itself,
never calls ``repr`` on anything else, and calls an overridden ``__str__`` on a
thread with a deadline. (Code that hangs inside C while holding the GIL cannot
be stopped from Python; this stops Python-level loops.)
"""

import sys
import types

#: Characters of a plugin's text quoted in one message.
LIMIT = 300
#: Seconds a plugin's own ``__str__`` gets.
STR_DEADLINE = 1.0
_PLAIN = (str, int, float, bool, type(None))


def clip(text: str, limit: int = LIMIT) -> str:
    """``text`` on one line of at most ``limit`` characters, escape codes escaped (``printable``); ``...`` marks a cut."""
    head = text[: 2 * limit]  # collapse whitespace only in what can be shown
    line = printable(" ".join(head.split()))
    if len(line) > limit or len(head) < len(text):
        return line[: max(limit - 3, 0)].rstrip() + "..."
    return line


def describe_exception(e: BaseException, limit: int = LIMIT, prefix: bool = True) -> str:
    """``Type: message`` (``SystemExit(0)`` for an exit) in at most ``limit`` characters; never raises.

    ``prefix=False`` leaves out ``Type: `` when there is a message, for fw's own FwError.
    """
    name = type_name(type(e))
    try:
        if isinstance(e, SystemExit):
            return clip(f"{name}({_plain_repr(SystemExit.code.__get__(e))})", limit)
        text = _message(e)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - whatever the exception does, the caller gets a line
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
        return _own_str(e)
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


def _own_str(e):
    """``str(e)`` through the plugin's ``__str__``, on a thread, given ``STR_DEADLINE`` seconds."""
    import threading

    box = []

    def call():
        try:
            text = str(e)
            box.append(str.__str__(text)[: 2 * LIMIT])  # an exact str, even from a str subclass
        except BaseException:  # noqa: BLE001 - SystemExit too: this thread must just end
            box.append(None)

    worker = threading.Thread(target=call, name="fw-describe-exception", daemon=True)
    worker.start()
    worker.join(STR_DEADLINE)
    if not box:
        return f"(its __str__ did not return within {STR_DEADLINE:g} s)"
    return box[0] if box[0] is not None else "(its __str__ raised an exception)"


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
    except Exception:  # noqa: BLE001
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
