"""``fw show``: a labelled grid of dataset images as a PNG (the book's mnist_show.py, saved to a file),
or two of the book's pictures of a network: its first convolution's filters (figure 7-24) and
histograms of its hidden layers' activations (figures 6-10 to 6-14).

Pillow draws all of them, histograms included (bars are rectangles): one optional
dependency for the command, and pixels a test can check. It is imported here only,
on first use, so no other command needs it.
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
    """A PIL image: ``images`` in a grid, each with its caption lines below it, under ``title`` (lines split at \\n).

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
    titles = title.split("\n") if title else []
    title_h = len(titles) * line_h + pad if titles else 0
    width = max([columns * cell_w, *(size(t)[0] + 2 * pad for t in titles)])
    sheet = Image.new("RGB", (width, title_h + rows * cell_h + pad), WHITE)
    draw = ImageDraw.Draw(sheet)
    for j, text in enumerate(titles):
        draw.text((pad, pad // 2 + j * line_h), text, fill=BLACK, font=font)
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
        raise FwError(
            f"cannot write {out}: folder {out.parent} does not exist; create it first or choose another --out"
        )
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
        [
            (f"#{i}", GREY),
            (f"true: {dataset.class_name(labels[i])}", BLACK),
            (f"pred: {dataset.class_name(predicted[i])}", RED),
        ]
        for i in picked
    ]


def rows_text(dataset, rows, labels, picked, predicted=None) -> str:
    """Table rows as aligned text: index, class (and predicted class), then each feature's raw value."""
    features = dataset.feature_names or [f"x{j}" for j in range(rows.shape[1])]
    head = ["row", "class", *(["predicted"] if predicted is not None else []), *features]
    body = [
        [
            str(i),
            dataset.class_name(labels[i]),
            *([dataset.class_name(predicted[i])] if predicted is not None else []),
            *(_cell(dataset, j, v) for j, v in enumerate(rows[i])),
        ]
        for i in picked
    ]
    widths = [max(len(r[j]) for r in [head, *body]) for j in range(len(head))]
    texts = len(head) - len(features)  # columns of text: left-aligned
    return "\n".join(
        "  "
        + "  ".join(c.ljust(w) if j and j < texts else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip()
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


# --- The book's pictures of a network ----------------------------------------------------------

#: Examples the activation histograms are taken on: the book's 1000 inputs.
ACTIVATION_EXAMPLES = 1000
BINS, BIN_W, PLOT_H = 30, 6, 150  # the book's 30 bins; each BIN_W pixels wide; the tallest bar PLOT_H high
MARGIN, GAP, TOP, BOTTOM = 64, 28, 66, 48  # left of the first plot; between plots; above and below them
BAR = (31, 119, 180)  # matplotlib's first colour, as in the book's figures


def first_filters(net):
    """``(label, W)`` of the first layer with 4-D weights (filters, channels, height, width), or None."""
    for label, layer in zip(net.labels, net.layers):
        for w in layer.params.values():
            if np.ndim(w) == 4:
                return label, w
    return None


def filter_tiles(w) -> np.ndarray:
    """Channel 0 of each filter as uint8, scaled to the filter's own min..max, as the book draws them
    (``imshow`` with ``cmap=gray_r``: white for the filter's smallest weight, black for its largest)."""
    w = np.asarray(w, np.float64)[:, 0]
    lo, hi = w.min(axis=(1, 2), keepdims=True), w.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    scaled = np.where(span > 0, (hi - w) / np.where(span > 0, span, 1), 0.5)  # a flat filter is mid-grey
    return np.rint(scaled * 255).astype(np.uint8)


def filter_scale(w) -> int:
    """How many pixels each weight becomes: tiles about 48 pixels wide."""
    return max(1, 48 // max(np.shape(w)[2:]))


def render_filters(w, title, *, columns=8):
    """The grid of ``filter_tiles``, numbered, 8 to a row as in the book's visualize_filter.py."""
    tiles = filter_tiles(w)
    numbers = [[(str(i), GREY)] for i in range(len(tiles))]
    return render_grid(tiles, numbers, title, columns=columns, scale=filter_scale(w))


def hidden_activations(net, x):
    """``[(label, output)]`` of every activation layer but the output: what each hidden layer passes on."""
    from ..core.activation import Activation

    x = net.as_input(x).astype(np.float32, copy=False)
    outputs = []
    for label, layer in zip(net.labels[:-1], net.layers[:-1]):
        x = layer(x, False)
        if isinstance(layer, Activation):
            outputs.append((label, x))
    return outputs


def activation_histograms(outputs):
    """``(edges, counts)``: each output's finite values in ``BINS`` bins over one range for all,
    the book's 0..1 widened to hold every value (ReLU's go above 1)."""
    finite = [o[np.isfinite(o)] for o in outputs]
    lo = min([0.0, *(float(f.min()) for f in finite if f.size)])
    hi = max([1.0, *(float(f.max()) for f in finite if f.size)])
    counts = [np.histogram(f, BINS, range=(lo, hi))[0] for f in finite]
    return np.linspace(lo, hi, BINS + 1), counts


def plot_origins(n):
    """Each histogram's ``(left, baseline)`` in pixels: bin j's bar fills columns left + j * BIN_W to
    left + (j + 1) * BIN_W - 2 and ``bar_height`` rows above the baseline."""
    return [(MARGIN + k * (BINS * BIN_W + GAP), TOP + PLOT_H) for k in range(n)]


def shares(counts):
    """Each bin's share of its layer's values: layers of different sizes (a convolution's, a dense
    layer's) then share one scale, and layers of one size (the book's) look as their counts do."""
    return [c / max(int(c.sum()), 1) for c in counts]


def bar_height(share, tallest) -> int:
    return int(round(PLOT_H * share / tallest)) if tallest else 0


def render_histograms(names, edges, counts, notes, title):
    """Histograms in a row on one scale (``shares``), like the book's ``plt.hist(a.flatten(), 30, range=(0, 1))``."""
    Image, ImageDraw, ImageFont = pillow()
    font = _font(ImageFont)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width(text):
        return probe.textbbox((0, 0), text, font=font)[2]

    titles = title.split("\n")
    origins = plot_origins(len(counts))
    plot_w = BINS * BIN_W
    size = (max([origins[-1][0] + plot_w + GAP, *(width(t) + 16 for t in titles)]), TOP + PLOT_H + BOTTOM)
    sheet = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(sheet)
    for j, text in enumerate(titles):
        draw.text((8, 4 + j * 18), text, fill=BLACK, font=font)
    fractions = shares(counts)
    tallest = max(float(f.max()) for f in fractions)
    ticks = (edges[0], (edges[0] + edges[-1]) / 2, edges[-1])
    for k, ((left, base), name, c, note) in enumerate(zip(origins, names, fractions, notes)):
        draw.text((left, TOP - 20), name, fill=BLACK, font=font)
        draw.rectangle((left - 1, base - PLOT_H - 1, left + plot_w - 1, base), outline=GREY)
        for j, n in enumerate(c):
            h = bar_height(n, tallest)
            if h:
                draw.rectangle((left + j * BIN_W, base - h, left + (j + 1) * BIN_W - 2, base - 1), fill=BAR)
        for t, x in zip(ticks, (left, left + plot_w // 2, left + plot_w)):
            text = f"{t:.3g}"
            draw.text((x - width(text) // 2, base + 4), text, fill=BLACK, font=font)
        draw.text((left, base + 24), note, fill=GREY, font=font)
        if k == 0:  # the scale, once: every histogram shares it
            for text, y in ((f"{tallest:.0%}", base - PLOT_H - 6), ("0", base - 8)):
                draw.text((left - 6 - width(text), y), text, fill=BLACK, font=font)
    return sheet


def weights_source(cfg) -> str:
    """Where the network's weights came from, for a picture's title."""
    if cfg.weights is None:
        from ..config.assemble import named_spec

        init = ""
        if cfg.model.init is not None:
            kind, params = named_spec(cfg.model.init)
            init = " ".join([kind, *(f"{k} {v}" for k, v in params.items())]) + ", "
        return f"random initial weights (weights: null, {init}model.seed={cfg.model.seed})"
    return f"trained weights ({Path(str(cfg.weights.path)).name})"


def network_picture(cfg, registry, picture, *, name, columns=8):
    """``(sheet, what)``: the PNG image of ``picture`` ("filters" or "activations") for the config's network.

    ``name`` names the config in titles and errors. The activations are taken on the first
    ``ACTIVATION_EXAMPLES`` examples of the config's split, prepared as ``fw run`` prepares them:
    the network's own input, where the book feeds 1000 rows of random numbers of std 1.
    """
    import warnings

    from .. import api
    from ..errors import FwWarning

    with warnings.catch_warnings():  # random weights are what the picture is for: no accuracy warning
        warnings.filterwarnings("ignore", message="weights is null", category=FwWarning)
        net, dataset = api.build(cfg, registry)
    source = weights_source(cfg)
    if picture == "filters":
        found = first_filters(net)
        if found is None:
            raise FwError(
                f"--filters: the network of {name} has no convolution (no layer with 4-D weights: filters, "
                "channels, height, width); use --activations for its hidden layers, or a config with a conv2d "
                "layer such as mnist_cnn"
            )
        label, w = found
        f, c, kh, kw = w.shape
        channel = f", channel 0 of {c}" if c > 1 else ""
        title = (
            f"{name}: the {f} filters of {label}, {kh}x{kw}{channel}, {source}\n"
            "each scaled to its own range: white its smallest weight, black its largest (the book's gray_r)"
        )
        return render_filters(w, title, columns=columns), f"{f} filters of {label}"
    d = cfg.dataset
    raw, _ = dataset.examples(d.split, d.limit)
    raw = raw[:ACTIVATION_EXAMPLES]
    outputs = hidden_activations(net, dataset.prepare(raw, normalize=d.normalize, flatten=d.flatten))
    if not outputs:
        raise FwError(
            f"--activations: the network of {name} has no hidden activation layer (none before its output layer); "
            "use a config whose model has hidden layers, e.g. ch6_init_std001, or --filters for a convolution's filters"
        )
    edges, counts = activation_histograms([o for _, o in outputs])
    names = [f"{k + 1}-layer: {label.split()[-1].strip('()')}" for k, (label, _) in enumerate(outputs)]
    notes = [_note(o) for _, o in outputs]
    noun = "rows" if len(dataset.example_shape()) == 1 else "images"
    title = (
        f"{name}: the activations of its {len(outputs)} hidden layers on the first {len(raw)} {d.split} {noun} "
        f"of {d.name}, {source}\n"
        f"{BINS} bins over {edges[0]:.3g} to {edges[-1]:.3g}, "
        "bar heights on one scale: the share of the layer's values in the bin"
    )
    return render_histograms(names, edges, counts, notes, title), f"{len(outputs)} activation histograms"


def _note(output) -> str:
    """What a histogram cannot show: the mean, ReLU's share of exact zeros, values left out as not finite."""
    finite = output[np.isfinite(output)]
    note = f"mean {finite.mean():.3g}" if finite.size else "no finite value"
    if (finite == 0).any():
        note += f", {np.mean(finite == 0):.0%} zero"
    if finite.size < output.size:
        note += f", {output.size - finite.size} not finite (left out)"
    return note
