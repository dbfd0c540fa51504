"""The book's layers: Affine (``dense``, chapter 5), Dropout and BatchNormalization (chapter 6), and flatten.

Each keeps what its backward needs only when ``forward`` runs with
``train=True``, and writes gradients into arrays it reuses every step.
"""

from typing import Annotated

import numpy as np

from framework import Layer, hookimpl
from framework.core.initializer import Initializer, draw


def _reuse(grads, key, like):
    """``grads[key]``, made (again) only when it is missing or no longer fits ``like``."""
    g = grads.get(key)
    if g is None or g.shape != like.shape or g.dtype != like.dtype:
        g = grads[key] = np.empty_like(like)
    return g


class Dense(Layer):
    """``x @ W + b``, the book's Affine. An image input (N, C, H, W) is flattened first, as the book's is.

    ``W`` is (inputs, units), as in the book's ``sample_weight.pkl``. ``init``
    is the Initializer fw resolves from the config (its ``init:`` key, else the
    network's choice: He for ReLU, Xavier for sigmoid); built from Python
    without one, the layer draws He's.
    """

    name = "dense"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    weight_names = ("W",)  # weight decay applies to W, not to b

    def __init__(self, units: Annotated[int, "a positive whole number"], init: Initializer | None = None):
        if units <= 0:
            raise ValueError(f"units must be a positive whole number, got {units!r}")
        self.units, self.init = units, init

    @classmethod
    def from_weights(cls, W, b):
        """A dense layer holding given weights, e.g. ``Dense.from_weights(W1, b1)``."""
        layer = cls(int(np.shape(W)[1]))
        layer.params["W"] = np.ascontiguousarray(W, dtype=np.float32)
        layer.params["b"] = np.ascontiguousarray(b, dtype=np.float32)
        return layer

    @property
    def W(self):
        return self.params["W"]

    @property
    def b(self):
        return self.params["b"]

    def build(self, input_shape, rng):
        fan_in = int(np.prod(input_shape))
        if "W" in self.params:  # made from given weights
            if self.params["W"].shape[0] != fan_in:
                raise ValueError(f"its W has {self.params['W'].shape[0]} inputs, but its input has {fan_in} values")
        else:
            self.params["W"] = draw(self.init or _he(), (fan_in, self.units), rng)
            self.params["b"] = np.zeros(self.units, np.float32)
        return (self.units,)

    def forward(self, x, train=False):
        x2 = x.reshape(len(x), -1)
        y = x2 @ self.params["W"]
        y += self.params["b"]
        if train:
            self.x, self.input_shape = x2, x.shape
        return y

    def forward_into(self, x, out):
        np.matmul(x.reshape(len(x), -1), self.params["W"], out=out)
        out += self.params["b"]
        return out

    def backward(self, dout):
        W = self.params["W"]
        np.matmul(self.x.T, dout, out=_reuse(self.grads, "W", W))
        np.sum(dout, axis=0, out=_reuse(self.grads, "b", self.params["b"]))
        if not self.input_grad:
            return None
        return (dout @ W.T).reshape(self.input_shape)

    def __repr__(self):
        W = self.params.get("W")
        return f"Dense({W.shape[0]}, {W.shape[1]})" if W is not None else f"Dense(units={self.units})"

    onnx_ops = ("Gemm", "MatMul")

    @classmethod
    def from_onnx(cls, node):
        """Gemm (PyTorch's Linear: W as (outputs, inputs), transB set), or MatMul and the Add of a bias after it."""
        from framework.interchange.onnx_steps import dense_entry

        if node.op_type == "MatMul":
            add = node.fold("Add")
            return dense_entry(node, node.weight(1), add.operand() if add is not None else None)
        a = node.allow(transA=(0,))
        B = node.weight(1)
        if B.ndim != 2:
            raise node.fail(f"its B has shape {B.shape}; a dense layer's weights are a matrix")
        W, C = B.T if a.get("transB", 0) else B, node.weight(2, required=False)
        if a.get("alpha", 1.0) != 1.0:
            W = W * np.float32(a["alpha"])
        if C is not None and a.get("beta", 1.0) != 1.0:
            C = C * np.float32(a["beta"])
        return dense_entry(node, W, C)

    def to_onnx(self, graph, x):
        """Gemm (x @ W + b), after a Flatten when the input is an image, as forward flattens it."""
        if len(graph.input_shape) > 1:
            x = graph.op("Flatten", x, axis=1)
        return graph.op("Gemm", x, graph.weight("W", self.params["W"]), graph.weight("b", self.params["b"]))


def _he():
    from framework.plugins.initializers import He

    return He()


_INVERTED = "true (scale in training) or false (the book's: scale at inference)"


