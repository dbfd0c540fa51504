"""The memory budget: what a network may ask for, checked from its shapes before anything is allocated.

A layer of a million units, or a convolution padded by ten thousand, would
otherwise ask numpy for gigabytes in one allocation and end in a MemoryError,
or swap for minutes. The budget is 80% of the memory this process can still
get: the least of the machine's available memory, the cgroup's limit and the
address-space limit (``ulimit -v``). ``FW_MEMORY_BUDGET`` (``4GiB``, ``500MB``,
a number of bytes) sets another.
"""

import os
import re

from ..errors import FwError

FRACTION = 0.8
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1e3,
    "KB": 1e3,
    "M": 1e6,
    "MB": 1e6,
    "G": 1e9,
    "GB": 1e9,
    "T": 1e12,
    "TB": 1e12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}


def budget() -> tuple[int, str]:
    """``(bytes, where it comes from)``."""
    text = os.environ.get("FW_MEMORY_BUDGET", "").strip()
    if text:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text)
        if not m or m.group(2).upper() not in _UNITS:
            raise FwError(f"FW_MEMORY_BUDGET={text[:40]!r} is not a size; write it like 4GiB, 500MB or 2000000000")
        return int(float(m.group(1)) * _UNITS[m.group(2).upper()]), f"FW_MEMORY_BUDGET={text}"
    limits = [n for n in (_available(), _cgroup_room(), _address_space_room()) if n is not None]
    if not limits:
        return 1 << 62, "no limit known"
    return int(
        FRACTION * min(limits)
    ), f"{FRACTION:.0%} of the memory this process can get; FW_MEMORY_BUDGET=SIZE sets another"


def check(nbytes, what, fix=""):
    """Raise a one-line FwError if ``what`` (e.g. "its weights of shape (784, 1000000)") needs more than the budget."""
    limit, source = budget()
    if nbytes > limit:
        raise FwError(
            f"{what} would take {size(nbytes)}, more than fw's memory budget of {size(limit)} ({source}){fix}"
        )


def size(n) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _available():
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_room():
    """A cgroup v2 memory limit, less what the group already uses."""
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as f:
            limit = f.read().strip()
        if limit == b"max":
            return None
        with open("/sys/fs/cgroup/memory.current", "rb") as f:
            return max(0, int(limit) - int(f.read()))
    except (OSError, ValueError):
        return None


def _address_space_room():
    """``ulimit -v`` less the address space already taken."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", "rb") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return max(0, soft - used)
    except (ImportError, OSError, ValueError, IndexError):
        return None
