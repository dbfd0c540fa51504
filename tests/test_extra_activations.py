"""examples/fw-extra-activations, pip-installed as a user would, seen through fw and the test kit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framework.testing import check_activation

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def fw(*args, site, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("FW_DISABLE_PLUGIN_AUTOLOAD", None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "framework.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def installed(extra_activations, monkeypatch):
    """The installed package visible in this process, with a fresh plugin registry."""
    from framework.plugin_system import manager as plugins

    monkeypatch.syspath_prepend(str(extra_activations))
    monkeypatch.delenv("FW_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    plugins._build.cache_clear()
    yield extra_activations
    plugins._build.cache_clear()


def fw_here(capsys, *args):
    from test_cli import fw as fw_in_process

    return fw_in_process(capsys, *args)


@pytest.fixture
def tanh_config(tmp_path, mnist_dir):
    cfg = tmp_path / "tanh.yaml"
    cfg.write_text(f"dataset: {{root: {mnist_dir}}}\nmodel: {{activation: tanh}}\nweights: null\n")
    return cfg


def test_the_package_declares_the_fw_entry_point_and_does_not_depend_on_pypis_fw():
    import tomllib

    meta = tomllib.loads((REPO / "examples" / "fw-extra-activations" / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["fw"] == {"extra_activations": "fw_extra_activations"}
    assert not [
        d for d in meta["project"]["dependencies"] if d.split("[")[0].split("=")[0].split(">")[0].strip() == "fw"
    ]


def test_fw_plugins_shows_the_distribution_and_version(extra_activations):
    out = fw("plugins", site=extra_activations)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("  ")}
    for name in ("tanh", "leaky_relu", "gelu"):
        assert "plugin 'extra_activations' (fw-extra-activations 0.1.0)" in lines[name]
    data = json.loads(fw("plugins", "--json", site=extra_activations).stdout)
    gelu = next(a for a in data["activations"] if a["name"] == "gelu")
    assert (gelu["distribution"], gelu["version"]) == ("fw-extra-activations", "0.1.0")
    assert data["failed"] == []


def test_a_tanh_config_runs(extra_activations, tanh_config):
    out = fw("run", tanh_config, "--json", site=extra_activations)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["total"] == 10000 and 0.0 < result["accuracy"] < 0.35  # random weights


def test_leaky_relu_takes_its_slope_from_the_config(installed, tanh_config, capsys):
    code, out, err = fw_here(capsys, "run", tanh_config, "model.activation={name: leaky_relu, alpha: 0.2}", "--json")
    assert code == 0, err
    assert json.loads(out)["total"] == 10000
    code, out, err = fw_here(capsys, "run", tanh_config, "model.activation={name: leaky_relu, slope: 0.2}")
    assert code == 1 and err.count("\n") == 1
    assert "model.activation: activation 'leaky_relu' does not accept" in err and "slope" in err
    assert "it accepts: alpha" in err


def test_with_autoload_off_the_same_config_is_an_unknown_activation(extra_activations, tanh_config):
    out = fw("run", tanh_config, site=extra_activations, env_extra={"FW_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("fw: error: model.activation: unknown activation 'tanh'")
    assert "available: identity, relu, sigmoid, softmax, step" in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_the_installed_classes_pass_the_kit(extra_activations, monkeypatch):
    monkeypatch.syspath_prepend(str(extra_activations))
    import fw_extra_activations as extra

    assert Path(extra.__file__).is_relative_to(extra_activations), "the installed copy, not the source tree"
    for cls in (extra.Tanh, extra.LeakyReLU, extra.GELU):
        assert cls.has_backward()
        check_activation(cls)
    check_activation(extra.LeakyReLU, alpha=0.3)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\), got 2.0"):
        extra.LeakyReLU(alpha=2)  # fw turns this into a one-line error naming model.activation
    x = np.array([[-2.0, -0.5, 0.0, 1.0, 3.0]], np.float32)
    assert np.allclose(extra.LeakyReLU(alpha=0.1)(x), [[-0.2, -0.05, 0.0, 1.0, 3.0]])
    assert np.allclose(extra.GELU()(x), [[-0.0454023, -0.1542859, 0.0, 0.8411920, 2.9963627]], atol=1e-6)


def readme_blocks():
    """The fenced code blocks of the documentation's plugin guide, as (language, text)."""
    import re

    text = (REPO / "docs" / "guides" / "plugins.md").read_text()
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


def test_the_readme_walkthrough_builds_a_working_installed_plugin(tmp_path, mnist_dir):
    """A newcomer's plugin, written only from the plugin guide (docs/guides/plugins.md), installs and runs."""
    blocks = readme_blocks()
    python = [code for lang, code in blocks if lang == "python"]
    [toml] = [code for lang, code in blocks if lang == "toml"]
    pkg = tmp_path / "fw-tanh"
    pkg.mkdir()
    (pkg / "fw_tanh.py").write_text(python[0])
    (pkg / "test_fw_tanh.py").write_text(python[1])
    (pkg / "pyproject.toml").write_text(toml)
    from conftest import pip_install

    (tmp_path / "install").mkdir()
    site = pip_install(pkg, tmp_path / "install")

    data = json.loads(fw("plugins", "--json", site=site).stdout)
    tanh = next(a for a in data["activations"] if a["name"] == "tanh")
    assert (tanh["plugin"], tanh["distribution"], tanh["version"]) == ("tanh", "fw-tanh", "0.1.0")
    cfg = tmp_path / "tanh.yaml"
    cfg.write_text(f"dataset: {{root: {mnist_dir}}}\nmodel: {{activation: tanh}}\nweights: null\n")
    run = fw("run", cfg, "--json", site=site)
    assert run.returncode == 0 and json.loads(run.stdout)["total"] == 10000, run.stderr
    kit = subprocess.run(
        [sys.executable, "-c", "import test_fw_tanh; test_fw_tanh.test_tanh(); print('kit ok')"],
        capture_output=True,
        text=True,
        cwd=pkg,
        timeout=60,
    )
    assert kit.stdout.strip() == "kit ok", kit.stderr


def test_installed_activations_train_unchanged_and_their_weights_run(extra_activations, fashion_full_dir, tmp_path):
    """Activations written as the plugin guide shows (forward, backward(x, y, dout))
    train as layers of the one network."""
    weights = tmp_path / "w.npz"
    args = [
        f"dataset.root={fashion_full_dir}",
        "dataset.name=fashion_mnist",
        f"weights.path={weights}",
        "weights.importer=npz",
        "weights.url=null",
        "weights.sha256=null",
        "model.sizes=[784,32,32,10]",
        "model.activation={name: leaky_relu, alpha: 0.05}",
        "model.output_activation=softmax",
    ]
    train = fw(
        "train", REPO / "configs" / "mnist_infer.yaml", *args, "train.epochs=1", "--json", site=extra_activations
    )
    assert train.returncode == 0, train.stderr
    [epoch] = [json.loads(line) for line in train.stdout.splitlines()]
    assert epoch["test_accuracy"] > 0.75  # one epoch of a 784-32-32-10 leaky-ReLU network on Fashion-MNIST
    run = fw("run", REPO / "configs" / "mnist_infer.yaml", *args, "--json", site=extra_activations)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["accuracy"] == epoch["test_accuracy"]
    tanh = fw(
        "train",
        REPO / "configs" / "mnist_infer.yaml",
        *args,
        "model.activation=tanh",
        "train.epochs=1",
        "--force",
        site=extra_activations,
    )
    assert tanh.returncode == 0 and "Test accuracy after epoch 1: 0.8" in tanh.stdout, tanh.stderr
