r"""A real PyTorch model comes into fw: the book's SimpleConvNet, built in PyTorch, exported with
torch.onnx.export, imported with `fw import-onnx`, and run by `fw run`'s network on the MNIST test set.

The network is chapter 7's SimpleConvNet written as a PyTorch user would
(conv 30x5x5, ReLU, max-pool 2x2, ``x.view(x.size(0), -1)``, Linear 100, ReLU,
Linear 10), holding the book's own trained weights (../shared/data/book/params.pkl,
read through fw's restricted unpickler), or PyTorch's initial ones with
--random. It is exported with both of PyTorch's exporters, where they run:
the default torch.export-based one (dynamo=True, which needs onnxscript) and
the TorchScript-based one (dynamo=False), each with a dynamic batch axis. Each
file goes through the `fw import-onnx` command, and the network `fw run` would
build from what it wrote classifies the 10,000 test images; the script reports
how many of PyTorch's answers fw gives, and the largest difference in scores.

    pip install torch==2.13.0 onnx          # the CPU wheel; plus onnxscript for the default exporter
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        FW_DATA_DIR=../shared/data python benchmarks/torch_import.py [--random] [--json]

Not a test, and not in CI: torch is in no extra of fw's.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import framework as fw

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data")


def simple_convnet(torch, random):
    from torch import nn

    class SimpleConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 30, 5)
            self.fc1 = nn.Linear(30 * 12 * 12, 100)
            self.fc2 = nn.Linear(100, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = x.view(x.size(0), -1)
            return self.fc2(torch.relu(self.fc1(x)))

    net = SimpleConvNet().eval()
    if not random:
        path = data_dir() / "book" / "params.pkl"
        arrays = fw.get_registry().get("weight_importers", "pickle", "params.pkl")().load(path)
        with torch.no_grad():
            for layer, k in ((net.conv1, 1), (net.fc1, 2), (net.fc2, 3)):
                W = arrays[f"W{k}"].astype(np.float32)
                layer.weight.copy_(torch.from_numpy(W if W.ndim == 4 else W.T.copy()))  # Linear keeps (out, in)
                layer.bias.copy_(torch.from_numpy(arrays[f"b{k}"].astype(np.float32)))
    return net


def export(torch, net, path, dynamo):
    x = torch.zeros(1, 1, 28, 28)
    if dynamo:
        batch = torch.export.Dim("batch")
        torch.onnx.export(
            net,
            (x,),
            str(path),
            input_names=["image"],
            output_names=["scores"],
            dynamo=True,
            external_data=False,
            dynamic_shapes=({0: batch},),
        )
    else:
        torch.onnx.export(
            net,
            (x,),
            str(path),
            input_names=["image"],
            output_names=["scores"],
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
        )


def compare(torch, net, dynamo, work, x, t):
    """Export, `fw import-onnx`, then fw's answers against PyTorch's on ``x``."""
    import onnx

    path = work / f"simple_convnet_{'dynamo' if dynamo else 'torchscript'}.onnx"
    export(torch, net, path, dynamo)
    out = path.with_suffix(".yaml")
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.cli",
            "import-onnx",
            str(path),
            str(out),
            f"dataset.root={data_dir() / 'mnist'}",
            "--force",
        ],
        capture_output=True,
        text=True,
    )
    if ran.returncode:
        return {"exporter": path.stem, "error": ran.stderr.strip()}
    imported = fw.build_network(fw.load_config(str(out)))
    with torch.no_grad():
        theirs = np.concatenate([net(torch.from_numpy(x[a : a + 1000])).numpy() for a in range(0, len(x), 1000)])
    ours = np.concatenate([imported.predict(x[a : a + 1000]) for a in range(0, len(x), 1000)])
    labels = imported.classify(x)  # what fw run counts
    return {
        "exporter": path.stem,
        "nodes": len(onnx.load(str(path)).graph.node),
        "layers": [type(layer).name for layer in imported.layers],
        "agree": int((labels == theirs.argmax(axis=1)).sum()),
        "total": len(x),
        "max_score_difference": float(np.abs(ours - theirs).max()),
        "fw_correct": int((labels == t).sum()),
        "torch_correct": int((theirs.argmax(axis=1) == t).sum()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--random", action="store_true", help="PyTorch's initial weights instead of the book's params.pkl"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("benchmarks/torch_import.py needs PyTorch: pip install torch==2.13.0")
    torch.manual_seed(0)
    net = simple_convnet(torch, args.random)
    cfg = fw.load_config(
        "mnist_infer", [f"dataset.root={data_dir() / 'mnist'}", "dataset.flatten=false", "weights=null"]
    )
    x, t = fw.load_dataset(cfg)
    exporters = [True, False]
    try:
        import onnxscript  # noqa: F401 - the default exporter's dependency
    except ImportError:
        exporters = [False]
        print("(onnxscript is not installed: only the TorchScript exporter, dynamo=False)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as work:
        results = [compare(torch, net, dynamo, Path(work), x, t) for dynamo in exporters]
    if args.json:
        print(
            json.dumps(
                {"torch": torch.__version__, "weights": "random" if args.random else "params.pkl", "results": results}
            )
        )
        return
    print(
        f"PyTorch {torch.__version__}, the book's SimpleConvNet with "
        f"{'random' if args.random else 'its trained (params.pkl)'} weights, MNIST test set"
    )
    for r in results:
        if "error" in r:
            print(f"  {r['exporter']}: {r['error']}")
            continue
        print(
            f"  {r['exporter']}: {r['nodes']} nodes -> {', '.join(r['layers'])}\n"
            f"    fw gives PyTorch's class for {r['agree']}/{r['total']} images; "
            f"largest score difference {r['max_score_difference']:.2e}; "
            f"accuracy fw {r['fw_correct']}/{r['total']}, PyTorch {r['torch_correct']}/{r['total']}"
        )


if __name__ == "__main__":
    main()
