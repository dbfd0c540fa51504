"""The plugin manager: built-ins, installed entry points and config-named modules.

Built-in plugins are registered from a list of module names, exactly like a
third-party plugin (the pytest pattern). Each installed plugin loads on its
own: one that fails is recorded with its reason and skipped, so a broken
plugin never takes the CLI down. Modules named in a config's ``plugins:``
list were asked for explicitly, so their failure is an error.
"""

import difflib
import functools
import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pluggy

from . import hookspecs
from .errors import FwError
from .registry import KINDS, NameClash, Provider, Registry

BUILTIN_PLUGINS = (
    "framework.plugins.activations",
    "framework.plugins.layers",
    "framework.plugins.mnist",
    "framework.plugins.fashion_mnist",
    "framework.plugins.pickle_importer",
    "framework.plugins.npz_importer",
    "framework.plugins.initializers",
    "framework.plugins.optimizers",
    "framework.plugins.losses",
)
ENTRY_POINT_GROUP = "fw"
HOOKS = [f"register_{kind}" for kind in KINDS]


def autoload_disabled() -> bool:
    return os.environ.get("FW_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("", "0", "false", "no")


def get_registry(local_plugins=()) -> Registry:
    """The registry of every plugin: built-ins, entry points, then ``local_plugins``.

    ``local_plugins`` are module names or paths to ``.py`` files (a config's
    ``plugins:`` list). Results are cached per list, so repeated API calls do
    not import plugins again.
    """
    return _build(tuple(local_plugins), autoload_disabled())


@functools.cache
def _build(local_plugins, no_autoload):
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    version = _fw_version()
    for modname in BUILTIN_PLUGINS:
        _add(pm, registry, importlib.import_module(modname), Provider(modname, "fw", version, builtin=True))
    if not no_autoload:
        _load_entry_points(pm, registry)
    for i, spec in enumerate(local_plugins):
        module = _import_local(spec, f"plugins[{i}]")
        if pm.is_registered(module):  # already loaded: a built-in, or an installed plugin
            continue
        _add(pm, registry, module, Provider(spec), fatal=True)
        if not any(True for _ in _impls(pm, module)):
            raise FwError(
                f"plugins[{i}]: '{spec}' registers nothing; it needs an @hookimpl function such as "
                "register_activations(register)"
            )
    return registry


def _load_entry_points(pm, registry):
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        provider = Provider(ep.name, dist and dist.name, dist and dist.version)
        try:
            plugin = ep.load()
        except Exception as e:  # a broken third-party plugin must not stop fw
            registry.failures.append((provider, f"import of '{ep.value}' failed: {_one_line(e)}"))
            continue
        _add(pm, registry, plugin, provider)


def _add(pm, registry, plugin, provider, fatal=False):
    """Register one plugin all-or-nothing; record (or raise, if ``fatal``) its failure."""
    try:
        try:
            pm.register(plugin, name=provider.plugin)
        except ValueError as e:  # pluggy: the same plugin object or name twice
            raise FwError(f"{provider} is loaded twice: {e}") from e
        except pluggy.PluginValidationError as e:
            raise FwError(f"{provider}: {_one_line(e)}") from e
        _check_hook_names(pm, plugin, provider)
        staged = []
        for impl_kind, impl in _impls(pm, plugin):
            try:
                impl.function(register=lambda cls, k=impl_kind: staged.append((k, cls)))
            except FwError:
                raise
            except Exception as e:
                raise FwError(f"{provider}: register_{impl_kind}() raised {_one_line(e)}") from e
        for kind, cls in staged:  # all-or-nothing: one bad class fails the whole plugin
            registry.check(kind, cls, provider)
    except FwError as e:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        if fatal:
            raise
        registry.failures.append((provider, str(e)))
        return
    for kind, cls in staged:
        try:
            registry.add(kind, cls, provider)
        except NameClash as e:  # refuses that name only; the plugin's other names stand
            if fatal:
                raise FwError(f"{e}; rename it in '{provider.plugin}', or drop that from the config's plugins: list") from e
            kept = "the built-in is kept" if e.first.builtin else "neither is used until one is uninstalled"
            registry.clashes.append((provider, f"{e}; {kept}"))


def _check_hook_names(pm, plugin, provider):
    """A misspelled @hookimpl would silently never run; make it an error (pluggy's check_pending)."""
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            close = difflib.get_close_matches(caller.name, HOOKS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"fw's hooks are: {', '.join(HOOKS)}"
            raise FwError(f"{provider} implements unknown hook '{caller.name}'; {hint}")


def _impls(pm, plugin):
    """This plugin's hook implementations, so each registration is attributed to it."""
    for kind in KINDS:
        for impl in getattr(pm.hook, f"register_{kind}").get_hookimpls():
            if impl.plugin is plugin:
                yield kind, impl


def _import_local(spec, key):
    """Import a config-named plugin: a ``.py`` path or an importable module name."""
    try:
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise FwError(f"{key}: plugin file not found: {path}")
            # Named after the whole path: two files called plugin.py must not replace each other.
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            modname = f"fw_local_plugin_{path.stem}_{digest}"
            module_spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(module_spec)
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
        raise FwError(f"{key}: plugin '{spec}' failed to import: {_one_line(e)}") from e
    except Exception as e:
        raise FwError(f"{key}: plugin '{spec}' failed to import: {_one_line(e)}") from e


def _fw_version():
    from . import __version__

    return __version__


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
