"""The plugin manager: built-ins, installed entry points and config-named modules.

Built-in plugins register exactly like a third-party plugin (the pytest
pattern), but only when one of their names is first needed: the table
``builtins.builtin_names()`` derives from the modules says which names each
registers, so a config that uses sigmoid, softmax, mnist and pickle imports
those three modules and nothing else, and scans no installed plugin (a
built-in keeps its name; see docs/guides/plugins.md). A name no built-in has
loads every installed plugin first, as does ``fw plugins`` and any config
with a ``plugins:`` list, so clashes are found as before.

Each installed plugin loads on its own: one that fails is recorded with its
reason and skipped, so a broken plugin never takes the CLI down. Modules named
in a config's ``plugins:`` list were asked for explicitly, so their failure is
an error.

A plugin is trusted code, like a ``conftest.py``: fw checks the classes it
registers, and words an exception it raises at load time as its failure, but
does not police what it does (an exit, a hang, a thread left running).
"""

import functools
import hashlib
import importlib
import os
import sys
import threading

from ..errors import FwError
from ..safeio.untrusted import clip, describe_exception
from .builtins import builtin_names
from .registry import KINDS, NameClash, Provider, Registry, kind_of

ENTRY_POINT_GROUP = "fw"
#: hook name -> the kind it registers (None: any, filed by base class)
HOOKS = {"register_classes": None, **{f"register_{kind}": kind for kind in KINDS}}


