"""``fw show``: a labelled grid of dataset images as a PNG (the book's mnist_show.py, saved to a file).

Pillow is imported here only, on first use, so no other command needs it.
"""

from pathlib import Path

import numpy as np

from ..errors import FwError

BLACK, RED, GREY, WHITE = (0, 0, 0), (200, 0, 0), (110, 110, 110), (255, 255, 255)


def pillow():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise FwError(
            "fw show needs Pillow to write PNG files; install it with `pip install Pillow` "
            "(or `pip install -e '.[show]'` in a clone of fw)"
        ) from None
    return Image, ImageDraw, ImageFont


def _font(ImageFont, size=13):
    try:
        return ImageFont.load_default(size=size)  # a scalable font (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()  # the small bitmap font


def to_rgb(images) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) -> (N, H, W, 3); C=3 is colour, any other C shows channel 0."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1) if images.shape[1] == 3 else images[:, 0]
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    return np.ascontiguousarray(images, dtype=np.uint8)


def render_grid(images, captions, title=None, *, columns=10, scale=3):
    """A PIL image: ``images`` in a grid, each with its caption lines below it.

    ``captions[i]`` is a list of ``(text, rgb)`` lines for image i.
    """
    Image, ImageDraw, ImageFont = pillow()
    font = _font(ImageFont)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text):
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    rgb = to_rgb(images)
    n, h, w = rgb.shape[:3]
    line_h = max(size("Ag/|")[1], 8) + 4
    n_lines = max((len(c) for c in captions), default=0)
    text_w = max((size(t)[0] for c in captions for t, _ in c), default=0)
    pad = 8
    cell_w = max(w * scale, text_w) + 2 * pad
    cell_h = h * scale + 4 + n_lines * line_h + pad
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    title_h = line_h + pad if title else 0
    width = max(columns * cell_w, (size(title)[0] + 2 * pad) if title else 0)
    sheet = Image.new("RGB", (width, title_h + rows * cell_h + pad), WHITE)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, pad // 2), title, fill=BLACK, font=font)
    for i in range(n):
        r, c = divmod(i, columns)
        x0, y0 = c * cell_w, title_h + r * cell_h + pad
        tile = Image.fromarray(rgb[i]).resize((w * scale, h * scale), Image.NEAREST)
        ix = x0 + (cell_w - w * scale) // 2
        sheet.paste(tile, (ix, y0))
        draw.rectangle((ix - 1, y0 - 1, ix + w * scale, y0 + h * scale), outline=GREY)
        for j, (text, colour) in enumerate(captions[i]):
            tw = size(text)[0]
            draw.text((x0 + (cell_w - tw) // 2, y0 + h * scale + 4 + j * line_h), text, fill=colour, font=font)
    return sheet


def save_png(image, out: Path) -> Path:
    """Write ``image`` to ``out`` atomically: a temp file, then a rename.

    The folder must exist: a typo in ``--out`` must not create a tree of folders.
    """
    from ..safeio.files import atomic_write, ensure_writable_dir

    out = Path(out)
    if not out.parent.exists():
        raise FwError(f"cannot write {out}: folder {out.parent} does not exist; create it first or choose another --out")
    ensure_writable_dir(out.parent, purpose=f"to write {out.name}")
    try:
        return atomic_write(out, lambda f: image.save(f, format="PNG"))
    except OSError as e:
        raise FwError(f"cannot write {out} ({e.strerror or e}); check the folder and free space") from e


def captions(dataset, labels, predicted, picked):
    """Each picked image's caption lines: its index and class, or its true and predicted class."""
    if predicted is None:
        return [[(f"#{i}", GREY), (dataset.class_name(labels[i]), BLACK)] for i in picked]
    return [
        [(f"#{i}", GREY), (f"true: {dataset.class_name(labels[i])}", BLACK), (f"pred: {dataset.class_name(predicted[i])}", RED)]
        for i in picked
    ]


def rows_text(dataset, rows, labels, picked, predicted=None) -> str:
    """Table rows as aligned text: index, class (and predicted class), then each feature's raw value."""
    features = dataset.feature_names or [f"x{j}" for j in range(rows.shape[1])]
    head = ["row", "class", *(["predicted"] if predicted is not None else []), *features]
    body = [
        [str(i), dataset.class_name(labels[i]), *([dataset.class_name(predicted[i])] if predicted is not None else []),
         *(_cell(dataset, j, v) for j, v in enumerate(rows[i]))]
        for i in picked
    ]  # fmt: skip
    widths = [max(len(r[j]) for r in [head, *body]) for j in range(len(head))]
    texts = (len(head) - len(features))  # columns of text: left-aligned
    return "\n".join(
        "  " + "  ".join(c.ljust(w) if j and j < texts else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in [head, *body]
    )


def _cell(dataset, j, value):
    """A table cell as written: a category's word, a blank as nothing, a number to 6 digits."""
    prep = getattr(dataset, "preparation", None)
    return prep.cell_text(j, value) if prep is not None else f"{value:.6g}"


def select(total, index, count, mask=None, noun="images"):
    """Indices to show: ``count`` from ``index`` on, only where ``mask`` is true (if given)."""
    if not 0 <= index < total:
        raise FwError(f"--index {index} is outside the split, which has {total} {noun}; use 0 to {total - 1}")
    candidates = np.arange(index, total)
    if mask is not None:
        candidates = candidates[mask[index:]]
    return candidates[:count]
