"""Micro-batching: the requests that arrive together go to the network's thread as one batch.

``work(items)`` gets the items of a batch and returns one answer per item (an
exception instance for an item it refuses); ``size(item)`` is its rows.
A batch starts when ``max_rows`` rows are waiting, or ``max_wait`` seconds
after its first request arrived, whichever comes first; while the network
works on one batch (in a worker thread, so the server keeps reading
requests), the next one gathers. A request with more rows than ``max_rows``
goes alone.

What a batch buys is one hand-over to the worker thread and back (a wake-up
of each thread, a hold of the BLAS to one thread) for many requests instead
of one each. It does not buy one call through the network: that runs over
each request's rows in a call of their own (``Model.answer``), because
BLAS's numbers for a row depend on the rows multiplied with it, and an
answer must not depend on who else asked at the same moment.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor


def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class Batcher:
    def __init__(self, work, size, max_rows, max_wait):
        self.work, self.size, self.max_rows, self.max_wait = work, size, max_rows, max_wait
        self.pending = []  # (item, its rows, future) in arrival order
        self.rows = 0
        self.arrived = None  # a future set when a request arrives while the loop waits for one
        self.full = None  # a future set when max_rows rows wait
        self.task = self.loop = None
        # BLAS on one thread: its idle threads spin on the cores the event loop needs to read requests
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="fw-serve-network", initializer=_one_blas_thread)

    async def __call__(self, item):
        """``work``'s answer for ``item``, computed with the items around it."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # the first request (a test client may run each in a new event loop)
            self.loop, self.pending, self.rows, self.arrived, self.full = loop, [], 0, None, None
            self.task = loop.create_task(self._run())
        answer = loop.create_future()
        rows = self.size(item)
        self.pending.append((item, rows, answer))
        self.rows += rows
        if self.arrived is not None and not self.arrived.done():
            self.arrived.set_result(None)
        if self.full is not None and self.rows >= self.max_rows and not self.full.done():
            self.full.set_result(None)
        return await answer

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            if not self.pending:
                self.arrived = loop.create_future()
                await self.arrived
            if self.rows < self.max_rows and self.max_wait > 0:
                self.full = loop.create_future()
                timer = loop.call_later(self.max_wait, lambda f=self.full: f.done() or f.set_result(None))
                await self.full
                timer.cancel()
            batch, rows = [], 0
            while self.pending and (not batch or rows + self.pending[0][1] <= self.max_rows):
                batch.append(self.pending.pop(0))
                rows += batch[-1][1]
            self.rows -= rows
            try:
                answers = await loop.run_in_executor(self.pool, self.work, [item for item, _, _ in batch])
            except Exception as e:  # noqa: BLE001 - the requests' handlers report it
                answers = [e] * len(batch)
            for (_, _, future), answer in zip(batch, answers):
                if future.done():  # a client that left has cancelled its own
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def close(self):
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=False)
