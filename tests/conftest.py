import http.server
import os
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("FW_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


SHARED = _shared_data_dir()


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


def pip_install(package: Path, work: Path) -> Path:
    """Pip-install ``package`` into a temporary target folder, as a user would, and return the folder.

    Installed with this interpreter's pip, offline (--no-index, --no-deps,
    --no-build-isolation: setuptools comes from the test extra), from a copy
    so no build files land in the repository. Put the folder on PYTHONPATH
    (sys.path) to make the installed distribution visible.
    """
    import shutil
    import subprocess
    import sys

    src, target = work / "src", work / "site"
    shutil.copytree(package, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--quiet", "--target", str(target), str(src)]  # fmt: skip
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


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the real ~/.cache and each other's way."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FW_DATA_DIR", raising=False)
    # Plugins the developer happens to have installed must not change what the tests see;
    # the tests of entry-point loading switch it back on for themselves.
    monkeypatch.setenv("FW_DISABLE_PLUGIN_AUTOLOAD", "1")


class MirrorServer:
    """Serves ``routes[path] = (status, body, headers)``; records every path asked for.

    A ``Content-Length`` header larger than ``body`` makes the handler send the
    short body and close the connection: a drop mid-file.
    """

    def __init__(self):
        self.routes, self.hits = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                status, body, headers = server.routes.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = int(headers["Content-Length"]) != len(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def serve(self, path, body, status=200, **headers):
        self.routes[path] = (status, body, {k.replace("_", "-"): v for k, v in headers.items()})
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def mirror(monkeypatch):
    """A local HTTP server; proxies are bypassed so requests stay on 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = MirrorServer()
    yield server
    server.close()
