"""Hostile weight files end in a one-line error naming the file: no crash, no hang, no memory bomb.

Every input is built in tmp_path, by hand or by streaming: a bomb's declared
size never exists in memory. The files are loaded in child processes, so a
crash or a hang fails one test (through the exit status or the timeout)
instead of taking the suite down, and the child's peak memory can be measured.
"""

import codecs
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from framework.plugins import npz_importer
from framework.safeio import safe_pickle
from test_cli import BOOK
from test_safe_pickle import Reduce, sbu

pytestmark = pytest.mark.hostile

FW = shutil.which("fw", path=str(Path(sys.executable).parent))
MiB = 1 << 20
NEAR = 40 * 1024  # KiB: how far above a good run's peak a refused file may take fw

# Runs argv[1:] as its own child and reports that child's exit, output and peak RSS (KiB on Linux).
PEAK = """
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": run.returncode, "out": run.stdout, "err": run.stderr, "peak": peak}))
"""


def fw(*args, timeout=120):
    """``fw ARGS`` in a child process: ``{code, out, err, peak}``."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, FW, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(run, path, *fragments):
    """A one-line ``fw: error:`` naming ``path``, exit 1: not a crash (139), not a traceback, not a novel."""
    assert run["code"] == 1, run
    assert run["out"] == ""
    err = run["err"]
    assert err.startswith(f"fw: error: {path}: ") and err.count("\n") == 1, err[:2000]
    assert len(err) < 1000, f"{len(err)}-character error line: {err[:300]}..."  # a dozen names of 40 at most
    for fragment in fragments:
        assert fragment in err, err


LOAD = """
import json, sys
from framework import FwError
from framework.plugins.npz_importer import NpzImporter
from framework.plugins.pickle_importer import PickleImporter
importer = {"pickle": PickleImporter, "npz": NpzImporter}[sys.argv[1]]()
results = {}
for path in sys.argv[2:]:
    try:
        importer.load(path)
        results[path] = "loaded"
    except FwError as e:
        results[path] = str(e)
print(json.dumps(results))
"""


def load_in_child(importer, paths, timeout=60):
    """Each path through the importer, in one child process: ``{path: error message}``."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD, importer, *map(str, paths)], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def assert_refusals(importer, cases, tmp_path):
    """``cases``: {file name: (bytes or writer, fragment)}; each must be refused in one short line."""
    paths = {}
    for name, (content, _) in cases.items():
        paths[name] = tmp_path / name
        content(paths[name]) if callable(content) else paths[name].write_bytes(content)
    results = load_in_child(importer, paths.values())
    for name, (_, fragment) in cases.items():
        msg = results[str(paths[name])]
        assert msg.startswith(f"{paths[name]}: ") and "\n" not in msg and len(msg) < 600, (name, msg[:2000])
        assert fragment in msg, (name, msg)


def run_args(mnist_dir, weights, importer):
    return [
        "run",
        BOOK,
        f"dataset.root={mnist_dir}",
        f"weights.importer={importer}",
        f"weights.path={weights}",
        "weights.sha256=null",
    ]


# --- pickles: deep nesting ----------------------------------------------------

P4 = b"\x80\x04"
ARRAY = pickle.dumps(np.ones(2, np.float32), 2)[2:-1]  # opcodes that push a real array (no PROTO, STOP or FRAME)


def deep_tuple_key(depth=150_000):
    """``{((((),),),...): array}``: hashing the key recursed in C, 150,000 frames deep."""
    return P4 + b"}" + b")" + b"\x85" * depth + ARRAY + b"s."


def test_a_deeply_nested_key_is_an_error_not_a_segfault(tmp_path, mnist_dir):
    path = tmp_path / "deep.pkl"
    path.write_bytes(deep_tuple_key())
    control = subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.loads(open({str(path)!r}, 'rb').read())"], capture_output=True
    )
    assert control.returncode < 0, "control: plain pickle should die of a signal (SIGSEGV) on this file"
    refused(fw(*run_args(mnist_dir, path, "pickle")), path, "refused to unpickle tuples nested more than two deep")
    out = tmp_path / "out.npz"
    refused(fw("convert-weights", path, out), path, "refused to unpickle")
    assert not out.exists()


