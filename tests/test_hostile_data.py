"""Hostile data files and servers: no hang, no memory bomb, no half-written or unverified file.

Issue 11 (items 4, 5, 7, 8, 10 and the FIFO of 11) and issue 10 (items 4, 6, 7).
Every hostile input is built in tmp_path, bombs by streaming; every server listens
on 127.0.0.1. Deadlines are shrunk through framework.safeio.download's module constants,
so no test here waits more than a second or two.
"""

import gzip
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import framework as fw
import framework.plugins.idx as idx
import framework.safeio.download as dl
from framework import FwError
from framework.data.dataset import default_data_dir
from framework.plugins.fashion_mnist import FashionMNIST
from framework.plugins.mnist import MNIST
from framework.safeio.download import download
from framework.safeio.files import NotARegularFile, file_hash, open_regular, sweep_stale_parts, temp_path

pytestmark = pytest.mark.hostile

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
IMAGES_HEADER = bytes([0, 0, 8, 3]) + np.array([10000, 28, 28], ">u4").tobytes()
GIB = 1 << 30
MNIST_SOURCES = MNIST.local_sources  # the test split fw ships


@pytest.fixture
def fast_deadlines(monkeypatch):
    """The download limits, shrunk so that a test of them takes a second, not half a minute."""
    monkeypatch.setattr(dl, "CONNECT_TIMEOUT", 0.3)
    monkeypatch.setattr(dl, "RESPONSE_TIMEOUT", 0.6)
    monkeypatch.setattr(dl, "RATE_WINDOW", 0.5)
    monkeypatch.setattr(dl, "MIN_RATE", 2000)  # 1 kB per 0.5 s window


@pytest.fixture
def offline(mirror, monkeypatch):
    """MNIST's and Fashion-MNIST's mirrors on the local server (404 unless served); no local source
    (MNIST's is the test split fw ships)."""
    monkeypatch.setattr(MNIST, "mirrors", [mirror.base + "/m1/"])
    monkeypatch.setattr(MNIST, "local_sources", ())
    monkeypatch.setattr(FashionMNIST, "mirrors", [mirror.base + "/f1/"])
    monkeypatch.setattr(FashionMNIST, "local_sources", ())
    return mirror


@pytest.fixture
def mnist_root(mnist_dir, tmp_path):
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    for name in (IMAGES, LABELS):
        shutil.copy(mnist_dir / name, root / name)
    return root


def parts(folder: Path):
    return sorted(p.name for p in folder.rglob("*.part")) if folder.exists() else []


def no_hang(fn, *fifos, seconds=10):
    """Run ``fn`` in a thread; if it blocks (on a FIFO), unblock it by writing to the FIFOs, and fail."""
    box = []

    def run():
        try:
            box.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            with open(fifo, "wb"):
                pass
        thread.join(5)
        pytest.fail(f"{fn} hung on a FIFO")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


# --- gzip bombs (issue 11, item 5) -----------------------------------------------------


