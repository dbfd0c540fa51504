"""Each of the DeepConvNet's six convolutions alone: fw's conv2d against PyTorch's, batch of 100.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_layers.py [--rounds 9] [--json]

For each conv2d layer of configs/fashion_deep_cnn.yaml (its seeded weights), on random inputs of
a batch of 100: the training forward pass, and the backward pass (the weight
and bias gradients, and the input's for every layer but the first, as in
training). fw runs ``Conv2D.forward(x, train=True)`` and ``backward``;
PyTorch runs ``nn.Conv2d`` and ``torch.autograd.grad`` on the same weights.
The two take turns in blocks of 5 steps (forward then backward, as in
training), with a pause after each block, for PyTorch's threads keep
spinning for a while after its calls and would slow fw's next block (as
benchmarks/forward.py found). The figures are medians, and the rates count
the layer's useful multiply-adds (2 x filters x channels x 9 per output
value; backward twice that). For scale, the run first measures one core's
float32 matrix-product rate (numpy, 1024 x 1024) with OpenBLAS on one
thread: both cores' peak is about twice that.

Why it exists: to show where the DeepConvNet's time goes against PyTorch,
layer by layer (docs/performance.md). Not a test: run it by hand. Needs the
CPU build of PyTorch.
"""

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import framework as fw
from framework.core import threads

REPO = Path(__file__).resolve().parents[1]
BATCH = 100


def convolutions():
    """The conv2d layers of configs/fashion_deep_cnn.yaml, built with its seeded weights."""
    cfg = fw.load_config(REPO / "configs" / "fashion_deep_cnn.yaml", ["weights=null"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weights=null's chance-level notice: no accuracy is measured here
        net = fw.build_network(cfg)
    return [layer for layer in net.layers if layer.name == "conv2d"]


def one_core_gflops(rounds=9):
    """numpy's float32 1024^3 product on one OpenBLAS thread, in GFLOP/s (median of ``rounds``)."""
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    out = np.empty_like(a)
    seconds = []

    def task(worker, i):  # threads.run holds OpenBLAS to one thread for the call
        start = time.perf_counter()
        np.matmul(a, a, out=out)
        seconds.append(time.perf_counter() - start)

    for _ in range(rounds + 2):
        threads.run(task, 1, linger=False)
    del seconds[:2]  # warm-up
    return 2 * 1024**3 / statistics.median(seconds) / 1e9


def layer_methods(layer, rng):
    """``{name: (forward, backward)}`` for fw and PyTorch on the same weights and data, and the forward's flops."""
    import torch

    c, filters, (kh, kw) = layer.in_shape[0], layer.filters, layer.kernel_size
    out_shape = (filters, *layer.out_hw)
    layer.input_grad = c > 1  # the first layer needs no input gradient, in fw as in PyTorch
    x = rng.standard_normal((BATCH, *layer.in_shape), dtype=np.float32)
    grad = rng.standard_normal((BATCH, *out_shape), dtype=np.float32)

    conv = torch.nn.Conv2d(c, filters, layer.kernel_size, layer.stride, layer.padding)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(layer.params["W"]))
        conv.bias.copy_(torch.from_numpy(layer.params["b"]))
    xt = torch.from_numpy(x).requires_grad_(c > 1)
    gt = torch.from_numpy(grad)
    wrt = [conv.weight, conv.bias, *([xt] if c > 1 else [])]
    kept = {}

    def torch_forward():
        kept["y"] = conv(xt)

    def torch_backward():
        torch.autograd.grad(kept["y"], wrt, gt, retain_graph=True)

    methods = {
        "fw": (lambda: layer.forward(x, train=True), lambda: layer.backward(grad)),
        "PyTorch": (torch_forward, torch_backward),
    }
    return methods, 2 * filters * c * kh * kw * out_shape[1] * out_shape[2] * BATCH


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed blocks of 5 steps of each (default 9)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds of rest after each block (default 0.3)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("needs PyTorch: pip install torch --index-url https://download.pytorch.org/whl/cpu") from None

    peak = one_core_gflops()
    rng = np.random.default_rng(0)
    rows = []
    for layer in convolutions():
        methods, flops = layer_methods(layer, rng)
        ms = {(name, p): [] for name in methods for p in ("forward", "backward")}
        for rnd in range(args.rounds + 1):  # an untimed round first
            for name, (forward, backward) in methods.items():
                for _ in range(5):
                    f, b = timed(forward), timed(backward)
                    if rnd:
                        ms[name, "forward"].append(f * 1e3)
                        ms[name, "backward"].append(b * 1e3)
                time.sleep(args.pause)
        (c, _, side), padding = layer.in_shape, layer.padding[0]
        row = {"layer": f"{c}->{layer.filters}, {side}x{side}, padding {padding}"}
        for (name, p), values in ms.items():
            row[f"{name} {p} ms"] = statistics.median(values)
            work = flops if p == "forward" else 2 * flops if c > 1 else flops  # no input gradient for the first
            row[f"{name} {p} GFLOP/s"] = work / statistics.median(values) / 1e6
        rows.append(row)

    result = {
        "one_core_gflops": peak,
        "torch_threads": torch.get_num_threads(),
        "workers": threads.workers().count,
        "layers": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"one core, numpy float32 1024^3 on one thread: {peak:.0f} GFLOP/s; "
        f"fw {result['workers']} workers, torch {result['torch_threads']} threads"
    )
    print(
        f"{'layer (batch of 100)':28} {'forward ms: fw / PyTorch':>26} "
        f"{'GFLOP/s':>12} {'backward ms: fw / PyTorch':>27} {'GFLOP/s':>12}"
    )
    for r in rows:
        fwd = f"{r['fw forward ms']:.2f} / {r['PyTorch forward ms']:.2f}"
        bwd = f"{r['fw backward ms']:.2f} / {r['PyTorch backward ms']:.2f}"
        print(
            f"{r['layer']:28} {fwd:>26} {r['fw forward GFLOP/s']:>5.0f} / {r['PyTorch forward GFLOP/s']:<4.0f}"
            f" {bwd:>27} {r['fw backward GFLOP/s']:>5.0f} / {r['PyTorch backward GFLOP/s']:<4.0f}"
        )
    total = {
        k: sum(r[k] for r in rows)
        for k in ("fw forward ms", "PyTorch forward ms", "fw backward ms", "PyTorch backward ms")
    }
    print(
        f"{'all six':28} {total['fw forward ms']:>12.2f} / {total['PyTorch forward ms']:<11.2f}{'':13}"
        f" {total['fw backward ms']:>13.2f} / {total['PyTorch backward ms']:.2f}"
    )


if __name__ == "__main__":
    main()
