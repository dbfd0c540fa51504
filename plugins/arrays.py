"""The ``arrays`` dataset: numpy arrays in an ``.npz`` (scikit-learn's ``fit(X, y)``, Keras's NumPy input)."""

import numpy as np

from framework import FwError, hookimpl
from framework.data.arrays_file import first_non_finite, load_arrays

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
            isinstance(classes, list | tuple)
            and len(classes) >= 2
            and all(isinstance(c, str) and c for c in classes)
            and len(set(classes)) == len(classes)
        ):
            raise FwError(
                f"dataset.classes must be null or a list of at least two different class names, got {classes!r}"
            )
        self.classes = list(classes) if classes is not None else None

    def _read(self):
        arrays = load_arrays(self.path)
        if "x" in arrays and "y" in arrays:
            self._train_x = "x"
            x, y = self._pair(arrays, "x", "y", _examples(arrays, "y"))
            self._learn(x, y)
            return split_parts(x, y, self.test_fraction, self.seed)
        if all(k in arrays for k in SPLIT_NAMES):
            self._train_x, examples = "x_train", _examples(arrays, "y_train", "y_test")
            parts = {split: self._pair(arrays, f"x_{split}", f"y_{split}", examples) for split in self.splits}
            if (
                parts["train"][0].shape[1:] != parts["test"][0].shape[1:]
                or parts["train"][0].dtype != parts["test"][0].dtype
            ):
                (a, _), (b, _) = parts["train"], parts["test"]
                raise FwError(
                    f"{self.path}: x_train is {a.shape[1:]} {a.dtype} per "
                    f"example but x_test {b.shape[1:]} {b.dtype}; they must match"
                )
            self._learn(*parts["train"], also=parts["test"][1])
            return parts
        held = ", ".join(sorted(arrays)) or "no arrays"
        raise FwError(
            f"{self.path}: holds {held}; the arrays dataset needs x and y, or x_train, y_train, x_test and y_test"
        )

    def _pair(self, arrays, xn, yn, examples):
        """``(x, labels)`` checked: shapes, no NaN or Inf,
        labels 0 to the classes' count - 1 (``examples`` in the file bound it)."""
        x, y = arrays[xn], arrays[yn]
        if x.ndim < 2 or x.dtype.kind not in "biuf" or 0 in x.shape[1:]:
            raise FwError(
                f"{self.path}: {xn} must be numbers of shape (N, features) "
                f"or (N, H, W) or (N, C, H, W), got {x.dtype} {x.shape}"
            )
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise FwError(f"{self.path}: {yn} must be whole-number labels of shape (N,), got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise FwError(
                f"{self.path}: {xn} has {len(x)} examples but {yn} has {len(y)} labels; they must be the same length"
            )
        if not len(y):
            raise FwError(f"{self.path}: {xn} and {yn} hold no examples; give each split at least one")
        if (bad := first_non_finite(x)) is not None:
            raise FwError(f"{self.path}: {_non_finite(x, xn, bad)}; fw cannot learn from it: correct or drop that row")
        if y.min() < 0:
            raise FwError(
                f"{self.path}: {yn} holds the label {y.min()}; labels run from 0 to the number of classes - 1"
            )
        top = int(y.max())  # a Python int: a uint64 label is not wrapped round to a negative one
        names = self._info["class_names"] if self._info is not None else self.classes
        if names is not None and top >= len(names):
            source = "dataset.classes" if self.classes else "the weights' classes"
            raise FwError(
                f"{self.path}: {yn} holds the label {top}, "
                f"but {source} names {len(names)} classes (labels 0 to {len(names) - 1})"
            )
        if names is None and top >= max(examples, 2):  # a class per label up to the largest: bounded by the examples
            raise FwError(
                f"{self.path}: {yn} holds the label {top}, "
                f"which would make {top + 1:,} classes for {examples:,} examples; "
                "labels number the classes 0, 1, 2, ..., so there cannot be more classes than examples"
            )
        return (x.astype(np.float64) if x.dtype.kind == "b" else x), y.astype(np.int64)

    def standardization(self):
        """The train part's statistics, which must be finite: values near float64's limit overflow them."""
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = super().standardization()
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            at = int(np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))[0])
            where = f"column {at}" if len(self.shape) == 1 else f"value {at} of each example (flattened)"
            raise FwError(
                f"{self.path}: the values of {where} of {getattr(self, '_train_x', 'x')} "
                "are too large to standardise (their mean or "
                "standard deviation overflows float64); scale them down"
            )
        return mean, std

    def _learn(self, x, y, also=None):
        """Class names and example shape from the data,
        unless training's were restored (``_pair`` checked the labels)."""
        top = max(int(y.max(initial=0)), int(also.max(initial=0)) if also is not None else 0)
        if self._info is None:
            names = self.classes or [str(i) for i in range(max(top + 1, 2))]
            self._info = {"class_names": names, "shape": list(x.shape[1:])}
        if list(x.shape[1:]) != list(self._info["shape"]):
            raise FwError(
                f"{self.path}: examples are {tuple(x.shape[1:])}, "
                f"but the network was trained on {tuple(self._info['shape'])}"
            )


def _examples(arrays, *label_names):
    return sum(len(arrays[n]) for n in label_names if arrays[n].ndim)


def _non_finite(x, name, bad):
    """``x[7, 2] (row 7, column 2) is NaN``, with float16's range when that is why a value became Inf."""
    row, at = bad
    index = np.unravel_index(at, x.shape[1:])
    value = x[(row, *index)]
    where = f"row {row}, column {at}" if x.ndim == 2 else f"row {row}"
    why = ""
    if np.isinf(value) and x.dtype == np.float16:
        why = (
            " (float16 holds numbers up to 65504: a larger one became "
            "Inf when the array was made float16; save it as float32)"
        )
    said = "NaN" if np.isnan(value) else "Inf" if value > 0 else "-Inf"
    return f"{name}[{', '.join(map(str, (row, *map(int, index))))}] ({where}) is {said}{why}"


@hookimpl
def register_datasets(register):
    register(Arrays)
