"""Every value checked once the config is merged, so a bad value fails before any work starts.

Each key's type and range come from its field in ``schema`` (``check_section``);
here are the checks that span keys. A failure names the key, the source that
set it (the file, or the override that last set it or a parent of it) and what
the value must be.
"""

import re

from ..errors import FwError
from .schema import Config, check_section, dataset_path_key
from .sweep import check_sweep


def validate(cfg, path, overrides=(), require_weights=True, text=None):
    """Check ``cfg`` (merged and resolved); ``require_weights=False`` accepts no weights source (fw config).

    ``text``: the file's YAML, so an error names the line that set the key.
    """
    from omegaconf import OmegaConf

    check = _Checker(OmegaConf.to_container(cfg), path, overrides, text)
    c = check.config
    check_section(check.fail, Config, c)
    for key, value in c["dataset"].items():
        if dataset_path_key(key) and value is not None and not isinstance(value, str):
            check.fail(f"dataset.{key}", "a path or null")
        if dataset_path_key(key) and isinstance(value, str):
            _path(check, f"dataset.{key}", value)
    _model(check, c["model"])
    _weights(check, c["weights"], require_weights)
    check_sweep(check, c["sweep"])


class _Checker:
    def __init__(self, config, path, overrides, text=None):
        self.config, self.path, self.overrides, self.text = config, path, overrides, text

    def source_of(self, key):
        """The last override that set ``key`` (or a parent of it),
        else the file (and the line, when it sets the key)."""
        dotted = re.sub(r"\[(\d+)\]", r".\1", key) + "."
        for o in reversed(self.overrides):
            if dotted.startswith(re.sub(r"\[(\d+)\]", r".\1", o.split("=", 1)[0].strip()) + "."):
                return f"override {quote(o)}"
        return f"{self.path}{line_of(self.text, dotted[:-1]) if self.text else ''}"

    def fail(self, key, want):
        value = self.config
        for part in key.split("."):
            value = value[int(part) if isinstance(value, list) else part] if isinstance(value, (dict, list)) else value
        shown = re.sub(r"\.(\d+)", r"[\1]", key)
        raise FwError(f"{self.source_of(key)}: {shown} must be {want}, got {_short(value)}")


def _model(check, m):
    """A network is model.layers or the model.sizes shorthand, not both."""
    if m["layers"] is not None:
        for key in ("sizes", "activation", "output_activation"):
            if m[key] is not None:
                raise FwError(
                    f"{check.source_of('model.' + key)}: model.layers and model.{key} are both set; model.{key} is "
                    f"shorthand for model.layers, so give one of them (set model.{key}=null, or drop model.layers)"
                )


def _weights(check, w, require_weights):
    if w is None:
        return
    if w["path"] is not None:
        _path(check, "weights.path", w["path"])
    if require_weights and w["path"] is None and w["url"] is None:
        check.fail("weights.path", "a file path (or set weights.url to download it, or weights=null)")
    if w["sha256"] is not None and not (isinstance(w["sha256"], str) and re.fullmatch(r"[0-9a-fA-F]{64}", w["sha256"])):
        quote = " (in quotes, or YAML reads a hash of digits as a number)" if not isinstance(w["sha256"], str) else ""
        check.fail("weights.sha256", f"64 hex digits{quote} or null")


def quote(item, limit=60) -> str:
    """An override as error lines quote it (see loading.quote)."""
    return repr(item if len(item) <= limit else f"{item[: limit - 10]}...{item[-7:]}")


def line_of(text, key):
    """``:line N``, where the YAML ``text`` sets ``key`` (``model.layers.0.units``); "" if it does not set it."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # the node tree only, with positions: no values are built
    except (yaml.YAMLError, RecursionError):
        return ""
    for part in key.split("."):
        if isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if k.value == part]
            if not found:
                return ""
            line, node = found[-1][0].start_mark.line + 1, found[-1][1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return ""
    return f":line {line}"


def _path(check, key, value):
    """A path the file system can hold: no name over NAME_MAX bytes, not over PATH_MAX in all (else Errno 36 later)."""
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in value.split("/")), default=0)
    if longest > _NAME_MAX or len(value.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise FwError(
            f"{check.source_of(key)}: {key} {value[:40]!r}... "
            f"is too long for the file system (a name of {longest} bytes; "
            f"at most {_NAME_MAX} a name and {_PATH_MAX} in all); choose a shorter path"
        )


_NAME_MAX, _PATH_MAX = 255, 4096


def _short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
