"""Worker threads that share out a call's chunks, with numpy's BLAS held to one thread meanwhile (threadpoolctl).

OpenBLAS splits each matrix product between its own threads, one per core,
and every product waits for the slowest: with another program on one core,
all of them wait for that core (docs/performance.md: the chapter-3 network
took 17 times as long with one core busy). Here each worker multiplies whole
chunks on one BLAS thread, and claims the next chunk when it is free, so a
core that another program takes simply does fewer.

``run(task, count)`` calls ``task(worker, i)`` for each chunk ``i``;
``worker`` numbers the thread from 0 (the caller), so a task can keep one
scratch buffer per worker. A ``run`` from inside a task (a ConvNet layer's
chunks within one of the network's) runs its chunks in that same worker, one
after the other.

For the length of a call, the caller stays on the CPU it is on and the
helpers are kept off it (``Workers._place``). Left to itself, this VM's
scheduler wakes a helper that slept through a pause onto the caller's own CPU
and moves it only some 10 ms later: the chapter-3 network's 10,000 images
then took 12 ms on one CPU instead of 7 ms on two (docs/performance.md).
"""

import contextlib
import ctypes
import itertools
import os
import queue
import threading
import time

#: Seconds numpy's OpenBLAS stays on one thread after the last call: between the
#: calls of one pass through a network its other products run on one thread too, and
#: no BLAS thread is left spinning on a core the workers need (about 0.1 s each).
BLAS_LINGER = 0.05


def _blas():
    """threadpoolctl's controller of the BLAS libraries loaded (numpy's OpenBLAS, MKL, BLIS...), or None."""
    from threadpoolctl import ThreadpoolController  # found once: each lookup walks the loaded libraries

    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


def _control_freed():
    """threadpoolctl's documented ``clear_controlling_thread`` for OpenBLAS; a no-op where it has none.

    OpenBLAS's pool (pthreads) is the process's, and threadpoolctl 3.8 lets
    only its "controlling thread", the first that set it, set it again: the
    others' calls silently do nothing. fw holds the BLAS in a call's thread
    and gives it back from its timer's, so it frees that role before and
    after each change (older threadpoolctl versions have no such role).
    """
    from threadpoolctl import OpenBLASController

    free = getattr(OpenBLASController, "clear_controlling_thread", None)
    return (lambda: free(force=True)) if free else (lambda: None)


def _sched_getcpu():
    """glibc's (and musl's) ``sched_getcpu``: the CPU the calling thread is on; None where there is none."""
    if not hasattr(os, "sched_setaffinity"):  # not Linux
        return None
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.restype = ctypes.c_int
    return getcpu


