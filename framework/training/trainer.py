"""fw train's loop: learn a network on its dataset's train split (the book's chapters 4 to 6).

The Trainer runs the one ``Network`` that ``fw run`` uses: ``forward`` with
``train=True``, the loss, ``backward`` through the layers in reverse, and the
optimizer over every layer's ``params``, with the lr the schedule gives. It
knows no particular layer. Epochs of shuffled mini-batches each end with a
checkpoint (``checkpoint.py``), so Ctrl-C loses at most the epoch in progress;
``output.py`` writes the weights. ``train.callbacks`` (``callbacks.py``) run
after every epoch and may stop training; ``train.validation_fraction`` holds
out part of the train split (``validation.py``).
"""

import math
import time
import warnings
import weakref
from dataclasses import asdict, dataclass

import numpy as np

from ..config.assemble import assemble, create, layer_specs
from ..core.callback import METRICS
from ..core.memory import check as check_memory
from ..core.schedules import SCHEDULES
from ..data.arrays_file import first_non_finite
from ..errors import FwError, FwWarning
from ..plugin_system.manager import get_registry
from . import checkpoint
from .callbacks import Callbacks, labelled, make_callbacks
from .output import WeightsOutput
from .user_files import in_use
from .validation import evaluate, holdout


@dataclass
class Epoch:
    epoch: int
    train_loss: float
    train_accuracy: float  # running accuracy over the epoch's batches
    test_accuracy: float
    seconds: float  # the training steps only, not the evaluations
    lr: float
    val_loss: float | None = None  # with train.validation_fraction only
    val_accuracy: float | None = None

    def logs(self) -> dict:
        """The metrics as ``fw train --json`` prints them (``val_*`` only with a validation split)."""
        d = asdict(self)
        order = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy", "seconds", "lr")
        return {k: d[k] for k in order if d[k] is not None}


class Diverged(FwError):
    """Training diverged (the loss became NaN or Inf): a bad choice of hyperparameters, not a broken setup."""


