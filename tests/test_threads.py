"""Worker threads share out chunks (framework.core.threads): the same numbers, whoever computes them.

These test properties, never times: what the workers gain with a core kept
busy is measured in benchmarks/forward.py and benchmarks/convnet.py --busy.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from conftest import need
from framework import Layer
from framework.core import threads
from framework.core.network import Network
from framework.plugins.activations import ReLU, Softmax
from framework.plugins.conv import Conv2D, MaxPool2D
from framework.plugins.layers import Dense

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


@pytest.fixture
def two_workers(monkeypatch):
    """Two workers, even where OpenBLAS has one thread (or is not found)."""
    monkeypatch.setattr(threads.workers(), "count", 2)


def build(cls, input_shape, **params):
    layer = cls(**params)
    return layer, layer.build(input_shape, np.random.default_rng(1))


def test_the_numbers_do_not_depend_on_how_many_threads_share_the_chunks(monkeypatch):
    """Each chunk is the same product whichever thread runs it, and the weight gradient adds
    the chunks' parts in their order: one worker and two give the same bits."""
    x = RNG.standard_normal((9, 16, 8, 8)).astype(np.float32)
    dout = RNG.standard_normal((9, 32, 4, 4)).astype(np.float32)
    results = []
    for workers in (1, 2):
        monkeypatch.setattr(threads.workers(), "count", workers)
        layer, shape = build(Conv2D, (16, 8, 8), filters=32, kernel_size=3, padding=1)
        pool, _ = build(MaxPool2D, shape, pool_size=2)
        layer.step = 2
        y = pool.forward(layer.forward(x, train=True), train=True).copy()
        dx = layer.backward(pool.backward(dout)).copy()
        results.append((y, dx, layer.grads["W"].copy(), layer.grads["b"].copy(), pool.forward(layer.forward(x))))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_an_error_in_a_worker_is_raised_in_the_caller(two_workers):
    def task(worker, i):
        if i == 5:
            raise ValueError("chunk 5 failed")

    with pytest.raises(ValueError, match="chunk 5 failed"):
        threads.run(task, 8)


@pytest.mark.parametrize("layer", [Conv2D(4, 3, padding=1), MaxPool2D(2)], ids=["conv2d", "max_pool2d"])
def test_an_empty_batch_returns_at_once(two_workers, layer):
    """No chunks: run must not wait for one to finish (it once waited for ever)."""
    out_shape = layer.build((2, 8, 8), np.random.default_rng(0))
    done = []
    worker = threading.Thread(
        target=lambda: done.append(layer.forward(np.zeros((0, 2, 8, 8), np.float32))), daemon=True
    )
    worker.start()
    worker.join(timeout=30)
    assert done and done[0].shape == (0, *out_shape)


def test_the_first_failing_chunk_is_the_one_reported_and_later_ones_are_skipped(two_workers):
    """Whichever thread fails first, the message is the same from run to run: the lowest chunk's."""
    skipped = False
    for _ in range(20):
        ran = []

        def task(worker, i, ran=ran):
            ran.append(i)
            if i in (7, 30):
                raise ValueError(f"chunk {i} failed")

        with pytest.raises(ValueError, match="chunk 7 failed"):
            threads.run(task, 40)
        assert set(range(8)) <= set(ran)
        skipped |= len(ran) < 40
    assert skipped  # (a chunk already claimed when the failure came still runs, so not every time)


def test_a_run_inside_a_task_stays_on_that_tasks_worker(two_workers):
    """A ConvNet layer's chunks inside one of classify's: its scratch is keyed by worker, so
    the inner chunks must run on the outer task's worker (and thread), never on another."""
    seen = []

    def outer(worker, i):
        me = threading.get_ident()
        threads.run(lambda inner_worker, j: seen.append((worker, inner_worker, me, threading.get_ident())), 3)

    threads.run(outer, 6)
    assert len(seen) == 18
    assert all(w == inner and t == inner_t for w, inner, t, inner_t in seen)


def test_the_workers_never_keep_the_process_alive(two_workers):
    threads.run(lambda worker, i: None, 4)
    helpers = [t for t in threading.enumerate() if t.name.startswith("fw-worker")]
    assert helpers and all(t.daemon for t in helpers)


