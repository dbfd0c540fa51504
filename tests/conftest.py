import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The user's HOME, XDG_CACHE_HOME and FW_DATA_DIR, taken before this module changes them below. pytest-xdist's
# workers start with the environment as changed here, so the first process hands the originals on to them.
if "FW_TESTS_USER_ENV" not in os.environ:
    _data = os.environ.get("FW_DATA_DIR")
    os.environ["FW_TESTS_USER_ENV"] = json.dumps(
        {
            "HOME": os.environ.get("HOME"),
            "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME"),
            "FW_DATA_DIR": os.path.abspath(_data) if _data else None,
        }
    )
_USER_ENV = json.loads(os.environ["FW_TESTS_USER_ENV"])
SHARED = Path(_USER_ENV["FW_DATA_DIR"] or REPO.parent / "shared" / "data")

# The user's own folders, which no test may write into.
_HOME = Path(_USER_ENV["HOME"] or Path.home())
_PROTECTED = tuple(
    os.path.realpath(p) + os.sep
    for p in {SHARED, Path(_USER_ENV["XDG_CACHE_HOME"] or _HOME / ".cache") / "fw", _HOME / ".cache" / "fw"}
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Which arguments name a path the event changes itself (not what a symlink there points to).
_PATH_EVENTS = {
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.symlink": (1,),
    "os.link": (1,),
}
_protected_writes = []

# From here on, even code that runs while test modules are collected (a module-level
# get_registry(), say) caches into a throwaway home, and sees no installed plugin the
# developer happens to have. Tests about plugins or caches set their own.
_SESSION_HOME = tempfile.mkdtemp(prefix="fw-tests-home-")
os.environ.update(
    HOME=_SESSION_HOME, XDG_CACHE_HOME=os.path.join(_SESSION_HOME, ".cache"), FW_DISABLE_PLUGIN_AUTOLOAD="1"
)
os.environ.pop("FW_DATA_DIR", None)


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def _audit(event, args):
    """Record every write this test process makes into ../shared or the real ~/.cache/fw."""
    if event == "open":  # follows symlinks: writing through a link into ../shared counts
        paths = (
            [os.path.realpath(os.fsdecode(args[0]))]
            if isinstance(args[0], (str, bytes, os.PathLike)) and args[2] & _WRITE_FLAGS
            else []
        )
    elif event in _PATH_EVENTS:
        paths = [os.fsdecode(args[i]) for i in _PATH_EVENTS[event] if isinstance(args[i], (str, bytes, os.PathLike))]
        paths = [
            os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(p))), os.path.basename(p)) for p in paths
        ]
    else:
        return
    for real in paths:
        if any((real + os.sep).startswith(p) for p in _PROTECTED):
            _protected_writes.append(f"{event} {real}")


sys.addaudithook(_audit)


@pytest.fixture(scope="session", autouse=True)
def _machine_left_alone():
    """The suite never writes into ../shared (read-only or not) or the user's real ~/.cache/fw."""
    yield
    assert not _protected_writes, f"the tests wrote outside tmp_path: {_protected_writes[:10]}"


def need(*relpaths) -> Path:
    """The shared data dir, after checking the given files are in it.

    Outside CI a missing file skips the test with the reason; under CI
    (CI=true) it fails, so a CI run can never pass by skipping.
    """
    missing = [p for p in relpaths if not (SHARED / p).is_file()]
    if missing:
        msg = f"test data missing from {SHARED}: {', '.join(missing)} (see ../shared/data/README.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED


@pytest.fixture
def mnist_dir():
    return need("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz") / "mnist"


@pytest.fixture
def shared_book():
    """The shared folder of the book's trained weights (chapters 3, 7 and 8)."""
    return need("book/sample_weight.pkl", "book/params.pkl", "book/deep_convnet_params.pkl") / "book"


@pytest.fixture
def book_weights():
    return need("book/sample_weight.pkl") / "book" / "sample_weight.pkl"


FASHION_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


@pytest.fixture
def fashion_dir():
    """The shared, read-only Fashion-MNIST folder with its test split."""
    return need(*(f"fashion-mnist/{f}" for f in FASHION_TEST)) / "fashion-mnist"


