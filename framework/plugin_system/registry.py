"""Name -> class tables for each kind of plugin: layers (activations among them), datasets, importers, ...

Plugins never write to the tables directly: they call the ``register``
callback the core hands them, which checks the class, records which plugin
provided it and refuses a name that is already taken.

A class is filed by its base class (``kind_of``): a ``framework.Loss``
subclass is a loss. Activations are layers: they live in the layers' table,
and "activations" is the view of that table whose classes subclass
``framework.Activation``.
"""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.activation import Activation
from ..core.callback import Callback
from ..core.initializer import Initializer
from ..core.layer import Layer
from ..core.loss import Loss
from ..core.optimizer import Optimizer
from ..data.dataset import Dataset
from ..data.weights import WeightImporter, WeightWriter
from ..errors import FwError
from ..safeio.untrusted import clip, describe_object, type_name

#: Longest plugin name: names are quoted in messages and listings.
MAX_NAME = 64


@dataclass(frozen=True)
class Kind:
    """One kind of plugin class: the base class, how messages name it, the method a subclass must
    implement, and the table its names live in (activations share the layers')."""

    base: type
    noun: str
    method: str
    table: str


#: kind (its hook is ``register_<kind>``) -> Kind; a narrower base comes before a broader one (``kind_of``)
KINDS = {
    "activations": Kind(Activation, "activation", "forward", "layers"),
    "layers": Kind(Layer, "layer", "forward", "layers"),
    "datasets": Kind(Dataset, "dataset", "load_raw", "datasets"),
    "weight_importers": Kind(WeightImporter, "weight importer", "load", "weight_importers"),
    "weight_writers": Kind(WeightWriter, "weight writer", "write", "weight_writers"),
    "optimizers": Kind(Optimizer, "optimizer", "update", "optimizers"),
    "losses": Kind(Loss, "loss", "forward", "losses"),
    "initializers": Kind(Initializer, "initializer", "__call__", "initializers"),
    "callbacks": Kind(Callback, "callback", "on_epoch_end", "callbacks"),
}
TABLES = tuple(dict.fromkeys(k.table for k in KINDS.values()))


def kind_of(cls, provider) -> str:
    """The kind ``cls`` is filed under, by its base class: ``register_classes`` takes any plugin class."""
    if isinstance(cls, type):
        for kind, k in KINDS.items():
            if issubclass(cls, k.base):
                return kind
    bases = ", ".join(f"framework.{k.base.__name__}" for k in KINDS.values())
    raise FwError(f"{provider} registered {describe_object(cls)}, which is not a subclass of any of {bases}")


