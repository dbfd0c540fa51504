"""The run record: what a finished ``fw train`` leaves beside its weights, for ``fw compare`` and for people.

Named after the weights, like ``NAME.dataset.json``, so that a folder holds
several runs and no file of the user's is in the way:

- ``NAME.config.yaml``: the resolved config it trained (what ``fw config``
  prints), under the marker line ``# The resolved config of: fw train ...``;
- ``NAME.metrics.jsonl``: one JSON object per epoch, the ``fw train --json`` lines.

fw replaces a record it wrote (known by that marker, and by lines of epochs),
refuses any other file at those names unless ``--force`` is given, and never
writes over the config or the data it uses (``user_files.py``). Records of
fw 0.1, ``config.yaml`` and ``metrics.jsonl``, are still read.

A record is read as untrusted: bounded in size, its YAML without aliases and
nested at most ``MAX_DEPTH`` deep, its epochs objects of numbers.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..core.callback import METRICS as METRIC_NAMES
from ..errors import FwError
from ..safeio.files import open_regular, write_output
from . import user_files

CONFIG, METRICS = ".config.yaml", ".metrics.jsonl"
#: The names of the records fw 0.1 wrote, one run per folder; still read.
OLD_CONFIG, OLD_METRICS = "config.yaml", "metrics.jsonl"
#: The first line of every config record fw writes: what tells it from a user's config.
MARK = "# The resolved config of: fw train"
#: Larger files are not run records fw wrote: a resolved config is a few KB (PyYAML reads 256 KiB in
#: 2 to 6 s), and 10,000 epochs are under 3 MB.
MAX_CONFIG_BYTES, MAX_BYTES = 256 << 10, 64 << 20
#: A resolved config is a few levels deep.
MAX_DEPTH = 32
#: No run trains more epochs (and an integer past 1e308 cannot even be drawn: matplotlib makes floats of them).
MAX_EPOCH = 10**9
#: The keys of fw's epoch lines (``Epoch.logs``): a metrics file with others was not written by fw.
KEYS = ("epoch", *METRIC_NAMES, "seconds", "lr")


@dataclass
class Run:
    """A run record, read back: its folder, its resolved config (plain data) and one dict per epoch."""

    folder: Path
    config: dict
    epochs: list


def paths(weights_path) -> tuple[Path, Path]:
    """``runs/x/w.npz`` -> ``(runs/x/w.config.yaml, runs/x/w.metrics.jsonl)``."""
    w = Path(weights_path).expanduser()
    return w.with_name(w.stem + CONFIG), w.with_name(w.stem + METRICS)


def check(cfg, config_path=None, force=False):
    """Before training: refuse (one line) a record that would replace the config or data in use, or a foreign file."""
    used, elsewhere = user_files.in_use(cfg, config_path), "set another weights.path (the record is named after it)"
    for path, ours in zip(paths(cfg.weights.path), (_is_config_record, _is_metrics_record)):
        user_files.check(path, "the run record", used=used, force=force, ours=ours, elsewhere=elsewhere)


def write(cfg, history, command, *, config_path=None, force=False):
    """Write the record of a run whose config is ``cfg`` and whose epochs are ``history`` (``Epoch`` objects)."""
    from omegaconf import OmegaConf

    check(cfg, config_path, force)
    config, metrics = paths(cfg.weights.path)
    text = f"{MARK} {command}".rstrip() + "\n" + OmegaConf.to_yaml(cfg)
    write_output(config, lambda f: f.write(text.encode()))
    lines = "".join(json.dumps(e.logs()) + "\n" for e in history)
    write_output(metrics, lambda f: f.write(lines.encode()))
    return config.parent


# -- finding records ---------------------------------------------------------------------------


def of_weights(weights_path):
    """The record of these weights, ``(config, metrics)``, or None: ``NAME.*``, else fw 0.1's records of them."""
    pair = paths(weights_path)
    if all(p.is_file() for p in pair):
        return pair
    old = _old_record(pair[0].parent)
    if old:
        recorded = (_config(old[0]).get("weights") or {}).get("path")
        if recorded and Path(str(recorded)).expanduser() == Path(weights_path).expanduser():
            return old
    return None


def of_file(path):
    """The record that ``path`` (a ``NAME.config.yaml`` or ``NAME.metrics.jsonl``) belongs to, or None."""
    path = Path(path)
    for a, b in ((CONFIG, METRICS), (METRICS, CONFIG)):
        if path.name.endswith(a) and len(path.name) > len(a):
            other = path.with_name(path.name[: -len(a)] + b)
            return ((path, other) if a == CONFIG else (other, path)) if other.is_file() else None
    return _old_record(path.parent) if path.name in (OLD_CONFIG, OLD_METRICS) else None


