"""fw train never replaces a file it did not write, nor the config or the data the run reads.

Every file written beside the weights (the run record, ``csv_logger``'s log)
is checked here first. A file fw wrote is recognised by its own structure
(the record's marker line, the log's header); any other existing file is
refused unless ``--force`` is given, and the run's inputs even then.
"""

import os
from pathlib import Path

from ..config.schema import dataset_path_key
from ..errors import FwError
from ..safeio.files import check_writable


def in_use(cfg, config_path=None) -> dict:
    """``{path: what it is}``: the config file the run trains from and its data (every ``dataset.root``,
    ``path`` or ``*_path``), which no output of the run may be written over."""
    used = {str(Path(config_path).expanduser()): "the config this run trains from"} if config_path else {}
    for key, value in (cfg.dataset or {}).items():
        if dataset_path_key(key) and isinstance(value, str) and value:
            used[str(Path(value).expanduser())] = f"dataset.{key}, data this run reads"
    return used


def check(path, what, *, used=None, force=False, ours=lambda path: False, elsewhere="choose another file name"):
    """Refuse (one line) to write ``path`` when it is, or is inside, something in ``used`` (``in_use``),
    or when it exists and ``ours(path)`` says fw did not write it, unless ``force``.

    ``elsewhere`` tells the user how to write somewhere else instead."""
    path = Path(path)
    check_writable(path, what, overwrite=True)  # a folder, a read-only folder, /dev, /proc
    for other, kind in (used or {}).items():
        other = Path(other)
        if _same(path, other):
            raise FwError(f"{what} {path} is {kind}; fw never writes over it: {elsewhere}")
        if path.exists() and other.is_dir() and _inside(path, other) and not ours(path):
            raise FwError(f"{what} {path} is inside {kind}; fw never writes over it: {elsewhere}")
    if path.exists() and not force and not ours(path):
        raise FwError(
            f"{what} {path} already exists and fw did not write it; add --force to replace it, or {elsewhere}"
        )


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and symlinks too
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
