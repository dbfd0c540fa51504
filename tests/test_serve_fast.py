"""fw serve's batches cost little: they run on the event loop while cheap (in the worker thread once slow), and
fw's own checks around the network run once over a batch."""

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from framework.cli.serve import make_app
from framework.cli.serving import batching
from framework.cli.serving.batching import Batcher
from framework.plugins.idx import read_idx
from test_cli import BOOK

pytest.importorskip("starlette")


@pytest.fixture
def book(mnist_dir, book_weights):
    return [BOOK, f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]


def _threads_of(cost_per_row, batches=4, rows=3):
    """The thread each of ``batches`` batches of ``rows`` one-row items ran on, the work taking ``cost_per_row``."""
    ran = []

    def work(items):
        ran.append(threading.current_thread())
        time.sleep(cost_per_row * len(items))
        return [item * 2 for item in items]

    async def main():
        batcher = Batcher(work, lambda item: 1, rows, 0.0)
        try:
            for b in range(batches):
                items = range(b * rows, (b + 1) * rows)
                assert await asyncio.gather(*(batcher(i) for i in items)) == [i * 2 for i in items]
        finally:
            batcher.close()
        return threading.current_thread()

    return asyncio.run(main()), ran


def test_cheap_batches_run_on_the_event_loop_after_the_first():
    loop_thread, ran = _threads_of(0.0)
    assert ran[0] is not loop_thread  # nothing measured yet: the worker thread
    assert ran[1:] == [loop_thread] * 3


def test_slow_batches_stay_in_the_worker_thread(monkeypatch):
    monkeypatch.setattr(batching, "INLINE_PER_ROW", 0.001)
    loop_thread, ran = _threads_of(0.003)
    assert loop_thread not in ran


def test_a_batch_that_slows_down_goes_back_to_the_thread(monkeypatch):
    monkeypatch.setattr(batching, "INLINE_PER_ROW", 0.001)
    costs = iter([0.0, 0.0, 0.003, 0.003, 0.003])
    ran = []

    def work(items):
        ran.append(threading.current_thread())
        time.sleep(next(costs) * len(items))
        return list(items)

    async def main():
        batcher = Batcher(work, lambda item: 1, 2, 0.0)
        try:
            for b in range(5):
                await asyncio.gather(batcher(2 * b), batcher(2 * b + 1))
        finally:
            batcher.close()
        return threading.current_thread()

    loop_thread = asyncio.run(main())
    assert [t is loop_thread for t in ran] == [False, True, True, False, False]


def test_a_batch_pays_fws_checks_once_and_answers_as_requests_alone(book, mnist_dir, monkeypatch):
    """fw's row-wise work around the network (its own preparation, finiteness, the softmax decision) runs once
    over a batch of one-image requests, not once per request; each answer is still its request's alone, to the
    last bit."""
    import httpx2

    from framework.cli import predict
    from framework.data.dataset import Dataset

    calls, prepared = [], []
    for name in ("_refuse_non_finite", "_probabilities"):
        original = getattr(predict, name)
        monkeypatch.setattr(predict, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    prepare = Dataset.prepare
    monkeypatch.setattr(
        Dataset, "prepare", lambda self, raw, **kw: prepared.append(len(raw)) or prepare(self, raw, **kw)
    )
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:16]

    async def ask(app, name):
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://fw") as http:
            answers = await asyncio.gather(
                *(http.post(f"/v1/models/{name}:predict", json={"instances": [im.tolist()], "top": 3}) for im in images)
            )
        return [a.json()["predictions"] for a in answers]

    together = asyncio.run(ask(*make_app(book[0], book[1:], max_batch=16, max_wait=0.5)))
    assert calls == [] and prepared == [16]  # fw's own preparation works value by value: one call for the batch
    alone = asyncio.run(ask(*make_app(book[0], book[1:], max_batch=1)))
    assert together == alone
    assert [p[0]["class"] for p in together[:3]] == ["7", "2", "1"]