def test_nesting_of_every_kind_is_refused(tmp_path):
    d = 60_000  # deep enough to overflow the C stack; 2 opcodes a level stay under the opcode cap
    cases = {
        "mark-tuples.pkl": (P4 + b"}" + sbu("W1") + b"(" * d + b"t" * d + b"s.", "tuples nested more than two deep"),
        "tuple-value.pkl": (P4 + b"}" + sbu("W1") + b")" + b"\x85" * d + b"s.", "tuples nested more than two deep"),
        "lists.pkl": (P4 + b"}" + sbu("W1") + b"]" * d + b"a" * (d - 1) + b"s.", "refused to unpickle a list"),
        "dicts.pkl": (P4 + (b"}" + sbu("k")) * d + b"}" + b"s" * d + b".", "'k' holding a dict, not a numpy array"),
        "frozensets.pkl": (P4 + b"}" + sbu("W1") + b"(" * d + b"\x91" * d + b"s.", "refused to unpickle a set"),
        "dict-in-tuple.pkl": (P4 + b"}" + sbu("W1") + b"}" + b"\x85s.", "a tuple item of type dict"),
    }
    assert_refusals("pickle", cases, tmp_path)


# --- pickles: exponential sharing ---------------------------------------------


def shared(levels=60):
    """Opcodes pushing t60, where t0 = () and t(i+1) = (ti, ti): 250 bytes, 2^60 leaves to hash or repr."""
    ops = b")"
    for i in range(levels):
        ops += b"\x94h" + bytes([i]) + b"\x86"  # MEMOIZE ti as i; GET i; TUPLE2
    return ops


NP_DTYPE = P4 + sbu("numpy") + sbu("dtype") + b"\x93"  # pushes numpy.dtype
DTYPE = NP_DTYPE + sbu("f8") + b"\x89\x88\x87R"  # pushes dtype('f8', False, True)


def test_exponential_sharing_is_refused_at_once(tmp_path):
    cases = {
        "as-key.pkl": (P4 + b"}" + shared() + ARRAY + b"s.", "tuples nested more than two deep"),
        "as-value.pkl": (P4 + b"}" + sbu("W1") + shared() + b"s.", "tuples nested more than two deep"),
        "at-top.pkl": (P4 + shared() + b".", "tuples nested more than two deep"),
        "as-persistent-id.pkl": (P4 + shared() + b"Q.", "tuples nested more than two deep"),
        "as-dtype-state.pkl": (DTYPE + shared() + b"b.", "tuples nested more than two deep"),
        "as-call-arguments.pkl": (NP_DTYPE + shared() + b"R.", "tuples nested more than two deep"),
        # two levels are allowed (numpy's own state has them), and are quoted as they are
        "two-levels-as-persistent-id.pkl": (P4 + shared(1) + b"Q.", "persistent id ((), ())"),
        "two-levels-as-dtype-state.pkl": (DTYPE + shared(1) + b"b.", "dtype state ((), ())"),
    }
    assert_refusals("pickle", cases, tmp_path)


def test_errors_quote_untrusted_objects_briefly():
    deep = ()
    for _ in range(100_000):
        deep = (deep, deep)  # 2^100000 leaves, shared: repr() would never end
    assert len(safe_pickle.brief(deep)) <= 63
    assert safe_pickle.brief(10**5000) == "<a 16610-bit int>"  # str() would raise ValueError
    assert safe_pickle.brief(["x" * 10**6, b"\n"]) == "['" + "x" * 58 + "..."


# --- pickles: declared sizes, big numbers, too many objects --------------------