@pytest.fixture
def fashion_full_dir():
    """The shared Fashion-MNIST folder with both splits (60,000 + 10,000 images)."""
    return need(*(f"fashion-mnist/{f}" for f in FASHION_TEST + FASHION_TRAIN)) / "fashion-mnist"


EXAMPLE_PLUGIN = REPO / "examples" / "fw-extra-activations"
EXAMPLE_LAYERS = REPO / "examples" / "fw-extra-layers"


def pip_install(package: Path, work: Path, ignore=("build", "*.egg-info", "__pycache__")) -> Path:
    """Pip-install ``package`` into a temporary target folder, as a user would, and return the folder.

    Installed with this interpreter's pip, offline (--no-index, --no-deps,
    --no-build-isolation: setuptools comes from the test extra), from a copy
    (``work / "src"``, leaving out ``ignore``'s patterns) so no build files
    land in the package. Put the folder on PYTHONPATH (sys.path) to make the
    installed distribution visible.
    """
    import shutil
    import subprocess
    import sys

    src, target = work / "src", work / "site"
    shutil.copytree(package, src, ignore=shutil.ignore_patterns(*ignore))
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--quiet",
        "--target",
        str(target),
        str(src),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=work)
    assert out.returncode == 0, f"pip install of {package.name} failed:\n{out.stdout}\n{out.stderr}"
    return target


@pytest.fixture(scope="session")
def extra_activations(tmp_path_factory):
    """examples/fw-extra-activations, pip-installed into a temporary target folder."""
    return pip_install(EXAMPLE_PLUGIN, tmp_path_factory.mktemp("extra_activations"))


@pytest.fixture(scope="session")
def extra_layers(tmp_path_factory):
    """examples/fw-extra-layers (a layer plugin), pip-installed into a temporary target folder."""
    return pip_install(EXAMPLE_LAYERS, tmp_path_factory.mktemp("extra_layers"))


def _isolate(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FW_DATA_DIR", raising=False)
    # Plugins the developer happens to have installed must not change what the tests see;
    # the tests of entry-point loading switch it back on for themselves.
    monkeypatch.setenv("FW_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_cache(tmp_path_factory):
    """The same for session- and module-scoped fixtures, which run before any per-test fixture."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(tmp_path_factory.mktemp("session-home"), monkeypatch)
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the real ~/.cache and each other's way."""
    _isolate(tmp_path_factory.mktemp("home"), monkeypatch)


class MirrorServer:
    """Serves ``routes[path] = (status, body, headers)``; records every path asked for.

    A ``Content-Length`` header larger than ``body`` makes the handler send the
    short body and close the connection: a drop mid-file. ``body`` may also be
    a function ``write(wfile)`` that streams it (a drip, an endless body); then
    no Content-Length is sent unless given. ``serve_raw`` hands the whole
    response, status line and headers included, to such a function.
    """

    def __init__(self):
        self.routes, self.hits = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                status, body, headers = server.routes.get(self.path, (404, b"not found", {}))
                if status is None:  # serve_raw
                    self.close_connection = True
                    return _quietly(body, self.wfile)
                self.send_response(status)
                auto_length = {} if callable(body) else {"Content-Length": str(len(body))}
                headers = {"Content-Type": "application/octet-stream", **auto_length, **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if callable(body):
                    self.close_connection = True
                    return _quietly(body, self.wfile)
                self.wfile.write(body)
                self.close_connection = int(headers["Content-Length"]) != len(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hangs up early (as fw does on a bad body) is no error here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def serve(self, path, body, status=200, **headers):
        self.routes[path] = (status, body, {k.replace("_", "-"): v for k, v in headers.items()})
        return self.base + path

    def serve_raw(self, path, write):
        self.routes[path] = (None, write, {})
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _quietly(write, wfile):
    try:
        write(wfile)
        wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up, as it should


@pytest.fixture
def mirror(monkeypatch):
    """A local HTTP server; proxies are bypassed so requests stay on 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = MirrorServer()
    yield server
    server.close()
