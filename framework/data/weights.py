"""The WeightImporter and WeightWriter base classes, and how a weights file's arrays map onto a network.

Two layouts are read:

- the network's own, ``{"<layer index>.<name>": array}`` (``0.W``, ``0.b``,
  ``2.gamma``, ``2.running_mean``, ...), which ``fw train`` writes for any
  network, layer plugins included (PyTorch's ``state_dict`` naming);
- the book's ``W1, b1, W2, b2, ...`` (``sample_weight.pkl``, and what fw 0.1
  wrote), which maps onto the dense layers in order.

Every name, shape and value is checked before anything is copied, and the
first difference is named by layer. Importers open weight files with
``safeio.files.open_weights`` and may refuse other names early with ``check_names``.
"""

import re
from pathlib import Path
from typing import ClassVar

from ..errors import FwError

_BOOK_KEY = re.compile(r"[Wb][1-9][0-9]{0,5}")  # bounded: int() of 5,000 digits raises
_STATE_KEY = re.compile(r"(0|[1-9][0-9]{0,5})\.[A-Za-z_][A-Za-z0-9_]{0,63}")
_LISTED = 12  # array names quoted in an error line, at most


class WeightImporter:
    """Turns a weights file into named arrays (``W1, b1, ...`` or ``0.W, 0.b, ...``).

    Subclasses set ``name`` and implement ``load(path)``; the framework
    checks names, shapes and values before any layer gets them, so an
    importer only has to read the file.
    """

    name: ClassVar[str]

    def load(self, path: Path) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement load(path)")


class WeightWriter:
    """Writes a network's named arrays (``W1, b1, ...`` or ``0.W, 0.b, ...``) in one file format.

    Subclasses set ``name`` (what ``weights.format`` says), ``suffixes`` (the
    file endings the format takes, e.g. ``(".npz",)``) and implement
    ``write(f, arrays)``, which writes the dict of float32 arrays into the
    open binary file ``f``: fw writes to a temporary file and renames it into
    place, so a failure never leaves half a file. ``importer`` names the
    weight importer that reads the result back (None: the writer's own name).
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    importer: ClassVar[str | None] = None

    def write(self, f, arrays: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement write(f, arrays)")

    @classmethod
    def reader(cls) -> str:
        """The name of the importer that reads what this writes."""
        return cls.importer or cls.name


def is_weight_name(key) -> bool:
    """A name either layout uses: ``W1, b1, ...`` or ``<layer index>.<identifier>`` (``0.W``, ``2.gamma``)."""
    return isinstance(key, str) and bool(_BOOK_KEY.fullmatch(key) or _STATE_KEY.fullmatch(key))


def check_names(names, source):
    """Refuse names that neither layout uses: an importer can call it before it reads any array."""
    strays = [n for n in names if not is_weight_name(n)]
    if strays:
        raise FwError(
            f"{source}: unexpected array name(s) {_names(strays)}; weights are named W1, b1, W2, b2, ... "
            "(the book's layout) or 0.W, 0.b, ... (what fw train writes for other networks)"
        )


def load_weights(net, arrays, source):
    """Copy ``arrays`` (either layout) into ``net``'s params and buffers, after checking them all."""
    import numpy as np

    if not isinstance(arrays, dict):
        raise FwError(
            f"{source}: expected a dict of named arrays (0.W, 0.b, ... or W1, b1, ...), got {type(arrays).__name__}"
        )
    if arrays and all(isinstance(k, str) and _BOOK_KEY.fullmatch(k) for k in arrays):
        arrays = _from_book_layout(net, arrays, source)
    state = net.state_dict()
    for key, mine in state.items():
        index, name = key.split(".", 1)
        where = f"{net.labels[int(index)]}, '{name}'"
        if key not in arrays:
            raise FwError(
                f"{source}: has no array '{key}' for {where}; the file holds {_names(arrays)}{_layout_hint(arrays)}"
            )
        a = arrays[key]
        _check_array(a, f"'{key}'", source)
        if a.shape != mine.shape:
            raise FwError(
                f"{source}: {where}: the network has shape {mine.shape}, the file {str(a.shape)[:80]} (as '{key}')"
            )
    extra = [k for k in arrays if k not in state]
    if extra:
        raise FwError(
            f"{source}: holds {_names(extra)}, which the network does not have; it has {_names(state)}. "
            "Were these weights written for another model.layers?"
        )
    for key, mine in state.items():
        np.copyto(mine, arrays[key], casting="same_kind")


