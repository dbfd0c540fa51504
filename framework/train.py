"""fw train: learn a config's weights on its dataset's train split (the book's chapters 4 to 6).

``Backprop`` is the book's chapter-5 network in trainable form: forward with
the values backward needs, then the gradients of every W and b. ``Trainer``
wraps it in epochs of shuffled mini-batches, with an atomic checkpoint after
each epoch so Ctrl-C loses at most the epoch in progress.
"""

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .api import initializer, load_split, make, random_params
from .errors import FwError, FwWarning
from .layers import Dense, Network, layer_error
from .plugin_manager import get_registry


def _cosine(progress):
    return 0.5 * (1 + math.cos(math.pi * progress))


def _flat_cosine(progress, flat=0.75):
    return 1.0 if progress < flat else _cosine((progress - flat) / (1 - flat))


#: train.lr_schedule -> the fraction of the base lr at a point (0..1) of the run; None: constant.
#: flat_cosine keeps the full lr for 75% of the steps, then decays it to 0 (fastai's fit_flat_cos).
#: On Fashion-MNIST 784-100-10 with Adam at 0.001, 10 epochs, seeds 0-2, it gave test accuracy
#: 0.8848-0.8850, against 0.8786-0.8813 for cosine over the whole run and 0.8795-0.8802 for linear.
SCHEDULES = {"constant": None, "cosine": _cosine, "flat_cosine": _flat_cosine}


class Backprop:
    """Parameters ``[W1, b1, W2, b2, ...]`` with a forward pass and its backward pass.

    Gradients land in ``self.grads`` (same order, reused every step). When the
    loss declares a fused activation equal to the output activation
    (cross-entropy with softmax), the output layer's gradient comes from the
    loss directly, as in the book's SoftmaxWithLoss.
    """

    def __init__(self, params, activations, loss):
        self.params, self.activations, self.loss = params, activations, loss
        self.fused = loss.fused_activation is not None and loss.fused_activation == activations[-1].name
        self.grads = [np.zeros_like(p) for p in params]

    def forward(self, x):
        """The output, keeping each layer's input, pre-activation and output for backward."""
        self.cache = []
        h = x
        for i, act in enumerate(self.activations):
            W, b = self.params[2 * i], self.params[2 * i + 1]
            a = h @ W
            a += b
            z = _checked(act, act.forward, 2 * i + 2, a, a)
            self.cache.append((h, a, z))
            h = z
        return h

    def backward(self, t):
        """Fill ``self.grads`` for one-hot targets ``t``; returns the batch loss."""
        y = self.cache[-1][2]
        loss = self.loss.forward(y, t)
        last = len(self.activations) - 1
        dz = None if self.fused else self.loss.backward(y, t)
        for i in range(last, -1, -1):
            h, a, z = self.cache[i]
            if i == last and self.fused:
                da = self.loss.backward_fused(y, t)
            else:
                act = self.activations[i]
                da = _checked(act, act.backward, 2 * i + 2, a, a, z, dz)
            np.matmul(h.T, da, out=self.grads[2 * i])
            np.sum(da, axis=0, out=self.grads[2 * i + 1])
            if i:
                dz = da @ self.params[2 * i].T
        return loss


