"""fw show (PNG grids), fw run --report (per-class accuracy, confusion matrix) and fw config."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from framework.plugins.fashion_mnist import FashionMNIST
from test_cli import BOOK, fw, one_line_error

PIL = pytest.importorskip("PIL.Image", reason="Pillow is in the test extra: pip install -e '.[test]'")
FASHION = str(Path(BOOK).parent / "fashion_infer.yaml")
MNIST_CLASS_TOTALS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


@pytest.fixture
def book(mnist_dir, book_weights):
    return [BOOK, f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]


@pytest.fixture
def fashion(fashion_dir):
    return [FASHION, f"dataset.root={fashion_dir}"]


# --- fw run --report -------------------------------------------------------------


def test_report_text_names_the_classes_and_is_aligned(capsys, fashion):
    code, out, err = fw(capsys, "run", *fashion, "--report")
    assert code == 0, err
    head, _, table = out.partition("\n\n")
    assert head.startswith("Accuracy: 0.1277 (1277/10000 correct)")  # random weights, model.seed=0
    per_class, _, matrix = table.partition("\n\n")
    rows = per_class.splitlines()[2:]
    assert [r.split()[1] for r in rows][:3] == ["T-shirt/top", "Trouser", "Pullover"]
    assert "Ankle boot" in rows[9] and rows[9].split()[-1] == "1000"
    assert len({len(r) for r in per_class.splitlines()[1:]}) == 1, "per-class rows line up"
    mrows = matrix.splitlines()[1:]
    assert len(mrows) == 11 and len({len(r) for r in mrows}) == 1, "confusion rows line up"
    counts = np.array([[int(v) for v in r.split()[-10:]] for r in mrows[1:]])
    assert counts.sum() == 10000 and np.trace(counts) == 1277
    assert (counts.sum(axis=1) == 1000).all()


def test_report_json_matches_the_accuracy(capsys, book):
    code, out, err = fw(capsys, "run", *book, "--report", "--json")
    assert code == 0, err
    r = json.loads(out)
    m = np.array(r["confusion_matrix"])
    assert m.shape == (10, 10) and np.trace(m) == r["correct"] == 9352
    assert m.sum(axis=1).tolist() == MNIST_CLASS_TOTALS
    assert r["class_names"] == list("0123456789")
    assert [c["total"] for c in r["per_class"]] == MNIST_CLASS_TOTALS
    one = r["per_class"][1]
    assert one["name"] == "1" and one["accuracy"] == pytest.approx(one["correct"] / 1135)
    assert sum(c["correct"] for c in r["per_class"]) == 9352


def test_run_without_report_has_no_table(capsys, book):
    code, out, _ = fw(capsys, "run", *book, "--json")
    assert "confusion_matrix" not in json.loads(out)


# --- fw show ---------------------------------------------------------------------


def tiles_match(png, images, scale=3):
    """Each image, scaled up, appears in the PNG (found by searching for its top-left tile)."""
    sheet = np.asarray(PIL.open(png).convert("L"))
    h, w = images.shape[1:]
    for img in images:
        tile = np.kron(img, np.ones((scale, scale), np.uint8))
        found = False
        for y in range(sheet.shape[0] - h * scale + 1):
            row = sheet[y]
            for x in np.flatnonzero(row == tile[0, 0]):
                if x + w * scale <= sheet.shape[1] and np.array_equal(
                    sheet[y : y + h * scale, x : x + w * scale], tile
                ):
                    found = True
                    break
            if found:
                break
        if not found:
            return False
    return True


def test_show_writes_a_labelled_grid_of_the_split(capsys, fashion, fashion_dir, tmp_path):
    out = tmp_path / "grid.png"
    code, stdout, err = fw(capsys, "show", *fashion, "--count", 4, "--index", 10, "--out", out)
    assert code == 0, err
    assert stdout == (
        f"wrote {out} ({PIL.open(out).width}x{PIL.open(out).height} px): fashion_mnist test: images 10 to 13 of 10000\n"
    )
    img = PIL.open(out)
    assert img.format == "PNG" and img.width >= 4 * 28 * 3 and img.height > 28 * 3
    images, _ = FashionMNIST(fashion_dir).load_raw("test")
    assert tiles_match(out, images[10:12])
    assert not tiles_match(out, images[20:21]), "an image that was not asked for is not there"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"], "no temp file left"


def test_show_default_name_and_options(capsys, fashion, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = fw(capsys, "show", *fashion, "--count", 3, "--columns", 3)
    assert code == 0, err
    assert (tmp_path / "fashion_mnist-test.png").is_file()


def test_show_replaces_no_existing_file_unless_force(capsys, fashion, tmp_path, monkeypatch):
    """Issue 26, 4.1: fw never replaces a file it was not told to, the default name included."""
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "fashion_mnist-test.png"
    mine.write_bytes(b"my own picture")
    one_line_error(
        *fw(capsys, "show", *fashion, "--count", 2), "--out fashion_mnist-test.png already exists", "--force"
    )
    assert mine.read_bytes() == b"my own picture"
    code, _, err = fw(capsys, "show", *fashion, "--count", 2, "--force")
    assert code == 0, err
    assert PIL.open(mine).format == "PNG"


def test_show_misclassified_shows_only_mistakes(capsys, book, mnist_dir, tmp_path):
    out = tmp_path / "wrong.png"
    code, stdout, err = fw(capsys, "show", *book, "--misclassified", "--count", 3, "--out", out)
    assert code == 0, err
    assert "3 of the 648 misclassified images (accuracy 0.9352), from index 0" in stdout
    from framework.plugins.mnist import MNIST

    images, _ = MNIST(mnist_dir).load_raw("test")
    # The book's network gets test images 8, 33 and 66 wrong and 0..7 right.
    assert tiles_match(out, images[[8, 33, 66]])
    assert not tiles_match(out, images[[0]])


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--index", 10000], "--index 10000 is outside the split, which has 10000 images; use 0 to 9999"),
        (["--count", 0], "--count must be between 1 and 1000"),
        (["--out", "grid.jpg"], "give a name ending in .png"),
        (
            ["dataset.split=validation"],
            "dataset 'fashion_mnist' has no split 'validation' (dataset.split); choose one of: train, test",
        ),
    ],
)
def test_show_errors_are_one_line_and_write_nothing(capsys, fashion, tmp_path, monkeypatch, args, problem):
    monkeypatch.chdir(tmp_path)
    one_line_error(*fw(capsys, "show", *fashion, *args), problem)
    assert list(tmp_path.iterdir()) == []


def test_show_without_pillow_says_how_to_install_it(capsys, fashion, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.chdir(tmp_path)
    one_line_error(*fw(capsys, "show", *fashion), "fw show needs Pillow", "pip install Pillow")


def test_pillow_is_imported_only_by_show(capsys, book):
    import subprocess

    code = "import sys; from framework.cli import main; main(sys.argv[1:]); print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code, "run", *book], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[-1] == "False", out.stderr


# --- fw config -------------------------------------------------------------------


def test_config_prints_the_resolved_yaml_and_it_runs_the_same(capsys, book, tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.setenv("FW_DATA_DIR", "/data/elsewhere")
    code, out, err = fw(capsys, "config", BOOK, "batch_size=500")
    assert code == 0, err
    cfg = OmegaConf.create(out)
    assert cfg.batch_size == 500 and cfg.model.sizes is None, "the shorthand is printed expanded"
    dense = {"name": "dense", "units": 50}, {"name": "dense", "units": 100}, {"name": "dense", "units": 10}
    assert cfg.model.layers == [dense[0], "sigmoid", dense[1], "sigmoid", dense[2], "softmax"]
    assert cfg.weights.path == "/data/elsewhere/book/sample_weight.pkl", "interpolations are resolved"
    assert "${" not in out
    monkeypatch.delenv("FW_DATA_DIR")
    code, out, err = fw(capsys, "config", *book)
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(out)
    code, out, err = fw(capsys, "run", resolved)
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")


def test_config_errors_like_run(capsys):
    one_line_error(*fw(capsys, "config", BOOK, "model.sizs=[1,2]"), "unknown key 'model.sizs'", "model.sizes")


def test_help_mentions_the_new_commands(capsys):
    with pytest.raises(SystemExit):
        fw(capsys, "--help")
    out = capsys.readouterr().out
    for command in ("config", "show", "convert-weights"):
        assert command in out
    with pytest.raises(SystemExit):
        fw(capsys, "show", "--help")
    out = capsys.readouterr().out
    assert "--misclassified" in out and "--index" in out and "--count" in out and "--out" in out and "examples:" in out


def test_overrides_may_follow_options(capsys, book, fashion_full_dir, tmp_path):
    code, out, err = fw(capsys, "run", *book, "--json", "batch_size=1000")
    assert code == 0, err
    assert json.loads(out)["correct"] == 9352
    out_png = tmp_path / "train.png"
    code, out, err = fw(
        capsys,
        "show",
        FASHION,
        "--count",
        2,
        "--out",
        out_png,
        f"dataset.root={fashion_full_dir}",
        "dataset.split=train",
    )
    assert code == 0, err
    assert "fashion_mnist train: images 0 to 1 of 60000" in out


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.activation=nosuch", "model.activation: unknown activation 'nosuch'"),
        ("dataset.name=cifar", "dataset.name: unknown dataset 'cifar'"),
        ("train.optimizer.name=rmsprop", "train.optimizer: unknown optimizer 'rmsprop'"),
        ("train.loss=hinge", "train.loss: unknown loss 'hinge'"),
        ("model.init=zeros", "model.init: unknown initializer 'zeros'"),
    ],
)
def test_fw_config_checks_every_name(capsys, override, expected):
    from framework.cli import main

    code = main(["config", BOOK, override])
    err = capsys.readouterr().err
    assert code == 1 and expected in err


@pytest.mark.parametrize(
    "command", ["run", "train", "predict", "show", "sweep", "compare", "export", "import-onnx", "serve"]
)
def test_every_help_fits_a_terminal(capsys, command):
    """Each example in the help stays on lines a terminal shows whole (fw train's once ran to 130 columns)."""
    with pytest.raises(SystemExit) as done:
        fw(capsys, command, "--help")
    out = capsys.readouterr().out
    assert done.value.code == 0 and out
    assert max(len(line) for line in out.splitlines()) <= 100, max(out.splitlines(), key=len)
