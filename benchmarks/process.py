"""Whole processes, start to exit: wall time (median) and peak memory (max RSS).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/process.py [--json]

Compares, each run as its own process:

- ``fw run configs/mnist_infer.yaml`` with a warm cache (.npy cache and its
  verification record in place);
- the same, cold: a fresh ``XDG_CACHE_HOME`` for every run, so only the .gz
  files exist (the shared data folder is read-only, so the cache goes there);
- ``benchmarks/book_method.py``: the book's ``load_mnist`` with its pickle
  cache (warm) and batches of 100;
- ``fw --help`` and ``python -c "import numpy"``.

The commands run in interleaved rounds after warm-up rounds. fw's own modules
are byte-compiled first (``compileall``, into the git-ignored ``__pycache__``),
as ``pip install`` does; otherwise a ``PYTHONDONTWRITEBYTECODE=1`` environment
would make every run recompile them. Peak memory is each child's own
``ru_maxrss`` from ``os.wait4``.
"""

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data").resolve()


def measure(argv, env):
    """(seconds, peak RSS in MiB) of one process; it must exit 0."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close(), proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or (b"Accuracy" in out and b"0.9352" not in out):
        sys.exit(f"{' '.join(map(str, argv))} failed ({proc.returncode}): {(err or out).decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds (default 11)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    data = data_dir()
    compileall.compile_dir(REPO / "framework", quiet=1)
    compileall.compile_dir(REPO / "plugins", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    env = {**os.environ, "FW_DATA_DIR": str(data), "XDG_CACHE_HOME": str(work / "warm")}
    fw_run = [str(BIN / "fw"), "run", "configs/mnist_infer.yaml"]
    cold = iter(range(10**6))

    def cold_env():  # only the .gz files: a cache folder no run has used
        return {**env, "XDG_CACHE_HOME": str(work / f"cold{next(cold)}")}

    commands = {
        "fw run, warm cache": (fw_run, lambda: env),
        "fw run, cold (only .gz)": (fw_run, cold_env),
        "book method process": ([sys.executable, "benchmarks/book_method.py", str(data), str(work / "mnist.pkl")], lambda: env),
        "fw --help": ([str(BIN / "fw"), "--help"], lambda: env),
        "python -c 'import numpy'": ([sys.executable, "-c", "import numpy"], lambda: env),
    }
    results = {name: [] for name in commands}
    try:
        measure(fw_run, env)  # build the warm cache; its verification record needs it 2 s old
        time.sleep(2.1)
        for rnd in range(args.warmup + args.rounds):
            for name, (cmd, make_env) in commands.items():
                seconds, mib = measure(cmd, make_env())
                if rnd >= args.warmup:
                    results[name].append((seconds, mib))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ms = {name: 1000 * statistics.median(s for s, _ in v) for name, v in results.items()}
    peak = {name: max(m for _, m in v) for name, v in results.items()}
    ratios = {
        "fw run warm / book method process (target <= 0.6)": ms["fw run, warm cache"] / ms["book method process"],
        "fw --help / import numpy (target <= 1.2)": ms["fw --help"] / ms["python -c 'import numpy'"],
        "fw run cold / warm (target <= 2)": ms["fw run, cold (only .gz)"] / ms["fw run, warm cache"],
        "fw run warm peak MiB (target <= 80)": peak["fw run, warm cache"],
        "fw run warm peak / book method peak": peak["fw run, warm cache"] / peak["book method process"],
    }
    result = {
        "rounds": args.rounds,
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "median_ms": ms,
        "peak_mib": peak,
        "ratios": ratios,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if result["openblas_env"]:
        print(f"warning: {result['openblas_env']} set; rerun under `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`")
    print(f"{'process':28} {'median ms':>10} {'peak MiB':>9}")
    for name in commands:
        print(f"{name:28} {ms[name]:10.0f} {peak[name]:9.1f}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
