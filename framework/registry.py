"""Name -> class tables for each kind of plugin: activations, layers, datasets, importers, ...

Plugins never write to the tables directly: they call the ``register``
callback the core hands them, which checks the class, records which plugin
provided it and refuses a name that is already taken.
"""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from .activation import Activation
from .dataset import Dataset
from .errors import FwError
from .initializer import Initializer
from .layer import Layer
from .loss import Loss
from .optimizer import Optimizer
from .untrusted import clip, describe_object, type_name
from .weights import WeightImporter

#: Longest plugin name: names are quoted in messages and listings.
MAX_NAME = 64

#: Kinds that share one set of names: every activation is usable as a layer by its name.
_SHARED = {"layers": "activations", "activations": "layers"}

#: hook suffix -> (base class, singular noun used in messages, the method a subclass must implement)
KINDS = {
    "activations": (Activation, "activation", "forward"),
    "layers": (Layer, "layer", "forward"),
    "datasets": (Dataset, "dataset", "load_raw"),
    "weight_importers": (WeightImporter, "weight importer", "load"),
    "optimizers": (Optimizer, "optimizer", "update"),
    "losses": (Loss, "loss", "forward"),
    "initializers": (Initializer, "initializer", "__call__"),
}


@dataclass(frozen=True)
class Provider:
    """Who registered something: the plugin, and the distribution it came from."""

    plugin: str
    dist: str | None = None
    version: str | None = None
    builtin: bool = False

    def __str__(self):
        return f"plugin '{self.plugin}'" + (f" ({self.dist} {self.version})" if self.dist else "")


