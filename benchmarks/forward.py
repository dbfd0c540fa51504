"""The forward pass of the book's 784-50-100-10 network over the 10,000 MNIST
test images, side by side in one process: fw, the book's code, PyTorch and
ONNX Runtime, with the same weights. Not a test: run it by hand.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/forward.py [--json] [--profile]

Every method must classify 9352 of the 10,000 images correctly, or the script
stops. Methods run in interleaved rounds (one call of each per round, after
warm-up rounds), so a noisy neighbour slows all of them alike; the figures are
medians. A pause follows every call: ONNX Runtime's and PyTorch's thread pools
keep spinning for a while after a call, and would otherwise slow whichever
method runs next (fw by 1.5-2x when measured). A method whose package is not installed is skipped with a note
(``pip install -e '.[bench]'`` installs all but PyTorch, whose PyPI wheel is the CUDA build;
get the CPU one with ``pip install torch --index-url https://download.pytorch.org/whl/cpu``).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import framework as fw

sys.path.insert(0, str(Path(__file__).parent))
import book_method  # the book's sigmoid/softmax/predict, shared with the process benchmark

REPO = Path(__file__).resolve().parents[1]
EXPECTED_CORRECT = 9352


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data")


#: --net: the book's pretrained sigmoid network, or a 784-100-10 ReLU network with fw's seeded He weights.
NETS = {
    "book": ["weights.path={data}/book/sample_weight.pkl"],
    "relu": ["model.sizes=[784,100,10]", "model.activation=relu", "weights=null"],
}


def load(data: Path, net_name="book"):
    """fw's network and test set, and the network's weights as the book's raw W1, b1, ... dict."""
    import warnings

    cfg = fw.load_config(
        REPO / "configs" / "mnist_infer.yaml",
        [f"dataset.root={data / 'mnist'}", *(o.format(data=data) for o in NETS[net_name])],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weights=null's chance-level notice
        net = fw.build_network(cfg)
    x, t = fw.load_dataset(cfg)
    from framework.data.weights import book_layout

    weights = book_layout(net)  # W1, b1, ... as the book's code takes them
    return cfg, net, x, t, weights


def fw_method(cfg, net):
    """fw's public API, as `fw run` calls it: evaluate() counts the correct answers itself."""
    return lambda x, t: fw.evaluate(net, x, t, batch_size=cfg.batch_size).correct


def book_batches(weights, batch_size=100):
    """ch03/neuralnet_mnist_batch.py: batches of 100, 1/(1+exp(-x)), softmax, argmax."""

    def run(x, t):
        correct = 0
        for i in range(0, len(x), batch_size):
            p = np.argmax(book_method.predict(weights, x[i : i + batch_size]), axis=1)
            correct += np.sum(p == t[i : i + batch_size])
        return int(correct)

    return run


def book_per_image(weights):
    """ch03/neuralnet_mnist.py: one image at a time."""

    def run(x, t):
        correct = 0
        for i in range(len(x)):
            correct += np.argmax(book_method.predict(weights, x[i])) == t[i]
        return int(correct)

    return run


def torch_methods(weights, activation="sigmoid"):
    import torch

    layers = []
    n = len(weights) // 2
    for i in range(1, n + 1):
        W, b = weights[f"W{i}"], weights[f"b{i}"]
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        hidden = torch.nn.Sigmoid() if activation == "sigmoid" else torch.nn.ReLU()
        layers += [linear, hidden if i < n else torch.nn.Softmax(dim=1)]
    model = torch.nn.Sequential(*layers).eval()

    def one_batch(x, t):
        with torch.inference_mode():
            return int((model(torch.from_numpy(x)).argmax(1) == torch.from_numpy(t)).sum())

    def batches(x, t, batch_size=100):
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                correct += int((model(xt[i : i + batch_size]).argmax(1) == tt[i : i + batch_size]).sum())
        return correct

    info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    return {"PyTorch, one batch": one_batch, "PyTorch, batches of 100": batches}, info


def onnx_method(weights, activation="sigmoid"):
    """The same graph in ONNX (MatMul, Add, Sigmoid or Relu, ..., then Softmax and ArgMax), one batch."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes, inputs = [], "x"
    n = len(weights) // 2
    for i in range(1, n + 1):
        nodes += [
            helper.make_node("MatMul", [inputs, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
        ]
        inputs = f"a{i}"
        if i < n:
            nodes.append(helper.make_node("Sigmoid" if activation == "sigmoid" else "Relu", [inputs], [f"s{i}"]))
            inputs = f"s{i}"
    nodes += [
        helper.make_node("Softmax", [f"a{n}"], ["y"], axis=1),
        helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "book_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        [numpy_helper.from_array(a, name) for name, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(x, t):
        return int(np.count_nonzero(session.run(["label"], {"x": x})[0] == t))

    return {"ONNX Runtime, one batch": run}, f"onnxruntime {ort.__version__}"


def blas_info() -> str:
    from threadpoolctl import threadpool_info  # one of fw's own dependencies

    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return (
        "; ".join(
            f"{p['internal_api']} {p.get('version')} {p.get('architecture')} kernel, {p['num_threads']} threads"
            for p in blas
        )
        or "none found"
    )


def interleaved(methods, x, t, expected, args, limits=None):
    """Each method's seconds per call ``run(x, t)``, over ``args.rounds`` interleaved rounds after
    ``args.warmup`` untimed ones, with ``args.pause`` seconds of rest after each call; ``limits``:
    fewer rounds for some methods. Every call must count ``expected`` correct answers."""
    times = {name: [] for name in methods}
    for rnd in range(args.warmup + args.rounds):
        for name, run in methods.items():
            if rnd >= args.warmup + (limits or {}).get(name, args.rounds):
                continue
            start = time.perf_counter()
            correct = run(x, t)
            elapsed = time.perf_counter() - start
            time.sleep(args.pause)
            if correct != expected:
                sys.exit(f"{name}: {correct}/{len(t)} correct, not {expected}; the comparison is void")
            if rnd >= args.warmup:
                times[name].append(elapsed)
    return times


def profile(net, x, rounds=30):
    """Where fw's forward pass goes: each layer's step timed over the chunks of one
    ``classify`` call, medians of ``rounds`` calls, in ms (the rest is the NaN check and argmax)."""
    layers = net.layers[:-1] if net.layers[-1].monotonic else net.layers  # classify skips softmax
    spent = {f"{i} {layer.name}": [] for i, layer in enumerate(layers)}
    for times, layer in zip(spent.values(), layers):

        def timed(x, out, step=layer.forward_into, times=times):
            start = time.perf_counter()
            try:
                return step(x, out)
            finally:
                times[-1] += time.perf_counter() - start

        layer.forward_into = timed
    whole = []
    for _ in range(rounds):
        for times in spent.values():
            times.append(0.0)
        start = time.perf_counter()
        net.classify(x)
        whole.append(time.perf_counter() - start)
        time.sleep(0.05)
    for layer in layers:
        del layer.forward_into
    print(f"classify, the {len(x)} images: {1000 * statistics.median(whole):.2f} ms (median of {rounds})")
    for key, times in spent.items():
        print(f"  {key:<14} {1000 * statistics.median(times):7.2f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds (default 11)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--per-image-rounds", type=int, default=3, help="timed rounds of the slow per-image loop")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds of rest after each call (default 0.2)")
    parser.add_argument(
        "--net",
        choices=list(NETS),
        default="book",
        help="book: the pretrained 784-50-100-10 sigmoid network (default); "
        "relu: 784-100-10 ReLU with fw's seeded random weights (no book method)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--profile", action="store_true", help="time fw's layers one by one instead")
    args = parser.parse_args(argv)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    cfg, net, x, t, weights = load(data_dir(), args.net)
    if args.profile:
        return profile(net, x)
    activation = "sigmoid" if args.net == "book" else "relu"
    methods = {"fw": fw_method(cfg, net)}
    if args.net == "book":
        methods.update({"book, batches of 100": book_batches(weights), "book, per image": book_per_image(weights)})
    expected = EXPECTED_CORRECT if args.net == "book" else methods["fw"](x, t)  # every method must agree with fw
    notes = {}
    for extra in (torch_methods, onnx_method):
        try:
            more, notes[extra.__name__] = extra(weights, activation)
            methods.update(more)
        except ImportError as e:
            say(f"note: skipping {extra.__name__.removesuffix('_methods').removesuffix('_method')}: {e}")

    times = interleaved(methods, x, t, expected, args, limits={"book, per image": args.per_image_rounds})

    ms = {name: 1000 * statistics.median(v) for name, v in times.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "packages": notes,
        "net": args.net,
        "rounds": {name: len(v) for name, v in times.items()},
        "median_ms": ms,
        # fw's time divided by each method's: below 1 means fw is faster.
        "fw_over_method": {name: ms["fw"] / v for name, v in ms.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['machine']}; Python {result['python']}, numpy {result['numpy']}; BLAS: {result['blas']}")
    if result["openblas_env"]:
        print(f"warning: {result['openblas_env']} set; rerun under `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`")
    print(f"{'method (all ' + str(expected) + '/10000 correct)':34} {'median ms':>10} {'fw / method':>12}")
    for name in methods:
        print(f"{name:34} {ms[name]:10.1f} {result['fw_over_method'][name]:12.2f}")


if __name__ == "__main__":
    main()
