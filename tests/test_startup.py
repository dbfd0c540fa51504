"""What fw imports at start-up (never how long it takes: timings live in benchmarks/).

Built-in plugins register when one of their names is first needed, from the
names ``plugin_system.builtins.builtin_names()`` derives from the modules (and
caches); these tests check that table and that a run pays only for the modules it uses.
"""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

import framework.plugins
from framework.plugin_system import hookspecs
from framework.plugin_system.builtins import builtin_names
from framework.plugin_system.manager import HOOKS
from framework.plugin_system.registry import kind_of
from test_plugins import MODULES, make_dist

BUILTINS = builtin_names()

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _builtin_names_cached(_isolated_cache):
    """Each test has its own cache folder: learn the built-ins' names there first, as fw's first run does."""
    builtin_names()


def registered_names(module):
    """{kind: [names]} that ``module``'s hooks really register (none: {})."""
    pm = pluggy.PluginManager("fw")
    pm.add_hookspecs(hookspecs)
    pm.register(module)
    found = {}
    for hook in HOOKS:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            impl.function(register=lambda cls: found.setdefault(kind_of(cls, module), []).append(cls.name))
    return found


def test_the_table_of_builtin_names_is_what_each_module_registers():
    for info in pkgutil.iter_modules(framework.plugins.__path__, "framework.plugins."):
        module = __import__(info.name, fromlist=["_"])
        names = registered_names(module)
        if names:
            assert info.name in BUILTINS, f"{info.name!r}: {names!r} is missing from builtin_names()"
            declared = {kind: sorted(n) for kind, n in BUILTINS[info.name].items()}
            assert declared == {kind: sorted(n) for kind, n in names.items()}, (
                f"BUILTINS[{info.name!r}] must be {names!r}"
            )
        else:
            assert info.name not in BUILTINS, f"{info.name} registers nothing, but builtin_names() lists it"
    assert all(mod.startswith("framework.plugins.") for mod in BUILTINS)


def test_builtin_names_are_unique_across_modules_and_the_shared_layer_namespace():
    seen = {}
    for mod, kinds in BUILTINS.items():
        for kind, names in kinds.items():
            for name in names:
                space = "layers" if kind in ("layers", "activations") else kind
                assert (space, name) not in seen, f"{name} is declared by {seen[space, name]} and {mod}"
                seen[space, name] = mod


def test_a_lookup_imports_only_the_module_that_registers_the_name():
    code = (
        "import sys\n"
        "from framework import get_registry\n"
        "reg = get_registry()\n"
        "def plugins(): return sorted(m for m in sys.modules if m.startswith('framework.plugins.'))\n"
        "print(reg.get('activations', 'relu', 'model.activation').__name__, plugins())\n"
        "print('mnist' in reg.names('datasets'), plugins())\n"
        "print(reg.providers['optimizers']['adam'], plugins())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == [
        "ReLU ['framework.plugins.activations']",
        "True ['framework.plugins.activations']",
        f"plugin 'framework.plugins.optimizers' (fw {framework.__version__}) "
        "['framework.plugins.activations', 'framework.plugins.optimizers']",
    ], out.stderr


def modules_after(*argv, pythonpath=(), autoload=True):
    """The modules a subprocess's ``fw ARGV`` leaves imported, and its exit code."""
    import os

    code = (
        "import json, sys\n"
        "from framework.cli import main\n"
        "try:\n"
        "    code = main(sys.argv[1:])\n"
        "except SystemExit as e:  # --help\n"
        "    code = e.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    env["FW_DISABLE_PLUGIN_AUTOLOAD"] = "" if autoload else "1"
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stderr.splitlines()[-1])
    return result["code"], set(result["modules"]), out


def test_fw_help_imports_neither_numpy_nor_pluggy_nor_omegaconf():
    code, modules, _ = modules_after("--help")
    assert code == 0
    assert not {"numpy", "pluggy", "omegaconf", "yaml", "importlib.metadata"} & modules


@pytest.fixture
def installed_tanh(tmp_path):
    """An installed third-party plugin on the path, so there is something a scan would find."""
    return make_dist(tmp_path / "site", "fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})


def test_a_builtins_only_run_scans_no_installed_plugin_and_imports_only_its_plugins(
    tmp_path, mnist_dir, book_weights, installed_tanh
):
    cfg = [REPO / "configs" / "mnist_infer.yaml", f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
    code, modules, out = modules_after("run", *cfg, pythonpath=[installed_tanh, MODULES])
    assert code == 0 and "Accuracy: 0.9352" in out.stdout
    assert "importlib.metadata" not in modules and "tanh_plugin" not in modules
    plugins = {m for m in modules if m.startswith("framework.plugins.")}
    assert plugins == {
        "framework.plugins.activations",
        "framework.plugins.layers",
        "framework.plugins.mnist",
        "framework.plugins.idx",
        "framework.plugins.pickle_importer",
    }


def test_a_name_no_builtin_has_loads_the_installed_plugins(tmp_path, mnist_dir, installed_tanh):
    cfg = [REPO / "configs" / "mnist_infer.yaml", f"dataset.root={mnist_dir}", "weights=null", "model.activation=tanh"]
    code, modules, out = modules_after("run", *cfg, pythonpath=[installed_tanh, MODULES])
    assert code == 0 and "Accuracy: " in out.stdout
    assert "tanh_plugin" in modules


def test_fw_plugins_still_lists_every_builtin_and_installed_plugin(installed_tanh):
    code, modules, out = modules_after("plugins", "--json", pythonpath=[installed_tanh, MODULES])
    assert code == 0
    listed = json.loads(out.stdout)
    for mod, kinds in BUILTINS.items():
        for kind, names in kinds.items():
            assert set(names) <= {e["name"] for e in listed[kind] if e["plugin"] == mod}
    assert "tanh" in [e["name"] for e in listed["activations"]]


@pytest.mark.slow
def test_with_nothing_installed_since_the_last_scan_fw_plugins_reads_no_metadata(installed_tanh):
    import time

    modules_after("plugins", pythonpath=[installed_tanh, MODULES])  # scans, and caches what it found...
    time.sleep(2.1)  # ...once nothing it read is under 2 s old (see framework/plugin_system/installed.py)
    _, cold, _ = modules_after("plugins", pythonpath=[installed_tanh, MODULES])
    _, warm, out = modules_after("plugins", "--json", pythonpath=[installed_tanh, MODULES])
    assert "importlib.metadata" in cold and "importlib.metadata" not in warm
    assert "tanh" in [e["name"] for e in json.loads(out.stdout)["activations"]]


def test_looking_up_a_builtin_activation_as_a_layer_scans_nothing(installed_tanh):
    code = (
        "import sys\n"
        "from framework import get_registry\n"
        "reg = get_registry()\n"
        "print('sigmoid' in reg.entries['layers'], 'sigmoid' in reg.entries['activations'])\n"
        "print('importlib.metadata' in sys.modules or 'tanh_plugin' in sys.modules)\n"
    )
    import os

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(map(str, [installed_tanh, MODULES])),
        "FW_DISABLE_PLUGIN_AUTOLOAD": "",
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    # One table: an activation is a layer (and stays in the activations' view of that table).
    assert out.stdout.splitlines() == ["True True", "False"], out.stderr