def write_bomb(path: Path, header: bytes, payload: int, member: int = 64 << 20) -> Path:
    """A .gz of ``header`` then zeros, ``payload`` bytes in all (rounded up to ``member``), written as a stream.

    The zeros are one gzip member of ``member`` bytes, compressed once in 1 MiB
    steps and repeated: concatenated members are one valid gzip stream, so a
    4 GiB payload is ~4 MB on disk and is written in a fraction of a second.
    """
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as z:
        for _ in range(member >> 20):
            z.write(bytes(1 << 20))
    zeros = buf.getvalue()
    with open(path, "wb") as f:
        f.write(gzip.compress(header, mtime=0))
        for _ in range(-(-(payload - len(header)) // member)):
            f.write(zeros)
    return path


LOAD = """
import sys
from framework import FwError
from framework.plugins.mnist import MNIST
MNIST.mirrors = sys.argv[2:]
MNIST.local_sources = ()  # not the copy fw ships: the bomb must be refused, not replaced
try:
    images, labels = MNIST(sys.argv[1]).load_raw("test")
    print("loaded", images.shape, images.sum())
except FwError as e:
    print("refused:", e)
"""


# A fresh, small interpreter runs the command and reports RUSAGE_CHILDREN: measured straight
# from pytest, a child's ru_maxrss would start at pytest's own peak (Linux carries the high-water
# mark of the memory a vfork()ed child shares with its parent across exec).
MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mib(tmp_path, *args) -> tuple[float, str]:
    """Run LOAD in a fresh interpreter: its peak RSS in MiB, and its output."""
    env = {k: v for k, v in os.environ.items() if k != "FW_DATA_DIR"}
    cmd = [sys.executable, "-c", MEASURE, sys.executable, "-c", LOAD, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    *out, peak = proc.stdout.splitlines()
    return int(peak) / 1024, "\n".join(out)  # Linux reports KiB


def test_gzip_bombs_cost_no_more_memory_than_the_real_file(mnist_dir, tmp_path, mirror):
    """A 4 GiB payload behind a valid IDX header: refused at the known size, at a good run's peak."""
    good_peak, out = peak_rss_mib(tmp_path, mnist_dir)
    assert out.startswith("loaded (10000, 28, 28)")

    bombs = {}
    for kind, header in {
        "zeros-past-the-header": IMAGES_HEADER,
        "header-claims-4-GiB": bytes([0, 0, 8, 3]) + np.array([GIB // 784 * 4, 28, 28], ">u4").tobytes(),
    }.items():
        root = tmp_path / kind
        root.mkdir()
        write_bomb(root / IMAGES, header, 4 * GIB)
        shutil.copy(mnist_dir / LABELS, root / LABELS)
        root.chmod(0o555)  # read-only: the bomb is read, refused, and nothing is downloaded
        bombs[kind] = root
    # The same bomb from a mirror: 4 MB of .gz, refused while downloading (the cap is 8.0 MB)
    # when it is the t10k file, decoded as a stream when the cap lets it through.
    bomb_gz = (bombs["zeros-past-the-header"] / IMAGES).read_bytes()
    for name, data in {IMAGES: bomb_gz, LABELS: (mnist_dir / LABELS).read_bytes()}.items():
        mirror.serve(f"/m/{name}", data)
    for name in (IMAGES, LABELS):
        mirror.serve(f"/good/{name}", (mnist_dir / name).read_bytes())
    good_served_peak, out = peak_rss_mib(tmp_path, tmp_path / "good-served", mirror.base + "/good/")
    assert out.startswith("loaded (10000, 28, 28)"), out  # downloading adds urllib, http.client and ssl
    big = write_bomb(tmp_path / "big.gz", IMAGES_HEADER, 8 * GIB, 8 << 20).read_bytes()
    mirror.serve(f"/big/{IMAGES}", big)
    assert len(bomb_gz) < 7.9e6 < 8.1e6 < len(big)

    peaks = {}
    try:
        for kind, root in bombs.items():
            peaks[kind], out = peak_rss_mib(tmp_path, root)
            assert out.startswith(f"refused: {root / IMAGES} "), out
            assert "holds more than the 7840000 data bytes" in out or "its header (5478272, 28, 28) makes" in out, out
        peaks["served"], out = peak_rss_mib(tmp_path, tmp_path / "served", mirror.base + "/m/")
        assert "expected at most" not in out  # 4 MB passes the cap ...
        assert "holds more than the 7840000 data bytes" in out, out  # ... and is cut off while decoding
        peaks["served-too-large"], out = peak_rss_mib(tmp_path, tmp_path / "served2", mirror.base + "/big/")
        cap = MNIST.sizes[IMAGES] * 101 // 100 + (1 << 16)
        assert f"the file is {len(big) / 1e6:.1f} MB, more than the {cap / 1e6:.1f} MB expected at most" in out, out
    finally:
        for root in bombs.values():
            root.chmod(0o755)
    print(
        f"\npeak RSS: good run {good_peak:.1f} MiB, good download {good_served_peak:.1f} MiB; bombs: "
        + ", ".join(f"{k} {v:.1f} MiB" for k, v in peaks.items())
    )
    for kind, peak in peaks.items():
        good = good_served_peak if kind.startswith("served") else good_peak
        assert peak <= good * 1.1 + 2, f"{kind}: {peak:.1f} MiB against a good run's {good:.1f} MiB"
    assert not parts(tmp_path)


def test_a_bomb_is_refused_at_the_declared_size_in_process(tmp_path):
    path = write_bomb(tmp_path / IMAGES, IMAGES_HEADER, GIB)
    t = time.monotonic()
    with pytest.raises(ValueError, match="holds more than the 7840000 data bytes"):
        idx._decode(path, idx.IMAGES, MNIST.md5[IMAGES], MNIST.sizes[IMAGES])
    assert time.monotonic() - t < 5  # it stopped one byte past 7.8 MB, not at 1 GiB
    # A header that claims another size than the dataset's file is refused before any allocation.
    path = write_bomb(
        tmp_path / "claims.gz", bytes([0, 0, 8, 3]) + np.array([60000, 28, 28], ">u4").tobytes(), 1 << 20, 1 << 20
    )
    with pytest.raises(
        ValueError, match=r"its header \(60000, 28, 28\) makes 47040016 bytes, not the 7840016 expected"
    ):
        idx._decode(path, idx.IMAGES, MNIST.md5[IMAGES], MNIST.sizes[IMAGES])
    # Undeclared sizes: the header's own, up to MAX_PAYLOAD.
    with pytest.raises(ValueError, match="more than fw reads"):
        idx._decode(
            write_bomb(
                tmp_path / "huge.gz", bytes([0, 0, 8, 1]) + np.array([2 * GIB], ">u4").tobytes(), 1 << 20, 1 << 20
            ),
            1,
        )


def test_fashion_mnist_declares_the_same_sizes():
    assert FashionMNIST.sizes == MNIST.sizes == idx.MNIST_SIZES
    assert (
        idx.MNIST_SIZES[IMAGES] == 16 + 10000 * 28 * 28 and idx.MNIST_SIZES["train-labels-idx1-ubyte.gz"] == 8 + 60000
    )


# --- the .npy cache race (issue 11, item 4) ------------------------------------------


@pytest.fixture
def past_racy_window(monkeypatch):
    real = idx.time.time_ns
    monkeypatch.setattr(idx.time, "time_ns", lambda: real() + 3_000_000_000)


def test_a_flipping_symlink_at_the_cache_is_never_trusted(mnist_root, tmp_path, past_racy_window, offline):
    """The attack: the cache path is a symlink flipping between a verified file and a tampered one."""
    ds = MNIST(mnist_root)
    good, _ = ds.load_raw("test")
    good = np.array(good)
    cache = ds.cache_dir() / "t10k-images-idx3-ubyte.npy"
    verified, tampered = tmp_path / "verified.npy", tmp_path / "tampered.npy"
    shutil.copy(cache, verified)
    np.save(tampered, 255 - good)  # inverted images: a valid cache of the right shape
    md5 = MNIST.md5[IMAGES]
    # What the attacker wants fw to believe: the cache path's record matches the verified file.
    idx._remember_verified(cache, idx._stamp(os.stat(verified), md5))
    for target in (verified, tampered):  # a link to either is refused, not followed
        cache.unlink()
        cache.symlink_to(target)
        assert idx._read_cache(cache, 3, md5, MNIST.sizes[IMAGES]) is None

    stop = threading.Event()

    def flip():
        links = [tmp_path / "to-verified", tmp_path / "to-tampered"]
        i = 0
        while not stop.is_set():
            link = links[i % 2]
            link.unlink(missing_ok=True)
            link.symlink_to(verified if i % 2 == 0 else tampered)
            os.replace(link, cache)
            i += 1

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        for run in range(40):
            images, _ = MNIST(mnist_root).load_raw("test")
            assert np.array_equal(images, good), f"run {run}: the tampered cache was trusted"
    finally:
        stop.set()
        flipper.join()
    assert offline.hits == []


def test_a_cache_file_swapped_after_opening_is_still_the_one_checked(mnist_root, past_racy_window):
    """The stamp and the mapping come from one descriptor: renaming another file over the path changes neither."""
    ds = MNIST(mnist_root)
    good, _ = ds.load_raw("test")
    cache = ds.cache_dir() / "t10k-images-idx3-ubyte.npy"
    real_fstat = os.fstat
    swapped = []

    def fstat_then_swap(fd):  # the moment the old code read the path a second time
        st = real_fstat(fd)
        if not swapped:
            np.save(cache.with_name("evil.npy"), 255 - np.asarray(good))
            os.replace(cache.with_name("evil.npy"), cache)
            swapped.append(True)
        return st

    with pytest.MonkeyPatch.context() as m:
        m.setattr(idx.os, "fstat", fstat_then_swap)
        images = idx._read_cache(cache, 3, MNIST.md5[IMAGES], MNIST.sizes[IMAGES])
    assert swapped and np.array_equal(images, good)  # the file that was opened, and verified
    assert idx._read_cache(cache, 3, MNIST.md5[IMAGES], MNIST.sizes[IMAGES]) is None  # the swapped-in one: refused


# --- FIFOs and other non-files at data paths (issue 11, item 11) ---------------------


def test_a_fifo_at_a_dataset_file_is_an_error_not_a_hang(mnist_root, offline):
    fifo = mnist_root / IMAGES
    fifo.unlink()
    os.mkfifo(fifo)
    with pytest.raises(FwError, match=rf"^{fifo} is a FIFO, not a regular file: fw reads data only from regular files"):
        no_hang(lambda: MNIST(mnist_root).load_raw("test"), fifo)
    assert offline.hits == [] and fifo.exists()  # not downloaded over, not removed


def test_a_fifo_in_a_local_source_is_skipped(fashion_dir, tmp_path, monkeypatch, offline, capsys):
    debian = tmp_path / "debian"
    debian.mkdir()
    os.mkfifo(debian / IMAGES)
    shutil.copy(fashion_dir / LABELS, debian / LABELS)
    monkeypatch.setattr(FashionMNIST, "local_sources", (str(debian),))
    offline.serve(f"/f1/{IMAGES}", (fashion_dir / IMAGES).read_bytes())
    images, labels = no_hang(lambda: FashionMNIST(tmp_path / "root").load_raw("test"), debian / IMAGES)
    assert images.shape == (10000, 28, 28) and len(labels) == 10000
    assert f"ignoring {debian / IMAGES}: {debian / IMAGES} is a FIFO" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_open_regular_refuses_what_is_not_a_file(tmp_path, kind):
    path = {"fifo": tmp_path / "p", "folder": tmp_path, "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(
        NotARegularFile, match=f"is a {'FIFO' if kind == 'fifo' else kind if kind == 'folder' else 'character device'}"
    ):
        no_hang(lambda: open_regular(path), *([path] if kind == "fifo" else []))
    with pytest.raises(NotARegularFile):  # file_hash (weights.sha256) goes through it too
        no_hang(lambda: file_hash(path), *([path] if kind == "fifo" else []))


def test_a_fifo_as_the_verified_record_is_ignored(mnist_root, past_racy_window):
    ds = MNIST(mnist_root)
    ds.load_raw("test")  # writes the cache
    ds.load_raw("test")  # checks it, and records that
    cache = ds.cache_dir() / "t10k-images-idx3-ubyte.npy"
    record = idx._record_path(cache)
    record.unlink()
    os.mkfifo(record)
    images = no_hang(lambda: idx._read_cache(cache, 3, MNIST.md5[IMAGES]), record)
    assert images is not None and images.shape == (10000, 28, 28)


# --- slow, stalled, huge and lying servers (issue 11, item 7; issue 10, item 6) -------


def drip(data: bytes, every: float):
    def write(wfile):
        for i in range(len(data)):
            wfile.write(data[i : i + 1])
            wfile.flush()
            time.sleep(every)

    return write


def test_a_dripping_body_is_cut_off(mirror, tmp_path, fast_deadlines):
    url = mirror.serve("/f.bin", drip(b"x" * 1000, 0.05), Content_Length="1000")
    t = time.monotonic()
    with pytest.raises(FwError, match=r"f.bin \(too slow: less than 1.0 kB in 0.5 s\)"):
        download([url], tmp_path / "f.bin")
    assert time.monotonic() - t < 3 and not list(tmp_path.iterdir())


def test_dripping_headers_are_cut_off(mirror, tmp_path, fast_deadlines):
    url = mirror.serve_raw("/f.bin", drip(b"HTTP/1.0 200 OK\r\nX-Slow: " + b"y" * 1000, 0.05))
    t = time.monotonic()
    with pytest.raises(FwError, match=r"f.bin \(no response within 0.6 s\)"):
        download([url], tmp_path / "f.bin")
    assert time.monotonic() - t < 3


def test_a_slow_but_steady_body_gets_through(mirror, tmp_path, fast_deadlines):
    """The rate rule is a minimum, not a deadline: 1.5 s (3 windows) at 2.5 times the minimum rate pass."""
    data = os.urandom(15 * 500)

    def steady(wfile):
        for i in range(0, len(data), 500):
            wfile.write(data[i : i + 500])
            wfile.flush()
            time.sleep(0.1)

    url = mirror.serve("/f.bin", steady, Content_Length=str(len(data)))
    download([url], tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data


def endless(written: list):
    def write(wfile):
        chunk = bytes(1 << 20)
        while True:
            wfile.write(chunk)
            written.append(len(chunk))

    return write


def test_a_body_larger_than_the_cap_is_refused_before_it_is_read(mirror, tmp_path):
    written = []
    url = mirror.serve("/f.bin", endless(written), Content_Length=str(GIB))
    with pytest.raises(FwError, match=r"the file is 1073.7 MB, more than the 268.4 MB expected at most"):
        download([url], tmp_path / "f.bin")  # MAX_BYTES, the default cap
    time.sleep(0.2)
    assert sum(written) < 64 << 20 and not list(tmp_path.iterdir())  # at most what the socket buffers held


def test_a_body_that_runs_past_the_cap_is_cut_off(mirror, tmp_path):
    """Chunked, so no Content-Length to refuse up front: cut once the cap is passed."""
    written = []

    def chunked(wfile):
        endless(written)(_Chunked(wfile))

    url = mirror.serve("/f.bin", chunked, Transfer_Encoding="chunked")
    with pytest.raises(FwError, match=r"the file is more than the 4.2 MB expected at most"):
        download([url], tmp_path / "f.bin", max_bytes=4 << 20)
    time.sleep(0.2)
    assert sum(written) < 64 << 20 and not list(tmp_path.iterdir())


class _Chunked:
    def __init__(self, wfile):
        self.wfile = wfile

    def write(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def test_a_body_with_no_stated_end_is_refused(mirror, tmp_path):
    """HTTP/1.0 with no Content-Length ends at the close: a dropped connection would look complete."""
    url = mirror.serve("/f.bin", lambda wfile: wfile.write(b"\x80" * 100))
    with pytest.raises(FwError, match=r"does not say where the file ends \(no Content-Length\)"):
        download([url], tmp_path / "f.bin")
    assert not list(tmp_path.iterdir())

    # A complete chunked body is fine: the last chunk marks the end.
    def whole(wfile):
        _Chunked(wfile).write(b"\x80" * 100)
        wfile.write(b"0\r\n\r\n")

    download([mirror.serve("/g.bin", whole, Transfer_Encoding="chunked")], tmp_path / "g.bin")
    assert (tmp_path / "g.bin").read_bytes() == b"\x80" * 100


@pytest.fixture
def blackhole():
    """A port on 127.0.0.1 that never completes a connection: its accept queue is full, so SYNs are dropped."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(8):  # fill the queue until a connect no longer completes
        s = socket.socket()
        s.settimeout(0.2)
        try:
            s.connect(server.getsockname())
            fillers.append(s)
        except OSError:
            s.close()
            break
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    for s in fillers:
        s.close()
    server.close()


@pytest.fixture
def silent():
    """A server on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_the_time_budget_for_a_dead_network():
    """The shipped limits: every MNIST mirror unreachable fails within 30 s; connecting is short, reading longer."""
    assert len(MNIST.mirrors) * dl.RESPONSE_TIMEOUT <= 30 and len(FashionMNIST.mirrors) * dl.RESPONSE_TIMEOUT <= 30
    assert dl.CONNECT_TIMEOUT < dl.RESPONSE_TIMEOUT < dl.RATE_WINDOW


def test_unreachable_mirrors_fail_within_the_budget_and_teach_the_offline_fix(
    tmp_path, blackhole, silent, mirror, monkeypatch, fast_deadlines
):
    def slow_lookup(*args, **kwargs):
        time.sleep(2)
        raise socket.gaierror("lookup gave up")

    real_lookup = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: slow_lookup() if host == "mirror.invalid" else real_lookup(host, *a, **k),
    )
    mirrors = [blackhole + "/", silent + "/", "http://mirror.invalid/"]
    monkeypatch.setattr(FashionMNIST, "mirrors", mirrors)
    debian = tmp_path / "usr-share"
    monkeypatch.setattr(FashionMNIST, "local_sources", (str(debian),))
    root = tmp_path / "data" / "fashion-mnist"
    t = time.monotonic()
    with pytest.raises(FwError) as e:
        FashionMNIST(root).load_raw("test")
    took = time.monotonic() - t
    assert took < len(mirrors) * dl.RESPONSE_TIMEOUT + 1, f"{took:.1f} s"
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{blackhole}/{IMAGES} (no connection within 0.3 s)" in msg
    assert f"{silent}/{IMAGES} (no response within 0.6 s)" in msg
    assert f"http://mirror.invalid/{IMAGES} (no answer looking up mirror.invalid within 0.3 s)" in msg
    assert f"fw looked in {root} and {debian};" in msg
    assert f"put it at {root / IMAGES} (this split also needs {LABELS} there)" in msg
    assert "dataset.root=FOLDER" in msg and "FW_DATA_DIR=FOLDER (the folder holding fashion-mnist/)" in msg
    assert not root.exists(), "a failed download leaves no empty folders"


# --- FW_DATA_DIR (issue 10, items 4 and 6) -------------------------------------------


def test_fw_data_dir_pointing_at_the_dataset_folder_says_so(mnist_root, monkeypatch, offline):
    monkeypatch.setattr(MNIST, "local_sources", MNIST_SOURCES)  # said even though fw ships a copy
    monkeypatch.setenv("FW_DATA_DIR", str(mnist_root))  # .../data/mnist: fw would look in mnist/mnist/
    with pytest.raises(FwError) as e:
        MNIST().load_raw("test")
    msg = str(e.value)
    assert f"FW_DATA_DIR={mnist_root} looks like the mnist folder itself, but fw looks in {mnist_root / 'mnist'}" in msg
    assert f"set FW_DATA_DIR={mnist_root.parent} or dataset.root={mnist_root}" in msg
    assert offline.hits == [] and not (mnist_root / "mnist").exists()  # nothing downloaded into mnist/mnist/
    monkeypatch.setenv("FW_DATA_DIR", str(mnist_root.parent))  # the fix it suggests works
    assert MNIST().load_raw("test")[0].shape == (10000, 28, 28)


def test_an_empty_folder_named_like_the_dataset_gets_the_hint_too(tmp_path, monkeypatch, offline):
    (tmp_path / "mnist").mkdir()
    monkeypatch.setenv("FW_DATA_DIR", str(tmp_path / "mnist"))
    with pytest.raises(
        FwError, match=r"could not download it: .*FW_DATA_DIR=.*/mnist looks like the mnist folder itself"
    ):
        MNIST().load_raw("train")


def test_a_relative_fw_data_dir_is_resolved_once(mnist_root, tmp_path, monkeypatch, offline):
    monkeypatch.chdir(mnist_root.parent.parent)
    monkeypatch.setenv("FW_DATA_DIR", "data")
    assert default_data_dir() == mnist_root.parent and default_data_dir().is_absolute()
    ds = MNIST()
    monkeypatch.chdir(tmp_path / "data" / "mnist")  # a later chdir does not move the data
    assert ds.root == mnist_root and ds.load_raw("test")[0].shape == (10000, 28, 28)


# --- unverified downloads (issue 11, item 8) -----------------------------------------


def weights_config(tmp_path, url) -> Path:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(
        "dataset: {name: mnist}\n"
        "model: {sizes: [784, 50, 100, 10], activation: sigmoid, output_activation: softmax}\n"
        f"weights: {{importer: pickle, url: '{url}'}}\n"  # no sha256, no path: downloaded to FW_DATA_DIR/weights/
    )
    return cfg


@pytest.mark.parametrize(
    "route, reason",
    [
        (
            lambda pkl: (200, pkl[:1000], {"Content-Length": str(len(pkl))}),
            "connection dropped after 1000 of 181853 bytes",
        ),
        (
            lambda pkl: (200, b'{"error": "rate limited"}', {"Content-Type": "application/json"}),
            "not a file fw can read",
        ),
        (lambda pkl: (200, pkl[:-100], {}), "not a file fw can read"),  # complete as sent, but not a whole pickle
        (lambda pkl: (200, lambda wfile: wfile.write(pkl), {}), r"does not say where the file ends"),
    ],
    ids=["short-body", "json", "truncated-file", "no-length"],
)
def test_an_unverified_download_is_installed_only_if_complete_and_readable(
    book_weights, tmp_path, mirror, monkeypatch, route, reason
):
    monkeypatch.setenv("FW_DATA_DIR", str(tmp_path / "data"))
    pkl = book_weights.read_bytes()
    mirror.routes["/sample_weight.pkl"] = route(pkl)
    cfg = fw.load_config(weights_config(tmp_path, mirror.base + "/sample_weight.pkl"))
    dest = tmp_path / "data" / "weights" / "sample_weight.pkl"
    with pytest.raises(FwError, match=reason) as e:
        fw.build_network(cfg)
    assert ".part" not in str(e.value)  # the message names the download, not a temp file
    assert not dest.exists() and not parts(tmp_path)
    # The good file, still with no checksum: installed, and it works.
    mirror.serve("/sample_weight.pkl", pkl)
    fw.build_network(cfg)
    assert file_hash(dest) == hashlib.sha256(pkl).hexdigest()


# --- SIGTERM, kill -9 and stale .part files (issue 11, item 10) ----------------------


def start_slow_download(tmp_path, mirror, mnist_dir):
    """``fw run`` in a subprocess, its weights dripping from the local server; returns (process, weights folder)."""
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    for name in (IMAGES, LABELS):
        shutil.copy(mnist_dir / name, data / "mnist" / name)
    url = mirror.serve("/sample_weight.pkl", drip(os.urandom(1000), 0.05), Content_Length="1000")
    env = {**os.environ, "FW_DATA_DIR": str(data)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "run", str(weights_config(tmp_path, url))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    folder = data / "weights"
    end = time.monotonic() + 30
    while not parts(folder):
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)
    return proc, folder


def test_sigterm_cleans_up_like_ctrl_c(tmp_path, mirror, mnist_dir):
    proc, folder = start_slow_download(tmp_path, mirror, mnist_dir)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.strip().endswith("fw: terminated") and "Traceback" not in err
    assert parts(folder) == [] and not (folder / "sample_weight.pkl").exists()


def test_the_part_file_of_a_killed_process_is_swept_by_the_next_write(tmp_path, mirror, mnist_dir):
    proc, folder = start_slow_download(tmp_path, mirror, mnist_dir)
    proc.kill()  # kill -9: no cleanup can run
    proc.communicate(timeout=30)
    stale = parts(folder)
    assert len(stale) == 1 and f"-{proc.pid}-" in stale[0]
    # Temp files of live processes, here or on another host sharing the folder, are left alone.
    mine = temp_path(folder / "x.bin")
    mine.write_bytes(b"")
    other_host = folder / f".x.bin.otherhost-{proc.pid}-0123abcd.part"
    other_host.write_bytes(b"")
    download([mirror.serve("/ok.bin", b"\x80" * 10)], folder / "ok.bin")
    assert parts(folder) == sorted([mine.name, other_host.name])
    assert sweep_stale_parts(folder) == []
