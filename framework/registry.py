"""Name -> class tables for activations, datasets and weight importers.

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
from .loss import Loss
from .optimizer import Optimizer
from .weights import WeightImporter

#: hook suffix -> (base class, singular noun used in messages, the method a subclass must implement)
KINDS = {
    "activations": (Activation, "activation", "forward"),
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

    def __str__(self):
        return f"plugin '{self.plugin}'" + (f" ({self.dist} {self.version})" if self.dist else "")


@dataclass
class Registry:
    entries: dict = field(default_factory=lambda: {kind: {} for kind in KINDS})
    providers: dict = field(default_factory=lambda: {kind: {} for kind in KINDS})
    #: plugins that failed to load: [(Provider, one-line reason)]
    failures: list = field(default_factory=list)

    def names(self, kind) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind, name, key):
        """The class registered as ``name``; ``key`` is the config key that named it."""
        table = self.entries[kind]
        if isinstance(name, str) and name in table:
            return table[name]
        noun = KINDS[kind][1]
        close = difflib.get_close_matches(str(name), table, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        failed = f"; plugins that failed to load: {', '.join(p.plugin for p, _ in self.failures)}" if self.failures else ""
        raise FwError(
            f"{key}: unknown {noun} '{name}'; {hint}available: {', '.join(self.names(kind)) or 'none'}"
            f" (see `fw plugins`){failed}"
        )

    def add(self, kind, cls, provider):
        """Validate ``cls`` and record it; an error names both providers of a clash."""
        base, noun, method = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise FwError(f"{provider} registered {cls!r} as a {noun}, but it is not a subclass of framework.{base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise FwError(f"{provider}: {noun} class {cls.__name__} needs a class attribute `name`, a string like 'tanh'")
        if getattr(cls, method) is getattr(base, method):
            raise FwError(f"{provider}: {noun} '{name}' ({cls.__name__}) must implement {method}()")
        if name in self.entries[kind]:
            raise FwError(
                f"{noun} '{name}' is registered twice: by {self.providers[kind][name]} and by {provider}; "
                f"uninstall one, or set FW_DISABLE_PLUGIN_AUTOLOAD=1"
            )
        self.entries[kind][name] = cls
        self.providers[kind][name] = provider
