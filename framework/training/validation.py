"""What fw train learns from and measures on: the train split
(``dataset.limit``), a validation hold-out, the test split.

The book (6.5.1) warns against choosing hyperparameters on the test set:
``train.validation_fraction`` holds out a stratified, seeded part of the
train split, which the network never trains on, and each epoch reports its
loss and accuracy as ``val_loss`` and ``val_accuracy``.
"""

import numpy as np

from ..config.datasets import load_split
from ..errors import FwError

#: Mixed into train.seed, so the hold-out is not drawn from the same stream as the initial weights.
_SALT = 0x76616C  # "val"


def load_training_data(cfg, registry, dataset=None):
    """``((x, t), (x_test, t_test))``: the train split (``dataset.limit`` of it) and the whole test split.

    ``dataset``: an instance already made for ``cfg`` (the trainer's).
    """
    return load_split(cfg, "train", registry, dataset), load_split(cfg, "test", registry, dataset, limit=False)


def holdout(labels, fraction, seed):
    """``(train_index, val_index)``: about ``fraction`` of each class held out, chosen by ``seed``.

    Stratified: each class keeps its share in both parts. The same labels,
    fraction and seed always give the same split; both index arrays are sorted.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    rng = np.random.default_rng([seed, _SALT])
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        val.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    val = np.sort(np.concatenate(val)) if val else np.empty(0, np.intp)
    if not len(val) or len(val) == len(labels):
        raise FwError(
            f"train.validation_fraction={fraction} holds out {len(val)} of the {len(labels)} training images; "
            "choose a fraction that leaves some for each (e.g. 0.1)"
        )
    train = np.setdiff1d(np.arange(len(labels)), val, assume_unique=True)
    return train, val


def split(x, t, fraction, seed):
    """``(x, t, (x_val, t_val))`` with the hold-out taken out; with fraction 0, ``(x, t, None)``."""
    if not fraction:
        return x, t, None
    train, val = holdout(t, fraction, seed)
    return x[train], t[train], (x[val], t[val])


def evaluate(net, loss, x, labels):
    """``(mean loss, accuracy)`` of ``net`` (inference mode) on examples ``x`` with integer ``labels``.

    Chunked as ``Network.classify`` is, so a ConvNet's activations for a big
    hold-out never fill the memory.
    """
    classes = net.output_shape[0]
    rows = max(1, net.chunk_rows())
    total = correct = 0.0
    for start in range(0, len(x), rows):
        xb, tb = x[start : start + rows], labels[start : start + rows]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            y = net.forward(xb, train=False, check=False)
        onehot = np.zeros((len(tb), classes), np.float32)
        onehot[np.arange(len(tb)), tb] = 1
        total += loss.forward(y, onehot) * len(tb)
        correct += np.count_nonzero(y.reshape(len(tb), -1).argmax(axis=1) == tb)
    n = len(x)
    return (total / n, correct / n) if n else (float("nan"), float("nan"))
