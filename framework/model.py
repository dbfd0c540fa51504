"""The network a config describes: ``model.layers`` (or the ``model.sizes`` shorthand) as built layers.

Used by ``fw run`` (through ``api.py``), ``fw train`` and ``fw config`` alike;
it knows no particular layer. Every plugin name is looked up in the registry
and every parameter checked against the class's ``__init__`` before anything
is built, so a typo names the config key that holds it.
"""

import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .config import named_spec
from .errors import FwError
from .network import ActivationLayer, Network
from .registry import KINDS

#: model.sizes when a config gives neither model.layers nor model.sizes: the book's network.
BOOK_SIZES = (784, 50, 100, 10)


@dataclass
class LayerSpec:
    """One entry of the network: a registered name, its parameters, and the config key it came from."""

    name: str
    params: dict
    key: str


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
        specs.append(LayerSpec(*named_spec(value), key))
    return specs


def expanded_layers(cfg) -> list:
    """``model.layers`` as plain data (what ``fw config`` prints for the shorthand)."""
    return [spec.name if not spec.params else {"name": spec.name, **spec.params} for spec in layer_specs(cfg)]


def make(registry, kind, value, key):
    """An instance from a named config value: ``relu`` or ``{name: leaky_relu, alpha: 0.1}``."""
    name, params = named_spec(value)
    return construct(registry.get(kind, name, key), name, params, key, KINDS[kind][1])


def construct(cls, name, params, key, noun):
    """``cls(**params)``, with the parameters checked against its ``__init__`` first.

    A typo names the accepted parameters instead of a TypeError, and whatever
    a plugin's ``__init__`` raises becomes one line naming ``key``.
    """
    # Without parameters there is nothing to check, and inspect.signature of a class
    # with no __init__ of its own costs ~15 ms (it tokenizes object's text signature).
    if params:
        signature = inspect.signature(cls)
        try:
            signature.bind(**params)
        except TypeError as e:
            accepted = [p.name for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            unknown = sorted(set(params) - set(accepted))
            problem = f"does not accept {', '.join(map(repr, unknown))}" if unknown else f"cannot take {params}: {e}"
            raise FwError(f"{key}: {noun} '{name}' {problem}; it accepts: {', '.join(accepted) or 'no parameters'}") from e
    from .untrusted import describe_exception

    try:
        return cls(**params)
    except ValueError as e:  # the plugin's own check of a value, e.g. "rate must be below 1"
        raise FwError(f"{key}: {noun} '{name}': {describe_exception(e, prefix=False)}") from e
    except Exception as e:  # a plugin's __init__: whatever it raises, say where it came from
        raise FwError(f"{key}: {noun} '{name}' failed to start with parameters {params}: {describe_exception(e)}") from e


def make_layer(registry, spec: LayerSpec):
    """The layer a spec names: a layer plugin, or an activation wrapped as a layer."""
    if spec.key in ("model.activation", "model.output_activation"):
        return ActivationLayer(make(registry, "activations", {"name": spec.name, **spec.params}, spec.key))
    kind, cls = registry.find(("layers", "activations"), spec.name, spec.key)
    if kind == "layers":
        return construct(cls, spec.name, spec.params, spec.key, "layer")
    return ActivationLayer(construct(cls, spec.name, spec.params, spec.key, "activation"))


def default_initializer(cfg, registry, layers):
    """``model.init``, or when it is null the one the network's first activation asks for (He for ReLU)."""
    value = cfg.model.init
    if value is None:
        acts = [layer.activation for layer in layers if isinstance(layer, ActivationLayer)]
        value = acts[0].init if acts else "xavier"
    return make(registry, "initializers", value, "model.init")


def make_layers(cfg, registry, weights_follow=False):
    """``(layers, specs)``: every layer constructed, each ``init`` turned into an Initializer.

    A layer with an ``init`` attribute holding a config value (a name, a
    mapping, or None for the network's default) gets an Initializer instance
    in its place before ``build``, so outside layers can use fw's initialisers.
    ``weights_follow``: a weights file will overwrite every parameter, so the
    default draws nothing (its values are never seen).
    """
    specs = layer_specs(cfg)
    layers = [make_layer(registry, spec) for spec in specs]
    default = _unset if weights_follow else None
    for layer, spec in zip(layers, specs):
        if isinstance(layer, ActivationLayer) or not hasattr(layer, "init"):
            continue
        if layer.init is None:
            default = default or default_initializer(cfg, registry, layers)
            layer.init = default
        elif isinstance(layer.init, (str, Mapping)):  # a name or {name: ..., ...}; a DictConfig is a Mapping
            layer.init = make(registry, "initializers", layer.init, f"{spec.key}.init")
    return layers, specs


def _unset(fan_in, fan_out, rng):
    """Room for weights that a file is about to fill."""
    return np.empty((fan_in, fan_out), np.float32)


def build_model(cfg, registry, input_shape, rng, weights_follow=False) -> Network:
    """The config's network, built for ``input_shape`` with initial weights drawn from ``rng``."""
    layers, specs = make_layers(cfg, registry, weights_follow)
    labels = [f"model.layers[{i}] ({spec.name})" for i, spec in enumerate(specs)]
    return Network(layers, labels).build(input_shape, rng)


def input_shape(cfg, dataset) -> tuple:
    """One example's shape as the config's dataset gives it, e.g. (784,) or (1, 28, 28).

    Read from the dataset class when it declares ``shape``; otherwise from the
    data itself (the split is loaded once, to look).
    """
    d = cfg.dataset
    raw = getattr(dataset, "shape", None)
    if raw is None:
        images, _ = dataset.load_raw(d.split)
        raw = images.shape[1:]
    raw = tuple(raw)
    if d.flatten:
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
