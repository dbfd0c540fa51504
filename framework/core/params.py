"""What a config value must be, read from a type annotation: the one check of the config's own keys
(config/schema.py) and of every plugin's ``__init__`` parameters (config/instantiate.py).

A plugin declares its parameters' types, ``def __init__(self, units: int, rate: float = 0.5)``,
and fw checks a config's values against them before ``__init__`` runs, so the plugin keeps only
the checks of range (``rate < 1``). ``Annotated[float, "a positive finite number"]`` says in
words what the value must be, for the error line; without it the words come from the type.
"""

import math
import numbers
import types
import typing
from typing import Annotated, Any


class Named:
    """A plugin by name (``relu``), or a mapping with its name and parameters (``{name: leaky_relu, alpha: 0.01}``)."""


def fits(value, annotation) -> bool:
    """Does a plain config value (from YAML: None, bool, int, float, str, list, dict) fit ``annotation``?

    ``int`` is a whole number and ``float`` any finite number, neither true nor
    false; ``list[X]`` checks every entry; ``Named`` is a plugin's name or a
    mapping with one. ``Any``, a string annotation left unevaluated and a class
    of the plugin's own (``Initializer``) take anything: fw cannot judge them.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return fits(value, args[0])
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if annotation is None or annotation is type(None):
        return value is None
    if origin in (list, tuple) or annotation in (list, tuple):
        entries = args[0] if origin is list and args else Any
        return isinstance(value, (list, tuple)) and all(fits(v, entries) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:  # numbers.Integral: numpy's integers too, for check_layer's Python callers
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if annotation is Named:
        return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("name"), str))
    return True


_WORDS = {
    int: "a whole number",
    float: "a finite number",
    bool: "true or false",
    str: "a string",
    Named: "a name, or a mapping with name:",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
}


def want(annotation) -> str:
    """What a value of ``annotation`` must be, in words: ``Annotated``'s string, else from the type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        said = [a for a in args[1:] if isinstance(a, str)]
        return said[0] if said else want(args[0])
    if origin in (typing.Union, types.UnionType):
        words = [want(a) for a in args if a is not type(None)]
        return " or ".join(words) + (" or null" if type(None) in args else "")
    return _WORDS.get(origin or annotation, f"a {getattr(annotation, '__name__', annotation)}")
