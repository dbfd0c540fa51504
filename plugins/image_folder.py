"""The ``image_folder`` dataset: one subfolder of images per class (torchvision's ImageFolder).

The images are decoded once and cached as a ``.npy`` under
``$XDG_CACHE_HOME/fw/images/``, keyed by the files' names, sizes and times and
by ``size`` and ``color``, so any change to the folder rebuilds it.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from framework import FwError, hookimpl

from .idx import cache_home
from .imaging import EXTENSIONS, image_array
from .own_data import OwnDataset, split_parts

COLORS = ("rgb", "grayscale")
DECODING = (
    2  # part of the cache key: images cached by an older decoding (16-bit clipped, EXIF ignored) are decoded again
)


class ImageFolder(OwnDataset):
    """``path/<class>/<image>``, or ``path/train/<class>/...`` and ``path/test/<class>/...``.

    The folder names, sorted, are the classes; every image is resized to
    ``size`` (height, width) and read as ``color``: examples are uint8
    (C, H, W), C=3 for rgb and 1 for grayscale.
    """

    name = "image_folder"
    pixels = True

    def __init__(self, path=None, size=(64, 64), color="rgb", test_fraction=0.2, seed=0):
        self._common(path, test_fraction, seed, "a folder with one subfolder of images per class")
        if not (
            isinstance(size, list | tuple)
            and len(size) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 4096 for n in size)
        ):
            raise FwError(f"dataset.size must be [height, width], two whole numbers from 1 to 4096, got {size!r}")
        if color not in COLORS:
            raise FwError(f"dataset.color must be rgb or grayscale, got {color!r}")
        self.size, self.color = (size[0], size[1]), color

    @property
    def shape(self):
        return (3 if self.color == "rgb" else 1, *self.size)

    def state(self):
        return {**super().state(), "size": list(self.size), "color": self.color}

    def restore(self, state):
        if tuple(state["shape"]) != self.shape:
            c, h, w = state["shape"]
            raise FwError(
                f"the weights were trained on {h}x{w} {'rgb' if c == 3 else 'grayscale'} images, but the config "
                f"says dataset.size: [{self.size[0]}, {self.size[1]}], dataset.color: {self.color}; set those to match"
            )
        super().restore(state)

    def example_from_image(self, path):
        """A new image for ``fw predict``, read as the training images were."""
        return image_array(path, self.size, self.color)

    def _describe(self):
        classes, _ = self._layout()
        self._info = {"class_names": classes, "shape": list(self.shape)}

    def _read(self):
        classes, files = self._layout()
        if self._info is None:
            self._info = {"class_names": classes, "shape": list(self.shape)}
        images = self._decoded([path for path, _, _ in files])
        labels = self.label_indices([label for _, label, _ in files], self.path)
        parts = np.array([part for _, _, part in files])
        if "all" in parts:
            return split_parts(images, labels, self.test_fraction, self.seed)
        return {split: (images[parts == split], labels[parts == split]) for split in self.splits}

    def _layout(self):
        """``(class names, [(file, class, part)])``; part is "train", "test", or "all" (to be split)."""
        root = self.path
        if not root.is_dir():
            raise FwError(
                f"dataset.path: {root} {'is not a folder' if root.exists() else 'does not exist'}; "
                "give the folder that holds one subfolder per class"
            )
        found = _subfolders(root)
        if set(found) == {"train", "test"}:
            classes = _subfolders(root / "train")
            stray = sorted(set(_subfolders(root / "test")) - set(classes))
            if stray:
                raise FwError(
                    f"{root / 'test' / stray[0]}: class '{stray[0]}' is in test/ but not in train/; "
                    "the network can only learn classes train/ has"
                )
            parts = [("train", root / "train"), ("test", root / "test")]
        else:
            classes, parts = found, [("all", root)]
        if not classes:
            raise FwError(f"{root} has no class subfolders; put each class's images in a subfolder named for the class")
        files = []
        for part, folder in parts:
            for name in _subfolders(folder) if part == "test" else classes:
                images = _images(folder / name)
                if not images and part != "test":
                    raise FwError(
                        f"{folder / name}: class '{name}' has no images ({', '.join(EXTENSIONS)}); "
                        "add some, or remove the folder"
                    )
                files += [(path, name, part) for path in images]
        return classes, files

    def _decoded(self, paths):
        """Every image as uint8 (N, C, H, W): from the cache when the files are unchanged, else decoded."""
        key, folder = self._cache_key(paths)
        cached = _read_cache(folder, key, (len(paths), *self.shape))
        if cached is not None:
            return cached
        if len(paths) >= 500:
            print(
                f"image_folder: decoding {len(paths):,} images in {self.path} (once: they are cached)", file=sys.stderr
            )
        images = np.empty((len(paths), *self.shape), np.uint8)
        for i, path in enumerate(paths):
            images[i] = image_array(path, self.size, self.color)
        _write_cache(folder, key, images)
        return images

    def _cache_key(self, paths):
        listing = []
        for path in paths:
            st = path.stat()
            listing.append([str(path.relative_to(self.path)), st.st_size, st.st_mtime_ns])
        text = json.dumps([DECODING, str(self.path.resolve()), list(self.size), self.color, listing])
        folder = cache_home() / "fw" / "images" / hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return hashlib.sha256(text.encode()).hexdigest()[:24], folder


def _subfolders(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder):
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


def _read_cache(folder, key, shape):
    """The cached images if a file for ``key`` is there, of ``shape``, and its bytes match the MD5 in its name."""
    for path in folder.glob(f"{key}-*.npy") if folder.is_dir() else ():
        try:
            images = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            continue
        if images.shape == shape and images.dtype == np.uint8 and path.stem.endswith(_md5(images)):
            return images
    return None


def _write_cache(folder, key, images):
    """Save the images for ``key`` and remove the folder's older caches; a cache that cannot be written is skipped."""
    from framework.safeio.files import atomic_write, is_writable_dir

    if not is_writable_dir(folder):
        return
    path = folder / f"{key}-{_md5(images)}.npy"
    try:
        atomic_write(path, lambda f: np.save(f, images))
        for old in folder.glob("*.npy"):
            if old != path:
                os.unlink(old)
    except OSError as e:
        print(
            f"image_folder: could not cache the decoded images in {folder} ({e.strerror or e}); "
            "they are decoded again next time",
            file=sys.stderr,
        )


def _md5(images):
    return hashlib.md5(np.ascontiguousarray(images).data).hexdigest()


@hookimpl
def register_datasets(register):
    register(ImageFolder)
