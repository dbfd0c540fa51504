"""The run record: what a finished ``fw train`` leaves beside its weights, for ``fw compare`` and for people.

- ``config.yaml``: the resolved config it trained (what ``fw config`` prints),
  so ``fw train config.yaml --force`` trains the same run again;
- ``metrics.jsonl``: one JSON object per epoch, the ``fw train --json`` lines.

One run per folder: a second weights file in the same folder replaces the
record, with a warning.
"""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import FwError, FwWarning
from ..safeio.files import open_regular, write_output

CONFIG, METRICS = "config.yaml", "metrics.jsonl"
#: Larger files are not run records fw wrote (a record of 10,000 epochs is under 3 MB).
MAX_BYTES = 64 << 20


@dataclass
class Run:
    """A run record, read back: its folder, its resolved config (plain data) and one dict per epoch."""

    folder: Path
    config: dict
    epochs: list


def folder_of(cfg) -> Path:
    return Path(cfg.weights.path).expanduser().parent


def write(cfg, history, command=""):
    """Write the record of a run whose config is ``cfg`` and whose epochs are ``history`` (``Epoch`` objects)."""
    from omegaconf import OmegaConf

    folder = folder_of(cfg)
    _warn_if_another_run(folder, cfg)
    header = f"# The resolved config of: fw train {command}\n" if command else ""
    text = header + OmegaConf.to_yaml(cfg)
    write_output(folder / CONFIG, lambda f: f.write(text.encode()))
    lines = "".join(json.dumps(e.logs()) + "\n" for e in history)
    write_output(folder / METRICS, lambda f: f.write(lines.encode()))
    return folder


def _warn_if_another_run(folder, cfg):
    path = folder / CONFIG
    if not path.is_file():
        return
    try:
        other = (_load_yaml(path).get("weights") or {}).get("path")
    except (FwError, AttributeError):
        return
    if other and Path(other) != Path(cfg.weights.path):
        warnings.warn(
            f"{path} was the run record of {other}; this run's replaces it (give each run its own folder)",
            FwWarning,
            stacklevel=3,
        )


def read(folder) -> Run:
    """The record in ``folder``; a missing or damaged one is a one-line error saying which file."""
    folder = Path(folder)
    for name in (CONFIG, METRICS):
        if not (folder / name).is_file():
            raise FwError(f"{folder} has no {name}: it is not a run record (fw train writes one beside its weights when it finishes)")
    config = _load_yaml(folder / CONFIG)
    if not isinstance(config, dict):
        raise FwError(f"{folder / CONFIG}: not a config (its top level is not a mapping)")
    epochs = []
    for number, line in enumerate(_text(folder / METRICS).splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as e:
            raise FwError(f"{folder / METRICS}:{number}: not JSON ({e})") from e
        if not (isinstance(entry, dict) and isinstance(entry.get("epoch"), int)):
            raise FwError(f"{folder / METRICS}:{number}: each line must be an object with an integer epoch")
        epochs.append(entry)
    return Run(folder, config, epochs)


def _text(path):
    try:
        with open_regular(path) as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise FwError(f"{path}: cannot read it ({e.strerror or e})") from e
    if len(data) > MAX_BYTES:
        raise FwError(f"{path} is larger than {MAX_BYTES >> 20} MiB: not a run record fw wrote")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FwError(f"{path}: not UTF-8 text ({e})") from e


def _load_yaml(path):
    import yaml

    try:
        return yaml.safe_load(_text(path))  # plain data only: nothing in the file runs
    except yaml.YAMLError as e:
        raise FwError(f"{path}: invalid YAML ({' '.join(str(e).split())[:200]})") from e
