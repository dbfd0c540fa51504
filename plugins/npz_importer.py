"""Weights from a numpy ``.npz`` archive: the safe format (no code can run on load)."""

from pathlib import Path

from framework import FwError, WeightImporter, hookimpl

_LAYOUT = "a weights .npz holds only .npy arrays, one per weight (W1.npy, b1.npy, ... or 0.W.npy, 0.b.npy, ...)"


class NpzImporter(WeightImporter):
    """Numeric arrays named ``W1.npy, b1.npy, ...`` (or ``0.W.npy, ...``) in a zip, read without pickle.

    Write one with ``numpy.savez("w.npz", W1=W1, b1=b1, ...)``, or convert a
    book-style pickle with ``fw convert-weights w.pkl w.npz``.

    Nothing is unpacked until every member's name, size, dtype and shape have
    been checked (``framework.safeio.npz``), so a zip bomb or a forged header
    costs no more than the file.
    """

    name = "npz"

    def load(self, path) -> dict:
        import zipfile

        from framework.data.weights import check_names
        from framework.safeio.files import open_weights
        from framework.safeio.npz import read_npz

        path = Path(path)
        try:
            f = open_weights(path)
        except FileNotFoundError:
            raise FwError(
                f"{path}: weights file not found; set weights.path to a .npz file "
                "(fw convert-weights turns a .pkl into one)"
            ) from None
        except OSError as e:
            raise FwError(f"{path}: cannot read the weights file: {e.strerror or e}") from e
        with f:
            if f.read(6) == b"\x93NUMPY":
                raise FwError(
                    f"{path}: holds a single array (.npy), not a .npz archive of named arrays; "
                    "save the weights with numpy.savez(path, W1=..., b1=..., ...)"
                )
            if not zipfile.is_zipfile(f):  # np.load would call it a pickle, confusingly
                raise FwError(
                    f"{path}: not a .npz archive (a .npz is a zip of .npy files); check the file, or for a "
                    "pickle set weights.importer=pickle"
                )
            return read_npz(f, path, check_names=check_names, layout=_LAYOUT)


@hookimpl
def register_weight_importers(register):
    register(NpzImporter)
