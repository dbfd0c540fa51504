"""Every bundled config exports, and ONNX Runtime agrees with fw run on the real test set.

With its trained weights where it ships them (mnist_infer: the book's); the
others are trained here for one epoch on 2,000 test images, enough to give
every layer (batch-norm's running statistics too) weights that are not their
initial ones. ORT must give the argmax fw gives for every image, and
probabilities within 1e-5.
"""

import numpy as np
import pytest

import framework as fw
from conftest import SHARED, need
from framework.data import bundled
from framework.training.trainer import Trainer
from onnx_kit import ort_predict
from test_cli import fw as run_fw

pytestmark = pytest.mark.slow

#: What each dataset needs from ../shared/data.
NEEDS = {
    "mnist": ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
    "fashion_mnist": ("fashion-mnist/t10k-images-idx3-ubyte.gz", "fashion-mnist/t10k-labels-idx1-ubyte.gz"),
}


@pytest.fixture(autouse=True)
def _fresh_registry():
    from framework.plugin_system import manager as plugins

    plugins._build.cache_clear()


def trained_weights(name, tmp_path):
    """Overrides giving ``name`` weights: its own when it ships them, else one epoch on 2,000 test images."""
    cfg = fw.load_config(name)
    if name == "mnist_infer" or cfg.weights is None:
        return []
    path = tmp_path / f"weights{cfg.weights.path[cfg.weights.path.rfind('.') :]}"
    # Adam on the whole split, whatever the config's own experiment (chapter 6's SGD on 300 images
    # learns little in one epoch, on purpose): the export is compared on weights that mean something.
    overrides = [
        f"weights.path={path}",
        "train.epochs=1",
        "dataset.limit=null",
        "train.optimizer={name: adam, lr: 0.001}",
        "model.init=he",
    ]
    trainer = Trainer(fw.load_config(name, overrides))
    x, t = fw.load_dataset(trainer.cfg)
    trainer.fit(x[:2000], t[:2000], x[:100], t[:100])
    trainer.output.write(trainer.net)
    return overrides


def probabilities(net, x, rows=1000):
    return np.concatenate([net.predict(x[a : a + rows]) for a in range(0, len(x), rows)])


@pytest.mark.parametrize("name", bundled.config_names())
def test_every_bundled_config_exports_and_onnx_runtime_agrees(name, capsys, tmp_path, monkeypatch):
    need(*NEEDS.get(fw.load_config(name, require_weights=False).dataset.name, ()))  # a new dataset: add its files here
    monkeypatch.setenv("FW_DATA_DIR", str(SHARED))  # the datasets, and the book's weights for mnist_infer
    monkeypatch.chdir(tmp_path)  # where a config's relative runs/ paths land
    overrides = trained_weights(name, tmp_path)
    out = tmp_path / f"{name}.onnx"
    code, stdout, err = run_fw(capsys, "export", name, out, *overrides)
    assert code == 0, err
    cfg = fw.load_config(name, overrides)
    net = fw.build_network(cfg)
    x, t = fw.load_dataset(cfg)
    got = ort_predict(str(out), x)
    labels = net.classify(x)  # what fw run counts
    assert np.array_equal(got.argmax(axis=1), labels), (
        f"{name}: {(got.argmax(axis=1) != labels).sum()} of {len(x)} differ"
    )
    np.testing.assert_allclose(got, probabilities(net, x), rtol=0, atol=1e-5)
    if name == "mnist_infer":
        assert (labels == t).sum() == 9352
    else:  # the trained weights are not chance-level: the comparison means something
        assert (labels == t).mean() > 0.2 or cfg.weights is None  # chance is 0.1