def _checked(layer, method, index, like, *args):
    """``method(*args)``, with a plugin's failure or wrong output shape named by layer."""
    try:
        out = method(*args)
        if getattr(out, "shape", None) != like.shape:
            raise ValueError(
                f"{method.__name__} returned shape {getattr(out, 'shape', type(out).__name__)} "
                f"for input shape {like.shape}; it must keep the shape"
            )
        return out
    except FwError:
        raise
    except Exception as e:
        raise layer_error(index, layer, e) from e


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
        t, m = cfg.train, cfg.model
        sizes = list(m.sizes)
        acts = [make(self.registry, "activations", m.activation, "model.activation") for _ in sizes[2:]]
        acts.append(
            make(
                self.registry,
                "activations",
                m.output_activation,
                "model.output_activation",
            )
        )
        self.loss = make(self.registry, "losses", t.loss, "train.loss")
        fused = self.loss.fused_activation is not None and self.loss.fused_activation == acts[-1].name
        for key, act in [
            *(("model.activation", a) for a in acts[:-1]),
            *([] if fused else [("model.output_activation", acts[-1])]),
        ]:
            if not act.has_backward():
                raise FwError(
                    f"{key}: activation '{act.name}' ({type(act).__name__}) has no derivative, so fw train cannot "
                    "use it; add backward(self, x, y, dout) returning dL/dx to the class (fw run works without it)"
                )
        self.optimizer = make(self.registry, "optimizers", t.optimizer, "train.optimizer")
        self.base_lr = getattr(self.optimizer, "lr", None)
        self.schedule = SCHEDULES[t.lr_schedule]
        if self.schedule and not isinstance(self.base_lr, (int, float)):
            raise FwError(
                f"train.lr_schedule={t.lr_schedule} needs an optimizer with an `lr` attribute, and "
                f"'{self.optimizer.name}' has none; set train.lr_schedule=constant"
            )
        self.rng = np.random.default_rng(t.seed)
        init = initializer(cfg, self.registry)
        params = [p for pair in random_params(sizes, init, self.rng) for p in pair]
        self.model = Backprop(params, acts, self.loss)
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
        x, t = (
            x.reshape(len(x), -1),
            _labels(t),
        )  # a dense network sees (N, 1, 28, 28) as (N, 784)
        x_test, t_test = x_test.reshape(len(x_test), -1), _labels(t_test)
        epochs, batch_size = (
            self.cfg.train.epochs,
            self.cfg.train.batch_size,
        )  # plain ints: no omegaconf in the loop
        n, classes = len(x), self.cfg.model.sizes[-1]
        if t.size and t.max() >= classes:
            raise FwError(
                f"the labels go up to {t.max()} but model.sizes ends with {classes} outputs; "
                f"set the last of model.sizes to {t.max() + 1} or more"
            )
        bs = min(batch_size, n)
        steps = math.ceil(n / bs)
        xb = np.empty((bs, x.shape[1]), np.float32)
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
                    y = self.model.forward(xb[:k])
                    loss = self.model.backward(tb[:k])
                if not math.isfinite(loss):
                    self._diverged(epoch, loss)
                total_loss += loss * k
                correct += np.count_nonzero(y.argmax(axis=1) == t[idx])
                self.optimizer.update(self.model.params, self.model.grads)
                if progress:
                    progress(epoch, step + 1, steps)
            seconds = time.perf_counter() - start
            report = Epoch(
                epoch,
                total_loss / n,
                float(correct) / n,
                self.accuracy(x_test, t_test),
                seconds,
                self._lr(),
            )
            if report.train_accuracy <= 1.5 / classes:
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

    def _lr_now(self):
        return f" (now {self.base_lr})" if isinstance(self.base_lr, (int, float)) else ""

    def _diverged(self, epoch, loss):
        for i, (_, a, z) in enumerate(self.model.cache):  # an activation that makes NaN from numbers?
            if np.isnan(z).any() and np.isfinite(a).all():
                act = self.model.activations[i]
                raise FwError(
                    f"layer {2 * i + 2} of the network, activation '{act.name}' ({type(act).__name__}), "
                    "returned NaN for finite input; fix its forward"
                )
        kept = f"epoch {self.history[-1].epoch} is in {self.checkpoint_path}" if self.history else "nothing was written"
        lr = self._lr_now()
        raise FwError(
            f"training diverged in epoch {epoch}: the loss became {loss}; lower train.optimizer.lr{lr} "
            f"or choose another optimizer ({kept})"
        )

    def accuracy(self, x, t):
        from .api import evaluate

        return evaluate(self.network(), x, t, batch_size=10_000).accuracy if len(x) else float("nan")

    def network(self) -> Network:
        p = self.model.params
        layers = []
        for i, act in enumerate(self.model.activations):
            layers += [Dense(p[2 * i], p[2 * i + 1]), act]
        return Network(layers)

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
        arrays = {f"param{i}": p for i, p in enumerate(self.model.params)}
        arrays.update({f"opt_{k}": np.asarray(v) for k, v in self.optimizer.state().items()})
        arrays["meta"] = np.array(
            json.dumps(
                {
                    "fingerprint": self.fingerprint(),
                    "history": [asdict(e) for e in self.history],
                    "rng": self.rng.bit_generator.state,
                    "lr": self._lr(),
                }
            )
        )
        _write(self.checkpoint_path, lambda f: np.savez(f, **arrays))

    def resume(self):
        """Continue from the checkpoint: parameters, optimizer state, shuffling and history."""
        path = self.checkpoint_path
        if not path.is_file():
            raise FwError(f"no checkpoint to resume from at {path}; run fw train without --resume to start")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                params = [z[f"param{i}"] for i in range(len(self.model.params))]
                opt = {k[4:]: z[k] for k in z.files if k.startswith("opt_")}
        except FwError:
            raise
        except Exception as e:
            raise FwError(
                f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); delete it to start over"
            ) from e
        if meta["fingerprint"] != self.fingerprint():
            changed = _differences(json.loads(meta["fingerprint"]), json.loads(self.fingerprint()))
            raise FwError(
                f"{path} was written for a different dataset, model or train config ({changed}); "
                "restore that config, or delete the checkpoint to start over"
            )
        if not all(np.isfinite(p).all() for p in params):
            raise FwError(f"{path}: holds NaN or Inf weights; delete it to start over")
        for mine, saved in zip(self.model.params, params):
            mine[...] = saved
        self.optimizer.load_state({k: (v.item() if v.ndim == 0 else v.copy()) for k, v in opt.items()})
        self.rng.bit_generator.state = meta["rng"]
        self.history = [Epoch(**e) for e in meta["history"]]
        if "lr" in meta and hasattr(self.optimizer, "lr"):
            self.optimizer.lr = meta["lr"]
        return len(self.history)

    def save_weights(self) -> Path:
        """Write W1, b1, ... in the book's layout, as npz or pickle, atomically."""
        arrays = {}
        for i in range(len(self.model.activations)):
            arrays[f"W{i + 1}"] = self.model.params[2 * i]
            arrays[f"b{i + 1}"] = self.model.params[2 * i + 1]
        if self.format == "npz":
            _write(self.weights_path, lambda f: np.savez(f, **arrays))
        else:
            import pickle

            _write(self.weights_path, lambda f: pickle.dump(arrays, f, protocol=4))
        return self.weights_path


def check_writable(path: Path, what: str, overwrite: bool):
    """Refuse, before any work, an output that is a folder, read-only, or already there without --force."""
    from .files import is_writable_dir

    if path.is_dir():
        raise FwError(f"{what} {path} is a folder; give a file name")
    if not is_writable_dir(path.parent):
        raise FwError(f"{what} {path}: its folder is read-only; choose a writable place")
    if path.exists() and not overwrite:
        raise FwError(f"{what} {path} already exists; add --force to replace it, or choose a new name")


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


def _write(path: Path, write):
    """Write atomically; a failure names the file and what to check."""
    from .files import atomic_write

    try:
        atomic_write(path, write)
    except OSError as e:
        raise FwError(f"cannot write {path}: {e.strerror or e}; check that its folder is writable and has space") from e