def test_declared_sizes_and_numbers_are_checked_before_anything_is_allocated(tmp_path):
    big = 8 << 30
    huge_state = (1, (10**9, 10**9), np.dtype("f4"), False, b"\0" * 8)
    cases = {
        "bytearray8.pkl": (b"\x80\x05}" + sbu("W1") + b"\x96" + struct.pack("<Q", big) + b"s.", "truncated"),
        "binbytes8.pkl": (P4 + b"}" + sbu("W1") + b"\x8e" + struct.pack("<Q", big) + b"s.", "truncated"),
        "frame.pkl": (P4 + b"\x95" + struct.pack("<Q", big) + b"}.", "truncated"),
        "long4.pkl": (
            P4 + b"}" + sbu("W1") + b"\x8b" + struct.pack("<i", 2**31 - 1) + b"s.",
            "integer of 2147483647 bytes",
        ),
        "long-text.pkl": (b"L" + b"9" * 100_000 + b"L\n.", "an integer of 100000 digits"),
        "int-text.pkl": (b"I" + b"9" * 24 + b"\n.", "an integer of 80 bits"),
        "huge-shape.pkl": (
            pickle.dumps({"W1": Reduce(np._core.multiarray._reconstruct, np.ndarray, (0,), b"b", state=huge_state)}, 4),
            "an array of shape (1000000000, 1000000000) and dtype float32 over 8 bytes",
        ),
        "frombuffer-shape.pkl": (
            pickle.dumps({"W1": Reduce(np._core.numeric._frombuffer, b"\0" * 8, np.dtype("f4"), (2**40,), "C")}, 4),
            "an array of shape (1099511627776,) and dtype float32 over 8 bytes",
        ),
        "long-tuple.pkl": (P4 + b"(" + b"N" * 100 + b"t.", "a tuple of 100 items"),
        "opcodes.pkl": (P4 + b"N" * (safe_pickle.MAX_OPCODES + 1) + b".", "more than 200,000 pickle opcodes"),
        "out-of-band.pkl": (pickle.dumps({"W1": np.ones(4)}, 5, buffer_callback=lambda b: False), "out-of-band"),
        "float.pkl": (pickle.dumps({"W1": 1.5}, 4), "a float"),
        "big-memo-index.pkl": (P4 + b"}" + b"r\xff\xff\xff\xff" + b"j\xfe\xff\xff\xff.", "Memo value not found"),
    }
    assert_refusals("pickle", cases, tmp_path)


def test_pickle_bombs_stay_near_a_good_runs_memory(tmp_path, book_weights):
    good = fw("convert-weights", book_weights, tmp_path / "good.npz")
    assert good["code"] == 0, good["err"]

    # 8 GiB declared in 30 bytes: bytearray(n) would fill n bytes before reading any
    declared = tmp_path / "declared.pkl"
    declared.write_bytes(b"\x80\x05}" + sbu("W1") + b"\x96" + struct.pack("<Q", 8 << 30) + b"s.")
    # One 2 MiB string in the file, copied into 400 arrays through the memo: 800 MiB
    text = "\0" * (2 * MiB)

    def state():  # a new one per array
        return 1, (2 * MiB,), np.dtype("u1"), False, Reduce(codecs.encode, text, "latin1")

    copies = {
        f"W{i}": Reduce(np._core.multiarray._reconstruct, np.ndarray, (0,), b"b", state=state()) for i in range(1, 401)
    }
    reused = tmp_path / "reused.pkl"
    reused.write_bytes(pickle.dumps(copies, 2))
    assert reused.stat().st_size < 3 * MiB
    # One 2 MiB array under 400 names: np.savez would write 800 MiB
    same = np.zeros(2 * MiB, np.uint8)
    aliased = tmp_path / "aliased.pkl"
    aliased.write_bytes(pickle.dumps({f"W{i}": same for i in range(1, 401)}, 4))

    for bomb, why in [(declared, "truncated"), (reused, "bytes of array data"), (aliased, "bytes of array data")]:
        out = tmp_path / f"{bomb.stem}.npz"
        run = fw("convert-weights", bomb, out)
        refused(run, bomb, why)
        assert not out.exists()
        assert run["peak"] < good["peak"] + NEAR, (bomb.name, run["peak"], good["peak"])


