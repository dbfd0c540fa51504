"""fw sweep on PostgreSQL: two commands on one study in a real server, with psycopg (3) and with psycopg2; which
driver to install; a server that never answers.

The server is a throwaway cluster (Debian's ``postgresql`` package, found in
/usr/lib/postgresql/*/bin; ``.ci/run`` installs it) made by initdb in a
temporary folder, listening on 127.0.0.1 only, run as ``nobody`` when the
tests run as root (initdb and postgres refuse root), stopped and removed at
the end. The folder is not under pytest's tmp_path: as root that lies in
/tmp/pytest-of-root, which is 0700, and which every pytest session of the
same user closes again when it starts, so ``nobody`` could lose its way to
the cluster's files mid-test.
"""

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from own_data import make_csv
from test_cli import fw, one_line_error
from test_sweep_own_configs import SWEEP

pytestmark = pytest.mark.slow

optuna = pytest.importorskip("optuna", reason="the test extra installs optuna")

USER = "nobody"  # who runs the server when the tests run as root


def sweep_config(tmp_path):
    make_csv(tmp_path / "iris.csv")
    path = tmp_path / "own.yaml"
    path.write_text(SWEEP.format(dataset="{name: csv, path: iris.csv, label: species}", classes=3))
    return path


def fw_sweep(*argv, cwd, hide=(), **popen):
    """``fw sweep`` in a process of its own, where each module in ``hide`` fails to import, as if not installed."""
    shim = cwd / "not-installed"
    for name in hide:
        (shim / name).mkdir(parents=True, exist_ok=True)
        (shim / name / "__init__.py").write_text(f"raise ImportError('{name} is hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "sweep", *map(str, argv)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _missing(reason):
    """Outside CI a missing server skips with the reason; under CI (CI=true) it fails, as conftest's ``need`` does."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster in ``folder``: superuser ``fw`` with a random password, database ``fw_sweeps``."""

    def __init__(self, bin_dir: Path):
        self.bin, self.folder = bin_dir, Path(tempfile.mkdtemp(prefix="fw-test-postgres-"))
        self.data = self.folder / "data"
        self.root = os.geteuid() == 0
        self.port, self.password = _free_port(), secrets.token_hex(8)

    def url(self, driver=""):
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://fw:{self.password}@127.0.0.1:{self.port}/fw_sweeps"

    def _as_server_user(self, *argv, timeout=120):
        """Run a server program: as ``nobody`` when we are root."""
        if self.root:
            argv = ("runuser", "-u", USER, "--", *argv)
        out = subprocess.run(argv, cwd=self.folder, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{out.stdout}\n{out.stderr}\n{self.log()}"

    def log(self):
        log = self.folder / "server.log"
        return log.read_text()[-2000:] if log.exists() else ""

    def start(self):
        pwfile = self.folder / "password"
        pwfile.write_text(self.password + "\n")
        if self.root:
            import pwd

            uid, gid = pwd.getpwnam(USER)[2:4]
            os.chown(self.folder, uid, gid)
            os.chown(pwfile, uid, gid)
        pwfile.chmod(0o600)
        self._as_server_user(
            self.bin / "initdb",
            "-D",
            self.data,
            "-U",
            "fw",
            "--pwfile",
            pwfile,
            "--auth",
            "scram-sha-256",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
        )
        with open(self.data / "postgresql.conf", "a") as conf:  # loopback only, no socket file, small and fast
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                "fsync = off\nfull_page_writes = off\nshared_buffers = 16MB\nmax_connections = 40\n"
            )
        self._as_server_user(
            self.bin / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w", "-t", "60", "start"
        )
        env = {**os.environ, "PGPASSWORD": self.password}
        subprocess.run(
            [self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "fw", "fw_sweeps"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )  # the README's `createdb fw_sweeps`

    def stop(self):
        try:
            if (self.data / "postmaster.pid").exists():
                self._as_server_user(self.bin / "pg_ctl", "-D", self.data, "stop", "-m", "fast", "-w", "-t", "60")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        _missing("PostgreSQL's server programs are not installed (apt-get install postgresql; .ci/run does it)")
    if os.geteuid() == 0 and not Path("/usr/sbin/runuser").exists() and not Path("/sbin/runuser").exists():
        _missing("running as root, and runuser (util-linux) is missing to start PostgreSQL as an unprivileged user")
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres(request):
    """A running throwaway PostgreSQL server on 127.0.0.1, stopped and removed when the module's tests are done."""
    cluster = Cluster(_postgres_bin())
    request.addfinalizer(cluster.stop)  # also after a start that failed halfway
    cluster.start()
    return cluster


@pytest.mark.parametrize("driver, hidden", [("psycopg", "psycopg2"), ("psycopg2", "psycopg")])
def test_two_fw_sweep_commands_share_one_study_in_postgresql(postgres, tmp_path, driver, hidden):
    """The README's line, word for word: postgresql:// works with whichever driver is installed (the other hidden)."""
    path, study = sweep_config(tmp_path), f"lr-search-{driver}"
    argv = (path, "train.epochs=2", "--storage", postgres.url(), "--study", study, "--trials", 2)
    workers = [fw_sweep(*argv, cwd=tmp_path, hide=[hidden]) for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err
        assert f"study '{study}' in postgresql+{driver}://fw:***@127.0.0.1:{postgres.port}/fw_sweeps" in err, err
        assert postgres.password not in out + err, "the password is never printed"
    saved = optuna.load_study(study_name=study, storage=postgres.url(driver))
    trials, best = saved.get_trials(), saved.best_trial
    assert sorted(t.number for t in trials) == [0, 1, 2, 3], "all four trials there, none lost or duplicated"
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
    assert len({t.params["train.optimizer.lr"] for t in trials}) == 4, "the two commands drew different values"
    assert all(len(t.intermediate_values) == 2 for t in trials), "each trial trained with the override"
    assert all((tmp_path / "runs" / study / f"trial_{t.number}" / "weights.npz").is_file() for t in trials)
    assert f"trial {best.number}, val_accuracy {best.value}\n" in (tmp_path / "runs" / study / "best.yaml").read_text()


@pytest.mark.parametrize("hidden", [(), ("psycopg",)])
def test_a_server_that_never_answers_is_an_error_naming_it_after_a_timeout(tmp_path, hidden):
    with socket.socket() as blackhole:  # listens, so connecting works, but never accepts or answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(1)
        port = blackhole.getsockname()[1]
        start = time.monotonic()
        sweep = fw_sweep(
            sweep_config(tmp_path), "--storage", f"postgresql://fw:pw@127.0.0.1:{port}/db", cwd=tmp_path, hide=hidden
        )
        try:
            out, err = sweep.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            sweep.kill()
            sweep.communicate()
            pytest.fail("fw sweep still waited for the server after 60 s")
        seconds = time.monotonic() - start
    one_line_error(
        sweep.returncode,
        out,
        err,
        f"the database server 127.0.0.1:{port} did not answer within 10 s",
        "?connect_timeout=",
    )
    assert 9 < seconds < 40


@pytest.mark.parametrize(
    "url, hidden, fragments",
    [
        (
            "postgresql://fw:secret@127.0.0.1:9/db",
            ("psycopg", "psycopg2"),
            ["neither psycopg2 nor psycopg (3) is installed; pip install psycopg2-binary"],
        ),
        (
            "postgresql+psycopg2://fw:secret@127.0.0.1:9/db",
            ("psycopg2",),
            ["its driver, psycopg2, is not installed; pip install psycopg2-binary"],
        ),
        (
            "postgresql+psycopg://fw:secret@127.0.0.1:9/db",
            ("psycopg",),
            ["its driver, psycopg, is not installed; pip install 'psycopg[binary]'"],
        ),
    ],
)
def test_a_missing_driver_is_named_with_the_package_that_installs_it(
    capsys, tmp_path, monkeypatch, url, hidden, fragments
):
    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.chdir(tmp_path)
    code, out, err = fw(capsys, "sweep", sweep_config(tmp_path), "--storage", url)
    one_line_error(code, out, err, "--storage postgresql", "fw:***@127.0.0.1:9/db", *fragments)
    assert "secret" not in err
