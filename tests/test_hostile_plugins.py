"""Plugins that raise exceptions fw cannot print as they are (issue 11, items 3 and 11).

A config's plugin whose exception's ``__str__`` raises, runs to megabytes or
quotes a value with an exponential ``repr`` is a one-line error naming it; an
installed one is reported by ``fw plugins`` and skipped. A plugin is trusted
code: one that exits, hangs or leaves a thread running is not policed
(issue 27).
"""

import json

import pytest

from test_plugins import MODULES, make_dist, run_fw

pytestmark = pytest.mark.hostile

#: Each way hostile.py misbehaves, and what the one line must say about it.
MISBEHAVIOURS = {
    "str_raises": "StrRaises: (its __str__ raised an exception)",
    "huge": "Huge: xxxxxxxx",
    "exponential": "ValueError: <tuple object>",
}
WHERE = ["import", "hook"]


def hostile_env(when, what):
    return {"FW_TEST_HOSTILE": f"{when}:{what}"}


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
    assert line.startswith(
        "fw: error: plugins[0]: plugin 'hostile'" if when == "import" else "fw: error: plugin 'hostile'"
    )
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


def test_a_run_that_uses_only_builtin_names_never_imports_an_installed_plugin_that_exits(tmp_path, config):
    make_dist(tmp_path, "fw_hostile", "6.6.6", {"hostile": "hostile"})
    out = run_fw("run", *config(), pythonpath=[tmp_path, MODULES], env_extra=hostile_env("import", "exit"))
    assert out.returncode == 0 and out.stdout.startswith("Accuracy: 0.9352") and out.stderr == ""


# Plugin code that fw calls later: forward.


def test_an_unprintable_exception_from_forward_is_a_one_line_error_naming_the_plugin(config):
    out = run_fw("run", *config(["hostile_runtime"], model__activation="unprintable_forward"), pythonpath=[MODULES])
    assert out.returncode == 1
    line = one_line(out.stderr)
    assert line == (
        "fw: error: model.layers[1] (unprintable_forward, hostile_runtime.UnprintableForward): "
        "forward failed: Unprintable: (its __str__ raised an exception)"
    )


def test_sys_exit_from_fw_itself_is_still_its_usage_error():
    out = run_fw("run", pythonpath=[])
    assert out.returncode == 2 and "usage: fw run" in out.stderr
    assert run_fw("--help", pythonpath=[]).returncode == 0


@pytest.fixture(autouse=True)
def _no_inherited_hostility(monkeypatch):
    monkeypatch.delenv("FW_TEST_HOSTILE", raising=False)
