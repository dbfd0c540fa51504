"""The fw command as a user meets it: output, --json, --help and one-line errors."""

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import main

REPO = Path(__file__).resolve().parents[1]
BOOK = str(REPO / "configs" / "mnist_infer.yaml")


@pytest.fixture
def data(mnist_dir, book_weights):
    return [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def fw(capsys, *args):
    import warnings

    saved = warnings.showwarning
    try:
        code = main([str(a) for a in args])
    finally:
        warnings.showwarning = saved
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_the_books_accuracy_and_timing(capsys, data):
    code, out, err = fw(capsys, "run", BOOK, *data)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Accuracy: 0.9352 (9352/10000 correct)"
    assert lines[1].startswith("Time: ") and "images/s" in lines[1]


def test_run_json(capsys, data):
    code, out, _ = fw(capsys, "run", BOOK, *data, "batch_size=1000", "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["accuracy"], result["correct"], result["total"]) == (0.9352, 9352, 10000)
    assert result["seconds"] > 0


def test_the_console_script_is_installed_and_helps():
    exe = shutil.which("fw", path=str(Path(sys.executable).parent))
    assert exe, "the fw console script is not installed next to this Python"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "run" in out.stdout and "plugins" in out.stdout
    out = subprocess.run([exe, "run", "--help"], capture_output=True, text=True, timeout=60)
    assert "KEY=VALUE" in out.stdout and "--json" in out.stdout and "examples:" in out.stdout


def one_line_error(code, out, err, *fragments):
    assert code == 1
    assert out == ""
    assert err.startswith("fw: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_yaml(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  sizes: [784, 10\n")
    one_line_error(*fw(capsys, "run", bad), str(bad), "invalid YAML")


def test_unknown_key(capsys):
    one_line_error(*fw(capsys, "run", BOOK, "model.sise=[1,2]"), "unknown key 'model.sise'", "model.sizes")


def test_bad_override_value(capsys):
    one_line_error(*fw(capsys, "run", BOOK, "dataset.flatten=perhaps"), "dataset.flatten must be true or false")


def test_non_positive_batch_size(capsys):
    one_line_error(*fw(capsys, "run", BOOK, "batch_size=-1"), "batch_size must be a positive whole number")


def test_unknown_activation(capsys, data):
    one_line_error(
        *fw(capsys, "run", BOOK, *data, "model.activation=tanh"),
        "model.activation: unknown activation 'tanh'",
        "available: identity, relu, sigmoid, softmax, step",
    )


def test_unknown_plugin(capsys):
    one_line_error(*fw(capsys, "run", BOOK, "plugins=[fw_no_such_plugin]"), "no plugin module 'fw_no_such_plugin'")


def test_unknown_dataset_and_importer(capsys, data):
    one_line_error(*fw(capsys, "run", BOOK, *data, "dataset.name=mnits"), "unknown dataset 'mnits'", "'mnist'")
    one_line_error(*fw(capsys, "run", BOOK, *data, "weights.importer=pkl"), "unknown weight importer 'pkl'")


def test_shape_mismatch(capsys, data):
    one_line_error(
        *fw(capsys, "run", BOOK, *data, "model.sizes=[784,100,10]"),
        "dense layer",
        "model.sizes=[784,50,100,10]",
    )


def test_missing_weights_file_without_url(capsys, data, tmp_path):
    missing = tmp_path / "nope.pkl"
    one_line_error(
        *fw(capsys, "run", BOOK, data[0], f"weights.path={missing}", "weights.url=null"),
        f"weights file not found: {missing}",
    )


def test_corrupt_weights_file(capsys, data, tmp_path):
    bad = tmp_path / "w.pkl"
    bad.write_bytes(b"\x80\x03}q\x00(X\x02\x00\x00\x00W1q")  # a pickle cut short
    one_line_error(*fw(capsys, "run", BOOK, data[0], f"weights.path={bad}", "weights.sha256=null"), str(bad))


def test_a_file_that_is_not_the_configs_checksum_is_used_with_a_warning(capsys, data, tmp_path, monkeypatch):
    """At the path the config itself names, a replaced book file is used, with a warning."""
    import shutil

    other = tmp_path / "book" / "sample_weight.pkl"
    other.parent.mkdir()
    shutil.copy(data[1].split("=", 1)[1], other)
    with open(other, "ab") as f:
        f.write(b"\0")  # same arrays, different bytes
    monkeypatch.setenv("FW_DATA_DIR", str(tmp_path))
    code, out, err = fw(capsys, "run", BOOK, data[0])
    assert code == 0 and out.startswith("Accuracy: 0.9352")
    assert err.startswith(f"fw: warning: {other} is not the file weights.sha256 names")
    assert "weights.sha256=null" in err and err.count("\n") == 1
    code, out, err = fw(capsys, "run", BOOK, data[0], "weights.sha256=null")
    assert code == 0 and err == ""


def test_a_weights_path_on_the_command_line_is_the_users_own_file(capsys, data, tmp_path):
    """Neither the book's url nor its checksum applies to it: no download in its place, no warning."""
    import shutil

    mine = tmp_path / "mine.pkl"
    shutil.copy(data[1].split("=", 1)[1], mine)
    with open(mine, "ab") as f:
        f.write(b"\0")
    code, out, err = fw(capsys, "run", BOOK, data[0], f"weights.path={mine}")
    assert code == 0 and out.startswith("Accuracy: 0.9352") and err == ""
    code, out, err = fw(capsys, "run", BOOK, data[0], f"weights.path={tmp_path / 'mnie.pkl'}")
    one_line_error(
        code, out, err, f"weights file not found: {tmp_path / 'mnie.pkl'} (weights.path); did you mean {mine}?"
    )
    code, out, err = fw(capsys, "run", BOOK, data[0], f"weights.path={tmp_path / 'nowhere' / 'w.pkl'}")
    one_line_error(code, out, err, f"folder {tmp_path / 'nowhere'} does not exist")


def test_refused_pickle(capsys, data, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"W1": Evil()}))
    code, out, err = fw(capsys, "run", BOOK, data[0], f"weights.path={bad}", "weights.sha256=null")
    one_line_error(code, out, err, "builtins.print", str(bad))
    assert "pwned" not in out


