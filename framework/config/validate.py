"""Every value's type checked once the config is merged, so a bad value fails before any work starts.

Each section has its own check; a failure names the key, the source that set
it (the file, or the override that last set it or a parent of it) and what
the value must be.
"""

import re

from ..core.schedules import SCHEDULES
from ..errors import FwError
from .sweep import check_sweep


def validate(cfg, path, overrides=(), require_weights=True):
    """Check ``cfg`` (merged and resolved); ``require_weights=False`` accepts no weights source (fw config)."""
    from omegaconf import OmegaConf

    check = _Checker(OmegaConf.to_container(cfg), path, overrides)
    c = check.config
    if not _is_int(c["batch_size"]) or c["batch_size"] <= 0:
        check.fail("batch_size", "a positive whole number, e.g. batch_size=100")
    if not isinstance(c["plugins"], list) or not all(isinstance(p, str) for p in c["plugins"]):
        check.fail("plugins", "a list of module names or .py paths")
    _dataset(check, c["dataset"])
    _model(check, c["model"])
    _train(check, c["train"])
    _weights(check, c["weights"], require_weights)
    check_sweep(check, c["sweep"])


class _Checker:
    def __init__(self, config, path, overrides):
        self.config, self.path, self.overrides = config, path, overrides

    def source_of(self, key):
        """The last override that set ``key`` (or a parent of it), else the file."""
        dotted = re.sub(r"\[(\d+)\]", r".\1", key) + "."
        for o in reversed(self.overrides):
            if dotted.startswith(re.sub(r"\[(\d+)\]", r".\1", o.split("=", 1)[0].strip()) + "."):
                return f"override {quote(o)}"
        return str(self.path)

    def fail(self, key, want):
        value = self.config
        for part in key.split("."):
            value = value[int(part) if isinstance(value, list) else part] if isinstance(value, (dict, list)) else value
        shown = re.sub(r"\.(\d+)", r"[\1]", key)
        raise FwError(f"{self.source_of(key)}: {shown} must be {want}, got {_short(value)}")


def _dataset(check, d):
    """The keys every dataset has; the dataset's own are checked by its class (config/datasets.make_dataset)."""
    from .schema import dataset_path_key

    if not isinstance(d, dict):
        check.fail("dataset", "a mapping with name, split, ...")
    for key in ("name", "split"):
        if not isinstance(d[key], str):
            check.fail(f"dataset.{key}", "a string")
    for key in ("normalize", "flatten", "one_hot_label"):
        if not isinstance(d[key], bool):
            check.fail(f"dataset.{key}", "true or false")
    if d["limit"] is not None and not (_is_int(d["limit"]) and d["limit"] > 0):
        check.fail("dataset.limit", "a positive whole number (the first N examples, shuffled) or null")
    for key, value in d.items():
        if dataset_path_key(key) and value is not None and not isinstance(value, str):
            check.fail(f"dataset.{key}", "a path or null")
        if dataset_path_key(key) and isinstance(value, str):
            _path(check, f"dataset.{key}", value)


def _model(check, m):
    if not isinstance(m, dict):
        check.fail("model", "a mapping with layers (or sizes, activation, output_activation)")
    layers, sizes = m["layers"], m["sizes"]
    if layers is not None:
        if not (isinstance(layers, list) and layers):
            check.fail("model.layers", "a list of layers, e.g. [{name: dense, units: 10}, softmax]")
        for i, entry in enumerate(layers):
            if not _named(entry):
                check.fail(f"model.layers.{i}", "a layer name such as relu, or a mapping like {name: dense, units: 100}")
        for key in ("sizes", "activation", "output_activation"):
            if m[key] is not None:
                raise FwError(
                    f"{check.source_of('model.' + key)}: model.layers and model.{key} are both set; model.{key} is "
                    f"shorthand for model.layers, so give one of them (set model.{key}=null, or drop model.layers)"
                )
    if sizes is not None and not (isinstance(sizes, list) and len(sizes) >= 2 and all(_is_int(s) and s > 0 for s in sizes)):
        check.fail("model.sizes", "a list of at least two positive whole numbers, e.g. [784,50,100,10]")
    for key in ("activation", "output_activation"):
        if m[key] is not None and not _named(m[key]):
            check.fail(f"model.{key}", "an activation name, or a mapping like {name: leaky_relu, alpha: 0.01}")
    if not _is_int(m["seed"]) or m["seed"] < 0:
        check.fail("model.seed", "a whole number, 0 or more")
    if m["init"] is not None and not _named(m["init"]):
        check.fail("model.init", "null, an initialiser name (he, xavier, normal) or a mapping like {name: normal, std: 0.01}")


