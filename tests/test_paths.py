"""One path rule: relative to the config file that wrote it; from the command line or the environment, to the cwd."""

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from framework import load_config
from test_cli import BOOK, fw

REPO = Path(__file__).resolve().parents[1]
TANH = REPO / "tests" / "plugin_modules" / "tanh_plugin.py"


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugin_manager

    plugin_manager._build.cache_clear()


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """tmp/proj/c.yaml with relative paths in it, and the user standing in tmp/work."""
    proj, work = tmp_path / "proj", tmp_path / "work"
    proj.mkdir()
    work.mkdir()
    (proj / "c.yaml").write_text(
        "dataset: {root: data}\nweights: {importer: pickle, path: w/w.pkl}\nplugins: [p.py, some.module]\n"
    )
    monkeypatch.chdir(work)
    return proj, work


def test_paths_written_in_a_config_file_resolve_against_its_folder(layout):
    proj, work = layout
    for name in (proj / "c.yaml", "../proj/c.yaml"):  # the file's own path may be relative too
        cfg = load_config(name)
        assert cfg.dataset.root == str(proj / "data")
        assert cfg.weights.path == str(proj / "w" / "w.pkl")
        assert list(cfg.plugins) == [str(proj / "p.py"), "some.module"]


def test_paths_given_on_the_command_line_resolve_against_the_current_folder(layout):
    proj, work = layout
    cfg = load_config(proj / "c.yaml", ["dataset.root=d2", "weights.path=../w2.pkl", "plugins=[q.py, other.module]"])
    assert cfg.dataset.root == str(work / "d2")
    assert cfg.weights.path == str(work.parent / "w2.pkl")
    assert list(cfg.plugins) == [str(work / "q.py"), "other.module"]
    # A whole mapping given on the command line follows the same rule.
    cfg = load_config(proj / "c.yaml", ["weights={importer: npz, path: x.npz}", "dataset={root: d3}"])
    assert (cfg.weights.path, cfg.dataset.root) == (str(work / "x.npz"), str(work / "d3"))


def test_home_is_expanded_and_absolute_paths_are_kept(layout):
    proj, _ = layout
    cfg = load_config(proj / "c.yaml", ["weights.path=~/w.pkl", "dataset.root=/data/mnist"])
    assert (cfg.weights.path, cfg.dataset.root) == (str(Path.home() / "w.pkl"), "/data/mnist")


def test_an_interpolation_of_a_path_key_keeps_the_files_folder(layout):
    proj, _ = layout
    (proj / "c.yaml").write_text("dataset: {root: data}\nweights: {importer: pickle, path: '${dataset.root}/w.pkl'}\n")
    assert load_config(proj / "c.yaml").weights.path == str(proj / "data" / "w.pkl")


def test_a_plugin_given_on_the_command_line_is_found_in_the_current_folder(capsys, layout, mnist_dir):
    """The old rule looked for it beside the config instead."""
    proj, work = layout
    shutil.copy(TANH, work / "my_tanh.py")
    (proj / "c.yaml").write_text(f"weights: null\ndataset: {{root: {mnist_dir}}}\n")
    code, out, err = fw(capsys, "run", proj / "c.yaml", "plugins=[my_tanh.py]", "model.activation=tanh", "--json")
    assert code == 0, err
    assert 0.03 < float(out.split('"accuracy": ')[1].split(",")[0]) < 0.3  # random weights: near chance


@pytest.fixture
def clone(tmp_path, mnist_dir, book_weights):
    """A clone beside a ../shared/data laid out like the real one (links to its files; writable for caches)."""
    repo, data = tmp_path / "fw", tmp_path / "shared" / "data"
    (repo / "configs").mkdir(parents=True)
    shutil.copy(BOOK, repo / "configs" / "mnist_infer.yaml")
    (data / "mnist").mkdir(parents=True)
    (data / "book").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (data / "mnist" / name).symlink_to(mnist_dir / name)
    (data / "book" / "sample_weight.pkl").symlink_to(book_weights)
    return repo, data


@pytest.mark.parametrize("where, fw_data_dir", [(".", "../shared/data"), ("configs", "../../shared/data")])
def test_a_relative_fw_data_dir_is_taken_from_the_current_folder_not_the_configs(
    capsys, clone, monkeypatch, where, fw_data_dir
):
    """`FW_DATA_DIR=../shared/data fw run configs/mnist_infer.yaml` from the clone, and the same from configs/.

    The config's ${oc.env:FW_DATA_DIR,...} is the environment's value, not a path
    written in the file, so it is read as the shell reads it: from the current folder.
    """
    repo, data = clone
    monkeypatch.chdir(repo / where)
    monkeypatch.setenv("FW_DATA_DIR", fw_data_dir)
    config = Path("configs/mnist_infer.yaml") if where == "." else Path("mnist_infer.yaml")
    assert load_config(config).weights.path == str(data / "book" / "sample_weight.pkl")
    code, out, err = fw(capsys, "run", config)
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")
    # Both inputs came from FW_DATA_DIR (not from the copies fw ships): the images' cache is that root's.
    from framework.plugins.mnist import MNIST

    assert (MNIST(data / "mnist").cache_dir() / "t10k-images-idx3-ubyte.npy").is_file()


def test_fw_config_prints_the_absolute_paths_it_resolved_and_they_run_from_anywhere(capsys, layout, mnist_dir):
    proj, work = layout
    code, out, err = fw(capsys, "config", proj / "c.yaml", "weights.path=mine.pkl", "plugins=[]")
    assert code == 0, err
    cfg = OmegaConf.create(out)
    assert (cfg.dataset.root, cfg.weights.path) == (str(proj / "data"), str(work / "mine.pkl"))
    # Saved in yet another folder, the printed config means the same files.
    elsewhere = proj / "sub" / "copy.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(out)
    assert load_config(elsewhere).weights.path == str(work / "mine.pkl")


def test_a_bundled_config_run_by_name_writes_into_the_current_folder_not_the_package(layout):
    _, work = layout
    from framework.data import bundled

    cfg = load_config("fashion_train")
    assert cfg.weights.path == str(work / "runs" / "fashion_train" / "weights.npz")
    assert not cfg.weights.path.startswith(str(bundled.configs_dir()))
