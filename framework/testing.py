"""A test kit for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

Call these from your plugin's tests; each raises ``AssertionError`` saying
which rule the plugin breaks, and returns nothing when it keeps them all:

    from framework.testing import check_activation, check_dataset, check_layer, check_weight_importer

    def test_my_plugin():
        check_layer(Scale, (784,), factor=3.0)     # a layer, for one example's input shape
        check_activation(Tanh)
        check_activation(LeakyReLU, alpha=0.2)      # parameters, as a config would pass them
        check_dataset(MyDataset, root="path/to/a/small/copy", splits=["test"])
        check_weight_importer(MyImporter, "tests/data/w.h5", sizes=[784, 50, 10])

The kit needs numpy only (no pytest), so it works under any test runner.
"""

import inspect
import warnings

import numpy as np

from .core.activation import Activation
from .core.layer import Layer
from .data.dataset import Dataset
from .data.weights import WeightImporter
from .errors import FwError

__all__ = ["check_activation", "check_dataset", "check_layer", "check_weight_importer"]

#: Inputs at which no activation may overflow (the book's 1/(1+exp(-x)) does below -88).
EXTREMES = np.array([-1e4, -1e3, -100, -89, -88, -20, -1, -1e-3, 0, 1e-3, 1, 20, 88, 89, 100, 1e3, 1e4], np.float32)


class _Fail:
    def __init__(self, what):
        self.what = what

    def __call__(self, ok, message):
        if not ok:
            raise AssertionError(f"{self.what}: {message}")


def _declared_name(fail, cls, base):
    fail(isinstance(cls, type) and issubclass(cls, base), f"{cls!r} is not a subclass of framework.{base.__name__}")
    name = getattr(cls, "name", None)
    fail(
        isinstance(name, str) and name.isidentifier(),
        f"class attribute `name` must be an identifier string, got {name!r}",
    )


# --- activations ---------------------------------------------------------------


def check_activation(cls, seed=0, **params):
    """Check an ``Activation`` subclass against the contract ``fw`` relies on.

    ``params`` are passed to ``cls(**params)``, as the config's
    ``activation: {name: ..., <param>: ...}`` would. The rules:

    - ``name`` is an identifier, ``init`` names an initializer ("he", "xavier"), ``rowwise`` is a bool;
    - ``forward`` returns an array of the input's shape, and float32 stays float32;
    - ``forward`` leaves its input unchanged;
    - batch independence: row i of ``forward(X)`` equals ``forward(X[i:i+1])``;
    - element-wise independence, unless the class sets ``rowwise = True``
      (like softmax): ``forward`` of each element alone gives the same value;
    - at inputs up to +-1e4 the result is finite and numpy reports no
      overflow, division by zero or invalid value;
    - if the class implements ``backward(x, y, dout)``, it keeps the shape
      and dtype and agrees with a central-difference numerical gradient
      (computed in float64, away from kinks at 0; through a forward that
      returns float32 for float64 input or computes in float32 inside, with a
      step and tolerance that suit float32);
    - if it implements ``to_onnx(graph, x)`` and onnx and onnxruntime are
      installed: exported alone, it gives ``forward``'s values in ONNX
      Runtime (within 1e-5).
    """
    fail = _Fail(f"check_activation({getattr(cls, '__name__', cls)!r})")
    try:
        _check_activation(fail, cls, seed, params)
    except AssertionError:
        raise
    except Exception as e:  # the plugin's own code raised: still a failed check, named as one
        raise AssertionError(f"{fail.what}: the activation raised {type(e).__name__}: {e}") from e


