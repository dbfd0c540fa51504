"""Where a config's weights file is: ``weights.path``, the cache for ``weights.url``, or fw's own copy.

A download happens here, once, when neither the path nor a bundled copy has the file.
"""

import warnings
from pathlib import Path

from ..errors import FwError, FwWarning
from .dataset import default_data_dir


def weights_path(w, load=None) -> Path:
    """The local weights file: ``weights.path``, or the cache for ``weights.url``, downloaded once if missing.

    ``weights.sha256``, when set, is checked against the file whether it was
    just downloaded or already there. A download that does not match is
    rejected; a file already there that does not match is used with a warning,
    since pointing weights.path at one's own file is legitimate, but a silently
    replaced book file is not. A url only ever fills the path its own config
    names (a weights.path given on the command line drops the file's url; see
    config/loading.py), so a mistyped path is "not found", never the book's weights.
    """
    if w.path:
        path = Path(w.path).expanduser()
    else:
        from urllib.parse import urlsplit

        name = Path(urlsplit(w.url).path).name  # no ?query, #fragment or host in the file name
        if not name:
            raise FwError(f"weights.url {w.url} names no file; set weights.path to where the file should go")
        path = default_data_dir() / "weights" / name
    if path.is_file():
        if w.sha256:
            from ..safeio.files import file_hash

            got = file_hash(path)
            if got != w.sha256.lower():
                warnings.warn(
                    f"{path} is not the file weights.sha256 names (SHA-256 {got[:12]}..., expected "
                    f"{w.sha256[:12]}...); using it anyway. Delete it to download the right one, or set "
                    "weights.sha256=null if it is yours",
                    FwWarning,
                    stacklevel=2,
                )
        return path
    if path.exists():
        raise FwError(f"weights.path: {path} is not a file")
    if not w.url:
        raise FwError(f"weights file not found: {path} (weights.path){_nearest_file(path)}")
    from .bundled import book_weights

    if bundled := book_weights(w.sha256):  # the book's file ships with fw: no download
        return bundled
    from ..safeio.download import download, expect_hash, expect_loadable

    # Without a checksum, the importer (``load``) must read the file before it is put in place.
    verify = expect_hash(w.sha256) if w.sha256 else expect_loadable(load) if load else None
    return download([w.url], path, verify=verify, label=path.name)


def _nearest_file(path: Path) -> str:
    """``; did you mean .../weights.npz?``: the closest name in the folder, or why there is none."""
    import difflib
    import itertools

    folder = path.parent
    if not folder.is_dir():
        return f"; folder {folder} does not exist"
    names = [p.name for p in itertools.islice(folder.iterdir(), 10_000) if p.is_file()]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.5)
    return f"; did you mean {folder / close[0]}?" if close else f"; folder {folder} has no file like it"
