"""The book's chapter-6 optimizers: SGD, Momentum, AdaGrad and Adam.

Updates are in place on float32 arrays, with scratch buffers reused across
steps, so a training step allocates nothing per parameter. Each takes
``weight_decay`` (L2, the book's 6.4.1; default 0): ``Optimizer.decayed`` adds
``weight_decay * W`` to the gradient of every weight, not of biases or
batch-norm parameters.
"""

from typing import Annotated

import numpy as np

from framework import Optimizer, hookimpl

# fw checks a config's values against these before __init__ runs (framework.core.params); __init__ checks the range.
Positive = Annotated[float, "a positive finite number"]
Decay = Annotated[float, "a number, 0 or more (0: none)"]


def _positive(**values):
    for key, v in values.items():
        if v <= 0:
            raise ValueError(f"{key} must be a positive finite number, got {v!r}")


def _decay(weight_decay):
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be a number, 0 or more (0: none), got {weight_decay!r}")
    return float(weight_decay)


class SGD(Optimizer):
    """param -= lr * grad: the book's stochastic gradient descent."""

    name = "sgd"

    def __init__(self, lr: Positive = 0.01, weight_decay: Decay = 0):
        _positive(lr=lr)
        self.lr, self.weight_decay = lr, _decay(weight_decay)

    def update(self, params, grads):
        for p, g in zip(params, self.decayed(params, grads)):
            p -= np.float32(self.lr) * g


class Momentum(Optimizer):
    """v = momentum * v - lr * grad; param += v."""

    name = "momentum"

    def __init__(self, lr: Positive = 0.01, momentum: Positive = 0.9, weight_decay: Decay = 0):
        _positive(lr=lr, momentum=momentum)
        if momentum >= 1:
            raise ValueError(f"momentum must be below 1 (it keeps that fraction of the last step), got {momentum}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, _decay(weight_decay)

    def update(self, params, grads):
        for (name, p), g in zip(params.items(), self.decayed(params, grads)):
            v = self.slot("v", name, p)
            v *= np.float32(self.momentum)
            v -= np.float32(self.lr) * g
            p += v


class AdaGrad(Optimizer):
    """h += grad**2; param -= lr * grad / (sqrt(h) + 1e-7)."""

    name = "adagrad"

    def __init__(self, lr: Positive = 0.01, weight_decay: Decay = 0):
        _positive(lr=lr)
        self.lr, self.weight_decay = lr, _decay(weight_decay)

    def update(self, params, grads):
        for (name, p), g in zip(params.items(), self.decayed(params, grads)):
            h = self.slot("h", name, p)
            h += g * g
            p -= np.float32(self.lr) * g / (np.sqrt(h) + np.float32(1e-7))


class Adam(Optimizer):
    """Adam with bias correction folded into the step size, as the book writes it."""

    name = "adam"

    def __init__(
        self,
        lr: Positive = 0.001,
        beta1: Positive = 0.9,
        beta2: Positive = 0.999,
        eps: Positive = 1e-7,
        weight_decay: Decay = 0,
    ):
        _positive(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        if not (beta1 < 1 and beta2 < 1):
            raise ValueError("beta1 and beta2 must be below 1")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay = _decay(weight_decay)
        self.iter = 0
        self.scratch = {}  # one temporary per parameter, not saved

    def update(self, params, grads):
        self.iter += 1
        b1, b2 = self.beta1, self.beta2
        lr_t = np.float32(self.lr * np.sqrt(1.0 - b2**self.iter) / (1.0 - b1**self.iter))
        one_b1, one_b2, eps = np.float32(1 - b1), np.float32(1 - b2), np.float32(self.eps)
        for (name, p), g in zip(params.items(), self.decayed(params, grads)):
            m, v = self.slot("m", name, p), self.slot("v", name, p)
            tmp = self.scratch.get(name)
            if tmp is None or tmp.shape != p.shape:
                tmp = self.scratch[name] = np.empty_like(p)
            # m += (1 - b1) * (g - m)
            np.subtract(g, m, out=tmp)
            tmp *= one_b1
            m += tmp
            # v += (1 - b2) * (g*g - v)
            np.multiply(g, g, out=tmp)
            tmp -= v
            tmp *= one_b2
            v += tmp
            # p -= lr_t * m / (sqrt(v) + eps)
            np.sqrt(v, out=tmp)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= lr_t
            p -= tmp

    def state(self):
        return {**super().state(), "iter": self.iter}

    def load_state(self, state):
        super().load_state(state)
        self.iter = int(state["iter"])


@hookimpl
def register_optimizers(register):
    for cls in (SGD, Momentum, AdaGrad, Adam):
        register(cls)
