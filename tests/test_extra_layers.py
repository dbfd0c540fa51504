"""examples/fw-extra-layers, pip-installed as a user would: an outside layer trains and runs
with nothing but the Layer contract."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from framework.testing import check_layer

pytestmark = pytest.mark.slow


def fw(*args, site, cwd):
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("FW_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-m", "framework.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=cwd,
    )


def test_the_layer_keeps_the_contract(extra_layers, monkeypatch):
    monkeypatch.syspath_prepend(str(extra_layers))
    from fw_extra_layers import Scale

    check_layer(Scale, (5,))
    check_layer(Scale, (2, 3, 3), factor=0.5)


def test_fw_plugins_lists_the_layer_with_its_distribution(extra_layers, tmp_path):
    out = fw("plugins", "--json", site=extra_layers, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    [scale] = [e for e in json.loads(out.stdout)["layers"] if e["name"] == "scale"]
    assert (scale["distribution"], scale["version"]) == ("fw-extra-layers", "0.1.0")


def test_an_installed_layer_trains_and_runs(extra_layers, fashion_full_dir, tmp_path):
    config = tmp_path / "scaled.yaml"
    config.write_text(
        f"dataset: {{name: fashion_mnist, root: '{fashion_full_dir}'}}\n"
        "model:\n"
        "  layers:\n"
        "    - {name: dense, units: 32}\n"
        "    - {name: scale, factor: 0.5}\n"
        "    - relu\n"
        "    - {name: dense, units: 10}\n"
        "    - softmax\n"
        "train: {epochs: 1}\n"
        f"weights: {{importer: npz, format: npz, path: '{tmp_path}/w.npz'}}\n"
    )
    trained = fw("train", config, "--json", site=extra_layers, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    [epoch] = [json.loads(line) for line in trained.stdout.splitlines()]
    assert epoch["test_accuracy"] > 0.75  # chance is 0.1
    with np.load(tmp_path / "w.npz") as w:
        assert sorted(w.files) == ["0.W", "0.b", "1.gain", "3.W", "3.b"]
        assert not np.all(w["1.gain"] == 1), "the outside layer's parameter was trained"
    ran = fw("run", config, "--json", site=extra_layers, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["accuracy"] == epoch["test_accuracy"]


def test_the_readme_layer_example_runs_and_passes_the_kit(tmp_path, mnist_dir):
    """Step 5 of the plugin guide's walk-through (docs/guides/plugins.md), taken literally:
    the module, the config, the test."""
    from test_extra_activations import readme_blocks

    blocks = readme_blocks()
    python = [code for lang, code in blocks if lang == "python"]
    [config] = [code for lang, code in blocks if lang == "yaml" and "model.layers" not in code and "scale" in code]
    (tmp_path / "fw_scale.py").write_text(python[2])
    (tmp_path / "test_fw_scale.py").write_text(python[3])
    kit = subprocess.run(
        [sys.executable, "-c", "import test_fw_scale; test_fw_scale.test_scale(); print('kit ok')"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert kit.stdout.strip() == "kit ok", kit.stderr
    (tmp_path / "scale.yaml").write_text(config + f"dataset: {{root: '{mnist_dir}'}}\nweights: null\n")
    ran = subprocess.run(
        [sys.executable, "-m", "framework.cli", "run", "scale.yaml", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["total"] == 10000