def test_debug_shows_the_traceback(capsys):
    from framework import FwError

    with pytest.raises(FwError, match="unknown key"):
        main(["run", BOOK, "model.sise=[1,2]", "--debug"])


def test_fw_plugins_lists_the_builtins(capsys):
    code, out, _ = fw(capsys, "plugins")
    assert code == 0
    assert "activations:" in out and "weight importers:" in out and "datasets:" in out
    assert any(
        line.split()[0] == "sigmoid" and "framework.plugins.activations" in line for line in out.splitlines()[1:4]
    )
    data = json.loads(fw(capsys, "plugins", "--json")[1])
    assert {d["name"] for d in data["datasets"]} >= {"mnist"}
    assert data["failed"] == []


@pytest.mark.parametrize(
    "activation, expected",
    [
        (
            "shrink",
            "model.layers[1] (shrink, bad_forward.Shrink): "
            "forward returned shape (100, 3), but build promised (100, 50)",
        ),  # batch_size: 100
        ("boom", "model.layers[1] (boom, bad_forward.Boom): forward failed: ZeroDivisionError: oops"),
        ("not_a_number", "model.layers[1] (not_a_number, bad_forward.NotANumber): produced NaN"),
    ],
)
def test_a_misbehaving_plugin_activation_is_named(capsys, data, monkeypatch, activation, expected):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugin_modules"))
    args = ["run", BOOK, *data, f"model.activation={activation}", "plugins=[bad_forward]"]
    one_line_error(*fw(capsys, *args), expected)


def test_sizes_that_do_not_fit_the_dataset(capsys, data):
    one_line_error(
        *fw(capsys, "run", BOOK, data[0], "weights=null", "model.sizes=[784,10,5]"),
        "model.sizes ends with 5 outputs, but dataset 'mnist' has 10 classes; set the last of model.sizes to 10",
    )
    one_line_error(
        *fw(capsys, "run", BOOK, data[0], "weights=null", "model.sizes=[100,10,10]"),
        "model.sizes starts with 100 inputs, but dataset 'mnist' gives 784 per example",
    )
