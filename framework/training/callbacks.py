"""``train.callbacks``: made from the config, called by the Trainer, their state kept in checkpoints.

A callback is plugin code: whatever it raises becomes one line naming it
(``train.callbacks[0] (early_stopping): on_epoch_end failed: ...``). The CLI's
own output (epoch lines, ``--json``, the progress bar) runs as callbacks too,
after the config's.
"""

import numpy as np

from ..config.assemble import create
from ..core.callback import Callback
from ..errors import FwError
from ..safeio.untrusted import describe_exception


def make_callbacks(cfg, registry) -> list:
    """``[(label, callback)]`` for ``train.callbacks``, each checked against its class's parameters."""
    made = []
    for i, entry in enumerate(cfg.train.callbacks):
        key = f"train.callbacks[{i}]"
        cb = create(registry, "callbacks", entry, key)
        made.append((f"{key} ({cb.name})", cb))
    return made


def labelled(callbacks) -> list:
    """``[(label, callback)]`` for callbacks made in code (the CLI's): labelled by their class."""
    return [(type(cb).__name__, cb) for cb in callbacks]


def _takes_logs(method) -> bool:
    """Does ``on_batch_end`` take ``logs``? One written before it was passed takes (epoch, batch, batches)."""
    import inspect

    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return True
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 4