def _check_activation(fail, cls, seed, params):
    _declared_name(fail, cls, Activation)
    fail(cls.forward is not Activation.forward, "must implement forward(x)")
    fail(
        isinstance(cls.init, str) and cls.init.isidentifier(),
        f"init must name an initializer such as 'he' or 'xavier', got {cls.init!r}",
    )
    fail(isinstance(cls.rowwise, bool), f"rowwise must be True or False, got {cls.rowwise!r}")
    act = cls(**params)
    rng = np.random.default_rng(seed)

    x = (rng.standard_normal((6, 7)) * 3).astype(np.float32)
    x[0, :3] = 0.0
    original = x.copy()
    y = act.forward(x)
    fail(isinstance(y, np.ndarray), f"forward must return a numpy array, got {type(y).__name__}")
    fail(y.shape == x.shape, f"forward changed the shape: {x.shape} -> {y.shape}")
    fail(
        y.dtype == np.float32, f"forward turned float32 input into {y.dtype}; keep float32 (e.g. np.float32 constants)"
    )
    fail(np.array_equal(x, original), "forward modified its input array in place; return a new array")
    fail(bool(np.isfinite(y).all()), "forward returned NaN or Inf for ordinary inputs")

    for i in range(len(x)):
        row = act.forward(x[i : i + 1])
        fail(
            row.shape == (1, x.shape[1]) and np.allclose(row[0], y[i], rtol=1e-5, atol=1e-6),
            f"row {i} of forward(X) differs from forward(X[{i}:{i + 1}]): rows must not depend on other rows",
        )
    if not cls.rowwise:
        alone = act.forward(x.reshape(-1, 1)).reshape(x.shape)
        fail(
            np.allclose(alone, y, rtol=1e-5, atol=1e-6),
            "forward(X)[i, j] depends on other elements of X; "
            "set the class attribute rowwise = True if it is a function of whole rows, like softmax",
        )

    extremes = np.stack([EXTREMES, -EXTREMES[::-1] * 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
                big = act.forward(extremes)
        except (FloatingPointError, RuntimeWarning) as e:
            fail(False, f"forward at inputs up to +-1e4: {e}; rewrite it so it cannot overflow (see Sigmoid)")
    fail(big.dtype == np.float32 and bool(np.isfinite(big).all()), "forward gave NaN or Inf at inputs up to +-1e4")

    if cls.has_backward():
        _check_backward(fail, act, rng)
    if cls.has_onnx():
        _check_onnx(fail, act, x, y)


def _check_backward(fail, act, rng):
    x32 = rng.uniform(0.1, 3, (3, 5)).astype(np.float32) * rng.choice([-1, 1], (3, 5)).astype(np.float32)
    dout32 = rng.standard_normal((3, 5)).astype(np.float32)
    dx = act.backward(x32, act.forward(x32), dout32)
    fail(
        isinstance(dx, np.ndarray) and dx.shape == x32.shape, f"backward must return an array shaped like x {x32.shape}"
    )
    fail(dx.dtype == np.float32, f"backward turned float32 into {dx.dtype}; keep float32")

    x, dout = x32.astype(np.float64), dout32.astype(np.float64)
    y = act.forward(x)
    cast = _cast(fail, y)
    analytic = act.backward(x, y, dout)
    ok, worst, numeric, note = _agrees(analytic, lambda: act.forward(x), dout, x, cast)
    fail(
        ok,
        f"backward disagrees with the numerical gradient: at x={x[worst]:.4g} it gives {analytic[worst]:.6g}, "
        f"numerically {numeric:.6g} (backward(x, y, dout) must return dout * f'(x), shaped like x){note}",
    )


def _cast(fail, y) -> str:
    """How the numerical gradient is taken, by the dtype forward returned for float64 input: "" for
    float64; for float32 (a forward ending in ``.astype(np.float32)``), the note failures carry."""
    if y.dtype == np.float64:
        return ""
    fail(
        y.dtype == np.float32,
        f"forward returns {y.dtype} for float64 input, so the kit cannot take a numerical gradient through it; "
        "return x's dtype (e.g. `.astype(x.dtype)`) to let it check in float64",
    )
    return (
        f"; forward returns float32 for float64 input, so the numerical gradient was taken at float32 precision "
        f"(step {_STEP:g}, tolerance {_RTOL:g}); "
        "return x's dtype (e.g. `.astype(x.dtype)`) to let the kit check in float64"
    )


#: Through a forward that rounds to float32: the relative step, the relative tolerance, and how many times
#: the rounding of its result the loss's error may be (a forward that computes in float32 rounds inside too).
_STEP, _RTOL, _NOISE = 1e-2, 1e-2, 16


def _agrees(analytic, forward, dout, target, note):
    """``(ok, worst index, numerical value there, note)``: does ``analytic`` agree with the numerical
    gradient of ``sum(forward() * dout)`` with respect to ``target`` (changed in place, and put back)?

    ``note`` is ``_cast``'s. A forward that returns float64 gets central differences with step 1e-6,
    unless it rounds to float32 inside (its result does not move when ``target`` moves by 1e-12):
    then, as through a cast, a step of 1e-6 would measure rounding alone (``_float32_excess``), and
    the note returned says so.
    """
    analytic = np.asarray(analytic, np.float64)
    forward = _copied(forward)  # a result that is a view of its input (Flatten's) must not move with it
    base = forward()
    if not note and _rounds_inside(forward, target, base):
        note = (
            "; forward's result does not move when its input or a parameter moves by 1e-12, as when it rounds to "
            f"float32 inside, so the numerical gradient was taken at float32 precision (step {_STEP:g}, tolerance "
            f"{_RTOL:g}); compute in x's dtype to let the kit check in float64"
        )
    if not note:
        eps = 1e-6
        numeric = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            keep = target[idx]
            target[idx] = keep + eps
            up = np.sum(forward() * dout)
            target[idx] = keep - eps
            down = np.sum(forward() * dout)
            target[idx] = keep
            numeric[idx] = (up - down) / (2 * eps)
        worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), target.shape)
        return bool(np.allclose(analytic, numeric, rtol=1e-4, atol=1e-6)), worst, numeric[worst], ""
    excess, central = np.zeros(target.shape), np.zeros(target.shape)
    for idx in np.ndindex(target.shape):
        excess[idx], central[idx] = _float32_excess(analytic[idx], forward, dout, target, idx, base)
    worst = np.unravel_index(np.argmax(excess), target.shape)
    return bool((excess <= 0).all()), worst, central[worst], note


