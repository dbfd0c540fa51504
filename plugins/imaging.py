"""Reading images with Pillow (imported on first use), and MNIST's own preparation of a digit.

Used by the ``image_folder`` dataset and by ``fw predict`` on image files.
"""

import warnings

import numpy as np

from framework import FwError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # Pillow's names of the formats of EXTENSIONS
#: More pixels than a classifier's input needs (a 5000x5000 photo): a PNG of Pillow's own limit
#: (89 million) took 2.4 GB to decode. A larger JPEG is decoded at a reduced scale when it can be.
MAX_PIXELS = 25_000_000
_ORIENTATION = 0x0112  # the EXIF tag


def pillow():
    try:
        from PIL import Image
    except ImportError:
        raise FwError(
            "reading images needs Pillow; install it with `pip install Pillow` "
            "(or `pip install -e '.[images]'` in a clone of fw)"
        ) from None
    return Image


def open_image(path, mode, size=None):
    """The image file at ``path`` decoded in ``mode`` ("L" or "RGB"), upright, transparency laid on white.

    ``size`` (width, height), when known, lets a JPEG decode at a reduced scale (no smaller than it).
    Only the formats fw reads are opened (Pillow's others include EPS, which
    runs Ghostscript), and no more than ``MAX_PIXELS`` are decoded. Anything
    unreadable is one line naming the file.
    """
    from framework.safeio.files import open_input

    Image = pillow()
    from PIL import ImageOps

    f = open_input(path, missing=f"image not found: {path}", needs="images are read from regular files")
    with f, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(f, formats=FORMATS)
            if size is not None and image.format in ("JPEG", "MPO"):  # (MPO: a camera's JPEG with a second picture)
                # a JPEG's EXIF comes before its pixels; a PNG's may follow them, so it is read only after the check
                turned = image.getexif().get(_ORIENTATION) in (5, 6, 7, 8)  # stored as wide as it is tall
                image.draft(mode, size[::-1] if turned else size)
            width, height = image.size  # from the header (and draft): checked before any pixel is decoded
            if width * height > MAX_PIXELS:
                raise FwError(
                    f"{path}: {width}x{height} pixels is more than fw decodes ({MAX_PIXELS:,}); scale it down"
                )
            image.load()
            image = ImageOps.exif_transpose(image)  # a phone's portrait photo is stored sideways
            return _flatten_alpha(_eight_bit(image), mode)
        except FwError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
            if isinstance(e, Image.UnidentifiedImageError):
                reason = f"not a format fw reads: {', '.join(FORMATS)}"
            else:
                reason = " ".join(str(e).split())[:120] or type(e).__name__
            raise FwError(f"{path}: not a readable image ({reason}); replace or remove it") from None


def _flatten_alpha(image, mode):
    """A transparent background counts as white, as a paint program shows it."""
    Image = pillow()
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert(mode)


def _eight_bit(image):
    """A 16-bit (or 32-bit integer) grey image scaled to 8 bits: Pillow's own conversion clips at 255."""
    if not image.mode.startswith("I"):
        return image
    Image = pillow()
    a = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
    grey = Image.fromarray(((a + 128) // 257).astype(np.uint8))
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        grey.putalpha(Image.fromarray(np.where(a == transparent, 0, 255).astype(np.uint8)))
    return grey


def image_array(path, size, color):
    """uint8 (C, H, W): the file resized to ``size`` (height, width), grey (C=1) or "rgb" (C=3)."""
    Image = pillow()
    height, width = size
    mode = "RGB" if color == "rgb" else "L"
    image = open_image(path, mode, (width, height))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    a = np.asarray(image, dtype=np.uint8)
    return a.transpose(2, 0, 1) if a.ndim == 3 else a[None]


def mnist_example(path):
    """The image file prepared as MNIST's digits were: uint8 (28, 28)."""
    return mnist_style(open_image(path, "L", (560, 560)), path)  # a phone's 48 Mpixel JPEG decodes at 1/8


def mnist_style(image, source="the image"):
    """A grey PIL image as MNIST presents a digit: light ink on black, cropped to the ink, its
    longer side scaled to 20 pixels, and placed in 28x28 with its centre of mass in the middle.

    A light background (the border's median above mid-grey) is inverted first,
    and the background level is taken away, so a dark digit drawn on white
    paper, at any size, comes out as MNIST's white on black.
    """
    Image = pillow()
    a = np.asarray(image, dtype=np.float64)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 127.5:
        a, border = 255 - a, 255 - border
    a = np.clip(a - np.median(border), 0, None)
    if a.max() <= 0:
        raise FwError(f"{source}: no digit found, the image is one flat colour")
    a *= 255 / a.max()
    rows, cols = np.flatnonzero((a > 25).any(axis=1)), np.flatnonzero((a > 25).any(axis=0))
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = a.shape
    scale = 20 / max(h, w)
    small = Image.fromarray(a.astype(np.float32)).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS
    )
    s = np.clip(np.asarray(small, dtype=np.float64), 0, 255)
    ys, xs = np.indices(s.shape)
    mass = s.sum()
    top, left = round(14 - (ys * s).sum() / mass), round(14 - (xs * s).sum() / mass)
    out = np.zeros((28, 28))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + s.shape[0], 28), min(left + s.shape[1], 28)
    out[y0:y1, x0:x1] = s[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.rint(out).astype(np.uint8)