#: Names the documentation's examples use that come from the example packages in examples/, not from fw itself.
EXAMPLES = {
    "tanh": "fw-extra-activations",
    "leaky_relu": "fw-extra-activations",
    "gelu": "fw-extra-activations",
    "scale": "fw-extra-layers",
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
    registers each (``builtins.builtin_names``), so a built-in name costs the import of its own module only,
    and neither the other built-ins nor a scan of installed plugins (a built-in
    keeps its name, so no installed plugin can change what it means). A name
    that is not declared loads the installed plugins first. ``loader`` (see
    ``manager``) does the loading; without one, the registry holds just what
    is added to it.

    ``entries`` and ``providers`` map kind -> name -> class / ``Provider``.
    Reading them loads what is needed; listing a kind loads everything.
    """

    def __init__(self, declared=None, loader=None):
        self._classes = {table: {} for table in TABLES}
        self._providers = {table: {} for table in TABLES}
        #: table -> name -> (kind, Provider) of the built-ins, loaded or not
        self._declared = {table: {} for table in TABLES}
        for kind, names in (declared or {}).items():
            for name, provider in names.items():
                self._declared[KINDS[kind].table][name] = (kind, provider)
        self._loader = loader
        self.entries = {kind: _View(self, kind, self._classes) for kind in KINDS}
        self.providers = {kind: _View(self, kind, self._providers) for kind in KINDS}
        #: plugins that failed to load (or to register a name): [(Provider, one-line reason)]
        self.failures = []
        #: names refused because another plugin had them: [(Provider, one-line reason)]
        self.clashes = []
        #: (table, name) -> the providers that all registered it, when no built-in decides
        self.ambiguous = {}
        #: called as ``on_problem(provider, message, clash)`` for each failure or clash recorded from now on
        self.on_problem = None

    def names(self, kind) -> list[str]:
        """Every name of ``kind``; declared built-ins need no import, installed plugins are loaded."""
        self._load("installed")
        table = KINDS[kind].table
        return sorted(n for n in self._classes[table].keys() | self._declared[table].keys() if self._in_view(kind, n))

    def listed(self, kind) -> list[str]:
        """The names ``fw plugins`` lists under ``kind``:
        those no narrower kind lists (layers that are not activations)."""
        narrower = self._narrower(kind)[1:]
        return [n for n in self.names(kind) if not any(self._in_view(k, n) for k in narrower)]

    def load_all(self):
        """Load every plugin, built-in and installed: for listings, and to see every failure."""
        self._load("all")
        return self

    def get(self, kind, name, key):
        """The class registered as ``name`` in ``kind``; ``key`` is the config key that named it.

        An unknown name is an error with the closest known name and every name
        of the kind (for layers: the layers, then the activations).
        """
        k = KINDS[kind]
        known = isinstance(name, str) and name in self.entries[kind]  # may load the installed plugins
        if (k.table, name) in self.ambiguous:
            both = " and ".join(map(str, self.ambiguous[k.table, name]))
            raise FwError(
                f"{key}: {k.noun} '{name}' is registered by both {both}; uninstall one, or set "
                "FW_DISABLE_PLUGIN_AUTOLOAD=1 and name the module you want in the config's plugins: list"
            )
        if known:
            return self.entries[kind][name]
        views = {v: self.listed(v) for v in self._narrower(kind)}
        close = difflib.get_close_matches(str(name), [n for names in views.values() for n in names], n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        if len(views) == 1:
            available = f"available: {', '.join(views[kind]) or 'none'}"
        else:
            available = "; ".join(f"{v}: {', '.join(names) or 'none'}" for v, names in views.items())
        failed = (
            f"; plugins that failed to load: {', '.join(p.plugin for p, _ in self.failures)}" if self.failures else ""
        )
        example = EXAMPLES.get(name) if isinstance(name, str) else None
        where = (
            f"; '{name}' comes with the example package {example} (in a clone: pip install ./examples/{example})"
            if example
            else ""
        )
        raise FwError(
            f"{key}: unknown {k.noun} '{clip(str(name), 80)}'; {hint}{available} (see `fw plugins`){where}{failed}"
        )

    def record_failure(self, provider, message):
        self.failures.append((provider, message))
        if self.on_problem:
            self.on_problem(provider, message, False)

    def record_clash(self, provider, message):
        self.clashes.append((provider, message))
        if self.on_problem:
            self.on_problem(provider, message, True)

    def _narrower(self, kind):
        """``kind`` and the kinds whose names are a part of its table's view (layers: layers, activations)."""
        k = KINDS[kind]
        return [kind] + [
            v for v, other in KINDS.items() if v != kind and other.table == k.table and issubclass(other.base, k.base)
        ]

    def _in_view(self, kind, name):
        """Is ``name`` (in ``kind``'s table) of ``kind``? Judged by its class, or for a built-in not yet
        imported by the kind it is declared as."""
        k = KINDS[kind]
        cls = self._classes[k.table].get(name)
        if cls is not None:
            return issubclass(cls, k.base)
        declared = self._declared[k.table].get(name)
        return declared is not None and issubclass(KINDS[declared[0]].base, k.base)

    def _has(self, kind, name):
        table = KINDS[kind].table
        if name not in self._classes[table] and name not in self._declared[table]:
            self._load("installed")  # a built-in keeps its name: only a name no built-in has needs them
        return self._in_view(kind, name)

    def _need(self, kind, name):
        """Load whatever registers ``name``: its built-in module, else the installed plugins."""
        table = KINDS[kind].table
        declared = self._declared[table].get(name)
        if declared is not None and self._loader:
            declared_kind, provider = declared
            self._loader.load_module(provider.plugin)
            if name not in self._classes[table]:
                raise FwError(
                    f"fw's cached table of built-in names says {provider} "
                    f"registers {KINDS[declared_kind].noun} '{name}', "
                    "but it does not; report this as a bug in fw"
                )
        elif declared is None:
            self._load("installed")

    def _load(self, what):
        if self._loader:
            self._loader.load_all() if what == "all" else self._loader.load_installed()

    @staticmethod
    def check(kind, cls, provider):
        """Is ``cls`` a proper class for ``kind``? A one-line error says what is missing."""
        k = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, k.base)):
            raise FwError(
                f"{provider} registered {describe_object(cls)}, which is not a subclass of framework.{k.base.__name__}"
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str):
            raise FwError(
                f"{provider}: {k.noun} class {type_name(cls)} needs a class attribute `name`, a string like 'tanh'"
            )
        if len(name) > MAX_NAME:
            raise FwError(f"{provider}: {k.noun} name {clip(repr(name[:40]), 40)} is longer than {MAX_NAME} characters")
        if not name.isidentifier():
            raise FwError(f"{provider}: {k.noun} name {name!r} must be a Python identifier, like {_identifier(name)!r}")
        # Against every base of this table it subclasses: an Activation registered as a layer needs its forward(x).
        bases = [other.base for other in KINDS.values() if other.table == k.table and issubclass(cls, other.base)]
        if any(getattr(cls, k.method) is getattr(base, k.method) for base in bases):
            raise FwError(f"{provider}: {k.noun} '{name}' ({type_name(cls)}) must implement {k.method}()")

    def add(self, kind, cls, provider):
        """Record a checked ``cls``. A name already taken raises an error naming both providers.

        A built-in keeps its name, loaded or only declared. Between two other
        plugins neither wins: the name becomes ambiguous, and a config that
        uses it gets an error.
        """
        k, name = KINDS[kind], cls.name
        declared = self._declared[k.table].get(name, (None, None))[1]
        first = self._providers[k.table].get(name) or (declared if declared != provider else None)
        if first is not None:
            if not first.builtin:
                self.ambiguous.setdefault((k.table, name), [first]).append(provider)
            raise NameClash(f"{k.noun} '{name}' is registered by both {first} and {provider}", first)
        if provider.builtin and declared != provider:
            raise FwError(
                f"{provider} registers {k.noun} '{name}', which fw's cached table of built-in names does not list; "
                "report this as a bug in fw"
            )
        self._classes[k.table][name] = cls
        self._providers[k.table][name] = provider


class _View(Mapping):
    """One kind's name -> value view of its table, loading a plugin when a name it registers is read."""

    def __init__(self, registry, kind, tables):
        self._registry, self._kind = registry, kind
        self._values = tables[KINDS[kind].table]

    def __getitem__(self, name):
        if name not in self._values:
            self._registry._need(self._kind, name)
        if not self._registry._in_view(self._kind, name):
            raise KeyError(name)
        return self._values[name]

    def __contains__(self, name):
        return self._registry._has(self._kind, name)

    def __iter__(self):
        self._registry.load_all()
        return iter([n for n in self._values if self._registry._in_view(self._kind, n)])

    def __len__(self):
        return sum(1 for _ in self)


class NameClash(FwError):
    """A plugin registered a name another plugin already has; ``first`` is that plugin."""

    def __init__(self, message, first):
        super().__init__(message)
        self.first = first


def _identifier(name):
    fixed = "".join(c if c.isalnum() else "_" for c in name)
    return fixed if fixed.isidentifier() else f"_{fixed}"
