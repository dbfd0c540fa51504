r"""Where a training step of a ConvNet config spends its time, layer by layer.

Runs fw train's own step (Trainer.step and the optimizer) on batches of 100
Fashion-MNIST training images, with a timer around every layer's forward and
backward and around the optimizer's update; the rest of the loop (batch copy,
loss) is what remains of the step. --config picks the network:
configs/fashion_cnn.yaml (the SimpleConvNet, the default) or
configs/fashion_deep_cnn.yaml (the DeepConvNet). Not a test: run it by hand,
beside benchmarks/train.py --cnn or --deep.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python benchmarks/cnn_profile.py [--config fashion_deep_cnn.yaml] [--steps 300]
"""

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import framework as fw
from framework.api import load_split
from framework.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def timed(totals, key, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def timed_method(totals, labels, what, method):
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            totals[f"{labels.get(id(self), '?')} {what}"] += time.perf_counter() - start

    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="fashion_cnn.yaml", help="a config in configs/ (default fashion_cnn.yaml)")
    parser.add_argument("--steps", type=int, default=300, help="training steps to time (default 300, half an epoch)")
    args = parser.parse_args()

    root = Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data") / "fashion-mnist"
    cfg = fw.load_config(
        REPO / "configs" / args.config, [f"dataset.root={root}", f"weights.path={tempfile.mkdtemp()}/w.npz"]
    )
    x, t = load_split(cfg, "train")
    trainer = Trainer(cfg)
    net, bs = trainer.net, cfg.train.batch_size
    x = net.as_input(x)
    totals = defaultdict(float)
    labels = {id(layer): f"{i} {layer.name}" for i, layer in enumerate(net.layers)}
    for cls in {type(layer) for layer in net.layers}:  # the network calls layer(x, train) and layer.backprop(dout)
        cls.__call__ = timed_method(totals, labels, "forward", cls.__call__)
        cls.backprop = timed_method(totals, labels, "backward", cls.backprop)
    trainer.optimizer.update = timed(totals, "optimizer update", trainer.optimizer.update)

    rng = np.random.default_rng(0)
    xb, tb = np.empty((bs, *x.shape[1:]), np.float32), np.zeros((bs, 10), np.float32)

    def step():
        idx = rng.integers(0, len(x), bs)
        np.take(x, idx, axis=0, out=xb)
        tb[...] = 0
        tb[np.arange(bs), t[idx]] = 1
        trainer.step(xb, tb)
        trainer.optimizer.update(net.parameters(), net.gradients())

    for _ in range(20):  # warm up: buffers sized, caches filled
        step()
    totals.clear()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    whole = time.perf_counter() - start
    per_step = {k: v / args.steps * 1e3 for k, v in totals.items()}
    parts = sum(per_step.values())
    print(
        f"{args.steps} steps of batch {bs}: {whole / args.steps * 1e3:.2f} "
        f"ms a step ({whole / args.steps * 600:.1f} s an epoch)"
    )
    for key in sorted(per_step, key=lambda k: (int(k.split()[0]) if k[0].isdigit() else 99, "backward" in k)):
        print(f"  {key:<32} {per_step[key]:7.2f} ms")
    print(f"  {'rest (batch copy, loss, ...)':<32} {whole / args.steps * 1e3 - parts:7.2f} ms")


if __name__ == "__main__":
    main()
