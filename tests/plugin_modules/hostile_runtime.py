"""Plugin classes that load fine and misbehave later, when fw calls them.

Each exits (``sys.exit(0)``) or raises an exception whose ``__str__`` raises,
from the method fw calls: an activation's forward, a dataset's load_raw, an
importer's load, an optimizer's update. ``tiny`` is a small, well-behaved
dataset (random images) to train on.
"""

import sys

import numpy as np

from framework import Activation, Dataset, Optimizer, WeightImporter, hookimpl


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("__str__ refuses")


class ExitForward(Activation):
    name = "exit_forward"

    def forward(self, x):
        sys.exit(0)


class UnprintableForward(Activation):
    name = "unprintable_forward"

    def forward(self, x):
        raise Unprintable()


class Tiny(Dataset):
    name = "tiny"
    num_classes = 10

    def load_raw(self, split):
        rng = np.random.default_rng(0 if split == "train" else 1)
        return rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 10, 50)


class ExitLoadRaw(Tiny):
    name = "exit_load_raw"

    def load_raw(self, split):
        sys.exit(0)


class ExitLoad(WeightImporter):
    name = "exit_load"

    def load(self, path):
        sys.exit(0)


class ExitUpdate(Optimizer):
    name = "exit_update"
    lr = 0.01

    def update(self, params, grads):
        sys.exit(0)


@hookimpl
def register_activations(register):
    register(ExitForward)
    register(UnprintableForward)


@hookimpl
def register_datasets(register):
    register(Tiny)
    register(ExitLoadRaw)


@hookimpl
def register_weight_importers(register):
    register(ExitLoad)


@hookimpl
def register_optimizers(register):
    register(ExitUpdate)
