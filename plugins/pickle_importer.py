"""Weights from a pickled dict of arrays, like the book's ``sample_weight.pkl``."""

from pathlib import Path

from framework import FwError, WeightImporter, hookimpl


class PickleImporter(WeightImporter):
    """Reads the pickle with ``framework.safe_pickle``, so no code in it runs."""

    name = "pickle"

    def load(self, path) -> dict:
        import numpy as np

        from framework import safe_pickle  # numpy loads on first use, not at plugin registration

        path = Path(path)
        if not path.is_file():
            raise FwError(
                f"{path}: weights file not found; set weights.path to a local copy "
                "(e.g. the book's sample_weight.pkl) or weights.url to download it"
            )
        with open(path, "rb") as f:
            head = f.read(6)
        if head.startswith(b"PK\x03\x04") or head == b"\x93NUMPY":  # a zip (.npz) or a .npy
            raise FwError(f"{path}: is a numpy .npz/.npy file, not a pickle; set weights.importer=npz")
        arrays = safe_pickle.load(path)
        if not isinstance(arrays, dict):
            raise FwError(
                f"{path}: expected a pickled dict of named arrays (W1, b1, ...), got {type(arrays).__name__}"
            )
        for key, value in arrays.items():
            if not isinstance(key, str) or not isinstance(value, np.ndarray):
                raise FwError(
                    f"{path}: expected a dict of name -> numpy array, but key {key!r:.40} "
                    f"holds {type(value).__name__}; save the weights as {{'W1': array, 'b1': array, ...}}"
                )
        return arrays


@hookimpl
def register_weight_importers(register):
    register(PickleImporter)