class Registry:
    """Every plugin's names, loaded as they are needed.

    ``declared`` lists the built-in names by kind with the built-in plugin that
    registers each, so a built-in name costs the import of its own module only,
    and neither the other built-ins nor a scan of installed plugins (a built-in
    keeps its name, so no installed plugin can change what it means). A name
    that is not declared loads the installed plugins first. ``loader`` (see
    ``plugin_manager``) does the loading; without one, the registry holds just
    what is added to it.

    ``entries`` and ``providers`` map kind -> name -> class / ``Provider``.
    Reading them loads what is needed; listing a kind loads everything.
    """

    def __init__(self, declared=None, loader=None):
        self._classes = {kind: {} for kind in KINDS}
        self._providers = {kind: {} for kind in KINDS}
        self._declared = {kind: dict((declared or {}).get(kind, {})) for kind in KINDS}
        self._loader = loader
        self.entries = {kind: _Table(self, kind, self._classes[kind]) for kind in KINDS}
        self.providers = {kind: _Table(self, kind, self._providers[kind]) for kind in KINDS}
        #: plugins that failed to load (or to register a name): [(Provider, one-line reason)]
        self.failures = []
        #: names refused because another plugin had them: [(Provider, one-line reason)]
        self.clashes = []
        #: (kind, name) -> the providers that all registered it, when no built-in decides
        self.ambiguous = {}
        #: called as ``on_problem(provider, message, clash)`` for each failure or clash recorded from now on
        self.on_problem = None

    def names(self, kind) -> list[str]:
        """Every name of ``kind``; declared built-ins need no import, installed plugins are loaded."""
        self._load("installed")
        return sorted(self._classes[kind].keys() | self._declared[kind].keys())

    def load_all(self):
        """Load every plugin, built-in and installed: for listings, and to see every failure."""
        self._load("all")
        return self

    def get(self, kind, name, key):
        """The class registered as ``name``; ``key`` is the config key that named it."""
        return self.find((kind,), name, key)[1]

    def find(self, kinds, name, key):
        """``(kind, class)`` for ``name`` in the first of ``kinds`` that has it (layers, then activations).

        An unknown name is an error with the closest known name and every name
        of those kinds.
        """
        for kind in kinds:
            known = isinstance(name, str) and name in self.entries[kind]  # may load the installed plugins
            if (kind, name) in self.ambiguous:
                both = " and ".join(map(str, self.ambiguous[kind, name]))
                raise FwError(
                    f"{key}: {KINDS[kind][1]} '{name}' is registered by both {both}; uninstall one, or set "
                    "FW_DISABLE_PLUGIN_AUTOLOAD=1 and name the module you want in the config's plugins: list"
                )
            if known:
                return kind, self.entries[kind][name]
        names = {kind: self.names(kind) for kind in kinds}
        close = difflib.get_close_matches(str(name), [n for kind in kinds for n in names[kind]], n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        if len(kinds) == 1:
            available = f"available: {', '.join(names[kinds[0]]) or 'none'}"
        else:
            available = "; ".join(f"{kind}: {', '.join(names[kind]) or 'none'}" for kind in kinds)
        failed = f"; plugins that failed to load: {', '.join(p.plugin for p, _ in self.failures)}" if self.failures else ""
        raise FwError(
            f"{key}: unknown {KINDS[kinds[0]][1]} '{clip(str(name), 80)}'; {hint}{available} (see `fw plugins`){failed}"
        )

    def record_failure(self, provider, message):
        self.failures.append((provider, message))
        if self.on_problem:
            self.on_problem(provider, message, False)

    def record_clash(self, provider, message):
        self.clashes.append((provider, message))
        if self.on_problem:
            self.on_problem(provider, message, True)

    def _has(self, kind, name):
        if name in self._classes[kind] or name in self._declared[kind]:
            return True
        if name in self._declared.get(_SHARED.get(kind), ()):
            return False  # a built-in of the other kind keeps the name: no installed plugin can have it
        self._load("installed")
        return name in self._classes[kind]

    def _need(self, kind, name):
        """Load whatever registers ``name``: its built-in module, else the installed plugins."""
        provider = self._declared[kind].get(name)
        if provider is not None and self._loader:
            self._loader.load_module(provider.plugin)
            if name not in self._classes[kind]:
                raise FwError(
                    f"fw's table of built-in names says {provider} registers {KINDS[kind][1]} '{name}', "
                    "but it does not; fix BUILTINS in framework/plugin_manager.py"
                )
        elif name not in self._declared.get(_SHARED.get(kind), ()):
            self._load("installed")

    def _load(self, what):
        if self._loader:
            self._loader.load_all() if what == "all" else self._loader.load_installed()

    @staticmethod
    def check(kind, cls, provider):
        """Is ``cls`` a proper class for ``kind``? A one-line error says what is missing."""
        base, noun, method = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise FwError(f"{provider} registered {describe_object(cls)}, which is not a subclass of framework.{base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str):
            raise FwError(f"{provider}: {noun} class {type_name(cls)} needs a class attribute `name`, a string like 'tanh'")
        if len(name) > MAX_NAME:
            raise FwError(f"{provider}: {noun} name {clip(repr(name[:40]), 40)} is longer than {MAX_NAME} characters")
        if not name.isidentifier():
            raise FwError(f"{provider}: {noun} name {name!r} must be a Python identifier, like {_identifier(name)!r}")
        if getattr(cls, method) is getattr(base, method):
            raise FwError(f"{provider}: {noun} '{name}' ({type_name(cls)}) must implement {method}()")

    def add(self, kind, cls, provider):
        """Record a checked ``cls``. A name already taken raises an error naming both providers.

        A built-in keeps its name, loaded or only declared. Between two other
        plugins neither wins: the name becomes ambiguous, and a config that
        uses it gets an error.
        """
        name, noun = cls.name, KINDS[kind][1]
        declared = self._declared[kind].get(name)
        first = self._providers[kind].get(name) or (declared if declared != provider else None)
        if first is not None:
            if not first.builtin:
                self.ambiguous.setdefault((kind, name), [first]).append(provider)
            raise NameClash(f"{noun} '{name}' is registered by both {first} and {provider}", first)
        if provider.builtin and declared != provider:
            raise FwError(
                f"{provider} registers {noun} '{name}', which fw's table of built-in names does not list; "
                "add it to BUILTINS in framework/plugin_manager.py"
            )
        # Every activation is usable as a layer by its name, so the two share one namespace.
        other = _SHARED.get(kind)
        first = other and (self._providers[other].get(name) or self._declared[other].get(name))
        if first:
            if not first.builtin:
                for k in (kind, other):
                    self.ambiguous.setdefault((k, name), [first]).append(provider)
            raise NameClash(
                f"'{name}' is registered both as {KINDS[other][1]} by {first} and as {noun} by {provider}; "
                "layers and activations share one set of names",
                first,
            )
        self._classes[kind][name] = cls
        self._providers[kind][name] = provider


class _Table(Mapping):
    """One kind's name -> value table that loads a plugin when a name it registers is read."""

    def __init__(self, registry, kind, values):
        self._registry, self._kind, self._values = registry, kind, values

    def __getitem__(self, name):
        if name not in self._values:
            self._registry._need(self._kind, name)
        return self._values[name]

    def __contains__(self, name):
        return self._registry._has(self._kind, name)

    def __iter__(self):
        self._registry.load_all()
        return iter(list(self._values))

    def __len__(self):
        self._registry.load_all()
        return len(self._values)


class NameClash(FwError):
    """A plugin registered a name another plugin already has; ``first`` is that plugin."""

    def __init__(self, message, first):
        super().__init__(message)
        self.first = first


def _identifier(name):
    fixed = "".join(c if c.isalnum() else "_" for c in name)
    return fixed if fixed.isidentifier() else f"_{fixed}"
