"""What placing the worker threads gains: classify with and without it, in one process, interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/placement.py [--net book|deep] [--rounds 40] [--busy]

For the length of each call, ``framework.core.threads`` holds the caller to
the CPU it is on and the helpers to the others (``Workers._place``). Without
it, this VM's scheduler woke a helper that slept through a pause onto the
caller's own CPU, and the network's chunks ran on one CPU of two. Here the
same network classifies the 10,000 MNIST test images after a pause, with
placement and without (the helpers' CPUs reset to all of them; numpy's BLAS
held to one thread through threadpoolctl in both), alternating round by
round; the figures are medians, and the ratio is taken round by round.
``book``: chapter 3's 784-50-100-10 network (pause 0.2 s, as in forward.py);
``deep``: chapter 8's DeepConvNet (pause 0.5 s, as in convnet.py). Not a
test: run it by hand.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import convnet
import forward
from framework.core import threads


def without_placement(workers):
    """Placement off: no caller held, and every helper free to run on any CPU."""
    workers._place = lambda: None
    everywhere = os.sched_getaffinity(0)
    with workers.lock:
        for tid in workers.helper_ids:
            os.sched_setaffinity(tid, everywhere)
        workers.helper_cpus.clear()
        workers.away = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", choices=["book", "deep"], default="book")
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds of each (default 40)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    args = parser.parse_args(argv)
    if not hasattr(os, "sched_setaffinity"):
        sys.exit("placement.py: CPU affinity is Linux's; nothing to compare here")

    if args.net == "book":
        _, net, x, _, _ = forward.load(forward.data_dir())
        pause = 0.2
    else:
        _, net, x, _, _ = convnet.load("deep")
        pause = 0.5
    workers = threads.workers()
    busy = convnet.busy_core() if args.busy else None
    times = {"placed": [], "not placed": []}
    try:
        for r in range(args.rounds + 2):  # two warm-up rounds
            for how in ("placed", "not placed") if r % 2 else ("not placed", "placed"):
                if how == "placed":
                    workers.__dict__.pop("_place", None)  # the class's own method again
                else:
                    without_placement(workers)
                time.sleep(pause)
                start = time.perf_counter()
                net.classify(x)
                if r >= 2:
                    times[how].append(time.perf_counter() - start)
    finally:
        if busy:
            busy.kill()
            busy.wait()
    ratios = [a / b for a, b in zip(times["placed"], times["not placed"])]
    print(
        f"{args.net}: classify the 10,000 MNIST test images after a {pause} s pause, {args.rounds} rounds each"
        f"{', one core kept busy' if args.busy else ''}"
    )
    for how, values in times.items():
        print(f"{how:12} {statistics.median(values) * 1e3:8.1f} ms [{min(values) * 1e3:.1f}-{max(values) * 1e3:.1f}]")
    print(f"placed / not placed, by round: {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")


if __name__ == "__main__":
    main()
