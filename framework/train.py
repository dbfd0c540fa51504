"""fw train: learn a config's network on its dataset's train split (the book's chapters 4 to 6).

The Trainer runs the one ``Network`` that ``fw run`` uses: ``forward`` with
``train=True``, the loss, ``backward`` through the layers in reverse, and the
optimizer over every layer's ``params``. It knows no particular layer. Epochs
of shuffled mini-batches end with an atomic checkpoint, so Ctrl-C loses at
most the epoch in progress.
"""

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .dataset import load_split, make_dataset
from .errors import FwError, FwWarning
from .files import check_writable, write_output
from .model import build_model, check_fits, input_shape, layer_specs, make
from .network import ActivationLayer
from .plugin_manager import get_registry
from .weights import book_layout, load_weights


def _cosine(progress):
    return 0.5 * (1 + math.cos(math.pi * progress))


def _flat_cosine(progress, flat=0.75):
    return 1.0 if progress < flat else _cosine((progress - flat) / (1 - flat))


#: train.lr_schedule -> the fraction of the base lr at a point (0..1) of the run; None: constant.
#: flat_cosine keeps the full lr for 75% of the steps, then decays it to 0 (fastai's fit_flat_cos).
#: On Fashion-MNIST 784-100-10 with Adam at 0.001, 10 epochs, seeds 0-2, it gave test accuracy
#: 0.8848-0.8850, against 0.8786-0.8813 for cosine over the whole run and 0.8795-0.8802 for linear.
SCHEDULES = {"constant": None, "cosine": _cosine, "flat_cosine": _flat_cosine}


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
        self.registry = registry or get_registry(cfg.plugins)
        if cfg.weights is None or not cfg.weights.path:
            raise FwError("fw train writes its result to weights.path; set weights.path (e.g. runs/my_net/weights.npz)")
        self.weights_path = Path(cfg.weights.path).expanduser()
        self.format = cfg.weights.format or cfg.weights.importer
        if self.format not in ("npz", "pickle"):
            raise FwError(
                f"weights.format: fw train writes npz or pickle; set weights.format (weights.importer is '{self.format}')"
            )
        if cfg.weights.importer != self.format:
            raise FwError(
                f"weights.format={self.format} but weights.importer={cfg.weights.importer}: fw run could not read "
                "what fw train writes; set both to npz (or both to pickle)"
            )
        suffixes = {"npz": (".npz",), "pickle": (".pkl", ".pickle")}[self.format]
        if self.weights_path.suffix not in suffixes:
            raise FwError(
                f"weights.path {self.weights_path} should end with {' or '.join(suffixes)} for weights.format={self.format}"
            )
        self.checkpoint_path = self.weights_path.with_name(self.weights_path.stem + ".ckpt.npz")
        t = cfg.train
        self.loss = make(self.registry, "losses", t.loss, "train.loss")
        self.rng = np.random.default_rng(t.seed)  # the initial weights, then shuffling and dropout
        self.dataset = make_dataset(cfg, self.registry)
        self.net = build_model(cfg, self.registry, input_shape(cfg, self.dataset), self.rng)
        check_fits(cfg, self.net, self.dataset)
        last = self.net.layers[-1]
        # Softmax then cross-entropy: the loss gives the gradient at softmax's input directly.
        self.fused = isinstance(last, ActivationLayer) and last.name == self.loss.fused_activation
        self.stop = len(self.net.layers) - self.fused  # the layers backward runs through
        for layer, spec in zip(self.net.layers[: self.stop], layer_specs(cfg)):
            _check_backward(layer, spec)
        if self.format == "pickle" and book_layout(self.net) is None:
            raise FwError(
                "weights.format=pickle writes the book's W1, b1, ... layout, which holds dense layers only; "
                "this network has other parameters (e.g. batch_norm's): set weights.format=npz and weights.importer=npz"
            )
        self.optimizer = make(self.registry, "optimizers", t.optimizer, "train.optimizer")
        self.base_lr = getattr(self.optimizer, "lr", None)
        self.schedule = SCHEDULES[t.lr_schedule]
        if self.schedule and not isinstance(self.base_lr, (int, float)):
            raise FwError(
                f"train.lr_schedule={t.lr_schedule} needs an optimizer with an `lr` attribute, and "
                f"'{self.optimizer.name}' has none; set train.lr_schedule=constant"
            )
        self.history: list[Epoch] = []

    def check_output(self, overwrite=False, resume=False):
        """Before any training: can the weights and checkpoint be written, and may old ones be replaced?"""
        check_writable(self.weights_path, "weights.path", overwrite or resume)
        if self.checkpoint_path.is_dir():
            raise FwError(f"{self.checkpoint_path} (the checkpoint beside weights.path) is a folder; move it away")
        if self.checkpoint_path.exists() and not (overwrite or resume):
            raise FwError(
                f"a checkpoint from an earlier run is at {self.checkpoint_path}; --resume continues it, "
                "--force starts over"
            )

    # -- the loop --------------------------------------------------------------------------------

    def fit(self, x, t, x_test, t_test, on_epoch=None, progress=None, until=None):
        """Train the remaining epochs (or up to epoch ``until``); checkpoint after each one."""
        net = self.net
        x, x_test = net.as_input(x), net.as_input(x_test)
        t, t_test = _labels(t), _labels(t_test)
        epochs, batch_size = self.cfg.train.epochs, self.cfg.train.batch_size  # plain ints: no omegaconf in the loop
        n, classes = len(x), net.output_shape[0]
        if n == 0:
            raise FwError(f"the train split of dataset '{self.cfg.dataset.name}' is empty; there is nothing to train on")
        for labels, split in ((t, "train"), (t_test, "test")):
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise FwError(
                    f"the {split} labels of dataset '{self.cfg.dataset.name}' run from {labels.min()} to {labels.max()}, "
                    f"but the network has {classes} outputs, so labels must be 0 to {classes - 1}"
                )
        majority = np.bincount(t, minlength=classes).max() / n
        bs = min(batch_size, n)
        steps = math.ceil(n / bs)
        xb = np.empty((bs, *x.shape[1:]), np.float32)
        tb = np.zeros((bs, classes), np.float32)
        for epoch in range(len(self.history) + 1, min(until or epochs, epochs) + 1):
            order = self.rng.permutation(n)
            start = time.perf_counter()
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
                    self._diverged(epoch, loss, xb[:k])
                total_loss += loss * k
                correct += np.count_nonzero(y.argmax(axis=1) == t[idx])
                self.optimizer.update(net.parameters(), net.gradients())
                if progress:
                    progress(epoch, step + 1, steps)
            seconds = time.perf_counter() - start
            report = Epoch(epoch, total_loss / n, float(correct) / n, self.accuracy(x_test, t_test), seconds, self._lr())
            if at_chance_level(report.train_accuracy, majority, classes):
                # Not NaN, yet nothing learnt: typically a far too high learning rate saturating every unit.
                warnings.warn(
                    f"epoch {epoch}: train accuracy {report.train_accuracy:.3f} is chance level for {classes} "
                    f"classes; if it stays there, lower train.optimizer.lr{self._lr_now()}",
                    FwWarning,
                    stacklevel=2,
                )
            self.history.append(report)
            self.save_checkpoint()
            if on_epoch:
                on_epoch(report)
        return self.history

    def step(self, x, t):
        """One forward and backward pass on a batch: ``(loss, output)``; every layer's grads are filled."""
        net, first = self.net, not self._checked
        y = net.forward(x, train=True, check=first)
        loss = self.loss.forward(y, t)
        if math.isfinite(loss):
            dout = self.loss.backward_fused(y, t) if self.fused else self.loss.backward(y, t)
            net.backward(dout, self.stop, check=first)
            if first:  # every layer's shapes, dtypes and gradients, once: the layers are trusted after
                net.check_gradients()
                self._checked = True
        return loss, y

    _checked = False

    def _lr_now(self):
        return f" (now {self.base_lr})" if isinstance(self.base_lr, (int, float)) else ""

    def _diverged(self, epoch, loss, x):
        net = self.net
        for i, layer in enumerate(net.layers):  # a layer that makes NaN from numbers?
            with np.errstate(all="ignore"):
                y = layer.forward(x, True)
            if np.isnan(y).any() and np.isfinite(x).all():
                raise net.error(i, "returned NaN for finite input; fix its forward")
            x = y
        kept = f"epoch {self.history[-1].epoch} is in {self.checkpoint_path}" if self.history else "nothing was written"
        raise FwError(
            f"training diverged in epoch {epoch}: the loss became {loss}; lower train.optimizer.lr{self._lr_now()} "
            f"or choose another optimizer ({kept})"
        )

    def accuracy(self, x, t):
        return float(np.count_nonzero(self.net.classify(x) == t)) / len(x) if len(x) else float("nan")

    def _set_lr(self, step, total):
        if self.schedule:
            self.optimizer.lr = self.base_lr * self.schedule(step / total)

    def _lr(self):
        return float(getattr(self.optimizer, "lr", float("nan")))

    # -- files -----------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """What a checkpoint must agree with to be resumed."""
        from omegaconf import OmegaConf

        c = OmegaConf.to_container(self.cfg)
        keep = {
            "dataset": c["dataset"]["name"],
            "model": c["model"],
            "train": c["train"],
        }
        return json.dumps(keep, sort_keys=True)

    def save_checkpoint(self):
        arrays = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        arrays.update({f"opt_{k}": np.asarray(v) for k, v in self.optimizer.state().items()})
        meta = {
            "fingerprint": self.fingerprint(),
            "history": [asdict(e) for e in self.history],
            "rng": self.rng.bit_generator.state,
            "lr": self._lr(),
        }
        arrays["meta"] = np.array(json.dumps(meta))
        write_output(self.checkpoint_path, lambda f: np.savez(f, **arrays))

    def resume(self):
        """Continue from the checkpoint: parameters, optimizer state, shuffling and history."""
        path = self.checkpoint_path
        if not path.is_file():
            raise FwError(f"no checkpoint to resume from at {path}; run fw train without --resume to start")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                state = {k[4:]: z[k] for k in z.files if k.startswith("net.")}
                opt = {k[4:]: z[k] for k in z.files if k.startswith("opt_")}
        except Exception as e:
            raise FwError(
                f"{path}: not a readable checkpoint ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                "delete it to start over"
            ) from e
        if not isinstance(meta, dict) or meta.get("fingerprint") != self.fingerprint():
            saved = meta.get("fingerprint") if isinstance(meta, dict) else None
            changed = _differences(json.loads(saved), json.loads(self.fingerprint())) if isinstance(saved, str) else "unknown"
            raise FwError(
                f"{path} was written for a different dataset, model or train config ({changed}); "
                "restore that config, or delete the checkpoint to start over"
            )
        try:
            load_weights(self.net, state, path)
        except FwError as e:
            raise FwError(f"{e}; delete the checkpoint to start over") from e
        params = self.net.parameters()
        for key, value in opt.items():  # a state array named like m3 belongs to parameter 3
            index = key.lstrip("abcdefghijklmnopqrstuvwxyz_")
            if value.ndim and index.isdigit() and int(index) < len(params):
                p = params[int(index)]
                if value.shape != p.shape or value.dtype != p.dtype:
                    raise FwError(
                        f"{path}: optimizer state '{key}' has shape {value.shape} {value.dtype}, but parameter "
                        f"{index} is {p.shape} {p.dtype}; delete the checkpoint to start over"
                    )
        self.optimizer.load_state({k: (v.item() if v.ndim == 0 else v.copy()) for k, v in opt.items()})
        self.rng.bit_generator.state = meta["rng"]
        self.history = [Epoch(**e) for e in meta["history"]]
        if "lr" in meta and hasattr(self.optimizer, "lr"):
            self.optimizer.lr = meta["lr"]
        return len(self.history)

    def save_weights(self) -> Path:
        """Write every layer's parameters (and buffers), atomically.

        A network of dense layers (and parameter-free ones) is written in the
        book's layout, W1, b1, ..., which fw 0.1 and the book's code read too;
        any other network as ``0.W, 0.b, 2.gamma, ...``.
        """
        arrays = book_layout(self.net) or self.net.state_dict()
        if self.format == "npz":
            write_output(self.weights_path, lambda f: np.savez(f, **arrays))
        else:
            import pickle

            write_output(self.weights_path, lambda f: pickle.dump(arrays, f, protocol=4))
        return self.weights_path