def _copied(forward):
    return lambda: np.array(forward(), copy=True)


def _rounds_inside(forward, target, base) -> bool:
    """Does a forward that returns float64 compute at lower precision, its result unmoved when every
    value of ``target`` moves by about 1e-12 (in random directions, which no normalisation cancels)?"""
    keep = target.copy()
    target += np.random.default_rng(0).choice([-1.0, 1.0], target.shape) * 2.0**-40 * np.maximum(np.abs(keep), 1)
    moved = not np.array_equal(forward(), base)
    target[...] = keep
    return not moved and bool(base.any())


def _float32_excess(value, forward, dout, target, idx, base):
    """``(how far beyond its tolerance value is, the central difference)`` for ``target[idx]``, through
    a forward whose result ``base`` is rounded to float32.

    The step is 1% of the value (at least 1e-2). ``value`` must agree with the 4-point central
    difference or with either 3-point one-sided one, within 1% and the rounding of the outputs the step
    changed (the others round alike every time and cancel, but for the float64 sum's own rounding).
    Where the third and fourth differences show a kink within the step (a ReLU's, a max's), the
    one-sided difference on its far side is exact, and at a quarter and a sixteenth of the step kinks
    on both sides are left behind.
    """
    keep, weight = target[idx], np.abs(dout)
    result = None
    for h in _STEP * max(1.0, abs(float(keep))) / np.array([1, 4, 16]):
        ys = {0: base}
        for k in (-2, -1, 1, 2):
            target[idx] = keep + k * h
            ys[k] = forward()
        target[idx] = keep
        f = {k: float(np.sum(y * dout)) for k, y in ys.items()}
        changed = np.logical_or.reduce([y != base for y in ys.values()])
        rounding = (
            max(float(np.sum(np.abs(y[changed]) * weight[changed])) for y in ys.values()) * np.finfo(np.float32).eps / 2
        )
        rounding += float(np.sum(np.abs(base) * weight)) * np.finfo(np.float64).eps * 4  # and of the sum itself
        noise = _NOISE * 4 * rounding / h  # 4: the one-sided differences' weights, (3 + 4 + 1) / 2
        estimates = np.array(
            [
                (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h),
                (3 * f[0] - 4 * f[-1] + f[-2]) / (2 * h),
                (-3 * f[0] + 4 * f[1] - f[2]) / (2 * h),
            ]
        )
        beyond = float(np.min(np.abs(value - estimates) - noise - _RTOL * np.abs(estimates)))
        result = result or (beyond, estimates[0])
        if beyond <= 0:
            return 0.0, estimates[0]
        third, fourth = f[2] - 3 * f[1] + 3 * f[0] - f[-1], f[-2] - 4 * f[-1] + 6 * f[0] - 4 * f[1] + f[2]
        if max(abs(third), abs(fourth)) / h <= noise + _RTOL / 10 * np.max(np.abs(estimates)):
            break  # smooth within the step (a kink shows in these differences): the estimates stand
    return result


