"""framework.testing: every built-in plugin passes the kit, and each rule catches a plugin that breaks it."""

import gzip
import hashlib

import numpy as np
import pytest

import framework.plugins.activations as builtin
from framework import Activation, Dataset, FwError, WeightImporter
from framework.plugins.idx import IdxDataset
from framework.plugins.mnist import MNIST
from framework.plugins.npz_importer import NpzImporter
from framework.plugins.pickle_importer import PickleImporter
from framework.testing import check_activation, check_dataset, check_weight_importer

BUILTIN_ACTIVATIONS = [builtin.Sigmoid, builtin.Softmax, builtin.ReLU, builtin.Identity, builtin.Step]


@pytest.mark.parametrize("cls", BUILTIN_ACTIVATIONS, ids=lambda c: c.name)
def test_builtin_activations_pass(cls):
    check_activation(cls)


def test_softmax_declares_itself_rowwise_and_the_rest_are_elementwise():
    assert builtin.Softmax.rowwise is True
    assert not any(c.rowwise for c in BUILTIN_ACTIVATIONS if c is not builtin.Softmax)
    assert Activation.rowwise is False


def test_identity_and_step_are_the_books():
    x = np.array([[-1.0, 0.0, 0.5, 2.0]], np.float32)
    assert builtin.Identity()(x).tolist() == x.tolist()
    y = builtin.Step()(x)
    assert y.tolist() == [[0.0, 0.0, 1.0, 1.0]] and y.dtype == np.float32


def test_backward_is_optional_and_its_absence_is_a_clear_error():
    assert all(c.has_backward() for c in (builtin.ReLU, builtin.Identity, builtin.Step))

    class NoGrad(Activation):
        name = "no_grad"

        def forward(self, x):
            return x

    assert not NoGrad.has_backward()
    x = np.zeros((1, 2), np.float32)
    with pytest.raises(
        FwError, match=r"activation 'no_grad' \(NoGrad\) has no derivative; implement backward\(self, x, y, dout\)"
    ):
        NoGrad().backward(x, x, x)
    check_activation(NoGrad)  # fw run does not need it, so neither does the kit


def act(forward, backward=None, **attrs):
    ns = {"name": "broken", "forward": lambda self, x: forward(x), **attrs}
    if backward:
        ns["backward"] = lambda self, x, y, dout: backward(x, y, dout)
    return type("Broken", (Activation,), ns)


@pytest.mark.parametrize(
    "cls, problem",
    [
        (act(lambda x: 1 / (1 + np.exp(-x))), "overflow encountered in exp"),  # the book's sigmoid
        (act(lambda x: x.astype(np.float64)), "turned float32 input into float64"),
        (act(lambda x: x[:, :1]), "changed the shape"),
        (act(lambda x: x - x.mean(axis=0)), "rows must not depend on other rows"),
        (act(lambda x: x / (np.abs(x).sum(axis=1, keepdims=True) + 1)), "set the class attribute rowwise = True"),
        (act(lambda x: np.maximum(x, 0, out=x)), "modified its input"),
        (act(lambda x: np.full_like(x, np.nan)), "NaN or Inf"),
        (act(np.tanh, backward=lambda x, y, dout: dout * (1 - y)), "disagrees with the numerical gradient"),
        (act(np.tanh, backward=lambda x, y, dout: (dout * (1 - y * y)).astype(np.float64)), "backward turned float32"),
        (act(np.tanh, name="not an identifier"), "identifier"),
        (act(np.tanh, rowwise="yes"), "rowwise must be True or False"),
    ],
)
def test_each_rule_catches_a_broken_activation(cls, problem):
    with pytest.raises(AssertionError, match=problem):
        check_activation(cls)


def test_a_rowwise_activation_still_gets_the_batch_check():
    check_activation(act(lambda x: x / np.abs(x).max(axis=1, keepdims=True).clip(1e-3), rowwise=True))


# --- datasets: a small generated IDX dataset, the real ones, and broken ones -----------


