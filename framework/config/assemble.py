"""A validated config into a built network: the one assembly path.

``fw run`` (through ``api.build_network``), ``fw train``, ``fw show
--misclassified``, ``fw config`` and the plugin test kit all come here. It
knows no particular layer: every plugin name is looked up in the registry and
every parameter checked against the class's ``__init__`` before anything is
built, so a typo names the config key that holds it.
"""

import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..core.initializer import Initializer
from ..core.network import Network
from ..errors import FwError
from ..plugin_system.registry import KINDS
from ..safeio.untrusted import clip
from .datasets import make_dataset
from .instantiate import instantiate

#: model.sizes when a config gives neither model.layers nor model.sizes: the book's network.
BOOK_SIZES = (784, 50, 100, 10)


@dataclass
class LayerSpec:
    """One entry of the network: a registered name, its parameters, and the config key it came from."""

    name: str
    params: dict
    key: str
    kind: str = "layers"  # "activations" for model.activation and model.output_activation


def assemble(cfg, registry, rng, *, weights_follow=False, dataset=None):
    """``(network, dataset)``: the config's network, built for its dataset's examples and checked against its classes.

    ``rng`` draws the initial weights. ``weights_follow``: a weights file will
    overwrite every parameter, so the default initialiser draws nothing, and
    the dataset takes what training derived from the data from beside it.
    ``dataset``: one already made for ``cfg``.
    """
    dataset = make_dataset(cfg, registry, trained=weights_follow) if dataset is None else dataset
    specs = layer_specs(cfg)
    layers = make_layers(specs, registry, _default_init(cfg, registry, specs, weights_follow))
    labels = [f"model.layers[{i}] ({spec.name})" for i, spec in enumerate(specs)]
    net = Network(layers, labels).build(input_shape(cfg, dataset), rng)
    check_fits(cfg, net, dataset)
    return net, dataset


def named_spec(value):
    """Split a named config value (``relu`` or ``{name: leaky_relu, alpha: 0.1}``) into (name, params)."""
    from omegaconf import OmegaConf

    if isinstance(value, str):
        return value, {}
    params = OmegaConf.to_container(value) if OmegaConf.is_config(value) else dict(value)
    return params.pop("name"), params


def layer_specs(cfg) -> list[LayerSpec]:
    """``model.layers``, or what the ``model.sizes`` shorthand expands to.

    ``sizes: [784, 50, 10]`` with ``activation: sigmoid`` means dense 50,
    sigmoid, dense 10, softmax; ``sizes[0]`` is the input size, which a
    layered network takes from the dataset instead.
    """
    m = cfg.model
    if m.layers is not None:
        return [LayerSpec(*named_spec(entry), f"model.layers[{i}]") for i, entry in enumerate(m.layers)]
    sizes = list(m.sizes) if m.sizes is not None else list(BOOK_SIZES)
    hidden = ("model.activation", m.activation if m.activation is not None else "sigmoid")
    output = ("model.output_activation", m.output_activation if m.output_activation is not None else "softmax")
    specs = []
    for i, units in enumerate(sizes[1:], start=1):
        specs.append(LayerSpec("dense", {"units": units}, f"model.sizes[{i}]"))
        key, value = output if i == len(sizes) - 1 else hidden
        specs.append(LayerSpec(*named_spec(value), key, "activations"))
    return specs


def expanded_layers(cfg) -> list:
    """``model.layers`` as plain data (what ``fw config`` prints for the shorthand)."""
    return [spec.name if not spec.params else {"name": spec.name, **spec.params} for spec in layer_specs(cfg)]


def make_layers(specs, registry, default_init):
    """Every layer of ``specs`` constructed (see ``make_layer``)."""
    return [make_layer(registry.get(spec.kind, spec.name, spec.key), spec, registry, default_init) for spec in specs]


def make_layer(cls, spec, registry, default_init):
    """``cls`` made with ``spec``'s parameters. If it takes fw's initialiser (``takes_init``), its ``init``
    is an Initializer: the one the spec names, resolved through the registry, or ``default_init()``
    when it names none. Any other ``init`` parameter is the layer's own and gets its value as given."""
    params = dict(spec.params)
    if takes_init(cls):
        given = params.get("init")
        if given is None:
            params["init"] = default_init()
        elif isinstance(given, (str, Mapping)):
            params["init"] = create(registry, "initializers", given, f"{spec.key}.init")
        elif not callable(given):  # from Python, an initialiser object passes as it is
            raise FwError(
                f"{spec.key}.init must be null, an initialiser name or a mapping like {{name: normal, std: 0.01}}, "
                f"got {clip(repr(given), 80)}"
            )
    return instantiate(cls, spec.name, params, spec.key, cls.noun)


