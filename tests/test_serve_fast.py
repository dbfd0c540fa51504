"""fw serve's batches run where they cost least: on the event loop while cheap, in the worker thread once slow."""

import asyncio
import threading
import time

from framework.cli.serving import batching
from framework.cli.serving.batching import Batcher


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
