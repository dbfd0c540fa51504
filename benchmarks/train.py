r"""Training speed and accuracy side by side: fw train's loop against PyTorch on CPU.

The same task for both: Fashion-MNIST's 60,000 training images, a 784-100-10
ReLU network (configs/fashion_train.yaml); with --cnn, the book's
SimpleConvNet (configs/fashion_cnn.yaml: conv 30x5x5, ReLU, max-pool 2x2,
dense 100, ReLU, dense 10); with --deep, the book's DeepConvNet
(configs/fashion_deep_cnn.yaml); with softmax and cross-entropy, Adam (lr
0.001), batches of 100, shuffled every epoch. Epochs alternate between the two
(fw, torch, fw, ...) so a noisy neighbour slows both alike; the figures are
medians of the epoch times, which count the training steps only (test accuracy
is measured after each epoch, outside the timing). Not a test: run it by hand.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python benchmarks/train.py [--cnn | --deep] [--epochs 10] [--busy] [--json]

For the MLP and the SimpleConvNet, fw runs with its config's defaults (He
init, flat-cosine learning-rate decay) and PyTorch with its own
(Kaiming-uniform init, constant lr), as a user of each would. For --deep both
start from fw's initial weights and follow the config's schedule (Adam with
eps 1e-7, flat-cosine lr, inverted dropout 0.5): the same network and
schedule. --busy keeps one core busy with another process meanwhile. PyTorch
is skipped with a note when it is not installed.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import framework as fw
from framework.api import load_split
from framework.core.schedules import SCHEDULES
from framework.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from convnet import busy_core

# Not in the [bench] extra: PyPI's torch is the CUDA build, with ~3 GB of nvidia wheels.
TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data")


def fw_runner(cfg, x, t, xt, tt):
    """One fw epoch per call, through the same Trainer that `fw train` uses; and its network, untrained."""
    trainer = Trainer(cfg)

    def epoch():
        [*_, report] = trainer.fit(x, t, xt, tt, until=len(trainer.history) + 1)
        return report.seconds, report.test_accuracy

    return epoch, trainer.net


def torch_model(cnn):
    """The network fw's config describes, in PyTorch."""
    from torch import nn

    if cnn:
        return nn.Sequential(
            nn.Conv2d(1, 30, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4320, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        )
    return nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


def torch_runner(x, t, xt, tt, cnn=False, seed=0, like=None, schedule=None, epochs=None):
    """One PyTorch epoch per call. ``like``: start from this fw network's weights, with the
    config's ``schedule`` over ``epochs`` (else PyTorch's own init and a constant lr)."""
    import torch

    from convnet import torch_model as from_fw

    torch.manual_seed(seed)
    model = from_fw(like, train=True) if like else torch_model(cnn)
    opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7 if like else 1e-8)
    steps = -(-len(x) // 100)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: schedule(step / (epochs * steps)) if schedule else 1.0)
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
            lr.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            accuracy = sum(
                int((model(Xt[i : i + 1000]).argmax(1) == Tt[i : i + 1000]).sum()) for i in range(0, len(Xt), 1000)
            ) / len(Xt)
        return seconds, accuracy

    return epoch, torch.__version__, torch.get_num_threads()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--epochs", type=int, default=5, help="epochs per method (default 5; 10 for the accuracy target)"
    )
    parser.add_argument("--cnn", action="store_true", help="the book's SimpleConvNet (configs/fashion_cnn.yaml)")
    parser.add_argument("--deep", action="store_true", help="the book's DeepConvNet (configs/fashion_deep_cnn.yaml)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    root = data_dir() / "fashion-mnist"
    config, task = (
        ("fashion_deep_cnn.yaml", "DeepConvNet")
        if args.deep
        else ("fashion_cnn.yaml", "SimpleConvNet")
        if args.cnn
        else ("fashion_train.yaml", "784-100-10 ReLU")
    )
    cfg = fw.load_config(
        REPO / "configs" / config,
        [f"dataset.root={root}", f"weights.path={tempfile.mkdtemp()}/w.npz", f"train.epochs={args.epochs}"],
    )
    (x, t), (xt, tt) = load_split(cfg, "train"), load_split(cfg, "test")
    fw_epoch, fw_net = fw_runner(cfg, x, t, xt, tt)
    methods = {"fw": fw_epoch}
    notes = []
    try:
        same = dict(like=fw_net, schedule=SCHEDULES[cfg.train.lr_schedule], epochs=args.epochs) if args.deep else {}
        run, version, threads = torch_runner(x, t, xt, tt, cnn=args.cnn, **same)
        methods[f"PyTorch {version} ({threads} threads)"] = run
    except ImportError:
        notes.append(f"PyTorch not installed: skipped ({TORCH_CPU})")
    results = {name: [] for name in methods}
    busy = busy_core() if args.busy else None
    try:
        for k in range(1, args.epochs + 1):
            for name, epoch in methods.items():
                results[name].append(epoch())
            done = ", ".join(
                f"{name} {runs[-1][0]:.1f} s, test acc {runs[-1][1]:.4f}" for name, runs in results.items()
            )
            print(f"epoch {k}: {done}", file=sys.stderr)  # as they come: a long run stopped early still says something
    finally:
        if busy:
            busy.kill()
            busy.wait()
    summary = {
        name: {
            "median_epoch_seconds": statistics.median(s for s, _ in runs),
            "epoch_seconds": [s for s, _ in runs],
            "spread_seconds": [min(s for s, _ in runs), max(s for s, _ in runs)],
            "test_accuracy": runs[-1][1],
            "test_accuracy_per_epoch": [a for _, a in runs],
        }
        for name, runs in results.items()
    }
    runs = list(results.values())
    ratios = [a[0] / b[0] for a, b in zip(*runs)] if len(runs) == 2 else []  # epoch by epoch
    base = summary["fw"]["median_epoch_seconds"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    if args.json:
        figures = {"machine": machine, "task": task, "epochs": args.epochs, "busy_core": args.busy, "methods": summary}
        print(json.dumps({**figures, "fw_over_pytorch_by_epoch": ratios, "notes": notes}, indent=2))
        return
    print(machine)
    print(
        f"Fashion-MNIST, {task}, Adam lr 0.001, batch 100, "
        f"{args.epochs} epochs each{', one core kept busy' if args.busy else ''}"
    )
    print(f"{'method':<34} {'median s/epoch':>14} {'min-max':>15} {'fw / method':>12} {'test acc':>9}")
    for name, s in summary.items():
        spread = "{:.2f}-{:.2f}".format(*s["spread_seconds"])
        print(
            f"{name:<34} {s['median_epoch_seconds']:>14.3f} {spread:>15} "
            f"{base / s['median_epoch_seconds']:>12.2f} {s['test_accuracy']:>9.4f}"
        )
    for name, s in summary.items():
        print(f"test accuracy per epoch, {name}: {' '.join(f'{a:.4f}' for a in s['test_accuracy_per_epoch'])}")
    if ratios:
        print(
            f"fw / PyTorch epoch by epoch: median {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
