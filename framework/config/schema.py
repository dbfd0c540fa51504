"""Every valid config key with its default.

Merged in omegaconf's struct mode, so a typo is an error naming the full key
path and the closest valid key instead of a setting that silently does nothing.
"""

SCHEMA = {
    # The keys every dataset has. Any other key is the dataset's own parameter (mnist: root;
    # csv: path, label, ...), checked against its class's __init__ once the dataset is known.
    "dataset": {
        "name": "mnist",
        "split": "test",
        "normalize": True,  # the dataset's own normalisation: /255 for images, standardisation for tables
        "flatten": True,
        "one_hot_label": False,
        "limit": None,  # N: the first N examples of the split, after a seeded shuffle
    },
    "model": {
        # The network: a list of layers, each a name (relu) or a mapping ({name: dense, units: 100}).
        "layers": None,
        # Or the shorthand model.sizes: dense layers of these sizes, model.activation between
        # them and model.output_activation last. With neither, the book's [784, 50, 100, 10].
        "sizes": None,
        "activation": None,  # null: sigmoid; a name, or {name: ..., <parameter>: ...}
        "output_activation": None,  # null: softmax
        "seed": 0,  # for the random initialisation when weights is null
        "init": None,  # null: the activation's own (he for relu, xavier for sigmoid); or {name: normal, std: 0.01}
    },
    # weights: null means a seeded random initialisation. Nothing here defaults to the
    # book's file: a config that names its own weights must not inherit the book's url.
    "weights": {
        "importer": "pickle",
        "path": None,  # null: downloaded from url into $FW_DATA_DIR/weights/ (or ~/.cache/fw/weights/)
        "url": None,
        "sha256": None,  # checked against the file, downloaded or already there
        "format": None,  # what fw train writes: a weight writer's name (npz, pickle, ...); null: the importer's
    },
    "train": {
        "epochs": 10,
        "batch_size": 100,
        "seed": 0,  # initial weights and shuffling
        "optimizer": {"name": "adam"},  # plus its parameters, e.g. lr: 0.001
        "loss": "cross_entropy",
        "lr_schedule": "flat_cosine",  # constant; cosine (decay to 0 over the run); flat_cosine (the last 25%)
        "validation_fraction": 0,  # hold out this part of the train split (stratified, seeded): val_loss, val_accuracy
        "callbacks": [],  # e.g. [{name: early_stopping, monitor: val_accuracy, patience: 3}]
    },
    # fw sweep: the search (config/sweep.py checks it); fw run and fw train ignore it.
    "sweep": {
        "metric": "val_accuracy",  # any per-epoch metric; *accuracy is maximised, *loss minimised
        "trials": 20,
        "sampler": "tpe",  # tpe, random or grid, seeded from train.seed
        "pruner": "median",  # median or none
        "params": {},  # KEY: {low: ..., high: ..., log: true} or KEY: [choice, ...]
    },
    "batch_size": 100,
    "plugins": [],
}


#: The keys every dataset has; any other ``dataset:`` key is a parameter of the dataset class's ``__init__``.
DATASET_KEYS = tuple(SCHEMA["dataset"])

#: The keys that hold paths; so do the ``.py`` entries of ``plugins:`` and, in ``dataset:``, every
#: key named root or path or ending in _path (``dataset_path_key``). See load_config.
PATH_KEYS = (("weights", "path"),)


def dataset_path_key(key) -> bool:
    """Is this ``dataset:`` key a path? ``root``, ``path``, ``test_path``, ...: a dataset's parameters follow this rule."""
    return isinstance(key, str) and (key in ("root", "path") or key.endswith("_path"))