@pytest.mark.slow
def test_fw_run_of_a_convnet_warns_of_no_thread_left_behind(tmp_path):
    """The workers once were a ThreadPoolExecutor's, which fw's exit took for a plugin's thread left running."""
    data = need("book/params.pkl", "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.cli",
            "run",
            REPO / "configs" / "mnist_cnn.yaml",
            f"dataset.root={data / 'mnist'}",
            f"weights.path={data / 'book' / 'params.pkl'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Accuracy: 0.9600 (9600/10000 correct)")
    assert done.stderr == ""


def convnet():
    """A small ConvNet of fw's own layers, with seeded random weights, for (1, 28, 28) images."""
    layers = [
        Conv2D(8, 3, padding=1),
        ReLU(),
        MaxPool2D(2),
        Conv2D(16, 3, padding=1),
        ReLU(),
        MaxPool2D(2),
        Dense(32),
        ReLU(),
        Dense(10),
        Softmax(),
    ]
    return Network(layers).build((1, 28, 28), np.random.default_rng(3))


@pytest.fixture
def mnist_images(mnist_dir):
    cfg = fw.load_config(REPO / "configs" / "mnist_cnn.yaml", [f"dataset.root={mnist_dir}"])
    x, t = fw.load_dataset(cfg)
    return x[:600], t[:600]


