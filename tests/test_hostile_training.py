"""Hostile input to fw train, round four (issue 26, items 4.7 to 4.9): bad values in an arrays file, labels
that would make billions of classes, empty splits, and callbacks that answer nonsense or break the weights.
Each is one line saying what is wrong and where, never "training diverged ... lower the lr"."""

import numpy as np
import pytest

import framework as fw_api
from framework import FwError
from framework.training.trainer import Trainer
from framework.training.validation import load_training_data
from own_data import config
from test_cli import fw, one_line_error

pytestmark = pytest.mark.hostile

ARRAYS = "{name: arrays, path: data.npz}"


def features(n=60, seed=0):
    """Three separable classes of 5 float64 features."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return rng.normal(size=(n, 5)) + 3.0 * y[:, None], y


def train(capsys, tmp_path, dataset=ARRAYS, *overrides, **arrays):
    np.savez(tmp_path / "data.npz", **arrays)
    return fw(capsys, "train", config(tmp_path, dataset, epochs=2), *overrides)


def refused(capsys, tmp_path, *fragments, dataset=ARRAYS, **arrays):
    code, out, err = train(capsys, tmp_path, dataset, **arrays)
    one_line_error(code, out, err, *fragments)
    assert "diverged" not in err and "lower" not in err
    assert not (tmp_path / "runs" / "w.npz").exists()


# --- 4.7: bad values in the arrays ----------------------------------------------------------


@pytest.mark.parametrize("bad, said", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "-Inf")])
def test_nan_or_inf_in_x_is_named_by_array_row_and_column(capsys, tmp_path, bad, said):
    x, y = features()
    x[7, 2] = bad
    refused(
        capsys,
        tmp_path,
        f"{tmp_path / 'data.npz'}: x[7, 2] (row 7, column 2) is {said}; ",
        "correct or drop that row",
        x=x,
        y=y,
    )


def test_nan_in_a_presplit_test_array_of_images_is_named(capsys, tmp_path):
    x, y = features(40)
    images = np.repeat(x[:, :4, None], 3, axis=2).astype(np.float32)  # (N, 4, 3)
    test = images[:12].copy()
    test[5, 1, 2] = np.nan
    refused(capsys, tmp_path, "x_test[5, 1, 2] (row 5) is NaN", x_train=images, y_train=y, x_test=test, y_test=y[:12])


def test_float16_that_overflowed_to_inf_says_so(capsys, tmp_path):
    x, y = features()
    with np.errstate(over="ignore"):
        x16 = (x * 30000).astype(np.float16)  # 3 x 30000 is beyond float16's 65504: Inf
    row, column = map(int, np.argwhere(np.isinf(x16))[0])
    refused(
        capsys,
        tmp_path,
        f"x[{row}, {column}] (row {row}, column {column}) is ",
        "float16 holds numbers up to 65504",
        "save it as float32",
        x=x16,
        y=y,
    )


def test_values_too_large_to_standardise_are_named_before_training(capsys, tmp_path):
    x, y = features()
    x[5, 1] = x[6, 1] = 1e308  # finite, but their sum and spread overflow float64
    refused(capsys, tmp_path, "the values of column 1 of x are too large to standardise", "scale them down", x=x, y=y)


def test_nan_in_the_input_given_to_fit_is_not_called_divergence(tmp_path):
    x, y = features()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    cfg = fw_api.load_config(config(tmp_path, ARRAYS, epochs=1))
    trainer = Trainer(cfg)
    (xt, t), (xv, tv) = load_training_data(cfg, fw_api.get_registry(), trainer.dataset)
    xt[3, 4] = np.inf
    with pytest.raises(
        FwError, match=r"the train split of dataset 'arrays' holds NaN or Inf at example 3 \(counting from 0\), value 4"
    ):
        trainer.fit(xt, t, xv, tv)


# --- 4.7: labels and empty splits ------------------------------------------------------------


def test_a_uint64_label_is_not_wrapped_round_to_minus_one(capsys, tmp_path):
    x, y = features()
    y = y.astype(np.uint64)
    y[3] = 2**64 - 1
    refused(capsys, tmp_path, "y holds the label 18446744073709551615", "classes for 60 examples", x=x, y=y)


def test_a_label_of_a_billion_is_refused_before_any_memory_is_asked_for(capsys, tmp_path):
    x, y = features()
    y[3] = 10**9
    refused(
        capsys,
        tmp_path,
        "y holds the label 1000000000, which would make 1,000,000,001 classes for 60 examples",
        "cannot be more classes than examples",
        x=x,
        y=y,
    )


def test_labels_up_to_the_examples_are_still_classes(capsys, tmp_path):
    x, y = features(30)
    y[:] = np.arange(30) % 10  # 10 classes of 3 examples: allowed; the network has 3 outputs, which is the error
    code, out, err = train(capsys, tmp_path, ARRAYS, x=x, y=y)
    one_line_error(code, out, err, "dataset 'arrays' has 10 classes")


@pytest.mark.parametrize("dataset", [ARRAYS, "{name: arrays, path: data.npz, classes: [a, b, c]}"])
def test_an_arrays_file_with_no_examples_is_one_line(capsys, tmp_path, dataset):
    refused(capsys, tmp_path, "x and y hold no examples", dataset=dataset, x=np.zeros((0, 5)), y=np.zeros(0, np.int64))


@pytest.mark.parametrize("shape", [(60, 0), (60, 0, 3)])
def test_examples_of_no_values_are_one_line(capsys, tmp_path, shape):
    refused(
        capsys,
        tmp_path,
        f"x must be numbers of shape (N, features) or (N, H, W) or (N, C, H, W), got float64 {shape}",
        x=np.zeros(shape),
        y=np.arange(60) % 3,
    )


def test_test_fraction_zero_is_refused_rather_than_reporting_nan(capsys, tmp_path):
    x, y = features()
    refused(
        capsys,
        tmp_path,
        "the test split of dataset 'arrays' is empty",
        "set dataset.test_fraction (e.g. 0.2)",
        dataset="{name: arrays, path: data.npz, test_fraction: 0}",
        x=x,
        y=y,
    )


def test_fw_run_on_an_empty_test_split_is_one_line_not_an_accuracy_of_zero(capsys, tmp_path):
    x, y = features()
    code, _, err = train(capsys, tmp_path, x=x, y=y)
    assert code == 0, err
    one_line_error(
        *fw(capsys, "run", tmp_path / "c.yaml", "dataset.test_fraction=0"),
        "the test split of dataset 'arrays' is empty",
        "set dataset.test_fraction",
    )


# --- 4.8 and 4.9: callbacks ----------------------------------------------------------------------

CALLBACK = """
import numpy as np
from framework import Callback, hookimpl

