"""Weights from a numpy ``.npz`` archive: the safe format (no code can run on load)."""

from pathlib import Path

from framework import FwError, WeightImporter, hookimpl


class NpzImporter(WeightImporter):
    """``numpy.load(path, allow_pickle=False)``: plain arrays only, object arrays are refused.

    Write one with ``numpy.savez("w.npz", W1=W1, b1=b1, ...)``, or convert a
    book-style pickle with ``fw convert-weights w.pkl w.npz``.
    """

    name = "npz"

    def load(self, path) -> dict:
        import zipfile

        import numpy as np

        path = Path(path)
        if not path.is_file():
            raise FwError(
                f"{path}: weights file not found; set weights.path to a .npz file "
                "(fw convert-weights turns a .pkl into one)"
            )
        with open(path, "rb") as f:
            is_npy = f.read(6) == b"\x93NUMPY"
        if not is_npy and not zipfile.is_zipfile(path):  # np.load would call it a pickle, confusingly
            raise FwError(
                f"{path}: not a .npz archive (a .npz is a zip of .npy files); check the file, or for a "
                "pickle set weights.importer=pickle"
            )
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            detail = " ".join(str(e).split())[:200]
            raise FwError(
                f"{path}: not a readable .npz archive ({type(e).__name__}: {detail}); "
                "for a pickle use weights.importer=pickle, or download the file again"
            ) from e
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise FwError(
                f"{path}: holds a single array (.npy), not a .npz archive of named arrays; "
                "save the weights with numpy.savez(path, W1=..., b1=..., ...)"
            )
        with archive:
            arrays = {}
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except ValueError as e:  # an object array needs pickle: refused
                    raise FwError(
                        f"{path}: array '{key}' cannot be loaded without pickle ({' '.join(str(e).split())}); "
                        "weights must be numeric arrays"
                    ) from e
                except Exception as e:  # a damaged member: zlib.error, BadZipFile, EOFError...
                    raise FwError(
                        f"{path}: array '{key}' is damaged ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                        "download or convert the file again"
                    ) from e
        return arrays


@hookimpl
def register_weight_importers(register):
    register(NpzImporter)
