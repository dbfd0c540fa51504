"""The plugin manager: built-ins, installed entry points and config-named modules.

Built-in plugins are registered from a list of module names, exactly like a
third-party plugin (the pytest pattern). Each installed plugin loads on its
own: one that fails is recorded with its reason and skipped, so a broken
plugin never takes the CLI down. Modules named in a config's ``plugins:``
list were asked for explicitly, so their failure is an error.

Whatever a plugin raises while it loads, ``SystemExit`` included (all but
``KeyboardInterrupt``), is that plugin's failure, described through
``untrusted.describe_exception``, which survives any exception's ``__str__``.
A plugin still loading after ``FW_SLOW_PLUGIN_SECONDS`` (default 5) is named
on stderr, so one that hangs does not hang fw unnamed.
"""

import contextlib

import difflib
import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pluggy

from . import hookspecs
from .errors import FwError
from .registry import KINDS, NameClash, Provider, Registry
from .untrusted import clip, describe_exception

BUILTIN_PLUGINS = (
    "framework.plugins.activations",
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
        with _watch(f"built-in plugin '{modname}'", "report it as a bug in fw"):
            module = importlib.import_module(modname)
        _add(pm, registry, module, Provider(modname, "fw", version, builtin=True))
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
        provider = Provider(clip(ep.name, 80), dist and clip(dist.name, 80), dist and clip(dist.version, 40))
        fix = f"uninstall {provider.dist or 'it'}, or set FW_DISABLE_PLUGIN_AUTOLOAD=1"
        try:
            with _watch(str(provider), fix):
                plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a broken third-party plugin must not stop fw
            registry.failures.append((provider, f"import of '{clip(ep.value, 120)}' failed: {_failure(e)}"))
            continue
        with _watch(str(provider), fix):
            _add(pm, registry, plugin, provider)


def _add(pm, registry, plugin, provider, fatal=False):
    """Register one plugin all-or-nothing; record (or raise, if ``fatal``) its failure."""
    try:
        try:
            pm.register(plugin, name=provider.plugin)
        except ValueError as e:  # pluggy: the same plugin object or name twice
            raise FwError(f"{provider} is loaded twice: {describe_exception(e, prefix=False)}") from e
        except pluggy.PluginValidationError as e:
            raise FwError(f"{provider}: {describe_exception(e, prefix=False)}") from e
        _check_hook_names(pm, plugin, provider)
        staged = []
        for impl_kind, impl in _impls(pm, plugin):
            try:
                impl.function(register=lambda cls, k=impl_kind: staged.append((k, cls)))
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001 - SystemExit too: it is the plugin's failure
                raise FwError(f"{provider}: register_{impl_kind}() raised {_failure(e)}") from e
        for kind, cls in staged:  # all-or-nothing: one bad class fails the whole plugin
            registry.check(kind, cls, provider)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - pluggy reading a hostile object can raise anything
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        reason = describe_exception(e, 600, prefix=False) if type(e) is FwError else f"{provider}: {_failure(e)}"
        if fatal:
            raise FwError(reason) from e
        registry.failures.append((provider, reason))
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
    with _watch(f"plugin '{spec}' ({key})", "remove it from the config's plugins: list"):
        return _import_local_unwatched(spec, key)


def _import_local_unwatched(spec, key):
    try:
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise FwError(f"{key}: plugin file not found: {path}")
            modname = f"fw_local_plugin_{path.stem}"
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
        raise FwError(f"{key}: plugin '{spec}' failed to import: {_failure(e)}") from e
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit too: a plugin must not end fw
        raise FwError(f"{key}: plugin '{spec}' failed to import: {_failure(e)}") from e


def _fw_version():
    from . import __version__

    return __version__


def _failure(e: BaseException) -> str:
    """A plugin's exception in one bounded line, whatever its ``__str__`` does."""
    text = describe_exception(e)
    return f"{text} (a plugin must raise an exception, not exit)" if isinstance(e, SystemExit) else text


def slow_plugin_seconds() -> float:
    try:
        return float(os.environ.get("FW_SLOW_PLUGIN_SECONDS") or 5)
    except ValueError:
        return 5.0


@contextlib.contextmanager
def _watch(what, fix):
    """Name ``what`` on stderr if loading it takes more than ``slow_plugin_seconds()``."""
    import threading

    seconds = slow_plugin_seconds()
    line = f"fw: still loading {what} after {seconds:g} s; if it hangs, press Ctrl-C and {fix}\n"
    timer = threading.Timer(seconds, _say, (line,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _say(line):
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a plugin may have closed or replaced stderr
        pass
