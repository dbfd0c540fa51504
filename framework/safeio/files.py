"""Writing files so that they are always whole or absent, and checking where we may write."""

import contextlib
import functools
import hashlib
import os
import re
import stat
from pathlib import Path

from ..errors import FwError

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class NotARegularFile(OSError):
    """The path is a FIFO, device, socket or folder: fw reads data only from regular files."""


def open_regular(path, *, follow_symlinks: bool = True):
    """Open ``path`` for binary reading if it is a regular file; else raise ``NotARegularFile``.

    The path is checked before it is opened, so a device is never opened at
    all, and the open descriptor again (``fstat``), so what is checked is what
    is read even if the path was swapped meanwhile. Opening is non-blocking, so
    a FIFO with no writer cannot hang the open. ``follow_symlinks=False``
    refuses a symlink (``OSError``, ELOOP).
    """
    mode = (os.stat if follow_symlinks else os.lstat)(path).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise NotARegularFile(f"{path} is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a regular file")
    nonblock = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to fear
    flags = os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise NotARegularFile(f"{path} is {kind}, not a regular file")
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_input(path, *, missing: str, needs: str):
    """``open_regular(path)`` with each failure as one line: ``missing`` when there is no file,
    ``needs`` (what fw reads) when it is a FIFO, device or folder, and the system's reason otherwise."""
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise FwError(missing) from None
    except NotARegularFile as e:
        raise FwError(f"{e}; {needs}") from None
    except OSError as e:
        raise FwError(f"{path}: cannot read it ({e.strerror or e})") from None


def open_weights(path):
    """``open_regular`` for a weights file: a FIFO, device or folder is a one-line error, never a hang."""
    try:
        return open_regular(path)
    except NotARegularFile as e:
        what = str(e).removeprefix(str(path)).strip()  # "is a FIFO, not a regular file"
        raise FwError(f"{path}: {what}; weights are read only from a regular file") from None


@functools.cache
def _host() -> str:
    """This machine, in temp file names: a folder may be shared between hosts."""
    import socket  # here, not at the top: most runs write no temp file

    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32] or "host"


_PART = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{8}\.part$")


def temp_path(dest) -> Path:
    """A unique hidden ``*.part`` sibling of ``dest``, to write and then ``os.replace``.

    The name carries this host and process id, and the ``*.part`` files that a
    killed process (``kill -9``, a power cut) left in that folder are swept first.
    (Not ``tempfile.mkstemp``: its files are 0600, too strict for shared data.)
    """
    dest = Path(dest)
    sweep_stale_parts(dest.parent)
    return dest.with_name(f".{dest.name}.{_host()}-{os.getpid()}-{os.urandom(4).hex()}.part")


def sweep_stale_parts(folder) -> list[Path]:
    """Delete the ``temp_path`` files in ``folder`` whose process on this host is gone; return them."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    swept = []
    for name in names:
        m = _PART.match(name)
        if not m or m["host"] != _host() or _alive(int(m["pid"])):
            continue
        path = Path(folder) / name
        try:
            path.unlink()
            swept.append(path)
        except OSError:
            pass  # not ours to delete, or already gone
    return swept


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but another user's
    return True


def atomic_write(path, write) -> Path:
    """Call ``write(f)`` on a binary temp file beside ``path``, then rename it into place.

    ``path`` is never seen half-written, and the temp file never outlives the
    call, even on Ctrl-C. ``OSError`` propagates: callers know how to word it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def is_writable_dir(path) -> bool:
    """True if new files may be created in ``path``, or in the folder that would hold it.

    Also honours a folder whose mode has no write bit at all, which the
    superuser could otherwise write into regardless: such a folder is read-only
    by intent (e.g. a shared data copy).
    """
    p = _nearest_existing(path)
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return p.is_dir() and bool(mode & 0o222) and os.access(p, os.W_OK | os.X_OK)


def _nearest_existing(path) -> Path:
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def ensure_writable_dir(path, *, purpose: str = "") -> Path:
    """Create ``path`` if needed; raise a one-line FwError if files cannot be written there."""
    path = Path(path)
    why = f" ({purpose})" if purpose else ""
    if path.exists() and not path.is_dir():
        raise FwError(f"{path} is a file, not a folder{why}; move it away or choose another folder")
    if not is_writable_dir(path):
        existing = _nearest_existing(path)
        where = (
            f"folder {path} is not writable"
            if existing == path.absolute()
            else (f"cannot create folder {path}: {existing} is read-only")
        )
        raise FwError(f"{where}{why}; make it writable or choose another folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FwError(
            f"cannot create folder {path}{why} ({e.strerror or e}); create it by hand or choose another folder"
        ) from e
    return path


@contextlib.contextmanager
def no_empty_new_folders(folder):
    """Whatever happens inside, the folders leading to ``folder`` that did not exist before and are
    empty after are removed again: a failed run leaves no empty ``runs/...`` behind."""
    created, folder = [], Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    try:
        yield
    finally:
        for made in created:  # innermost first
            try:
                made.rmdir()
            except OSError:
                break


def file_hash(path, algo: str = "sha256") -> str:
    """Hex digest of a file's bytes (``algo`` is any hashlib name: md5, sha256...)."""
    h = hashlib.new(algo)
    with open_regular(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


#: Folders of the kernel's own files: an output there is a device, a process's state or a setting, never fw's.
SYSTEM_FOLDERS = ("/dev", "/proc", "/sys")


def refuse_system_path(path, what):
    """An output inside /dev, /proc or /sys is refused, whoever runs fw (as root it could be written)."""
    real = os.path.realpath(path)
    for top in SYSTEM_FOLDERS:
        if real == top or real.startswith(top + os.sep):
            raise FwError(
                f"{what} {path} is inside {top}, the system's devices and settings; choose a file in your own folders"
            )


def check_writable(path: Path, what: str, overwrite: bool):
    """Refuse, before any work, an output that is a folder,
    read-only, a system path, or already there without --force."""
    refuse_system_path(path, what)
    if path.is_dir():
        raise FwError(f"{what} {path} is a folder; give a file name")
    if not is_writable_dir(path.parent):
        raise FwError(f"{what} {path}: its folder is read-only; choose a writable place")
    if path.exists() and not overwrite:
        raise FwError(f"{what} {path} already exists; add --force to replace it, or choose a new name")


def write_output(path: Path, write) -> Path:
    """``atomic_write``, with a failure as one line naming the file and what to check."""
    try:
        return atomic_write(path, write)
    except OSError as e:
        raise FwError(f"cannot write {path}: {e.strerror or e}; check that its folder is writable and has space") from e


class OutputLock:
    """Only one fw process at a time writes ``path``: an flock on a hidden file beside it.

    The lock goes with the process, so a killed run never leaves ``path``
    locked; the lock file is removed when the holder finishes.
    """

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.what = what
        self.fd = None

    def __enter__(self):
        import fcntl

        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise FwError(
                    f"another fw process (pid {pid}) is writing {self.path} ({self.what}); "
                    "wait for it to finish, or choose another path"
                ) from None
            try:  # the holder may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    @staticmethod
    def holder(path) -> str | None:
        """The pid of the process holding ``path``'s lock, or None if no process holds it."""
        import fcntl

        lock_path = Path(path).with_name(f".{Path(path).name}.lock")
        try:
            fd = os.open(lock_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        except BlockingIOError:
            return os.read(fd, 32).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        try:
            os.unlink(self.lock_path)
        finally:
            os.close(self.fd)