# --- npz: zip bombs and forged headers ----------------------------------------


def npy_header(shape, descr="<f4", version=1):
    """A .npy header as numpy writes it (padded so the data starts on 64 bytes)."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    size_field = 2 if version == 1 else 4
    text += b" " * (-(len(text) + 7 + size_field) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H" if version == 1 else "<I", len(text)) + text


def deflated_zeros(head, mib):
    """The deflate stream of ``head`` and ``mib`` MiB of zeros, in about ``mib`` KiB, without unpacking it.

    After a full flush the compressor starts afresh, so every MiB of zeros
    compresses to the same block: compress one, repeat it.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    return [start, *[block] * mib, c.flush()]


def write_zip(path, members, entries=None):
    """A zip written by hand, so that it can declare what a hostile file declares.

    ``members``: (name, chunks, method, size, flags): ``chunks`` are written
    as the member's data and ``size`` is the unpacked size the zip states. The
    CRC is that of the chunks for small stored members, else 0: fw must refuse
    the others before it reads that far. ``entries`` repeats the directory
    entry of the first member under that many names (x0.npy, x1.npy, ...).
    """
    directory = []
    with open(path, "wb") as f:
        for name, chunks, method, size, flags in members:
            data_size = sum(map(len, chunks))
            crc = zlib.crc32(b"".join(chunks)) if method == 0 and data_size < MiB else 0
            name = name.encode()
            offset = f.tell()
            f.write(
                struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 33, crc, data_size, size, len(name), 0)
            )
            f.write(name)
            for chunk in chunks:
                f.write(chunk)
            entry = struct.pack(
                "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0,  # 4s4B: signature, versions made by and needed
                flags, method, 0, 33, crc, data_size, size,  # 4HL2L: flags, method, time, date, CRC-32, sizes
                len(name), 0, 0, 0, 0, 0, offset,  # 5H2L: name length, extra, comment, disk, attributes; offset
            )  # fmt: skip  # one line per group of the record's format string, not one per field
            directory.append(entry + name)
        if entries:
            entry = directory[0][:46]
            directory = [
                entry[:28] + struct.pack("<H", len(n)) + entry[30:] + n
                for n in (f"x{i}.npy".encode() for i in range(entries))
            ]
        start = f.tell()
        for entry in directory:
            f.write(entry)
        count = min(len(directory), 0xFFFF)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, f.tell() - start, start, 0))


def stored(name, head, data=b""):
    return (name, [head, data], 0, len(head) + len(data), 0)


