"""Training speed and accuracy side by side: fw train's loop against PyTorch on CPU.

The same task for both: Fashion-MNIST's 60,000 training images, a 784-100-10
ReLU network (configs/fashion_train.yaml) or, with --cnn, the book's
SimpleConvNet (configs/fashion_cnn.yaml: conv 30x5x5, ReLU, max-pool 2x2,
dense 100, ReLU, dense 10), with softmax and cross-entropy, Adam (lr 0.001),
batches of 100, shuffled every epoch. Epochs alternate between the two (fw,
torch, fw, ...) so a noisy neighbour slows both alike; the figures are medians of the epoch
times, which count the training steps only (test accuracy is measured after
each epoch, outside the timing). Not a test: run it by hand.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train.py [--cnn] [--epochs 10] [--json]

fw runs with its config's defaults (He init, cosine learning-rate decay);
PyTorch with its own (Kaiming-uniform init, constant lr), as a user of each
would. PyTorch is skipped with a note when it is not installed.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import framework as fw
from framework.api import load_split
from framework.training.trainer import Trainer

# Not in the [bench] extra: PyPI's torch is the CUDA build, with ~3 GB of nvidia wheels.
TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data")


def fw_runner(cfg, x, t, xt, tt):
    """One fw epoch per call, through the same Trainer that `fw train` uses."""
    trainer = Trainer(cfg)

    def epoch():
        [*_, report] = trainer.fit(x, t, xt, tt, until=len(trainer.history) + 1)
        return report.seconds, report.test_accuracy

    return epoch


def torch_model(cnn):
    """The network fw's config describes, in PyTorch."""
    from torch import nn

    if cnn:
        return nn.Sequential(
            nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4320, 100), nn.ReLU(), nn.Linear(100, 10)
        )
    return nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


def torch_runner(x, t, xt, tt, cnn=False, seed=0):
    import torch

    torch.manual_seed(seed)
    model = torch_model(cnn)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, T = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64))
    Xt, Tt = torch.from_numpy(xt), torch.from_numpy(tt.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)

    def epoch():
        order = torch.randperm(len(X), generator=gen)
        start = time.perf_counter()
        model.train()
        for i in range(0, len(X), 100):
            idx = order[i : i + 100]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), T[idx])
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            accuracy = (model(Xt).argmax(1) == Tt).float().mean().item()
        return seconds, accuracy

    return epoch, torch.__version__, torch.get_num_threads()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per method (default 5; 10 for the accuracy target)")
    parser.add_argument("--cnn", action="store_true", help="the book's SimpleConvNet (configs/fashion_cnn.yaml)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    root = data_dir() / "fashion-mnist"
    config, task = ("fashion_cnn.yaml", "SimpleConvNet") if args.cnn else ("fashion_train.yaml", "784-100-10 ReLU")
    cfg = fw.load_config(
        REPO / "configs" / config,
        [f"dataset.root={root}", f"weights.path={tempfile.mkdtemp()}/w.npz", f"train.epochs={args.epochs}"],
    )
    (x, t), (xt, tt) = load_split(cfg, "train"), load_split(cfg, "test")
    methods = {"fw": fw_runner(cfg, x, t, xt, tt)}
    notes = []
    try:
        run, version, threads = torch_runner(x, t, xt, tt, cnn=args.cnn)
        methods[f"PyTorch {version} ({threads} threads)"] = run
    except ImportError:
        notes.append(f"PyTorch not installed: skipped ({TORCH_CPU})")
    results = {name: [] for name in methods}
    for _ in range(args.epochs):
        for name, epoch in methods.items():
            results[name].append(epoch())
    summary = {
        name: {
            "median_epoch_seconds": statistics.median(s for s, _ in runs),
            "epoch_seconds": [s for s, _ in runs],
            "spread_seconds": [min(s for s, _ in runs), max(s for s, _ in runs)],
            "test_accuracy": runs[-1][1],
        }
        for name, runs in results.items()
    }
    base = summary["fw"]["median_epoch_seconds"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    if args.json:
        print(json.dumps({"machine": machine, "task": task, "epochs": args.epochs, "methods": summary, "notes": notes}, indent=2))
        return
    print(machine)
    print(f"Fashion-MNIST, {task}, Adam lr 0.001, batch 100, {args.epochs} epochs each")
    print(f"{'method':<34} {'median s/epoch':>14} {'min-max':>15} {'fw / method':>12} {'test acc':>9}")
    for name, s in summary.items():
        spread = "{:.2f}-{:.2f}".format(*s["spread_seconds"])
        print(
            f"{name:<34} {s['median_epoch_seconds']:>14.3f} {spread:>15} "
            f"{base / s['median_epoch_seconds']:>12.2f} {s['test_accuracy']:>9.4f}"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
