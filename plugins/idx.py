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
from framework.download import download
from framework.files import atomic_write, is_writable_dir

IMAGES, LABELS = 3, 1  # IDX ndim: magic 0x00000803 (N, rows, cols) and 0x00000801 (N,)
_UBYTE = 0x08


def read_idx(path, ndim: int | None = None) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes; ``ndim`` (IMAGES/LABELS) checks its kind."""
    path = Path(path)
    try:
        return parse_idx(gunzip(path), ndim)
    except ValueError as e:
        raise FwError(f"{path}: {e}; delete it and download it again") from None


def gunzip(path) -> bytes:
    """The decompressed bytes of a .gz file; ValueError saying what is wrong with it."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ValueError("is missing") from None
    except EOFError:
        raise ValueError("is truncated (the gzip stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"is corrupt or not a gzip file ({e})") from None
    except OSError as e:
        raise ValueError(f"cannot be read ({e.strerror or e})") from None


def parse_idx(payload: bytes, ndim: int | None = None) -> np.ndarray:
    """Decode an IDX payload of unsigned bytes, checking its header against its length."""
    if len(payload) < 4 or payload[:2] != b"\0\0":
        raise ValueError(f"is not an IDX file (magic number {payload[:4].hex() or 'missing'})")
    if payload[2] != _UBYTE:
        raise ValueError(f"has IDX type code 0x{payload[2]:02x}; only unsigned bytes (0x08) are supported")
    if ndim is not None and payload[3] != ndim:
        kinds = {IMAGES: "images", LABELS: "labels"}
        raise ValueError(
            f"has magic number 0x{payload[:4].hex()} but 0x0000080{ndim} ({kinds.get(ndim, f'{ndim}-d')}) "
            "was expected; the file names may be swapped"
        )
    header = 4 + 4 * payload[3]
    if len(payload) < header:
        raise ValueError("is truncated inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(payload, ">u4", payload[3], 4))
    expected = header + math.prod(dims)
    if len(payload) != expected:
        raise ValueError(
            f"holds {len(payload) - header} data bytes but its header {dims} needs {expected - header} "
            "(truncated or corrupt)"
        )
    return np.frombuffer(payload, np.uint8, offset=header).reshape(dims).copy()


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
    - ``mirrors``: base URLs tried in order (``base + file_name``).
    - ``local_sources`` (optional): folders, such as a distribution package's
      ``/usr/share/datasets/...``, where a good copy is read from before
      anything is downloaded, when ``root`` has none.

    Decoded arrays are cached as ``<file>.npy`` next to the .gz files, or under
    ``$XDG_CACHE_HOME/fw/npy/`` when ``root`` is read-only, and memory-mapped
    read-only when loaded. A cache is used only if it reproduces the payload
    MD5, so a damaged one is rebuilt, never trusted. Hashing costs ~30 ms a
    run, so a passed check is remembered under ``$XDG_CACHE_HOME/fw/verified/``
    with the file's inode, size, mtime and ctime; while those are unchanged the
    hash is skipped (see ``_verified_before`` for what that does not catch).
    """

    #: MNIST's file names, which Fashion-MNIST shares.
    files: ClassVar[dict[str, tuple[str, str]]] = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    md5: ClassVar[dict[str, str]]
    mirrors: ClassVar[list[str]] = []
    local_sources: ClassVar[tuple[str, ...]] = ()

    def load_raw(self, split: str):
        if split not in self.files:
            raise FwError(
                f"dataset '{self.name}' has no split '{split}' (dataset.split); "
                f"choose one of: {', '.join(self.files)}"
            )
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

    def cache_dir(self) -> Path:
        """``root`` when writable, else a per-root folder under the user cache."""
        if is_writable_dir(self.root):
            return self.root
        key = hashlib.sha256(str(self.root.absolute()).encode()).hexdigest()[:12]
        return cache_home() / "fw" / "npy" / f"{self.folder or self.name}-{key}"

    def _array(self, file_name: str, ndim: int, split_files=()) -> np.ndarray:
        expected = self.md5[file_name]
        cache = self.cache_dir() / (file_name.removesuffix(".gz") + ".npy")
        array = _read_cache(cache, ndim, expected)
        if array is None:
            array = self._from_gz(file_name, ndim, expected, split_files)
            _write_cache(cache, array)
        return array

    def _from_gz(self, file_name, ndim, expected, split_files=()) -> np.ndarray:
        """Decode root/file_name, downloading it again if it is missing or bad."""
        path = self.root / file_name
        try:
            return _decode(path, ndim, expected)
        except ValueError as e:
            problem = f"{path} {e}"
        for folder in self.local_sources:
            local = Path(folder) / file_name
            if local.exists() and local != path:
                try:
                    return _decode(local, ndim, expected)
                except ValueError as e:
                    print(f"{self.name}: ignoring {local}: it {e}", file=sys.stderr)
        if not is_writable_dir(self.root):
            raise FwError(
                f"{problem}, and folder {self.root} is read-only; put a good copy there by hand "
                "or set dataset.root to a writable folder"
            )
        if path.exists():
            print(f"{self.name}: {problem}; downloading it again", file=sys.stderr)
        decoded = {}

        def verify(tmp):
            decoded["array"] = _decode(tmp, ndim, expected)

        urls = [base.rstrip("/") + "/" + file_name for base in self.mirrors]
        try:
            download(urls, path, verify=verify, label=f"{self.name} {file_name}")
        except FwError as e:
            others = [f for f in split_files if f != file_name and not (self.root / f).exists()]
            also = f" (this split also needs {', '.join(others)} there)" if others else ""
            raise FwError(f"{problem}; {e}{also}") from None
        return decoded["array"]


def _decode(path, ndim, expected_md5) -> np.ndarray:
    """Decode and verify; ValueError says what is wrong (structure first: it names the problem)."""
    payload = gunzip(path)
    array = parse_idx(payload, ndim)
    got = hashlib.md5(payload).hexdigest()
    if got != expected_md5:
        raise ValueError(f"has the wrong checksum (payload MD5 {got}, expected {expected_md5})")
    return array


def _read_cache(path: Path, ndim: int, expected_md5: str) -> np.ndarray | None:
    """The cached array, memory-mapped read-only, if it is exactly the verified payload; else None."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, truncated or not a .npy
        return None
    if not isinstance(array, np.ndarray):  # a .npz archive
        array.close()
        return None
    array = np.asarray(array)  # a plain read-only ndarray over the mapping, not an np.memmap
    if array.dtype != np.uint8 or array.ndim != ndim:
        return None
    if not _verified_before(path, expected_md5):
        if idx_md5(array) != expected_md5:
            return None
        _remember_verified(path, expected_md5)
    return array


def _stamp(path: Path, md5: str) -> dict:
    """What identifies this exact file: any write, rename over it or truncation changes it."""
    st = os.stat(path)
    return {"md5": md5, "size": st.st_size, "inode": st.st_ino, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:16]
    return cache_home() / "fw" / "verified" / f"{key}.json"


def _verified_before(path: Path, md5: str) -> bool:
    """True if ``path`` passed ``md5`` before and has not been touched since.

    Any change made through the file system changes the ctime (which, unlike
    the mtime, no program can set back), so a rewritten, replaced or truncated
    cache is hashed again. Not caught: bytes that rot on the disk without a
    write. The MD5 check on every run caught that too; it cost ~30 ms a run.
    """
    try:
        return json.loads(_record_path(path).read_text()) == _stamp(path, md5)
    except (OSError, ValueError):
        return False


def _remember_verified(path: Path, md5: str) -> None:
    stamp = _stamp(path, md5)
    # A file changed within its file system's timestamp tick (up to 2 s on some) could
    # keep its times; remember only files older than that, as git does ("racy git").
    if time.time_ns() - stamp["ctime_ns"] < 2_000_000_000:
        return
    try:
        atomic_write(_record_path(path), lambda f: f.write(json.dumps(stamp).encode()))
    except OSError:
        pass  # no record: the next run hashes again


def _write_cache(path: Path, array: np.ndarray) -> None:
    """Write atomically; a cache that cannot be written is skipped."""
    try:
        atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
    except OSError as e:
        print(f"fw: warning: cannot write cache {path} ({e.strerror or e}); continuing without it", file=sys.stderr)
