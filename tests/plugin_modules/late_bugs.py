"""Layer plugins that pass fw train's first-step checks and go wrong later, and a tiny dataset to train on."""

import numpy as np

from framework import Dataset, Layer, hookimpl


class TinyRandom(Dataset):
    name = "tiny_random"
    num_classes = 10
    shape = (28, 28)

    def load_raw(self, split):
        rng = np.random.default_rng(0 if split == "train" else 1)
        return rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60)


class _Counting(Layer):
    calls = 0

    def forward(self, x, train=False):
        if train:
            self.calls += 1
        return x

    def backward(self, dout):
        return dout


class InfBuffer(_Counting):
    """From its second training step on, a running statistic overflows; its output stays finite."""

    name = "inf_buffer"

    def build(self, input_shape, rng):
        self.buffers["stat"] = np.zeros(input_shape, np.float32)
        return input_shape

    def forward(self, x, train=False):
        y = super().forward(x, train)
        if self.calls > 1:
            self.buffers["stat"][...] = np.inf
        return y


class LateBadShape(_Counting):
    """From the second step on, backward drops a column of dL/dx."""

    name = "late_bad_shape"

    def backward(self, dout):
        return dout if self.calls < 2 else dout[:, :-1]


class LateBadGrad(_Counting):
    """A trainable gain whose gradient, from the second step on, has the wrong shape."""

    name = "late_bad_grad"

    def build(self, input_shape, rng):
        self.params["gain"] = np.ones(input_shape, np.float32)
        return input_shape

    def backward(self, dout):
        self.grads["gain"] = np.zeros(self.params["gain"].shape if self.calls < 2 else (3,), np.float32)
        return dout


@hookimpl
def register_datasets(register):
    register(TinyRandom)


@hookimpl
def register_layers(register):
    for cls in (InfBuffer, LateBadShape, LateBadGrad):
        register(cls)
