"""The ``csv`` dataset: a table with a header line, one column of labels, and feature columns of numbers or words."""

import numpy as np

from framework import FwError, hookimpl
from framework.data.table import canonical_label, label_classes, read_csv_file

from .own_data import OwnDataset, stratified_split
from .preparation import CATEGORICAL, IGNORE, NUMERIC, TablePreparation, fit


class CSVDataset(OwnDataset):
    """Rows of numbers and words with a label column. The label's distinct values, sorted, are the
    classes (numerically when they are whole numbers). Each feature column is numeric or categorical
    (judged from the training part; ``columns: {year: categorical}`` decides, ``{id: ignore}`` leaves a
    column out); blanks are filled by ``fill`` (numbers: the training median; words: a category of
    their own). The preparation (``plugins.preparation``) is fitted on the train part and saved with
    the weights; ``normalize`` standardises the numeric columns with its mean and std."""

    name = "csv"
    pixels = False
    preparation_class = TablePreparation  # fw import-onnx reads an exported table's preparation back through it

    def __init__(
        self, path=None, label=None, features=None, test_fraction=0.2, test_path=None, seed=0, columns=None, fill=None
    ):
        self._common(path, test_fraction, seed, "the CSV file to read, e.g. data/wine.csv")
        if not isinstance(label, str) or not label:
            raise FwError(
                "dataset.label: dataset 'csv' needs the name of its label column (from the CSV's header line)"
            )
        if features is not None and not (
            isinstance(features, list | tuple) and features and all(isinstance(f, str) for f in features)
        ):
            raise FwError(
                "dataset.features must be null (every column but the label) "
                f"or a list of column names, got {features!r}"
            )
        if features is not None and label in features:
            raise FwError(
                f"dataset.features lists '{label}', the label column; a network cannot take its answer as input"
            )
        kinds = (NUMERIC, CATEGORICAL, IGNORE)
        if columns is not None and not (isinstance(columns, dict) and all(v in kinds for v in columns.values())):
            raise FwError(
                f"dataset.columns must map column names to {', '.join(kinds)}, "
                f"e.g. {{year: categorical}}; got {columns!r}"
            )
        if columns and label in columns:
            raise FwError(f"dataset.columns names '{label}', the label column; its classes are read as they are")
        if fill is not None and not isinstance(fill, dict):
            raise FwError(
                "dataset.fill must map numeric, categorical or a column name "
                f"to how blanks are filled, e.g. {{numeric: mean}}; got {fill!r}"
            )
        self.label, self.features = label, list(features) if features is not None else None
        self.columns, self.fill = dict(columns or {}), dict(fill or {})
        self.test_path = None if test_path is None else test_path
        self.preparation = None

    def _read(self):
        table = read_csv_file(self.path, "dataset.path: CSV file")
        labels = table.strings(self.label, "dataset.label")
        names = self.features or [h for h in table.header if h != self.label]
        if self._info is None:
            if not names:
                raise FwError(f"{self.path}: has no column besides the label '{self.label}' to learn from")
            self._info = {"class_names": label_classes(labels), "features": names, "shape": [len(names)]}
        for name in self.features or ():
            table.index(name, "dataset.features")
        for name in self.columns:
            table.index(name, "dataset.columns")
        for name in self.fill:
            if name not in (NUMERIC, CATEGORICAL):
                table.index(name, "dataset.fill")
        numeric = all(n.lstrip("+-").isdigit() for n in self._info["class_names"])
        y = self.label_indices([canonical_label(v, numeric) for v in labels], self.path)
        if self.test_path is None:
            train, test = stratified_split(y, self.test_fraction, self.seed)
        else:
            train, test = np.arange(len(y)), None
        if self.preparation is None:
            self.preparation = fit(table, names, train, types=self.columns, fills=self.fill)
            self._info.update(features=self.preparation.features, shape=[self.preparation.width])
        x = self.preparation.encode(table)
        if test is not None:
            return {"train": (x[train], y[train]), "test": (x[test], y[test])}
        test_table = read_csv_file(self.test_path, "dataset.test_path: CSV file")
        test_labels = [canonical_label(v, numeric) for v in test_table.strings(self.label, "dataset.label")]
        return {
            "train": (x, y),
            "test": (self.preparation.encode(test_table), self.label_indices(test_labels, self.test_path)),
        }

    def _prepared(self):
        """The fitted preparation: restored from beside the weights, else fitted on the train part now."""
        if self.preparation is None:
            self.load_raw("train")
        return self.preparation

    def prepare(self, raw, *, normalize=True, flatten=True):
        """Cells as numbers (``TablePreparation.encode``) -> the network's float32 input."""
        return self._prepared().apply(raw, normalize)

    def standardization(self):
        prep = self._prepared()
        return prep._mean, prep._std

    def preparation_layer(self, normalize=True):
        """The preparation as a layer of its own, for ``fw export`` to put first in the graph."""
        return TablePreparation(self._prepared().columns, bool(normalize))

    def preparation_summary(self) -> str:
        return self._prepared().summary()

    def state(self):
        state = super().state()
        prep = self._prepared()
        state["features"], state["columns"] = prep.features, prep.state()
        if prep.numeric_only:  # what a .dataset.json held before column types, for older readers
            state["mean"], state["std"] = prep._mean.tolist(), prep._std.tolist()
        else:
            state.pop("mean", None), state.pop("std", None)
        return state

    def restore(self, state):
        super().restore(state)
        saved = state.get("features")
        if self.features is not None and saved is not None and list(saved) != self.features:
            raise FwError(
                f"dataset.features lists {', '.join(self.features)}, but the weights were trained on "
                f"{', '.join(saved)}; set dataset.features to those, in that order, or null"
            )
        if "columns" in state:
            self.preparation = TablePreparation.from_state(state["columns"])
            if self.preparation.features != list(saved or ()) or [self.preparation.width] != list(state["shape"]):
                raise ValueError(
                    f"columns make {self.preparation.width} inputs of {', '.join(self.preparation.features)[:80]}, "
                    f"but features and shape say {state['shape']} of {', '.join(saved or ())[:80]}"
                )
        elif saved is not None:  # a .dataset.json from before column types: numbers only
            size = len(saved)
            self.preparation = TablePreparation.from_statistics(
                saved,
                state.get("mean", [0.0] * size),
                state.get("std", [1.0] * size),
                fill="mean" if "mean" in state else None,
            )

    def examples_from_table(self, table):
        """New rows for ``fw predict``: the feature columns by name, in any order, raw (words and blanks);
        other columns are ignored."""
        features = self._prepared().features
        missing = [f for f in features if f not in table.positions]
        if missing:
            raise FwError(
                f"{table.source}: has no column '{missing[0]}'; the network takes the columns "
                f"{', '.join(features)} (in any order; the label column '{self.label}' may be left out)"
            )
        return self.preparation.encode(table)

    def table_notes(self, table, raw) -> list:
        """Per row of ``examples_from_table``'s result,
        a note for ``fw predict`` (unseen category, far-out value) or None."""
        return self._prepared().notes(table, raw)


@hookimpl
def register_datasets(register):
    register(CSVDataset)
