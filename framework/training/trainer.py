"""fw train's loop: learn a network on its dataset's train split (the book's chapters 4 to 6).

The Trainer runs the one ``Network`` that ``fw run`` uses: ``forward`` with
``train=True``, the loss, ``backward`` through the layers in reverse, and the
optimizer over every layer's ``params``, with the lr the schedule gives. It
knows no particular layer. Epochs of shuffled mini-batches each end with a
checkpoint (``checkpoint.py``), so Ctrl-C loses at most the epoch in progress;
``output.py`` writes the weights.
"""

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..config.assemble import assemble, create, layer_specs
from ..core.memory import check as check_memory
from ..core.schedules import SCHEDULES
from ..data.dataset import load_split
from ..errors import FwError, FwWarning
from ..plugin_system.manager import get_registry
from . import checkpoint
from .output import WeightsOutput


@dataclass
class Epoch:
    epoch: int
    train_loss: float
    train_accuracy: float  # running accuracy over the epoch's batches
    test_accuracy: float
    seconds: float  # the training steps only, not the test evaluation
    lr: float


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
                raise FwError(f"{spec.key}: {layer.no_backward(', so fw train cannot use it', 'add')} (fw run works without it)")
        # A step keeps every layer's input and output for backward, and makes a gradient of each.
        check_memory(3 * t.batch_size * self.net.bytes_per_example(), f"train.batch_size={t.batch_size}: a training step",
                     "; lower train.batch_size")  # fmt: skip
        self.optimizer = create(registry, "optimizers", t.optimizer, "train.optimizer")
        self.base_lr = self.optimizer.lr
        self.schedule = SCHEDULES[t.lr_schedule]
        if self.schedule and not isinstance(self.base_lr, (int, float)):
            raise FwError(
                f"train.lr_schedule={t.lr_schedule} needs an optimizer with a learning rate `lr`, and "
                f"'{self.optimizer.name}' has none; set train.lr_schedule=constant"
            )
        self.history: list[Epoch] = []

    def fit(self, x, t, x_test, t_test, on_epoch=None, progress=None, until=None):
        """Train the remaining epochs (or up to epoch ``until``); checkpoint after each one."""
        net = self.net
        x, x_test = net.as_input(x), net.as_input(x_test)
        t, t_test = _labels(t), _labels(t_test)
        self._check_labels(t, t_test)
        epochs, classes = self.cfg.train.epochs, net.output_shape[0]
        majority = np.bincount(t, minlength=classes).max() / len(x)
        bs = min(self.cfg.train.batch_size, len(x))  # plain ints: no omegaconf in the loop
        batch = np.empty((bs, *x.shape[1:]), np.float32), np.zeros((bs, classes), np.float32)
        for epoch in range(len(self.history) + 1, min(until or epochs, epochs) + 1):
            start = time.perf_counter()
            loss, accuracy = self._epoch(epoch, x, t, batch, progress)
            seconds = time.perf_counter() - start
            report = Epoch(epoch, loss, accuracy, self.accuracy(x_test, t_test), seconds, self._lr())
            if at_chance_level(report.train_accuracy, majority, classes):
                # Not NaN, yet nothing learnt: typically a far too high learning rate saturating every unit.
                warnings.warn(
                    f"epoch {epoch}: train accuracy {report.train_accuracy:.3f} is chance level for {classes} "
                    f"classes; if it stays there, lower train.optimizer.lr{self._lr_now()}",
                    FwWarning,
                    stacklevel=2,
                )
            if bad := net.non_finite():  # e.g. batch-norm's running statistics, which the loss never sees
                self._diverged(epoch, f"{net.labels[bad[0]]}'s '{bad[1]}' became Inf or NaN while the loss stayed finite")
            self.history.append(report)
            checkpoint.save(self, self.output.checkpoint_path)
            if on_epoch:
                on_epoch(report)
        return self.history

    def _check_labels(self, t, t_test):
        name, classes = self.cfg.dataset.name, self.net.output_shape[0]
        if len(t) == 0:
            raise FwError(f"the train split of dataset '{name}' is empty; there is nothing to train on")
        for labels, split in ((t, "train"), (t_test, "test")):
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise FwError(
                    f"the {split} labels of dataset '{name}' run from {labels.min()} to {labels.max()}, "
                    f"but the network has {classes} outputs, so labels must be 0 to {classes - 1}"
                )

    def _epoch(self, epoch, x, t, batch, progress):
        """One pass over shuffled mini-batches, in the ``batch`` buffers: ``(mean loss, running accuracy)``."""
        xb, tb = batch
        n, bs, epochs = len(x), len(xb), self.cfg.train.epochs
        steps = math.ceil(n / bs)
        order = self.rng.permutation(n)
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
            if progress:
                progress(epoch, step + 1, steps)
        return total_loss / n, float(correct) / n

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
        kept = f"epoch {self.history[-1].epoch} is in {self.output.checkpoint_path}" if self.history else "nothing was written"
        raise FwError(
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


def train_split_data(cfg, registry, dataset=None):
    """``(x, t)`` for the train split and for the test split, with the config's options;
    ``dataset.limit`` limits the training examples only, so the test accuracy is on the whole split."""
    return load_split(cfg, "train", registry, dataset), load_split(cfg, "test", registry, dataset, limit=False)


def _labels(t):
    return t.argmax(axis=1) if t.ndim == 2 else t