class Trainer:
    """Everything ``fw train`` needs from a config, checked before any data is read."""

    def __init__(self, cfg, registry=None):
        self.cfg = cfg
        registry = registry or get_registry(cfg.plugins)
        self.output = WeightsOutput(cfg.weights, registry)
        t = cfg.train
        self.loss = create(registry, "losses", t.loss, "train.loss")
        self.rng = np.random.default_rng(t.seed)  # the initial weights, then shuffling and dropout
        self.net, self.dataset = assemble(cfg, registry, self.rng)
        # Softmax then cross-entropy: the loss gives the gradient at softmax's input directly.
        self.fused = self.loss.fuses_with(self.net.layers[-1])
        self.backward_layers = len(self.net.layers) - self.fused  # the layers backward runs through
        for layer, spec in zip(self.net.layers[: self.backward_layers], layer_specs(cfg)):
            if not layer.has_backward():
                raise FwError(
                    f"{spec.key}: {layer.no_backward(', so fw train cannot use it', 'add')} (fw run works without it)"
                )
        # A step keeps every layer's input and output for backward, and makes a gradient of each.
        check_memory(
            3 * t.batch_size * self.net.bytes_per_example(),
            f"train.batch_size={t.batch_size}: a training step",
            "; lower train.batch_size",
        )
        self.optimizer = create(registry, "optimizers", t.optimizer, "train.optimizer")
        self.base_lr = self.optimizer.lr
        self.schedule = SCHEDULES[t.lr_schedule]
        if self.schedule and not isinstance(self.base_lr, (int, float)):
            raise FwError(
                f"train.lr_schedule={t.lr_schedule} needs an optimizer with a learning rate `lr`, and "
                f"'{self.optimizer.name}' has none; set train.lr_schedule=constant"
            )
        self.callbacks = make_callbacks(cfg, registry)  # [(label, Callback)]
        self.history: list[Epoch] = []
        #: After ``fit``: the key of the callback that stopped training early (or None), and the
        #: epoch whose weights the network holds (a callback such as early_stopping may restore an earlier one).
        self.stopped_by = self.weights_epoch = None
        #: The train split's digest once ``fit`` has it; ``(checkpoint path, its digest)`` after ``resume``.
        self.data_digest, self.resumed, self._digested = None, (None, None), None

    def fit(self, x, t, x_test, t_test, on_epoch=None, until=None, callbacks=()):
        """Train the remaining epochs (or up to epoch ``until``); checkpoint after each one.

        ``callbacks`` (``framework.Callback`` objects, e.g. the CLI's output)
        run after ``train.callbacks``; any of them may stop training early.
        """
        net = self.net
        given = x, t  # check_data skips what it digested already (fw train --resume checks first)
        x, x_test = net.as_input(x), net.as_input(x_test)
        t, t_test = _labels(t), _labels(t_test)
        self._check_labels(t, t_test)
        self._check_finite(x, "train")
        self._check_finite(x_test, "test")
        self.check_data(*given)
        epochs, classes = self.cfg.train.epochs, net.output_shape[0]
        rows, val = self._holdout(x, t)  # the rows trained on; the held-out (x, labels) or None
        majority = np.bincount(t[rows], minlength=classes).max() / len(rows)
        bs = min(self.cfg.train.batch_size, len(rows))  # plain ints: no omegaconf in the loop
        batch = np.empty((bs, *x.shape[1:]), np.float32), np.zeros((bs, classes), np.float32)
        run = Callbacks(self.callbacks + labelled(callbacks))
        run.train_begin(net, self._begin_logs(val))
        for epoch in range(len(self.history) + 1, min(until or epochs, epochs) + 1):
            start = time.perf_counter()
            loss, accuracy = self._epoch(epoch, x, t, rows, batch, run)
            seconds = time.perf_counter() - start
            report = Epoch(epoch, loss, accuracy, self.accuracy(x_test, t_test), seconds, self._lr())
            if val:
                report.val_loss, report.val_accuracy = evaluate(net, self.loss, *val)
            if bad := net.non_finite():  # e.g. batch-norm's running statistics, which the loss never sees
                self._diverged(
                    epoch, f"{net.labels[bad[0]]}'s '{bad[1]}' became Inf or NaN while the loss stayed finite"
                )
            if self._end_epoch(report, run, majority, classes, on_epoch):
                break
        last = self.history[-1].epoch if self.history else 0
        self.weights_epoch = run.train_end({"epoch": last, "stopped_by": self.stopped_by, "weights_epoch": last})[
            "weights_epoch"
        ]
        return self.history

    def check_data(self, x, t):
        """Digest the train split (``checkpoint.data_digest``);
        after ``resume``, refuse examples other than the checkpoint's.

        The same array objects as the last call are not digested again (0.1 s
        for Fashion-MNIST): ``fw train --resume`` checks before its "resuming"
        line, then ``fit`` checks what it is given. Held weakly: a trainer
        does not keep a train split alive.
        """
        seen = self._digested
        if not (seen and seen[0]() is x and seen[1]() is t):
            self.data_digest = checkpoint.data_digest(self.net.as_input(x), _labels(t))
            try:
                self._digested = weakref.ref(x), weakref.ref(t)
            except TypeError:  # not arrays (lists from Python): digest them each time
                self._digested = None
        checkpoint.check_data(self, self.data_digest)

    def _check_labels(self, t, t_test):
        name, classes = self.cfg.dataset.name, self.net.output_shape[0]
        if len(t) == 0:
            raise FwError(f"the train split of dataset '{name}' is empty; there is nothing to train on")
        if len(t_test) == 0:
            fraction = getattr(self.dataset, "test_fraction", None)  # the csv, image_folder and arrays datasets'
            hint = (
                "; set dataset.test_fraction (e.g. 0.2)"
                if fraction == 0
                else f"; dataset.test_fraction={fraction} holds out none of its {len(t)} examples: give it more"
                if fraction
                else ""
            )
            raise FwError(f"the test split of dataset '{name}' is empty, and fw train measures every epoch on it{hint}")
        for labels, split in ((t, "train"), (t_test, "test")):
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise FwError(
                    f"the {split} labels of dataset '{name}' run from {labels.min()} to {labels.max()}, "
                    f"but the network has {classes} outputs, so labels must be 0 to {classes - 1}"
                )

    def _check_finite(self, x, split):
        """Refuse NaN or Inf in the network's input: it would look like a diverged training (a dataset
        plugin's own check names the file; this one, any dataset's prepared values)."""
        if (bad := first_non_finite(x)) is not None:
            row, at = bad
            raise FwError(
                f"the {split} split of dataset '{self.cfg.dataset.name}' holds NaN or Inf at example {row} (counting "
                f"from 0), value {at}, once prepared as the network's float32 input; correct or drop that example "
                "(values too large for float32, 3.4e38, or to standardise become Inf or NaN)"
            )

    def _epoch(self, epoch, x, t, rows, batch, run):
        """One pass over ``rows`` in shuffled mini-batches,
        in the ``batch`` buffers: ``(mean loss, running accuracy)``."""
        xb, tb = batch
        n, bs, epochs = len(rows), len(xb), self.cfg.train.epochs
        steps = math.ceil(n / bs)
        order = rows[self.rng.permutation(n)]
        total_loss = correct = 0.0
        for step in range(steps):
            idx = order[step * bs : (step + 1) * bs]
            k = len(idx)
            np.take(x, idx, axis=0, out=xb[:k])
            tb[:k] = 0
            tb[np.arange(k), t[idx]] = 1
            self._set_lr((epoch - 1) * steps + step, epochs * steps)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence: checked below
                loss, y = self.step(xb[:k], tb[:k])
            if not math.isfinite(loss):
                self._diverged(epoch, self._why(loss, xb[:k]), step + 1, steps)
            total_loss += loss * k
            correct += np.count_nonzero(y.argmax(axis=1) == t[idx])
            self._update()
            if run.per_batch:
                done = step * bs + k
                run.batch_end(epoch, step + 1, steps, {"loss": total_loss / done, "accuracy": correct / done})
        return total_loss / n, float(correct) / n

    def _end_epoch(self, report, run, majority, classes, on_epoch) -> bool:
        """Record the epoch, run the callbacks, checkpoint (with their state); True if one asked to stop."""
        if at_chance_level(report.train_accuracy, majority, classes):
            # Not NaN, yet nothing learnt: typically a far too high learning rate saturating every unit.
            warnings.warn(
                f"epoch {report.epoch}: train accuracy {report.train_accuracy:.3f} is chance level for {classes} "
                f"classes; if it stays there, lower train.optimizer.lr{self._lr_now()}",
                FwWarning,
                stacklevel=3,
            )
        self.history.append(report)
        self.stopped_by = run.epoch_end(report.epoch, report.logs())
        checkpoint.save(self, self.output.checkpoint_path)
        if on_epoch:
            on_epoch(report)
        return self.stopped_by is not None

    def _holdout(self, x, t):
        """``(rows to train on, (x_val, t_val) or None)``: ``train.validation_fraction`` of ``t``, held out."""
        tr = self.cfg.train
        if not tr.validation_fraction:
            return np.arange(len(t)), None
        rows, held = holdout(t, tr.validation_fraction, tr.seed)
        return rows, (x[held], t[held])

    def _begin_logs(self, val):
        names = [m for m in METRICS if val or not m.startswith("val_")]
        return {
            "epochs": self.cfg.train.epochs,
            "initial_epoch": len(self.history),
            "metrics": names,
            "weights_path": str(self.output.path),
            "force": self.force,  # fw train --force; in_use: what no callback may write over
            "in_use": in_use(self.cfg, self.config_path),
        }

    def step(self, x, t):
        """One forward and backward pass on a batch: ``(loss, output)``; every layer's grads are filled."""
        net, first = self.net, not self._checked
        y = net.forward(x, train=True, check=first)
        loss = self.loss.forward(y, t)
        if math.isfinite(loss):
            dout = self.loss.backward_fused(y, t) if self.fused else self.loss.backward(y, t)
            net.backward(dout, self.backward_layers, check=first)
            if first:  # every layer's shapes, dtypes and gradients, once: the layers are trusted after
                net.check_gradients()
                self._checked = True
        return loss, y

    _checked = False
    config_path, force = None, False  # set by fw train

    def _update(self):
        net = self.net
        grads = net.gradients()
        try:
            self.optimizer.update(net.parameters(), grads)
        except Exception:
            net.check_gradients()  # a layer that left a bad gradient is named, rather than the optimizer
            raise

    def _lr_now(self):
        return f" (now {self.base_lr})" if isinstance(self.base_lr, (int, float)) else ""

    def _why(self, loss, x):
        """Why the loss is not finite: weights that blew up, values that overflowed, or a layer's own NaN."""
        net = self.net
        if bad := net.non_finite():
            return f"{net.labels[bad[0]]}'s '{bad[1]}' became Inf or NaN"
        for i, layer in enumerate(net.layers):
            try:
                with np.errstate(over="raise", invalid="ignore", divide="ignore"):
                    y = layer(x, True)
            except FloatingPointError:
                return f"values overflowed float32 in {net.labels[i]}"
            if np.isnan(y).any() and np.isfinite(x).all():  # finite input and finite weights: the layer's own bug
                raise net.error(i, "returned NaN for finite input and finite weights; fix its forward")
            x = y
        return f"the loss became {loss}"

    def _diverged(self, epoch, why, step=None, steps=None):
        at = f" at step {step} of {steps}" if step else ""
        kept = (
            f"epoch {self.history[-1].epoch} is in {self.output.checkpoint_path}"
            if self.history
            else "nothing was written"
        )
        raise Diverged(
            f"training diverged in epoch {epoch}{at}: {why}; lower train.optimizer.lr{self._lr_now()} "
            f"or choose another optimizer ({kept})"
        )

    def resume(self) -> int:
        """Continue from the checkpoint beside the weights (see ``checkpoint.restore``); the epochs done."""
        history = checkpoint.restore(self, self.output.checkpoint_path)
        try:
            self.history = [Epoch(**e) for e in history]
        except TypeError as e:  # a hand-edited entry with keys an Epoch does not have
            raise FwError(
                f"{self.output.checkpoint_path}: the checkpoint's history does not hold fw train's metrics ({e}); "
                "delete the checkpoint to start over"
            ) from e
        return len(self.history)

    def accuracy(self, x, t):
        return float(np.count_nonzero(self.net.classify(x) == t)) / len(x) if len(x) else float("nan")

    def _set_lr(self, step, total):
        if self.schedule:
            self.optimizer.lr = self.base_lr * self.schedule(step / total)

    def _lr(self):
        lr = self.optimizer.lr
        return float("nan") if lr is None else float(lr)


def at_chance_level(accuracy, majority, classes) -> bool:
    """Has training learnt nothing? No better than always guessing the commonest class.

    ``majority`` is that class's share of the training labels; the margin is 5%
    of what is left above it (0.145 for ten balanced classes, 0.525 for two).
    """
    return classes > 1 and majority < 1 and accuracy <= majority + 0.05 * (1 - majority)


def _labels(t):
    return t.argmax(axis=1) if t.ndim == 2 else t
