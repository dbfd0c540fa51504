"""The Dataset base class that dataset plugins subclass."""

import os
from pathlib import Path
from typing import ClassVar

from ..errors import FwError


def default_data_dir() -> Path:
    """``$FW_DATA_DIR``, else ``~/.cache/fw``: where datasets and weights live.

    A relative ``FW_DATA_DIR`` is taken from the current folder, once: the path
    returned is absolute, so a later ``chdir`` does not move the data.
    """
    env = os.environ.get("FW_DATA_DIR")
    return Path(os.path.abspath(Path(env).expanduser())) if env else Path.home() / ".cache" / "fw"


class Dataset:
    """A labelled image dataset with named splits.

    Subclasses set ``name``, ``splits``, ``num_classes`` (and ``class_names``
    when the labels have names) and implement ``load_raw(split)``. The base
    class applies the book's ``load_mnist`` options on top of it, so every
    dataset honours ``normalize``, ``flatten`` and ``one_hot_label`` the same
    way.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    num_classes: ClassVar[int]
    class_names: ClassVar[tuple[str, ...] | None] = None
    #: Folder under the data dir when ``dataset.root`` is not given.
    folder: ClassVar[str | None] = None
    #: One example's shape as ``load_raw`` gives it, e.g. (28, 28) or (3, 32, 32). Optional:
    #: it lets fw build a network without reading the data first.
    shape: ClassVar[tuple[int, ...] | None] = None

    def __init__(self, root=None):
        self.root = Path(root).expanduser() if root else default_data_dir() / (self.folder or self.name)

    def load_raw(self, split: str):
        """Return ``(images, labels)`` for one split.

        ``images`` is uint8 of shape (N, H, W) or (N, C, H, W) with values
        0..255; ``labels`` is an integer array of shape (N,). Read only what
        this split needs.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement load_raw(split)")

    def load(self, split="test", *, normalize=True, flatten=True, one_hot_label=False):
        """Return ``(x, t)`` with the book's ``load_mnist`` options.

        - normalize: float32 in [0, 1]; otherwise the raw 0..255 as float32.
        - flatten: (N, C*H*W); otherwise (N, C, H, W) (C=1 for grey images).
        - one_hot_label: (N, num_classes) float32; otherwise int64 labels.
        """
        import numpy as np

        images, labels = self.load_images(split)
        n = len(images)
        x = images.reshape(n, -1) if flatten else images.reshape(n, -1, *images.shape[-2:])
        x = x.astype(np.float32)
        if normalize:
            x /= np.float32(255)  # the book divides; keep its exact float32 values
        t = labels.astype(np.int64)
        if one_hot_label:
            t = np.eye(self.num_classes, dtype=np.float32)[t]
        return x, t

    def load_images(self, split: str):
        """``load_raw(split)`` for a split the dataset has (an unknown one is a one-line error)."""
        if split not in self.splits:
            raise FwError(
                f"dataset '{self.name}' has no split '{split}' (dataset.split); "
                f"choose one of: {', '.join(self.splits)}"
            )
        return self.load_raw(split)

    def class_name(self, label: int) -> str:
        return self.class_names[label] if self.class_names else str(label)


def make_dataset(cfg, registry):
    """The config's dataset plugin, for its folder (``dataset.root``).

    A folder the config names must exist: neither fw's own copy nor a download
    may stand in for a mistyped path.
    """
    root = cfg.dataset.root
    if root is not None and not Path(root).expanduser().exists():
        raise FwError(
            f"dataset.root {root} does not exist; check the path, create the folder to download "
            f"'{cfg.dataset.name}' into it, or drop dataset.root to use fw's own folder"
        )
    return registry.get("datasets", cfg.dataset.name, "dataset.name")(root)


def load_split(cfg, split, registry):
    """``(x, t)`` for one split of the config's dataset, with its ``load_mnist`` options."""
    d = cfg.dataset
    return make_dataset(cfg, registry).load(split, normalize=d.normalize, flatten=d.flatten, one_hot_label=d.one_hot_label)
