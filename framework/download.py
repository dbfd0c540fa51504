"""Atomic, checksummed downloads with mirror fallback (stdlib only).

A download streams into a hidden temp file next to ``dest``, is verified,
and only then ``os.replace``-d into place, so ``dest`` is either absent or
good, and no ``*.part`` file outlives the call (not even on Ctrl-C).
"""

import gzip
import hashlib
import os
import sys
import time
from pathlib import Path

from .errors import FwError
from .files import ensure_writable_dir, file_hash, temp_path

_CHUNK = 1 << 20
_USER_AGENT = "fw-download/0.1 (+python-urllib)"


def download(urls, dest, *, verify=None, timeout: float = 30, label: str | None = None) -> Path:
    """Fetch the first of ``urls`` that works into ``dest`` and return ``dest``.

    ``verify(tmp_path)`` may raise ``ValueError(reason)`` to reject a file;
    like an HTTP error, a dropped connection or an HTML error page, that makes
    the next URL be tried. When every URL fails, raise a one-line ``FwError``
    listing each URL with its reason and the path to put the file by hand.
    """
    import http.client  # here, not at the top: most runs never download (see README, Performance)

    dest = Path(dest)
    label = label or dest.name
    created = _missing_folders(dest.parent)
    ensure_writable_dir(dest.parent, purpose=f"to download {label}")
    tried = []
    for url in urls:
        tmp = temp_path(dest)
        try:
            out = open(tmp, "xb")
        except OSError as e:
            raise FwError(
                f"cannot write in folder {dest.parent} to download {label} ({e.strerror or e}); "
                "make it writable or choose another folder"
            ) from None
        try:
            with out:
                _fetch(url, out, timeout, label)
                out.flush()
                os.fsync(out.fileno())
            if verify is not None:
                verify(Path(tmp))
            os.replace(tmp, dest)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
            tried.append(f"{url} ({_reason(e, timeout)})")
            if url != urls[-1]:
                print(f"{label}: {tried[-1]}; trying the next mirror", file=sys.stderr, flush=True)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    for folder in reversed(created):  # leave no empty folders behind a failed download
        try:
            folder.rmdir()
        except OSError:
            break
    raise FwError(
        f"could not download {label}: tried {', '.join(tried) or 'no URLs'}; "
        f"download it by hand and put it at {dest}"
    )


def _missing_folders(folder: Path) -> list[Path]:
    """The folders (outermost first) that creating ``folder`` would make."""
    missing = []
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def _mb(n):
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _fetch(url, out, timeout, label):
    """Stream ``url`` into the open file ``out``; raise ValueError if it is not the file."""
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if "text/html" in (resp.headers.get("Content-Type") or "").lower():
            raise ValueError("got an HTML page, not the file")
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        progress = _Progress(label, url, total)
        done = 0
        try:
            while chunk := resp.read(_CHUNK):
                if done == 0 and chunk.lstrip()[:1] == b"<":
                    raise ValueError("got an HTML page, not the file")
                out.write(chunk)
                done += len(chunk)
                progress.update(done)
            if total is not None and done != total:
                raise ValueError(f"connection dropped after {done} of {total} bytes")
        except BaseException:
            progress.finish(done, ok=False)
            raise
        progress.finish(done)


def _reason(e: BaseException, timeout: float) -> str:
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}".strip()
    if isinstance(e, urllib.error.URLError):
        e = e.reason  # the socket error, or a plain string
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout:g}s"
    return " ".join(str(e).split()) or type(e).__name__  # keep the final message on one line


class _Progress:
    """Percent and MB on stderr: ``\\r`` updates on a TTY, else a start and a done line."""

    def __init__(self, label, url, total):
        self.label, self.total = label, total
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        size = f" ({_mb(total)})" if total else ""
        if not self.tty:
            print(f"downloading {label}{size} from {url}", file=sys.stderr, flush=True)

    def update(self, done):
        now = time.monotonic()
        if self.tty and now - self.last > 0.1:
            self.last = now
            pct = f"{100 * done / self.total:3.0f}% " if self.total else ""
            sys.stderr.write(f"\rdownloading {self.label}: {pct}{_mb(done)}")
            sys.stderr.flush()

    def finish(self, done, ok=True):
        if not ok:  # the caller reports the reason; just end a half-drawn \r line
            if self.tty and self.last:
                print(file=sys.stderr, flush=True)
            return
        line = f"received {self.label}: {_mb(done)}, checking it"
        print(f"\r{line}{' ' * 10}" if self.tty else line, file=sys.stderr, flush=True)


def gzip_payload_md5(path) -> str:
    """MD5 of a .gz file's decompressed bytes: stable across re-compressed copies.

    A truncated or corrupt gzip raises ``gzip.BadGzipFile``, ``EOFError`` or
    ``zlib.error``.
    """
    h = hashlib.md5()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def expect_hash(expected: str, algo: str = "sha256"):
    """A ``verify`` callable for ``download`` that checks the file's hash."""
    expected = expected.lower()

    def verify(path):
        got = file_hash(path, algo)
        if got != expected:
            raise ValueError(f"{algo} mismatch: got {got}, expected {expected}")

    return verify
