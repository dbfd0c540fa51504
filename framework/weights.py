"""The WeightImporter base class, and the check that maps its arrays onto layers."""

from pathlib import Path
from typing import ClassVar

from .errors import FwError


class WeightImporter:
    """Turns a weights file into named arrays: ``W1, b1, W2, b2, ...``.

    ``Wi`` (in, out) and ``bi`` (out,) belong to the i-th dense layer, as in
    the book's ``sample_weight.pkl``. Subclasses set ``name`` and implement
    ``load(path)``; the framework checks names, shapes and values before any
    layer is built, so an importer only has to read the file.
    """

    name: ClassVar[str]

    def load(self, path: Path) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement load(path)")


def check_weights(arrays, sizes, source) -> list[tuple]:
    """Return ``[(W1, b1), (W2, b2), ...]`` as float32, checked against ``sizes``.

    Every problem names the layer, the shape the config expects and the shape
    in ``source`` (the file), and says how to fix it.
    """
    import numpy as np

    if not isinstance(arrays, dict):
        raise FwError(f"{source}: expected a dict of named arrays (W1, b1, ...), got {type(arrays).__name__}")
    n_layers = len(sizes) - 1
    named = [k for k in arrays if isinstance(k, str) and k[:1] in ("W", "b") and k[1:].isdigit() and k[1] != "0"]
    strays = sorted(map(str, set(arrays) - set(named)))
    if strays:
        raise FwError(
            f"{source}: unexpected array name(s) {', '.join(strays)}; weights are named W1, b1, W2, b2, ... "
            "(capital W, counting from 1), one pair per dense layer"
        )
    file_layers = sorted({int(k[1:]) for k in named})
    hint = _sizes_hint(arrays, sizes)
    unexpected = sorted(set(arrays) - {f"{p}{i}" for i in range(1, n_layers + 1) for p in "Wb"})
    if unexpected or len(file_layers) != n_layers:
        raise FwError(
            f"{source}: holds {len(file_layers)} dense layer(s) "
            f"({', '.join(sorted(arrays)) or 'no arrays'}) but model.sizes={list(sizes)} "
            f"describes {n_layers}{hint}"
        )
    layers = []
    for i in range(1, n_layers + 1):
        expected = {f"W{i}": (sizes[i - 1], sizes[i]), f"b{i}": (sizes[i],)}
        pair = []
        for key, shape in expected.items():
            if key not in arrays:
                raise FwError(f"{source}: dense layer {i} has no '{key}' array{hint}")
            a = arrays[key]
            if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
                raise FwError(f"{source}: '{key}' must be a floating-point numpy array, got {_describe(a)}")
            if a.shape != shape:
                flipped = " (transposed: fw's W is (inputs, outputs), PyTorch's Linear stores (outputs, inputs))"
                raise FwError(
                    f"{source}: dense layer {i} ({key}): model.sizes={list(sizes)} expects shape "
                    f"{shape}, the file has {a.shape}{flipped if a.shape == shape[::-1] and len(shape) == 2 else ''}{hint}"
                )
            if not np.isfinite(a).all():
                raise FwError(
                    f"{source}: '{key}' contains NaN or Inf; the file is damaged, or the training that wrote it diverged"
                )
            pair.append(np.ascontiguousarray(a, dtype=np.float32))
        layers.append(tuple(pair))
    return layers


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


def _describe(a) -> str:
    return f"{a.dtype} array" if hasattr(a, "dtype") else type(a).__name__