# --- layers ---------------------------------------------------------------------


def check_layer(cls, input_shape, seed=0, **params):
    """Check a ``Layer`` subclass against the contract ``fw`` relies on, for one example's ``input_shape``.

    ``params`` are passed to ``cls(**params)``, as ``model.layers`` would. A
    layer with an ``init`` attribute gets fw's He initialiser, as a ReLU
    network would give it. The rules:

    - ``name`` is an identifier; ``build(input_shape, rng)`` returns the output
      shape, a tuple of positive whole numbers, and makes float32 ``params``
      (and ``buffers``);
    - ``forward(x, train=False)`` returns float32 of the shape ``build``
      promised for float32 input, leaves its input unchanged, is deterministic,
      and treats each example of the batch on its own;
    - ``forward(x, train=True)`` returns the same shape;
    - if the class implements ``backward(dout)``: it returns dL/dx shaped like
      x (float32 for float32), fills ``grads[k]`` for every ``params`` key with
      the parameter's shape, and agrees with a central-difference numerical
      gradient, for the input and for every parameter (computed in float64,
      with the same random draws, e.g. dropout's mask, at every evaluation;
      through a forward that returns float32 for float64 input, such as one
      ending in ``.astype(np.float32)``, or that computes in float32 inside,
      with a step and tolerance that suit float32: a coarser check, which
      computing in x's dtype avoids);
    - if it implements ``to_onnx(graph, x)`` and onnx and onnxruntime are
      installed: exported alone, it gives ``forward(x, train=False)``'s values
      in ONNX Runtime (within 1e-5).
    """
    fail = _Fail(f"check_layer({getattr(cls, '__name__', cls)!r})")
    try:
        _check_layer(fail, cls, tuple(input_shape), seed, params)
    except AssertionError:
        raise
    except Exception as e:  # the plugin's own code raised: still a failed check, named as one
        raise AssertionError(f"{fail.what}: the layer raised {type(e).__name__}: {e}") from e


def _new_layer(cls, input_shape, seed, params):
    """``(layer, rng, output shape)``: made as a config's layer is (an ``init`` parameter gets He), built."""
    from .config.assemble import LayerSpec, make_layer
    from .plugin_system.manager import get_registry

    registry = get_registry()
    layer = make_layer(
        cls, LayerSpec(cls.name, params, "check_layer"), registry, registry.entries["initializers"]["he"]
    )
    rng = np.random.default_rng(seed)
    return layer, rng, layer.build(input_shape, rng)


def _check_layer(fail, cls, input_shape, seed, params):
    _declared_name(fail, cls, Layer)
    fail(cls.forward is not Layer.forward, "must implement forward(x, train=False)")
    layer, rng, out_shape = _new_layer(cls, input_shape, seed, params)
    fail(
        isinstance(out_shape, tuple) and all(isinstance(s, int) and s > 0 for s in out_shape),
        f"build must return the output shape, a tuple of positive whole numbers, got {out_shape!r}",
    )
    for table in ("params", "buffers"):
        for key, a in getattr(layer, table).items():
            fail(isinstance(a, np.ndarray) and a.dtype == np.float32, f"{table}['{key}'] must be a float32 array")

    x = np.random.default_rng(seed + 1).standard_normal((4, *input_shape)).astype(np.float32)
    original = x.copy()
    y = layer.forward(x, train=False)
    fail(isinstance(y, np.ndarray), f"forward must return a numpy array, got {type(y).__name__}")
    fail(y.shape == (4, *out_shape), f"forward returned shape {y.shape}; build promised {(4, *out_shape)}")
    fail(
        y.dtype == np.float32, f"forward turned float32 input into {y.dtype}; keep float32 (e.g. np.float32 constants)"
    )
    fail(np.array_equal(x, original), "forward modified its input array in place; return a new array")
    fail(bool(np.isfinite(y).all()), "forward returned NaN or Inf for ordinary inputs")
    fail(
        np.array_equal(layer.forward(x, train=False), y),
        "forward(x, train=False) gave a different result the second time",
    )
    for i in range(len(x)):
        fail(
            np.allclose(layer.forward(x[i : i + 1], train=False)[0], y[i], rtol=1e-5, atol=1e-6),
            f"example {i} of forward(X) differs from forward(X[{i}:{i + 1}]): with train=False, "
            "examples must not depend on each other",
        )
    y_train = layer.forward(x, train=True)
    fail(
        isinstance(y_train, np.ndarray) and y_train.shape == y.shape and y_train.dtype == np.float32,
        "forward(x, train=True) must return float32 of the same shape as with train=False",
    )
    if cls.has_backward():
        _check_layer_backward(fail, cls, input_shape, seed, params, y.shape)
    if cls.has_onnx():
        _check_onnx(fail, layer, x, layer.forward(x, train=False))


