"""The ``arrays`` dataset: numpy arrays in an ``.npz`` (scikit-learn's ``fit(X, y)``, Keras's NumPy input)."""

import numpy as np

from framework import FwError, hookimpl
from framework.data.arrays_file import load_arrays

from .own_data import OwnDataset, split_parts

SPLIT_NAMES = ("x_train", "y_train", "x_test", "y_test")


class Arrays(OwnDataset):
    """``x`` and ``y`` (held out by ``test_fraction``), or ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    ``x`` is (N, ...) numbers: uint8 is pixels (``normalize`` divides by 255),
    anything else features (standardised with the train part's statistics).
    ``y`` holds whole-number labels 0..K-1, named by ``classes`` (default
    "0", "1", ...).
    """

    name = "arrays"

    def __init__(self, path=None, classes=None, test_fraction=0.2, seed=0):
        self._common(path, test_fraction, seed, "an .npz file holding x and y (or x_train, y_train, x_test, y_test)")
        if classes is not None and not (
            isinstance(classes, list | tuple) and len(classes) >= 2 and all(isinstance(c, str) and c for c in classes)
            and len(set(classes)) == len(classes)
        ):  # fmt: skip
            raise FwError(f"dataset.classes must be null or a list of at least two different class names, got {classes!r}")
        self.classes = list(classes) if classes is not None else None

    def _read(self):
        arrays = load_arrays(self.path)
        if "x" in arrays and "y" in arrays:
            x, y = self._pair(arrays, "x", "y")
            self._learn(x, y)
            return split_parts(x, y, self.test_fraction, self.seed)
        if all(k in arrays for k in SPLIT_NAMES):
            parts = {split: self._pair(arrays, f"x_{split}", f"y_{split}") for split in self.splits}
            if parts["train"][0].shape[1:] != parts["test"][0].shape[1:] or parts["train"][0].dtype != parts["test"][0].dtype:
                (a, _), (b, _) = parts["train"], parts["test"]
                raise FwError(f"{self.path}: x_train is {a.shape[1:]} {a.dtype} per example but x_test {b.shape[1:]} {b.dtype}; they must match")
            self._learn(*parts["train"], also=parts["test"][1])
            return parts
        held = ", ".join(sorted(arrays)) or "no arrays"
        raise FwError(f"{self.path}: holds {held}; the arrays dataset needs x and y, or x_train, y_train, x_test and y_test")

    def _pair(self, arrays, xn, yn):
        x, y = arrays[xn], arrays[yn]
        if x.ndim < 2 or x.dtype.kind not in "biuf":
            raise FwError(f"{self.path}: {xn} must be numbers of shape (N, features) or (N, H, W) or (N, C, H, W), got {x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise FwError(f"{self.path}: {yn} must be whole-number labels of shape (N,), got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise FwError(f"{self.path}: {xn} has {len(x)} examples but {yn} has {len(y)} labels; they must be the same length")
        if len(y) and y.min() < 0:
            raise FwError(f"{self.path}: {yn} holds the label {y.min()}; labels run from 0 to the number of classes - 1")
        return (x.astype(np.float64) if x.dtype.kind == "b" else x), y.astype(np.int64)

    def _learn(self, x, y, also=None):
        """Class names and example shape from the data, unless training's were restored; check the labels."""
        top = max(int(y.max(initial=0)), int(also.max(initial=0)) if also is not None else 0)
        if self._info is None:
            names = self.classes or [str(i) for i in range(max(top + 1, 2))]
            self._info = {"class_names": names, "shape": list(x.shape[1:])}
        if list(x.shape[1:]) != list(self._info["shape"]):
            raise FwError(f"{self.path}: examples are {tuple(x.shape[1:])}, but the network was trained on {tuple(self._info['shape'])}")
        names = self._info["class_names"]
        if top >= len(names):
            source = "dataset.classes" if self.classes else "the weights' classes"
            raise FwError(f"{self.path}: y holds the label {top}, but {source} names {len(names)} classes (labels 0 to {len(names) - 1})")


@hookimpl
def register_datasets(register):
    register(Arrays)