class Odd(Callback):
    name = "odd"

    def on_epoch_end(self, epoch, logs):
        return {answer}

    def on_train_end(self, logs):
        {at_end}

class Unanswerable:
    def __bool__(self):
        raise RuntimeError("no truth here")

@hookimpl
def register_callbacks(register):
    register(Odd)
"""


def with_callback(capsys, tmp_path, answer="None", at_end="pass"):
    (tmp_path / "odd.py").write_text(CALLBACK.format(answer=answer, at_end=at_end))
    x, y = features()
    return train(capsys, tmp_path, ARRAYS, f"plugins=[{tmp_path / 'odd.py'}]", "train.callbacks=[odd]", x=x, y=y)


@pytest.mark.parametrize(
    "answer, returned", [("np.array([1, 0])", "ndarray"), ("Unanswerable()", "Unanswerable"), ("'stop'", "str")]
)
def test_an_on_epoch_end_answer_that_is_no_yes_or_no_names_the_callback(capsys, tmp_path, answer, returned):
    code, out, err = with_callback(capsys, tmp_path, answer=answer)
    assert code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if not line.startswith("fw: warning: ")]
    assert line.startswith("fw: error: train.callbacks[0] (odd, ")
    assert line.endswith(
        f".Odd): on_epoch_end returned a {returned}; return True to stop training, or False or None to go on"
    )


def test_true_false_and_numpy_booleans_still_answer(capsys, tmp_path):
    code, out, err = with_callback(capsys, tmp_path, answer="np.float64(logs['train_loss']) > 1e9")
    assert code == 0, err
    (tmp_path / "again").mkdir()
    code, out, err = with_callback(capsys, tmp_path / "again", answer="True")
    assert code == 0 and "Stopped after epoch 1 of 2 by train.callbacks[0] (odd" in out, err


@pytest.mark.parametrize(
    "method, at_end", [("on_train_end", "self.network.layers[0].params['W'][0, 0] = np.nan"), ("on_epoch_end", "pass")]
)
def test_a_callback_that_makes_the_weights_nan_gets_nothing_written(capsys, tmp_path, method, at_end):
    answer = (
        "self.network.layers[2].params['b'].fill(np.inf) if epoch == 2 else None"
        if method == "on_epoch_end"
        else "None"
    )
    code, out, err = with_callback(capsys, tmp_path, answer=answer, at_end=at_end)
    assert code == 1 and "Traceback" not in err
    layer = "model.layers[0] (dense)'s 'W'" if method == "on_train_end" else "model.layers[2] (dense)'s 'b'"
    assert err.splitlines()[-1].endswith(
        f".Odd): its {method} left NaN or Inf in {layer}; fw train writes no such weights: fix the callback"
    )
    assert not (tmp_path / "runs" / "w.npz").exists()


@pytest.mark.parametrize(
    "at_end, got",
    [
        ("self.network.layers[0].params['W'] = 'W'", "a str"),
        ("self.network.layers[0].params['W'] = np.zeros((2, 2), np.float32)", "float32 (2, 2)"),
        (
            "self.network.layers[0].params['W'] = self.network.layers[0].params['W'].astype(np.float64)",
            "float64 (5, 16)",
        ),
        ("del self.network.layers[0].params['W']", "nothing"),
    ],
)
def test_a_callback_that_replaces_a_weight_gets_nothing_written(capsys, tmp_path, at_end, got):
    code, out, err = with_callback(capsys, tmp_path, at_end=at_end)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        f".Odd): its on_train_end replaced model.layers[0] (dense)'s 'W' (float32 (5, 16)) with {got}; "
        "fw train writes no such weights: fix the callback"
    )
    assert not (tmp_path / "runs" / "w.npz").exists()


@pytest.mark.parametrize(
    "at_end, done",
    [
        ("logs['weights_epoch'] = 99", "set logs['weights_epoch'] to 99"),
        ("logs['weights_epoch'] = -1", "set logs['weights_epoch'] to -1"),
        ("logs['weights_epoch'] = '1'", "set logs['weights_epoch'] to '1'"),
        ("logs['weights_epoch'] = True", "set logs['weights_epoch'] to True"),
        ("del logs['weights_epoch']", "removed logs['weights_epoch']"),
    ],
)
def test_a_callback_that_names_no_trained_epoch_as_the_weights_is_one_line(capsys, tmp_path, at_end, done):
    code, out, err = with_callback(capsys, tmp_path, at_end=at_end)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        f".Odd): its on_train_end {done}; it must be the number of an epoch trained, 1 to 2"
    )


def test_a_callback_that_names_a_trained_epoch_is_believed(capsys, tmp_path):
    code, out, err = with_callback(capsys, tmp_path, at_end="logs['weights_epoch'] = 1")
    assert code == 0 and "epoch 1's (restored)" in out, err