def autoload_disabled() -> bool:
    return os.environ.get("FW_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("", "0", "false", "no")


def get_registry(local_plugins=()) -> Registry:
    """The registry of every plugin: built-ins, entry points, then ``local_plugins``.

    ``local_plugins`` are module names or paths to ``.py`` files (a config's
    ``plugins:`` list). Results are cached per list, so repeated API calls do
    not import plugins again. Plugins load as their names are first needed
    (``Registry.load_all()`` loads them all).
    """
    return _build(tuple(local_plugins), autoload_disabled())


@functools.cache
def _build(local_plugins, no_autoload):
    loader = _Loader(no_autoload)
    if local_plugins:
        # Installed plugins first, as always: a config plugin that takes one of their names is an error.
        loader.load_installed()
    for i, spec in enumerate(local_plugins):
        loader.load_local(spec, f"plugins[{i}]")
    return loader.registry


class _Loader:
    """Loads plugins into one Registry: a built-in module or all installed plugins, once, on demand."""

    def __init__(self, no_autoload):
        version = _fw_version()
        builtins = builtin_names()
        self.providers = {mod: Provider(mod, "fw", version, builtin=True) for mod in builtins}
        declared = {}
        for mod, kinds in builtins.items():
            for kind, names in kinds.items():
                declared.setdefault(kind, {}).update(dict.fromkeys(names, self.providers[mod]))
        self.registry = Registry(declared, loader=self)
        self.loaded = set()
        self.installed_loaded = no_autoload
        self.lock = threading.RLock()  # a registry shared by threads loads each plugin once
        self._pm = None

    @property
    def pm(self):
        if self._pm is None:
            import pluggy

            from . import hookspecs

            self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
            self._pm.add_hookspecs(hookspecs)
        return self._pm

    def load_module(self, modname):
        """Register the built-in plugin ``modname`` (once); a failure is fw's bug, so an error."""
        with self.lock:
            if modname in self.loaded:
                return
            try:
                module = importlib.import_module(modname)
            except Exception as e:  # as for any plugin: one line, naming it
                raise FwError(f"built-in plugin '{modname}' failed to import: {describe_exception(e)}") from e
            self._add(module, self.providers[modname], fatal=True)
            self.loaded.add(modname)

    def load_installed(self):
        """Register every installed (entry-point) plugin, once; each failure is recorded, not raised."""
        with self.lock:
            if self.installed_loaded:
                return
            self.installed_loaded = True
            self._load_entry_points()

    def load_all(self):
        with self.lock:
            for modname in self.providers:
                self.load_module(modname)
            self.load_installed()

    def load_local(self, spec, key):
        """Register a config-named plugin: a ``.py`` path or a module name. Its failure is an error."""
        with self.lock:
            module = _import_local(spec, key)
            name = getattr(module, "__name__", None)
            if (isinstance(name, str) and name in self.providers) or self.pm.is_registered(module):
                return  # already known: a built-in, or an installed plugin
            self._add(module, Provider(spec), fatal=True)
            if not any(True for _ in _impls(self.pm, module)):
                raise FwError(
                    f"{key}: '{spec}' registers nothing; it needs an @hookimpl function such as "
                    "register_classes(register)"
                )

    def _load_entry_points(self):
        from .installed import entry_points

        try:
            found = entry_points(ENTRY_POINT_GROUP)
        except Exception as e:  # noqa: BLE001 - broken metadata must not stop fw either
            self.registry.record_failure(
                Provider("(installed plugins)"), f"reading their metadata failed: {describe_exception(e)}"
            )
            return
        for ep in found:
            provider = Provider(clip(ep.name, 80), ep.dist and clip(ep.dist, 80), ep.version and clip(ep.version, 40))
            try:
                plugin = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken third-party plugin must not stop fw
                self.registry.record_failure(
                    provider, f"import of '{clip(ep.value, 120)}' failed: {describe_exception(e)}"
                )
                continue
            self._add(plugin, provider)

    def _add(self, plugin, provider, fatal=False):
        """Register one plugin all-or-nothing; record (or raise, if ``fatal``) its failure."""
        import pluggy

        pm, registry = self.pm, self.registry
        try:
            try:
                pm.register(plugin, name=provider.plugin)
            except ValueError as e:  # pluggy: the same plugin object or name twice
                raise FwError(f"{provider} is loaded twice: {describe_exception(e, prefix=False)}") from e
            except pluggy.PluginValidationError as e:
                raise FwError(f"{provider}: {describe_exception(e, prefix=False)}") from e
            _check_hook_names(pm, plugin, provider)
            staged = []
            for hook, impl in _impls(pm, plugin):
                kind = HOOKS[hook]
                try:
                    impl.function(register=lambda cls, k=kind: staged.append((k or kind_of(cls, provider), cls)))
                except FwError:
                    raise
                except Exception as e:
                    raise FwError(f"{provider}: {hook}() raised {describe_exception(e)}") from e
            for kind, cls in staged:  # all-or-nothing: one bad class fails the whole plugin
                registry.check(kind, cls, provider)
        except Exception as e:  # pluggy, a hook, or a class check: the plugin fails as a whole
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            reason = (
                describe_exception(e, 600, prefix=False)
                if type(e) is FwError
                else f"{provider}: {describe_exception(e)}"
            )
            if fatal:
                raise FwError(reason) from e
            registry.record_failure(provider, reason)
            return
        for kind, cls in staged:
            try:
                registry.add(kind, cls, provider)
            except NameClash as e:  # refuses that name only; the plugin's other names stand
                if fatal:
                    raise FwError(
                        f"{e}; rename it in '{provider.plugin}', or drop that from the config's plugins: list"
                    ) from e
                kept = "the built-in is kept" if e.first.builtin else "neither is used until one is uninstalled"
                registry.record_clash(provider, f"{e}; {kept}")


def _check_hook_names(pm, plugin, provider):
    """A misspelled @hookimpl would silently never run; make it an error (pluggy's check_pending)."""
    import difflib

    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            close = difflib.get_close_matches(caller.name, HOOKS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"fw's hooks are: {', '.join(HOOKS)}"
            raise FwError(f"{provider} implements unknown hook '{clip(caller.name, 80)}'; {hint}")


def _impls(pm, plugin):
    """This plugin's hook implementations by hook name, so each registration is attributed to it."""
    for hook in HOOKS:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.plugin is plugin:
                yield hook, impl


def _import_local(spec, key):
    """Import a config-named plugin: a ``.py`` path or an importable module name."""
    from pathlib import Path

    try:
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            from importlib.util import module_from_spec, spec_from_file_location

            path = Path(spec).expanduser()
            if not path.is_file():
                raise FwError(f"{key}: plugin file not found: {path}")
            # Named after the whole path: two files called plugin.py must not replace each other.
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            modname = f"fw_local_plugin_{path.stem}_{digest}"
            module_spec = spec_from_file_location(modname, path)
            module = module_from_spec(module_spec)
            sys.modules[modname] = module
            module_spec.loader.exec_module(module)
            return module
        if str(Path.cwd()) not in sys.path:
            sys.path.append(str(Path.cwd()))
        return importlib.import_module(spec)
    except FwError:
        raise
    except ModuleNotFoundError as e:
        if e.name and spec.startswith(e.name):
            raise FwError(
                f"{key}: no plugin module '{spec}'; give an importable module name or a path to a .py file"
            ) from e
        raise FwError(f"{key}: plugin '{spec}' failed to import: {describe_exception(e)}") from e
    except Exception as e:
        raise FwError(f"{key}: plugin '{spec}' failed to import: {describe_exception(e)}") from e


def _fw_version():
    from .. import __version__

    return __version__
