"""YAML + command-line overrides -> one validated, fully resolved config.

The schema below lists every valid key with its default. It is merged in
omegaconf's struct mode, so a typo is an error naming the full key path and
the closest valid key instead of a setting that silently does nothing.
"""

import difflib
import re
from pathlib import Path

from .errors import FwError

SCHEMA = {
    "dataset": {
        "name": "mnist",
        "split": "test",
        "root": None,  # null: $FW_DATA_DIR/<dataset folder>, else ~/.cache/fw/<dataset folder>
        "normalize": True,
        "flatten": True,
        "one_hot_label": False,
    },
    "model": {
        # The network: a list of layers, each a name (relu) or a mapping ({name: dense, units: 100}).
        "layers": None,
        # Or the shorthand model.sizes: dense layers of these sizes, model.activation between
        # them and model.output_activation last. With neither, the book's [784, 50, 100, 10].
        "sizes": None,
        "activation": None,  # null: sigmoid; a name, or {name: ..., <parameter>: ...}
        "output_activation": None,  # null: softmax
        "seed": 0,  # for the random initialisation when weights is null
        "init": None,  # null: the activation's own (he for relu, xavier for sigmoid); or {name: normal, std: 0.01}
    },
    # weights: null means a seeded random initialisation. Nothing here defaults to the
    # book's file: a config that names its own weights must not inherit the book's url.
    "weights": {
        "importer": "pickle",
        "path": None,  # null: downloaded from url into $FW_DATA_DIR/weights/ (or ~/.cache/fw/weights/)
        "url": None,
        "sha256": None,  # checked against the file, downloaded or already there
        "format": None,  # what fw train writes: npz or pickle; null: the importer's format
    },
    "train": {
        "epochs": 10,
        "batch_size": 100,
        "seed": 0,  # initial weights and shuffling
        "optimizer": {"name": "adam"},  # plus its parameters, e.g. lr: 0.001
        "loss": "cross_entropy",
        "lr_schedule": "flat_cosine",  # constant; cosine (decay to 0 over the run); flat_cosine (the last 25%)
    },
    "batch_size": 100,
    "plugins": [],
}


def load_config(path, overrides=()):
    """Load ``path``, apply ``KEY=VALUE`` overrides, resolve and validate it."""
    from omegaconf import OmegaConf

    path = Path(path)
    if isinstance(overrides, str):
        raise FwError(f"overrides must be a list of 'KEY=VALUE' strings, e.g. [{overrides!r}], not one string")
    schema = OmegaConf.create(SCHEMA)
    OmegaConf.set_struct(schema, True)
    OmegaConf.set_struct(schema.train.optimizer, False)  # each optimizer has its own parameters
    cfg = _open_layers(_merge(schema, _shorthand(_read_yaml(path)), f"{path}"))
    for item in overrides:
        cfg = _open_layers(_apply_override(cfg, item))
    try:
        OmegaConf.resolve(cfg)
    except Exception as e:
        raise FwError(f"{path}: cannot resolve {_key_of(e) or 'a value'}: {_msg(e)}") from e
    _validate(cfg, path, overrides)
    # Plugin files are relative to the config that names them, not to the cwd.
    cfg.plugins = [
        str((path.parent / p).resolve()) if p.endswith(".py") and not Path(p).expanduser().is_absolute() else p
        for p in cfg.plugins
    ]
    return cfg


