"""fw: the network of "Deep Learning from Scratch" chapter 3 as a plugin framework.

The four-line notebook API::

    import framework as fw
    cfg = fw.load_config("configs/mnist_infer.yaml", ["batch_size=1000"])
    net = fw.build_network(cfg)
    x, t = fw.load_dataset(cfg)
    print(fw.evaluate(net, x, t, batch_size=cfg.batch_size).accuracy)

Plugin authors need only the base classes (``Layer``, ``Activation``,
``Dataset``, ``WeightImporter``; for training ``Optimizer``, ``Loss``,
``Initializer``) and ``hookimpl``. Heavier parts load on first use, so ``fw --help`` stays fast.
"""

from .activation import Activation
from .dataset import Dataset
from .errors import FwError
from .initializer import Initializer
from .layer import Layer
from .loss import Loss
from .optimizer import Optimizer
from .weights import WeightImporter

__version__ = "0.1.0"

# Loaded on first use, so `fw --help` pays for neither pluggy nor numpy.
_LAZY = {
    "hookimpl": "hookspecs",
    "load_config": "config",
    "build_network": "api",
    "load_dataset": "api",
    "evaluate": "api",
    "get_registry": "plugin_manager",
    "Network": "network",
}

__all__ = ["Activation", "Dataset", "FwError", "Initializer", "Layer", "Loss", "Optimizer", "WeightImporter", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'framework' has no attribute {name!r}")
