"""Every config key fw itself reads, declared once: its type, its default, and what its value must be.

The dataclasses below are the one declaration. ``SCHEMA`` (their defaults as
plain data) is what a config is merged over in omegaconf's struct mode, so a
typo is an error naming the full key path and the closest valid key; and
``validate`` checks every value against its field's type (``core.params.fits``,
which checks plugins' parameters too) and ``check``, failing with the field's
``want``. omegaconf's own typed merge (``OmegaConf.structured``) is not used:
it would turn ``"100"`` into 100 silently and reject ``abc`` in its own words,
not fw's one line saying what the key must be.
"""

import copy
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Optional

from ..core.callback import METRICS
from ..core.params import Named, fits
from ..core.schedules import SCHEDULES
from .sweep import PRUNERS, SAMPLERS


def setting(default, want, check=None, each=None):
    """A config key: its ``default``, what its value must be (``want``, for the error line), a ``check``
    of the value beyond its type, and for a list, what ``each`` entry must be."""
    made = {"default_factory": lambda: copy.deepcopy(default)} if isinstance(default, (list, dict)) else {"default": default}
    return field(metadata={"want": want, "check": check, "each": each}, **made)


def section(cls, want):
    """A section of the config (``dataset:``), holding the keys of ``cls``."""
    return field(default_factory=cls, metadata={"want": want})


#: The sections below are declarations: fw reads their fields (``SCHEMA``, ``check_section``) and never
#: compares or prints them, so no ``__eq__`` or ``__repr__`` is generated for them at every start-up (0.6 ms).
#: (Their ``__init__`` stays: without it, ``dataclass`` writes a missing docstring from ``object``'s text
#: signature, and so compiles ``tokenize``'s regular expressions, 6 ms.)
keys = dataclass(eq=False, repr=False)


def one_of(choices) -> str:
    *others, last = choices
    return f"{', '.join(others)} or {last}" if others else last


@keys
class DatasetKeys:
    """The keys every dataset has. Any other ``dataset:`` key is the dataset's own parameter (mnist: root;
    csv: path, label, ...), checked against its class's ``__init__`` once the dataset is known."""

    name: str = setting("mnist", "a string")
    split: str = setting("test", "a string")
    # the dataset's own normalisation: /255 for images, standardisation for tables
    normalize: bool = setting(True, "true or false")
    flatten: bool = setting(True, "true or false")
    one_hot_label: bool = setting(False, "true or false")
    # N: the first N examples of the split, after a seeded shuffle
    limit: Optional[int] = setting(None, "a positive whole number (the first N examples, shuffled) or null", lambda v: v > 0)


@keys
class ModelKeys:
    # The network: a list of layers, each a name (relu) or a mapping ({name: dense, units: 100}).
    layers: Optional[list[Named]] = setting(
        None,
        "a list of layers, e.g. [{name: dense, units: 10}, softmax]",
        lambda v: len(v) > 0,
        each="a layer name such as relu, or a mapping like {name: dense, units: 100}",
    )
    # Or the shorthand model.sizes: dense layers of these sizes, model.activation between
    # them and model.output_activation last. With neither, the book's [784, 50, 100, 10].
    sizes: Optional[list[int]] = setting(
        None, "a list of at least two positive whole numbers, e.g. [784,50,100,10]", lambda v: len(v) >= 2 and min(v) > 0
    )
    # null: sigmoid; a name, or {name: ..., <parameter>: ...}
    activation: Optional[Named] = setting(None, "an activation name, or a mapping like {name: leaky_relu, alpha: 0.01}")
    # null: softmax
    output_activation: Optional[Named] = setting(None, "an activation name, or a mapping like {name: leaky_relu, alpha: 0.01}")
    # for the random initialisation when weights is null
    seed: int = setting(0, "a whole number, 0 or more", lambda v: v >= 0)
    # null: the activation's own (he for relu, xavier for sigmoid); or {name: normal, std: 0.01}
    init: Optional[Named] = setting(
        None, "null, an initialiser name (he, xavier, normal) or a mapping like {name: normal, std: 0.01}"
    )


@keys
class WeightsKeys:
    """weights: null means a seeded random initialisation. Nothing here defaults to the book's
    file: a config that names its own weights must not inherit the book's url."""

    importer: str = setting("pickle", "an importer name such as pickle")
    # null: downloaded from url into $FW_DATA_DIR/weights/ (or ~/.cache/fw/weights/)
    path: Optional[str] = setting(None, "a string or null")
    url: Optional[str] = setting(None, "a string or null")
    # checked against the file, downloaded or already there (validate: 64 hex digits)
    sha256: Optional[Any] = setting(None, "64 hex digits or null")
    # what fw train writes: a weight writer's name (npz, pickle, ...); null: the importer's
    format: Optional[str] = setting(None, "a weight writer's name (fw plugins lists them: npz, pickle, ...) or null")


