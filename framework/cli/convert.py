"""``fw convert-weights``: a weights file from one format to another (pickle, npz, safetensors), safely.

The format of each side comes from its suffix. The input is read by fw's own
importer for that format (a pickle through the restricted unpickler, an .npz
and a .safetensors with their headers checked first), so converting an
untrusted file is as safe as loading it; the output is written by that
format's weight writer, atomically.
"""

from pathlib import Path

from ..errors import FwError

#: suffix -> the importer that reads it and the writer that writes it (the two share a name).
FORMATS = {".npz": "npz", ".safetensors": "safetensors", ".pkl": "pickle", ".pickle": "pickle"}


def _format(path, side, example):
    if path.name in ("", "..") or path.is_dir():  # `fw convert-weights w.pkl .`: a folder has no suffix to change
        raise FwError(
            f"{side} {path} is a folder; "
            f"give a weights file{' to write in it' if side == 'output' else ''}, e.g. {path / example}"
        )
    fmt = FORMATS.get(path.suffix)
    if fmt is None:
        shown = ", ".join(dict.fromkeys(FORMATS))
        extra = "; numpy would add .npz to the name itself" if side == "output" and path.suffix == "" else ""
        raise FwError(
            f"{side} {path} must end with {shown} (the suffix names the format){extra}; e.g. {path.with_suffix('.npz')}"
        )
    return fmt


def convert(src, dst, *, force=False) -> dict:
    """Read ``src`` and write its arrays to ``dst``, each in the format its suffix names.

    No code in ``src`` runs. ``dst`` is written to a temporary file and renamed
    into place, so it is either absent, the old file, or complete. Returns the
    arrays written, the output's sha256 and the importer that reads it.
    """
    from ..data.weights import check_names
    from ..plugin_system.manager import get_registry
    from ..safeio.files import ensure_writable_dir, file_hash, write_output

    src, dst = Path(src), Path(dst)
    if not src.exists():  # a FIFO or folder exists: the importer says what it is
        raise FwError(f"input {src} not found; give the path of a weights file such as sample_weight.pkl")
    reader, writer = _format(src, "input", "sample_weight.pkl"), _format(dst, "output", f"{src.stem or 'weights'}.npz")
    if dst.exists() and not force:
        raise FwError(f"output {dst} already exists; choose another name, or add --force to replace it")
    if dst.exists() and not dst.is_file():
        raise FwError(f"output {dst} is not a file")
    registry = get_registry()
    write = registry.get(
        "weight_writers", writer, "the output's format"
    )().write  # a missing package fails here, before reading
    arrays = registry.get("weight_importers", reader, "the input's format")().load(src)
    if not arrays:
        raise FwError(f"{src}: holds no arrays; there are no weights to convert")
    check_names(arrays, src)  # also keeps names such as 'file' out of np.savez's own arguments
    for key, a in arrays.items():
        if a.dtype.kind not in "biufc":
            raise FwError(f"{src}: '{key}' is a {a.dtype} array; only numeric arrays can be converted")
    ensure_writable_dir(dst.parent, purpose=f"to write {dst.name}")
    write_output(dst, lambda f: write(f, arrays))
    return {"arrays": arrays, "sha256": file_hash(dst), "importer": writer}
