"""framework.safeio.download against a local HTTP server on 127.0.0.1 (never the network)."""

import hashlib
import os
from pathlib import Path

import pytest

from conftest import MirrorServer
from framework import FwError
from framework.safeio.download import download, expect_hash, gzip_payload_md5
from framework.safeio.files import ensure_writable_dir, file_hash

GOOD = b"\x1f\x8b" + bytes(range(256)) * 40  # binary, not HTML


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_good_file(mirror, tmp_path, capsys):
    url = mirror.serve("/a/f.bin", GOOD)
    dest = tmp_path / "sub" / "f.bin"  # folder is created
    assert download([url], dest, verify=expect_hash(hashlib.sha256(GOOD).hexdigest())) == dest
    assert dest.read_bytes() == GOOD
    assert leftovers(dest.parent) == []
    err = capsys.readouterr().err
    assert "downloading f.bin (10.2 kB)" in err and "received f.bin: 10.2 kB, checking it" in err  # not a TTY


def test_wrong_checksum_then_good_second_mirror(mirror, tmp_path):
    bad = mirror.serve("/m1/f.bin", GOOD[:-1] + b"X")
    good = mirror.serve("/m2/f.bin", GOOD)
    dest = tmp_path / "f.bin"
    download([bad, good], dest, verify=expect_hash(hashlib.sha256(GOOD).hexdigest()))
    assert dest.read_bytes() == GOOD
    assert mirror.hits == ["/m1/f.bin", "/m2/f.bin"]
    assert leftovers(tmp_path) == []


def test_first_good_mirror_wins(mirror, tmp_path):
    urls = [mirror.serve("/m1/f.bin", GOOD), mirror.serve("/m2/f.bin", GOOD)]
    download(urls, tmp_path / "f.bin")
    assert mirror.hits == ["/m1/f.bin"]


@pytest.mark.parametrize(
    "route, reason",
    [
        ((403, b"Forbidden", {}), "HTTP 403"),
        ((200, GOOD[:1000], {"Content-Length": str(len(GOOD))}), f"connection dropped after 1000 of {len(GOOD)} bytes"),
        ((200, b"Rate limited, try later", {"Content-Type": "text/html; charset=utf-8"}), "HTML page"),
        ((200, b"  <!DOCTYPE html><p>error</p>", {}), "HTML page"),  # HTML sent as octet-stream
    ],
    ids=["403", "dropped", "html-content-type", "html-body"],
)
def test_bad_mirror_falls_back_to_next(mirror, tmp_path, route, reason):
    mirror.routes["/bad/f.bin"] = route
    good = mirror.serve("/good/f.bin", GOOD)
    dest = tmp_path / "f.bin"
    download([mirror.base + "/bad/f.bin", good], dest)
    assert dest.read_bytes() == GOOD
    assert mirror.hits == ["/bad/f.bin", "/good/f.bin"]
    # The same mirror alone: its reason is reported.
    dest.unlink()
    with pytest.raises(FwError, match=reason):
        download([mirror.base + "/bad/f.bin"], dest)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_all_mirrors_fail_one_line_error(mirror, tmp_path):
    urls = [
        mirror.serve("/m1/f.bin", b"denied", status=403),
        mirror.serve("/m2/f.bin", GOOD[:10], Content_Length="999"),
        mirror.base + "/m3/f.bin",  # 404
    ]
    dest = tmp_path / "data" / "f.bin"
    with pytest.raises(FwError) as e:
        download(urls, dest, verify=expect_hash("0" * 64))
    msg = str(e.value)
    assert "\n" not in msg
    for url, reason in zip(urls, ["HTTP 403", "connection dropped after 10 of 999 bytes", "HTTP 404"]):
        assert f"{url} ({reason}" in msg
    assert f"put it at {dest}" in msg
    assert not dest.exists() and not dest.parent.exists(), "the folder made for the download is removed again"
    assert msg.endswith(f"put it at {dest}")


def test_failed_verify_is_reported(mirror, tmp_path):
    url = mirror.serve("/f.bin", GOOD)
    with pytest.raises(FwError, match=r"sha256 mismatch: got [0-9a-f]{64}, expected 0{64}"):
        download([url], tmp_path / "f.bin", verify=expect_hash("0" * 64))
    assert list(tmp_path.iterdir()) == []


def test_connection_refused(tmp_path):
    mirror = MirrorServer()
    url = mirror.base + "/f.bin"
    mirror.close()  # nothing listens on that port any more
    with pytest.raises(FwError, match=r"f.bin \(\[Errno \d+\] Connection refused\)"):
        download([url], tmp_path / "f.bin")


def test_keyboard_interrupt_leaves_no_part_file(mirror, tmp_path):
    url = mirror.serve("/f.bin", GOOD)
    seen = []

    def verify(tmp):
        seen.append(tmp)
        assert tmp.exists() and tmp.name.endswith(".part")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download([url], tmp_path / "f.bin", verify=verify)
    assert seen and list(tmp_path.iterdir()) == []


def test_existing_good_file_survives_a_failed_download(mirror, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old good copy")
    with pytest.raises(FwError):
        download([mirror.serve("/f.bin", b"nope", status=500)], dest)
    assert dest.read_bytes() == b"old good copy"


def test_read_only_folder_is_a_clear_error(mirror, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(FwError, match=f"folder {folder} is not writable"):
            download([mirror.serve("/f.bin", GOOD)], folder / "f.bin")
        assert mirror.hits == []  # refused before touching the network
    finally:
        folder.chmod(0o755)


def test_folder_that_is_a_file(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(FwError, match="is a file, not a folder"):
        ensure_writable_dir(tmp_path / "x")


def test_hash_helpers(tmp_path):
    import gzip

    payload = b"hello idx" * 1000
    f = tmp_path / "p.gz"
    f.write_bytes(gzip.compress(payload, mtime=0))
    assert gzip_payload_md5(f) == hashlib.md5(payload).hexdigest()
    assert file_hash(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_hash(f, "md5") == hashlib.md5(f.read_bytes()).hexdigest()
    # A re-compressed copy has other bytes but the same payload MD5.
    g = tmp_path / "q.gz"
    g.write_bytes(gzip.compress(payload, compresslevel=1, mtime=1))
    assert file_hash(g) != file_hash(f) and gzip_payload_md5(g) == gzip_payload_md5(f)


def test_progress_on_a_tty(mirror, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    download([mirror.serve("/f.bin", GOOD)], tmp_path / "f.bin")
    err = capsys.readouterr().err
    assert "\rdownloading f.bin: 100% 10.2 kB" in err and "\rreceived f.bin" in err
    assert "from http" not in err  # the start line is only for logs
    assert os.path.getsize(tmp_path / "f.bin") == len(GOOD)


def test_each_skipped_mirror_is_reported_as_it_happens(mirror, tmp_path, capsys):
    urls = [mirror.serve("/m1/f.bin", b"<html>error</html>", Content_Type="text/html"), mirror.serve("/m2/f.bin", GOOD)]
    download(urls, tmp_path / "f.bin")
    err = capsys.readouterr().err
    assert f"f.bin: {urls[0]} (" in err and "trying the next mirror" in err
