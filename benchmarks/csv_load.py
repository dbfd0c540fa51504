"""How long the csv dataset takes to load a table: 100,000 rows of 20 numeric columns and a label.

It writes the CSV into a temporary folder (18.6 MB), then times, alternately,
fw's load (read, parse, check every value, stratified split, standardise:
``CSVDataset.load("train")`` on a fresh instance) and numpy.loadtxt of the
same numbers (its C parser, no checks), and prints medians with their range:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/csv_load.py [--rows 100000] [--rounds 7] [--json]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_table(path, rows, columns, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)) * 10
    labels = rng.integers(0, 3, rows)
    header = ",".join([*(f"f{j}" for j in range(columns)), "label"])
    body = "\n".join(",".join([*(f"{v:.6g}" for v in row), f"class_{k}"]) for row, k in zip(x, labels))
    path.write_text(header + "\n" + body + "\n")


def fw_load(path):
    from framework.plugins.csv_dataset import CSVDataset

    x, _ = CSVDataset(path=str(path), label="label").load("train")
    return x


def numpy_load(path, columns):
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(columns))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--columns", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        write_table(path, args.rows, args.columns)
        size = path.stat().st_size
        times = {"fw": [], "numpy.loadtxt": []}
        for _ in range(args.rounds):
            for name, load in (("fw", lambda: fw_load(path)), ("numpy.loadtxt", lambda: numpy_load(path, args.columns))):
                start = time.perf_counter()
                load()
                times[name].append(time.perf_counter() - start)
    result = {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t)} for name, t in times.items()}
    result["ratio_fw_to_loadtxt"] = statistics.median(a / b for a, b in zip(times["fw"], times["numpy.loadtxt"]))
    result.update(rows=args.rows, columns=args.columns, megabytes=round(size / 1e6, 1), rounds=args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.rows:,} rows x {args.columns} numeric columns + a label ({size / 1e6:.1f} MB), {args.rounds} rounds:")
    for name in times:
        r = result[name]
        print(f"  {name:<14} {r['median_s']:.2f} s [{r['min_s']:.2f}-{r['max_s']:.2f}]")
    print(f"  fw / numpy.loadtxt: {result['ratio_fw_to_loadtxt']:.2f} (median of the per-round ratios)")


if __name__ == "__main__":
    main()
