"""Where fw train keeps its checkpoint, and whether an interrupted run left one.

All that ``fw run`` needs of checkpoints: it asks before every run, and
importing ``checkpoint.py`` (with the npz reader and the callbacks' state)
for that would cost every run a few milliseconds.
"""

from pathlib import Path


def path_for(weights_path) -> Path:
    """The checkpoint beside a weights file: ``NAME.ckpt.npz``."""
    path = Path(weights_path).expanduser()
    return path.with_name(path.stem + ".ckpt.npz")


def unfinished(weights) -> Path | None:
    """The checkpoint of an interrupted ``fw train`` for these weights: newer than them, or there alone."""
    if weights is None or not weights.path:
        return None
    path = Path(weights.path).expanduser()
    checkpoint = path_for(path)
    if checkpoint.is_file() and (not path.is_file() or checkpoint.stat().st_mtime > path.stat().st_mtime):
        return checkpoint
    return None
