"""Checkpoints: what ``--resume`` needs to end with the weights an uninterrupted run gets.

One ``.npz`` beside the weights, written atomically after every epoch:

- ``net.<name>``: the network's parameters and buffers (``net.0.W``, ...);
- ``slot.<slot>.<parameter>``: the optimizer's per-parameter state
  (``slot.m.0.W``), checked against the parameter of that name on resume;
- ``opt.<key>``: any other optimizer state array;
- ``cb.<i>.<n>``: the arrays in the state of ``train.callbacks[i]``;
- ``meta``: JSON with the config's fingerprint, a digest of the train split's
  examples (``data_digest``), the history, the shuffling RNG's state, the lr,
  the optimizer's other (scalar) state and the callbacks' state
  (``callbacks.save_state``).
"""

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..data.weights import load_weights
from ..errors import FwError
from ..safeio.files import open_regular, write_output
from ..safeio.npz import numeric, read_npz
from . import callbacks


def fingerprint(cfg) -> str:
    """What a checkpoint must agree with to be resumed: the dataset, the model and the train section."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg)
    return json.dumps({"dataset": c["dataset"]["name"], "model": c["model"], "train": c["train"]}, sort_keys=True)


def data_digest(x, t) -> str:
    """The SHA-256 of the train split's arrays (about 0.1 s for Fashion-MNIST's 188 MB).

    The fingerprint names the dataset but cannot see its files or all its
    options (a CSV edited, a ``limit``, another ``root``): a run resumed on
    other examples would carry on silently. The arrays themselves can tell.
    """
    digest = hashlib.sha256()
    for a in (x, t):
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        for i in range(0, len(a), 4096):  # a view that is not contiguous is copied a block at a time
            digest.update(memoryview(np.ascontiguousarray(a[i : i + 4096])).cast("B"))
    return digest.hexdigest()


def check_data(trainer, digest):
    """Refuse to go on training a resumed run on examples other than those it started with."""
    path, saved = trainer.resumed
    if saved is not None and saved != digest:
        raise FwError(
            f"{path} was written while training on other examples: the train split of dataset "
            f"'{trainer.cfg.dataset.name}' now holds different data (its files, or options such as limit, "
            "changed); restore them, or delete the checkpoint to start over"
        )


def save(trainer, path):
    arrays = {f"net.{k}": v for k, v in trainer.net.state_dict().items()}
    state = dict(trainer.optimizer.state())
    for slot, table in state.pop("slots", {}).items():
        arrays.update({f"slot.{slot}.{name}": a for name, a in table.items()})
    scalars = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray) and value.ndim:
            arrays[f"opt.{key}"] = value
        else:
            scalars[key] = value.item() if isinstance(value, np.generic | np.ndarray) else value
    meta_callbacks, callback_arrays = callbacks.save_state(trainer.callbacks)
    arrays.update(callback_arrays)
    meta = {
        "callbacks": meta_callbacks,
        "fingerprint": fingerprint(trainer.cfg),
        "data": trainer.data_digest,
        "history": [asdict(e) for e in trainer.history],
        "rng": trainer.rng.bit_generator.state,
        "lr": trainer.optimizer.lr,
        "optimizer": scalars,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    write_output(path, lambda f: np.savez(f, **arrays))


def restore(trainer, path) -> list[dict]:
    """Put the checkpoint at ``path`` back into ``trainer``: parameters, optimizer state and shuffling.

    Returns the history: one dict of metrics per epoch done.
    """
    path = Path(path)
    if not path.is_file():
        raise FwError(f"no checkpoint to resume from at {path}; run fw train without --resume to start")
    meta, net_state, slots, others, callback_arrays = _read(path)
    _check_fingerprint(meta, trainer.cfg, path)
    data = meta.get("data")  # None: written before fw kept it
    if data is not None and not isinstance(data, str):
        _damaged(path, "meta 'data'", "is not the digest of the examples it was trained on")
    trainer.resumed = path, data  # checked by fit, which has the examples (check_data)
    history = _history(meta, trainer.cfg.train.epochs, path)
    try:
        load_weights(trainer.net, net_state, path)
    except FwError as e:
        raise FwError(f"{e}; delete the checkpoint to start over") from e
    _check_slots(slots, trainer.net.parameters(), path)
    scalars = meta.get("optimizer") or {}
    if not isinstance(scalars, dict):
        _damaged(path, "meta 'optimizer'", "is not a mapping")
    try:
        trainer.optimizer.load_state({**scalars, **others, **({"slots": slots} if slots else {})})
    except Exception as e:  # noqa: BLE001 - a hand-edited step count, say: the optimizer's own check
        _damaged(path, "optimizer state", f"does not load into '{trainer.optimizer.name}' ({type(e).__name__}: {e})")
    try:
        trainer.rng.bit_generator.state = meta["rng"]
    except (KeyError, TypeError, ValueError):
        _damaged(path, "meta 'rng'", f"is not a state of numpy's {type(trainer.rng.bit_generator).__name__} generator")
    callbacks.load_state(trainer.callbacks, meta.get("callbacks"), callback_arrays, path)
    lr = meta.get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr)):
        _damaged(path, "meta 'lr'", f"is {str(lr)[:40]!r}, not a finite number")
    if lr is not None and trainer.optimizer.lr is not None:
        trainer.optimizer.lr = lr
    return history


def _damaged(path, what, problem):
    raise FwError(f"{path}: the checkpoint's {what} {problem}; delete the checkpoint to start over")


def _check_fingerprint(meta, cfg, path):
    saved, now = meta.get("fingerprint"), fingerprint(cfg)
    try:
        saved_cfg = json.loads(saved) if isinstance(saved, str) else None
    except ValueError:
        saved_cfg = None
    if not isinstance(saved_cfg, dict):
        _damaged(path, "meta 'fingerprint'", "is damaged (it should be the config it was trained with, as JSON)")
    if saved != now:
        raise FwError(
            f"{path} was written for a different dataset, model or train config "
            f"({_differences(saved_cfg, json.loads(now)) or 'the same keys, written differently'}); "
            "restore that config, or delete the checkpoint to start over"
        )


def _history(meta, epochs, path) -> list[dict]:
    """One dict of numbers per epoch done, epochs 1, 2, ... and no more than the config's."""
    history = meta.get("history")
    if not isinstance(history, list) or len(history) > epochs:
        got = f"{len(history)} entries" if isinstance(history, list) else type(history).__name__
        _damaged(path, "meta 'history'", f"holds {got}, for a run of {epochs} epochs")
    for i, entry in enumerate(history):
        numbers = isinstance(entry, dict) and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in entry.values()
        )
        if not numbers or entry.get("epoch") != i + 1:
            _damaged(path, f"meta 'history'[{i}]", f"is {str(entry)[:60]}, not the metrics of epoch {i + 1}")
    return history