def _train(check, tr):
    if not isinstance(tr, dict):
        check.fail("train", "a mapping with epochs, batch_size, optimizer, loss, ...")
    for key in ("epochs", "batch_size"):
        if not _is_int(tr[key]) or tr[key] <= 0:
            check.fail(f"train.{key}", "a positive whole number")
    if not _is_int(tr["seed"]) or tr["seed"] < 0:
        check.fail("train.seed", "a whole number, 0 or more")
    if not (isinstance(tr["optimizer"], dict) and isinstance(tr["optimizer"].get("name"), str)):
        check.fail("train.optimizer", "an optimizer name or a mapping like {name: adam, lr: 0.001}")
    if not _named(tr["loss"]):
        check.fail("train.loss", "a loss name such as cross_entropy")
    if tr["lr_schedule"] not in SCHEDULES:
        *others, last = SCHEDULES
        check.fail("train.lr_schedule", f"{', '.join(others)} or {last}")
    f = tr["validation_fraction"]
    if not (isinstance(f, (int, float)) and not isinstance(f, bool) and 0 <= f < 1):
        check.fail("train.validation_fraction", "a number from 0 (no validation split) to below 1, e.g. 0.1")
    if not isinstance(tr["callbacks"], list):
        check.fail("train.callbacks", "a list of callbacks, e.g. [{name: early_stopping, patience: 3}]")
    for i, entry in enumerate(tr["callbacks"]):
        if not _named(entry):
            check.fail(f"train.callbacks.{i}", "a callback name such as csv_logger, or a mapping like {name: early_stopping, patience: 3}")


def _weights(check, w, require_weights):
    if w is None:
        return
    if not isinstance(w, dict):
        check.fail("weights", "a mapping with importer and path, or null for a random initialisation")
    if not isinstance(w["importer"], str):
        check.fail("weights.importer", "an importer name such as pickle")
    for key in ("path", "url"):
        if w[key] is not None and not isinstance(w[key], str):
            check.fail(f"weights.{key}", "a string or null")
    if w["path"] is not None:
        _path(check, "weights.path", w["path"])
    if require_weights and w["path"] is None and w["url"] is None:
        check.fail("weights.path", "a file path (or set weights.url to download it, or weights=null)")
    if w["format"] is not None and not isinstance(w["format"], str):
        check.fail("weights.format", "a weight writer's name (fw plugins lists them: npz, pickle, ...) or null")
    if w["sha256"] is not None and not (isinstance(w["sha256"], str) and re.fullmatch(r"[0-9a-fA-F]{64}", w["sha256"])):
        quote = " (in quotes, or YAML reads a hash of digits as a number)" if not isinstance(w["sha256"], str) else ""
        check.fail("weights.sha256", f"64 hex digits{quote} or null")


def quote(item, limit=60) -> str:
    """An override as error lines quote it (see loading.quote)."""
    return repr(item if len(item) <= limit else f"{item[: limit - 10]}...{item[-7:]}")


def _path(check, key, value):
    """A path the file system can hold: no name over NAME_MAX bytes, not over PATH_MAX in all (else Errno 36 later)."""
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in value.split("/")), default=0)
    if longest > _NAME_MAX or len(value.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise FwError(
            f"{check.source_of(key)}: {key} {value[:40]!r}... is too long for the file system (a name of {longest} bytes; "
            f"at most {_NAME_MAX} a name and {_PATH_MAX} in all); choose a shorter path"
        )


_NAME_MAX, _PATH_MAX = 255, 4096


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _named(value):
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("name"), str))
