"""The ``csv`` dataset: a table with a header line, one column of labels and numeric feature columns."""

from framework import FwError, hookimpl
from framework.data.table import canonical_label, label_classes, read_csv_file

from .own_data import OwnDataset, split_parts


class CSVDataset(OwnDataset):
    """Rows of numbers with a label column. The label's distinct values, sorted, are the classes
    (numerically when they are whole numbers); ``normalize`` standardises each feature with the
    mean and standard deviation of the train part."""

    name = "csv"
    pixels = False

    def __init__(self, path=None, label=None, features=None, test_fraction=0.2, test_path=None, seed=0):
        self._common(path, test_fraction, seed, "the CSV file to read, e.g. data/wine.csv")
        if not isinstance(label, str) or not label:
            raise FwError("dataset.label: dataset 'csv' needs the name of its label column (from the CSV's header line)")
        if features is not None and not (
            isinstance(features, list | tuple) and features and all(isinstance(f, str) for f in features)
        ):
            raise FwError(f"dataset.features must be null (every column but the label) or a list of column names, got {features!r}")
        if features is not None and label in features:
            raise FwError(f"dataset.features lists '{label}', the label column; a network cannot take its answer as input")
        self.label, self.features = label, list(features) if features is not None else None
        self.test_path = None if test_path is None else test_path

    def _read(self):
        table = read_csv_file(self.path, "dataset.path: CSV file")
        labels = table.strings(self.label, "dataset.label")
        if self._info is None:
            names = self.features or [h for h in table.header if h != self.label]
            if not names:
                raise FwError(f"{self.path}: has no column besides the label '{self.label}' to learn from")
            self._info = {"class_names": label_classes(labels), "features": names, "shape": [len(names)]}
        for name in self.features or ():
            table.index(name, "dataset.features")
        numeric = all(n.lstrip("+-").isdigit() for n in self._info["class_names"])
        x = table.numbers(self._info["features"])
        y = self.label_indices([canonical_label(v, numeric) for v in labels], self.path)
        if self.test_path is None:
            return split_parts(x, y, self.test_fraction, self.seed)
        test = read_csv_file(self.test_path, "dataset.test_path: CSV file")
        test_labels = [canonical_label(v, numeric) for v in test.strings(self.label, "dataset.label")]
        return {"train": (x, y), "test": (test.numbers(self._info["features"]), self.label_indices(test_labels, self.test_path))}

    def restore(self, state):
        super().restore(state)
        saved = state.get("features")
        if self.features is not None and saved is not None and list(saved) != self.features:
            raise FwError(
                f"dataset.features lists {', '.join(self.features)}, but the weights were trained on "
                f"{', '.join(saved)}; set dataset.features to those, in that order, or null"
            )

    def examples_from_table(self, table):
        """New rows for ``fw predict``: the feature columns by name, in any order; other columns are ignored."""
        features = self.feature_names
        missing = [f for f in features if f not in table.positions]
        if missing:
            raise FwError(
                f"{table.source}: has no column '{missing[0]}'; the network takes the columns "
                f"{', '.join(features)} (in any order; the label column '{self.label}' may be left out)"
            )
        return table.numbers(features)


@hookimpl
def register_datasets(register):
    register(CSVDataset)

