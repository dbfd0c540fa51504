r"""How long the csv dataset takes to load a table: 100,000 rows of 20 columns and a label.

Two tables: 20 numeric columns; and 15 numeric and 5 of words with blanks
(``--categorical 5``, the default; 0 for numbers only). It writes the CSV into a
temporary folder, then times, alternately, fw's load (read, parse, check every
value, type the columns, stratified split, fit the preparation, fill blanks,
standardise, one-hot: ``CSVDataset.load("train")`` on a fresh instance) and
numpy.loadtxt of the numeric columns of the same file (its C parser, no
checks), and prints medians with their range:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python benchmarks/csv_load.py [--rows 100000] [--categorical 5] [--rounds 7] [--json]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = np.array(["", "NA", "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"])


def write_table(path, rows, columns, categorical=0, seed=0):
    """The last ``categorical`` columns hold words, about one in five cells blank ("" or NA)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns - categorical)) * 10
    words = WORDS[rng.integers(0, len(WORDS), (rows, categorical))]
    labels = rng.integers(0, 3, rows)
    header = ",".join([*(f"f{j}" for j in range(columns)), "label"])
    body = "\n".join(",".join([*(f"{v:.6g}" for v in row), *w, f"class_{k}"]) for row, w, k in zip(x, words, labels))
    path.write_text(header + "\n" + body + "\n")


def fw_load(path):
    from framework.plugins.csv_dataset import CSVDataset

    x, _ = CSVDataset(path=str(path), label="label").load("train")
    return x


def numpy_load(path, numeric):
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(numeric))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--columns", type=int, default=20)
    ap.add_argument("--categorical", type=int, default=5, help="of the columns, how many hold words (with blanks)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        write_table(path, args.rows, args.columns, args.categorical)
        numeric = args.columns - args.categorical
        size = path.stat().st_size
        times = {"fw": [], "numpy.loadtxt": []}
        for _ in range(args.rounds):
            for name, load in (("fw", lambda: fw_load(path)), ("numpy.loadtxt", lambda: numpy_load(path, numeric))):
                start = time.perf_counter()
                load()
                times[name].append(time.perf_counter() - start)
    result = {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t)} for name, t in times.items()}
    result["ratio_fw_to_loadtxt"] = statistics.median(a / b for a, b in zip(times["fw"], times["numpy.loadtxt"]))
    result.update(
        rows=args.rows,
        columns=args.columns,
        categorical=args.categorical,
        megabytes=round(size / 1e6, 1),
        rounds=args.rounds,
    )
    if args.json:
        print(json.dumps(result))
        return
    kinds = (
        f"{numeric} numeric and {args.categorical} word columns with blanks"
        if args.categorical
        else f"{args.columns} numeric columns"
    )
    print(
        f"{args.rows:,} rows x {kinds} + a label ({size / 1e6:.1f} MB), "
        f"{args.rounds} rounds (numpy.loadtxt: the {numeric} numeric):"
    )
    for name in times:
        r = result[name]
        print(f"  {name:<14} {r['median_s']:.2f} s [{r['min_s']:.2f}-{r['max_s']:.2f}]")
    print(f"  fw / numpy.loadtxt: {result['ratio_fw_to_loadtxt']:.2f} (median of the per-round ratios)")


if __name__ == "__main__":
    main()
