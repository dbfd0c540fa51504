"""IDX files (the MNIST format) and a Dataset base for MNIST-like datasets.

A subclass declares only data (file names, payload MD5s, mirrors, classes);
``IdxDataset.load_raw`` finds, verifies, re-downloads and caches the files.
"""

import gzip
import hashlib
import json
import math
import os
import sys
import time
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from framework import Dataset, FwError
from framework.data.dataset import default_data_dir
from framework.safeio.files import NotARegularFile, atomic_write, is_writable_dir, open_regular

IMAGES, LABELS = 3, 1  # IDX ndim: magic 0x00000803 (N, rows, cols) and 0x00000801 (N,)
_UBYTE = 0x08
_CHUNK = 1 << 20

#: Decompressed sizes of MNIST's files (Fashion-MNIST's share the names and sizes).
MNIST_SIZES = {
    "train-images-idx3-ubyte.gz": 47_040_016,
    "train-labels-idx1-ubyte.gz": 60_008,
    "t10k-images-idx3-ubyte.gz": 7_840_016,
    "t10k-labels-idx1-ubyte.gz": 10_008,
}
#: The most a file of undeclared size may decompress to.
MAX_PAYLOAD = 1 << 30


class OtherData(ValueError):
    """A readable IDX file that is not the one declared: its size or its checksum differs."""