def _check_backward(layer, spec):
    """fw train needs every layer's backward; say which method a plugin must add."""
    if layer.has_backward():
        return
    if isinstance(layer, ActivationLayer):
        act = layer.activation
        raise FwError(
            f"{spec.key}: activation '{act.name}' ({type(act).__name__}) has no derivative, so fw train cannot "
            "use it; add backward(self, x, y, dout) returning dL/dx to the class (fw run works without it)"
        )
    raise FwError(
        f"{spec.key}: layer '{spec.name}' ({type(layer).__name__}) has no backward, so fw train cannot use it; "
        "add backward(self, dout) returning dL/dx and filling self.grads (fw run works without it)"
    )


def at_chance_level(accuracy, majority, classes) -> bool:
    """Has training learnt nothing? No better than always guessing the commonest class.

    ``majority`` is that class's share of the training labels; the margin is 5%
    of what is left above it (0.145 for ten balanced classes, 0.525 for two).
    """
    return classes > 1 and majority < 1 and accuracy <= majority + 0.05 * (1 - majority)


def train_split_data(cfg, registry):
    """``(x, t)`` for the train split and for the test split, with the config's options."""
    return load_split(cfg, "train", registry), load_split(cfg, "test", registry)


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


def _labels(t):
    return t.argmax(axis=1) if t.ndim == 2 else t