def _check_array(a, what, source):
    import numpy as np

    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        raise FwError(f"{source}: {what} must be a floating-point numpy array, got {_describe(a)}")
    if not np.isfinite(a).all():
        raise FwError(
            f"{source}: {what} contains NaN or Inf; the file is damaged, or the training that wrote it diverged"
        )
    if a.dtype.itemsize > 4:  # finite in float64, yet beyond float32's range: Inf once the network holds it
        with np.errstate(over="ignore"):
            if not np.isfinite(a.astype(np.float32)).all():
                raise FwError(
                    f"{source}: {what} holds values beyond float32's range (about ±3.4e38), which would become Inf "
                    "in the network; the file is damaged, or the training that wrote it diverged"
                )


def _dense_like(net):
    """``[(index, layer)]`` of the layers that have parameters; None unless each holds just W and b."""
    holders = [(i, layer) for i, layer in enumerate(net.layers) if layer.params or layer.buffers]
    if all(set(layer.params) == {"W", "b"} and not layer.buffers for _, layer in holders):
        return holders
    return None


def book_layout(net) -> dict | None:
    """``{"W1": ..., "b1": ...}`` when the network is dense layers and parameter-free ones, else None."""
    holders = _dense_like(net)
    if holders is None:
        return None
    return {f"{p}{k}": layer.params[p] for k, (_, layer) in enumerate(holders, 1) for p in "Wb"}


def _from_book_layout(net, arrays, source):
    holders = _dense_like(net)
    if holders is None:
        i, layer = next(
            (i, layer)
            for i, layer in enumerate(net.layers)
            if set(layer.params) != {"W", "b"} and (layer.params or layer.buffers)
        )
        raise FwError(
            f"{source}: holds the book's layout (W1, b1, ...), which fits dense layers only, but {net.labels[i]} "
            f"has {', '.join([*layer.params, *layer.buffers])}; load weights that fw train wrote for this network"
        )
    shapes = [(layer.params["W"].shape, layer.params["b"].shape) for _, layer in holders]
    check_book_arrays(arrays, shapes, source)
    return {f"{i}.{p}": arrays[f"{p}{k}"] for k, (i, _) in enumerate(holders, 1) for p in "Wb"}


