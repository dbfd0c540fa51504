"""What training derived from the data, kept beside the weights: ``NAME.dataset.json``.

A network trained on a CSV needs its class names, feature names and
standardisation statistics to be used again; one trained on an image folder
its class names, image size and colour. ``fw train`` writes them (``Dataset.state()``)
here, next to ``NAME.npz``, so ``fw run`` and ``fw predict`` need no training data.

Beside the weights rather than inside them, so every weights format (npz,
pickle, a plugin's) carries it unchanged and the weight writer and importer
contracts stay as they are; JSON, so reading it runs no code and a person can
read it. The file records the SHA-256 of the weights it belongs to, so weights
and a state file from different runs are never used together.
``read_state(weights_path)`` is the one way to read it (``fw export`` takes
the class names from there).
"""

import json
from pathlib import Path

from ..errors import FwError

FORMAT = "fw-dataset-state"
VERSION = 1
MAX_BYTES = 64 << 20  # statistics for a million features; more is not a state file


def state_path(weights_path) -> Path:
    """``runs/x/weights.npz`` -> ``runs/x/weights.dataset.json``."""
    path = Path(weights_path).expanduser()
    return path.with_name(path.stem + ".dataset.json")


def write_state(weights_path, dataset_name: str, state: dict) -> Path:
    """Write ``state`` beside the weights file (already written), atomically, tied to its hash."""
    from ..safeio.files import file_hash, write_output

    record = {
        "format": FORMAT,
        "version": VERSION,
        "weights_sha256": file_hash(weights_path),
        "dataset": dataset_name,
        "state": state,
    }
    text = json.dumps(record, indent=1, allow_nan=False).encode()
    return write_output(state_path(weights_path), lambda f: f.write(text))


def read_state(weights_path, dataset_name: str | None = None) -> dict | None:
    """The state saved beside ``weights_path``, or None when there is none.

    With ``dataset_name``, a state saved for another dataset is None as well
    (``fw run`` of Fashion-MNIST weights on MNIST). A state whose weights hash
    differs from the file's, or that cannot be read, is a one-line error.
    """
    from ..safeio.files import NotARegularFile, file_hash, open_regular

    path = state_path(weights_path)
    try:
        f = open_regular(path)
    except FileNotFoundError:
        return None
    except (NotARegularFile, OSError) as e:
        raise FwError(f"{path}: cannot read it ({e}); it holds what fw train derived from the data") from e
    with f:
        data = f.read(MAX_BYTES + 1)
    try:
        if len(data) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES >> 20} MiB")
        try:
            record = json.loads(data)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError("not an fw dataset state file")
        state = _checked(record.get("state"))
    except (ValueError, UnicodeDecodeError) as e:
        raise FwError(
            f"{path}: not a readable dataset state ({' '.join(str(e).split())[:120]}); run fw train again to rewrite it"
        ) from e
    if dataset_name is not None and record.get("dataset") != dataset_name:
        return None
    weights = Path(weights_path).expanduser()
    if weights.is_file() and record.get("weights_sha256") != file_hash(weights):
        raise FwError(
            f"{path} was written with other weights than {weights} (its SHA-256 differs): the class names and "
            "statistics in it may not be these weights'; run fw train again, or put the matching files side by side"
        )
    return state