def _read(path):
    """``(meta, network arrays, {slot: {parameter: array}}, other optimizer arrays, callback arrays)``, every size
    checked first."""

    def names(keys, source):
        strays = [k for k in keys if k != "meta" and not k.startswith(("net.", "slot.", "opt.", "cb."))]
        if strays or "meta" not in keys:
            what = f"holds {strays[0][:40]!r}" if strays else "has no meta"
            raise FwError(f"{source}: {what}; {_LAYOUT}")

    try:
        with open_regular(path) as f:
            arrays = read_npz(f, path, check_names=names, allowed=_allowed, layout=_LAYOUT, kind="checkpoints")
        meta = json.loads(str(arrays.pop("meta")))
    except FwError as e:
        raise FwError(f"{e}; delete the checkpoint to start over") from e
    except (OSError, ValueError) as e:
        raise FwError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            "delete it to start over"
        ) from e
    if not isinstance(meta, dict):
        raise FwError(f"{path}: not a readable checkpoint (its meta is not a mapping); delete it to start over")
    net_state = {k[4:]: a for k, a in arrays.items() if k.startswith("net.")}
    others = {k[4:]: a for k, a in arrays.items() if k.startswith("opt.")}
    callback_arrays = {k: a for k, a in arrays.items() if k.startswith("cb.")}
    slots = {}
    for k, a in arrays.items():
        if k.startswith("slot."):
            slot, _, name = k[5:].partition(".")
            slots.setdefault(slot, {})[name] = a
    return meta, net_state, slots, others, callback_arrays


_LAYOUT = "a checkpoint holds net.*, slot.*, opt.* and cb.* arrays and its meta, as fw train writes it"


def _allowed(key, dtype):
    return numeric(key, dtype) or (key == "meta" and dtype.kind == "U")


def _check_slots(slots, params, path):
    """Every slot holds one array per parameter, named, shaped and typed like it."""
    shapes = {name: (p.shape, p.dtype) for name, p in params.items()}
    for slot, table in slots.items():
        missing = [name for name in shapes if name not in table]
        extra = [name for name in table if name not in shapes]
        if missing or extra:
            what = (
                f"has no '{slot}' for parameter {missing[0]}"
                if missing
                else f"has '{slot}' for {extra[0]}, which the network lacks"
            )
            raise FwError(f"{path}: the optimizer state {what}; delete the checkpoint to start over")
        for name, a in table.items():
            if (a.shape, a.dtype) != shapes[name]:
                raise FwError(
                    f"{path}: optimizer state '{slot}' of parameter {name} has shape {a.shape} {a.dtype}, but the "
                    f"parameter is {shapes[name][0]} {shapes[name][1]}; delete the checkpoint to start over"
                )


def _differences(saved, now, prefix=""):
    """``train.epochs: checkpoint 10, config 8; ...`` for the keys that differ."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b, f"{prefix}{key}.")
            out += [inner] if inner else []
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, config {b!r}")
    return "; ".join(out)