def _read_yaml(path):
    from omegaconf import OmegaConf

    if path.is_dir():
        raise FwError(f"{path} is a folder; pass the path of a YAML file such as configs/mnist_infer.yaml")
    if not path.is_file():
        raise FwError(f"config file not found: {path}; pass the path of a YAML file such as configs/mnist_infer.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FwError(f"{path}: cannot read it as UTF-8 text ({e}); a config is a YAML file") from e
    if not text.strip():
        raise FwError(f"{path} is empty; start from a config such as configs/mnist_infer.yaml")
    try:
        data = OmegaConf.create(text)
    except Exception as e:
        mark = getattr(e, "problem_mark", None)
        where = f":line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or _msg(e)
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        tab = "; YAML indents with spaces, not tabs" if "\t" in line[: mark.column + 1] else ""
        raise FwError(f"{path}{where}: invalid YAML: {problem}{tab}") from e
    if not OmegaConf.is_dict(data):
        raise FwError(f"{path}: the top level must be a mapping of keys (dataset:, model:, ...), not a list")
    return data


def _shorthand(update):
    """``optimizer: sgd`` means ``optimizer: {name: sgd}``, so ``train.optimizer.lr=...`` still works."""
    from omegaconf import OmegaConf

    train = update.get("train") if OmegaConf.is_dict(update) else None
    if OmegaConf.is_dict(train) and isinstance(train.get("optimizer"), str):
        train.optimizer = {"name": train.optimizer}
    return update


def _open_layers(cfg):
    """Each entry of model.layers takes its own parameters, so an override may add one (model.layers[0].init=he)."""
    from omegaconf import OmegaConf

    if OmegaConf.is_list(cfg.model.layers):
        OmegaConf.set_struct(cfg.model.layers, False)
    return cfg


def _apply_override(cfg, item):
    """``KEY=VALUE`` applied to ``cfg``; a key with an index (``model.layers[2].units``) edits that entry."""
    from omegaconf import OmegaConf

    key = item.split("=", 1)[0].strip()
    if key in ("model.layers", "model.sizes"):
        # The command line replaces the file's network, whichever form each uses.
        other = ["model.sizes", "model.activation", "model.output_activation"] if key == "model.layers" else ["model.layers"]
        for k in other:
            OmegaConf.update(cfg, k, None, merge=False)
    if "[" not in key:
        return _merge(cfg, _shorthand(_parse_override(item)), f"override '{item}'")
    value = _parse_override("_=" + item.split("=", 1)[1], item)._
    try:
        OmegaConf.update(cfg, key, value, merge=True)
    except Exception as e:
        unknown = "not in struct" in str(e) or isinstance(e, (KeyError, AttributeError))
        what = f"unknown key '{_key_of(e) or key}'{_suggest(_key_of(e) or key)}" if unknown else _msg(e)
        raise FwError(f"override '{item}': {what}") from e
    return cfg


def _parse_override(item, shown=None):
    from omegaconf import OmegaConf

    shown = shown or item
    if "=" not in item:
        raise FwError(f"override '{item}' is not KEY=VALUE, e.g. batch_size=1000 or model.sizes=[784,100,10]")
    try:
        return OmegaConf.from_dotlist([item])
    except Exception as e:
        hint = "; quote an override that has spaces: 'model.sizes=[784, 100, 10]'" if item.count("[") != item.count("]") else ""
        raise FwError(f"override '{shown}': cannot parse the value: {_msg(e)}{hint}") from e


def _merge(base, update, source):
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    try:
        return OmegaConf.merge(base, update)
    except ConfigKeyError as e:
        key = _key_of(e) or str(e.key)
        raise FwError(f"{source}: unknown key '{key}'{_suggest(key)}") from e
    except Exception as e:
        key = _key_of(e)
        raise FwError(f"{source}: bad value{f' for {key}' if key else ''}: {_msg(e)}") from e


def _suggest(full_key):
    parent, _, leaf = full_key.rpartition(".")
    node = SCHEMA
    for part in parent.split(".") if parent else []:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return ""
    close = difflib.get_close_matches(leaf, node, n=1)
    prefix = f"{parent}." if parent else ""
    valid = f"valid keys{f' under {parent}' if parent else ''}: {', '.join(node)}"
    return f"; did you mean '{prefix}{close[0]}'? {valid}" if close else f"; {valid}"


def _validate(cfg, path, overrides=()):
    """Check every value's type now, so a bad value fails before any work starts."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg)

    def source_of(key):
        """The last override that set ``key`` (or a parent of it), else the file."""
        dotted = re.sub(r"\[(\d+)\]", r".\1", key) + "."
        for o in reversed(overrides):
            if dotted.startswith(re.sub(r"\[(\d+)\]", r".\1", o.split("=", 1)[0].strip()) + "."):
                return f"override '{o}'"
        return str(path)

    def fail(key, want):
        value = c
        for part in key.split("."):
            value = value[int(part) if isinstance(value, list) else part] if isinstance(value, (dict, list)) else value
        shown = re.sub(r"\.(\d+)", r"[\1]", key)
        raise FwError(f"{source_of(key)}: {shown} must be {want}, got {_short(value)}")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if not is_int(c["batch_size"]) or c["batch_size"] <= 0:
        fail("batch_size", "a positive whole number, e.g. batch_size=100")
    if not isinstance(c["plugins"], list) or not all(isinstance(p, str) for p in c["plugins"]):
        fail("plugins", "a list of module names or .py paths")
    d = c["dataset"]
    if not isinstance(d, dict):
        fail("dataset", "a mapping with name, split, root, ...")
    for key in ("name", "split"):
        if not isinstance(d[key], str):
            fail(f"dataset.{key}", "a string")
    if d["root"] is not None and not isinstance(d["root"], str):
        fail("dataset.root", "a folder path or null")
    for key in ("normalize", "flatten", "one_hot_label"):
        if not isinstance(d[key], bool):
            fail(f"dataset.{key}", "true or false")
    m = c["model"]
    if not isinstance(m, dict):
        fail("model", "a mapping with layers (or sizes, activation, output_activation)")
    layers, sizes = m["layers"], m["sizes"]
    if layers is not None:
        if not (isinstance(layers, list) and layers):
            fail("model.layers", "a list of layers, e.g. [{name: dense, units: 10}, softmax]")
        for i, entry in enumerate(layers):
            if not _named(entry):
                fail(f"model.layers.{i}", "a layer name such as relu, or a mapping like {name: dense, units: 100}")
        for key in ("sizes", "activation", "output_activation"):
            if m[key] is not None:
                raise FwError(
                    f"{source_of('model.' + key)}: model.layers and model.{key} are both set; model.{key} is shorthand for "
                    f"model.layers, so give one of them (set model.{key}=null, or drop model.layers)"
                )
    if sizes is not None and not (isinstance(sizes, list) and len(sizes) >= 2 and all(is_int(s) and s > 0 for s in sizes)):
        fail("model.sizes", "a list of at least two positive whole numbers, e.g. [784,50,100,10]")
    for key in ("activation", "output_activation"):
        if m[key] is not None and not _named(m[key]):
            fail(f"model.{key}", "an activation name, or a mapping like {name: leaky_relu, alpha: 0.01}")
    if not is_int(m["seed"]) or m["seed"] < 0:
        fail("model.seed", "a whole number, 0 or more")
    if m["init"] is not None and not _named(m["init"]):
        fail("model.init", "null, an initialiser name (he, xavier, normal) or a mapping like {name: normal, std: 0.01}")
    tr = c["train"]
    if not isinstance(tr, dict):
        fail("train", "a mapping with epochs, batch_size, optimizer, loss, ...")
    for key in ("epochs", "batch_size"):
        if not is_int(tr[key]) or tr[key] <= 0:
            fail(f"train.{key}", "a positive whole number")
    if not is_int(tr["seed"]) or tr["seed"] < 0:
        fail("train.seed", "a whole number, 0 or more")
    if not (isinstance(tr["optimizer"], dict) and isinstance(tr["optimizer"].get("name"), str)):
        fail("train.optimizer", "an optimizer name or a mapping like {name: adam, lr: 0.001}")
    if not _named(tr["loss"]):
        fail("train.loss", "a loss name such as cross_entropy")
    if tr["lr_schedule"] not in ("constant", "cosine", "flat_cosine"):
        fail("train.lr_schedule", "constant, cosine or flat_cosine")
    w = c["weights"]
    if w is None:
        return
    if not isinstance(w, dict):
        fail("weights", "a mapping with importer and path, or null for a random initialisation")
    if not isinstance(w["importer"], str):
        fail("weights.importer", "an importer name such as pickle")
    for key in ("path", "url"):
        if w[key] is not None and not isinstance(w[key], str):
            fail(f"weights.{key}", "a string or null")
    if w["path"] is None and w["url"] is None:
        fail("weights.path", "a file path (or set weights.url to download it, or weights=null)")
    if w["format"] not in (None, "npz", "pickle"):
        fail("weights.format", "npz, pickle or null")
    if w["sha256"] is not None and not (isinstance(w["sha256"], str) and re.fullmatch(r"[0-9a-fA-F]{64}", w["sha256"])):
        quote = " (in quotes, or YAML reads a hash of digits as a number)" if not isinstance(w["sha256"], str) else ""
        fail("weights.sha256", f"64 hex digits{quote} or null")


def _short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _named(value):
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("name"), str))


def named_spec(value):
    """Split a named config value (``relu`` or ``{name: leaky_relu, alpha: 0.1}``) into (name, params)."""
    from omegaconf import OmegaConf

    if isinstance(value, str):
        return value, {}
    params = OmegaConf.to_container(value) if OmegaConf.is_config(value) else dict(value)
    return params.pop("name"), params


def _key_of(e):
    return getattr(e, "full_key", None) or None


def _msg(e):
    """omegaconf appends 'full_key: ...' detail lines; keep the first line only."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
