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
from typing import Any

from ..core.callback import METRICS
from ..core.params import Named, fits
from ..core.schedules import SCHEDULES
from .sweep import PRUNERS, SAMPLERS


def setting(default, want, check=None, each=None, *, doc):
    """A config key: its ``default``, what its value must be (``want``, for the error line), a ``check``
    of the value beyond its type, for a list what ``each`` entry must be, and what the key does
    (``doc``, for the config reference, docs/reference/config.md)."""
    made = (
        {"default_factory": lambda: copy.deepcopy(default)}
        if isinstance(default, (list, dict))
        else {"default": default}
    )
    return field(metadata={"want": want, "check": check, "each": each, "doc": doc}, **made)


def section(cls, want, *, doc):
    """A section of the config (``dataset:``), holding the keys of ``cls``."""
    return field(default_factory=cls, metadata={"want": want, "doc": doc})


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

    name: str = setting("mnist", "a string", doc="the dataset to read: a registered name (fw plugins lists them)")
    split: str = setting("test", "a string", doc="the split fw run classifies and fw show draws (train, test, ...)")
    normalize: bool = setting(
        True, "true or false", doc="the dataset's own normalisation: /255 for images, standardisation for tables"
    )
    flatten: bool = setting(
        True,
        "true or false",
        doc="each example as one row of numbers (false: images keep their channels, height and width)",
    )
    one_hot_label: bool = setting(False, "true or false", doc="labels as one-hot rows instead of class numbers")
    limit: int | None = setting(
        None,
        "a positive whole number (the first N examples, shuffled) or null",
        lambda v: v > 0,
        doc="use only the first N examples of the split, after a seeded shuffle "
        "(fw train: of its train split; it tests on the whole test split); null: all",
    )


@keys
class ModelKeys:
    layers: list[Named] | None = setting(
        None,
        "a list of layers, e.g. [{name: dense, units: 10}, softmax]",
        lambda v: len(v) > 0,
        each="a layer name such as relu, or a mapping like {name: dense, units: 100}",
        doc="the network: a list of layers, each a name (relu) or a mapping ({name: dense, units: 100})",
    )
    sizes: list[int] | None = setting(
        None,
        "a list of at least two positive whole numbers, e.g. [784,50,100,10]",
        lambda v: len(v) >= 2 and min(v) > 0,
        doc="instead of layers, the shorthand: dense layers of these sizes, model.activation between them and "
        "model.output_activation last; with neither, the book's [784, 50, 100, 10]",
    )
    activation: Named | None = setting(
        None,
        "an activation name, or a mapping like {name: leaky_relu, alpha: 0.01}",
        doc="the shorthand's activation between dense layers; null: sigmoid",
    )
    output_activation: Named | None = setting(
        None,
        "an activation name, or a mapping like {name: leaky_relu, alpha: 0.01}",
        doc="the shorthand's last layer; null: softmax",
    )
    seed: int = setting(
        0, "a whole number, 0 or more", lambda v: v >= 0, doc="seeds the random initialisation when weights is null"
    )
    init: Named | None = setting(
        None,
        "null, an initialiser name (he, xavier, normal) or a mapping like {name: normal, std: 0.01}",
        doc="how every layer's weights are drawn, unless a layer names its own init; "
        "null: the first activation's own (he for relu, xavier for sigmoid)",
    )


@keys
class WeightsKeys:
    """weights: null means a seeded random initialisation. Nothing here defaults to the book's
    file: a config that names its own weights must not inherit the book's url."""

    importer: str = setting(
        "pickle",
        "an importer name such as pickle",
        doc="the weight importer that reads the file (pickle, npz, safetensors, ...)",
    )
    path: str | None = setting(
        None,
        "a string or null",
        doc="the weights file, read by fw run and written by fw train; "
        "null: downloaded from url into $FW_DATA_DIR/weights/",
    )
    url: str | None = setting(
        None, "a string or null", doc="where to download the weights from when the file is missing"
    )
    sha256: Any | None = setting(
        None, "64 hex digits or null", doc="the file's checksum, checked whether downloaded or already there"
    )
    format: str | None = setting(
        None,
        "a weight writer's name (fw plugins lists them: npz, pickle, ...) or null",
        doc="the format fw train writes: a weight writer's name (npz, pickle, ...); null: the importer's",
    )


