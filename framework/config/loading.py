"""YAML + command-line overrides -> one validated, fully resolved config.

The file is merged over ``schema.SCHEMA`` (the defaults its dataclasses
declare) in omegaconf's struct mode, so a typo is an error naming the full key
path and the closest valid key; then ``validate`` checks every value.
"""

import difflib
import os
import re
import sys
from pathlib import Path

from ..errors import FwError
from .schema import PATH_KEYS, SCHEMA, dataset_path_key
from .validate import line_of, quote, validate


def load_config(path, overrides=(), *, require_weights=True):
    """Load ``path``, apply ``KEY=VALUE`` overrides, resolve and validate it.

    ``path`` is a YAML file, or the name of a bundled config (``mnist_infer``,
    see ``fw configs``); a file at that path wins over the bundled config.

    One rule for relative paths (``PATH_KEYS`` and plugin ``.py`` files): one
    written in a config file resolves against that file's folder; one from an
    override, or built by an interpolation from the environment
    (``${oc.env:FW_DATA_DIR,...}``), against the current folder, as the shell
    would read it. A bundled config counts as a file in the current folder,
    the one ``fw config NAME > NAME.yaml`` would write: its outputs land there,
    never inside the installed package. The result holds absolute paths.

    ``require_weights=False`` accepts a config with no weights source
    (``weights.path`` and ``weights.url`` both null), so ``fw config`` can show
    a minimal config with its defaults; fw run would refuse it.
    """
    from omegaconf import OmegaConf

    if isinstance(overrides, str):
        raise FwError(f"overrides must be a list of 'KEY=VALUE' strings, e.g. [{overrides!r}], not one string")
    path, base = find_config(path)
    cwd = Path.cwd()
    schema = OmegaConf.create(SCHEMA)
    OmegaConf.set_struct(schema, True)
    OmegaConf.set_struct(schema.train.optimizer, False)  # each optimizer has its own parameters
    OmegaConf.set_struct(schema.dataset, False)  # so has each dataset: checked against its class (make_dataset)
    OmegaConf.set_struct(schema.sweep.params, False)  # keys are config keys: model.layers[0].units
    try:
        data, text = _read_yaml(path)
        cfg = _open_layers(_merge(schema, _shorthand(_absolute_paths(data, base)), f"{path}", text))
    except RecursionError:
        raise FwError(f"{path}: lists or mappings nested too deeply; a config is a few levels deep") from None
    try:
        for group in _groups(overrides):
            cfg = _open_layers(_apply_overrides(cfg, group, cwd))
    except RecursionError:
        raise FwError(
            f"{_nested(overrides)}: lists or mappings nested too deeply; a config is a few levels deep"
        ) from None
    _drop_inherited_download(cfg, overrides)
    set_by = [f"override {quote(o)}" for o in overrides if o.split("=", 1)[0].strip() == "weights"]
    cfg = _complete_weights(cfg, set_by[-1] if set_by else str(path))
    try:
        OmegaConf.resolve(cfg)
    except Exception as e:
        raise FwError(f"{path}: cannot resolve {_key_of(e) or 'a value'}: {_msg(e)}") from e
    validate(cfg, path, overrides, require_weights, text)
    return _absolute_paths(cfg, cwd)  # what interpolations built from the environment


