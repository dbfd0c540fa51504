"""Hostile ONNX models, round four: constants folded within a budget counted before anything is made, graphs far
larger than a network refused before they are walked, text from the file printed escaped, and a folder as the
output of fw export, import-onnx or convert-weights named in one line."""

import tracemalloc

import numpy as np
import onnx
import pytest

from test_onnx_import import model, node, refused

pytestmark = pytest.mark.hostile


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def weight_made_by(op_nodes, constants):
    """An MLP whose one Gemm takes its weights from ``op_nodes``' last output, ``w``, worked out from ``constants``."""
    return model([*op_nodes, node("Gemm", ["input", "w"], ["y"], "/fc/Gemm", transB=1)], constants, (784,), output="y")


N = 32_768
HUGE = {
    # (N, 1) x (1, N): 4 GiB of float32 from 256 KB of constants
    "Mul": (
        [node("Mul", ["a", "b"], ["w"], "/big/Mul")],
        {"a": np.ones((N, 1), np.float32), "b": np.ones((1, N), np.float32)},
    ),
    # one row of 30,000 values given 64 times, and that given 64 times: 491 MB (as 30,000 times: 3.6 GB)
    "Concat": (
        [
            node("Concat", ["a"] * 64, ["c"], "/small/Concat", axis=0),
            node("Concat", ["c"] * 64, ["w"], "/big/Concat", axis=0),
        ],
        {"a": np.ones((1, 30_000), np.float32)},
    ),
    # 32,000 indices into a row of 30,000 values: 3.8 GB
    "Gather": (
        [node("Gather", ["a", "i"], ["w"], "/big/Gather", axis=0)],
        {"a": np.ones((1, 30_000), np.float32), "i": np.zeros(32_000, np.int64)},
    ),
}


@pytest.mark.parametrize("op", HUGE)
def test_a_node_that_would_make_gigabytes_from_small_constants_is_refused_before_it_is_made(capsys, tmp_path, op):
    tracemalloc.start()
    try:
        refused(
            capsys,
            tmp_path,
            weight_made_by(*HUGE[op]),
            f"'/big/{op}' ({op}) would make",
            "from its constant inputs",
            "at most 256 MiB",
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak:,} bytes allocated"


