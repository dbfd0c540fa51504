"""The hooks a plugin implements. Each takes a ``register`` callback.

A plugin needs one: ``register_classes``, which takes any plugin class and
files it by its base class. The nine kind-specific hooks after it are how
plugins registered before it, and keep working.

The core owns the callback, so it validates what a plugin registers, records
which plugin registered it, and refuses a name that is already taken.
"""

import pluggy

hookspec = pluggy.HookspecMarker("fw")
hookimpl = pluggy.HookimplMarker("fw")


@hookspec
def register_classes(register):
    """Call ``register(cls)`` for each plugin class: a subclass of ``framework.Layer`` (``Activation``
    among them), ``Dataset``, ``WeightImporter``, ``WeightWriter``, ``Optimizer``, ``Loss``,
    ``Initializer`` or ``Callback``. fw files each by the class it subclasses."""


# The kind-specific hooks: each takes classes of its one kind.


@hookspec
def register_layers(register):
    """Call ``register(cls)`` for each ``framework.Layer`` subclass."""


@hookspec
def register_activations(register):
    """Call ``register(cls)`` for each ``framework.Activation`` subclass (a Layer: one table holds both)."""


@hookspec
def register_datasets(register):
    """Call ``register(cls)`` for each ``framework.Dataset`` subclass."""


@hookspec
def register_weight_importers(register):
    """Call ``register(cls)`` for each ``framework.WeightImporter`` subclass."""


@hookspec
def register_weight_writers(register):
    """Call ``register(cls)`` for each ``framework.WeightWriter`` subclass."""


@hookspec
def register_optimizers(register):
    """Call ``register(cls)`` for each ``framework.Optimizer`` subclass."""


@hookspec
def register_losses(register):
    """Call ``register(cls)`` for each ``framework.Loss`` subclass."""


@hookspec
def register_initializers(register):
    """Call ``register(cls)`` for each ``framework.Initializer`` subclass."""


@hookspec
def register_callbacks(register):
    """Call ``register(cls)`` for each ``framework.Callback`` subclass."""