class Callbacks:
    """The callbacks of one ``fit``, called in order."""

    def __init__(self, entries):
        self.entries = list(entries)
        self.per_batch = [
            (label, cb, _takes_logs(cb.on_batch_end))
            for label, cb in self.entries
            if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        self.network = None

    def train_begin(self, network, logs):
        self.network = network
        for label, cb in self.entries:
            cb.network = network
            call(label, cb, "on_train_begin", dict(logs))

    def batch_end(self, epoch, batch, batches, logs):
        for label, cb, takes_logs in self.per_batch:
            call(label, cb, "on_batch_end", epoch, batch, batches, *([dict(logs)] if takes_logs else []))

    def epoch_end(self, epoch, logs):
        """Call every callback; the label of the first that asked to stop, else None."""
        stop, layout = None, self._layout()
        for label, cb in self.entries:
            answer = call(label, cb, "on_epoch_end", epoch, dict(logs))
            self._check_weights(label, cb, "on_epoch_end", layout)
            if _stops(label, cb, answer) and stop is None:
                stop = label
        return stop

    def train_end(self, logs):
        """``logs`` is shared: a callback may set ``weights_epoch`` for the ones after it and for the caller."""
        layout, last, start = self._layout(), logs["epoch"], logs["weights_epoch"]
        for label, cb in self.entries:
            call(label, cb, "on_train_end", logs)
            self._check_weights(label, cb, "on_train_end", layout)
            epoch = logs.get("weights_epoch", logs)  # logs itself: the key was removed
            if not (type(epoch) is int and 1 <= epoch <= last or epoch == start):
                done = (
                    "removed logs['weights_epoch']"
                    if epoch is logs
                    else f"set logs['weights_epoch'] to {repr(epoch)[:40]}"
                )
                raise FwError(
                    f"{_name(label, cb)}: its on_train_end {done}; "
                    f"it must be the number of an epoch trained, 1 to {last}"
                )
        return logs

    def _layout(self):
        """``{state_dict key: (shape, dtype)}`` of the network's weights, as training left them."""
        if self.network is None:
            return None
        return {k: (a.shape, a.dtype) for k, a in self.network.state_dict().items() if isinstance(a, np.ndarray)}

    def _check_weights(self, label, cb, method, layout):
        """A callback may change the weights (early_stopping puts the best back), but not their shapes and
        dtypes, and not to NaN or Inf: fw train writes what the network holds after the last one."""
        if layout is None:
            return
        net, now = self.network, self.network.state_dict()
        for key, (shape, dtype) in layout.items():
            a = now.get(key)
            if not (isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype):
                got = (
                    "nothing"
                    if a is None
                    else f"{a.dtype} {a.shape}"
                    if isinstance(a, np.ndarray)
                    else f"a {type(a).__name__}"
                )
                raise FwError(
                    f"{_name(label, cb)}: its {method} replaced {_weight(net, key)} ({dtype} {shape}) with {got}; "
                    "fw train writes no such weights: fix the callback"
                )
        if bad := net.non_finite():
            raise FwError(
                f"{_name(label, cb)}: its {method} left NaN or Inf in {net.labels[bad[0]]}'s '{bad[1]}'; "
                "fw train writes no such weights: fix the callback"
            )


def _weight(net, key):
    """``model.layers[0] (dense)'s 'W'`` for the state_dict key ``0.W``."""
    index, name = key.split(".", 1)
    return f"{net.labels[int(index)]}'s '{name}'"


def _stops(label, cb, answer) -> bool:
    """``on_epoch_end``'s answer: True stops training, False or None goes on; anything else is refused
    (the truth of an array or of a plugin's object is no clear answer, and may even raise)."""
    if answer is None or isinstance(answer, bool | np.bool_):
        return bool(answer)
    raise FwError(
        f"{_name(label, cb)}: on_epoch_end returned a {type(answer).__qualname__}; "
        "return True to stop training, or False or None to go on"
    )


def call(label, cb, method, *args):
    """``cb.method(*args)``; whatever it raises (but Ctrl-C) becomes an FwError naming the callback."""
    try:
        return getattr(cb, method)(*args)
    except FwError as e:
        raise FwError(f"{_name(label, cb)}: {e}") from e
    except ValueError as e:  # the callback's own complaint, e.g. about its monitor: its message says it
        raise FwError(f"{_name(label, cb)}: {describe_exception(e, 300, prefix=False)}") from e
    except Exception as e:  # a plugin's code: name it, whatever it raised
        raise FwError(f"{_name(label, cb)}: {method} failed: {describe_exception(e, 300)}") from e


def _name(label, cb):
    """The label, with the class's module for code outside fw: ``train.callbacks[0] (print_lr, my_plugin.PrintLR)``."""
    cls = type(cb)
    if cls.__module__.startswith("framework.") or not label.endswith(")"):
        return label
    return f"{label[:-1]}, {cls.__module__}.{cls.__qualname__})"


# -- state in checkpoints -----------------------------------------------------------------


def save_state(entries):
    """``(meta, arrays)``: each callback's ``state()`` as JSON, its numpy arrays apart (``cb.<i>.<n>``)."""
    meta, arrays = [], {}
    for i, (label, cb) in enumerate(entries):
        meta.append(_encode(call(label, cb, "state"), f"cb.{i}.", arrays, label))
    return meta, arrays


def load_state(entries, meta, arrays, path):
    """Give each callback back the state that ``save_state`` wrote into the checkpoint at ``path``."""
    meta = meta if isinstance(meta, list) else []
    if len(meta) != len(entries):
        raise FwError(
            f"{path} holds the state of {len(meta)} callbacks, but train.callbacks has {len(entries)}; "
            "delete the checkpoint to start over"
        )
    for (label, cb), state in zip(entries, meta):
        call(label, cb, "load_state", _decode(state, arrays, path))


def _encode(value, prefix, arrays, label):
    if isinstance(value, np.ndarray):
        key = f"{prefix}{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise FwError(f"{label}: state() must use string keys (a checkpoint stores it as JSON)")
        return {k: _encode(v, prefix, arrays, label) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, prefix, arrays, label) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise FwError(
        f"{label}: state() holds a {type(value).__name__}, which a checkpoint cannot keep; "
        "use numbers, strings, lists, dicts and numpy arrays"
    )


def _decode(value, arrays, path):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            if value["__array__"] not in arrays:
                raise FwError(
                    f"{path} lacks the array {value['__array__']!r} of a callback's state; delete it to start over"
                )
            return arrays[value["__array__"]]
        return {k: _decode(v, arrays, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, path) for v in value]
    return value
