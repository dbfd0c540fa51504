"""The one way a config value becomes a plugin instance: ``instantiate``.

Every plugin a config names (layer, activation, initialiser, optimizer, loss,
callback, dataset) is made here, its parameters checked against its class's
``__init__`` first, names and annotated types (``core.params``), so a typo or
a wrong type names the config key that holds it instead of surfacing as a
TypeError deep inside the plugin.
"""

import difflib
import inspect

from ..core.initializer import Initializer
from ..core.params import fits, want
from ..errors import FwError
from ..safeio.untrusted import clip, describe_exception


def instantiate(cls, name, params, key, noun, *, section_keys=()):
    """``cls(**params)``, with the parameters checked against its ``__init__`` first.

    ``key`` is the config key of the plugin's entry (``model.layers[0]``).
    ``section_keys``: the plugin's parameters sit beside these keys in its
    config section (``dataset:``'s name, split, ...), so a bad one is named as
    ``key.PARAMETER``. A typo names the accepted parameters and the closest,
    and whatever a plugin's ``__init__`` raises becomes one line naming ``key``.
    """
    if params:  # without parameters there is nothing to check (and inspect.signature is slow)
        signature = _signature(cls)
        _check_names(cls, signature, name, params, key, noun, section_keys)
        _check_types(signature, name, params, key, noun, section_keys)
    try:
        return cls(**params)
    except (ValueError, FwError) as e:  # the plugin's own check of a value, e.g. "rate must be below 1"
        if isinstance(e, FwError) and section_keys:
            raise  # a dataset's own line: it names its dataset.KEY
        where = f"{noun} '{name}'" if section_keys else f"{key}: {noun} '{name}'"
        raise FwError(f"{where}: {describe_exception(e, prefix=False)}") from e
    except Exception as e:  # a plugin's __init__: whatever it raises, say where it came from
        shown = {k: v.name if isinstance(v, Initializer) else v for k, v in params.items()}
        raise FwError(f"{key}: {noun} '{name}' failed to start with parameters {shown}: {describe_exception(e)}") from e


def _signature(cls):
    """``cls(...)``'s signature, its annotations evaluated when they can be (``from __future__ import annotations``)."""
    try:
        return inspect.signature(cls, eval_str=True)
    except Exception:  # noqa: BLE001 - a name the plugin's module cannot resolve: its strings, as fits takes them
        return inspect.signature(cls)


def _check_names(cls, signature, name, params, key, noun, section_keys):
    try:
        signature.bind(**params)
        return
    except TypeError as e:
        problem = e
    accepted = parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    listed = ", ".join(accepted) or "no parameters"
    if not unknown:
        raise FwError(f"{key}: {noun} '{name}' cannot take {params}: {problem}; it accepts: {listed}") from problem
    close = difflib.get_close_matches(unknown[0], [*accepted, *section_keys], n=1)
    if section_keys:
        hint = f"did you mean '{key}.{close[0]}'? " if close else ""
        raise FwError(
            f"{key}.{unknown[0]}: {noun} '{name}' has no parameter '{unknown[0]}'; {hint}it accepts: {listed} "
            f"(and, like every {noun}, {', '.join(section_keys)})"
        ) from problem
    hint = f"; did you mean '{close[0]}'?" if close and len(unknown) == 1 else ""
    named = ", ".join(map(repr, unknown))
    raise FwError(f"{key}: {noun} '{name}' does not accept {named}; it accepts: {listed}{hint}") from problem


def _check_types(signature, name, params, key, noun, section_keys):
    """Each value against its parameter's annotation (``units: int``), so the plugin need not check types.

    A null where the default is None means the default, whatever the annotation.
    """
    for param, value in params.items():
        p = signature.parameters.get(param)
        if p is None or p.annotation is p.empty or (value is None and p.default is None) or fits(value, p.annotation):
            continue
        where = f"{key}.{param}" if section_keys else f"{key}: {noun} '{name}': {param}"
        raise FwError(f"{where} must be {want(p.annotation)}, got {clip(repr(value), 120)}")


def parameters(cls) -> list[str]:
    """The keyword parameters ``cls(...)`` names (none for a class without its own ``__init__``)."""
    if cls.__init__ is object.__init__:
        return []
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
