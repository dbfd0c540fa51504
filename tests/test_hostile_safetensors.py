"""Hostile .safetensors files, round four: each ends in one line, quickly, whatever its header holds."""

import signal
from contextlib import contextmanager

import pytest

from test_cli import fw, one_line_error

pytestmark = pytest.mark.hostile


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


@contextmanager
def within(seconds):
    """Raise TimeoutError in the test if the block runs longer than ``seconds`` (a hang fails, not stalls, the test)."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_header_of_300000_names_with_one_repeated_is_refused_at_once(capsys, tmp_path):
    """3.5 MB of header: a tensor entry with 300,000 extra keys, the last one a repeat. The search for the
    repeated name was quadratic (over 60 s); now it is one pass."""
    keys = ",".join(f'"k{k}":0' for k in range(300_000))
    header = ('{"0.W":{"dtype":"F32","shape":[1],"data_offsets":[0,4],' + keys + ',"k299999":0}}').encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    assert 3_000_000 < path.stat().st_size < 4 << 20
    with within(15):
        result = fw(capsys, "convert-weights", path, tmp_path / "w.npz")
    one_line_error(*result, str(path), "the name 'k299999' appears twice")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_a_header_of_300000_tensors_is_refused_at_once(capsys, tmp_path):
    header = ("{" + ",".join(f'"{k}.W":{{}}' for k in range(300_000)) + "}").encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with within(15):
        result = fw(capsys, "convert-weights", path, tmp_path / "w.npz")
    one_line_error(*result, str(path), "names 300,000 tensors; fw reads at most 10,000")