def find_config(name) -> tuple[Path, Path]:
    """``(the config file, the folder its relative paths resolve against)`` for a path or a bundled name."""
    from ..data import bundled

    path = Path(name)
    text = str(name)
    bare = text and os.sep not in text and "/" not in text and path.suffix.lower() not in (".yaml", ".yml")
    found = bundled.config_path(text) if bare else None
    if os.path.lexists(path) or not bare:
        if found and not path.is_file():  # stat only: a FIFO is not opened
            what = "a folder" if path.is_dir() else "not a regular file"
            raise FwError(
                f"{text} here is {what}, and what is at a path wins over the bundled config of that name; "
                f"pass the bundled config's path, {found}, or run from another folder"
            )
        return path, path.parent
    if found is None:
        names = bundled.config_names()
        close = difflib.get_close_matches(text, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise FwError(
            f"config '{text}' not found: there is no file {text} in {Path.cwd()} and no bundled config of that name; "
            f"{hint}the bundled configs (fw configs) are: {', '.join(names)}"
        )
    return found, Path.cwd()


def _absolute_paths(data, base):
    """``data`` with every relative path in it made absolute against ``base`` (and ``~`` expanded).

    Values that are still interpolations are left alone: once resolved, what they
    built is made absolute against the current folder, by the last call in load_config.
    """
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(data, resolve=False) if OmegaConf.is_dict(data) else {}
    dataset = raw.get("dataset") if isinstance(raw.get("dataset"), dict) else {}
    keys = [*PATH_KEYS, *(("dataset", key) for key in dataset if dataset_path_key(key))]
    for section, key in keys:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if _relative(value):
            data[section][key] = _absolute(value, base)
    callbacks = raw.get("train", {}).get("callbacks") if isinstance(raw.get("train"), dict) else None
    for i, entry in enumerate(callbacks if isinstance(callbacks, list) else []):
        if isinstance(entry, dict) and _relative(entry.get("path")):  # a callback's `path`, e.g. csv_logger's
            data.train.callbacks[i].path = _absolute(entry["path"], base)
    plugins = raw.get("plugins")
    if isinstance(plugins, list) and any(_relative(p) and p.endswith(".py") for p in plugins):
        data.plugins = [_absolute(p, base) if _relative(p) and p.endswith(".py") else p for p in plugins]
    return data


def _relative(value):
    """A path string to make absolute: relative or ``~``, and not (yet) an interpolation."""
    return (
        isinstance(value, str)
        and value != ""
        and "${" not in value
        and (value.startswith("~") or not Path(value).is_absolute())
    )


def _absolute(value, base):
    return os.path.normpath(Path(base).absolute() / Path(value).expanduser())


def _read_yaml(path):
    """The file's mapping, read only if it is a regular file (a FIFO or device would block or never end)."""
    from omegaconf import OmegaConf

    from ..safeio.files import open_input

    hint = "pass the path of a YAML file such as configs/mnist_infer.yaml, or a bundled config's name (fw configs)"
    f = open_input(path, missing=f"config file not found: {path}; {_bundled_hint(path) or hint}", needs=hint)
    with f:
        try:
            text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise FwError(f"{path}: cannot read it as UTF-8 text ({e}); a config is a YAML file") from e
    if not text.strip():
        raise FwError(f"{path} is empty; start from a config such as configs/mnist_infer.yaml")
    try:
        data = OmegaConf.create(text)
    except Exception as e:
        mark = getattr(e, "problem_mark", None)
        if mark is None:
            raise FwError(f"{path}{_unmarked_problem(text, e)}") from e
        where = f":line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(e, "problem", None) or _msg(e)
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        tab = "; YAML indents with spaces, not tabs" if "\t" in line[: mark.column + 1] else ""
        raise FwError(f"{path}{where}: invalid YAML: {problem}{tab}") from e
    # omegaconf reads a lone string `just a string` as the mapping {just a string: null}.
    if not OmegaConf.is_dict(data) or (len(data) == 1 and _top_level(text) != "a mapping"):
        raise FwError(f"{path}: {_not_a_mapping(text)}")
    return data, text


def _bundled_hint(path):
    from ..data import bundled

    name = Path(path).stem
    if Path(path).name == f"{name}.yaml" and bundled.config_path(name):
        return f"for the bundled config of that name, give the name alone: {name}"
    return ""


def _top_level(text):
    """What the YAML document is at its top level: 'a mapping', 'a list', 'a number', 'a string', ..."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # the node tree only: no values are built
    except yaml.YAMLError:
        return None
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kinds = {"int": "a number", "float": "a number", "bool": "true or false", "null": "null"}
    return kinds.get(str(getattr(node, "tag", "")).rpartition(":")[2], "a string") if node else None


def _not_a_mapping(text):
    kind = _top_level(text) or "a mapping"
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    what = "a list" if kind == "a list" else f"{kind} ({shown!r})"
    return f"the top level must be a mapping of keys (dataset:, model:, ...), not {what}"


def _unmarked_problem(text, e):
    """':line N: ...' for a YAML error that carries no position (a number too long for Python, a lone scalar)."""
    if _top_level(text) not in (None, "a mapping", "a list"):
        return f": {_not_a_mapping(text)}"
    huge = _huge_number(text)
    if huge:
        line, digits = huge
        return f":line {line}: a number with {digits} digits; no setting needs one that long (quote it if it is text)"
    return f": invalid YAML: {_msg(e)}"


def _huge_number(text):
    """``(line, digits)`` of the first run of digits longer than Python reads as an int, or None."""
    limit = sys.get_int_max_str_digits() or None
    if limit is None:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        m = re.search(rf"\d{{{limit + 1},}}", line)
        if m:
            return number, len(m.group())
    return None


def _shorthand(update):
    """``optimizer: sgd`` means ``optimizer: {name: sgd}``, so ``train.optimizer.lr=...`` still works."""
    from omegaconf import OmegaConf

    train = update.get("train") if OmegaConf.is_dict(update) else None
    if OmegaConf.is_dict(train) and isinstance(train.get("optimizer"), str):
        train.optimizer = {"name": train.optimizer}
    return update


def _open_layers(cfg):
    """Each entry of model.layers (and train.callbacks) takes its own parameters, so an override may add one
    (model.layers[0].init=he)."""
    from omegaconf import OmegaConf

    for entries in (cfg.model.layers, cfg.train.callbacks):
        if OmegaConf.is_list(entries):
            OmegaConf.set_struct(entries, False)
    return cfg


def _complete_weights(cfg, source):
    """A weights mapping set where the file had ``weights: null`` lost the schema's keys: put their defaults back."""
    from omegaconf import OmegaConf

    if OmegaConf.is_dict(cfg.weights) and set(cfg.weights) != set(SCHEMA["weights"]):
        defaults = OmegaConf.create({"weights": SCHEMA["weights"]})
        OmegaConf.set_struct(defaults, True)
        cfg.weights = _merge(defaults, {"weights": cfg.weights}, source).weights
    return cfg


def _drop_inherited_download(cfg, overrides):
    """A weights.path from the command line is the user's own file: the file's url and sha256 are not for it.

    Otherwise a mistyped path would download the book's weights there (and
    report their accuracy as the user's), or warn that the user's file is not
    the book's.
    """
    keys = {item.split("=", 1)[0].strip() for item in overrides}
    if "weights.path" in keys and "weights" not in keys and cfg.weights is not None:
        for key in ("url", "sha256"):
            if f"weights.{key}" not in keys:
                cfg.weights[key] = None


def _nested(overrides):
    deepest = max(overrides, key=lambda o: o.count("[") + o.count("{"))
    return f"override {quote(deepest)}"


def _groups(overrides):
    """Consecutive plain ``KEY=VALUE`` overrides in one group, merged at once (10,000 of them take a second,
    not a minute); an indexed key, or one that swaps the network's form, on its own."""
    group = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if "[" in key or key in ("model.layers", "model.sizes") or "=" not in item or _not_text(item):
            if group:
                yield group
            yield [item]
            group = []
        else:
            group.append(item)
    if group:
        yield group


def _apply_overrides(cfg, group, cwd):
    """A group of plain overrides merged at once; if that fails, one by one, so the error names the culprit."""
    if len(group) > 1:
        from omegaconf import OmegaConf

        try:
            update = OmegaConf.from_dotlist(group)
            return _merge(cfg, _shorthand(_absolute_paths(update, cwd)), "overrides")
        except Exception:  # noqa: BLE001 - redone item by item below, for a message that names it
            pass
    for item in group:
        cfg = _apply_override(cfg, item, cwd)
    return cfg


def _apply_override(cfg, item, cwd):
    """``KEY=VALUE`` applied to ``cfg``; a key with an index (``model.layers[2].units``) edits that entry.

    A relative path in it is taken from ``cwd``, the folder the command runs in.
    """
    from omegaconf import OmegaConf

    key = item.split("=", 1)[0].strip()
    if key in ("model.layers", "model.sizes"):
        # The command line replaces the file's network, whichever form each uses.
        other = (
            ["model.sizes", "model.activation", "model.output_activation"]
            if key == "model.layers"
            else ["model.layers"]
        )
        for k in other:
            OmegaConf.update(cfg, k, None, merge=False)
    if "[" not in key:
        return _merge(cfg, _shorthand(_absolute_paths(_parse_override(item), cwd)), f"override {quote(item)}")
    value = _parse_override("_=" + item.split("=", 1)[1], item)._
    if key.startswith("model.layers[") and cfg.model.layers is None:
        raise FwError(
            f"override {quote(item)}: this config gives its network as model.sizes, not model.layers; "
            "`fw config CONFIG` prints it written out as model.layers, to save and edit (or set model.sizes=...)"
        )
    if key.startswith("plugins[") and _relative(value) and value.endswith(".py"):
        value = _absolute(value, cwd)
    _name_to_mapping(cfg, key)
    if re.fullmatch(r"train\.callbacks\[\d+\]\.path", key) and _relative(value):
        value = _absolute(value, cwd)
    try:
        OmegaConf.update(cfg, key, value, merge=True)
    except Exception as e:
        unknown = "not in struct" in str(e) or isinstance(e, (KeyError, AttributeError))
        what = f"unknown key '{_key_of(e) or key}'{_suggest(_key_of(e) or key)}" if unknown else _msg(e)
        raise FwError(f"override {quote(item)}: {what}") from e
    return cfg


def _name_to_mapping(cfg, key):
    """``model.layers[1].eps=...`` where entry 1 is the bare name
    ``batch_norm``: make it ``{name: batch_norm}`` first."""
    m = re.match(r"model\.layers\[(\d+)\]\.", key)
    layers = cfg.model.layers
    if m and layers is not None and int(m.group(1)) < len(layers) and isinstance(layers[int(m.group(1))], str):
        layers[int(m.group(1))] = {"name": layers[int(m.group(1))]}


def _parse_override(item, shown=None):
    from omegaconf import OmegaConf

    shown = shown or item
    if _not_text(item):
        raise FwError(
            f"override {quote(item.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace'))}: holds bytes that "
            "are not UTF-8 text; fw reads paths and values as text, so rename the file or folder"
        )
    if "=" not in item:
        raise FwError(f"override {quote(item)} is not KEY=VALUE, e.g. batch_size=1000 or model.sizes=[784,100,10]")
    try:
        return OmegaConf.from_dotlist([item])
    except RecursionError:
        raise FwError(
            f"override {quote(shown)}: lists or mappings nested too deeply; a config is a few levels deep"
        ) from None
    except Exception as e:
        if huge := _huge_number(item):
            raise FwError(
                f"override {quote(shown)}: a number with {huge[1]} digits; no setting needs one that long"
            ) from e
        hint = (
            "; quote an override that has spaces: 'model.sizes=[784, 100, 10]'"
            if item.count("[") != item.count("]")
            else ""
        )
        raise FwError(f"override {quote(shown)}: cannot parse the value: {_msg(e)}{hint}") from e


def _not_text(item):
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:  # bytes the shell passed that are not UTF-8 (Python keeps them as surrogates)
        return True
    return False


def _merge(base, update, source, text=None):
    """``update`` merged over ``base``; ``text``: the YAML ``update`` came from, to name the line of an unknown key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    try:
        return OmegaConf.merge(base, update)
    except ConfigKeyError as e:
        key = _key_of(e) or str(e.key)
        raise FwError(f"{source}{line_of(text, key) if text else ''}: unknown key '{key}'{_suggest(key)}") from e
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


def _key_of(e):
    return getattr(e, "full_key", None) or None


def _msg(e):
    """omegaconf appends 'full_key: ...' detail lines; keep the first line only."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