def test_npz_bombs_are_refused_before_unpacking_and_stay_near_a_good_runs_memory(tmp_path, mnist_dir, book_weights):
    good_npz = tmp_path / "good.npz"
    np.savez(good_npz, **pickle.loads(book_weights.read_bytes()))
    good = fw(*run_args(mnist_dir, good_npz, "npz"))
    assert good["code"] == 0 and good["out"].startswith("Accuracy: 0.9352"), good

    gib = 1024  # MiB of zeros each bomb unpacks to
    head = npy_header((gib * MiB // 4,))
    bombs = {
        # the bomb: refused for its member name, but only after unpacking
        "named.npz": (
            [("bomb.npy", deflated_zeros(head, gib), 8, len(head) + gib * MiB, 0)],
            "unexpected array name(s) bomb",
        ),
        # well named and consistent: only the size it declares gives it away
        "sized.npz": ([("W1.npy", deflated_zeros(head, gib), 8, len(head) + gib * MiB, 0)], "refused as a zip bomb"),
        # 200,000 directory entries: zipfile alone took 117 MB and a second to list them
        "members.npz": ([stored("x0.npy", npy_header((0,)))], "more than 10,000 zip entries"),
    }
    for name, (members, why) in bombs.items():
        path = tmp_path / name
        write_zip(path, members, entries=200_000 if name == "members.npz" else None)
        assert path.stat().st_size < 12 * MiB
        if name != "members.npz":
            assert zipfile.ZipFile(path).infolist()[0].file_size > gib * MiB  # what the zip declares
        run = fw(*run_args(mnist_dir, path, "npz"))
        refused(run, path, why)
        assert run["peak"] < good["peak"] + NEAR, (name, run["peak"], good["peak"])


def test_npz_members_are_checked_from_their_headers(tmp_path):
    w, big = npy_header((2, 2)), npy_header((2**20, 2**20))
    data = bytes(16)

    def overlong_header(path):
        text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}" + b" " * 100_000 + b"\n"
        write_zip(path, [stored("W1.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text, bytes(8))])

    cases = {
        "size-disagrees.npz": (
            [("W1.npy", [w, data], 0, len(w) + 16 * MiB, 0)],
            f"array 'W1' is {len(w) + 16 * MiB:,} bytes in the zip, but its .npy header describes {len(w) + 16:,}",
        ),
        "header-declares-more.npz": (
            [stored("W1.npy", big, data)],
            f"its .npy header describes {len(big) + 4 * 2**40:,} (shape (1048576, 1048576), float32)",
        ),
        "object.npz": ([stored("W1.npy", npy_header((2,), "|O"), data)], "array 'W1' cannot be loaded without pickle"),
        "structured.npz": ([stored("W1.npy", npy_header((2,), [("a", "<f4"), ("b", "<f4")]), data)], "has dtype"),
        "text.npz": ([stored("W1.npy", npy_header((2,), "<U2"), data)], "has dtype <U2"),
        "negative.npz": ([stored("W1.npy", npy_header((-2, 2)), data)], "impossible shape (-2, 2)"),
        "version3.npz": ([stored("W1.npy", b"\x93NUMPY\x03" + w[7:], data)], "no valid .npy header"),
        "twice.npz": ([stored("W1.npy", w, data), stored("W1.npy", w, data)], "holds 'W1.npy' more than once"),
        "not-npy.npz": ([stored("W1", w, data)], "holds 'W1', which is not a .npy array"),
        "bzip2.npz": ([("W1.npy", [w, data], 12, len(w) + 16, 0)], "compressed with zip method 12"),
        "encrypted.npz": ([("W1.npy", [w, data], 0, len(w) + 16, 1)], "is encrypted"),
        "names.npz": ([stored(f"x{i}\n.npy", w, data) for i in range(5000)], "unexpected array name(s) 'x0\\n', "),
    }
    cases = {name: ((lambda path, m=members: write_zip(path, m)), why) for name, (members, why) in cases.items()}
    cases["overlong-header.npz"] = (overlong_header, "no valid .npy header")
    assert_refusals("npz", cases, tmp_path)


def test_a_legitimate_npz_still_loads_with_every_numeric_dtype(tmp_path):
    arrays = {
        "W1": np.arange(6, dtype=">f8").reshape(2, 3),
        "b1": np.asfortranarray(np.ones((2, 3), np.complex64)),
        "W2": np.array([True, False]),
        "b2": np.zeros((0, 3), np.int16),
    }
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **arrays)
        got = npz_importer.NpzImporter().load(path)
        assert got.keys() == arrays.keys()
        for k, a in arrays.items():
            assert got[k].dtype == a.dtype and got[k].shape == a.shape and np.array_equal(got[k], a)


# --- error lines ---------------------------------------------------------------


def test_error_lines_quote_at_most_a_few_names(tmp_path, mnist_dir):
    many = tmp_path / "many.npz"
    np.savez(many, **{f"{p}{i}": np.zeros(1, np.float32) for i in range(1, 2501) for p in "Wb"})
    refused(
        fw(*run_args(mnist_dir, many, "npz")), many, "holds 2500 dense layer(s) (W1, W10, W100,", "... (5000 in all)"
    )
    strays = tmp_path / "strays.pkl"
    zero = np.zeros(1)
    strays.write_bytes(pickle.dumps({f"layer{i}.weight" * 5: zero for i in range(20_000)}, 4))
    refused(fw(*run_args(mnist_dir, strays, "pickle")), strays, "the file holds layer0.weight", "... (20000 in all)")


# --- FIFOs and other files that are not files ----------------------------------


def test_a_fifo_is_refused_at_once_not_read(tmp_path, mnist_dir):
    fifo = tmp_path / "weights.pkl"
    os.mkfifo(fifo)
    results = load_in_child("pickle", [fifo, tmp_path], timeout=30)
    assert results[str(fifo)] == f"{fifo}: is a FIFO, not a regular file; weights are read only from a regular file"
    assert results[str(tmp_path)].startswith(f"{tmp_path}: is a folder, not a regular file")
    assert load_in_child("npz", [fifo], timeout=30)[str(fifo)].startswith(f"{fifo}: is a FIFO, not a regular file")
    refused(fw("convert-weights", fifo, tmp_path / "out.npz", timeout=30), fifo, "is a FIFO, not a regular file")
    run = fw(*run_args(mnist_dir, fifo, "pickle"), timeout=30)
    assert run["code"] == 1 and str(fifo) in run["err"] and run["err"].count("\n") == 1, run


def test_the_book_pickle_and_numpy1_and_python2_pickles_still_load(book_weights, tmp_path):
    """The strict loader against the real file, a numpy 1.x pickle, and one as Python 2's numpy wrote it."""
    from test_safe_pickle import as_numpy1

    arrays = safe_pickle.load(book_weights)
    assert sorted(arrays) == ["W1", "W2", "W3", "b1", "b2", "b3"] and arrays["W1"].shape == (784, 50)
    path = tmp_path / "numpy1.pkl"
    path.write_bytes(as_numpy1(pickle.dumps(arrays, 2)))
    again = safe_pickle.load(path)
    assert all(np.array_equal(again[k], arrays[k]) and again[k].dtype == arrays[k].dtype for k in arrays)

    # Python 2: byte strings (U, T), ints for the dtype's align and copy flags, 'b' as a str
    data = np.arange(3, dtype="<f8").tobytes()
    py2 = (
        b"\x80\x02}U\x02W1cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01K\x03\x85"
        b"cnumpy\ndtype\nU\x02f8K\x00K\x01\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
        + struct.pack("<i", len(data))
        + data
        + b"tbs."
    )
    path.write_bytes(py2)
    assert np.array_equal(pickle.loads(py2, encoding="latin1")["W1"], [0, 1, 2])  # control: the pickle is sound
    assert np.array_equal(safe_pickle.load(path)["W1"], [0, 1, 2])


def test_weights_that_overflow_float32_give_one_warning_line_not_pythons_two(tmp_path, mnist_dir, book_weights):
    """The run goes on (the sigmoid takes an infinite input to 1); numpy's warning is one 'fw: warning:' line
    naming the plugin line it came from, and --debug gives Python's own form back."""
    weights = pickle.loads(book_weights.read_bytes())
    weights["W1"] = np.full_like(weights["W1"], 3e38)  # finite, but x @ W1 is not
    huge = tmp_path / "huge.pkl"
    huge.write_bytes(pickle.dumps(weights))
    args = ("run", BOOK, f"dataset.root={mnist_dir}", f"weights.path={huge}")
    run = fw(*args)
    assert run["code"] == 0 and run["out"].startswith("Accuracy: "), run
    lines = run["err"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("fw: warning: RuntimeWarning: overflow encountered in matmul ("), run
    assert "plugins/layers.py:" in lines[0]
    debug = fw(*args, "--debug")
    assert debug["code"] == 0 and "RuntimeWarning: overflow" in debug["err"] and len(debug["err"].splitlines()) == 2
