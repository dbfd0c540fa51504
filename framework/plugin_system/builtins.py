"""Which names each of fw's own plugin modules registers, learnt from the modules and cached.

A config that uses sigmoid, softmax, mnist and pickle imports those modules
and no other, so the registry must know which module registers a name before
it imports any. No list says so by hand: every module of ``framework.plugins``
is imported once and its hooks are asked, and the answer is kept in
``$XDG_CACHE_HOME/fw/builtins/`` (by default ``~/.cache/fw/...``) while the
modules' files keep their names, sizes and mtimes. Where nothing can be
cached, each process asks the modules again.
"""

import json
import os

PACKAGE = "framework.plugins"


def builtin_names() -> dict[str, dict[str, list[str]]]:
    """``{module: {kind: [names]}}`` for every built-in module that registers something."""
    folder, stamps = _stamps()
    path = _cache_file(folder)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached["stamps"] == stamps:
            return cached["names"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache, or an unreadable one: ask the modules
    names = {m: kinds for m in sorted(f"{PACKAGE}.{f[:-3]}" for f, *_ in stamps) if (kinds := registered(m))}
    import time

    from .installed import _RACY_NS, _write

    if all(
        time.time_ns() - mtime >= _RACY_NS for _, _, mtime in stamps
    ):  # a file changed this instant may change again unseen
        _write(path, {"stamps": stamps, "names": names})  # an OSError is kept quiet: the next run asks again
    return names


def registered(modname) -> dict[str, list[str]]:
    """``{kind: [names]}`` that module ``modname``'s hooks register, each class filed by its base class."""
    import importlib

    import pluggy

    from ..errors import FwError
    from ..safeio.untrusted import describe_exception
    from . import hookspecs
    from .registry import kind_of

    try:
        module = importlib.import_module(modname)
    except Exception as e:  # fw's own bug, or a module being edited: one line, naming it
        raise FwError(f"built-in plugin '{modname}' failed to import: {describe_exception(e)}") from e
    pm = pluggy.PluginManager("fw")
    pm.add_hookspecs(hookspecs)
    pm.register(module)
    found = {}
    for caller in pm.get_hookcallers(module) or []:
        for impl in caller.get_hookimpls():
            impl.function(register=lambda cls: found.setdefault(kind_of(cls, modname), []).append(cls.name))
    return found


def _stamps():
    """The built-in modules' folder, and ``[file, size, mtime_ns]`` of each module in it."""
    from importlib.util import find_spec

    folder = find_spec(PACKAGE).submodule_search_locations[0]
    stamps = []
    with os.scandir(folder) as entries:
        for e in entries:
            if e.name.endswith(".py") and e.name[:-3].isidentifier() and e.name != "__init__.py":
                st = e.stat()
                stamps.append([e.name, st.st_size, st.st_mtime_ns])
    return folder, sorted(stamps)


def _cache_file(folder):
    import hashlib
    import sys
    from pathlib import Path

    key = json.dumps([folder, sys.version])
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "fw" / "builtins" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