def _check_layer_backward(fail, cls, input_shape, seed, params, out_shape):
    layer, rng, _ = _new_layer(cls, input_shape, seed, params)
    data = np.random.default_rng(seed + 2)
    x32 = data.standard_normal((4, *input_shape)).astype(np.float32)
    dout32 = data.standard_normal(out_shape).astype(np.float32)
    layer.forward(x32, train=True)
    dx = layer.backward(dout32)
    fail(isinstance(dx, np.ndarray) and dx.shape == x32.shape, f"backward must return dL/dx shaped like x {x32.shape}")
    fail(dx.dtype == np.float32, f"backward turned float32 into {dx.dtype}; keep float32")
    for key, p in layer.params.items():
        g = layer.grads.get(key)
        fail(
            isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype == np.float32,
            f"backward must fill grads['{key}'] with a float32 array of shape {p.shape}, like params['{key}']",
        )

    # In float64, with the random state the forward pass starts from put back every time.
    for table in (layer.params, layer.buffers):
        for key in table:
            table[key] = table[key].astype(np.float64)
    start = rng.bit_generator.state
    x, dout = x32.astype(np.float64), dout32.astype(np.float64)

    def forward():
        rng.bit_generator.state = start
        return layer.forward(x, train=True)

    cast = _cast(fail, forward())
    analytic = {"x": layer.backward(dout), **{k: layer.grads[k].copy() for k in layer.params}}
    for what, target in [("x", x), *layer.params.items()]:
        got = analytic[what]
        ok, worst, numeric, note = _agrees(got, forward, dout, target, cast)
        name = "dL/dx" if what == "x" else f"grads['{what}']"
        fail(
            ok,
            f"backward's {name} disagrees with the numerical gradient: at index {tuple(map(int, worst))} it gives "
            f"{got[worst]:.6g}, numerically {numeric:.6g}{note}",
        )


def _check_onnx(fail, layer, x, y):
    """The layer exported alone runs in ONNX Runtime and gives ``y`` for ``x``; skipped without onnxruntime."""
    try:
        import onnx  # noqa: F401 - only whether it is installed
        import onnxruntime
    except ImportError:
        return
    from .core.network import Network
    from .interchange.onnx_export import export

    net = Network([layer], [f"layer 0 ({layer.name})"])
    net.input_shape, net.shapes = x.shape[1:], [y.shape[1:]]  # built already: building again would draw new weights
    try:
        model = export(net, class_names=[], config_text="", fw_version="check")
    except FwError as e:
        fail(False, f"to_onnx: {e}")
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    fail(got.shape == y.shape, f"to_onnx: in ONNX Runtime its output has shape {got.shape}, forward's {y.shape}")
    worst = float(np.abs(got - y).max()) if y.size else 0.0
    fail(
        np.allclose(got, y, rtol=1e-5, atol=1e-5),
        f"to_onnx: ONNX Runtime's output differs from forward's by up to {worst:.3g}",
    )


# --- datasets -------------------------------------------------------------------


