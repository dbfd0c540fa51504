"""The plugin manager: built-ins, entry points, config-named modules, and broken plugins."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework import FwError
from framework.plugin_system.manager import get_registry

HERE = Path(__file__).parent
MODULES = HERE / "plugin_modules"


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(MODULES))
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()
    yield
    plugins._build.cache_clear()


def test_builtins_are_registered_through_the_plugin_path():
    reg = get_registry()
    assert {"sigmoid", "softmax", "relu"} <= set(reg.names("activations"))
    assert "mnist" in reg.names("datasets")
    assert "pickle" in reg.names("weight_importers")
    assert reg.providers["activations"]["sigmoid"].plugin == "framework.plugins.activations"
    assert reg.providers["activations"]["sigmoid"].dist == "fw"


def test_a_plugin_module_named_in_the_config_registers_its_activations():
    reg = get_registry(["tanh_plugin"])
    assert reg.get("activations", "tanh", "model.activation").name == "tanh"
    assert str(reg.providers["activations"]["tanh"]) == "plugin 'tanh_plugin'"


def test_a_plugin_file_path_is_loaded_too():
    reg = get_registry([str(MODULES / "tanh_plugin.py")])
    assert "tanh" in reg.names("activations")


def test_unknown_name_lists_the_available_ones_and_suggests():
    reg = get_registry()
    with pytest.raises(FwError) as e:
        reg.get("activations", "sigmod", "model.activation")
    msg = str(e.value)
    assert "model.activation" in msg and "did you mean 'sigmoid'" in msg
    assert "relu, sigmoid, softmax" in msg


def test_a_config_plugin_that_fails_to_import_is_an_error_naming_it():
    with pytest.raises(FwError, match=r"plugins\[0\]: plugin 'broken_import' failed to import: RuntimeError"):
        get_registry(["broken_import"])


def test_a_missing_config_plugin_module_is_an_error():
    with pytest.raises(FwError, match=r"plugins\[0\]: no plugin module 'no_such_plugin_xyz'"):
        get_registry(["no_such_plugin_xyz"])


def test_a_misspelled_hook_is_an_error_with_a_suggestion():
    with pytest.raises(FwError, match=r"unknown hook 'register_activation'; did you mean 'register_activations'"):
        get_registry(["misspelled_hook"])


def test_a_config_plugin_clashing_with_a_builtin_is_an_error_naming_both():
    with pytest.raises(FwError) as e:
        get_registry(["duplicate_name"])
    msg = str(e.value)
    assert "activation 'sigmoid' is registered by both" in msg
    assert "plugin 'framework.plugins.activations' (fw " in msg and "plugin 'duplicate_name'" in msg


def test_a_config_plugin_that_registers_nothing_is_an_error():
    with pytest.raises(FwError, match=r"plugins\[0\]: 'registers_nothing' registers nothing; it needs an @hookimpl"):
        get_registry(["registers_nothing"])


def test_a_name_without_identifier_form_gets_a_suggestion(monkeypatch):
    from framework import Activation
    from framework.plugin_system.registry import Provider, Registry

    class Bad(Activation):
        name = "my-act"

        def forward(self, x):
            return x

    with pytest.raises(FwError, match="activation name 'my-act' must be a Python identifier, like 'my_act'"):
        Registry.check("activations", Bad, Provider("p"))


def test_registering_a_class_that_is_not_an_activation_is_refused():
    with pytest.raises(FwError, match="not a subclass of framework.Activation"):
        get_registry(["not_an_activation"])


# Entry points: a fake installed distribution (a .dist-info folder on sys.path).


def make_dist(root: Path, name: str, version: str, entry_points: dict[str, str]) -> Path:
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[fw]\n{lines}")
    return root


def run_fw(*args, pythonpath, env_extra=None):
    import os

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(map(str, pythonpath)),
        "FW_DISABLE_PLUGIN_AUTOLOAD": "",  # these tests are about installed plugins
        **(env_extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "framework.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.slow
def test_fw_plugins_lists_entry_point_plugins_with_distribution_and_reports_broken_ones(tmp_path):
    make_dist(tmp_path, "fw_tanh", "1.2.3", {"tanh": "tanh_plugin", "broken": "broken_import"})
    out = run_fw("plugins", "--json", pythonpath=[tmp_path, MODULES])
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    tanh = next(a for a in data["activations"] if a["name"] == "tanh")
    assert (tanh["plugin"], tanh["distribution"], tanh["version"]) == ("tanh", "fw_tanh", "1.2.3")
    [failed] = data["failed"]
    assert failed["plugin"] == "broken" and "RuntimeError: this plugin is broken on purpose" in failed["error"]

    text = run_fw("plugins", pythonpath=[tmp_path, MODULES])
    assert "tanh" in text.stdout and "(fw_tanh 1.2.3)" in text.stdout
    assert "failed plugins (skipped):" in text.stdout and "plugin 'broken' (fw_tanh 1.2.3)" in text.stdout


def test_autoload_can_be_switched_off(tmp_path):
    make_dist(tmp_path, "fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})
    out = run_fw("plugins", "--json", pythonpath=[tmp_path, MODULES], env_extra={"FW_DISABLE_PLUGIN_AUTOLOAD": "1"})
    names = [a["name"] for a in json.loads(out.stdout)["activations"]]
    assert "tanh" not in names and "sigmoid" in names


def test_a_misspelled_entry_point_hook_is_reported_not_fatal(tmp_path):
    make_dist(tmp_path, "fw_cube", "0.1", {"cube": "misspelled_hook"})
    out = run_fw("plugins", "--json", pythonpath=[tmp_path, MODULES])
    assert out.returncode == 0
    [failed] = json.loads(out.stdout)["failed"]
    assert "unknown hook 'register_activation'" in failed["error"]


def test_a_third_party_duplicate_keeps_the_builtin_and_the_plugins_other_names(tmp_path):
    make_dist(tmp_path, "fw_dup", "0.1", {"dup": "duplicate_name"})
    out = run_fw("plugins", "--json", pythonpath=[tmp_path, MODULES])
    data = json.loads(out.stdout)
    sigmoid = next(a for a in data["activations"] if a["name"] == "sigmoid")
    assert sigmoid["plugin"] == "framework.plugins.activations"
    assert "square" in [a["name"] for a in data["activations"]], "only the clashing name is refused"
    assert data["failed"] == []
    [clash] = data["name_clashes"]
    assert "activation 'sigmoid' is registered by both" in clash["error"] and "the built-in is kept" in clash["error"]


@pytest.mark.slow
def test_two_third_party_plugins_with_one_name_make_it_ambiguous(tmp_path, mnist_dir):
    make_dist(tmp_path, "fw_tanh_a", "1.0", {"a": "tanh_plugin"})
    make_dist(tmp_path, "fw_tanh_b", "2.0", {"b": "other_tanh"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{activation: tanh}}\nweights: null\ndataset: {{root: {mnist_dir}}}\n")
    out = run_fw("run", str(cfg), pythonpath=[tmp_path, MODULES])
    assert out.returncode == 1
    assert "activation 'tanh' is registered by both plugin" in out.stderr
    assert "(fw_tanh_a 1.0)" in out.stderr and "(fw_tanh_b 2.0)" in out.stderr
    ok = run_fw("run", str(cfg), "model.activation=softsign", pythonpath=[tmp_path, MODULES])
    assert ok.returncode == 0, ok.stderr  # the rest of both plugins still works
    assert "failed to load" not in ok.stderr
    listing = run_fw("plugins", pythonpath=[tmp_path, MODULES]).stdout
    assert "AMBIGUOUS, also by plugin 'b' (fw_tanh_b 2.0)" in listing


@pytest.mark.slow
def test_a_plugin_written_from_the_readme_runs_in_a_config(tmp_path, mnist_dir, book_weights):
    plugin = tmp_path / "my_tanh.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import numpy as np
            from framework import Activation, hookimpl

            class Tanh(Activation):
                name = "tanh"
                def forward(self, x):
                    return np.tanh(x)

            @hookimpl
            def register_activations(register):
                register(Tanh)
            """
        )
    )
    cfg = tmp_path / "tanh.yaml"
    cfg.write_text(
        f"model: {{activation: tanh}}\nweights: null\nplugins: [my_tanh.py]\ndataset: {{root: {mnist_dir}}}\n"
    )
    out = run_fw("run", str(cfg), "--json", pythonpath=[])
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["total"] == 10000 and 0.0 < result["accuracy"] < 0.3  # random weights: near chance
    assert "random" in out.stderr and "chance-level" in out.stderr


