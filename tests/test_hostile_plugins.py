"""Plugins that exit, raise unprintable exceptions or hang (issue 11, items 3 and 11).

Whatever a plugin does, fw never exits silently with status 0: a config's
plugin that misbehaves is a one-line error naming it; an installed one is
reported by ``fw plugins`` (and warned about when a lookup loads it) and
skipped; code that misbehaves later is a one-line error saying where.
"""

import json

import pytest
from test_plugins import MODULES, make_dist, run_fw

#: Each way hostile.py misbehaves, and what the one line must say about it.
MISBEHAVIOURS = {
    "exit": "SystemExit(0) (a plugin must raise an exception, not exit)",
    "str_raises": "StrRaises: (its __str__ raised an exception)",
    "huge": "Huge: xxxxxxxx",
    "loops": "Loops: (its __str__ did not return within 1 s)",
    "exponential": "ValueError: <tuple object>",
    "base": "Weird: not an Exception",
}
WHERE = ["import", "hook"]


def hostile_env(when, what, **extra):
    return {"FW_TEST_HOSTILE": f"{when}:{what}", **extra}


def notices(stderr):
    """The 'still loading' lines (on a busy machine even a built-in may take 0.2 s); nothing else."""
    lines = stderr.splitlines()
    assert all(line.startswith("fw: still loading ") for line in lines), stderr[:2000]
    return lines


def one_line(stderr):
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[:2000]
    assert len(lines[0]) < 1000 and "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def config(tmp_path, mnist_dir, book_weights):
    """Write a config with these ``plugins`` and ``weights``; return it and ``settings`` as overrides."""

    def write(plugins=(), weights=f"{{importer: pickle, path: {book_weights}}}", **settings):
        cfg = tmp_path / "c.yaml"
        lines = [f"plugins: {json.dumps(list(plugins))}", f"weights: {weights}", f"dataset: {{root: {mnist_dir}}}"]
        cfg.write_text("\n".join(lines) + "\n")
        return [str(cfg), *(f"{k.replace('__', '.')}={v}" for k, v in settings.items())]

    return write


@pytest.mark.parametrize("when", WHERE)
@pytest.mark.parametrize("what", MISBEHAVIOURS)
def test_a_config_plugin_that_misbehaves_is_a_one_line_error_naming_it(config, when, what):
    out = run_fw("run", *config(["hostile"]), pythonpath=[MODULES], env_extra=hostile_env(when, what))
    assert out.returncode == 1 and out.stdout == ""
    line = one_line(out.stderr)
    assert line.startswith("fw: error: plugins[0]: plugin 'hostile'" if when == "import" else "fw: error: plugin 'hostile'")
    assert MISBEHAVIOURS[what] in line
    assert ("failed to import" if when == "import" else "register_activations() raised") in line


@pytest.mark.parametrize("when", WHERE)
@pytest.mark.parametrize("what", MISBEHAVIOURS)
def test_fw_plugins_lists_an_installed_plugin_that_misbehaves_as_failed(tmp_path, when, what):
    make_dist(tmp_path, "fw_hostile", "6.6.6", {"hostile": "hostile", "tanh": "tanh_plugin"})
    out = run_fw("plugins", pythonpath=[tmp_path, MODULES], env_extra=hostile_env(when, what))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "tanh" in out.stdout, "the other plugins still load"
    listing = out.stdout.split("failed plugins (skipped):\n")[1].splitlines()
    assert listing[0].startswith("  plugin 'hostile' (fw_hostile 6.6.6): ")
    assert MISBEHAVIOURS[what] in listing[0] and len(listing[0]) < 1000



@pytest.mark.parametrize("when", WHERE)
def test_fw_plugins_json_lists_an_installed_plugin_that_exits_as_failed(tmp_path, when):
    make_dist(tmp_path, "fw_hostile", "6.6.6", {"hostile": "hostile"})
    out = run_fw("plugins", "--json", pythonpath=[tmp_path, MODULES], env_extra=hostile_env(when, "exit"))
    assert out.returncode == 0
    [failed] = json.loads(out.stdout)["failed"]
    assert failed["plugin"] == "hostile" and MISBEHAVIOURS["exit"] in failed["error"]