def cast_chain(length, values):
    """``length`` Casts in a row, float32 -> float64 -> float32 -> ..., of ``values`` float32 values, as the weights."""
    nodes = [
        node(
            "Cast",
            ["a" if k == 0 else f"c{k - 1}"],
            ["w" if k == length - 1 else f"c{k}"],
            f"/cast{k}",
            to=11 if k % 2 == 0 else 1,
        )
        for k in range(length)
    ]
    return weight_made_by(nodes, {"a": np.ones((10, values // 10), np.float32)})


def test_the_budget_counts_every_node_not_each_alone(capsys, tmp_path, monkeypatch):
    """A Cast chain whose every step is under the budget is refused where the steps together pass it."""
    from framework.interchange import onnx_values
    from test_cli import fw

    monkeypatch.setattr(onnx_values, "MAX_FOLDED", 1 << 20, raising=False)  # 1 MiB; each cast makes 31-63 KiB of it
    short = tmp_path / "short"
    short.mkdir()
    onnx.save(cast_chain(2, 7840), str(short / "m.onnx"))
    code, out, err = fw(capsys, "import-onnx", short / "m.onnx", short / "m.yaml")
    assert code == 0, err  # 94 KB of casts: within the budget
    (tmp_path / "long").mkdir()
    refused(
        capsys,
        tmp_path / "long",
        cast_chain(40, 7840),
        "node 22 '/cast22' (Cast) would make 7,840 values (62,720 bytes)",
        "after 1,034,880 bytes worked out for earlier nodes",
    )


# -- an output that is a folder: one line saying what to give ---------------------------------------


def test_a_folder_as_the_output_names_a_file_to_give(capsys, tmp_path, monkeypatch):
    from test_cli import BOOK, fw, one_line_error

    monkeypatch.chdir(tmp_path)
    onnx.save(weight_made_by([node("Identity", ["a"], ["w"])], {"a": np.ones((10, 784), np.float32)}), "m.onnx")
    one_line_error(
        *fw(capsys, "export", BOOK, "."),
        "output . is a folder; give the ONNX file to write in it, e.g. mnist_infer.onnx",
    )
    one_line_error(
        *fw(capsys, "export", BOOK, tmp_path), f"output {tmp_path} is a folder", f"e.g. {tmp_path}/mnist_infer.onnx"
    )
    one_line_error(
        *fw(capsys, "import-onnx", "m.onnx", "."), "output . is a folder; give the config to write in it, e.g. m.yaml"
    )
    (tmp_path / "w.pkl").write_bytes(b"")
    one_line_error(
        *fw(capsys, "convert-weights", "w.pkl", ".."),
        "output .. is a folder; give a weights file to write in it, e.g. ../w.npz",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "w.pkl"]


# -- text from a file reaches the terminal with its escape codes escaped -----------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\u202e"  # retitle the window, clear the screen, red, right-to-left


def shown_as_text(*outputs):
    """Every character printed is one a terminal shows (lines end with a newline; nothing else acts on it)."""
    for text in outputs:
        assert all(line.isprintable() for line in text.split("\n")), repr(text)


def test_an_onnx_models_names_are_printed_escaped(capsys, tmp_path):
    from test_cli import fw, one_line_error

    m = weight_made_by([node("Identity", ["a"], ["w"], f"/evil{ESCAPES}")], {"a": np.ones((10, 784), np.float32)})
    m.producer_name, m.producer_version = f"exporter{ESCAPES}", "1\x1b[0m"
    onnx.save(m, str(tmp_path / "m.onnx"))
    code, out, err = fw(capsys, "import-onnx", tmp_path / "m.onnx", tmp_path / "m.yaml")
    assert code == 0, err
    shown_as_text(out, err)
    assert "read " in out and "exporter\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\u202e 1\\x1b[0m" in out
    code, _, err = fw(capsys, "run", tmp_path / "m.yaml", "dataset.split=never")  # the config it wrote is YAML fw reads
    assert "invalid YAML" not in err and "dataset.split" in err, err

    m.graph.node[1].op_type = f"Gemm{ESCAPES}"  # an op fw has no layer for: named in the error
    onnx.save(m, str(tmp_path / "m.onnx"))
    result = fw(capsys, "import-onnx", tmp_path / "m.onnx", tmp_path / "n.yaml")
    one_line_error(*result, "(Gemm\\x1b]0;pwned\\x07\\x1b[2J", "fw has no layer for this op")
    shown_as_text(*result[1:])


def test_class_names_from_a_table_are_printed_escaped_by_fw_export(capsys, tmp_path):
    from own_data import config, make_csv
    from test_cli import fw

    (tmp_path / "data").mkdir()
    make_csv(tmp_path / "data" / "iris.csv", labels=("setosa", f"versi{ESCAPES}color", "virginica"))
    cfg = config(tmp_path, "{name: csv, path: data/iris.csv, label: species}", epochs=1)
    code, _, err = fw(capsys, "train", cfg)
    assert code == 0, err
    code, out, err = fw(capsys, "export", cfg, tmp_path / "m.onnx")
    assert code == 0, err
    shown_as_text(out, err)
    assert "versi\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\u202ecolor" in out


# -- lists far longer than a network fw imports: refused before anything walks them --------------------


def relu_chain(length):
    return [
        node("Relu", ["input" if k == 0 else f"r{k - 1}"], ["w0" if k == length - 1 else f"r{k}"], f"/relu{k}")
        for k in range(length)
    ]


def test_a_chain_of_1001_nodes_is_refused(capsys, tmp_path):
    """1,000,000 Relus (25 MB) took 197 s and 1.3 GB to end in omegaconf's limit on YAML nodes; 1,001 were imported."""
    m = model([*relu_chain(1001), node("Gemm", ["w0", "w"], ["y"], transB=1)], {"w": (10, 784)}, (784,), output="y")
    refused(capsys, tmp_path, m, "its graph has 1,002 nodes; fw imports sequential networks, which have at most 1,000")


def _field(number, payload):
    """One length-delimited protobuf field: its tag, its length as a varint, its bytes."""
    length, n = b"", len(payload)
    while True:
        length += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return bytes([number << 3 | 2]) + length + payload


def with_graph_entries(m, entries):
    """The model's bytes and a second ``graph`` field (protobuf merges it into the first) holding ``entries``:
    a file written without building its millions of entries in this process."""
    return m.SerializeToString() + _field(7, entries)


def peak_rss_of_import(path, tmp_path):
    """What ``fw import-onnx path`` adds to the peak memory of a fresh
    process (numpy and onnx already imported), and its stderr."""
    import subprocess
    import sys

    script = (
        "import re, sys, numpy, onnx\n"
        "from framework.cli import main\n"
        "def peak(): return int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n"
        "before = peak()\n"
        f"code = main(['import-onnx', {str(path)!r}, {str(tmp_path / 'out.yaml')!r}])\n"
        "print(peak() - before)\n"
    )  # VmHWM, not ru_maxrss: that would start at the forking pytest's own peak
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    return int(done.stdout.split()[-1]) << 10, done.stderr


def test_a_million_empty_initialisers_are_refused_before_protobuf_makes_them(tmp_path):
    """7 MB of 7-byte initialisers: protobuf would make 180 MB of them (7 GB from a file of 256 MiB)."""
    m = model([node("Gemm", ["input", "w"], ["y"], "/fc/Gemm", transB=1)], {"w": (10, 784)}, (784,), output="y")
    empty = _field(5, onnx.TensorProto(name="x", data_type=1).SerializeToString())
    path = tmp_path / "m.onnx"
    path.write_bytes(with_graph_entries(m, empty * 1_000_000))
    added, err = peak_rss_of_import(path, tmp_path)
    assert "its encoding holds more than 200,000 entries" in err and err.count("\n") == 1, err
    assert added < 40 << 20, f"{added:,} bytes"


def test_values_stored_one_by_one_are_counted_at_what_they_take_parsed(capsys, tmp_path, monkeypatch):
    """A packed int64 takes a byte of the file and 8 of memory: 64 MiB of zeros would take 512 MiB parsed."""
    from framework.interchange import onnx_import

    monkeypatch.setattr(onnx_import, "MAX_PARSED", 8 << 20, raising=False)  # 8 MiB: 1.5 MB of zeros takes 12 parsed
    m = model([node("Gemm", ["input", "w"], ["y"], "/fc/Gemm", transB=1)], {"w": (10, 784)}, (784,), output="y")
    zeros = onnx.TensorProto(name="z", data_type=7).SerializeToString() + _field(7, bytes(1_500_000))
    refused(
        capsys, tmp_path, with_graph_entries(m, _field(5, zeros)), "parsing it would take more than 8 MiB", "raw_data"
    )


@pytest.mark.parametrize(
    "change, fragment",
    [
        (
            lambda m: m.graph.initializer.extend([onnx.TensorProto(name=f"x{k}", data_type=1) for k in range(4001)]),
            "4,002 initialisers",
        ),
        (
            lambda m: m.graph.node[0].input.extend(["w"] * 64),
            "node 0 '/fc/Gemm' (Gemm) has 66 inputs; the ops fw reads have a few, at most 64",
        ),
        (
            lambda m: m.graph.node.insert(0, node("Concat", ["w"] * 30_000, ["c"], "/wide", axis=0)),
            "node 0 '/wide' (Concat) has 30,000 inputs",
        ),
        (
            lambda m: m.graph.node[0].attribute.extend([onnx.helper.make_attribute(f"a{k}", k) for k in range(65)]),
            "has 66 attributes",
        ),
        (
            lambda m: m.graph.node[0].attribute.extend([onnx.helper.make_attribute("pads", list(range(5000)))]),
            "its attribute 'pads' holds 5,000 values",
        ),
    ],
)
def test_lists_longer_than_a_network_has_are_refused(capsys, tmp_path, change, fragment):
    m = model([node("Gemm", ["input", "w"], ["y"], "/fc/Gemm", transB=1)], {"w": (10, 784)}, (784,), output="y")
    change(m)
    refused(capsys, tmp_path, m, fragment)