def test_naming_an_already_loaded_module_in_plugins_is_harmless():
    reg = get_registry(["framework.plugins.activations"])
    assert "sigmoid" in reg.names("activations")


def test_two_plugin_files_with_the_same_name_both_load(tmp_path):
    """plugins: [a/acts.py, b/acts.py] must not make the second replace the first in sys.modules."""
    for folder, name in (("a", "act_from_a"), ("b", "act_from_b")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "acts.py").write_text(
            "from framework import Activation, hookimpl\n"
            f"class A(Activation):\n    name = '{name}'\n    def forward(self, x):\n        return x\n"
            "@hookimpl\ndef register_activations(register):\n    register(A)\n"
        )
    reg = get_registry([str(tmp_path / "a" / "acts.py"), str(tmp_path / "b" / "acts.py")])
    assert {"act_from_a", "act_from_b"} <= set(reg.names("activations"))
    import sys

    for name, folder in (("act_from_a", "a"), ("act_from_b", "b")):
        cls = reg.entries["activations"][name]
        # Its module, as Python knows it (pickle, tracebacks, inspect), is its own file, not the other.
        assert Path(sys.modules[cls.__module__].__file__) == tmp_path / folder / "acts.py"


def test_an_unknown_name_names_the_installed_plugins_that_failed(tmp_path, mnist_dir):
    make_dist(tmp_path, "fw_tanh", "1.2.3", {"tanh": "tanh_plugin", "broken": "broken_import"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{activation: tahn}}\nweights: null\ndataset: {{root: {mnist_dir}}}\n")
    out = run_fw("run", str(cfg), pythonpath=[tmp_path, MODULES])
    assert out.returncode == 1
    assert (
        "fw: warning: plugin 'broken' (fw_tanh 1.2.3) failed to load and was skipped: import of 'broken_import'"
        in out.stderr
    )
    error = out.stderr.splitlines()[-1]
    assert error.startswith("fw: error: model.activation: unknown activation 'tahn'; did you mean 'tanh'?")
    assert error.endswith("plugins that failed to load: broken")
