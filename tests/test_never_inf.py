"""Never write or run Inf: weights that overflow float32, arrays that blow up in training, and who is to blame.

Before, each case here exited 0 with a wrong result, wrote Inf into a weights
file, or named fw's own dense layer or the optimizer for a plugin's bug.
"""

from pathlib import Path

import numpy as np
import pytest

from test_cli import BOOK, fw

MODULES = Path(__file__).parent / "plugin_modules"
LAYERS = str(Path(__file__).resolve().parents[1] / "configs" / "fashion_mlp_layers.yaml")


@pytest.fixture
def late_bugs(monkeypatch):
    monkeypatch.syspath_prepend(str(MODULES))
    return [
        "plugins=[late_bugs]",
        "dataset.name=tiny_random",
        "train.epochs=1",
        "train.batch_size=10",
        "weights.importer=npz",
        "weights.url=null",
        "weights.sha256=null",
    ]


def test_a_float64_weight_beyond_float32_is_refused_not_run_as_inf(capsys, tmp_path, mnist_dir, book_weights):
    from framework.plugins.pickle_importer import PickleImporter

    arrays = {k: v.astype(np.float64) for k, v in PickleImporter().load(book_weights).items()}
    arrays["W2"][3, 4] = 1e39  # finite in float64; Inf in the network's float32
    np.savez(tmp_path / "w.npz", **arrays)
    code, out, err = fw(
        capsys, "run", BOOK, f"dataset.root={mnist_dir}", "weights.importer=npz", f"weights.path={tmp_path / 'w.npz'}"
    )
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "'W2' holds values beyond float32's range" in err


def test_an_array_that_overflows_while_the_loss_stays_finite_stops_training(capsys, tmp_path, late_bugs):
    out_dir = tmp_path / "runs" / "inf"
    code, _, err = fw(
        capsys,
        "train",
        BOOK,
        *late_bugs,
        f"weights.path={out_dir / 'w.npz'}",
        "model.layers=[{name: dense, units: 8}, inf_buffer, relu, {name: dense, units: 10}, softmax]",
    )
    assert code == 1 and "training diverged in epoch 1" in err
    assert "model.layers[1] (inf_buffer)'s 'stat' became Inf or NaN while the loss stayed finite" in err
    assert "fw run" not in err and not (tmp_path / "runs").exists()  # nothing written, no empty folder left


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["default", "Haswell"])
def test_divergence_is_blamed_on_the_lr_not_on_batch_norm(fashion_full_dir, tmp_path, kernel):
    """fw train fashion_mlp_layers with sgd at lr 1e20 once said batch_norm 'returned NaN ...; fix its forward'."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"} if kernel == "Haswell" else dict(os.environ)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.cli",
            "train",
            LAYERS,
            f"dataset.root={fashion_full_dir}",
            "train.epochs=1",
            "train.optimizer={name: sgd, lr: 1e20}",
            f"weights.path={tmp_path / 'runs' / 'w.npz'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 1 and "training diverged in epoch 1 at step" in out.stderr, out.stderr
    assert "lower train.optimizer.lr (now 1e+20)" in out.stderr and "fix its forward" not in out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.layers[1].eps=.inf", "eps must be a small positive number"),
        ("model.layers[1].eps=1e300", "eps must be a small positive number"),
        ("model.layers[1].eps=true", "eps must be a small positive number"),
        ("model.layers[1].momentum=false", "momentum must be a number at least 0 and below 1"),
        (
            "model.init={name: normal, std: .inf}",
            "model.init: initializer 'normal': std must be a positive finite number",
        ),
        (
            "train.optimizer={name: sgd, lr: true}",
            "train.optimizer: optimizer 'sgd': lr must be a positive finite number",
        ),
    ],
)
def test_layer_initialiser_and_optimizer_parameters_are_checked_at_config_time(capsys, override, message):
    code, out, err = fw(capsys, "config", LAYERS, override)
    assert code == 1 and out == "" and message in err and err.count("\n") == 1, err


def test_model_init_is_checked_even_when_weights_come_from_a_file(capsys, mnist_dir, book_weights):
    code, _, err = fw(
        capsys,
        "run",
        BOOK,
        f"dataset.root={mnist_dir}",
        f"weights.path={book_weights}",
        "model.init={name: normal, std: .inf}",
    )
    assert code == 1 and "std must be a positive finite number, got inf" in err


@pytest.mark.parametrize(
    "layer, blamed",
    [
        (
            "late_bad_shape",
            r"model.layers[1] (late_bad_shape, late_bugs.LateBadShape): backward returned shape (10, 7)",
        ),
        ("late_bad_grad", r"model.layers[1] (late_bad_grad, late_bugs.LateBadGrad): backward must fill grads['gain']"),
    ],
)
def test_a_plugins_bad_backward_after_the_first_step_is_named_as_that_plugin(
    capsys, tmp_path, late_bugs, layer, blamed
):
    code, _, err = fw(
        capsys,
        "train",
        BOOK,
        *late_bugs,
        f"weights.path={tmp_path / 'w.npz'}",
        f"model.layers=[{{name: dense, units: 8}}, {layer}, relu, {{name: dense, units: 10}}, softmax]",
    )
    assert code == 1 and blamed in err and "(dense)" not in err.split(":")[1], err