def takes_init(cls) -> bool:
    """Does the layer class take fw's initialiser? Its ``init`` parameter says so.

    Annotated, ``init: Initializer`` (or ``Initializer | None``) does, any other
    annotation (``init: float = 0.25``) does not. Unannotated, as layers written
    before the annotation was the rule are, it does when its default is None or
    a string (an initialiser's name) or it has none; any other default (PyTorch's
    ``PReLU(init=0.25)``) marks the layer's own parameter.
    """
    if cls.__init__ is object.__init__:
        return False
    param = inspect.signature(cls).parameters.get("init")
    if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return False
    if param.annotation is param.empty:
        return param.default is param.empty or param.default is None or isinstance(param.default, str)
    return _names_initializer(param.annotation)


def _names_initializer(annotation) -> bool:
    """Is ``annotation`` Initializer, a subclass, or a union holding one (also as a string, unevaluated)?"""
    import typing

    if isinstance(annotation, str):
        return "Initializer" in annotation
    if isinstance(annotation, type):
        return issubclass(annotation, Initializer)
    return any(_names_initializer(a) for a in typing.get_args(annotation))


def create(registry, kind, value, key):
    """The plugin instance a named config value asks for: ``relu`` or ``{name: leaky_relu, alpha: 0.1}``."""
    name, params = named_spec(value)
    return instantiate(registry.get(kind, name, key), name, params, key, KINDS[kind].noun)


def _default_init(cfg, registry, specs, weights_follow):
    """A function giving the initialiser for layers whose ``init`` is unset, made on first need.

    ``model.init``; when null, the choice of the network's first layer that
    has one (He for ReLU), else Xavier. With ``weights_follow`` it is one that
    only makes room: the weights file fills every parameter.
    """
    # model.init is checked now, whether or not a layer will use it (std: .inf is an error either way).
    made = [create(registry, "initializers", cfg.model.init, "model.init")] if cfg.model.init is not None else []
    if weights_follow:
        made = [_Unset()]

    def default():
        if not made:
            choices = (registry.get(s.kind, s.name, s.key).suggested_init() for s in specs)
            made.append(create(registry, "initializers", next((c for c in choices if c), "xavier"), "model.init"))
        return made[0]

    return default


class _Unset(Initializer):
    """Room for weights that a file is about to fill."""

    name = "unset"

    def __call__(self, fan_in, fan_out, rng):
        return np.empty((fan_in, fan_out), np.float32)


def input_shape(cfg, dataset) -> tuple:
    """One example's shape as the config's dataset gives it, e.g. (784,), (1, 28, 28) or a table's (13,).

    Read from the dataset when it declares ``shape``; otherwise from the data
    itself (``Dataset.example_shape``).
    """
    raw = dataset.example_shape()
    if cfg.dataset.flatten or len(raw) == 1:
        return (int(np.prod(raw)),)
    return raw if len(raw) == 3 else (1, *raw)


def check_fits(cfg, net, dataset):
    """The network's input and output against the dataset's examples and classes."""
    m, name = cfg.model, cfg.dataset.name
    features = int(np.prod(net.input_shape))
    if m.layers is None and m.sizes is not None and m.sizes[0] != features:
        raise FwError(
            f"model.sizes starts with {m.sizes[0]} inputs, but dataset '{name}' gives {features} per example; "
            f"set model.sizes[0] to {features}"
        )
    classes = dataset.num_classes
    if net.output_shape != (classes,):
        if m.layers is None:
            raise FwError(
                f"model.sizes ends with {net.output_shape[0]} outputs, but dataset '{name}' has {classes} classes; "
                f"set the last of model.sizes to {classes}"
            )
        raise FwError(
            f"model.layers: the network's output has shape {net.output_shape}, but dataset '{name}' has "
            f"{classes} classes; end with a dense layer of {classes} units (then softmax)"
        )


def check_names(cfg, registry):
    """Look up every plugin name the config uses, with its parameters: what ``fw config`` vouches for."""
    specs = layer_specs(cfg)
    make_layers(specs, registry, _default_init(cfg, registry, specs, weights_follow=False))
    make_dataset(cfg, registry, trained=False, check_root=False)  # its name and parameters; its files are fw run's
    if cfg.weights is not None:
        registry.get("weight_importers", cfg.weights.importer, "weights.importer")
    create(registry, "optimizers", cfg.train.optimizer, "train.optimizer")
    create(registry, "losses", cfg.train.loss, "train.loss")