def read_idx(path, ndim: int | None = None, size: int | None = None) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes; ``ndim`` (IMAGES/LABELS) checks its kind.

    ``size`` is the decompressed size the file must have (else its header's
    own, up to ``MAX_PAYLOAD``).
    """
    path = Path(path)
    try:
        return _decode(path, ndim, None, size)
    except ValueError as e:
        raise FwError(f"{path}: {e}; delete it and download it again") from None


def _decode(path, ndim, expected_md5=None, size=None) -> np.ndarray:
    """Decompress, decode and hash ``path`` in one stream; ValueError says what is wrong.

    Memory stays at the decoded array's size, whatever the file holds: its
    header must give ``size`` bytes (or at most ``MAX_PAYLOAD``) before the
    array is allocated, and decompression stops one byte past that.
    ``NotARegularFile`` propagates: a FIFO or device is not a bad download.
    """
    try:
        with open_regular(path) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as f:
            return _read_payload(f, ndim, expected_md5, size)
    except NotARegularFile:
        raise
    except FileNotFoundError:
        raise ValueError("is missing") from None
    except EOFError:
        raise ValueError("is truncated (the gzip stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"is corrupt or not a gzip file ({e})") from None
    except OSError as e:
        raise ValueError(f"cannot be read ({e.strerror or e})") from None


def _read_payload(f, ndim, expected_md5, size) -> np.ndarray:
    """Decode an IDX payload of unsigned bytes from the stream ``f``, checking its header first."""
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\0\0":
        raise ValueError(f"is not an IDX file (magic number {head.hex() or 'missing'})")
    if head[2] != _UBYTE:
        raise ValueError(f"has IDX type code 0x{head[2]:02x}; only unsigned bytes (0x08) are supported")
    if ndim is not None and head[3] != ndim:
        kinds = {IMAGES: "images", LABELS: "labels"}
        raise ValueError(
            f"has magic number 0x{head.hex()} but 0x0000080{ndim} ({kinds.get(ndim, f'{ndim}-d')}) "
            "was expected; the file names may be swapped"
        )
    dims_bytes = f.read(4 * head[3])
    if len(dims_bytes) < 4 * head[3]:
        raise ValueError("is truncated inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(dims_bytes, ">u4"))
    header, n = 4 + len(dims_bytes), math.prod(dims)
    if size is not None and header + n != size:
        raise OtherData(
            f"is a readable IDX file, but its header {dims} makes {header + n} bytes, not the {size} expected"
        )
    if size is None and header + n > MAX_PAYLOAD:
        raise ValueError(f"has the header {dims}, {header + n} bytes in all, more than fw reads ({MAX_PAYLOAD})")
    h = hashlib.md5(head + dims_bytes)
    array = np.empty(n, np.uint8)
    view, got = memoryview(array), 0
    while got < n and (chunk := f.read(min(_CHUNK, n - got))):
        view[got : got + len(chunk)] = chunk
        h.update(chunk)
        got += len(chunk)
    if got < n:
        raise ValueError(f"holds {got} data bytes but its header {dims} needs {n} (truncated or corrupt)")
    if f.read(1):
        raise ValueError(f"holds more than the {n} data bytes its header {dims} needs (corrupt)")
    if expected_md5 is not None and (digest := h.hexdigest()) != expected_md5:
        raise OtherData(
            f"is a readable IDX file, but with the wrong checksum (payload MD5 {digest}, expected {expected_md5})"
        )
    return array.reshape(dims)


def idx_md5(array: np.ndarray) -> str:
    """MD5 of the IDX payload that ``array`` came from (header rebuilt from its shape)."""
    h = hashlib.md5(bytes([0, 0, _UBYTE, array.ndim]) + np.array(array.shape, ">u4").tobytes())
    h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


class IdxDataset(Dataset):
    """A Dataset stored as gzipped IDX files, one images and one labels file per split.

    Subclasses set ``name``, ``folder``, ``num_classes``, ``class_names`` and:

    - ``files``: ``{"train": (images_gz, labels_gz), "test": (...)}``; MNIST's names by default
    - ``md5``: ``{file_name: MD5 of its decompressed payload}``; verifying the
      payload accepts any re-compressed copy of the same bytes.
    - ``sizes``: ``{file_name: decompressed bytes}``; MNIST's by default. A
      file is read only up to its size, so a gzip bomb costs no more memory
      than the real file, and its download is capped near that size. A file
      not listed may decompress to its IDX header's size, up to ``MAX_PAYLOAD``.
    - ``mirrors``: base URLs tried in order (``base + file_name``).
    - ``local_sources`` (optional): folders, such as a distribution package's
      ``/usr/share/datasets/...``, where a good copy is read from before
      anything is downloaded, when ``root`` has none.

    Only regular files are read (a FIFO or device at a data path is an error,
    not a hang). Decoded arrays are cached as ``<file>.npy`` under
    ``$XDG_CACHE_HOME/fw/npy/<folder>-<hash of root>/``, never in ``root``
    (a dataset folder is the user's, and may be shared), and memory-mapped
    read-only when loaded. A cache is used only if it reproduces the payload
    MD5, so a damaged one is rebuilt, never trusted. Hashing is a large part
    of a warm run (docs/performance.md), so a passed check is remembered under ``$XDG_CACHE_HOME/fw/verified/``
    with the file's inode, size, mtime and ctime; while those are unchanged the
    hash is skipped (see ``_verified_before`` for what that does not catch).
    """

    #: MNIST's file names, which Fashion-MNIST shares.
    files: ClassVar[dict[str, tuple[str, str]]] = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    md5: ClassVar[dict[str, str]]
    sizes: ClassVar[dict[str, int]] = MNIST_SIZES
    mirrors: ClassVar[list[str]] = []
    local_sources: ClassVar[tuple[str, ...]] = ()

    def load_raw(self, split: str):
        if split not in self.files:
            raise FwError(
                f"dataset '{self.name}' has no split '{split}' (dataset.split); choose one of: {', '.join(self.files)}"
            )
        self._check_root()
        images_gz, labels_gz = self.files[split]
        files = self.files[split]
        images, labels = self._array(images_gz, IMAGES, files), self._array(labels_gz, LABELS, files)
        if len(images) != len(labels) or (len(labels) and labels.max() >= self.num_classes):
            raise FwError(
                f"{self.root}: {images_gz} has {len(images)} images and {labels_gz} {len(labels)} labels "
                f"(max {labels.max(initial=0)}) for {self.num_classes} classes; the '{self.name}' "
                "dataset declaration does not match its files"
            )
        return images, labels

    def _check_root(self):
        if self.root.exists() and not self.root.is_dir():
            raise FwError(
                f"dataset.root {self.root} is a file, not a folder; set dataset.root to the folder holding the data"
            )

    def cache_dir(self) -> Path:
        """This root's folder under the user cache: ``$XDG_CACHE_HOME/fw/npy/<folder>-<hash>``.

        The hash is of the root's real path, so one folder has one cache however it is spelt.
        """
        key = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        return cache_home() / "fw" / "npy" / f"{self.folder or self.name}-{key}"

    def _array(self, file_name: str, ndim: int, split_files=()) -> np.ndarray:
        expected, size = self.md5[file_name], self.sizes.get(file_name)
        cache = self.cache_dir() / (file_name.removesuffix(".gz") + ".npy")
        source = self.root / file_name
        array = _read_cache(cache, ndim, expected, size, _source_stamp(source))
        if array is None:
            array = self._from_gz(file_name, ndim, expected, split_files)
            _write_cache(cache, array, _source_stamp(source))
        return array

    def _from_gz(self, file_name, ndim, expected, split_files=()) -> np.ndarray:
        """Decode root/file_name; only where the folder has no such file may a local source or a download stand in.

        A file that is there is the user's: if it fails its check, that is an
        error naming it, never a silent swap for fw's own copy.
        """
        path, size = self.root / file_name, self.sizes.get(file_name)
        if os.path.lexists(path):
            try:
                return _decode(path, ndim, expected, size)
            except NotARegularFile as e:
                raise FwError(
                    f"{e}: fw reads data only from regular files; remove it, or set dataset.root to another folder"
                ) from None
            except ValueError as e:
                raise FwError(self._bad_file(path, e)) from None
        hint = self._data_dir_hint(file_name)
        if hint and (default_data_dir() / file_name).is_file():
            raise FwError(f"{path} is missing; {hint}")  # the user's copy is right there: not a local source's
        hint = f"; {hint}" if hint else ""
        for folder in self.local_sources:
            local = Path(folder) / file_name
            if local.exists() and local != path:
                try:
                    return _decode(local, ndim, expected, size)
                except (ValueError, NotARegularFile) as e:
                    print(
                        f"{self.name}: ignoring {local}: {e if isinstance(e, OSError) else f'it {e}'}", file=sys.stderr
                    )
        problem = f"{path} is missing"
        if not is_writable_dir(self.root if self.root.exists() else self.root.parent):
            raise FwError(
                f"{problem}, and folder {self.root} is read-only; put a good copy there by hand "
                f"or set dataset.root to a writable folder{hint}"
            )
        return self._download(path, file_name, ndim, expected, size, split_files, problem, hint)

    def _bad_file(self, path, e) -> str:
        """One line for a file in the folder that fails its check: what, and the two ways out."""
        fix = (
            "delete it to use fw's own copy"
            if any((Path(f) / path.name).is_file() for f in self.local_sources)
            else ("delete it and fw downloads a fresh copy")
        )
        own = (
            f"; if these are your own data in IDX files, they are not '{self.name}': load them with the arrays dataset"
            if isinstance(e, OtherData)
            else ""
        )
        return f"{path} {e}, so it is not {self.name}'s {path.name}; {fix}, or put a good copy there{own}"

    def _download(self, path, file_name, ndim, expected, size, split_files, problem, hint) -> np.ndarray:
        decoded = {}

        def verify(tmp):
            decoded["array"] = _decode(tmp, ndim, expected, size)

        urls = [base.rstrip("/") + "/" + file_name for base in self.mirrors]
        # A gzip stream is at most a little larger than what it holds (stored blocks, headers).
        cap = None if size is None else size + size // 100 + (1 << 16)
        from framework.safeio.download import DownloadError, download  # here: most runs never download

        try:
            download(urls, path, verify=verify, max_bytes=cap, label=f"{self.name} {file_name}")
        except DownloadError as e:
            others = [f for f in split_files if f != file_name and not (self.root / f).exists()]
            also = f" (this split also needs {', '.join(others)} there)" if others else ""
            looked = " and ".join(str(p) for p in [self.root, *map(Path, self.local_sources)])
            folder = self.folder or self.name
            raise FwError(
                f"{problem}; could not download it: tried {', '.join(e.attempts) or 'no URLs'}; fw looked in {looked}; "
                f"to use a copy you have, put it at {path}{also}, or run with dataset.root=FOLDER (the folder "
                f"holding it) or FW_DATA_DIR=FOLDER (the folder holding {folder}/){hint}"
            ) from None
        return decoded["array"]

    def _data_dir_hint(self, file_name) -> str:
        """Say so when FW_DATA_DIR names this dataset's own folder rather than the one holding it."""
        env, folder = os.environ.get("FW_DATA_DIR"), self.folder or self.name
        data_dir = default_data_dir()
        if not env or self.root.absolute() != data_dir / folder:
            return ""
        if not ((data_dir / file_name).is_file() or data_dir.name == folder):
            return ""
        return (
            f"FW_DATA_DIR={env} looks like the {folder} folder itself, but fw looks in {self.root} "
            f"(FW_DATA_DIR/{folder}/); set FW_DATA_DIR={data_dir.parent} or dataset.root={data_dir}"
        )


def _source_stamp(path: Path) -> dict | None:
    """What identifies the dataset folder's file a cache was decoded from; None where there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"size": st.st_size, "inode": st.st_ino, "mtime_ns": st.st_mtime_ns}


def _source_record(cache: Path) -> Path:
    """Where the stamp of the file a cache was decoded from is kept (beside the verified records)."""
    key = hashlib.sha256(str(Path(cache).absolute()).encode()).hexdigest()[:16]
    return cache_home() / "fw" / "sources" / f"{key}.json"


def _read_cache(path: Path, ndim: int, expected_md5: str, size: int | None = None, source=None) -> np.ndarray | None:
    """The cached array, memory-mapped read-only, if it is exactly the verified payload; else None.

    The file is opened once, refusing a symlink, a FIFO or a device; the
    checks, the verified stamp and the mapping all come from that one open
    descriptor, so the path cannot be swapped between checking and reading.
    ``source`` is the dataset folder's file as it is now (None: there is
    none, and the verified payload stands in, as fw's own copy would): a
    cache decoded from another file, or from fw's own copy before the user
    put a file there, is not used.
    """
    if source is not None:
        try:
            with open_regular(_source_record(path), follow_symlinks=False) as f:
                if json.loads(f.read(4096)) != {"source": source}:
                    return None
        except (OSError, ValueError):
            return None
    try:
        f = open_regular(path, follow_symlinks=False)
    except OSError:  # missing, a symlink, not a regular file
        return None
    with f:
        try:
            version = np.lib.format.read_magic(f)
            if version != (1, 0):  # what np.save writes for these arrays
                return None
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
            offset, st = f.tell(), os.fstat(f.fileno())
        except (OSError, ValueError, EOFError):  # truncated or not a .npy
            return None
        n = math.prod(shape)
        if dtype != np.uint8 or len(shape) != ndim or fortran_order or st.st_size != offset + n:
            return None
        if size is not None and 4 + 4 * ndim + n != size:
            return None
        if n == 0:
            return None  # nothing to map; the .gz is cheap to decode
        array = np.asarray(np.memmap(f, np.uint8, "r", offset, shape))  # a plain read-only ndarray
    stamp = _stamp(st, expected_md5)
    if not _verified_before(path, stamp):
        if idx_md5(array) != expected_md5:
            return None
        _remember_verified(path, stamp)
    return array


def _stamp(st: os.stat_result, md5: str) -> dict:
    """What identifies this exact file: any write, rename over it or truncation changes it."""
    return {"md5": md5, "size": st.st_size, "inode": st.st_ino, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:16]
    return cache_home() / "fw" / "verified" / f"{key}.json"


def _verified_before(path: Path, stamp: dict) -> bool:
    """True if the file ``stamp`` describes passed its MD5 before, and has not been touched since.

    Any change made through the file system changes the ctime (which, unlike
    the mtime, no program can set back), so a rewritten, replaced or truncated
    cache is hashed again. Not caught: bytes that rot on the disk without a
    write. The MD5 check on every run caught that too, at a cost on every run.
    """
    try:
        with open_regular(_record_path(path), follow_symlinks=False) as f:
            return json.loads(f.read(4096)) == stamp
    except (OSError, ValueError):
        return False


def _remember_verified(path: Path, stamp: dict) -> None:
    # A file changed within its file system's timestamp tick (up to 2 s on some) could
    # keep its times; remember only files older than that, as git does ("racy git").
    if time.time_ns() - stamp["ctime_ns"] < 2_000_000_000:
        return
    try:
        atomic_write(_record_path(path), lambda f: f.write(json.dumps(stamp).encode()))
    except OSError:
        pass  # no record: the next run hashes again


def _write_cache(path: Path, array: np.ndarray, source=None) -> None:
    """Write atomically, then the record of the file it came from; a cache that cannot be written is skipped."""
    try:
        atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
        atomic_write(_source_record(path), lambda f: f.write(json.dumps({"source": source}).encode()))
    except OSError as e:
        print(f"fw: warning: cannot write cache {path} ({e.strerror or e}); continuing without it", file=sys.stderr)
