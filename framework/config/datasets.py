"""A config's ``dataset:`` section into a dataset plugin instance, and the arrays of one of its splits."""

from pathlib import Path

from ..errors import FwError
from .instantiate import instantiate, parameters
from .schema import DATASET_KEYS


def make_dataset(cfg, registry, *, trained=None, check_root=True):
    """The config's dataset plugin, made with its own ``dataset:`` parameters (the keys besides ``DATASET_KEYS``).

    ``trained`` (default: when the config names weights): a network trained on
    it is about to be used, so what its training derived from the data is
    taken from beside ``weights.path`` when ``fw train`` saved it there.
    ``check_root``: a ``dataset.root`` that does not exist is an error (fw
    config, which reads no data, leaves that to the commands that do).

    A null value for a key the dataset does not take is dropped: null means
    "the default", and a config switched to another dataset by an override
    still holds the first one's ``root: null``.
    """
    from omegaconf import OmegaConf

    d = cfg.dataset
    cls = registry.get("datasets", d.name, "dataset.name")
    given = OmegaConf.to_container(d) if OmegaConf.is_config(d) else dict(d)
    accepted = parameters(cls)
    params = {k: v for k, v in given.items() if k not in DATASET_KEYS and (k in accepted or v is not None)}
    root = params.get("root")
    if check_root and root is not None and "root" in accepted and not Path(root).expanduser().exists():
        # no copy of fw's, and no download, may stand in for a mistyped folder
        raise FwError(
            f"dataset.root {root} does not exist; check the path, create the folder to download "
            f"'{d.name}' into it, or drop dataset.root to use fw's own folder"
        )
    dataset = instantiate(cls, cls.name, params, "dataset", "dataset", section_keys=DATASET_KEYS)
    if trained is None:
        trained = cfg.weights is not None
    if trained and cfg.weights is not None and cfg.weights.path:
        from ..data.trained import restore_state

        restore_state(dataset, cfg.weights.path, d.name)
    return dataset


def load_split(cfg, split, registry, dataset=None, *, limit=True):
    """``(x, t)`` for one split of the config's dataset, with its ``load_mnist`` options and (unless
    ``limit=False``) ``dataset.limit``. ``dataset``: an instance already made for ``cfg``."""
    d = cfg.dataset
    dataset = make_dataset(cfg, registry) if dataset is None else dataset
    return dataset.load(
        split, normalize=d.normalize, flatten=d.flatten, one_hot_label=d.one_hot_label, limit=d.limit if limit else None
    )