class Dropout(Layer):
    """The book's Dropout: in training each value is kept with probability ``1 - rate``.

    ``inverted: true`` (the default, PyTorch's and Keras's rule) scales the
    kept values by ``1 / (1 - rate)`` in training, so inference is the
    identity. ``inverted: false`` is the book's own rule: training drops
    without scaling and inference multiplies by ``1 - rate``. The expected
    output is the same; weights trained by the book's code need its rule.
    """

    name = "dropout"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    inplace = True

    def __init__(
        self, rate: Annotated[float, "at least 0 and below 1"] = 0.5, inverted: Annotated[bool, _INVERTED] = True
    ):
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be at least 0 and below 1, got {rate!r}")
        if not isinstance(inverted, bool):  # from Python too: inverted="false" would be true
            raise ValueError(f"inverted must be {_INVERTED}, got {inverted!r}")
        self.rate, self.inverted = float(rate), inverted

    def build(self, input_shape, rng):
        self.rng = rng  # the masks come from the config's seed: same seed, same training run
        return tuple(input_shape)

    def forward(self, x, train=False):
        if not train:
            return x if self.inverted or not self.rate else x * x.dtype.type(1 - self.rate)
        if not self.rate:
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= np.float32(self.rate)
        self.mask = keep * np.float32(1 / (1 - self.rate) if self.inverted else 1)
        return x * self.mask

    def forward_into(self, x, out):
        if self.inverted or not self.rate:
            return x  # the identity: the network keeps using x, owned or not
        return np.multiply(x, x.dtype.type(1 - self.rate), out=out)

    def backward(self, dout):
        return dout * self.mask if self.rate else dout

    onnx_ops = ("Dropout",)

    @classmethod
    def from_onnx(cls, node):
        """The identity at inference, kept as a dropout layer with its rate (so the config can be trained on)."""
        rate = node.attrs.get("ratio", 0.5)  # an attribute before opset 12
        ratio = node.weight(1, required=False)
        if ratio is not None:
            if ratio.size != 1:
                raise node.fail(f"its ratio has shape {ratio.shape}; a rate is one number")
            rate = float(ratio.reshape(-1)[0])
        mode = node.value(2)
        if mode is not None and (mode.size != 1 or bool(mode.reshape(-1)[0])):
            raise node.fail("has training_mode on, so it drops values at inference; fw imports models for inference")
        if not 0 <= rate < 1:
            raise node.fail(f"ratio {rate}; a dropout rate is at least 0 and below 1")
        return {"name": cls.name, "rate": float(f"{rate:.7g}")}, {}

    def to_onnx(self, graph, x):
        """ONNX Dropout, the identity at inference (its ratio kept for importers);
        the book's rule, a Mul by 1 - rate."""
        if getattr(self, "inverted", True):
            return graph.op("Dropout", x, np.float32(self.rate))
        return graph.op("Mul", x, np.float32(1 - self.rate))