@keys
class TrainKeys:
    epochs: int = setting(10, "a positive whole number", lambda v: v > 0)
    batch_size: int = setting(100, "a positive whole number", lambda v: v > 0)
    seed: int = setting(0, "a whole number, 0 or more", lambda v: v >= 0)  # initial weights and shuffling
    # plus its parameters, e.g. lr: 0.001 (optimizer: sgd is read as {name: sgd})
    optimizer: dict = setting(
        {"name": "adam"}, "an optimizer name or a mapping like {name: adam, lr: 0.001}", lambda v: isinstance(v.get("name"), str)
    )
    loss: Named = setting("cross_entropy", "a loss name such as cross_entropy")
    # constant; cosine (decay to 0 over the run); flat_cosine (the last 25%)
    lr_schedule: str = setting("flat_cosine", one_of(SCHEDULES), lambda v: v in SCHEDULES)
    # hold out this part of the train split (stratified, seeded): val_loss, val_accuracy
    validation_fraction: float = setting(
        0, "a number from 0 (no validation split) to below 1, e.g. 0.1", lambda v: 0 <= v < 1
    )
    # e.g. [{name: early_stopping, monitor: val_accuracy, patience: 3}]
    callbacks: list[Named] = setting(
        [],
        "a list of callbacks, e.g. [{name: early_stopping, patience: 3}]",
        each="a callback name such as csv_logger, or a mapping like {name: early_stopping, patience: 3}",
    )


@keys
class SweepKeys:
    """fw sweep's search (config/sweep.py reads params); fw run and fw train ignore it."""

    # any per-epoch metric; *accuracy is maximised, *loss minimised
    metric: str = setting("val_accuracy", f"a per-epoch metric: {', '.join(METRICS)}", lambda v: v in METRICS)
    trials: int = setting(20, "a positive whole number", lambda v: v > 0)
    # tpe, random or grid, seeded from train.seed
    sampler: str = setting("tpe", one_of(SAMPLERS), lambda v: v in SAMPLERS)
    pruner: Optional[str] = setting("median", one_of(PRUNERS), lambda v: v in PRUNERS)
    # KEY: {low: ..., high: ..., log: true} or KEY: [choice, ...]
    params: dict = setting({}, "a mapping of config keys to ranges or lists")


@keys
class Config:
    dataset: DatasetKeys = section(DatasetKeys, "a mapping with name, split, ...")
    model: ModelKeys = section(ModelKeys, "a mapping with layers (or sizes, activation, output_activation)")
    weights: Optional[WeightsKeys] = section(WeightsKeys, "a mapping with importer and path, or null for a random initialisation")
    train: TrainKeys = section(TrainKeys, "a mapping with epochs, batch_size, optimizer, loss, ...")
    sweep: SweepKeys = section(SweepKeys, "a mapping with metric, trials, sampler, pruner and params")
    batch_size: int = setting(100, "a positive whole number, e.g. batch_size=100", lambda v: v > 0)  # fw run's
    plugins: list[str] = setting([], "a list of module names or .py paths")


#: Every key with its default, as plain data: what a config is merged over.
SCHEMA = asdict(Config())

#: The keys every dataset has; any other ``dataset:`` key is a parameter of the dataset class's ``__init__``.
DATASET_KEYS = tuple(SCHEMA["dataset"])


def check_section(fail, cls, values, prefix=""):
    """Every key of the ``cls`` section in ``values`` against its field: ``fail(key, want)`` on the first that does not fit."""
    for f in fields(cls):
        key, value, want = f"{prefix}{f.name}", values[f.name], f.metadata.get("want")
        kind = next((a for a in (f.type, *typing.get_args(f.type)) if is_dataclass(a)), None)
        if kind is not None:
            if value is None and f.type is not kind:
                continue  # an optional section: weights: null
            if not isinstance(value, dict):
                fail(key, want)
            check_section(fail, kind, value, f"{key}.")
            continue
        each, check = f.metadata.get("each"), f.metadata.get("check")
        if each:  # the list itself first, then each entry with its own message
            if value is None and fits(None, f.type):
                continue
            if not isinstance(value, list) or (check and not check(value)):
                fail(key, want)
            entry = next(typing.get_args(a)[0] for a in (f.type, *typing.get_args(f.type)) if typing.get_origin(a) is list)
            for i, item in enumerate(value):
                if not fits(item, entry):
                    fail(f"{key}.{i}", each)
        elif not fits(value, f.type) or (value is not None and check and not check(value)):
            fail(key, want)


#: The keys that hold paths; so do the ``.py`` entries of ``plugins:`` and, in ``dataset:``, every
#: key named root or path or ending in _path (``dataset_path_key``). See load_config.
PATH_KEYS = (("weights", "path"),)


def dataset_path_key(key) -> bool:
    """Is this ``dataset:`` key a path? ``root``, ``path``, ``test_path``, ...: a dataset's parameters follow this rule."""
    return isinstance(key, str) and (key in ("root", "path") or key.endswith("_path"))
