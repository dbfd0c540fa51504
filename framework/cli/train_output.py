"""What ``fw train`` prints while it trains, as callbacks: the epoch lines, ``--json`` and the progress line."""

import json
import sys
import time

from ..core.callback import Callback


class EpochLines(Callback):
    """``epoch  3/10  val loss 0.4210  val acc 0.8433  loss 0.4012  train acc 0.8512  test acc 0.8383  2.41 s``.

    The time is the epoch's wall time, since the previous line (or the start of
    training): its steps, its evaluations and the previous checkpoint, where
    ``--json``'s ``seconds`` counts the steps only.
    """

    name = "epoch_lines"

    def on_train_begin(self, logs):
        self.epochs = logs["epochs"]
        self.since = time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        now = time.perf_counter()
        wall, self.since = now - self.since, now
        val = f"val loss {logs['val_loss']:.4f}  val acc {logs['val_accuracy']:.4f}  " if "val_loss" in logs else ""
        print(
            f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  {val}loss {logs['train_loss']:.4f}  "
            f"train acc {logs['train_accuracy']:.4f}  test acc {logs['test_accuracy']:.4f}  {wall:.2f} s",
            flush=True,
        )


class JsonLines(Callback):
    """One JSON object per epoch on stdout (``--json``)."""

    name = "json_lines"

    def on_epoch_end(self, epoch, logs):
        print(json.dumps(logs), flush=True)


class Progress(Callback):
    """tqdm's line within each epoch, on stderr when it is a terminal: steps done, elapsed time, time left,
    steps per second, and the running loss and accuracy.

    tqdm is the ``progress`` extra; without it (and in logs, pipes and CI) the
    epoch lines are all there is.
    """

    name = "progress"

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tqdm = _tqdm() if self.stream.isatty() else None
        self.bar = None

    def on_train_begin(self, logs):
        self.epochs = logs["epochs"]

    def on_batch_end(self, epoch, batch, batches, logs):
        if self.tqdm is None:
            return
        if self.bar is None:
            desc = f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}"
            self.bar = self.tqdm(
                total=batches, desc=desc, unit="step", file=self.stream, leave=False, dynamic_ncols=True
            )
        self.bar.set_postfix_str(f"loss {logs['loss']:.4f}  acc {logs['accuracy']:.4f}", refresh=False)
        self.bar.update()

    def on_epoch_end(self, epoch, logs):
        self.close()

    def close(self):
        """Erase the line (at the end of an epoch, or half drawn before an interruption message)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def output(json_lines):
    """The callbacks for ``fw train [--json]``: the progress line, then the epoch lines or JSON."""
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
        print(
            f"Test accuracy of the weights written, epoch {weights_epoch}'s (restored): {report.test_accuracy:.4f}",
            file=out,
        )