def idx_gz(a):
    payload = bytes([0, 0, 8, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.tobytes()
    return gzip.compress(payload), hashlib.md5(payload).hexdigest()


@pytest.fixture
def generated(tmp_path):
    """A 3-class IdxDataset with 12 random 5x4 images, written as real gzipped IDX files."""
    rng = np.random.default_rng(1)
    arrays = {
        "im.gz": rng.integers(0, 256, (12, 5, 4), dtype=np.uint8),
        "lb.gz": rng.integers(0, 3, 12).astype(np.uint8),
    }
    md5 = {}
    for name, a in arrays.items():
        data, md5[name] = idx_gz(a)
        (tmp_path / name).write_bytes(data)

    class Generated(IdxDataset):
        name = "generated"
        splits = ("test",)
        num_classes = 3
        class_names = ("a", "b", "c")
        files = {"test": ("im.gz", "lb.gz")}

    Generated.md5 = md5
    return Generated, tmp_path


def test_a_generated_idx_dataset_passes(generated):
    cls, root = generated
    check_dataset(cls, root, sample=5)


def test_mnist_passes(mnist_dir):
    check_dataset(MNIST, mnist_dir, splits=["test"])  # the shared copy has no train images


def raw_dataset(images, labels, **attrs):
    ns = {
        "name": "raw",
        "splits": ("test",),
        "num_classes": 3,
        "load_raw": lambda self, split: (images, labels),
        **attrs,
    }
    return type("Raw", (Dataset,), ns)


IMAGES = np.zeros((4, 2, 2), np.uint8)
LABELS = np.array([0, 1, 2, 0])


@pytest.mark.parametrize(
    "cls, problem",
    [
        (raw_dataset(IMAGES.astype(np.float32), LABELS), "images must be uint8"),
        (raw_dataset(IMAGES, LABELS + 1), r"labels must lie in 0\.\.2"),
        (raw_dataset(IMAGES, LABELS[:3]), "4 images but 3 labels"),
        (raw_dataset(IMAGES[:, 0], LABELS), r"images must be \(N, H, W\)"),
        (raw_dataset(IMAGES, LABELS, class_names=("a", "b")), "class_names must hold 3"),
        (raw_dataset(IMAGES, LABELS.astype(float)), "labels must be integers"),
    ],
)
def test_each_rule_catches_a_broken_dataset(cls, problem):
    with pytest.raises(AssertionError, match=problem):
        check_dataset(cls)


# --- weight importers -------------------------------------------------------------


def test_the_builtin_importers_pass(book_weights, tmp_path):
    check_weight_importer(PickleImporter, book_weights, sizes=[784, 50, 100, 10])
    arrays = PickleImporter().load(book_weights)
    np.savez(tmp_path / "w.npz", **arrays)
    check_weight_importer(NpzImporter, tmp_path / "w.npz", sizes=[784, 50, 100, 10])


def test_an_importer_that_leaks_oserror_is_caught(book_weights):
    class Leaky(WeightImporter):
        name = "leaky"

        def load(self, path):
            if not path.exists():
                open(path)  # noqa: SIM115 - FileNotFoundError instead of a one-line FwError
            return PickleImporter().load(path)

    with pytest.raises(AssertionError, match="raised FileNotFoundError"):
        check_weight_importer(Leaky, book_weights)
    with pytest.raises(AssertionError, match=r"do not fit sizes \[784, 10\]"):
        check_weight_importer(PickleImporter, book_weights, sizes=[784, 10])


def test_an_exception_from_the_plugin_is_a_failed_check_too():
    import numpy as np

    from framework import Activation
    from framework.testing import check_activation

    class Grumpy(Activation):
        name = "grumpy"

        def __init__(self, mood="bad"):
            if mood != "good":
                raise RuntimeError("not today")

        def forward(self, x):
            return np.tanh(x)

    with pytest.raises(
        AssertionError, match=r"check_activation\('Grumpy'\): the activation raised RuntimeError: not today"
    ):
        check_activation(Grumpy)
    check_activation(Grumpy, mood="good")
