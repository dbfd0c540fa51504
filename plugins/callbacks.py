"""The built-in callbacks: early stopping and a CSV log of the epochs (Keras's EarlyStopping and CSVLogger).

They register like any callback plugin, and keep their state in fw train's
checkpoints, so ``--resume`` carries on where they were.
"""

import csv
import io
import math
from pathlib import Path
from typing import Annotated

from framework import Callback, hookimpl
from framework.core.callback import mode_of


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs in a row.

    ``mode`` (min or max) follows from the metric's name when not given:
    ...accuracy is maximised, ...loss minimised. With ``restore_best`` (the
    default), the network gets the best epoch's weights back when training
    ends, so those are the weights fw train writes.
    """

    name = "early_stopping"

    def __init__(
        self,
        monitor: Annotated[str, "a metric's name such as val_accuracy"] = "val_loss",
        mode: str | None = None,
        patience: Annotated[int, "a whole number of epochs, 0 or more"] = 0,
        min_delta: Annotated[float, "a number, 0 or more"] = 0.0,
        restore_best: bool = True,
    ):
        mode = mode or mode_of(monitor)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max (it cannot be told from the name '{monitor}')")
        if patience < 0:
            raise ValueError(f"patience must be a whole number of epochs, 0 or more, got {patience!r}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be a number, 0 or more, got {min_delta!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = float(min_delta), restore_best
        self.best, self.best_epoch, self.wait, self.best_weights = None, 0, 0, {}

    def on_train_begin(self, logs):
        if self.monitor not in logs["metrics"]:
            hint = "; set train.validation_fraction (e.g. 0.1) for val_*" if self.monitor.startswith("val_") else ""
            raise ValueError(
                f"monitor '{self.monitor}' is not reported by this run; it reports {', '.join(logs['metrics'])}{hint}"
            )

    def on_epoch_end(self, epoch, logs):
        value = logs[self.monitor]
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = {k: a.copy() for k, a in self.network.state_dict().items()}
        else:
            self.wait += 1
        return self.wait > 0 and self.wait >= self.patience

    def _improves(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta

    def on_train_end(self, logs):
        if self.restore_best and self.best_weights and self.best_epoch != logs["weights_epoch"]:
            for key, array in self.network.state_dict().items():
                array[...] = self.best_weights[key]
            logs["weights_epoch"] = self.best_epoch

    def state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "weights": self.best_weights}

    def load_state(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = dict(state["weights"])


class CSVLogger(Callback):
    """One row per epoch, the metrics of ``fw train --json``, in a CSV file rewritten (atomically) after every epoch.

    ``path`` defaults to ``metrics.csv`` beside the weights. An existing file
    there is replaced only if it is such a log (its header says so) or with
    ``fw train --force``, and never when it is the config or data in use.
    """

    name = "csv_logger"

    def __init__(self, path=None):
        if path is not None and not isinstance(path, str):
            raise ValueError(f"path must be a file name ending in .csv, or null, got {path!r}")
        self.path, self.rows = path, []

    def on_train_begin(self, logs):
        from framework.training.user_files import check

        self.path = Path(self.path or Path(logs["weights_path"]).with_name("metrics.csv")).expanduser()
        used = {**logs.get("in_use", {}), logs["weights_path"]: "weights.path, where fw train writes the weights"}
        check(self.path, "csv_logger's path", used=used, force=logs.get("force", False), ours=_is_log)

    def on_epoch_end(self, epoch, logs):
        from framework.safeio.files import write_output

        self.rows = [row for row in self.rows if row["epoch"] < epoch] + [dict(logs)]
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_output(self.path, lambda f: f.write(text.getvalue().encode()))

    def state(self):
        return {"rows": self.rows}

    def load_state(self, state):
        self.rows = list(state["rows"])


def _is_log(path):
    """Is ``path`` a log CSVLogger wrote? Its header names only the columns of fw's epoch logs."""
    from framework.core.callback import METRICS
    from framework.safeio.files import open_regular

    try:
        with open_regular(path) as f:
            header = f.readline(4096).decode("utf-8", "replace").rstrip("\r\n").split(",")
    except OSError:
        return False
    return header[0] == "epoch" and set(header) <= {"epoch", "seconds", "lr", *METRICS}


@hookimpl
def register_callbacks(register):
    register(EarlyStopping)
    register(CSVLogger)
