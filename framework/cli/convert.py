"""``fw convert-weights``: a book-style weights pickle to a ``.npz`` archive, safely."""

from pathlib import Path

import numpy as np

from ..errors import FwError


def pickle_to_npz(src, dst, *, force=False) -> dict:
    """Read ``src`` through the restricted unpickler and write its arrays to ``dst`` (.npz).

    No code in ``src`` runs. ``dst`` is written to a temporary file and renamed
    into place, so it is either absent, the old file, or complete. Returns the
    arrays written.
    """
    from ..safeio.files import atomic_write, ensure_writable_dir, file_hash
    from ..plugin_system.manager import get_registry
    from ..data.weights import check_names

    src, dst = Path(src), Path(dst)
    if not src.exists():  # a FIFO or folder exists: the importer says what it is
        raise FwError(f"input {src} not found; give the path of a weights pickle such as sample_weight.pkl")
    if dst.suffix != ".npz":
        raise FwError(f"output {dst} must end with .npz (numpy would add the suffix itself); e.g. {dst.with_suffix('.npz')}")
    if dst.exists() and not force:
        raise FwError(f"output {dst} already exists; choose another name, or add --force to replace it")
    if dst.exists() and not dst.is_file():
        raise FwError(f"output {dst} is not a file")
    # The built-in `pickle` importer: the restricted unpickler and its dict-of-arrays checks.
    arrays = get_registry().get("weight_importers", "pickle", "fw convert-weights")().load(src)
    if not arrays:
        raise FwError(f"{src}: holds an empty dict; there are no weights to convert")
    check_names(arrays, src)  # also keeps names such as 'file' out of np.savez's own arguments
    for key, a in arrays.items():
        if a.dtype.kind not in "biufc":
            raise FwError(f"{src}: '{key}' is a {a.dtype} array; only numeric arrays can be converted")
    ensure_writable_dir(dst.parent, purpose=f"to write {dst.name}")
    try:
        atomic_write(dst, lambda f: np.savez(f, **arrays))
    except OSError as e:
        raise FwError(f"cannot write {dst} ({e.strerror or e}); check the folder and free space") from e
    return {"arrays": arrays, "sha256": file_hash(dst)}