def restore_state(dataset, weights_path, dataset_name):
    """Give ``dataset`` what ``fw train`` saved beside ``weights_path``, when it saved it for ``dataset_name``.

    A state that contradicts what the dataset's class fixes (``pixels: true``
    for a table, MNIST's shape or class names) is refused here, naming the
    file: the data would be prepared, or the classes named, wrongly.
    """
    from ..safeio.untrusted import clip

    state = read_state(weights_path, dataset_name)
    if state is None:
        return
    if dataset.pixels is not None and "pixels" in state and state["pixels"] != dataset.pixels:
        raise FwError(
            f"{state_path(weights_path)}: pixels is {str(state['pixels']).lower()}, but dataset '{dataset_name}' "
            f"always takes {'pixels' if dataset.pixels else 'features'}; run fw train again to rewrite the file"
        )
    for key in ("shape", "class_names"):
        fixed = getattr(type(dataset), key, None)  # a tuple when the class fixes it, else a property or None
        if isinstance(fixed, tuple) and list(fixed) != state[key]:
            raise FwError(
                f"{state_path(weights_path)}: {key} is {_clipped(state[key])}, but dataset '{dataset_name}' always has "
                f"{_clipped(list(fixed))}; run fw train again to rewrite the file"
            )
    try:
        dataset.restore(state)
    except ValueError as e:  # a part only the dataset reads (a table's columns), checked there
        raise FwError(
            f"{state_path(weights_path)}: not a readable dataset state ({clip(str(e), 120)}); "
            "run fw train again to rewrite it"
        ) from e


def _clipped(values):
    text = repr(values)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked(state):
    """The parts every dataset reads, checked: a hand-edited file fails here, in one line naming the key.

    Statistics must be finite with a positive std (a zero or NaN one makes every
    prediction NaN), names distinct, and the sizes agree with each other.
    """
    import math
    import sys

    if not isinstance(state, dict):
        raise ValueError("its 'state' is not a mapping")
    names = state.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise ValueError("class_names must be a list of strings")
    _distinct("class_names", names)
    shape = state.get("shape")
    if not (isinstance(shape, list) and shape and all(_whole(n) and 0 < n < 1 << 31 for n in shape)):
        raise ValueError("shape must be a list of positive whole numbers (below 2**31)")
    size = math.prod(shape)
    pixels = state.get("pixels", False)
    if not isinstance(pixels, bool):
        raise ValueError("pixels must be true or false")
    for key in ("features", "mean", "std"):
        value = state.get(key)
        if value is not None and not isinstance(value, list):
            raise ValueError(f"{key} must be a list")
    features = state.get("features")
    if features is not None:
        if not all(isinstance(f, str) for f in features):
            raise ValueError("features must be a list of column names")
        _distinct("features", features)
        if len(features) != size and "columns" not in state:  # with columns, one-hot widens them (checked by the table)
            raise ValueError(f"features names {len(features)} columns, but shape {shape} holds {size} values")
        if pixels:
            raise ValueError("pixels is true, but the state names features: a table's columns are features, not pixels")
    if ("mean" in state) != ("std" in state):
        raise ValueError("mean and std must come together")
    if "mean" in state:
        for key in ("mean", "std"):
            values = state[key]
            if len(values) != size:
                raise ValueError(f"{key} holds {len(values)} values, but shape {shape} holds {size}; one per feature")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{key} must hold numbers")
            bad = next(
                (i for i, v in enumerate(values) if not abs(v) <= sys.float_info.max or (key == "std" and v <= 0)), None
            )
            if bad is not None:
                need = "a positive finite number" if key == "std" else "a finite number"
                raise ValueError(f"{key}[{bad}] is {_clipped(values[bad])}; each must be {need}")
    if "size" in state and (not isinstance(state["size"], list) or state["size"] != shape[-2:] or len(shape) != 3):
        raise ValueError(f"size {state['size']!r} does not match shape {shape} (channels, height, width)")
    colors = {"rgb": 3, "grayscale": 1}
    if "color" in state and (len(shape) != 3 or colors.get(state["color"]) != shape[0]):
        raise ValueError(f"color {state['color']!r} does not match shape {shape} (rgb has 3 channels, grayscale 1)")
    return state


def _whole(n):
    return isinstance(n, int) and not isinstance(n, bool)


def _distinct(key, names):
    """Each name given, and given once: a class or column named twice (or not at all) cannot be told apart."""
    seen = set()
    for k, name in enumerate(names):
        if not name:
            raise ValueError(f"{key}[{k}] is empty; each must be a name")
        if name in seen:
            raise ValueError(f"{key} names {name!r} twice")
        seen.add(name)
