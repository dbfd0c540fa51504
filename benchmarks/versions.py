"""fw against another checkout of fw: the same job in both, in alternating processes.

For a change that must not slow fw down: install the other revision in its
own venv (e.g. a `git worktree` of it), then

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE FW_DATA_DIR=../shared/data \\
        python benchmarks/versions.py --other ../fw-0.1/.venv/bin/python \\
        [--job classify|classify-rows|train|deep-steps|run] [--rounds 7]

Each round starts one process per version (this one's interpreter, then the
other's, then the order swapped), so a noisy neighbour slows both alike.
- classify: the book's network (configs/mnist_infer.yaml) over the 10,000 test
  images through the public API; each process reports the median of 15 calls.
- classify-rows: the same, through `Network.classify` in calls of the
  config's `batch_size` rows (100) in both versions: the same work, whatever
  each version's `evaluate` does with `batch_size` (up to c41ea93 it ignored
  it and classified 1,024 rows a call).
- train: configs/fashion_train.yaml; each process trains two epochs and
  reports the second's time (the first pays for warm-up).
- deep-steps: configs/fashion_deep_cnn.yaml; each process times 100 training
  steps of 100 Fashion-MNIST images (after 10 untimed) and reports a step's mean.
- run: a whole `fw run configs/mnist_infer.yaml` process, start-up included
  (the venv's own `fw`, its byte-code cached in a temporary folder as an
  installed fw's is); each process reports the CPU time (user + sys, all
  threads) and the wall time of its second run. Compare venvs that hold the
  same packages: omegaconf imports attrs whenever it is installed (about 12 ms).
Prints the median per version, the spread, and this version / the other.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The book's network and the MNIST test set, loaded in the checkout given as argv[1]; the classify jobs follow.
BOOK_NETWORK = """
import json, os, statistics, sys, time
import framework as fw
data = os.environ["FW_DATA_DIR"]
cfg = fw.load_config(sys.argv[1] + "/configs/mnist_infer.yaml",
                     [f"dataset.root={data}/mnist", f"weights.path={data}/book/sample_weight.pkl"])
net = fw.build_network(cfg)
x, t = fw.load_dataset(cfg)
times = []
"""

CLASSIFY = (
    BOOK_NETWORK
    + """
for _ in range(15):
    result = fw.evaluate(net, x, t, batch_size=cfg.batch_size)
    assert result.correct == 9352, result.correct
    times.append(result.seconds)
    time.sleep(0.05)
print(json.dumps(statistics.median(times) * 1000))
"""
)

CLASSIFY_ROWS = (
    BOOK_NETWORK
    + """
for _ in range(15):
    start = time.perf_counter()
    predicted = net.classify(x, chunk_rows=cfg.batch_size)
    times.append(time.perf_counter() - start)
    assert (predicted == t).sum() == 9352
    time.sleep(0.05)
print(json.dumps(statistics.median(times) * 1000))
"""
)

TRAIN = """
import json, os, sys, tempfile
import framework as fw
from framework.api import load_split
try:
    from framework.training.trainer import Trainer
except ImportError:  # a checkout from before framework/ was split into packages
    from framework.train import Trainer
data = os.environ["FW_DATA_DIR"]
overrides = [f"dataset.root={data}/fashion-mnist", f"weights.path={tempfile.mkdtemp()}/w.npz", "train.epochs=2"]
cfg = fw.load_config(sys.argv[1] + "/configs/fashion_train.yaml", overrides)
(x, t), (xt, tt) = load_split(cfg, "train"), load_split(cfg, "test")
history = Trainer(cfg).fit(x, t, xt, tt)
print(json.dumps(history[-1].seconds * 1000))
"""

DEEP_STEPS = """
import json, os, sys, tempfile, time
import numpy as np
import framework as fw
from framework.api import load_split
from framework.training.trainer import Trainer
data = os.environ["FW_DATA_DIR"]
cfg = fw.load_config(sys.argv[1] + "/configs/fashion_deep_cnn.yaml",
                     [f"dataset.root={data}/fashion-mnist", f"weights.path={tempfile.mkdtemp()}/w.npz"])
x, t = load_split(cfg, "train")
trainer = Trainer(cfg)
net = trainer.net
x = net.as_input(x)
rng = np.random.default_rng(0)
xb, tb = np.empty((100, *x.shape[1:]), np.float32), np.zeros((100, 10), np.float32)
def step():
    idx = rng.integers(0, len(x), 100)
    np.take(x, idx, axis=0, out=xb)
    tb[...] = 0
    tb[np.arange(100), t[idx]] = 1
    trainer.step(xb, tb)
    trainer.optimizer.update(net.parameters(), net.gradients())
for _ in range(10):
    step()
start = time.perf_counter()
for _ in range(100):
    step()
print(json.dumps((time.perf_counter() - start) * 10))
"""

RUN = """
import hashlib, json, os, subprocess, sys, tempfile, time
from pathlib import Path
# Byte-code cached, as an installed fw's is, in a folder of its own (not the checkout's): warmed by a first run.
env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
tag = hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12]
env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "fw-versions-pyc" / tag)
for _ in range(2):  # the config as it ships: its data and weights from $FW_DATA_DIR
    start = time.perf_counter()
    fw = Path(sys.executable).parent / "fw"
    child = subprocess.Popen([fw, "run", "configs/mnist_infer.yaml"], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    assert status == 0, status
print(json.dumps({"cpu": (usage.ru_utime + usage.ru_stime) * 1000, "wall": wall * 1000}))
"""


def run(python, job, repo):
    out = subprocess.run([python, "-c", job, str(repo)], capture_output=True, text=True, check=False, cwd=repo)
    if out.returncode:
        sys.exit(f"{python}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", required=True, help="the python of a venv where the other fw is installed")
    jobs = {"classify": CLASSIFY, "classify-rows": CLASSIFY_ROWS, "train": TRAIN, "deep-steps": DEEP_STEPS, "run": RUN}
    parser.add_argument("--job", choices=list(jobs), default="classify")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if "FW_DATA_DIR" not in os.environ:
        os.environ["FW_DATA_DIR"] = str(REPO.parent / "shared" / "data")
    where = "import framework, pathlib; print(pathlib.Path(framework.__file__).parents[1])"
    other_repo = Path(subprocess.check_output([args.other, "-c", where], text=True, cwd="/").strip())
    job = jobs[args.job]
    pythons = {"this": (sys.executable, REPO), "other": (args.other, other_repo)}
    times = {name: [] for name in pythons}
    for r in range(args.rounds):
        order = list(pythons) if r % 2 == 0 else list(pythons)[::-1]
        for name in order:
            times[name].append(run(*pythons[name][:1], job, pythons[name][1]))
    units = {
        "classify": "ms to classify 10,000 images",
        "classify-rows": "ms to classify 10,000 images, 100 a call",
        "train": "ms for a training epoch",
        "deep-steps": "ms a training step",
    }
    if args.job == "run":  # two measures of each process
        for key, unit in (("cpu", "ms CPU time of the fw run process"), ("wall", "ms wall time of the fw run process")):
            report({name: [t[key] for t in v] for name, v in times.items()}, unit, pythons)
    else:
        report(times, units[args.job], pythons)


def report(times, unit, pythons):
    med = {name: statistics.median(v) for name, v in times.items()}
    for name, v in times.items():
        print(f"{name:>5} ({pythons[name][1]}): median {med[name]:.1f} {unit}, min {min(v):.1f}, max {max(v):.1f}")
    print(f"this / other: {med['this'] / med['other']:.3f}")


if __name__ == "__main__":
    main()
