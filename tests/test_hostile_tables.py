"""Hostile CSV tables (issue 26, item 4.4): bounded in time and memory, each refusal one line.

A table of 100,000 columns, a 512 MB line, a quoted value of 200 KB or of more
than a line may hold. Every file is built in tmp_path; the 512 MB one is sparse.
"""

import json
import signal
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from framework.data.table import read_csv_file
from own_data import config
from test_cli import fw, one_line_error

pytestmark = pytest.mark.hostile

MIB = 1 << 20


@contextmanager
def deadline(seconds):
    """Fail the test, rather than hang it, if the block takes longer than ``seconds``."""

    def expired(*_):
        raise TimeoutError(f"took more than {seconds} s")

    before = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def test_a_table_of_100000_columns_trains_and_predicts_in_seconds(capsys, tmp_path):
    columns = 100_000
    rng = np.random.default_rng(0)
    y = np.arange(8) % 2
    x = rng.normal(size=(8, columns)) + 2.0 * y[:, None]
    names = [f"gene_{k}" for k in range(columns)]
    lines = [",".join([*names, "label"])] + [",".join([*(f"{v:.2f}" for v in row), "ab"[k]]) for row, k in zip(x, y)]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")  # about 5 MB
    cfg = config(tmp_path, "{name: csv, path: wide.csv, label: label, test_fraction: 0.25}", epochs=2)
    cfg.write_text(cfg.read_text().replace("units: 3}", "units: 2}"))
    with deadline(60):  # today's code took more than 60 s (a count of each name over the header: quadratic)
        code, _, err = fw(capsys, "train", cfg)
        assert code == 0, err
        code, out, err = fw(capsys, "predict", cfg, tmp_path / "wide.csv", "--json")
    assert code == 0, err
    assert len(out.splitlines()) == 8 and {json.loads(line)["class"] for line in out.splitlines()} <= {"a", "b"}


def test_a_name_twice_in_a_wide_header_is_found_at_once(capsys, tmp_path):
    names = [f"c{k}" for k in range(100_000)]
    names[99_000] = "c7"
    (tmp_path / "wide.csv").write_text(",".join([*names, "label"]) + "\n" + ",".join(["1"] * 100_000 + ["a"]) + "\n")
    cfg = config(tmp_path, "{name: csv, path: wide.csv, label: label}")
    with deadline(30):
        one_line_error(*fw(capsys, "train", cfg), "wide.csv line 1: the header names column 'c7' twice")


def test_a_512_mb_line_is_refused_after_reading_16_mib(tmp_path):
    """In a child process, so its peak memory is its own: today's read the whole line (5.8 GB peak here).

    The peak is the child's VmHWM: its ru_maxrss would carry over the forking pytest's own peak."""
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as f:
        f.write(b"x,label\n" + b"1" * (17 * MIB))
        f.truncate(512 * MIB)  # the rest is a hole: nothing of it is written to disk
    child = (
        "import re, sys\n"
        "from framework import FwError\n"
        "from framework.data.table import read_csv_file\n"
        "try:\n"
        "    read_csv_file(sys.argv[1])\n"
        "except FwError as e:\n"
        "    print(e)\n"
        "print(int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", child, str(huge)], capture_output=True, text=True, timeout=120)
    message, peak_mib = done.stdout.splitlines()
    assert message == f"{huge} line 2: longer than 16 MiB; a CSV line holds one example's values (is this a CSV file?)"
    assert int(peak_mib) < 200, peak_mib
    (tmp_path / "mac.csv").write_bytes(b"x,label\r" + b"1.5,a\r2.5,b\r" * 1_500_000)  # 18 MB of short lines ended by \r
    table = read_csv_file(tmp_path / "mac.csv")
    assert len(table) == 3_000_000 and table.lines[-1] == 3_000_001


def test_a_long_line_on_standard_input_is_refused_too(monkeypatch):
    import io

    from framework import FwError
    from framework.cli import predict

    stdin = io.TextIOWrapper(io.BytesIO(b"x\n" + b"2" * (17 * MIB)))
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(FwError, match="^- line 2: longer than 16 MiB"):
        predict.read_input("-", None)


def test_a_quoted_value_of_200_kb_is_one_line_naming_row_and_column(capsys, tmp_path):
    (tmp_path / "q.csv").write_text('x,label\n1,a\n"' + "1" * 200_000 + '",b\n3,a\n4,b\n')
    cfg = config(tmp_path, "{name: csv, path: q.csv, label: label}")
    one_line_error(*fw(capsys, "train", cfg), "q.csv row 2 (line 3), column 'x'", "is not a finite number")


def test_a_quoted_value_past_16_mib_is_one_line(capsys, tmp_path):
    (tmp_path / "q.csv").write_text('x,label\n1,a\n"' + ("1" * 1000 + "\n") * 17_000 + '",b\n')
    cfg = config(tmp_path, "{name: csv, path: q.csv, label: label}")
    one_line_error(
        *fw(capsys, "train", cfg),
        "q.csv row 2 (line",
        "a quoted value runs past 16 MiB; check that its quotes are paired",
    )
