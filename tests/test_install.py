"""A user's install: a regular `pip install <clone>`, no network, an empty HOME, run from anywhere.

The install is `pip install --target` of a copy of the working tree (a fresh
venv per test run is too slow), put first on PYTHONPATH, so its `framework`
wins over the editable one. A sitecustomize.py, first on PYTHONPATH too, makes
every socket connection (and name lookup) in the child processes raise.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ACCURACY = "Accuracy: 0.9352 (9352/10000 correct)"
SHIPPED_DATA = {
    "README.md",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
    "book/sample_weight.pkl",
}
NO_NETWORK = '''\
"""fw's offline test: this process has no network. Any connection or name lookup raises."""
import socket


def _refuse(*args, **kwargs):
    raise OSError(101, "network disabled by fw's offline test")


socket.socket.connect = socket.socket.connect_ex = _refuse
socket.create_connection = socket.getaddrinfo = _refuse
'''


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """``(site, nonet)``: fw pip-installed (not editable) into ``site``; ``nonet`` holds the sitecustomize."""
    from conftest import pip_install

    work = tmp_path_factory.mktemp("install")
    ignore = (".git", ".venv", ".ci-venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs")
    site = pip_install(REPO, work, ignore)
    clone, nonet = work / "src", work / "nonet"  # the copy pip installed from
    nonet.mkdir()
    (nonet / "sitecustomize.py").write_text(NO_NETWORK)
    return clone, site, nonet


@pytest.fixture
def user(installed, tmp_path):
    """A user's environment: an empty HOME, no FW_DATA_DIR or XDG_CACHE_HOME, no network, in a folder
    that has its own `plugins` package (which raises if anything imports it) and is on sys.path."""
    clone, site, nonet = installed
    home, anywhere = tmp_path / "home", tmp_path / "anywhere"
    home.mkdir()
    (anywhere / "plugins").mkdir(parents=True)
    (anywhere / "plugins" / "__init__.py").write_text(
        "raise ImportError('the user\\'s own plugins package was imported')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FW_DATA_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join(map(str, (nonet, site, anywhere))))

    def run(*args, cwd=anywhere, python=False):
        cmd = [sys.executable, *args] if python else [str(site / "bin" / "fw"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)

    run.clone, run.site, run.home, run.anywhere = clone, site, home, anywhere
    return run


def test_the_installed_tree_is_fw_alone_with_its_three_data_files_and_configs(user):
    site = user.site
    assert sorted(p.name for p in site.iterdir()) == ["bin", "framework", "fw-0.1.0.dist-info"]
    record = (site / "fw-0.1.0.dist-info" / "RECORD").read_text().splitlines()
    assert not [line for line in record if line.startswith("plugins/")], "no top-level plugins package"
    data = site / "framework" / "plugins" / "data"
    assert {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()} == SHIPPED_DATA
    assert sorted(p.name for p in (site / "framework" / "configs").glob("*.yaml")) == sorted(
        p.name for p in (REPO / "configs").glob("*.yaml")
    )
    # `pip show -f fw`, as the issue checks it: this install, and no plugins/ in its file list.
    out = user("-m", "pip", "show", "-f", "fw", python=True)
    assert out.returncode == 0, out.stderr
    assert f"Location: {site}" in out.stdout
    files = [line.strip() for line in out.stdout.split("Files:")[1].splitlines() if line.strip()]
    assert "framework/plugins/activations.py" in files and not [f for f in files if f.startswith("plugins/")]


def test_the_child_processes_have_no_network_and_use_the_installed_fw(user):
    code = (
        "import framework, framework.plugins, socket\n"
        "print(framework.__file__); print(framework.plugins.__file__)\n"
        "try:\n    socket.create_connection(('127.0.0.1', 9))\nexcept OSError as e:\n    print(e)\n"
    )
    out = user("-c", code, python=True)
    assert out.returncode == 0, out.stderr
    fw_init, plugins_init, refused = out.stdout.splitlines()
    assert fw_init == str(user.site / "framework" / "__init__.py")
    assert plugins_init == str(user.site / "framework" / "plugins" / "__init__.py")
    assert "network disabled by fw's offline test" in refused
    # fw itself sees it too: the train split is not bundled, so it must download, and cannot.
    out = user("run", "mnist_infer", "dataset.split=train")
    assert out.returncode == 1 and "network disabled by fw's offline test" in out.stderr, out.stderr


def test_offline_with_an_empty_home_the_book_config_prints_0_9352_from_the_clone_and_by_name_anywhere(user):
    from_clone = user("run", "configs/mnist_infer.yaml", cwd=user.clone)
    assert from_clone.returncode == 0, from_clone.stderr
    assert from_clone.stdout.startswith(ACCURACY + "\n") and from_clone.stderr == ""
    by_name = user("run", "mnist_infer")
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.startswith(ACCURACY + "\n") and by_name.stderr == ""
    # The decoded images were cached under the empty HOME; the book's weights were read in place.
    cache = user.home / ".cache" / "fw"
    assert sorted(p.name for p in (cache / "npy").glob("mnist-*/*")) == [
        "t10k-images-idx3-ubyte.npy",
        "t10k-labels-idx1-ubyte.npy",
    ]
    assert not (cache / "mnist").exists()
    assert not (cache / "book").exists()


def test_a_users_own_plugins_package_never_shadows_fws(user):
    """Run from a folder with its own `plugins/` (an __init__ that raises), on sys.path: the API and the CLI work."""
    api = textwrap.dedent(
        """
        import framework as fw
        cfg = fw.load_config("mnist_infer", ["batch_size=1000"])
        net = fw.build_network(cfg)
        x, t = fw.load_dataset(cfg)
        print(fw.evaluate(net, x, t, batch_size=cfg.batch_size).accuracy)
        """
    )
    out = user("-c", api, python=True)  # `python -c` puts the current folder first on sys.path
    assert out.returncode == 0, out.stderr
    assert out.stdout == "0.9352\n"
    out = user("plugins")
    assert out.returncode == 0 and "failed" not in out.stdout, out.stdout + out.stderr
    assert "sigmoid" in out.stdout and "mnist" in out.stdout
    out = user("-m", "framework.cli", "run", "mnist_infer", "--report", python=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(ACCURACY) and "Confusion matrix" in out.stdout


def test_the_editable_install_is_not_shadowed_either(tmp_path):
    """The same check against the install the suite itself runs (pip install -e)."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("raise ImportError('the user\\'s own plugins package')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = (
        "import framework as fw; net = fw.build_network(fw.load_config('mnist_infer')); "
        "print(len(net.state_dict()) // 2)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert (out.returncode, out.stdout) == (0, "3\n"), out.stderr
    fw_cli = Path(sys.executable).parent / "fw"
    out = subprocess.run(
        [fw_cli, "run", "mnist_infer"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert out.returncode == 0 and out.stdout.startswith(ACCURACY), out.stderr
