"""The user's dataset is read, or refused in one line: never silently replaced by fw's bundled copy.

Each input is built in tmp_path from the real MNIST test split. Before, every
one of them printed the bundled set's 0.9352 with exit 0 and an empty stderr.
"""

import gzip
import shutil

import numpy as np
import pytest

from test_cli import BOOK, fw

pytestmark = pytest.mark.slow

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def idx_gz(path, array):
    """Write ``array`` (uint8) as a gzipped IDX file, the MNIST format."""
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, np.uint8).tobytes(), mtime=0))


@pytest.fixture
def mnist_arrays(mnist_dir):
    from framework.plugins.idx import read_idx

    return read_idx(mnist_dir / IMAGES), read_idx(mnist_dir / LABELS)


@pytest.fixture
def folder(tmp_path, mnist_dir):
    """A copy of the real MNIST test files, for the test to spoil."""
    root = tmp_path / "mnist"
    root.mkdir()
    for name in (IMAGES, LABELS):
        shutil.copy(mnist_dir / name, root / name)
    return root


def run(capsys, root, book_weights, *more):
    return fw(capsys, "run", BOOK, f"dataset.root={root}", f"weights.path={book_weights}", *more)


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (lambda b: b[: len(b) // 2], "is truncated"),
        (lambda b: b"garbage, not gzip" * 10, "is corrupt or not a gzip file"),
        (lambda b: b"", "is truncated|is corrupt|is not an IDX file"),
        # a gzip bomb: an IDX header claiming MNIST's shape, then megabytes of zeros past it
        (lambda b: gzip.compress(gzip.decompress(b) + bytes(50 << 20)), "holds more than the 7840000 data bytes"),
    ],
    ids=["truncated", "garbage", "empty", "bomb"],
)
def test_a_damaged_file_in_the_named_folder_is_an_error_naming_it(capsys, folder, book_weights, spoil, problem):
    path = folder / IMAGES
    path.write_bytes(spoil(path.read_bytes()))
    code, out, err = run(capsys, folder, book_weights)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"fw: error: {path} ") and "delete it to use fw's own copy" in err
    assert any(p in err for p in problem.split("|")), err


@pytest.mark.parametrize("kind", ["inverted", "subset", "shuffled-labels"])
def test_the_users_own_mnist_format_files_are_refused_as_not_mnist(capsys, folder, book_weights, mnist_arrays, kind):
    images, labels = mnist_arrays
    if kind == "inverted":
        idx_gz(folder / IMAGES, 255 - images)
    elif kind == "subset":
        idx_gz(folder / IMAGES, images[:5000])
        idx_gz(folder / LABELS, labels[:5000])
    else:
        idx_gz(folder / LABELS, np.random.default_rng(0).permutation(labels))
    code, out, err = run(capsys, folder, book_weights)
    assert code == 1 and "0.9352" not in out, out
    assert "it is not mnist's" in err and "the arrays dataset" in err and err.count("\n") == 1, err


def test_a_cache_of_fws_copy_does_not_hide_a_file_put_in_the_folder_later(capsys, folder, book_weights, mnist_arrays):
    good = run(capsys, folder, book_weights)
    assert good[0] == 0 and "0.9352" in good[1]
    idx_gz(folder / IMAGES, 255 - mnist_arrays[0])  # the same folder, now with the user's own images
    code, _, err = run(capsys, folder, book_weights)
    assert code == 1 and "it is not mnist's" in err, err


def test_a_named_folder_that_does_not_exist_is_an_error(capsys, tmp_path, book_weights):
    code, out, err = run(capsys, tmp_path / "no" / "such" / "dir", book_weights)
    assert code == 1 and out == ""
    assert f"dataset.root {tmp_path / 'no' / 'such' / 'dir'} does not exist" in err and err.count("\n") == 1


def test_a_named_folder_that_is_a_file_says_so(capsys, tmp_path, book_weights):
    file = tmp_path / "mnist.gz"
    file.write_bytes(b"x")
    code, _, err = run(capsys, file, book_weights)
    assert code == 1 and f"dataset.root {file} is a file, not a folder" in err and "read-only" not in err


def test_fw_data_dir_pointing_at_modified_files_is_refused(capsys, tmp_path, monkeypatch, book_weights, mnist_arrays):
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    idx_gz(tmp_path / "data" / "mnist" / IMAGES, 255 - mnist_arrays[0])
    shutil.copy(book_weights, tmp_path / "data" / "sample_weight.pkl")
    monkeypatch.setenv("FW_DATA_DIR", str(tmp_path / "data"))
    code, out, err = fw(capsys, "run", BOOK)
    assert code == 1 and "0.9352" not in out and f"{tmp_path / 'data' / 'mnist' / IMAGES}" in err, err


def test_an_empty_folder_still_reads_fws_copy_of_the_test_split(capsys, tmp_path, book_weights):
    """The rule's other half: where the folder has no file, the bundled copy stands in, offline."""
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, tmp_path / "empty", book_weights)
    assert code == 0 and out.startswith("Accuracy: 0.9352"), err


def test_fw_show_draws_the_users_images_or_refuses(capsys, folder, book_weights, tmp_path):
    pytest.importorskip("PIL.Image", reason="Pillow is in the test extra: pip install -e '.[test]'")
    (folder / IMAGES).write_bytes(b"garbage")
    code, _, err = fw(capsys, "show", BOOK, f"dataset.root={folder}", "--out", tmp_path / "x.png")
    assert code == 1 and f"{folder / IMAGES}" in err and not (tmp_path / "x.png").exists()
