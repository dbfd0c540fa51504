"""Micro-batching: the requests that arrive together go through the network as one batch.

``work(items)`` gets the items of a batch and returns one answer per item (an
exception instance for an item it refuses); ``size(item)`` is its rows.
A batch starts when ``max_rows`` rows are waiting, or ``max_wait`` seconds
after its first request arrived, whichever comes first; the next one gathers
meanwhile. A request with more rows than ``max_rows`` goes alone.

What a batch buys is one pass of fw's own per-batch work (checks, softmax,
a hold of the BLAS to one thread) for many requests instead of one each. It
does not buy one call through the network: that runs over each request's
rows in a call of their own (``Model.answer``), because BLAS's numbers for a
row depend on the rows multiplied with it, and an answer must not depend on
who else asked at the same moment.

Where the batch runs is measured, not fixed: on the event loop itself while
its work costs under ``INLINE_PER_ROW`` a row, in a worker thread beyond.
Handing a batch to a thread and back costs more than it saves: numpy holds
the GIL over small arrays, so the event loop hardly reads requests meanwhile.
Measured on 2 cores, 32 connections, one-image requests (server CPU a
request and requests a second, thread -> inline): the book's MLP (~45 us
of work a row) 315-354 -> 310-314 us, 2830-3160 -> 3190-3220/s; its
ConvNet (~150 us a row) 386-473 -> 391-406 us, 2090-2480 -> 2460-2550/s;
the deep ConvNet 884 -> 838 us, 1080 -> 1190/s. The thread stays for a
network slower still, so a batch never holds up the event loop (other
requests, the page, Ctrl-C) for much more than ``max_rows`` milliseconds:
BLAS lets go of the GIL over large products. The first batch goes to the
thread; each batch's own time (in either place) decides the next one's.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

#: A batch whose work took less than this a row runs the next one on the event loop; more, in the worker thread.
INLINE_PER_ROW = 1e-3


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
        self.per_row = None  # the last batch's seconds of work a row (None: none yet)
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
            items = [item for item, _, _ in batch]
            inline = self.per_row is not None and self.per_row < INLINE_PER_ROW
            try:
                answers, seconds = (
                    self._timed(items) if inline else await loop.run_in_executor(self.pool, self._timed, items)
                )
            except Exception as e:  # noqa: BLE001 - the requests' handlers report it
                answers, seconds = [e] * len(batch), None
            if seconds is not None:
                self.per_row = seconds / max(rows, 1)
            for (_, _, future), answer in zip(batch, answers):
                if future.done():  # a client that left has cancelled its own
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
            if inline:  # let the answered handlers write before a full queue starts the next batch
                await asyncio.sleep(0)

    def _timed(self, items):
        start = time.perf_counter()
        answers = self.work(items)
        return answers, time.perf_counter() - start

    def close(self):
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=False)
