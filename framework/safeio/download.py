"""Atomic, checksummed downloads with mirror fallback (stdlib only).

A download streams into a hidden temp file next to ``dest``, is verified,
and only then ``os.replace``-d into place, so ``dest`` is either absent or
good, and no ``*.part`` file outlives the call (not even on Ctrl-C; the next
write into that folder sweeps those of a killed process, see ``files.temp_path``).

No server can hold a run or fill a disk. Each URL gets:

- ``CONNECT_TIMEOUT`` to look the host up and connect;
- ``RESPONSE_TIMEOUT`` from its start to the response headers, redirects included;
- then, for the body, every ``RATE_WINDOW`` seconds must bring at least
  ``MIN_RATE * RATE_WINDOW`` bytes (a stalled or dripping server fails after
  ``RATE_WINDOW``);
- at most ``max_bytes`` (the file's expected size, or ``MAX_BYTES``): a larger
  Content-Length is refused before reading, a longer body when it passes the cap;
- a body that says where it ends (Content-Length, or chunked encoding), all of
  it, or nothing: a dropped connection is never taken for the whole file.

So an unreachable mirror costs at most ``RESPONSE_TIMEOUT`` seconds, and a
list of them ``len(urls) * RESPONSE_TIMEOUT``. The limits are module
constants so that tests can shrink them.
"""

import hashlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

from ..errors import FwError
from .files import ensure_writable_dir, file_hash, no_empty_new_folders, temp_path

CONNECT_TIMEOUT = 5.0  # seconds: name lookup and TCP connect, all of a host's addresses together
RESPONSE_TIMEOUT = 9.0  # seconds: from a URL's start to its response headers (3 mirrors: 27 s in all)
RATE_WINDOW = 30.0  # seconds
MIN_RATE = 10_000  # bytes per second, averaged over each RATE_WINDOW
MAX_BYTES = 256 << 20  # the cap when the caller does not know the file's size

_CHUNK = 1 << 20
_USER_AGENT = "fw-download/0.1 (+python-urllib)"


class DownloadError(FwError):
    """Every URL failed; ``attempts`` holds one ``"URL (reason)"`` per URL."""

    def __init__(self, message, attempts):
        super().__init__(message)
        self.attempts = attempts


def download(urls, dest, *, verify=None, max_bytes: int | None = None, label: str | None = None) -> Path:
    """Fetch the first of ``urls`` that works into ``dest`` and return ``dest``.

    ``verify(tmp_path)`` may raise ``ValueError(reason)`` to reject a file;
    like an HTTP error, a dropped connection, a too slow or too large body or
    an HTML error page, that makes the next URL be tried. ``max_bytes``
    (default ``MAX_BYTES``) caps the body. When every URL fails, raise a
    one-line ``DownloadError`` listing each URL with its reason and the path to
    put the file by hand.
    """
    import http.client  # here, not at the top: most runs never download (see docs/performance.md)

    dest = Path(dest)
    label = label or dest.name
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    with no_empty_new_folders(dest.parent):  # a failed download leaves no empty folder behind
        ensure_writable_dir(dest.parent, purpose=f"to download {label}")
        tried = []
        for url in urls:
            tmp = temp_path(dest)
            try:
                out = open(tmp, "xb")  # noqa: SIM115 - closed by the with below; opened apart for its own message
            except OSError as e:
                raise FwError(
                    f"cannot write in folder {dest.parent} to download {label} ({e.strerror or e}); "
                    "make it writable or choose another folder"
                ) from None
            try:
                with out:
                    _fetch(url, out, max_bytes, label)
                    out.flush()
                    os.fsync(out.fileno())
                if verify is not None:
                    verify(Path(tmp))
                os.replace(tmp, dest)
                return dest
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
                tried.append(f"{url} ({_reason(e)})")
                if url != urls[-1]:
                    print(f"{label}: {tried[-1]}; trying the next mirror", file=sys.stderr, flush=True)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        raise DownloadError(
            f"could not download {label}: tried {', '.join(tried) or 'no URLs'}; "
            f"download it by hand and put it at {dest}",
            tried,
        )


def _mb(n):
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


class TooSlow(TimeoutError):
    """A URL missed one of the deadlines in the module docstring."""