def test_the_softmax_is_decided_input_by_input():
    """Outputs that are probabilities stay as they are, logits get their softmax, each input judged alone."""
    from framework.cli.predict import _probabilities, _probabilities_each

    probabilities = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    logits = np.array([[2.0, -1.0, 0.5]])
    half = np.array([[0.5, 0.5, 0.0], [3.0, 1.0, 2.0]])  # one row sums to 1, the other not: the input's softmax
    out = _probabilities_each([probabilities, None, logits, half], [None] * 4, [None] * 4, 3)
    assert out[0] is probabilities
    assert out[1].shape == (0, 3)
    assert out[2].tobytes() == _probabilities(logits).tobytes()
    assert out[3].tobytes() == _probabilities(half).tobytes() and not np.array_equal(out[3], half)


@pytest.mark.parametrize(
    "instances",
    [
        [[0, 255], [17, 3]],
        [[2**53 + 1, 2**63 - 1, -(2**63)]],  # int64 to float64 rounds as Python's float does
        [[1, 2**64], [1, -(2**63) - 1]],  # beyond int64
        [[1, 2.5], [3, 4]],
        [[1, True], [None, "2"]],
        [[[]]],
        [[0.5, 1]],
    ],
)
def test_whole_numbers_are_read_quicker_into_the_same_floats(instances):
    from framework.cli.serving.instances import _floats

    a = _floats(instances)
    assert a.dtype == np.float64 and a.tobytes() == np.asarray(instances, dtype=np.float64).tobytes()


@pytest.mark.parametrize("shape", [(1, 784), (1, 28, 28), (3, 28, 28), (2, 1, 28, 28), (5, 7), (1, 1)])
def test_pixels_are_read_quicker_into_uint8_with_the_same_values(shape):
    from framework.cli.serving.instances import _pixels

    values = np.random.default_rng(0).integers(0, 256, shape)
    values.flat[:2] = 0, 255
    a = _pixels(values.tolist())
    assert a.dtype == np.uint8 and a.shape == shape and a.flags.writeable
    assert np.array_equal(a, np.asarray(values.tolist()))


@pytest.mark.parametrize(
    "instances",
    [
        [[1, 2], [3]],  # ragged
        [[1, 2], 3],
        [[1, 2], "ab"],
        [[1, 2], {"a": 1, "b": 2}],
        [[[1, 2]], [[3]]],
        [[1, [2]]],
        [[0, 256]],  # beyond a pixel
        [[0, -1]],
        [[0, 2.0]],  # floats, however whole, go numpy's way
        [[0, None]],
        [[0, "1"]],
        [[True, 1]],
        [[]],
        [],
        7,
        json.loads("[" * 100 + "1" + "]" * 100),  # more axes than numpy takes
    ],
)
def test_anything_but_whole_pixels_in_one_shape_is_left_to_numpy(instances):
    from framework.cli.serving.instances import _pixels

    assert _pixels(instances) is None


def test_an_image_as_whole_numbers_or_as_floats_gets_the_same_answer(book, mnist_dir):
    """Whole numbers take the uint8 way, the same numbers written as floats numpy's: the network sees the same."""
    from starlette.testclient import TestClient

    app, name = make_app(book[0], book[1:], max_batch=1)
    http = TestClient(app)
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:8]
    as_ints = http.post(f"/v1/models/{name}:predict", json={"instances": images.tolist(), "top": 10})
    as_floats = http.post(f"/v1/models/{name}:predict", json={"instances": images.astype(float).tolist(), "top": 10})
    assert as_ints.status_code == 200 and as_ints.json() == as_floats.json()
    assert [p["class"] for p in as_ints.json()["predictions"]] == ["7", "2", "1", "0", "4", "1", "4", "9"]


@pytest.mark.parametrize("instances", [[[1, 2], [3]], [[1, [2]]], [[1, {}]], [[1, "a"]]])
def test_instances_that_are_not_numbers_fail_as_numpy_fails(instances):
    from framework.cli.serving.instances import _floats

    with pytest.raises((ValueError, TypeError)) as numpy_error:
        np.asarray(instances, dtype=np.float64)
    with pytest.raises(numpy_error.type):
        _floats(instances)


def test_the_server_freezes_what_lives_as_long_as_it_and_collects_young_objects_less_often_until_it_ends(book):
    """Full collections, set off by every few thousand requests' JSON, then skip the model and the modules."""
    import gc

    from starlette.testclient import TestClient

    app, name = make_app(book[0], book[1:])
    thresholds = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with TestClient(app) as http:
        assert http.get(f"/v1/models/{name}").status_code == 200
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (10_000, *thresholds[1:])  # requests' JSON collected young less often
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
