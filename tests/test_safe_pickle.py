"""The restricted unpickler and the pickle importer, against hostile and legitimate files."""

import codecs
import copyreg
import os
import pickle
import pickletools
import subprocess
import sys
import warnings

import numpy as np
import pluggy
import pytest

from framework import FwError
from framework.data.weights import check_weights
from framework.plugin_system import hookspecs
from framework.plugins import pickle_importer
from framework.plugins.pickle_importer import PickleImporter
from framework.safeio import safe_pickle

SYSTEM = f"{os.system.__module__}.system"  # pickle names os.system by its real module: posix / nt


class Reduce:
    """Pickles as ``func(*args)``, optionally followed by BUILD ``state``."""

    def __init__(self, func, *args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def write(tmp_path, data, name="weights.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refusal(path):
    with pytest.raises(FwError) as e:
        safe_pickle.load(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def sbu(s):
    """SHORT_BINUNICODE opcode for ``s``."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def touch(marker):
    return f"open({str(marker)!r}, 'w').close()"


# Payloads that create ``marker`` when run; the name pickle records for them.
PAYLOADS = {
    "os.system": (lambda m: Reduce(os.system, f"touch '{m}'"), SYSTEM),
    "builtins.eval": (lambda m: Reduce(eval, touch(m)), "builtins.eval"),
    "builtins.exec": (lambda m: Reduce(exec, touch(m)), "builtins.exec"),
    "subprocess.Popen": (lambda m: Reduce(subprocess.Popen, ["touch", str(m)]), "subprocess.Popen"),
}


@pytest.mark.hostile
def test_payloads_run_under_plain_pickle(tmp_path):
    """Control: the payloads are real, so 'marker absent' below means something."""
    for label in ("os.system", "builtins.eval", "builtins.exec"):
        marker = tmp_path / label
        pickle.loads(pickle.dumps({"b1": PAYLOADS[label][0](marker)}, 4))
        assert marker.exists(), label


@pytest.mark.hostile
@pytest.mark.parametrize("label", PAYLOADS)
def test_hostile_global_refused_by_name(tmp_path, label):
    make, name = PAYLOADS[label]
    marker = tmp_path / "pwned"
    path = write(tmp_path, pickle.dumps({"W1": np.ones(2), "b1": make(marker)}, 4))
    assert f"refused to unpickle '{name}'" in refusal(path)
    assert not marker.exists()


@pytest.mark.hostile
@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_global_hidden_in_any_protocol_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = PAYLOADS["os.system"][0](marker)
    path = write(tmp_path, pickle.dumps({"W1": np.ones((2, 2), np.float32), "b1": payload}, protocol))
    assert f"'{SYSTEM}'" in refusal(path)
    assert not marker.exists()


@pytest.mark.hostile
def test_exec_in_nested_reduce_inside_dict_value_refused(tmp_path):
    marker = tmp_path / "pwned"
    nested = {"W1": np.ones(2), "b1": {"inner": (1, Reduce(exec, touch(marker)))}}
    path = write(tmp_path, pickle.dumps(nested, 5))
    assert "'builtins.exec'" in refusal(path)
    assert not marker.exists()


@pytest.mark.hostile
@pytest.mark.parametrize(
    "data, name",
    [
        (b"cos\nsystem\n(S'true'\ntR.", "os.system"),  # protocol 0, by hand
        (b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'mro'\ntR.", "builtins.getattr"),
        (b"cimportlib\nimport_module\n(S'os'\ntR.", "importlib.import_module"),
        (b"\x80\x04" + sbu("numpy") + sbu("dtype.mro") + b"\x93.", "numpy.dtype.mro"),  # dotted qualname
        (b"\x80\x04" + sbu("numpy.core") + sbu("_ufunc_reconstruct") + b"\x93.", "numpy.core._ufunc_reconstruct"),
    ],
)
def test_hand_built_globals_refused(tmp_path, data, name):
    assert f"refused to unpickle '{name}'" in refusal(write(tmp_path, data))


@pytest.mark.hostile
def test_copyreg_extension_code_refused(tmp_path):
    """EXT opcodes name a global by a registered number instead of by text."""
    marker = tmp_path / "pwned"
    module = os.system.__module__
    copyreg.add_extension(module, "system", 0x7FFF0001)
    try:
        data = pickle.dumps(PAYLOADS["os.system"][0](marker), 2)
        assert b"system" not in data  # really hidden behind EXT4
        msg = refusal(write(tmp_path, data))
    finally:
        copyreg.remove_extension(module, "system", 0x7FFF0001)
    assert f"'{SYSTEM}'" in msg
    assert not marker.exists()


class Plain:
    pass


@pytest.mark.hostile
def test_copyreg_reconstructor_refused(tmp_path):
    data = pickle.dumps(Plain(), 0, fix_imports=False)
    assert "'copyreg._reconstructor'" in refusal(write(tmp_path, data))


@pytest.mark.hostile
def test_persistent_id_refused(tmp_path):
    assert "persistent id 'weights'" in refusal(write(tmp_path, b"Pweights\n."))


@pytest.mark.hostile
@pytest.mark.parametrize(
    "payload, why",
    [
        (Reduce(np.ndarray, (1,), "f8", b"\0" * 8), "a direct call to 'numpy.ndarray'"),
        (Reduce(np._core.multiarray._reconstruct, np.ndarray, (10**12,), b"b"), "arguments numpy never writes"),
        (Reduce(codecs.encode, "x", "rot13"), "encoding 'rot13'"),
    ],
    ids=["ndarray-call", "reconstruct-shape", "codecs-rot13"],
)
def test_allowed_globals_misused_refused(tmp_path, payload, why):
    assert why in refusal(write(tmp_path, pickle.dumps({"W1": payload}, 2)))


@pytest.mark.hostile
@pytest.mark.parametrize(
    "state, why",
    [
        # (None, {'__defaults__': ('F',)}): the dict is refused before it can hold the tuple
        (b"N}" + sbu("__defaults__") + b"(" + sbu("F") + b"ts\x86", "'__defaults__' holding a tuple"),
        (b"N(" + sbu("F") + b"t\x86", "state for a function"),  # (None, ('F',))
    ],
)
def test_build_on_allowed_function_refused(tmp_path, state, why):
    """BUILD may not set attributes on numpy's own functions."""
    fn = np._core.numeric._frombuffer
    before = fn.__defaults__
    data = b"\x80\x04" + sbu("numpy._core.numeric") + sbu("_frombuffer") + b"\x93" + state + b"b."
    try:
        assert why in refusal(write(tmp_path, data))
        assert fn.__defaults__ == before
    finally:
        fn.__defaults__ = before


@pytest.mark.hostile
@pytest.mark.parametrize(
    "spec, state",
    [
        ("V8", (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 16)),  # object field over raw bytes
        ("f8", (3, "<", None, None, None, -1, -1, 63)),  # flags that claim object items
        ("f8", (3, "<", (np.dtype("O"), (1,)), None, None, 8, 8, 0)),  # object subarray
        ("f8", (4, "<", None, None, None, -1, -1, 0, np.zeros((3, 3)))),  # metadata; repr spans lines
    ],
    ids=["object-field", "object-flags", "object-subarray", "metadata"],
)
def test_forged_dtype_state_refused(tmp_path, spec, state):
    """Allowed globals only, yet with the C unpickler the first one segfaults on ``.tolist()``."""
    dtype = Reduce(np.dtype, spec, False, True, state=state)
    array = Reduce(np._core.multiarray._reconstruct, np.ndarray, (0,), b"b", state=(1, (1,), dtype, False, b"A" * 8))
    msg = refusal(write(tmp_path, pickle.dumps({"W1": array}, 4)))
    assert "refused to unpickle" in msg and "dtype" in msg


@pytest.mark.hostile
@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize(
    "value",
    [
        np.array([1, "x"], dtype=object),
        (np.array([None]),),
        np.zeros(1, [("w", "f4"), ("o", "O")]),
    ],
    ids=["object", "nested-object", "object-field"],
)
def test_object_arrays_refused(tmp_path, value, protocol):
    msg = refusal(write(tmp_path, pickle.dumps({"W1": value}, protocol)))
    assert "refused to unpickle dtype" in msg


@pytest.mark.hostile
def test_truncated_pickle_names_file(tmp_path, book_weights):
    """Every prefix of the real file, cut inside the header or inside array data."""
    data = book_weights.read_bytes()
    for end in [*range(200), len(data) // 2, len(data) - 1]:
        msg = refusal(write(tmp_path, data[:end]))
        assert "truncated or corrupt" in msg, (end, msg)


@pytest.mark.hostile
def test_garbage_names_file(tmp_path):
    assert "truncated or corrupt" in refusal(write(tmp_path, b"<html>404 Not Found</html>"))


def test_book_weights_load(book_weights):
    arrays = safe_pickle.load(book_weights)
    shapes = {"W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    assert {k: v.shape for k, v in arrays.items()} == shapes
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in arrays.values())
    assert arrays["W1"].std() > 0  # real data, not zeros


SAMPLE = {
    "W1": np.arange(12, dtype=np.float32).reshape(3, 4),
    "F": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "T": np.arange(6, dtype=np.int16).reshape(3, 2).T,
    "big": np.arange(3, dtype=">f8"),
    "empty": np.zeros((0, 3), np.float32),
    "flags": np.array([True, False]),
    "complex": np.array([1 + 2j]),
    "P3": np.arange(24, dtype=np.uint8).reshape(2, 3, 4).transpose(1, 2, 0),  # protocol 5: order 'K'
}


def assert_same(got, want):
    assert type(got) is type(want)
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, (np.ndarray, np.generic)):
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    else:
        assert got == want


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_arrays_round_trip_like_plain_pickle(tmp_path, protocol):
    data = pickle.dumps(SAMPLE, protocol)
    assert_same(safe_pickle.load(write(tmp_path, data)), pickle.loads(data))


def as_numpy1(data):
    """Rewrite ``numpy._core`` to ``numpy.core`` opcode by opcode, as numpy 1.x wrote it.

    Length prefixes are rewritten and FRAME opcodes dropped (frames are optional).
    """
    ops = list(pickletools.genops(data))
    ends = [pos for _, _, pos in ops[1:]] + [len(data)]
    out = []
    for (op, arg, pos), end in zip(ops, ends):
        raw = data[pos:end]
        if op.name == "FRAME":
            continue
        if isinstance(arg, str) and arg.startswith("numpy._core"):
            new = "numpy.core" + arg[len("numpy._core") :]
            if op.name == "GLOBAL":
                raw = b"c" + new.replace(" ", "\n").encode() + b"\n"
            else:
                assert op.name == "SHORT_BINUNICODE", op.name
                raw = sbu(new)
        out.append(raw)
    return b"".join(out)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy1_pickles_load_without_deprecation_warning(tmp_path, protocol):
    data = as_numpy1(pickle.dumps(SAMPLE, protocol))
    assert b"numpy.core." in data and b"numpy._core" not in data
    path = write(tmp_path, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = safe_pickle.load(path)
    assert_same(got, pickle.loads(pickle.dumps(SAMPLE, protocol)))


def test_numpy1_protocol5_warns_under_plain_pickle():
    """Control: plain pickle goes through the deprecated numpy.core alias and warns."""
    data = as_numpy1(pickle.dumps(np.ones(2), 5))
    with pytest.warns(DeprecationWarning, match="numpy.core"):
        pickle.loads(data)


def test_numpy_core_alias_never_imported(book_weights, tmp_path):
    path = write(tmp_path, as_numpy1(pickle.dumps(SAMPLE, 5)))
    code = (
        "import sys; from framework.safeio import safe_pickle\n"
        f"safe_pickle.load({str(book_weights)!r}); safe_pickle.load({str(path)!r})\n"
        "assert 'numpy.core' not in sys.modules, 'numpy.core was imported'"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=repo, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# --- the importer -----------------------------------------------------------


def test_importer_loads_book_weights(book_weights):
    arrays = PickleImporter().load(book_weights)
    layers = check_weights(arrays, [784, 50, 100, 10], book_weights)
    assert [w.shape for w, _ in layers] == [(784, 50), (50, 100), (100, 10)]


def test_importer_missing_file(tmp_path):
    path = tmp_path / "nope.pkl"
    with pytest.raises(FwError) as e:
        PickleImporter().load(path)
    msg = str(e.value)
    assert str(path) in msg and "weights.path" in msg and "weights.url" in msg and "\n" not in msg


@pytest.mark.hostile
@pytest.mark.parametrize(
    "top, said",
    [
        ([np.ones((2, 3)), np.ones(3)], "refused to unpickle a list"),
        ({"W1": [1.0, 2.0]}, "refused to unpickle a list"),
        ({1: np.ones(3)}, "refused to unpickle a non-str dict key 1 (int)"),
        ({"W1": "text"}, "refused to unpickle 'W1' holding a str, not a numpy array"),
        ({"W1": np.float32(1)}, "refused to unpickle 'numpy._core.multiarray.scalar'"),
        (np.ones(3), "refused to unpickle a top-level ndarray (not a dict)"),
    ],
)
def test_importer_rejects_wrong_structure(tmp_path, top, said):
    path = write(tmp_path, pickle.dumps(top, 4))
    with pytest.raises(FwError) as e:
        PickleImporter().load(path)
    assert str(e.value).startswith(f"{path}: ") and said in str(e.value)


@pytest.mark.hostile
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_weights_rejects_non_finite_from_importer(tmp_path, bad):
    w1 = np.ones((2, 3), np.float32)
    w1[1, 2] = bad
    path = write(tmp_path, pickle.dumps({"W1": w1, "b1": np.zeros(3, np.float32)}, 3))
    arrays = PickleImporter().load(path)
    with pytest.raises(FwError, match=r"'W1' contains NaN or Inf") as e:
        check_weights(arrays, [2, 3], path)
    assert str(path) in str(e.value)


def test_importer_registers_through_the_hook():
    pm = pluggy.PluginManager("fw")
    pm.add_hookspecs(hookspecs)
    pm.register(pickle_importer)
    pm.check_pending()
    seen = []
    pm.hook.register_weight_importers(register=seen.append)
    assert seen == [PickleImporter] and PickleImporter.name == "pickle"


def test_loading_needs_nothing_of_pickles_private_pure_python_unpickler(monkeypatch, book_weights, tmp_path):
    """``pickle._Unpickler`` is private: a Python release may change it. The loader restricts
    pickle's documented ``Unpickler`` through ``find_class``, so the book's weights, a protocol 0
    file and a refused one behave the same with the private class broken."""

    def broken(*args, **kwargs):
        raise AssertionError("pickle._Unpickler was used")

    for name in ("__init__", "load", "find_class", "persistent_load"):
        monkeypatch.setattr(pickle._Unpickler, name, broken)
    arrays = safe_pickle.load(book_weights)
    assert arrays["W1"].shape == (784, 50)
    data = pickle.dumps(SAMPLE, 0)
    assert_same(safe_pickle.load(write(tmp_path, data)), pickle.loads(data))
    assert f"'{SYSTEM}'" in refusal(write(tmp_path, pickle.dumps({"W1": Reduce(os.system, "true")}, 2), "hostile.pkl"))
