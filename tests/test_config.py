"""Config loading: struct-mode keys, overrides, types and one-line errors."""

from pathlib import Path

import pytest

from framework import FwError, load_config

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "configs" / "mnist_infer.yaml"


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_book_config_has_the_books_network():
    cfg = load_config(BOOK)
    assert list(cfg.model.sizes) == [784, 50, 100, 10]
    assert (cfg.model.activation, cfg.model.output_activation) == ("sigmoid", "softmax")
    assert (cfg.dataset.name, cfg.dataset.split, cfg.batch_size) == ("mnist", "test", 100)
    assert cfg.weights.importer == "pickle" and cfg.weights.sha256.startswith("b7f55a27")


def test_weights_path_follows_fw_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FW_DATA_DIR", str(tmp_path))
    assert load_config(BOOK).weights.path == f"{tmp_path}/book/sample_weight.pkl"
    monkeypatch.delenv("FW_DATA_DIR")
    assert load_config(BOOK).weights.path == str(Path.home() / ".cache/fw/book/sample_weight.pkl")  # ~ expanded


def test_overrides_use_the_dotlist_syntax():
    cfg = load_config(BOOK, ["model.sizes=[784,100,100,10]", "batch_size=1000", "weights=null"])
    assert list(cfg.model.sizes) == [784, 100, 100, 10]
    assert cfg.batch_size == 1000 and cfg.weights is None


def test_activation_may_carry_parameters(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  activation: {name: leaky_relu, alpha: 0.1}\nweights: null\n"))
    assert cfg.model.activation.name == "leaky_relu" and cfg.model.activation.alpha == 0.1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model:\n  sizs: [784, 10]\n", r"unknown key 'model.sizs'; did you mean 'model.sizes'\?"),
        ("datset:\n  name: mnist\n", r"unknown key 'datset'; did you mean 'dataset'\?"),
        ("batch_size: 0\n", r"batch_size must be a positive whole number"),
        ("batch_size: -5\n", r"batch_size must be a positive whole number"),
        ("batch_size: true\n", r"batch_size must be a positive whole number"),
        ("model:\n  sizes: [784]\n", r"model.sizes must be a list of at least two"),
        ("model:\n  sizes: [784, -1]\n", r"model.sizes must be"),
        ("dataset:\n  normalize: maybe\n", r"dataset.normalize must be true or false"),
        ("weights:\n  path: w.pkl\n  sha256: abc\n", r"weights.sha256 must be 64 hex digits"),
        ("model:\n  seed: -1\nweights: null\n", r"model.seed must be a whole number, 0 or more"),
        ("model:\n  sizes: [784, 10]\n", r"weights.path must be a file path"),
        ("- just\n- a list\n", r"top level must be a mapping"),
        ("model: [\n", r":line 2, column 1: invalid YAML"),
        ("model:\n\tsizes: [784, 10]\n", r"YAML indents with spaces, not tabs"),
        ("   \n", r"is empty; start from a config such as configs/mnist_infer.yaml"),
        (
            "weights:\n  path: w.pkl\n  sha256: 0000000000000000000000000000000000000000000000000000000000000000\n",
            r"in quotes",
        ),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(FwError, match=expected) as e:
        load_config(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.sizs=[1,2]", r"override 'model.sizs=\[1,2\]': unknown key 'model.sizs'; did you mean 'model.sizes'"),
        ("batch_size=abc", r"override 'batch_size=abc': batch_size must be a positive whole number.*'abc'"),
        ("batch_size", r"override 'batch_size' is not KEY=VALUE"),
        ("model.sizes=[784,", r"override 'model.sizes=\[784,': cannot parse the value"),
    ],
)
def test_bad_overrides_are_blamed_on_the_override(override, expected):
    with pytest.raises(FwError, match=expected) as e:
        load_config(BOOK, [override])
    assert "\n" not in str(e.value)


def test_missing_config_file_or_a_folder(tmp_path):
    with pytest.raises(FwError, match="config file not found: nope.yaml"):
        load_config("nope.yaml")
    with pytest.raises(FwError, match=f"{tmp_path} is a folder, not a regular file; pass the path of a YAML file"):
        load_config(tmp_path)


def test_a_config_naming_its_own_weights_inherits_no_url_or_checksum(tmp_path):
    cfg = load_config(write(tmp_path, "weights: {importer: npz, path: w.npz}\n"))
    assert (cfg.weights.path, cfg.weights.url, cfg.weights.sha256) == (str(tmp_path / "w.npz"), None, None)


def test_plugin_paths_are_relative_to_the_config_file(tmp_path):
    cfg = load_config(write(tmp_path, "plugins: [my_plugin.py, some.module]\nweights: null\n"))
    assert list(cfg.plugins) == [str(tmp_path / "my_plugin.py"), "some.module"]


def test_a_weights_mapping_given_over_weights_null_gets_the_other_keys_defaults(tmp_path):
    path = write(tmp_path, "weights: null\n")
    cfg = load_config(path, ["weights={importer: npz, path: w.npz}"])
    assert (cfg.weights.importer, cfg.weights.url, cfg.weights.sha256) == ("npz", None, None)
    with pytest.raises(
        FwError,
        match=r"override 'weights=\{importr: npz, path: w.npz\}': unknown key 'weights.importr'; "
        r"did you mean 'weights.importer'",
    ):
        load_config(path, ["weights={importr: npz, path: w.npz}"])


def test_an_indexed_layer_override_on_a_shorthand_config_says_what_to_do():
    with pytest.raises(
        FwError, match=r"gives its network as model.sizes, not model.layers; `fw config CONFIG` prints it"
    ):
        load_config(BOOK, ["model.layers[0].units=3"])
