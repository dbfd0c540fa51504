"""Name -> class tables for each kind of plugin: activations, layers, datasets, importers, ...

Plugins never write to the tables directly: they call the ``register``
callback the core hands them, which checks the class, records which plugin
provided it and refuses a name that is already taken.
"""

import difflib
from dataclasses import dataclass, field

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


@dataclass
class Registry:
    entries: dict = field(default_factory=lambda: {kind: {} for kind in KINDS})
    providers: dict = field(default_factory=lambda: {kind: {} for kind in KINDS})
    #: plugins that failed to load (or to register a name): [(Provider, one-line reason)]
    failures: list = field(default_factory=list)
    #: names refused because another plugin had them: [(Provider, one-line reason)]
    clashes: list = field(default_factory=list)
    #: (kind, name) -> the providers that all registered it, when no built-in decides
    ambiguous: dict = field(default_factory=dict)

    def names(self, kind) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind, name, key):
        """The class registered as ``name``; ``key`` is the config key that named it."""
        table = self.entries[kind]
        noun = KINDS[kind][1]
        if (kind, name) in self.ambiguous:
            both = " and ".join(map(str, self.ambiguous[kind, name]))
            raise FwError(
                f"{key}: {noun} '{name}' is registered by both {both}; uninstall one, or set "
                "FW_DISABLE_PLUGIN_AUTOLOAD=1 and name the module you want in the config's plugins: list"
            )
        if isinstance(name, str) and name in table:
            return table[name]
        close = difflib.get_close_matches(str(name), table, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        failed = f"; plugins that failed to load: {', '.join(p.plugin for p, _ in self.failures)}" if self.failures else ""
        raise FwError(
            f"{key}: unknown {noun} '{name}'; {hint}available: {', '.join(self.names(kind)) or 'none'}"
            f" (see `fw plugins`){failed}"
        )

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

        A built-in keeps its name. Between two other plugins neither wins:
        the name becomes ambiguous, and a config that uses it gets an error.
        """
        name, noun = cls.name, KINDS[kind][1]
        if name in self.entries[kind]:
            first = self.providers[kind][name]
            if not first.builtin:
                self.ambiguous.setdefault((kind, name), [first]).append(provider)
            raise NameClash(f"{noun} '{name}' is registered by both {first} and {provider}", first)
        # Every activation is usable as a layer by its name, so the two share one namespace.
        other = {"layers": "activations", "activations": "layers"}.get(kind)
        if other and name in self.entries[other]:
            first = self.providers[other][name]
            if not first.builtin:
                for k in (kind, other):
                    self.ambiguous.setdefault((k, name), [first]).append(provider)
            raise NameClash(
                f"'{name}' is registered both as {KINDS[other][1]} by {first} and as {noun} by {provider}; "
                "layers and activations share one set of names",
                first,
            )
        self.entries[kind][name] = cls
        self.providers[kind][name] = provider


class NameClash(FwError):
    """A plugin registered a name another plugin already has; ``first`` is that plugin."""

    def __init__(self, message, first):
        super().__init__(message)
        self.first = first


def _identifier(name):
    fixed = "".join(c if c.isalnum() else "_" for c in name)
    return fixed if fixed.isidentifier() else f"_{fixed}"