class Workers:
    """As many workers as the BLAS has threads (OpenBLAS's default: one per core), the caller being the first.

    The others are daemon threads, started on first need: they never keep
    the process from exiting. Without a BLAS fw can hold to one thread there
    is one worker, and the BLAS threads each product itself.
    """

    def __init__(self):
        self.blas, self.free_control = _blas(), _control_freed()
        self.count = max(1, *(lib.num_threads or 1 for lib in self.blas.lib_controllers)) if self.blas else 1
        self.lock = threading.Lock()
        self.depth, self.held, self.timer = 0, False, None  # held: the BLAS is on one thread (``self.limiter``)
        self.jobs, self.helpers = queue.SimpleQueue(), 0
        self.local = threading.local()
        self.getcpu = _sched_getcpu()
        self.helper_ids, self.helper_cpus, self.away = [], {}, None

    def run(self, task, count, linger=True):
        """``task(worker, i)`` for each ``i`` in ``range(count)``;
        the error of the first chunk that fails is raised here.

        Returns when every chunk is done, without waiting for a worker that
        has not woken yet: on a busy machine it may wake only after the others
        finished everything, and then finds nothing left to claim. ``linger``:
        keep OpenBLAS on one thread for ``BLAS_LINGER`` after the call (a
        layer's call, with more layers to come); False gives it back at once
        (a whole pass, such as ``classify``: what runs after it then gets the
        same thread count, and so the same bits, as it would without it).
        """
        if count <= 0:  # nothing to wait for (an empty batch): waiting would never end
            return
        mine = getattr(self.local, "worker", None)
        if mine is not None:  # inside a task already
            for i in range(count):
                task(mine, i)
            return
        workers = min(count, self.count)
        claim = itertools.count().__next__  # one number to each caller: atomic under the GIL
        lock, done, finished, errors = threading.Lock(), threading.Event(), [0], []

        def work(worker):
            self.local.worker = worker
            try:
                while (i := claim()) < count:
                    if not errors or i < min(f for f, _ in errors):  # after a failure, only the chunks before it
                        try:
                            task(worker, i)
                        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread below
                            errors.append((i, e))
                    with lock:
                        finished[0] += 1
                        if finished[0] == count:
                            done.set()
            finally:
                self.local.worker = None

        self._one_blas_thread(True)  # one worker too: a chunk's numbers never depend on the thread count
        callers_cpus = None
        try:
            callers_cpus = self._place() if workers > 1 else None
            for w in range(1, workers):
                self._hand_out(work, w)
            work(0)
            done.wait()
        finally:
            self._one_blas_thread(False, linger)
            if callers_cpus is not None:
                with contextlib.suppress(OSError):  # only if its cpuset shrank meanwhile
                    os.sched_setaffinity(0, callers_cpus)
        if errors:  # the first chunk's error, whichever thread was quicker
            raise min(errors, key=lambda failure: failure[0])[1]

    def _place(self):
        """Hold the caller to its CPU and the helpers to the others; the caller's CPUs before, or None.

        None, and nothing changed, where there is no other CPU to use (one
        allowed, or no ``sched_getcpu``), or while another thread's call runs
        (two callers held to one CPU would share it while another idled). A
        helper started meanwhile places itself (``_serve``): a new thread
        would inherit the caller's one CPU.
        """
        if self.getcpu is None or self.depth > 1:  # depth counts this call too
            return None
        try:
            allowed = os.sched_getaffinity(0)
            cpu = self.getcpu()
            away = allowed - {cpu}
            if cpu not in allowed or not away:
                return None
            os.sched_setaffinity(0, {cpu})
        except OSError:  # a cpuset that changed under us: leave the threads where they are
            return None
        with self.lock:
            self.away = away
            for tid in self.helper_ids:
                self._keep(tid, away)
        return allowed

    def _keep(self, tid, cpus):
        """Set thread ``tid``'s CPUs, unless they are set already (called holding ``self.lock``)."""
        if self.helper_cpus.get(tid) != cpus:
            try:
                os.sched_setaffinity(tid, cpus)
                self.helper_cpus[tid] = cpus
            except OSError:
                pass

    def _hand_out(self, work, worker):
        with self.lock:
            if self.helpers < self.count - 1:
                self.helpers += 1
                threading.Thread(target=self._serve, name=f"fw-worker-{self.helpers}", daemon=True).start()
        self.jobs.put((work, worker))

    def _serve(self):
        tid = threading.get_native_id()
        with self.lock:
            self.helper_ids.append(tid)
            if self.away is not None:
                self._keep(tid, self.away)
        while True:
            work, worker = self.jobs.get()
            work(worker)

    def _one_blas_thread(self, on, linger=True):
        """Hold the BLAS to one thread while any call runs, and (``linger``) until the calls stop for ``BLAS_LINGER``.

        Calls may come from several threads, so they are counted.
        """
        if self.blas is None:  # nothing to hold (only tests run several workers then)
            return
        with self.lock:
            self.depth += 1 if on else -1
            self.last = time.monotonic()
            if on and not self.held:
                self.limiter = self._blas_change(lambda: self.blas.limit(limits=1))  # remembers the counts it changed
                self.held = True
            if not on and self.depth == 0:
                if not linger:
                    if self.timer is not None:
                        self.timer.cancel()
                    self._blas_change(self.limiter.restore_original_limits)
                    self.held, self.timer = False, None
                elif self.timer is None:
                    self._restore_in(BLAS_LINGER)

    def _blas_change(self, change):
        """``change()``, a threadpoolctl limit or restore, in effect whichever thread makes it (``_control_freed``)."""
        self.free_control()
        try:
            return change()
        finally:
            self.free_control()

    def _restore_in(self, seconds):
        self.timer = threading.Timer(seconds, self._restore)
        self.timer.daemon = True
        self.timer.start()

    def _restore(self):
        with self.lock:
            if threading.current_thread() is not self.timer:  # cancelled while it waited for the lock
                return
            idle = time.monotonic() - self.last
            if self.depth or idle < BLAS_LINGER:
                self._restore_in(BLAS_LINGER - idle if not self.depth else BLAS_LINGER)
            else:
                self._blas_change(self.limiter.restore_original_limits)
                self.held, self.timer = False, None


_workers = None


def _forget_in_child():
    """A forked child has none of its parent's helper threads: it starts a set of its own."""
    global _workers
    _workers = None


def _lock_for_fork():
    """No fork while fw changes the BLAS's threads: a lock threadpoolctl holds then would stay held in the child."""
    global _forking
    _forking = _workers
    if _forking is not None:
        _forking.lock.acquire()


def _unlock_after_fork():
    if _forking is not None:
        _forking.lock.release()


_forking = None
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_lock_for_fork, after_in_parent=_unlock_after_fork, after_in_child=_forget_in_child)


def workers():
    """The process's one set of workers."""
    global _workers
    if _workers is None:
        _workers = Workers()
    return _workers


def run(task, count, linger=True):
    """``task(worker, i)`` for each ``i`` in ``range(count)``, shared out between the workers (see ``Workers.run``)."""
    workers().run(task, count, linger)


#: Element-wise work (``over_rows``) goes in parts of about this many bytes: a few per worker
#: for a ConvNet's feature maps, one part (no thread woken) for a dense layer's few kilobytes.
ROWS_BYTES = 1 << 20


def over_rows(part, rows, row_bytes):
    """``part(a, b)`` for consecutive ranges of ``rows`` rows of ``row_bytes`` each, shared out between the workers."""
    step = max(1, ROWS_BYTES // max(1, row_bytes))
    if step >= rows:  # one part: here, leaving OpenBLAS's threads as they are for the products around it
        part(0, rows)
        return
    starts = range(0, rows, step)
    run(lambda worker, i: part(starts[i], min(starts[i] + step, rows)), len(starts))


@contextlib.contextmanager
def one_blas_thread():
    """The BLAS held to one thread for the length of the block, as during ``run``, and given back at its end.

    OpenBLAS's sum for one row depends on how its threads split the product,
    so a whole pass held so gives the same bits on any number of cores
    (``fw predict`` and ``fw serve`` run each input's pass so).
    """
    held = workers()
    held._one_blas_thread(True)
    try:
        yield
    finally:
        held._one_blas_thread(False, linger=False)
