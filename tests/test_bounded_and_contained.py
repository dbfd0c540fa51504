"""Memory bounded by the shapes before anything is allocated; what plugins return is checked; the CLI's rough edges.

Each input is built here; before, each one ended in a MemoryError or gigabytes of RSS, an exit 0 with a
wrong answer, a raw OSError or RecursionError, or an error line that was all echoed input.
"""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from test_cli import BOOK, fw

MODULES = Path(__file__).parent / "plugin_modules"
REPO = Path(__file__).resolve().parents[1]


def fw_child(*args, env_extra=None, limit_as=None, timeout=120):
    """fw in a child process: (exit code, stdout, stderr, its peak RSS in MiB)."""
    env = {**os.environ, "PYTHONPATH": str(MODULES), **(env_extra or {})}

    def limit():
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    code = (
        "import resource, subprocess, sys, json\n"
        "run = subprocess.run(sys.argv[1:], capture_output=True, text=True, preexec_fn=None)\n"
        "print(json.dumps([run.returncode, run.stdout, run.stderr, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "framework.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=limit,
    )
    rc, out, err, peak = json.loads(done.stdout)
    return rc, out, err, peak / 1024


def layers(*names):
    return "model.layers=[{name: dense, units: 100}, " + ", ".join(names) + ", {name: dense, units: 10}, softmax]"


# --- 5. memory, from the shapes -----------------------------------------------------------


def test_a_million_units_under_a_1_gib_address_space_is_refused_in_one_line(mnist_dir):
    rc, out, err, _ = fw_child(
        "run", BOOK, f"dataset.root={mnist_dir}", "weights=null", "model.sizes=[784,1000000,10]", limit_as=1 << 30
    )
    assert rc == 1 and out == "" and err.count("\n") == 1, err
    line = err.splitlines()[-1]
    assert line.startswith("fw: error: model.layers[0] (dense): drawing its weights of shape (784, 1000000)")
    assert "more than fw's memory budget of" in line and "MemoryError" not in err


@pytest.mark.slow
def test_three_thousand_relu_layers_cost_less_than_twice_thirty(mnist_dir):
    peaks = {}
    for n in (30, 3000):
        rc, out, err, peaks[n] = fw_child(
            "run", BOOK, f"dataset.root={mnist_dir}", "weights=null", layers(*["relu"] * n)
        )
        assert rc == 0 and out.startswith("Accuracy: "), err
    assert peaks[3000] < 2 * peaks[30], peaks


@pytest.mark.parametrize(
    "override, culprit",
    [
        (
            "model.layers[0].padding=10000",
            "model.layers[0] (conv2d): its canvas and im2col columns for one example would take",
        ),
        ("model.layers[0].filters=100000", "model.layers[3] (dense): drawing its weights of shape (14400000, 100)"),
        ("model.layers[0].kernel_size=2000", "kernel 2000x2000 is larger than its input"),
    ],
)
def test_huge_layer_parameters_are_refused_before_allocation(capsys, fashion_dir, monkeypatch, override, culprit):
    monkeypatch.setenv("FW_MEMORY_BUDGET", "2GiB")
    code, out, err = fw(
        capsys, "run", REPO / "configs" / "fashion_cnn.yaml", f"dataset.root={fashion_dir}", "weights=null", override
    )
    assert code == 1 and culprit in err, err
    assert "fw's memory budget of 2.0 GiB (FW_MEMORY_BUDGET=2GiB)" in err or "larger than its input" in err