def check_weights(arrays, sizes, source) -> list[tuple]:
    """``[(W1, b1), ...]`` in the book's layout, checked against ``sizes`` (e.g. [784, 50, 100, 10])."""
    import numpy as np

    shapes = [((n_in, n_out), (n_out,)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    check_book_arrays(arrays, shapes, source)
    return [
        tuple(np.ascontiguousarray(arrays[f"{p}{i}"], dtype=np.float32) for p in "Wb")
        for i in range(1, len(shapes) + 1)
    ]


def check_book_arrays(arrays, shapes, source):
    """Check ``W1, b1, ...`` against the expected ``[(W shape, b shape), ...]`` of the dense layers.

    Every problem names the layer, the shape the network expects and the
    shape in ``source`` (the file), and says how to fix it. A network with
    other layers holding W and b (convolutions) is counted as such, not as
    dense layers.
    """
    dense = all(len(w) == 2 for w, _ in shapes)
    one, many = ("dense layer", "dense layer(s)") if dense else ("weighted layer", "layer(s) with W and b")
    if not isinstance(arrays, dict):
        raise FwError(f"{source}: expected a dict of named arrays (W1, b1, ...), got {type(arrays).__name__}")
    sizes = _chain(shapes)
    described = f"model.sizes=[{','.join(map(str, sizes))}]" if sizes else "the network"
    n_layers = len(shapes)
    named = [k for k in arrays if isinstance(k, str) and _BOOK_KEY.fullmatch(k)]
    strays = [str(k) for k in arrays if k not in named]
    if strays:
        raise FwError(
            f"{source}: unexpected array name(s) {_names(strays)}; weights are named W1, b1, W2, b2, ... "
            "(capital W, counting from 1), one pair per layer with weights"
        )
    file_layers = sorted({int(k[1:]) for k in named})
    hint = _sizes_hint(arrays, sizes or ())
    unexpected = set(arrays) - {f"{p}{i}" for i in range(1, n_layers + 1) for p in "Wb"}
    if unexpected or len(file_layers) != n_layers:
        raise FwError(
            f"{source}: holds {len(file_layers)} {many} ({_names(arrays) if arrays else 'no arrays'}) "
            f"but {described} describes {n_layers}{hint}"
        )
    for i, (w_shape, b_shape) in enumerate(shapes, 1):
        for key, shape in ((f"W{i}", w_shape), (f"b{i}", b_shape)):
            if key not in arrays:
                raise FwError(f"{source}: {one} {i} has no '{key}' array{hint}")
            a = arrays[key]
            if not hasattr(a, "shape") or getattr(a, "dtype", None) is None or a.dtype.kind != "f":
                raise FwError(f"{source}: '{key}' must be a floating-point numpy array, got {_describe(a)}")
            if a.shape != shape:
                flipped = " (transposed: fw's W is (inputs, outputs), PyTorch's Linear stores (outputs, inputs))"
                raise FwError(
                    f"{source}: {one} {i} ({key}): {described} expects shape {shape}, the file has "
                    f"{str(a.shape)[:80]}{flipped if a.shape == shape[::-1] and len(shape) == 2 else ''}{hint}"
                )
            _check_array(a, f"'{key}'", source)


def _chain(shapes):
    """``[784, 50, 10]`` when the dense layers chain directly (each W's inputs the last one's units), else None."""
    sizes = []
    for w, _ in shapes:
        if sizes and sizes[-1] != w[0]:
            return None
        sizes = sizes or [w[0]]
        sizes.append(w[1])
    return sizes or None


def _sizes_hint(arrays, configured=()) -> str:
    """Suggest the model.sizes the file's W1, b1, W2, ... imply, when they form a whole network."""
    sizes = []
    for i in range(1, len(arrays) // 2 + 1):
        w, b = arrays.get(f"W{i}"), arrays.get(f"b{i}")
        if getattr(w, "ndim", 0) != 2 or (sizes and sizes[-1] != w.shape[0]):
            return ""  # missing or not chaining: no sizes would fit, so suggest none
        if getattr(b, "shape", None) != (w.shape[1],):
            return ""
        sizes = sizes or [w.shape[0]]
        sizes.append(w.shape[1])
    if len(sizes) < 2 or 2 * (len(sizes) - 1) != len(arrays) or sizes == list(configured):
        return ""
    return f"; the file fits model.sizes=[{','.join(map(str, sizes))}]"


def _layout_hint(arrays):
    return "" if any("." in str(k) for k in arrays) else " (names like 0.W, 0.b: what fw train writes)"


def _names(keys) -> str:
    """At most a dozen names, so an error line stays one readable line whatever the file holds."""
    keys = [_quote(str(k)[:40]) for k in keys]
    shown = ", ".join(sorted(keys)[:_LISTED])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _LISTED else "")


def _quote(name) -> str:
    return name if name.isprintable() else repr(name)  # a newline in a name must not break the line


def _describe(a) -> str:
    return f"{a.dtype} array" if hasattr(a, "dtype") else type(a).__name__
