"""Whole processes, start to exit: wall and CPU time (median, spread) and peak memory (max RSS).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/process.py [--json] [--breakdown]

Compares, each run as its own process:

- ``fw run configs/mnist_infer.yaml`` with a warm cache (.npy cache and its
  verification record in place);
- the same, cold: a fresh ``XDG_CACHE_HOME`` for every run, so only the .gz
  files exist (the shared data folder is read-only, so the cache goes there);
- ``benchmarks/book_method.py``: the book's ``load_mnist`` with its pickle
  cache (warm) and batches of 100;
- ``fw --help`` and ``python -c "import numpy"``.

The commands run in interleaved rounds after warm-up rounds, and each ratio
is taken round by round (fw's run against the book's run next to it), so a
machine that slows down during the call moves both sides. The figures are the
median, then [min-max] across rounds. CPU time (user + system) suffers less
than wall time from other work on the machine. fw's own modules are
byte-compiled first (``compileall``, into the git-ignored ``__pycache__``), as
``pip install`` does; otherwise a ``PYTHONDONTWRITEBYTECODE=1`` environment
would make every run recompile them. Peak memory is each child's own
``ru_maxrss`` from ``os.wait4``.

``--breakdown`` shows where a warm ``fw run`` and the book's process spend
their time instead: the phases of each, timed inside the process (median of
``--rounds`` interleaved runs), and ``python -X importtime``'s self time by
package.
"""

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIG = "configs/mnist_infer.yaml"


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data").resolve()


def measure(argv, env):
    """(wall seconds, CPU seconds, peak RSS in MiB) of one process; it must exit 0.

    The child's output goes to files, not pipes, so ``os.wait4`` (not Popen) reaps it and
    returns its own resource usage.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0 or (b"Accuracy" in stdout and b"0.9352" not in stdout):
        sys.exit(f"{' '.join(map(str, argv))} failed ({proc.returncode}): {(stderr or stdout).decode()[-500:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux reports KiB


def spread(values, scale=1.0, digits=0):
    """'median [min-max]' of ``values`` times ``scale``."""
    v = [x * scale for x in values]
    return f"{statistics.median(v):.{digits}f} [{min(v):.{digits}f}-{max(v):.{digits}f}]"


def prepare(work):
    data = data_dir()
    compileall.compile_dir(REPO / "framework", quiet=1)
    compileall.compile_dir(REPO / "plugins", quiet=1)
    env = {**os.environ, "FW_DATA_DIR": str(data), "XDG_CACHE_HOME": str(work / "warm")}
    book = [sys.executable, "benchmarks/book_method.py", str(data), str(work / "mnist.pkl")]
    measure([str(BIN / "fw"), "run", CONFIG], env)  # build the warm cache...
    measure(book, env)  # ...and the book's pickle
    time.sleep(2.1)  # the verification record is written only for files over 2 s old
    measure([str(BIN / "fw"), "run", CONFIG], env)
    return data, env, book


def processes(args):
    work = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    fw_run = [str(BIN / "fw"), "run", CONFIG]
    cold = iter(range(10**6))
    try:
        data, env, book = prepare(work)

        def cold_env():  # only the .gz files: a cache folder no run has used
            return {**env, "XDG_CACHE_HOME": str(work / f"cold{next(cold)}")}

        commands = {
            "fw run, warm cache": (fw_run, lambda: env),
            "book method process": (book, lambda: env),
            "fw run, cold (only .gz)": (fw_run, cold_env),
            "fw --help": ([str(BIN / "fw"), "--help"], lambda: env),
            "python -c 'import numpy'": ([sys.executable, "-c", "import numpy"], lambda: env),
        }
        results = {name: [] for name in commands}
        for rnd in range(args.warmup + args.rounds):
            for name, (cmd, make_env) in commands.items():
                figures = measure(cmd, make_env())
                if rnd >= args.warmup:
                    results[name].append(figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def col(name, i):
        return [r[i] for r in results[name]]

    def ratios(a, b, i=0):
        return [x / y for x, y in zip(col(a, i), col(b, i))]

    warm, book_p, help_, numpy_ = "fw run, warm cache", "book method process", "fw --help", "python -c 'import numpy'"
    table = {
        name: {
            "wall_ms": spread(col(name, 0), 1000),
            "cpu_ms": spread(col(name, 1), 1000),
            "peak_mib": max(col(name, 2)),
        }
        for name in commands
    }
    checks = {
        "fw run warm / book method process, wall (target <= 0.8)": spread(ratios(warm, book_p), digits=2),
        "fw run warm / book method process, cpu": spread(ratios(warm, book_p, 1), digits=2),
        "fw --help / import numpy, wall (target <= 1.2)": spread(ratios(help_, numpy_), digits=2),
        "fw run cold / warm, wall (target <= 2)": spread(ratios("fw run, cold (only .gz)", warm), digits=2),
        "fw run warm peak MiB (target <= 80)": f"{max(col(warm, 2)):.1f}",
    }
    result = {
        "rounds": args.rounds,
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "processes": table,
        "ratios": checks,
        "raw": results,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    warn_blas(result)
    print(f"{'process':28} {'wall ms, median [min-max]':>28} {'cpu ms, median [min-max]':>28} {'peak MiB':>9}")
    for name, row in table.items():
        print(f"{name:28} {row['wall_ms']:>28} {row['cpu_ms']:>28} {row['peak_mib']:9.1f}")
    print(f"\nratios, round by round, median [min-max] of {args.rounds}:")
    for name, value in checks.items():
        print(f"  {name}: {value}")


# --breakdown: where the time goes inside each process.

FW_PHASES = f"""
import json, sys, time
marks, t0 = {{}}, time.perf_counter()
def mark(name):
    global t0
    t = time.perf_counter(); marks[name] = 1000 * (t - t0); t0 = t
