"""The notebook API: build the network and load the data a config describes."""

import inspect
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import named_spec
from .dataset import default_data_dir
from .errors import FwError, FwWarning
from .layers import Dense, Network
from .plugin_manager import get_registry
from .registry import KINDS
from .weights import check_weights


def build_network(cfg, registry=None) -> Network:
    """Dense layers from ``cfg.weights`` (or a seeded random init) with the config's activations."""
    registry = registry or get_registry(cfg.plugins)
    sizes = list(cfg.model.sizes)
    hidden = [make(registry, "activations", cfg.model.activation, "model.activation") for _ in sizes[2:]]
    output = make(registry, "activations", cfg.model.output_activation, "model.output_activation")
    if cfg.weights is None:
        init = initializer(cfg, registry)
        warnings.warn(
            f"weights is null: using a random '{init.name}' initialisation (model.seed={cfg.model.seed}); "
            "accuracy will be chance-level until the network is trained",
            FwWarning,
            stacklevel=2,
        )
        params = random_params(sizes, init, cfg.model.seed)
    else:
        params = _import_weights(cfg.weights, sizes, registry)
    layers = []
    for (W, b), act in zip(params, [*hidden, output]):
        layers += [Dense(W, b), act]
    return Network(layers)


def check_names(cfg, registry=None):
    """Look up every plugin name the config uses, with its parameters: what `fw config` vouches for."""
    registry = registry or get_registry(cfg.plugins)
    m, t = cfg.model, cfg.train
    make(registry, "activations", m.activation, "model.activation")
    make(registry, "activations", m.output_activation, "model.output_activation")
    registry.get("datasets", cfg.dataset.name, "dataset.name")
    if cfg.weights is not None:
        registry.get("weight_importers", cfg.weights.importer, "weights.importer")
    initializer(cfg, registry)
    make(registry, "optimizers", t.optimizer, "train.optimizer")
    make(registry, "losses", t.loss, "train.loss")


def initializer(cfg, registry):
    """``model.init``, or when it is null the one the hidden activation asks for (He for ReLU)."""
    value = cfg.model.init
    if value is None:
        name, _ = named_spec(cfg.model.activation if len(cfg.model.sizes) > 2 else cfg.model.output_activation)
        value = registry.get("activations", name, "model.activation").init
    return make(registry, "initializers", value, "model.init")


def random_params(sizes, init, seed):
    """Seeded ``[(W1, b1), ...]``: weights from ``init``, biases zero."""
    rng = np.random.default_rng(seed)
    return [(init(n_in, n_out, rng), np.zeros(n_out, np.float32)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def make(registry, kind, value, key):
    """An instance from a named config value: ``relu`` or ``{name: leaky_relu, alpha: 0.1}``.

    Parameters are checked against the class's ``__init__`` before it is
    called, so a typo names the accepted parameters instead of a TypeError.
    """
    name, params = named_spec(value)
    cls = registry.get(kind, name, key)
    noun = KINDS[kind][1]
    # Without parameters there is nothing to check, and inspect.signature of a class
    # with no __init__ of its own costs ~15 ms (it tokenizes object's text signature).
    if params:
        signature = inspect.signature(cls)
        try:
            signature.bind(**params)
        except TypeError as e:
            accepted = [p.name for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            unknown = sorted(set(params) - set(accepted))
            problem = f"does not accept {', '.join(map(repr, unknown))}" if unknown else f"cannot take {params}: {e}"
            raise FwError(
                f"{key}: {noun} '{name}' {problem}; it accepts: {', '.join(accepted) or 'no parameters'}"
            ) from e
    try:
        return cls(**params)
    except Exception as e:  # a plugin's __init__: whatever it raises, say where it came from
        raise FwError(f"{key}: {noun} '{name}' failed to start with parameters {params}: {type(e).__name__}: {e}") from e


def _import_weights(w, sizes, registry):
    importer = registry.get("weight_importers", w.importer, "weights.importer")()
    path = weights_path(w, importer.load)
    return check_weights(importer.load(path), sizes, path)


def weights_path(w, load=None) -> Path:
    """The local weights file, downloaded once from ``weights.url`` if it is missing.

    ``weights.sha256``, when set, is checked against the file whether it was
    just downloaded or already there. A download that does not match is
    rejected; a file already there that does not match is used with a warning,
    since pointing weights.path at one's own file is legitimate, but a silently
    replaced book file is not.
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
        checkpoint = path.with_name(path.stem + ".ckpt.npz")
        if checkpoint.is_file() and checkpoint.stat().st_mtime > path.stat().st_mtime:
            warnings.warn(
                f"{checkpoint} is newer than {path}: a training run did not finish; "
                "fw train CONFIG --resume completes it (these are the older weights)",
                FwWarning,
                stacklevel=2,
            )
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
        checkpoint = path.with_name(path.stem + ".ckpt.npz")
        if checkpoint.is_file():
            raise FwError(
                f"weights file not found: {path} (weights.path), but a training checkpoint is there: "
                f"finish the training with fw train CONFIG --resume"
            )
        raise FwError(f"weights file not found: {path} (weights.path); fix the path, or set weights.url to download it")
    from .download import download, expect_hash, expect_loadable

    # Without a checksum, the importer (``load``) must read the file before it is put in place.
    verify = expect_hash(w.sha256) if w.sha256 else expect_loadable(load) if load else None
    return download([w.url], path, verify=verify, label=path.name)


def load_dataset(cfg, registry=None):
    """``(x, t)`` for ``cfg.dataset.split`` with the config's ``load_mnist`` options."""
    return load_split(cfg, cfg.dataset.split, registry)


def load_split(cfg, split, registry=None):
    """``(x, t)`` for any split of the config's dataset, with its ``load_mnist`` options."""
    registry = registry or get_registry(cfg.plugins)
    d = cfg.dataset
    dataset = registry.get("datasets", d.name, "dataset.name")(d.root)
    sizes = cfg.model.sizes
    if sizes[-1] != dataset.num_classes:
        raise FwError(
            f"model.sizes ends with {sizes[-1]} outputs, but dataset '{d.name}' has {dataset.num_classes} classes; "
            f"set the last of model.sizes to {dataset.num_classes}"
        )
    x, t = dataset.load(split, normalize=d.normalize, flatten=d.flatten, one_hot_label=d.one_hot_label)
    features = int(np.prod(x.shape[1:]))
    if sizes[0] != features:
        raise FwError(
            f"model.sizes starts with {sizes[0]} inputs, but dataset '{d.name}' gives {features} per example; "
            f"set model.sizes[0] to {features}"
        )
    return x, t


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
    x = x.reshape(len(x), -1)  # a dense network sees (N, 1, 28, 28) as (N, 784)
    n_in = net.dense[0].W.shape[0]
    if x.shape[1] != n_in:
        raise FwError(
            f"the dataset gives {x.shape[1]} inputs per example but model.sizes starts with {n_in}; "
            f"set model.sizes[0] to {x.shape[1]}"
        )
    start = time.perf_counter()
    predicted = net.classify(x)
    seconds = time.perf_counter() - start
    return Evaluation(int(np.count_nonzero(predicted == labels)), len(x), seconds, predicted)
