"""The cache of installed entry points: used while nothing changed, never after a change."""

import sys

import pytest

from framework.plugin_system import installed
from test_plugins import make_dist


class Site:
    """A folder at the front of sys.path to install fake distributions into; counts real scans."""

    def __init__(self, folder):
        self.folder, self.scans = folder, []

    def __truediv__(self, name):
        return self.folder / name

    def install(self, *args):
        """make_dist, then date everything back: a later change cannot keep its times within one clock tick."""
        import os
        import time

        make_dist(self.folder, *args)
        old = time.time() - 100
        for path in [self.folder, *self.folder.rglob("*")]:
            os.utime(path, (old, old))


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = Site(tmp_path / "site")
    site.folder.mkdir()
    monkeypatch.syspath_prepend(str(site.folder))
    real_scan = installed.scan
    monkeypatch.setattr(installed, "scan", lambda group: site.scans.append(group) or real_scan(group))
    monkeypatch.setattr(installed, "_RACY_NS", 0)  # these files are all brand new; see test_racy...
    return site


def names(eps):
    return sorted((ep.name, ep.value, ep.dist, ep.version) for ep in eps)


def test_entry_points_come_from_the_cache_while_nothing_changes(site):
    site.install("fw_tanh", "1.2.3", {"tanh": "tanh_plugin", "cube": "cube_mod:Cube"})
    first = installed.entry_points("fw")
    assert names(first) == [("cube", "cube_mod:Cube", "fw_tanh", "1.2.3"), ("tanh", "tanh_plugin", "fw_tanh", "1.2.3")]
    assert names(installed.entry_points("fw")) == names(first)
    assert len(site.scans) == 1


def test_a_new_distribution_is_seen(site):
    site.install("fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})
    installed.entry_points("fw")
    site.install("fw_more", "0.1", {"more": "more_mod"})
    assert {ep.name for ep in installed.entry_points("fw")} == {"tanh", "more"}
    assert len(site.scans) == 2


def test_a_removed_distribution_is_gone(site):
    import shutil

    site.install("fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})
    installed.entry_points("fw")
    shutil.rmtree(site / "fw_tanh-1.2.3.dist-info")
    assert installed.entry_points("fw") == []


def test_an_entry_points_file_edited_in_place_is_read_again(site):
    site.install("fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})
    installed.entry_points("fw")
    with open(site / "fw_tanh-1.2.3.dist-info" / "entry_points.txt", "a") as f:
        f.write("cube = cube_mod\n")
    assert {ep.name for ep in installed.entry_points("fw")} == {"tanh", "cube"}


def test_racy_changes_under_two_seconds_old_are_never_cached(site, monkeypatch):
    monkeypatch.setattr(installed, "_RACY_NS", 2_000_000_000)
    site.install("fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})
    installed.entry_points("fw")
    installed.entry_points("fw")
    assert len(site.scans) == 2


def test_a_finder_that_provides_distributions_turns_the_cache_off(site, monkeypatch):
    class Finder:
        @staticmethod
        def find_spec(*args):
            return None

        @staticmethod
        def find_distributions(*args, **kwargs):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    installed.entry_points("fw")
    installed.entry_points("fw")
    assert len(site.scans) == 2


def test_a_damaged_cache_file_is_scanned_over(site):
    site.install("fw_tanh", "1.2.3", {"tanh": "tanh_plugin"})
    installed.entry_points("fw")
    installed._cache_file("fw").write_text("{not json")
    assert [ep.name for ep in installed.entry_points("fw")] == ["tanh"]
    assert len(site.scans) == 2


def test_an_entry_point_loads_what_its_value_names():
    ep = installed.EntryPoint("p", "os.path:join")
    assert ep.load() is __import__("os").path.join
    with pytest.raises(ValueError, match="not a valid entry point value"):
        installed.EntryPoint("p", "no good!").load()