def check_dataset(cls, root=None, *, splits=None, sample=64, **params):
    """Check a ``Dataset`` subclass on its real files, then its ``load`` options on a small sample.

    ``root`` is passed to ``cls(root)`` (None: the default data folder), and
    ``params`` as the ``dataset:`` keys a config would give (``path=...``);
    ``splits`` limits the splits read (default: all of ``cls.splits``). For
    each split, ``load_raw`` must return uint8 images of shape (N, H, W) or
    (N, C, H, W), or a table of numbers (N, F), and N integer labels in
    ``0..num_classes-1``, the same on a second call. Then ``sample`` evenly
    spaced examples are put through every combination of ``normalize``,
    ``flatten`` and ``one_hot_label``. A table whose dataset has a preparation
    (``preparation_layer``: ``csv``'s blanks filled and words one-hot) may hold
    NaN for a blank in its raw rows; prepared, it has the preparation's width
    (``shape``), no NaN, and the values of the layer fw export puts first.
    """
    fail = _Fail(f"check_dataset({getattr(cls, '__name__', cls)!r})")
    _declared_name(fail, cls, Dataset)
    fail(cls.load_raw is not Dataset.load_raw, "must implement load_raw(split)")
    fail(
        isinstance(cls.splits, tuple | list) and cls.splits and all(isinstance(s, str) for s in cls.splits),
        f"splits must be a non-empty tuple of names, got {cls.splits!r}",
    )
    ds = cls(root, **params) if root is not None else cls(**params)
    k = ds.num_classes
    fail(isinstance(k, int) and k >= 2, f"num_classes must be a whole number >= 2, got {k!r}")
    names = ds.class_names
    if names is not None:
        fail(
            len(names) == k and all(isinstance(n, str) and n for n in names),
            f"class_names must hold {k} non-empty strings (one per label), got {names!r}",
        )
    for split in splits or cls.splits:
        fail(split in cls.splits, f"split {split!r} is not in splits {cls.splits!r}")
        images, labels = ds.load_raw(split)
        where = f"load_raw({split!r})"
        fail(isinstance(images, np.ndarray) and isinstance(labels, np.ndarray), f"{where} must return two numpy arrays")
        table = images.ndim == 2 and images.dtype.kind in "iuf" and images.dtype != np.uint8
        fail(
            table or images.dtype == np.uint8,
            f"{where}: images must be uint8 (0..255), or a table of other numbers (N, F), got {images.dtype}",
        )
        fail(
            table or images.ndim in (3, 4),
            f"{where}: images must be (N, H, W) or (N, C, H, W), got shape {images.shape}",
        )
        fail(len(images) > 0, f"{where}: no images")
        fail(
            labels.ndim == 1 and labels.dtype.kind in "iu",
            f"{where}: labels must be integers of shape (N,), got {labels.dtype} {labels.shape}",
        )
        fail(len(labels) == len(images), f"{where}: {len(images)} images but {len(labels)} labels")
        fail(
            labels.min() >= 0 and labels.max() < k,
            f"{where}: labels must lie in 0..{k - 1}, got {labels.min()}..{labels.max()}",
        )
        pick = np.unique(np.linspace(0, len(images) - 1, min(sample, len(images))).astype(int))
        img, lab = images[pick].copy(), labels[pick].copy()
        again_images, again_labels = ds.load_raw(split)
        fail(
            np.array_equal(again_images[pick], img, equal_nan=img.dtype.kind == "f")
            and np.array_equal(again_labels[pick], lab),
            f"{where} returned different data on a second call",
        )
        _check_load_options(fail, cls, ds, split, img, lab)
    try:
        ds.load("no_such_split")
    except FwError as e:
        fail("no_such_split" in str(e), f"the error for an unknown split must name it, got: {e}")
    else:
        fail(False, "load('no_such_split') must raise FwError")


