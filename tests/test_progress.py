"""fw train in a terminal: tqdm's line with the time left, steps per second and the running loss;
nothing of it in pipes; the epoch lines with the epoch's wall time; ``--json`` unchanged."""

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from framework.cli import train_output

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "fashion_train.yaml")
#: tqdm's line: ``epoch 1/2:  40%|####      | 54/135 [00:00<00:01, 98.20step/s, loss 0.8977  acc 0.7034]``.
PROGRESS = re.compile(
    r"epoch 1/2: +\d+%\|.*\| \d+/135 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+step/s, loss \d+\.\d{4}  acc 0\.\d{4}\]"
)


@pytest.fixture
def overrides(fashion_full_dir, tmp_path):
    """Two short epochs of 135 steps (2,700 images in batches of 20, and 300 held out for validation)."""
    return [
        f"dataset.root={fashion_full_dir}",
        f"weights.path={tmp_path}/w.npz",
        "model.sizes=[784,16,10]",
        "dataset.limit=3000",
        "train.epochs=2",
        "train.batch_size=20",
        "train.validation_fraction=0.1",
    ]


def fw_train(args, cwd, terminal=("stdout", "stderr")):
    """Run ``fw train`` in a child process whose streams named in ``terminal`` are a 120-column pseudo-terminal
    and the others pipes: ``(exit code, stdout, stderr)``, what went to the terminal in each stream that did.

    tqdm redraws after every step (TQDM_MININTERVAL=0, not every 0.1 s), so however fast the machine, the
    line shows the time left before the epoch ends."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    streams = {name: slave if name in terminal else subprocess.PIPE for name in ("stdout", "stderr")}
    command = [sys.executable, "-m", "framework.cli", "train", *args]
    env = {**os.environ, "TQDM_MININTERVAL": "0"}
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, **streams)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out, err = proc.communicate(timeout=120)
    seen = seen.decode(errors="replace")
    return proc.returncode, out.decode() if out is not None else seen, err.decode() if err is not None else seen


@pytest.mark.slow
def test_in_a_terminal_the_line_shows_the_time_left_and_the_running_loss(overrides, tmp_path):
    code, out, _ = fw_train([CONFIG, *overrides], tmp_path)
    assert code == 0, out
    assert PROGRESS.search(out), out[:3000]
    # The epoch lines: validation first, the test accuracy labelled as test, the epoch's wall time.
    lines = [line.rsplit("\r", 1)[-1] for line in out.splitlines() if "train acc" in line]
    assert len(lines) == 2, out[-3000:]
    line = re.compile(
        r"epoch 1/2  val loss \d\.\d{4}  val acc \d\.\d{4}  loss \d\.\d{4}  train acc \d\.\d{4}  "
        r"test acc \d\.\d{4}  \d+\.\d\d s$"
    )
    assert line.match(lines[0]), lines[0]

    # In pipes (logs, CI, tests) no progress line at all: the epoch lines only.
    code, out, err = fw_train([CONFIG, *overrides, "train.epochs=1", "--force"], tmp_path, terminal=())
    assert code == 0, err
    assert "step/s" not in err and "\r" not in err and "\r" not in out
    assert out.startswith("epoch 1/1  val loss ")


@pytest.mark.slow
def test_json_is_unchanged_while_the_terminal_shows_progress(overrides, tmp_path):
    """``fw train --json | jq``: stdout holds the same JSON lines as before, stderr (the terminal) the progress."""
    code, out, err = fw_train([CONFIG, *overrides, "--json"], tmp_path, terminal=("stderr",))
    assert code == 0, err
    assert PROGRESS.search(err), err[:3000]
    epochs = [json.loads(line) for line in out.splitlines()]
    assert [list(e) for e in epochs] == [
        ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy", "seconds", "lr"]
    ] * 2
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(type(v) is (int if k == "epoch" else float) for e in epochs for k, v in e.items())


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


def test_the_epoch_line_gives_the_epochs_wall_time_not_only_its_steps(monkeypatch, capsys):
    """``seconds`` (in --json and the run record) counts the steps; the epoch line, everything since the last one:
    the evaluations, the callbacks and the checkpoint too."""
    clock = FakeClock()
    monkeypatch.setattr(train_output, "time", clock)
    lines = train_output.EpochLines()
    lines.on_train_begin({"epochs": 10})
    logs = {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8, "test_accuracy": 0.75, "seconds": 1.25, "lr": 0.1}
    clock.now += 4.5
    lines.on_epoch_end(1, logs)
    clock.now += 3.0
    lines.on_epoch_end(2, {**logs, "epoch": 2})
    assert capsys.readouterr().out.splitlines() == [
        "epoch  1/10  loss 0.5000  train acc 0.8000  test acc 0.7500  4.50 s",
        "epoch  2/10  loss 0.5000  train acc 0.8000  test acc 0.7500  3.00 s",
    ]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_without_tqdm_a_terminal_gets_the_epoch_lines_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` raises ImportError
    terminal = Terminal()
    progress = train_output.Progress(terminal)
    progress.on_train_begin({"epochs": 2})
    for step in (1, 2, 3):
        progress.on_batch_end(1, step, 3, {"loss": 0.5, "accuracy": 0.75})
    progress.on_epoch_end(1, {})
    progress.close()
    assert terminal.getvalue() == ""