def test_a_training_batch_beyond_the_budget_names_batch_size(capsys, fashion_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FW_MEMORY_BUDGET", "100MB")
    code, _, err = fw(
        capsys,
        "train",
        REPO / "configs" / "fashion_train.yaml",
        f"dataset.root={fashion_dir}",
        f"weights.path={tmp_path / 'w.npz'}",
        "train.batch_size=100000",
    )
    assert (
        code == 1 and "train.batch_size=100000: a training step would take" in err and "lower train.batch_size" in err
    )


def test_a_budget_that_is_not_a_size_is_one_line(capsys, mnist_dir, book_weights, monkeypatch):
    monkeypatch.setenv("FW_MEMORY_BUDGET", "lots")
    code, _, err = fw(capsys, "run", BOOK, f"dataset.root={mnist_dir}", f"weights.path={book_weights}")
    assert code == 1 and "FW_MEMORY_BUDGET='lots' is not a size; write it like 4GiB" in err


# --- 6. what a plugin returns ---------------------------------------------------------------


def test_a_width_that_changes_in_a_middle_chunk_is_caught(capsys, mnist_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(MODULES))
    code, out, err = fw(
        capsys,
        "run",
        BOOK,
        f"dataset.root={mnist_dir}",
        "weights=null",
        "plugins=[containment]",
        "model.layers=[middle_chunk_width, {name: dense, units: 10}, softmax]",
        "--report",
    )
    assert code == 1 and out == ""
    assert "model.layers[0] (middle_chunk_width, containment.MiddleChunkWidth): forward returned shape" in err, err


def test_a_build_returning_an_endless_iterator_is_refused_at_once(mnist_dir):
    rc, _, err, peak = fw_child(
        "run",
        BOOK,
        f"dataset.root={mnist_dir}",
        "weights=null",
        "plugins=[containment]",
        "model.layers=[endless_build, {name: dense, units: 10}, softmax]",
    )
    assert rc == 1 and "build returned" in err and "a tuple of positive whole numbers" in err, err
    assert peak < 300


# --- 7. the command line's rough edges ------------------------------------------------------


def test_an_overlong_override_is_quoted_briefly_and_the_reason_is_kept(capsys):
    code, _, err = fw(capsys, "config", BOOK, "batch_size=" + "x" * 5000)
    assert code == 1 and len(err) < 400 and err.count("\n") == 1
    assert err.startswith("fw: error: override 'batch_size=xxx") and "batch_size must be a positive whole number" in err


@pytest.mark.parametrize("where", ["weights.path={long}.pkl", "weights.path={long}/w.npz", "dataset.root={long}"])
def test_a_path_too_long_for_the_file_system_is_one_line(capsys, tmp_path, where):
    code, _, err = fw(capsys, "run", BOOK, where.format(long=tmp_path / ("a" * 300)))
    assert code == 1 and "is too long for the file system" in err and "Errno 36" not in err


def test_non_utf8_bytes_in_a_path_override_say_so(capsys):
    code, _, err = fw(capsys, "run", BOOK, os.fsdecode(b"weights.path=w\xff.npz"))
    assert code == 1 and "holds bytes that are not UTF-8 text" in err and "codec" not in err


def test_lists_nested_hundreds_deep_are_one_line(capsys, tmp_path):
    code, _, err = fw(capsys, "run", BOOK, "model.layers=" + "[" * 600 + "]" * 600)
    assert code == 1 and "nested too deeply" in err and "RecursionError" not in err and len(err) < 400
    deep = tmp_path / "deep.yaml"
    deep.write_text("model:\n  layers:\n    - " + "[" * 600 + "]" * 600 + "\n")
    code, _, err = fw(capsys, "run", deep)
    assert code == 1 and f"{deep}: lists or mappings nested too deeply" in err


@pytest.mark.slow
def test_ten_thousand_overrides_all_apply(capsys):
    code, out, err = fw(capsys, "config", BOOK, *[f"batch_size={i}" for i in range(1, 10_001)])
    assert code == 0 and "\nbatch_size: 10000\n" in out, err


@pytest.mark.parametrize("path", ["/dev/null.npz", "/proc/w.npz", "/sys/w.npz"])
def test_weights_are_never_written_into_system_folders(capsys, fashion_dir, path):
    code, _, err = fw(
        capsys, "train", REPO / "configs" / "fashion_train.yaml", f"dataset.root={fashion_dir}", f"weights.path={path}"
    )
    assert code == 1 and f"weights.path {path} is inside /{path.split('/')[1]}" in err
    assert not os.path.exists(path)


# --- 8. a first-time user's findings ----------------------------------------------------------


def test_book_weights_of_convolutions_are_not_counted_as_dense_layers(capsys, fashion_dir, shared_book):
    code, _, err = fw(
        capsys,
        "run",
        REPO / "configs" / "fashion_cnn.yaml",
        f"dataset.root={fashion_dir}",
        "weights.importer=pickle",
        f"weights.path={shared_book / 'deep_convnet_params.pkl'}",
    )
    assert code == 1 and "holds 8 layer(s) with W and b" in err and "dense layer(s)" not in err


def test_fw_configs_keeps_a_description_that_runs_past_a_colon(capsys):
    code, out, _ = fw(capsys, "configs")
    line = next(line for line in out.splitlines() if line.startswith("fashion_cnn"))
    assert line.endswith("conv 30x5x5 -> relu -> max-pool 2x2 -> dense 100 -> relu -> dense 10 -> softmax")


def test_an_example_packages_name_says_where_it_comes_from(capsys, mnist_dir):
    code, _, err = fw(capsys, "run", BOOK, f"dataset.root={mnist_dir}", "weights=null", "model.activation=leaky_relu")
    assert code == 1 and "comes with the example package fw-extra-activations" in err
