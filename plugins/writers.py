"""The built-in weight writers: what ``weights.format`` names, for ``fw train``."""

from framework import WeightWriter, hookimpl


class NpzWriter(WeightWriter):
    """A numpy ``.npz`` archive of raw arrays: loading it never runs code (the ``npz`` importer)."""

    name = "npz"
    suffixes = (".npz",)

    def write(self, f, arrays):
        import numpy as np

        np.savez(f, **arrays)


class PickleWriter(WeightWriter):
    """A pickled dict of arrays, like the book's ``sample_weight.pkl`` (the ``pickle`` importer reads it safely)."""

    name = "pickle"
    suffixes = (".pkl", ".pickle")

    def write(self, f, arrays):
        import pickle

        pickle.dump(arrays, f, protocol=4)


@hookimpl
def register_weight_writers(register):
    register(NpzWriter)
    register(PickleWriter)