def in_folder(folder):
    """The one record in ``folder``, ``(config, metrics)``; none, or several, is a one-line error."""
    folder = Path(folder)
    found = [pair for c in sorted(folder.glob("*" + CONFIG)) if (pair := of_file(c))]
    if len(found) > 1:
        names = ", ".join(c.name for c, _ in found)
        raise FwError(
            f"{folder} holds the records of {len(found)} runs ({names}); name one, e.g. fw compare {found[0][0]}"
        )
    if found:
        return found[0]
    old = _old_record(folder)
    if old:
        return old
    raise FwError(
        f"{folder} has no run record (NAME{CONFIG} and NAME{METRICS}): "
        "fw train writes one beside its weights when it finishes"
    )


def _old_record(folder):
    """fw 0.1's record in ``folder``, or None: a ``config.yaml`` is the user's unless it has fw's marker line."""
    pair = folder / OLD_CONFIG, folder / OLD_METRICS
    return pair if pair[1].is_file() and _is_config_record(pair[0]) else None


# -- reading ----------------------------------------------------------------------------------


def read(config_path, metrics_path) -> Run:
    """The record in these two files; a damaged or hostile one is a one-line error naming the file."""
    config = _config(Path(config_path))
    return Run(Path(config_path).parent, config, _epochs(Path(metrics_path)))


def _config(path):
    config = _load_yaml(path)
    if not isinstance(config, dict):
        raise FwError(f"{path}: not a config (its top level is not a mapping)")
    return config


def _epochs(path, keys=None):
    """One dict per line: an integer ``epoch`` (1 or more) and numbers; with ``keys``, only those keys."""
    epochs = []
    for number, line in enumerate(_text(path, MAX_BYTES).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise FwError(f"{where}: not JSON ({' '.join(str(e).split())[:100]})") from None
        if not isinstance(entry, dict):
            raise FwError(f"{where}: each line must be a JSON object, one epoch's metrics")
        epoch = entry.get("epoch")
        if not (type(epoch) is int and 1 <= epoch <= MAX_EPOCH):
            raise FwError(
                f"{where}: 'epoch' is {_shown(epoch)}; each line needs an epoch number from 1 to {MAX_EPOCH:,}"
            )
        for key, value in entry.items():
            if type(value) not in (int, float) or (type(value) is int and abs(value) > 1e300):  # NaN may be a val_loss
                what = "too large" if type(value) is int else "not a number"
                raise FwError(f"{where}: '{_cut(key)}' is {_shown(value)}, {what}; a run record holds numbers")
            if keys is not None and key not in keys:
                raise FwError(f"{where}: '{_cut(key)}' is not a metric fw records")
        epochs.append(entry)
    return epochs


def _shown(value):
    return "missing" if value is None else _cut(json.dumps(value))


def _cut(text, n=40):
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


def _text(path, limit):
    try:
        with open_regular(path) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise FwError(f"{path}: cannot read it ({e.strerror or e})") from e
    if len(data) > limit:
        raise FwError(f"{path} is larger than {limit >> 10} KiB: not a run record fw wrote")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FwError(f"{path}: not UTF-8 text ({e})") from e


class _Refused(yaml.YAMLError):
    pass


class _RecordLoader(yaml.SafeLoader):
    """Plain data only (nothing in the file runs), and nothing fw never writes in a record:
    an alias (a billion laughs expands 9 aliases per line into billions of values) or deep nesting."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused("it uses an alias (*name), which fw never writes in a run record")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(f"it nests mappings or lists more than {MAX_DEPTH} deep; a config is a few levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _load_yaml(path):
    try:
        return yaml.load(_text(path, MAX_CONFIG_BYTES), Loader=_RecordLoader)  # noqa: S506 (a SafeLoader)
    except _Refused as e:
        raise FwError(f"{path}: not a run record fw wrote: {e}") from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: an integer of more than 4300 digits, a bad date
        raise FwError(f"{path}: invalid YAML ({' '.join(str(e).split())[:200]})") from None


# -- what fw wrote ---------------------------------------------------------------------------


def _is_config_record(path) -> bool:
    try:
        with open_regular(path) as f:
            return f.readline(len(MARK) + 1).decode("utf-8", "replace").startswith(MARK)
    except OSError:
        return False


def _is_metrics_record(path) -> bool:
    try:
        _epochs(path, KEYS)
    except FwError:
        return False
    return True