def test_classify_shares_chunks_and_gets_the_same_labels(monkeypatch, mnist_images):
    """Real MNIST images through a ConvNet in chunks of 7: one worker, two, and the plain forward pass agree."""
    x, _ = mnist_images
    net = convnet()
    expected = net.forward(x).argmax(axis=1)
    labels = {}
    for workers in (1, 2):
        monkeypatch.setattr(threads.workers(), "count", workers)
        calls = []
        monkeypatch.setattr(threads.Workers, "run", _counting(threads.Workers.run, calls))
        labels[workers] = net.classify(x, chunk_rows=7)
        assert calls[0] == -(-len(x) // 7)  # the network's chunks went to the workers
    np.testing.assert_array_equal(labels[1], expected)
    np.testing.assert_array_equal(labels[2], expected)


def _counting(run, calls):
    def wrapper(self, task, count, *args):
        calls.append(count)
        return run(self, task, count, *args)

    return wrapper


class Remembers(Layer):
    """An outsider's layer that keeps its output in self while it works: not thread-safe."""

    name = "remembers"

    def forward(self, x, train=False):
        self.out = x * 2
        self.threads = getattr(self, "threads", set()) | {threading.get_ident()}
        return self.out


def test_a_layer_that_does_not_say_it_is_thread_safe_keeps_classify_on_one_thread(two_workers, mnist_images):
    x, _ = mnist_images
    layer = Remembers()
    net = Network([Dense(20), layer, ReLU(), Dense(10)]).build((1, 28, 28), np.random.default_rng(3))
    labels = net.classify(x, chunk_rows=5)
    assert layer.threads == {threading.get_ident()}
    np.testing.assert_array_equal(labels, net.forward(x).argmax(axis=1))


def test_the_book_network_gets_9352_with_its_chunks_shared(two_workers, capsys):
    from test_cli import fw as run_cli

    data = need("book/sample_weight.pkl", "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
    code, out, err = run_cli(
        capsys,
        "run",
        REPO / "configs" / "mnist_infer.yaml",
        f"dataset.root={data / 'mnist'}",
        f"weights.path={data / 'book' / 'sample_weight.pkl'}",
    )
    assert code == 0, err
    assert out.startswith("Accuracy: 0.9352 (9352/10000 correct)")


def test_a_forward_pass_after_classify_gives_the_bits_it_gives_alone(book_weights, mnist_dir):
    """classify holds OpenBLAS to one thread per worker and must give the threads back when it ends:
    a product's last bits can depend on OpenBLAS's thread count (the Haswell kernel's do), so a
    validation loss computed just after the test accuracy once differed from a resumed run's."""
    cfg = fw.load_config(
        REPO / "configs" / "mnist_infer.yaml", [f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
    )
    net = fw.build_network(cfg)
    x, _ = fw.load_dataset(cfg)
    x = x[:3000]
    time.sleep(2 * threads.BLAS_LINGER)
    alone = net.forward(x)
    net.classify(x, chunk_rows=500)
    np.testing.assert_array_equal(net.forward(x), alone)


def _blas_threads():
    """Each BLAS library's thread count, as threadpoolctl reads it from the library itself."""
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_the_blas_is_on_one_thread_in_the_chunks_and_gets_its_threads_back(two_workers):
    """Each worker multiplies on one BLAS thread (so two workers never fight a BLAS's own threads
    for the cores). ``linger=False`` (a whole pass) gives the threads back as the call returns;
    a layer's call keeps them held a little longer, then gives them back too."""
    time.sleep(3 * threads.BLAS_LINGER)  # any earlier hold has ended
    before = _blas_threads()
    assert before, "numpy's wheels bring OpenBLAS: threadpoolctl should see it"
    inside = []
    threads.run(lambda worker, i: inside.append(_blas_threads()), 4, linger=False)
    assert inside == [[1] * len(before)] * 4
    assert _blas_threads() == before
    threads.run(lambda worker, i: None, 4)
    deadline = time.monotonic() + 30
    while _blas_threads() != before and time.monotonic() < deadline:
        time.sleep(threads.BLAS_LINGER)
    assert _blas_threads() == before


def _cpus_during_a_run():
    """Each worker's allowed CPUs, as seen from inside its chunks, and the caller's CPUs after the run."""
    seen, started = {}, threading.Barrier(2, timeout=30)

    def task(worker, i):
        if i < 2:  # both workers hold a chunk at once, so the helper surely took part
            started.wait()
        seen.setdefault(worker, os.sched_getaffinity(0))

    threads.run(task, 2)
    return seen, os.sched_getaffinity(0)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_the_helpers_run_on_other_cpus_than_the_caller_and_the_caller_gets_its_cpus_back(two_workers):
    """A helper woken after a pause must not queue on the caller's CPU (this VM's scheduler put
    it there, and the network's chunks then ran on one CPU of two: README, Performance)."""
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("one CPU: nowhere else to put a helper (the next test covers it)")
    seen, after = _cpus_during_a_run()
    assert after == before
    (caller_cpu,) = seen[0]  # held to the one CPU it was on
    assert caller_cpu in before
    assert seen[1] == before - {caller_cpu}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_caller_held_to_one_cpu_is_left_as_it_is(two_workers):
    """taskset -c 0 fw run ...: no other CPU to use, so nothing is changed, and the run still ends."""
    before = os.sched_getaffinity(0)
    one = {min(before)}
    os.sched_setaffinity(0, one)
    try:
        seen, after = _cpus_during_a_run()
    finally:
        os.sched_setaffinity(0, before)
    assert after == one and seen[0] == one


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_second_callers_call_while_another_runs_is_left_where_it_is(two_workers):
    """Two threads calling at once: holding both to the CPUs they are on could put both on one."""
    everywhere = os.sched_getaffinity(0)
    first_inside, second_done, seen = threading.Event(), threading.Event(), {}

    def first(worker, i):
        if worker == 0 and not first_inside.is_set():
            first_inside.set()
            assert second_done.wait(30)

    def second(worker, i):
        if worker == 0:
            seen.setdefault("second", os.sched_getaffinity(0))

    def call_second():
        first_inside.wait(30)
        threads.run(second, 2)
        second_done.set()

    other = threading.Thread(target=call_second, daemon=True)
    other.start()
    threads.run(first, 2)
    other.join(30)
    assert seen["second"] == everywhere


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX's")
def test_a_forked_child_gets_workers_of_its_own(two_workers):
    """The parent's helpers do not exist in a child: it must neither wait for them nor
    set CPUs on their thread ids (which in the child name the parent's threads)."""
    threads.run(lambda worker, i: None, 4)  # the parent's helper exists now
    parent_helpers = list(threads.workers().helper_ids)
    assert parent_helpers
    pid = os.fork()
    if pid == 0:  # the child: any failure is its exit code
        try:
            mine = threads.workers()
            mine.count = 2
            ran = []
            threads.run(lambda worker, i: ran.append(i), 8)
            ok = sorted(ran) == list(range(8)) and not set(parent_helpers) & set(mine.helper_ids)
            os._exit(0 if ok else 1)
        except BaseException:  # noqa: BLE001 - the forked child must exit, never return into pytest
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
