"""Installed plugins' entry points, cached while the folders they come from are unchanged.

``importlib.metadata`` is slow to import and slower to read every installed
distribution (docs/performance.md has the figures). Its answer for one group is kept in
``$XDG_CACHE_HOME/fw/entry-points/`` (by default ``~/.cache/fw/...``), one
file per interpreter and ``sys.path``, and used while nothing it was read from
has changed: each ``sys.path`` folder, each ``*.dist-info``/``*.egg-info`` in
it, and the ``entry_points.txt`` and ``METADATA`` of those that have entry
points keep their mtime and ctime. pip creates or removes a metadata folder on
every install, upgrade and uninstall, which changes the folder holding it.
Anything changed within the last 2 s is not cached, as a change in the same
clock tick could leave the times as they were ("racy git"). A finder on
``sys.meta_path`` that provides distributions from elsewhere turns the cache
off.
"""

import importlib
import json
import os
import re
import sys
import time

#: importlib.metadata's EntryPoint.pattern: ``module``, ``module:attr.attr``, optional ``[extras]``.
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_RACY_NS = 2_000_000_000


class EntryPoint:
    """One entry point: ``name = value`` from distribution ``dist`` ``version`` (both may be None)."""

    __slots__ = ("name", "value", "dist", "version")

    def __init__(self, name, value, dist=None, version=None):
        self.name, self.value, self.dist, self.version = name, value, dist, version

    def load(self):
        """Import the module and return the object the value names, as importlib.metadata does."""
        match = _VALUE.match(self.value)
        if not match:
            raise ValueError(f"{self.value!r} is not a valid entry point value (module or module:attr)")
        obj = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj

    def as_list(self):
        return [self.name, self.value, self.dist, self.version]


def entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, from the cache when nothing changed since it was written."""
    path = _cache_file(group)
    stamps = _stamps() if path else None
    if path and stamps is not None:
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached["stamps"] == stamps:
                return [EntryPoint(*ep) for ep in cached["entry_points"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no cache, or an unreadable one: scan
    found = scan(group)
    if path and stamps is not None and not _racy(stamps):
        _write(path, {"stamps": stamps, "entry_points": [ep.as_list() for ep in found]})
    return found


def scan(group: str) -> list[EntryPoint]:
    """Read every installed distribution's entry points of ``group`` with importlib.metadata."""
    from importlib.metadata import entry_points as installed

    found = []
    for ep in installed(group=group):
        try:
            dist = ep.dist
            name, version = (dist.name, dist.version) if dist is not None else (None, None)
        except Exception:  # noqa: BLE001 - unreadable metadata: the plugin still loads, unnamed
            name = version = None
        found.append(EntryPoint(ep.name, ep.value, _str_or_none(name), _str_or_none(version)))
    return found


def _cache_file(group):
    """This interpreter's and sys.path's cache file, or None when the cache cannot be trusted."""
    from importlib.machinery import PathFinder

    if any(f is not PathFinder and hasattr(f, "find_distributions") for f in sys.meta_path):
        return None
    import hashlib
    from pathlib import Path

    key = json.dumps([sys.executable, sys.version, group, sys.path])
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "fw" / "entry-points" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _stamps():
    """[path, mtime_ns, ctime_ns] of everything an entry-point scan reads; None if a folder cannot be listed."""
    stamps = []
    for entry in sys.path:
        folder = entry or os.getcwd()
        stamps.append([entry, *_times(folder)])
        if not os.path.isdir(folder):
            continue  # a zip file or a missing folder: its own times cover it
        is_egg = folder.lower().endswith(".egg")
        try:
            with os.scandir(folder) as children:
                names = sorted(
                    c.name
                    for c in children
                    if c.name.lower().endswith((".dist-info", ".egg-info")) or (is_egg and c.name.lower() == "egg-info")
                )
        except OSError:
            return None
        for name in names:
            meta = os.path.join(folder, name)
            stamps.append([meta, *_times(meta)])
            points = _times(os.path.join(meta, "entry_points.txt"))
            if points != [None, None]:
                stamps.append([f"{meta}/entry_points.txt", *points])
                for info in ("METADATA", "PKG-INFO"):
                    stamps.append([f"{meta}/{info}", *_times(os.path.join(meta, info))])
    return stamps


def _times(path):
    try:
        st = os.stat(path)
    except OSError:
        return [None, None]
    return [st.st_mtime_ns, st.st_ctime_ns]


def _racy(stamps):
    now = time.time_ns()
    return any(t is not None and now - t < _RACY_NS for _, *times in stamps for t in times)


def _write(path, data):
    from ..safeio.files import atomic_write

    try:
        atomic_write(path, lambda f: f.write(json.dumps(data).encode()))
    except OSError:
        pass  # no cache: the next run scans again


def _str_or_none(value):
    return value if isinstance(value, str) else None
