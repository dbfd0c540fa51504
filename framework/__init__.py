"""fw: a small plugin-based neural-network framework, from "Deep Learning from Scratch" chapters 3 to 8.

The four-line notebook API::

    import framework as fw
    cfg = fw.load_config("configs/mnist_infer.yaml")
    net = fw.build_network(cfg)
    x, t = fw.load_dataset(cfg)
    print(fw.evaluate(net, x, t).accuracy)

Plugin authors need only the base classes exported here and ``hookimpl``. Heavier
parts load on first use, so ``fw --help`` stays fast. The packages' floors
(``errors``, ``safeio``, ``core`` and ``data``, this module, ``plugin_system`` and
``interchange``, ``config``, ``training``, ``api`` and ``testing``, ``cli``) are
described once, in docs/architecture.md, and held by tests/test_layout.py.
"""

from .core.activation import Activation
from .core.callback import Callback
from .core.initializer import Initializer
from .core.layer import Layer
from .core.loss import Loss
from .core.optimizer import Optimizer
from .data.dataset import Dataset
from .data.weights import WeightImporter, WeightWriter
from .errors import FwError

__version__ = "0.1.0"

# Loaded on first use, so `fw --help` pays for neither pluggy nor numpy.
_LAZY = {
    "hookimpl": "plugin_system.hookspecs",
    "load_config": "config",
    "build_network": "api",
    "load_dataset": "api",
    "evaluate": "api",
    "get_registry": "plugin_system.manager",
    "Network": "core.network",
}

__all__ = [
    "Activation",
    "Callback",
    "Dataset",
    "FwError",
    "Initializer",
    "Layer",
    "Loss",
    "Optimizer",
    "WeightImporter",
    "WeightWriter",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'framework' has no attribute {name!r}")
