"""The book's ConvNets classifying the 10,000 MNIST test images: fw against PyTorch, same weights.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/convnet.py [--net deep|simple] [--busy] [--json]

- ``deep`` (default): chapter 8's DeepConvNet, configs/mnist_deep_cnn.yaml,
  with the book's deep_convnet_params.pkl (9797 correct);
- ``simple``: chapter 7's SimpleConvNet, configs/mnist_cnn.yaml, with the
  book's params.pkl (9600 correct).

fw runs through its public API (``fw.evaluate``, as ``fw run`` does); PyTorch
runs the same layers with the same weights, in one batch and in batches of
100 and 1000, under ``torch.inference_mode``. The book's dropout multiplies
by 0.5 at inference: PyTorch gets that as a 0.5 in its second dense layer's
weights. Every method must get the book's count, or the script stops. The
methods run in interleaved rounds with a pause after each call (PyTorch's
idle threads keep spinning for a while), and the figures are medians with
their range, and fw's time over each method's, round by round.

``--busy`` starts a process that keeps one core busy (``while True: pass``)
for the whole run, and ends it after. Not a test: run it by hand. The weights
are read from $FW_DATA_DIR/book (default ../shared/data/book).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

import framework as fw

sys.path.insert(0, str(Path(__file__).parent))
from forward import interleaved

REPO = Path(__file__).resolve().parents[1]
NETS = {  # config, weights file, the book's count of correct answers
    "deep": ("mnist_deep_cnn.yaml", "deep_convnet_params.pkl", 9797),
    "simple": ("mnist_cnn.yaml", "params.pkl", 9600),
}


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data")


def load(net_name):
    config, weights, expected = NETS[net_name]
    data = data_dir()
    cfg = fw.load_config(
        REPO / "configs" / config, [f"dataset.root={data / 'mnist'}", f"weights.path={data / 'book' / weights}"]
    )
    return cfg, fw.build_network(cfg), *fw.load_dataset(cfg), expected


def torch_model(net, train=False):
    """fw's network as a torch.nn.Sequential with the same weights.

    For inference the book's dropout (inverted: false) becomes a factor in the
    next dense layer's weights; for training, dropout is PyTorch's (inverted).
    """
    import torch
    from torch import nn

    layers, pending_scale = [], 1.0
    for layer in net.layers:
        name, p = layer.name, {k: torch.from_numpy(np.array(v)) for k, v in layer.params.items()}
        if name == "conv2d":
            conv = nn.Conv2d(p["W"].shape[1], layer.filters, layer.kernel_size, layer.stride, layer.padding)
            conv.weight.data.copy_(p["W"]), conv.bias.data.copy_(p["b"])
            layers.append(conv)
        elif name == "dense":
            if not any(isinstance(m, nn.Flatten | nn.Linear) for m in layers):
                layers.append(nn.Flatten())
            linear = nn.Linear(*p["W"].shape)
            linear.weight.data.copy_(p["W"].T * pending_scale), linear.bias.data.copy_(p["b"])
            layers.append(linear)
            pending_scale = 1.0
        elif name == "relu":
            layers.append(nn.ReLU())
        elif name == "max_pool2d":
            layers.append(nn.MaxPool2d(layer.pool_size, layer.stride))
        elif name == "dropout" and train:
            if not layer.inverted:
                raise ValueError("PyTorch trains with inverted dropout only")
            layers.append(nn.Dropout(layer.rate))
        elif name == "dropout":
            pending_scale *= 1.0 if layer.inverted else 1 - layer.rate  # a last one scales every logit alike
        elif name != "softmax":
            raise ValueError(f"no PyTorch counterpart for {name}")
    return nn.Sequential(*layers).train(train)


def torch_methods(net):
    import torch

    model = torch_model(net)

    def batches(size):
        def run(x, t):
            xt, tt = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64))
            with torch.inference_mode():
                return sum(
                    int((model(xt[i : i + size]).argmax(1) == tt[i : i + size]).sum()) for i in range(0, len(x), size)
                )

        return run

    methods = {
        "PyTorch, one batch": batches(10**9),
        "PyTorch, batches of 1000": batches(1000),
        "PyTorch, batches of 100": batches(100),
    }
    return methods, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def busy_core():
    """A process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def spread(values, digits=2):
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", choices=list(NETS), default="deep")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of rest after each call (default 0.5)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    cfg, net, x, t, expected = load(args.net)
    methods = {"fw": lambda x, t: fw.evaluate(net, x, t, batch_size=cfg.batch_size).correct}
    notes = []
    try:
        more, info = torch_methods(net)
        methods.update(more)
        notes.append(info)
    except ImportError:
        notes.append(
            "PyTorch not installed: skipped (pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        )
    busy = busy_core() if args.busy else None
    try:
        times = interleaved(methods, x, t, expected, args)
    finally:
        if busy:
            busy.kill()
            busy.wait()
    ratios = {name: [a / b for a, b in zip(times["fw"], v)] for name, v in times.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}",
        "net": args.net,
        "busy_core": args.busy,
        "notes": notes,
        "seconds": times,
        "median_seconds": {name: statistics.median(v) for name, v in times.items()},
        "fw_over_method": {name: statistics.median(v) for name, v in ratios.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['machine']}; {'; '.join(notes)}; {'one core kept busy' if args.busy else 'no extra load'}")
    print(f"{args.net}: the 10,000 MNIST test images, {expected} correct by every method; {args.rounds} rounds")
    print(f"{'method':28} {'seconds: median [min-max]':>28} {'fw / method, by round':>28}")
    for name in methods:
        print(f"{name:28} {spread(times[name], 3):>28} {spread(ratios[name]):>28}")


if __name__ == "__main__":
    main()
