"""What ``fw train`` prints while it trains, as callbacks: the epoch lines, ``--json`` and the progress bar."""

import json
import sys

from ..core.callback import Callback
from .progress import ProgressBar


class EpochLines(Callback):
    """``epoch  3/10  loss 0.4012  train acc 0.8512  val loss ...  val acc ...  test acc 0.8383  0.34 s``."""

    name = "epoch_lines"

    def on_train_begin(self, logs):
        self.epochs = logs["epochs"]

    def on_epoch_end(self, epoch, logs):
        val = f"val loss {logs['val_loss']:.4f}  val acc {logs['val_accuracy']:.4f}  " if "val_loss" in logs else ""
        print(
            f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  loss {logs['train_loss']:.4f}  "
            f"train acc {logs['train_accuracy']:.4f}  {val}test acc {logs['test_accuracy']:.4f}  {logs['seconds']:.2f} s",
            flush=True,
        )


class JsonLines(Callback):
    """One JSON object per epoch on stdout (``--json``)."""

    name = "json_lines"

    def on_epoch_end(self, epoch, logs):
        print(json.dumps(logs), flush=True)


class Progress(Callback):
    """The progress bar within each epoch, on stderr when it is a terminal."""

    name = "progress"

    def __init__(self, stream=None):
        self.bar = ProgressBar(stream)

    def on_train_begin(self, logs):
        self.epochs = logs["epochs"]

    def on_batch_end(self, epoch, batch, batches):
        self.bar(f"epoch {epoch}/{self.epochs}", batch, batches)

    def on_epoch_end(self, epoch, logs):
        pass


def output(json_lines):
    """The callbacks for ``fw train [--json]``: the progress bar, then the epoch lines or JSON."""
    return [Progress(), JsonLines() if json_lines else EpochLines()]


def closing_lines(trainer, epochs, out=sys.stdout):
    """How training ended: early, and with which epoch's weights (e.g. restored by early stopping)."""
    history = trainer.history
    if not history:
        return
    last, weights_epoch = history[-1].epoch, trainer.weights_epoch or history[-1].epoch
    if trainer.stopped_by:
        print(f"Stopped after epoch {last} of {epochs} by {trainer.stopped_by}", file=out)
    report = history[weights_epoch - 1]
    if weights_epoch == last:
        print(f"Test accuracy after epoch {last}: {report.test_accuracy:.4f}", file=out)
    else:
        print(f"Test accuracy of the weights written, epoch {weights_epoch}'s (restored): {report.test_accuracy:.4f}", file=out)
