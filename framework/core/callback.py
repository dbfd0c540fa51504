"""The Callback base class that callback plugins subclass: code run at the edges of fw train's epochs.

Keras's ``on_epoch_end(epoch, logs)``, where returning True stops training,
and Lightning's callback state, saved in checkpoints so ``--resume`` resumes
a callback too.
"""

from typing import ClassVar


class Callback:
    """Watches (and may stop) a training run.

    Subclasses set ``name`` (the name ``train.callbacks`` uses) and implement
    ``on_epoch_end``; config parameters, as in ``{name: early_stopping,
    patience: 3}``, arrive as keyword arguments to ``__init__``. fw sets
    ``self.network`` (the Network being trained) before ``on_train_begin``.

    - ``on_train_begin(logs)``: ``logs`` has ``epochs`` (the run's total),
      ``initial_epoch`` (epochs already done: more than 0 on ``--resume``),
      ``metrics`` (the names each epoch's logs will have), ``weights_path``,
      ``in_use`` (``{path: what it is}``: the config and the data, which a
      callback never writes over) and ``force`` (``fw train --force``: files
      fw did not write may be replaced).
    - ``on_epoch_end(epoch, logs)``: ``logs`` is the epoch's metrics, as
      ``fw train --json`` prints them. Return True to stop after this epoch.
    - ``on_train_end(logs)``: ``logs`` has ``epoch`` (the last one trained),
      ``stopped_by`` (the config key of the callback that stopped training, or
      None) and ``weights_epoch``, the epoch whose weights the network holds;
      a callback that puts other weights back sets it.
    - ``state()`` / ``load_state(state)``: a dict of JSON values and numpy
      arrays (nested dicts allowed), saved in each checkpoint and given back
      on ``--resume``.
    - ``on_batch_end(epoch, batch, batches, logs)``: after every training
      step (a progress line); ``logs`` has the epoch's running ``loss`` and
      ``accuracy`` so far. Called only when a subclass defines it; one that
      takes only ``(epoch, batch, batches)`` is called without ``logs``.
    """

    name: ClassVar[str]
    network = None

    def on_train_begin(self, logs):
        pass

    def on_epoch_end(self, epoch, logs):
        raise NotImplementedError(f"{type(self).__name__} must implement on_epoch_end(epoch, logs)")

    def on_train_end(self, logs):
        pass

    def on_batch_end(self, epoch, batch, batches, logs):
        pass

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict):
        pass


#: The metrics of an epoch's logs (besides ``epoch``, ``seconds`` and ``lr``); val_* only with a validation split.
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy")


def mode_of(metric) -> str | None:
    """``"max"`` for a metric named ...accuracy, ``"min"`` for ...loss, else None: the direction its name says."""
    if isinstance(metric, str):
        if metric.endswith("accuracy"):
            return "max"
        if metric.endswith("loss"):
            return "min"
    return None