def _fetch(url, out, max_bytes, label):
    """Stream ``url`` into the open file ``out``; raise ValueError if it is not the file."""
    import urllib.request

    deadline = _Deadline(RESPONSE_TIMEOUT, f"no response within {RESPONSE_TIMEOUT:g} s")
    done = 0
    progress = None
    try:
        req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with _opener(deadline).open(req) as resp:
            if "text/html" in (resp.headers.get("Content-Type") or "").lower():
                raise ValueError("got an HTML page, not the file")
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is None and not resp.chunked:
                raise ValueError("the server does not say where the file ends (no Content-Length)")
            if total is not None and total > max_bytes:
                raise ValueError(f"the file is {_mb(total)}, more than the {_mb(max_bytes)} expected at most")
            progress = _Progress(label, url, total)
            window = MIN_RATE * RATE_WINDOW
            deadline.set(RATE_WINDOW, f"too slow: less than {_mb(window)} in {RATE_WINDOW:g} s")
            in_window = 0
            while chunk := resp.read1(min(_CHUNK, max_bytes + 1 - done)):
                if done == 0 and chunk.lstrip()[:1] == b"<":
                    raise ValueError("got an HTML page, not the file")
                out.write(chunk)
                done += len(chunk)
                if done > max_bytes:
                    raise ValueError(f"the file is more than the {_mb(max_bytes)} expected at most")
                in_window += len(chunk)
                if in_window >= window:
                    deadline.set(RATE_WINDOW, deadline.why)
                    in_window = 0
                progress.update(done)
            if total is not None and done != total:
                raise ValueError(f"connection dropped after {done} of {total} bytes")
    except BaseException as e:
        deadline.close()
        if progress is not None:
            progress.finish(done, ok=False)
        if deadline.fired and not isinstance(e, KeyboardInterrupt):
            raise TooSlow(deadline.why) from None  # the read it cut short failed in whatever way
        raise
    deadline.close()  # the whole body is in, however late the deadline passed
    progress.finish(done)


class _Deadline:
    """Shuts the sockets of one URL's connections when a deadline passes.

    A blocked read then returns at once, wherever it is: in the TLS handshake,
    a proxy's reply, the headers (which http.client reads line by line, so a
    server that drips them would never time out) or the body.
    """

    def __init__(self, seconds, why):
        self._cond = threading.Condition()
        self._sockets = []
        self._closed = self.fired = False
        self.set(seconds, why)
        threading.Thread(target=self._watch, name="fw-download-deadline", daemon=True).start()

    def set(self, seconds, why):
        with self._cond:
            self._at, self.why = time.monotonic() + seconds, why
            self._cond.notify()

    def remaining(self) -> float:
        with self._cond:
            return self._at - time.monotonic()

    def watch(self, sock):
        with self._cond:
            dup = sock.dup()  # survives the TLS wrapper detaching ``sock``; shutdown acts on the connection
            self._sockets.append(dup)
            if self.fired:
                _shutdown(dup)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify()
            for s in self._sockets:
                s.close()
            self._sockets = []

    def _watch(self):
        with self._cond:
            while not self._closed:
                left = self._at - time.monotonic()
                if left <= 0:
                    self.fired = True
                    for s in self._sockets:
                        _shutdown(s)
                    return
                self._cond.wait(left)


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already closed


def _opener(deadline):
    """urllib's opener (proxies, redirects, HTTP errors) with connections that obey ``deadline``."""
    import http.client
    import urllib.request

    def connection_class(base):
        class Connection(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._create_connection = lambda address, *_: _connect(address, deadline)

        return Connection

    http_class = connection_class(http.client.HTTPConnection)
    https_class = connection_class(http.client.HTTPSConnection)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(http_class, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(https_class, req, context=self._context)

    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _connect(address, deadline) -> socket.socket:
    """A TCP connection to ``address`` within CONNECT_TIMEOUT, its socket watched by ``deadline``.

    The deadline cannot cut a lookup or a connect short, so both get at most
    what is left of it.
    """
    host, port = address
    budget = min(CONNECT_TIMEOUT, deadline.remaining())
    if budget <= 0:
        raise TooSlow(deadline.why)
    end = time.monotonic() + budget
    infos = _resolve(host, port, budget)
    error = None
    for family, kind, proto, _, addr in infos:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(addr)
        except OSError as e:
            sock.close()
            error = e
            continue
        # A backstop only: the deadline cuts every read shorter than this.
        sock.settimeout(RESPONSE_TIMEOUT + RATE_WINDOW)
        deadline.watch(sock)
        return sock
    if isinstance(error, TimeoutError) or error is None:
        raise TooSlow(f"no connection within {budget:.3g} s")
    raise error


def _resolve(host, port, timeout):
    """``getaddrinfo`` within ``timeout``: the resolver's own timeouts can add up to minutes."""
    result = []

    def lookup():
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as e:
            result.append(e)

    thread = threading.Thread(target=lookup, name="fw-download-lookup", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        raise TooSlow(f"no answer looking up {host} within {timeout:.3g} s")
    if isinstance(result[0], OSError):
        raise result[0]
    return result[0]


def _reason(e: BaseException) -> str:
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}".strip()
    if isinstance(e, urllib.error.URLError):
        e = e.reason  # the socket error, or a plain string
    if isinstance(e, TimeoutError) and not isinstance(e, TooSlow):
        return f"no data for {RESPONSE_TIMEOUT + RATE_WINDOW:g} s"  # the socket's backstop timeout
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
        if self.tty and (now - self.last > 0.1 or done == self.total):
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
    import gzip

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


def expect_loadable(load):
    """A ``verify`` for a file with no checksum: ``load(tmp_path)`` must read it without an FwError."""

    def verify(path):
        try:
            load(path)
        except FwError as e:
            text = " ".join(str(e).replace(str(path), "the downloaded file").split())
            raise ValueError(f"not a file fw can read: {text[:300]}") from None

    return verify
