"""The Dataset base class that dataset plugins subclass (config/datasets.py makes one from a config)."""

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
    """A labelled dataset with named splits: images, or a table of features.

    Subclasses set ``name``, ``splits``, ``num_classes`` (and ``class_names``
    when the labels have names), take their own parameters as keyword
    arguments of ``__init__`` (the ``dataset:`` keys besides the schema's own),
    and implement ``load_raw(split)``. The base class applies the book's
    ``load_mnist`` options on top of it, so every dataset honours
    ``normalize``, ``flatten``, ``one_hot_label`` and ``limit`` the same way,
    and ``prepare`` puts new inputs (``fw predict``) through the same steps.
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
    #: A table's column names, one per feature (None: images, or features without names).
    feature_names: ClassVar[tuple[str, ...] | None] = None
    #: Are the raw examples pixel values 0..255, which ``normalize`` divides by 255 (True), or
    #: features, which it standardises (False)? None: judged by the data, uint8 being pixels.
    pixels: ClassVar[bool | None] = None

    def __init__(self, root=None):
        self.root = Path(root).expanduser() if root else default_data_dir() / (self.folder or self.name)

    def load_raw(self, split: str):
        """Return ``(x, labels)`` for one split.

        ``x`` is uint8 images of shape (N, H, W) or (N, C, H, W) with values
        0..255, or a table of numbers of shape (N, F) (float features are
        standardised, never divided by 255); ``labels`` is an integer array of
        shape (N,). Read only what this split needs.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement load_raw(split)")

    def load(self, split="test", *, normalize=True, flatten=True, one_hot_label=False, limit=None):
        """Return ``(x, t)`` with the book's ``load_mnist`` options, and ``limit``.

        - normalize: the dataset's own normalisation (``prepare``).
        - flatten: (N, C*H*W); otherwise (N, C, H, W) (C=1 for grey images). A table stays (N, F).
        - one_hot_label: (N, num_classes) float32; otherwise int64 labels.
        - limit: the first ``limit`` examples after a seeded shuffle (``examples``).
        """
        import numpy as np

        raw, labels = self.examples(split, limit)
        x = self.prepare(raw, normalize=normalize, flatten=flatten)
        t = labels.astype(np.int64)
        if one_hot_label:
            t = np.eye(self.num_classes, dtype=np.float32)[t]
        return x, t

    def examples(self, split, limit=None):
        """``(raw, labels)`` of a split; with ``limit``, the first ``limit`` after a shuffle seeded by
        the dataset's ``seed`` (0 when it has none)."""
        import numpy as np

        raw, labels = self.load_images(split)
        if limit is not None and limit < len(raw):
            pick = np.random.default_rng(getattr(self, "seed", 0)).permutation(len(raw))[:limit]
            raw, labels = raw[pick], labels[pick]
        return raw, labels

    def prepare(self, raw, *, normalize=True, flatten=True):
        """Raw examples, as ``load_raw`` gives them, as the network's float32 input.

        Pixels (uint8, see ``pixels``) are divided by 255 (the book's exact
        float32 values); features are standardised per feature with the train
        split's mean and standard deviation (``standardization``).
        """
        import numpy as np

        n, example = len(raw), raw.shape[1:]
        flat = (n, int(np.prod(example)))
        shape = flat if flatten or raw.ndim <= 2 else (n, *example) if raw.ndim == 4 else (n, 1, *example)
        pixels = raw.dtype == np.uint8 if self.pixels is None else self.pixels
        if pixels:
            x = raw.reshape(shape).astype(np.float32)
            if normalize:
                x /= np.float32(255)  # the book divides; keep its exact float32 values
            return x
        x = raw.reshape(flat).astype(np.float64)
        if normalize:
            mean, std = self.standardization()
            if len(mean) != x.shape[1]:
                raise FwError(f"dataset '{self.name}': examples have {x.shape[1]} values, its statistics {len(mean)}")
            x = (x - mean) / std
        return x.astype(np.float32).reshape(shape)

    def standardization(self):
        """``(mean, std)`` per feature, float64, from the train split (or what ``restore`` put back).

        A constant feature gets std 1, so it becomes 0 rather than NaN.
        """
        import numpy as np

        if getattr(self, "_standardization", None) is None:
            split = "train" if "train" in self.splits else self.splits[0]
            raw, _ = self.load_images(split)
            x = raw.reshape(len(raw), -1).astype(np.float64)
            if not len(x):
                raise FwError(
                    f"dataset '{self.name}': the {split} split is empty, so it gives no statistics to normalise with"
                )
            std = x.std(axis=0)
            std[std < 1e-12] = 1.0
            self._standardization = (x.mean(axis=0), std)
        return self._standardization

    def takes_pixels(self) -> bool:
        """``pixels``, or when the class leaves it open, whether the train split is uint8."""
        import numpy as np

        if self.pixels is not None:
            return bool(self.pixels)
        raw, _ = self.load_images("train" if "train" in self.splits else self.splits[0])
        return raw.dtype == np.uint8

    def load_images(self, split: str):
        """``load_raw(split)`` for a split the dataset has (an unknown one is a one-line error)."""
        if split not in self.splits:
            raise FwError(
                f"dataset '{self.name}' has no split '{split}' (dataset.split); choose one of: {', '.join(self.splits)}"
            )
        return self.load_raw(split)

    def class_name(self, label: int) -> str:
        return self.class_names[label] if self.class_names else str(label)

    def example_shape(self) -> tuple:
        """One raw example's shape: ``shape`` when declared, else read from the test split's data."""
        if self.shape is not None:
            return tuple(self.shape)
        raw, _ = self.load_images("test" if "test" in self.splits else self.splits[0])
        return tuple(raw.shape[1:])

    # --- what a trained network keeps (data/trained.py saves it beside the weights) ---------

    def state(self) -> dict:
        """What training derived from the data, as JSON-ready values: everything ``fw predict`` needs
        to prepare a new input and name its class without the data. Subclasses may add keys."""
        state = {
            "class_names": [self.class_name(i) for i in range(self.num_classes)],
            "shape": list(self.example_shape()),
            "pixels": self.takes_pixels(),
        }
        if self.feature_names is not None:
            state["features"] = list(self.feature_names)
        if getattr(self, "_standardization", None) is not None:
            mean, std = self._standardization
            state["mean"], state["std"] = mean.tolist(), std.tolist()
        return state

    def restore(self, state: dict):
        """Take back what ``state()`` saved, so no data need be read to use a trained network."""
        import numpy as np

        self.class_names = tuple(state["class_names"])
        self.num_classes = len(self.class_names)
        self.shape = tuple(state["shape"])
        self.pixels = state.get("pixels", self.pixels)
        if "features" in state:
            self.feature_names = tuple(state["features"])
        if "mean" in state:
            self._standardization = (np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64))

    # --- new inputs for fw predict: a dataset that takes images or table rows says how --------

    def example_from_image(self, image):
        """One raw example (like a row of ``load_raw``'s x) from a PIL image; images datasets override it."""
        raise FwError(f"dataset '{self.name}' does not take images; give a .npy, .npz or .csv of its examples")

    def examples_from_table(self, table):
        """Raw examples from a ``data.table.Table`` of new rows; a table with named features overrides it."""
        raise FwError(
            f"{table.source}: dataset '{self.name}' has no named columns to read from a CSV; "
            "give a .npy or .npz of its examples"
        )
