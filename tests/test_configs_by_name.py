"""The bundled configs: listed by `fw configs`, run by name from any folder, copied by `fw config NAME`."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from framework import FwError, load_config
from framework.data import bundled
from test_cli import BOOK, fw, one_line_error

REPO = Path(__file__).resolve().parents[1]
NAMES = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path, monkeypatch):
    """Every test stands in an empty folder, far from the clone's configs/."""
    monkeypatch.chdir(tmp_path)


def test_the_bundled_configs_are_the_repositorys(tmp_path):
    assert bundled.config_names() == NAMES
    assert {"fashion_infer", "fashion_train", "mnist_infer", "mnist_train"} <= set(NAMES)


def test_fw_configs_lists_each_with_its_first_comment_line(capsys):
    code, out, err = fw(capsys, "configs")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    for line, name in zip(lines, NAMES):
        first = (REPO / "configs" / f"{name}.yaml").read_text().splitlines()[0]
        assert first.removeprefix("# ") in line and len(first) > 30, "a one-line description"
    import re

    assert re.search(r"^mnist_infer +The book's chapter-3 network", out, re.M) and "0.9352" in out
    assert "fw run NAME" in err and "fw config NAME > my.yaml" in err


def test_a_bare_name_loads_the_bundled_config_from_any_folder():
    by_name = OmegaConf.to_container(load_config("mnist_infer"))
    assert by_name == OmegaConf.to_container(load_config(BOOK))


def test_fw_run_by_name_prints_the_books_accuracy_offline(capsys, tmp_path):
    """No FW_DATA_DIR, an empty HOME (conftest): the bundled inputs are read."""
    code, out, err = fw(capsys, "run", "mnist_infer")
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")
    assert list(tmp_path.iterdir()) == [], "nothing written into the current folder"


def test_a_file_at_the_path_wins_over_the_bundled_name(tmp_path):
    (tmp_path / "mnist_infer").write_text("batch_size: 7\nweights: null\n")
    assert load_config("mnist_infer").batch_size == 7
    assert load_config("mnist_train").batch_size == 100  # the others are still found by name


def test_an_unknown_name_says_what_was_tried_and_what_exists(tmp_path):
    with pytest.raises(FwError) as e:
        load_config("mnist_infr")
    msg = str(e.value)
    assert f"no file mnist_infr in {tmp_path}" in msg and "no bundled config of that name" in msg
    assert "did you mean 'mnist_infer'?" in msg and ", ".join(NAMES) in msg and "\n" not in msg


def test_a_missing_yaml_file_with_a_bundled_name_points_at_the_name(capsys):
    code, out, err = fw(capsys, "run", "configs/mnist_infer.yaml")  # the README's path, outside a clone
    one_line_error(
        code, out, err, "config file not found: configs/mnist_infer.yaml", "give the name alone: mnist_infer"
    )


def test_fw_config_name_gives_a_copy_to_edit_that_runs_the_same(capsys, tmp_path):
    code, out, err = fw(capsys, "config", "mnist_infer")
    assert code == 0, err
    (tmp_path / "my.yaml").write_text(out)
    mine = load_config(tmp_path / "my.yaml", ["batch_size=1000"])
    assert mine.batch_size == 1000 and [
        layer if isinstance(layer, str) else layer.get("units") for layer in mine.model.layers
    ] == [50, "sigmoid", 100, "sigmoid", 10, "softmax"]
    code, out, err = fw(capsys, "run", "my.yaml")
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")


def test_a_minimal_config_shows_its_defaults(capsys, tmp_path):
    (tmp_path / "min.yaml").write_text("batch_size: 10\n")
    code, out, err = fw(capsys, "config", "min.yaml")
    assert code == 0, err
    cfg = OmegaConf.create(out)
    assert cfg.batch_size == 10 and len(cfg.model.layers) == 6 and cfg.dataset.name == "mnist"
    assert cfg.weights.importer == "pickle" and cfg.weights.path is None and cfg.train.epochs == 10
    assert err.startswith("fw: warning: weights.path and weights.url are both null: fw run needs one")
    # fw run still needs a weights file, and says so in one line.
    one_line_error(*fw(capsys, "run", "min.yaml"), "weights.path must be a file path")


def test_help_says_a_config_may_be_a_name(capsys):
    with pytest.raises(SystemExit):
        fw(capsys, "--help")
    out = capsys.readouterr().out
    assert "fw run mnist_infer" in out and "configs" in out
    with pytest.raises(SystemExit):
        fw(capsys, "config", "--help")
    out = capsys.readouterr().out
    assert "bundled config's name" in out and "fw config mnist_infer > my.yaml" in out