@pytest.mark.parametrize("when", WHERE)
def test_fw_run_warns_of_an_installed_plugin_that_exits_and_runs(tmp_path, config, when):
    make_dist(tmp_path, "fw_hostile", "6.6.6", {"hostile": "hostile", "tanh": "tanh_plugin"})
    out = run_fw(
        "run", *config(model__activation="tanh"), pythonpath=[tmp_path, MODULES], env_extra=hostile_env(when, "exit")
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Accuracy: ")
    assert "fw: warning: plugin 'hostile' (fw_hostile 6.6.6) failed to load and was skipped" in out.stderr
    assert "SystemExit(0)" in out.stderr


def test_a_run_that_uses_only_builtin_names_never_imports_an_installed_plugin_that_exits(tmp_path, config):
    make_dist(tmp_path, "fw_hostile", "6.6.6", {"hostile": "hostile"})
    out = run_fw("run", *config(), pythonpath=[tmp_path, MODULES], env_extra=hostile_env("import", "exit"))
    assert out.returncode == 0 and out.stdout.startswith("Accuracy: 0.9352") and out.stderr == ""


# Plugin code that fw calls later: forward, load_raw, load, update.


def test_an_activation_that_exits_in_forward_is_an_error_naming_it(config):
    out = run_fw("run", *config(["hostile_runtime"], model__activation="exit_forward"), pythonpath=[MODULES])
    assert out.returncode == 1 and out.stdout == ""
    line = one_line(out.stderr)
    assert line.startswith("fw: error: SystemExit(0) raised in hostile_runtime.ExitForward.forward (")
    assert f"{MODULES / 'hostile_runtime.py'}:" in line and line.endswith("plugin code must raise an exception, not exit")


def test_an_installed_activation_that_exits_in_forward_is_an_error_naming_it(tmp_path, config):
    make_dist(tmp_path, "fw_runtime", "1.0", {"runtime": "hostile_runtime"})
    out = run_fw("run", *config(model__activation="exit_forward"), pythonpath=[tmp_path, MODULES])
    assert out.returncode == 1
    assert one_line(out.stderr).startswith("fw: error: SystemExit(0) raised in hostile_runtime.ExitForward.forward (")


def test_an_unprintable_exception_from_forward_is_a_one_line_error_naming_the_plugin(config):
    out = run_fw("run", *config(["hostile_runtime"], model__activation="unprintable_forward"), pythonpath=[MODULES])
    assert out.returncode == 1
    line = one_line(out.stderr)
    assert line == "fw: error: model.layers[1] (unprintable_forward, hostile_runtime.UnprintableForward): forward failed: Unprintable: (its __str__ raised an exception)"


def test_a_dataset_that_exits_in_load_raw_is_an_error_naming_it(config):
    out = run_fw("run", *config(["hostile_runtime"], dataset__name="exit_load_raw"), pythonpath=[MODULES])
    assert out.returncode == 1
    assert one_line(out.stderr).startswith("fw: error: SystemExit(0) raised in hostile_runtime.ExitLoadRaw.load_raw (")


def test_a_weight_importer_that_exits_in_load_is_an_error_naming_it(tmp_path, config):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"anything")
    args = config(["hostile_runtime"], f"{{importer: exit_load, path: {weights}}}", dataset__name="tiny")
    out = run_fw("run", *args, pythonpath=[MODULES])
    assert out.returncode == 1
    assert one_line(out.stderr).startswith("fw: error: SystemExit(0) raised in hostile_runtime.ExitLoad.load (")


def test_an_optimizer_that_exits_in_update_is_an_error_naming_it(tmp_path, config):
    weights = f"{{importer: npz, path: {tmp_path / 'w.npz'}}}"
    args = config(["hostile_runtime"], weights, dataset__name="tiny", train__optimizer="exit_update", train__epochs=1)
    out = run_fw("train", *args, pythonpath=[MODULES])
    assert out.returncode == 1
    assert one_line(out.stderr).startswith("fw: error: SystemExit(0) raised in hostile_runtime.ExitUpdate.update (")
    assert not (tmp_path / "w.npz").exists()


# A plugin that hangs (at import or in its hook) is named after FW_SLOW_PLUGIN_SECONDS.


@pytest.mark.parametrize("when", WHERE)
def test_a_config_plugin_that_hangs_is_named_while_it_loads(config, when):
    env = hostile_env(when, "hang", FW_TEST_HANG_SECONDS="1", FW_SLOW_PLUGIN_SECONDS="0.2")
    out = run_fw("config", *config(["hostile"]), pythonpath=[MODULES], env_extra=env)
    assert out.returncode == 0, out.stderr  # it did load in the end
    assert notices(out.stderr).count(
        "fw: still loading plugin 'hostile' (plugins[0]) after 0.2 s; "
        "if it hangs, press Ctrl-C and remove it from the config's plugins: list"
    ) == 1


@pytest.mark.parametrize("when", WHERE)
def test_an_installed_plugin_that_hangs_is_named_while_it_loads(tmp_path, when):
    make_dist(tmp_path, "fw_hostile", "6.6.6", {"hostile": "hostile"})
    env = hostile_env(when, "hang", FW_TEST_HANG_SECONDS="1", FW_SLOW_PLUGIN_SECONDS="0.2")
    out = run_fw("plugins", pythonpath=[tmp_path, MODULES], env_extra=env)
    assert out.returncode == 0 and "hostile_ok" in out.stdout
    assert notices(out.stderr).count(
        "fw: still loading plugin 'hostile' (fw_hostile 6.6.6) after 0.2 s; "
        "if it hangs, press Ctrl-C and uninstall fw_hostile, or set FW_DISABLE_PLUGIN_AUTOLOAD=1"
    ) == 1


def test_a_plugin_that_loads_in_time_is_not_mentioned(config):
    env = hostile_env("import", "hang", FW_TEST_HANG_SECONDS="0", FW_SLOW_PLUGIN_SECONDS="3")
    out = run_fw("config", *config(["hostile"]), pythonpath=[MODULES], env_extra=env)
    assert out.returncode == 0 and out.stderr == ""


def test_sys_exit_from_fw_itself_is_still_its_usage_error():
    out = run_fw("run", pythonpath=[])
    assert out.returncode == 2 and "usage: fw run" in out.stderr
    assert run_fw("--help", pythonpath=[]).returncode == 0


@pytest.fixture(autouse=True)
def _no_inherited_hostility(monkeypatch):
    for var in ("FW_TEST_HOSTILE", "FW_SLOW_PLUGIN_SECONDS", "FW_TEST_HANG_SECONDS"):
        monkeypatch.delenv(var, raising=False)