def _check_load_options(fail, cls, ds, split, img, lab):
    """Run Dataset.load's options on the sample, through the class's own load()."""
    pixels = ds.takes_pixels()
    prepared = None if pixels else getattr(ds, "preparation_layer", None)
    if prepared is not None:  # the preparation fitted on the whole train split, before the sample stands in for it
        layers = {normalize: prepared(normalize) for normalize in (True, False)}
        width = int(np.prod(ds.shape))
        fail(
            width == layers[True].build(img.shape[1:], np.random.default_rng(0))[0],
            f"shape {ds.shape} is not the width its preparation makes",
        )
    elif not pixels:
        mean, std = ds.standardization()
        fail(
            not np.isnan(img).any(),
            "load_raw: a table holds NaN, but the dataset has no preparation (preparation_layer) to fill it",
        )
    sample = object.__new__(type(f"{cls.__name__}Sample", (cls,), {"load_raw": lambda self, s: (img, lab)}))
    sample.__dict__.update(vars(ds))
    n = len(img)
    chw = (
        (n, img.shape[1] if prepared is None else width) if img.ndim == 2 else img.reshape(n, -1, *img.shape[-2:]).shape
    )
    for normalize in (True, False):
        for flatten in (True, False):
            for one_hot in (True, False):
                opts = dict(normalize=normalize, flatten=flatten, one_hot_label=one_hot)
                x, t = sample.load(split, **opts)
                fail(x.dtype == np.float32, f"load({opts}): x must be float32, got {x.dtype}")
                want = (n, int(np.prod(chw[1:]))) if flatten else chw
                fail(x.shape == want, f"load({opts}): x has shape {x.shape}, expected {want}")
                if pixels:
                    raw = img.reshape(want).astype(np.float32)
                    expected = raw / np.float32(255) if normalize else raw
                elif prepared is not None:
                    fail(not np.isnan(x).any(), f"load({opts}): x holds NaN; the preparation must fill every blank")
                    expected = layers[normalize].forward(img)
                else:
                    flat = img.reshape(n, -1).astype(np.float64)
                    expected = ((flat - mean) / std if normalize else flat).astype(np.float32).reshape(want)
                fail(np.array_equal(x, expected), f"load({opts}): wrong {'pixel' if pixels else 'feature'} values")
                if one_hot:
                    fail(t.shape == (n, ds.num_classes), f"load({opts}): one-hot labels have shape {t.shape}")
                    fail(
                        np.array_equal(t.argmax(1), lab) and np.all(t.sum(1) == 1),
                        f"load({opts}): wrong one-hot labels",
                    )
                else:
                    fail(np.array_equal(t, lab), f"load({opts}): labels differ from load_raw's")


# --- weight importers ------------------------------------------------------------


def check_weight_importer(cls, path, *, sizes=None):
    """Check a ``WeightImporter`` subclass on a real weights file ``path``.

    ``load(path)`` must return a dict of names (``W1``, ``b1``, ...) to numeric
    numpy arrays; with ``sizes`` (e.g. ``[784, 50, 100, 10]``) the arrays must
    also pass fw's shape check. A missing file must raise ``FwError`` naming it.
    """
    from pathlib import Path

    from .data.weights import check_weights

    fail = _Fail(f"check_weight_importer({getattr(cls, '__name__', cls)!r})")
    _declared_name(fail, cls, WeightImporter)
    fail(cls.load is not WeightImporter.load, "must implement load(path)")
    fail(
        not inspect.signature(cls).parameters
        or all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in inspect.signature(cls).parameters.values()
        ),
        "must be constructible without arguments",
    )
    importer = cls()
    arrays = importer.load(Path(path))
    fail(isinstance(arrays, dict) and arrays, f"load must return a non-empty dict, got {type(arrays).__name__}")
    for key, a in arrays.items():
        fail(isinstance(key, str), f"load returned a non-string key {key!r}")
        fail(isinstance(a, np.ndarray) and a.dtype.kind in "fiu", f"'{key}' must be a numeric numpy array")
    if sizes is not None:
        try:
            check_weights(arrays, list(sizes), path)
        except FwError as e:
            fail(False, f"the arrays do not fit sizes {list(sizes)}: {e}")
    missing = Path(path).with_name(Path(path).name + ".missing")
    try:
        importer.load(missing)
    except FwError as e:
        fail(str(missing) in str(e), f"the error for a missing file must name it, got: {e}")
    except Exception as e:  # noqa: BLE001 - any other exception is the finding
        fail(False, f"load of a missing file raised {type(e).__name__}: {e}; raise FwError naming the file")
    else:
        fail(False, f"load({missing}) of a missing file must raise FwError")
