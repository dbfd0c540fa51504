"""The npz importer and `fw convert-weights` (through the restricted unpickler, written atomically)."""

import pickle

import numpy as np
import pytest

from framework import FwError
from framework.cli import main
from framework.plugins.npz_importer import NpzImporter, register_weight_importers
from test_cli import BOOK, fw, one_line_error


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def test_registered_as_npz():
    got = []
    register_weight_importers(got.append)
    assert got == [NpzImporter] and NpzImporter.name == "npz"


def test_loads_named_arrays(tmp_path):
    w = tmp_path / "w.npz"
    np.savez(w, W1=np.ones((2, 3), np.float32), b1=np.zeros(3, np.float32))
    arrays = NpzImporter().load(w)
    assert sorted(arrays) == ["W1", "b1"] and arrays["W1"].shape == (2, 3)


def test_an_object_array_is_refused_without_unpickling(tmp_path):
    w = tmp_path / "obj.npz"
    np.savez(w, W1=np.array([{"a": 1}, None], dtype=object))  # needs pickle to load
    with pytest.raises(FwError, match=r"obj.npz: array 'W1' cannot be loaded without pickle"):
        NpzImporter().load(w)


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated zip", b"\x80\x04 a pickle, not a zip", b""])
def test_a_damaged_or_wrong_file_is_one_line(tmp_path, content):
    w = tmp_path / "bad.npz"
    w.write_bytes(content)
    with pytest.raises(FwError) as e:
        NpzImporter().load(w)
    assert str(w) in str(e.value) and "\n" not in str(e.value)


def test_a_single_npy_array_is_explained(tmp_path):
    w = tmp_path / "w.npy"
    np.save(w, np.ones(3))
    with pytest.raises(FwError, match="single array"):
        NpzImporter().load(w)


def test_convert_then_run_gives_the_books_accuracy(capsys, tmp_path, book_weights, mnist_dir):
    out = tmp_path / "sample_weight.npz"
    code, stdout, err = fw(capsys, "convert-weights", book_weights, out)
    assert code == 0, err
    assert f"wrote {out}: W1 (784, 50) float32" in stdout and "model.sizes=[784,50,100,10]" in stdout
    assert "importer: npz" in stdout
    original = pickle.loads(book_weights.read_bytes())
    converted = NpzImporter().load(out)
    assert sorted(converted) == sorted(original)
    assert all(np.array_equal(converted[k], original[k]) and converted[k].dtype == original[k].dtype for k in original)
    code, stdout, err = fw(
        capsys, "run", BOOK, f"dataset.root={mnist_dir}", "weights.importer=npz", f"weights.path={out}"
    )
    assert code == 0, err
    assert stdout.startswith("Accuracy: 0.9352 (9352/10000 correct)")


def test_an_evil_pickle_is_refused_and_nothing_is_written(capsys, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    src, out = tmp_path / "evil.pkl", tmp_path / "out.npz"
    src.write_bytes(pickle.dumps({"W1": Evil()}))
    code, stdout, err = fw(capsys, "convert-weights", src, out)
    one_line_error(code, stdout, err, "refused to unpickle", "builtins.print")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pkl"], "no output, no temp file"


def test_an_existing_output_needs_force_and_is_replaced_whole(capsys, tmp_path, book_weights):
    out = tmp_path / "w.npz"
    out.write_bytes(b"old")
    one_line_error(*fw(capsys, "convert-weights", book_weights, out), "already exists", "--force")
    assert out.read_bytes() == b"old"
    code, _, err = fw(capsys, "convert-weights", book_weights, out, "--force")
    assert code == 0, err
    assert NpzImporter().load(out)["W3"].shape == (100, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_the_output_must_be_an_npz_name(capsys, tmp_path, book_weights):
    one_line_error(*fw(capsys, "convert-weights", book_weights, tmp_path / "w.bin"), "must end with .npz")


def test_a_missing_input_is_one_line(capsys, tmp_path):
    one_line_error(*fw(capsys, "convert-weights", tmp_path / "nope.pkl", tmp_path / "w.npz"), "nope.pkl", "not found")


def test_help():
    with pytest.raises(SystemExit):
        main(["convert-weights", "--help"])


def test_a_file_that_is_no_archive_at_all_says_so(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with pytest.raises(FwError, match=r"junk.npz: not a .npz archive \(a .npz is a zip of .npy files\)"):
        NpzImporter().load(junk)


def test_the_pickle_importer_recognises_an_npz_and_says_which_importer(tmp_path):
    from framework.plugins.pickle_importer import PickleImporter

    w = tmp_path / "w.npz"
    np.savez(w, W1=np.ones((2, 2), np.float32))
    with pytest.raises(FwError, match="is a numpy .npz/.npy file, not a pickle; set weights.importer=npz"):
        PickleImporter().load(w)


def test_convert_weights_names_a_missing_input(capsys, tmp_path):
    one_line_error(
        *fw(capsys, "convert-weights", tmp_path / "nope.pkl", tmp_path / "o.npz"), "input", "nope.pkl not found"
    )