import framework.cli, framework.cli.commands
mark("import fw's CLI (argparse, json)")
import numpy
mark("import numpy")
import omegaconf
mark("import omegaconf (+ yaml, antlr grammar)")
from framework import api
from framework.config import load_config
from framework.plugin_system.manager import get_registry
mark("import fw's core (api, layers, config, registry)")
cfg = load_config({CONFIG!r})
mark("load_config: parse, merge, resolve, validate")
registry = get_registry(cfg.plugins)
mark("get_registry")
for kind, name in [("datasets", "mnist"), ("activations", "sigmoid"), ("activations", "softmax"),
                   ("weight_importers", "pickle")]:
    registry.get(kind, name, "")
mark("the plugins it uses: import, register")
x, t = api.load_dataset(cfg, registry)
mark("load the data (.npy cache, normalise)")
net = api.build_network(cfg, registry)
mark("load the weights, build the network")
result = api.evaluate(net, x, t, cfg.batch_size)
assert result.correct == 9352
mark("classify (forward pass)")
print(json.dumps(marks))
"""

BOOK_PHASES = """
import json, os, pickle, sys, time
marks, t0 = {}, time.perf_counter()
def mark(name):
    global t0
    t = time.perf_counter(); marks[name] = 1000 * (t - t0); t0 = t
import numpy as np
mark("import numpy")
sys.path.insert(0, "benchmarks")
import book_method as b
data_dir, pkl = sys.argv[1:3]
x, t = b.load_mnist(data_dir, pkl)
mark("load the data (pickle cache, normalise)")
with open(os.path.join(data_dir, "book", "sample_weight.pkl"), "rb") as f:
    network = pickle.load(f)
mark("load the weights")
correct = 0
for i in range(0, len(x), 100):
    correct += int(np.sum(np.argmax(b.predict(network, x[i:i + 100]), axis=1) == t[i:i + 100]))
assert correct == 9352
mark("classify (forward pass)")
print(json.dumps(marks))
"""


def _phases(code, argv, env):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=REPO, capture_output=True, text=True)
    wall = 1000 * (time.perf_counter() - start)
    if out.returncode:
        sys.exit(out.stderr[-1000:])
    marks = json.loads(out.stdout.splitlines()[-1])
    return {**marks, "python start-up and exit (the rest)": wall - sum(marks.values()), "whole process": wall}


def _import_groups(env):
    """``-X importtime`` self time of one warm fw run, in ms, summed by top-level package."""
    out = subprocess.run(
        [str(BIN / "python"), "-X", "importtime", str(BIN / "fw"), "run", CONFIG],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    groups = {}
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            name = m[2]
            top = name if name.startswith("framework.plugins.") else name.split(".")[0]
            if name.startswith(("importlib.metadata", "email", "zipfile", "csv")):
                top = "importlib.metadata (+ email, zipfile, csv)"
            groups[top] = groups.get(top, 0) + int(m[1]) / 1000
    return groups


def breakdown(args):
    work = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    try:
        data, env, _ = prepare(work)
        book_argv = [str(data), str(work / "mnist.pkl")]
        fw, book, imports = [], [], []
        for rnd in range(args.warmup + args.rounds):
            f, b, i = _phases(FW_PHASES, [], env), _phases(BOOK_PHASES, book_argv, env), _import_groups(env)
            if rnd >= args.warmup:
                fw.append(f), book.append(b), imports.append(i)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def table(runs):
        return {k: spread([r.get(k, 0) for r in runs], digits=1) for k in runs[0]}

    groups = {k for r in imports for k in r}
    by_group = {k: statistics.median(r.get(k, 0) for r in imports) for k in groups}
    top = sorted(by_group, key=by_group.get, reverse=True)[:14]
    result = {
        "rounds": args.rounds,
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "fw_run_phases_ms": table(fw),
        "book_phases_ms": table(book),
        "fw_run_import_self_ms": {k: spread([r.get(k, 0) for r in imports], digits=1) for k in top},
        "fw_run_import_total_ms": spread([sum(r.values()) for r in imports], digits=1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    warn_blas(result)
    for title, rows in (
        ("fw run configs/mnist_infer.yaml (warm), phases in ms", result["fw_run_phases_ms"]),
        ("benchmarks/book_method.py (warm pickle), phases in ms", result["book_phases_ms"]),
        ("fw run, -X importtime self time by package, ms", result["fw_run_import_self_ms"]),
    ):
        print(f"{title}, median [min-max] of {args.rounds}:")
        for name, value in rows.items():
            print(f"  {name:48} {value:>24}")
    print(f"  {'all imports':48} {result['fw_run_import_total_ms']:>24}")


def warn_blas(result):
    if result["openblas_env"]:
        print(f"warning: {result['openblas_env']} set; rerun under `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds (default 11)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--breakdown", action="store_true", help="phases and imports of fw run and of the book's process"
    )
    args = parser.parse_args(argv)
    breakdown(args) if args.breakdown else processes(args)


if __name__ == "__main__":
    main()
