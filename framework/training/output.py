"""Where ``fw train`` writes: ``weights.path`` in ``weights.format``
(a WeightWriter plugin), and the checkpoint beside it.

Everything is checked before any data is read, so a run never trains for an
hour and then finds it cannot write its result.
"""

from pathlib import Path

from ..data.trained import write_state
from ..data.weights import book_layout
from ..errors import FwError
from ..safeio.files import check_writable, refuse_system_path, write_output
from .checkpoint_path import path_for


class WeightsOutput:
    """The weights file, its writer, and the checkpoint path (``NAME.ckpt.npz``) beside it."""

    def __init__(self, weights, registry):
        if weights is None or not weights.path:
            raise FwError("fw train writes its result to weights.path; set weights.path (e.g. runs/my_net/weights.npz)")
        self.path = Path(weights.path).expanduser()
        refuse_system_path(self.path, "weights.path")
        fmt = weights.format or weights.importer
        key = "weights.format" if weights.format else "weights.importer (weights.format is null)"
        self.writer = registry.get("weight_writers", fmt, key)()
        self.format = fmt
        reader = self.writer.reader()
        if weights.importer != reader:
            raise FwError(
                f"weights.format={fmt} but weights.importer={weights.importer}: fw run could not read "
                f"what fw train writes; set weights.importer={reader}"
            )
        suffixes = tuple(self.writer.suffixes)
        if suffixes and self.path.suffix not in suffixes:
            raise FwError(f"weights.path {self.path} should end with {' or '.join(suffixes)} for weights.format={fmt}")
        self.checkpoint_path = path_for(self.path)

    def check(self, overwrite=False, resume=False):
        """Before any training: can the weights and checkpoint be written, and may old ones be replaced?"""
        check_writable(self.path, "weights.path", overwrite or resume)
        if self.checkpoint_path.is_dir():
            raise FwError(f"{self.checkpoint_path} (the checkpoint beside weights.path) is a folder; move it away")
        if self.checkpoint_path.exists() and not (overwrite or resume):
            raise FwError(
                f"a checkpoint from an earlier run is at {self.checkpoint_path}; --resume continues it, "
                "--force starts over"
            )

    def write(self, net, dataset=None) -> Path:
        """Write every layer's parameters (and buffers), atomically, then what training derived from
        ``dataset`` beside them (``data/trained.py``).

        A network of dense layers (and parameter-free ones) is written in the
        book's layout, W1, b1, ..., which fw 0.1 and the book's code read too;
        any other network as ``0.W, 0.b, 2.gamma, ...``.
        """
        arrays = book_layout(net) or net.state_dict()
        write_output(self.path, lambda f: self.writer.write(f, arrays))
        if dataset is not None:
            write_state(self.path, dataset.name, dataset.state())
        return self.path