@keys
class TrainKeys:
    epochs: int = setting(10, "a positive whole number", lambda v: v > 0, doc="passes over the train split")
    batch_size: int = setting(100, "a positive whole number", lambda v: v > 0, doc="examples per training step")
    seed: int = setting(
        0, "a whole number, 0 or more", lambda v: v >= 0, doc="seeds the initial weights and the shuffling"
    )
    optimizer: dict = setting(
        {"name": "adam"},
        "an optimizer name or a mapping like {name: adam, lr: 0.001}",
        lambda v: isinstance(v.get("name"), str),
        doc="the optimizer and its parameters, e.g. {name: adam, lr: 0.001} (optimizer: sgd is read as {name: sgd})",
    )
    loss: Named = setting("cross_entropy", "a loss name such as cross_entropy", doc="the loss to minimise")
    lr_schedule: str = setting(
        "flat_cosine",
        one_of(SCHEDULES),
        lambda v: v in SCHEDULES,
        doc="constant; cosine (decay to 0 over the run); flat_cosine (constant, then cosine over the last 25%)",
    )
    validation_fraction: float = setting(
        0,
        "a number from 0 (no validation split) to below 1, e.g. 0.1",
        lambda v: 0 <= v < 1,
        doc="hold out this part of the train split (stratified, seeded) and report val_loss and val_accuracy",
    )
    callbacks: list[Named] = setting(
        [],
        "a list of callbacks, e.g. [{name: early_stopping, patience: 3}]",
        each="a callback name such as csv_logger, or a mapping like {name: early_stopping, patience: 3}",
        doc="run after every epoch, e.g. [{name: early_stopping, monitor: val_accuracy, patience: 3}]",
    )


@keys
class SweepKeys:
    """fw sweep's search (config/sweep.py reads params); fw run and fw train ignore it."""

    metric: str = setting(
        "val_accuracy",
        f"a per-epoch metric: {', '.join(METRICS)}",
        lambda v: v in METRICS,
        doc="the per-epoch metric to optimise; *accuracy is maximised, *loss minimised",
    )
    trials: int = setting(20, "a positive whole number", lambda v: v > 0, doc="how many trainings to run")
    sampler: str = setting(
        "tpe", one_of(SAMPLERS), lambda v: v in SAMPLERS, doc="how the next trial is chosen, seeded from train.seed"
    )
    pruner: str | None = setting(
        "median", one_of(PRUNERS), lambda v: v in PRUNERS, doc="what stops an unpromising trial early"
    )
    params: dict = setting(
        {},
        "a mapping of config keys to ranges or lists",
        doc="the keys to search: KEY: {low: ..., high: ..., log: true} or KEY: [choice, ...]",
    )


@keys
class Config:
    dataset: DatasetKeys = section(
        DatasetKeys,
        "a mapping with name, split, ...",
        doc="the data: which dataset, which split, and how it is prepared",
    )
    model: ModelKeys = section(
        ModelKeys,
        "a mapping with layers (or sizes, activation, output_activation)",
        doc="the network's layers and their initialisation",
    )
    weights: WeightsKeys | None = section(
        WeightsKeys,
        "a mapping with importer and path, or null for a random initialisation",
        doc="the trained weights' file; null: a seeded random initialisation",
    )
    train: TrainKeys = section(
        TrainKeys, "a mapping with epochs, batch_size, optimizer, loss, ...", doc="fw train's settings"
    )
    sweep: SweepKeys = section(
        SweepKeys, "a mapping with metric, trials, sampler, pruner and params", doc="fw sweep's search"
    )
    batch_size: int = setting(
        100,
        "a positive whole number, e.g. batch_size=100",
        lambda v: v > 0,
        doc="fw run's rows classified at a time (it changes no result)",
    )
    plugins: list[str] = setting(
        [], "a list of module names or .py paths", doc="more plugins to load for this config: module names or .py paths"
    )


#: Every key with its default, as plain data: what a config is merged over.
SCHEMA = asdict(Config())

#: The keys every dataset has; any other ``dataset:`` key is a parameter of the dataset class's ``__init__``.
DATASET_KEYS = tuple(SCHEMA["dataset"])


def check_section(fail, cls, values, prefix=""):
    """Every key of the ``cls`` section in ``values`` against its field:
    ``fail(key, want)`` on the first that does not fit."""
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
            entry = next(
                typing.get_args(a)[0] for a in (f.type, *typing.get_args(f.type)) if typing.get_origin(a) is list
            )
            for i, item in enumerate(value):
                if not fits(item, entry):
                    fail(f"{key}.{i}", each)
        elif not fits(value, f.type) or (value is not None and check and not check(value)):
            fail(key, want)


#: The keys that hold paths; so do the ``.py`` entries of ``plugins:`` and, in ``dataset:``, every
#: key named root or path or ending in _path (``dataset_path_key``). See load_config.
PATH_KEYS = (("weights", "path"),)


def dataset_path_key(key) -> bool:
    """Is this ``dataset:`` key a path? ``root``, ``path``,
    ``test_path``, ...: a dataset's parameters follow this rule."""
    return isinstance(key, str) and (key in ("root", "path") or key.endswith("_path"))
