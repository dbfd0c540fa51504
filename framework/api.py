"""The notebook API: build the network and load the data a config describes."""

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import model
from .dataset import default_data_dir, make_dataset
from .dataset import load_split as _load_split
from .errors import FwError, FwWarning
from .network import Network
from .plugin_manager import get_registry
from .weights import load_weights


def build_network(cfg, registry=None) -> Network:
    """The config's network with the weights ``cfg.weights`` names (null: a seeded random initialisation).

    Input sizes come from the dataset's examples, so a layer never needs its
    input size written down.
    """
    registry = registry or get_registry(cfg.plugins)
    dataset = make_dataset(cfg, registry)
    rng = _SeededGenerator(cfg.model.seed)
    net = model.build_model(cfg, registry, model.input_shape(cfg, dataset), rng, weights_follow=cfg.weights is not None)
    model.check_fits(cfg, net, dataset)
    if cfg.weights is None:
        warnings.warn(
            f"weights is null: the layers keep their random initialisation (model.seed={cfg.model.seed}); "
            "accuracy will be chance-level until the network is trained",
            FwWarning,
            stacklevel=2,
        )
    else:
        importer = registry.get("weight_importers", cfg.weights.importer, "weights.importer")()
        path = weights_path(cfg.weights, importer.load)
        load_weights(net, importer.load(path), path)
    return net


class _SeededGenerator:
    """``numpy.random.default_rng(seed)``, made when a layer first draws from it.

    A network whose weights come from a file draws nothing, and importing
    numpy.random would cost fw run ~7 ms (a twentieth of its process).
    """

    def __init__(self, seed):
        self._seed, self._rng = seed, None

    def __getattr__(self, name):
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return getattr(self._rng, name)


def check_names(cfg, registry=None):
    """Look up every plugin name the config uses, with its parameters: what `fw config` vouches for."""
    registry = registry or get_registry(cfg.plugins)
    model.make_layers(cfg, registry)
    registry.get("datasets", cfg.dataset.name, "dataset.name")
    if cfg.weights is not None:
        registry.get("weight_importers", cfg.weights.importer, "weights.importer")
    model.make(registry, "optimizers", cfg.train.optimizer, "train.optimizer")
    model.make(registry, "losses", cfg.train.loss, "train.loss")


def weights_path(w, load=None) -> Path:
    """The local weights file: ``weights.path``, or the cache for ``weights.url``, downloaded once if missing.

    ``weights.sha256``, when set, is checked against the file whether it was
    just downloaded or already there. A download that does not match is
    rejected; a file already there that does not match is used with a warning,
    since pointing weights.path at one's own file is legitimate, but a silently
    replaced book file is not. A url only ever fills the path its own config
    names (a weights.path given on the command line drops the file's url; see
    config.py), so a mistyped path is "not found", never the book's weights.
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
            from .files import file_hash

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
    from .download import download, expect_hash, expect_loadable

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


def unfinished_training(w) -> Path | None:
    """The checkpoint of an interrupted ``fw train`` for these weights: newer than them, or there alone."""
    if w is None or not w.path:
        return None
    path = Path(w.path).expanduser()
    checkpoint = path.with_name(path.stem + ".ckpt.npz")
    if checkpoint.is_file() and (not path.is_file() or checkpoint.stat().st_mtime > path.stat().st_mtime):
        return checkpoint
    return None


def load_dataset(cfg, registry=None):
    """``(x, t)`` for ``cfg.dataset.split`` with the config's ``load_mnist`` options."""
    return load_split(cfg, cfg.dataset.split, registry)


def load_split(cfg, split, registry=None):
    """``(x, t)`` for any split of the config's dataset, with its ``load_mnist`` options."""
    return _load_split(cfg, split, registry or get_registry(cfg.plugins))


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


def evaluate(net, x, t, batch_size=100) -> Evaluation:
    """Classify ``x`` and count matches with ``t``: the book's batch loop.

    ``batch_size`` is validated but does not change the result: rows are
    independent, so ``Network.classify`` works in cache-sized chunks whatever
    it is (see README, Performance).
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise FwError(f"batch_size must be a positive whole number, got {batch_size!r}")
    if len(x) == 0:
        return Evaluation(0, 0, 0.0, np.empty(0, np.intp))
    labels = t.argmax(axis=1) if t.ndim == 2 else t
    start = time.perf_counter()
    predicted = net.classify(x)
    seconds = time.perf_counter() - start
    return Evaluation(int(np.count_nonzero(predicted == labels)), len(x), seconds, predicted)
