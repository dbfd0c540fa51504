"""What the ``csv``, ``image_folder`` and ``arrays`` datasets share: a path, a seeded stratified
hold-out (``test_fraction``, ``seed``), and class names learnt from the data or restored from
beside the weights."""

import numbers
from pathlib import Path

import numpy as np

from framework import Dataset, FwError


class OwnDataset(Dataset):
    """A dataset read from the user's files. Subclasses implement ``_read()``, returning
    ``{"train": (x, labels), "test": (x, labels)}``, and set ``self._info`` (class_names, shape,
    and for tables features) from the data unless ``restore`` put it there first."""

    splits = ("train", "test")

    def _common(self, path, test_fraction, seed, what):
        if not isinstance(path, str | Path) or not str(path):
            raise FwError(f"dataset.path: dataset '{self.name}' needs a path: {what}")
        if not isinstance(test_fraction, numbers.Real) or isinstance(test_fraction, bool) or not 0 <= test_fraction < 1:
            raise FwError(
                f"dataset.test_fraction must be a number from 0 up to (not including) 1, got {test_fraction!r}"
            )
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise FwError(f"dataset.seed must be a whole number, 0 or more, got {seed!r}")
        self.path, self.test_fraction, self.seed = Path(path).expanduser(), float(test_fraction), seed
        self._info, self._parts = None, None

    def load_raw(self, split):
        if self._parts is None:
            self._parts = self._read()
        return self._parts[split]

    # Known from the data, or from the state saved with trained weights.
    @property
    def class_names(self):
        return tuple(self._known()["class_names"])

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def shape(self):
        return tuple(self._known()["shape"])

    @property
    def feature_names(self):
        names = self._known().get("features")
        return tuple(names) if names is not None else None

    def _known(self):
        if self._info is None:
            self._describe()
        return self._info

    def _describe(self):
        """Fill ``self._info``; by default by reading the data."""
        self.load_raw("train")

    def restore(self, state):
        self._info = {key: state[key] for key in ("class_names", "shape", "features") if key in state}
        self.pixels = state.get("pixels", self.pixels)
        if "mean" in state:
            self._standardization = (np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64))

    def label_indices(self, labels, where):
        """Class names -> label numbers, by the known class names (learnt, or restored from training)."""
        index = {name: i for i, name in enumerate(self._info["class_names"])}
        unknown = [label for label in dict.fromkeys(labels) if label not in index]
        if unknown:
            raise FwError(
                f"{where}: class '{unknown[0]}' is not one of the {len(index)} the network was trained on "
                f"({', '.join(list(index)[:20])}); train again with it, or leave those examples out"
            )
        return np.fromiter((index[label] for label in labels), np.int64, len(labels))


def stratified_split(labels, fraction, seed):
    """``(train, test)`` index arrays: about ``fraction`` of each class held out, chosen by ``seed``,
    each part in the data's own order. Every class keeps at least one training example."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = min(int(round(len(members) * fraction)), len(members) - 1)
        test.append(rng.permutation(members)[:k])
    held = np.zeros(len(labels), bool)
    held[np.concatenate(test) if test else []] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def split_parts(x, labels, fraction, seed):
    train, test = stratified_split(labels, fraction, seed)
    return {"train": (x[train], labels[train]), "test": (x[test], labels[test])}