class BatchNorm(Layer):
    """The book's BatchNormalization: normalise each feature over the batch, then scale and shift.

    Statistics are taken per feature for (N, D) input and per channel for
    (N, C, H, W). In training the batch's mean and variance are used and the
    running ones updated (``running = momentum * running + (1 - momentum) *
    batch``, the book's convention); at inference the running ones are used.
    They are saved with the weights (``buffers``) but not trained.
    """

    name = "batch_norm"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads
    inplace = True
    weight_names = ()  # gamma and beta are not decayed

    def __init__(
        self,
        momentum: Annotated[float, "a number at least 0 and below 1"] = 0.9,
        eps: Annotated[float, "a small positive number (below 1, e.g. 1e-5)"] = 1e-5,
    ):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be a number at least 0 and below 1, got {momentum!r}")
        if not 0 < eps < 1:  # it is added to a variance: 1 or more swamps the data
            raise ValueError(f"eps must be a small positive number (below 1, e.g. 1e-5), got {eps!r}")
        self.momentum, self.eps = float(momentum), float(eps)

    def build(self, input_shape, rng):
        if len(input_shape) not in (1, 3):
            raise ValueError(
                f"batch_norm takes (features,) or (channels, height, width) input, not {tuple(input_shape)}"
            )
        n = input_shape[0]
        self.params["gamma"] = np.ones(n, np.float32)
        self.params["beta"] = np.zeros(n, np.float32)
        self.buffers["running_mean"] = np.zeros(n, np.float32)
        self.buffers["running_var"] = np.ones(n, np.float32)
        # Reduce over the batch (and the image's height and width); broadcast per feature/channel.
        self.axes = (0,) if len(input_shape) == 1 else (0, 2, 3)
        self.shape = (1, n) if len(input_shape) == 1 else (1, n, 1, 1)
        return tuple(input_shape)

    def forward(self, x, train=False):
        gamma, beta = (self.params[k].reshape(self.shape) for k in ("gamma", "beta"))
        if not train:
            scale, shift = self._affine()
            return x * scale + shift
        mu = x.mean(axis=self.axes, keepdims=True)
        xc = x - mu
        var = np.mean(xc * xc, axis=self.axes, keepdims=True)
        std = np.sqrt(var + np.float32(self.eps))
        xn = xc / std
        m = np.float32(self.momentum)
        self.buffers["running_mean"] *= m
        self.buffers["running_mean"] += (1 - m) * mu.reshape(-1)
        self.buffers["running_var"] *= m
        self.buffers["running_var"] += (1 - m) * var.reshape(-1)
        self.xn, self.std = xn, std
        return gamma * xn + beta

    def _affine(self):
        """Inference as one multiply-add: ``x * scale + shift``."""
        scale = self.params["gamma"] / np.sqrt(self.buffers["running_var"] + np.float32(self.eps))
        shift = self.params["beta"] - self.buffers["running_mean"] * scale
        return scale.reshape(self.shape), shift.reshape(self.shape)

    def forward_into(self, x, out):
        scale, shift = self._affine()
        np.multiply(x, scale, out=out)
        out += shift
        return out

    def backward(self, dout):
        axes, xn, std = self.axes, self.xn, self.std
        m = dout.size // dout.shape[1]  # values per feature in the batch
        np.sum(dout * xn, axis=axes, out=_reuse(self.grads, "gamma", self.params["gamma"]))
        np.sum(dout, axis=axes, out=_reuse(self.grads, "beta", self.params["beta"]))
        if not self.input_grad:
            return None
        # dx = gamma / std * (dout - mean(dout) - xn * mean(dout * xn)), the book's steps combined
        dxn = dout * self.params["gamma"].reshape(self.shape)
        mean_d = dxn.sum(axis=axes, keepdims=True) / np.float32(m)
        mean_dx = (dxn * xn).sum(axis=axes, keepdims=True) / np.float32(m)
        return (dxn - mean_d - xn * mean_dx) / std

    onnx_ops = ("BatchNormalization",)

    @classmethod
    def from_onnx(cls, node):
        """BatchNormalization in inference mode, on features or image channels."""
        from framework.interchange.onnx_steps import batch_shape

        a, shape = node.allow(training_mode=(0,), spatial=(1,)), node.input_shape
        if len(shape) not in (1, 3):
            raise node.fail(
                f"gets a tensor of shape {batch_shape(shape)}; fw's batch_norm takes (batch, features) or images"
            )
        stats = [node.weight(k) for k in (1, 2, 3, 4)]
        if any(s.shape != (shape[0],) for s in stats):
            raise node.fail(f"its statistics have shapes {[s.shape for s in stats]}, not ({shape[0]},) each")
        if (stats[3] < 0).any():
            raise node.fail("its running variance has negative values; the file is damaged")
        eps, momentum = (
            float(f"{a.get(k, d):.7g}") for k, d in (("epsilon", 1e-5), ("momentum", 0.9))
        )  # float32, as written
        if eps <= 0 or not 0 <= momentum < 1:
            raise node.fail(
                f"epsilon={eps}, momentum={momentum}; fw's batch_norm needs epsilon > 0 and 0 <= momentum < 1"
            )
        entry = (
            {"name": cls.name}
            | ({"momentum": momentum} if momentum != 0.9 else {})
            | ({"eps": eps} if eps != 1e-5 else {})
        )
        arrays = dict(zip(("gamma", "beta", "running_mean", "running_var"), stats))
        return (entry if len(entry) > 1 else cls.name), arrays

    def to_onnx(self, graph, x):
        """BatchNormalization in inference mode, with the running statistics (the same momentum convention)."""
        p, b = self.params, self.buffers
        stats = [graph.weight(k, t[k]) for k, t in (("gamma", p), ("beta", p), ("running_mean", b), ("running_var", b))]
        return graph.op("BatchNormalization", x, *stats, epsilon=self.eps, momentum=self.momentum)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), so dense layers can follow images (``dataset.flatten: false``)."""

    name = "flatten"
    thread_safe = True  # inference keeps nothing in self: classify may share chunks between threads

    def build(self, input_shape, rng):
        return (int(np.prod(input_shape)),)

    def forward(self, x, train=False):
        if train:
            self.input_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self.input_shape)

    onnx_ops = ("Flatten", "Reshape")

    @classmethod
    def from_onnx(cls, node):
        """A Flatten, or a Reshape to (batch, features); nothing when the input is flat already."""
        from framework.interchange.onnx_steps import flattens

        return (cls.name, {}) if flattens(node) and len(node.input_shape) > 1 else None

    def to_onnx(self, graph, x):
        return graph.op("Flatten", x, axis=1)


@hookimpl
def register_layers(register):
    for cls in (Dense, Dropout, BatchNorm, Flatten):
        register(cls)
