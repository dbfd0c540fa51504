"""The notebook API: build the network and load the data a config describes, and count what it gets right."""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .config.assemble import assemble
from .config.datasets import load_split as _load_split
from .core.network import Network
from .data.weights import load_weights
from .data.weights_file import weights_path
from .errors import FwError, FwWarning
from .plugin_system.manager import get_registry


def build_network(cfg, registry=None) -> Network:
    """The config's network with the weights ``cfg.weights`` names (null: a seeded random initialisation).

    Input sizes come from the dataset's examples, so a layer never needs its
    input size written down.
    """
    return build(cfg, registry)[0]


def build(cfg, registry=None, dataset=None):
    """``(network, dataset)``: ``build_network``'s network, and the dataset it is for, holding what
    training derived from the data (class names, statistics) when the weights came with it.
    ``dataset``: one already made for ``cfg`` (``config.datasets.make_dataset``)."""
    registry = registry or get_registry(cfg.plugins)
    follow = cfg.weights is not None
    net, dataset = assemble(cfg, registry, _SeededGenerator(cfg.model.seed), weights_follow=follow, dataset=dataset)
    if cfg.weights is None:
        warnings.warn(
            f"weights is null: the layers keep their random initialisation (model.seed={cfg.model.seed}); "
            "accuracy will be chance-level until the network is trained",
            FwWarning,
            stacklevel=3,
        )
    else:
        importer = registry.get("weight_importers", cfg.weights.importer, "weights.importer")()
        path = weights_path(cfg.weights, importer.load)
        load_weights(net, importer.load(path), path)
    return net, dataset


class _SeededGenerator:
    """``numpy.random.default_rng(seed)``, made when a layer first draws from it.

    A network whose weights come from a file draws nothing, so ``fw run`` need
    not import numpy.random (docs/performance.md has what that saves).
    """

    def __init__(self, seed):
        self._seed, self._rng = seed, None

    def __getattr__(self, name):
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return getattr(self._rng, name)


def load_dataset(cfg, registry=None, dataset=None):
    """``(x, t)`` for ``cfg.dataset.split`` with the config's ``load_mnist`` options and ``limit``.

    ``dataset``: the one ``build`` returned, so the data is read once and with its statistics.
    """
    return load_split(cfg, cfg.dataset.split, registry, dataset)


def load_split(cfg, split, registry=None, dataset=None):
    """``(x, t)`` for any split of the config's dataset, with its ``load_mnist`` options and ``limit``."""
    return _load_split(cfg, split, registry or get_registry(cfg.plugins), dataset)


@dataclass
class Evaluation:
    correct: int
    total: int
    seconds: float
    #: the predicted class of every example, for reports that need more than the count
    predicted: np.ndarray = field(default=None, repr=False)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def evaluate(net, x, t, batch_size=None) -> Evaluation:
    """Classify ``x`` and count matches with ``t``: the book's batch loop, done by ``Network.classify``.

    ``batch_size`` (``fw run`` passes the config's): the rows classified at a
    time, as in the book's loop. None: ``classify``'s cache-sized chunks (1024
    rows, fewer for a large network). Rows are independent, so no batch size
    changes the result; it trades memory for speed.
    """
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0):
        raise FwError(f"batch_size must be a positive whole number, got {batch_size!r}")
    if len(x) == 0:
        return Evaluation(0, 0, 0.0, np.empty(0, np.intp))
    labels = t.argmax(axis=1) if t.ndim == 2 else t
    start = time.perf_counter()
    predicted = net.classify(x, chunk_rows=batch_size)
    seconds = time.perf_counter() - start
    return Evaluation(int(np.count_nonzero(predicted == labels)), len(x), seconds, predicted)
