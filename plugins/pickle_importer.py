"""Weights from a pickled dict of arrays, like the book's ``sample_weight.pkl``."""

from pathlib import Path

from framework import FwError, WeightImporter, hookimpl


class PickleImporter(WeightImporter):
    """Reads the pickle with ``framework.safeio.safe_pickle``, so no code in it runs.

    That also guarantees a dict of str names to numeric numpy arrays, read in
    time and memory bounded by the file's size.
    """

    name = "pickle"

    def load(self, path) -> dict:
        from framework.safeio import safe_pickle  # numpy loads on first use, not at plugin registration
        from framework.safeio.files import open_weights

        path = Path(path)
        try:
            with open_weights(path) as f:
                head = f.read(6)
        except FileNotFoundError:
            raise FwError(
                f"{path}: weights file not found; set weights.path to a local copy "
                "(e.g. the book's sample_weight.pkl) or weights.url to download it"
            ) from None
        except OSError as e:
            raise FwError(f"{path}: cannot read the weights file: {e.strerror or e}") from e
        if head.startswith(b"PK\x03\x04") or head == b"\x93NUMPY":  # a zip (.npz) or a .npy
            raise FwError(f"{path}: is a numpy .npz/.npy file, not a pickle; set weights.importer=npz")
        return safe_pickle.load(path)


@hookimpl
def register_weight_importers(register):
    register(PickleImporter)
