"""Draw every picture the documentation's chapter pages embed, with fw itself.

    python docs/pictures.py FOLDER            # all of them: a few minutes, most of it training
    python docs/pictures.py FOLDER --quick    # only those that need no training (seconds)

writes into FOLDER (which must exist; the site's is docs/images) PNG files named as the
pages embed them. The quick ones are ``fw show`` pictures: chapter 3's test images and the
book network's mistakes, chapter 6's activation histograms under each initialisation
(figures 6-10 to 6-14), chapter 7's convolution filters before and after training (figure
7-24) and chapter 8's DeepConvNet mistakes (figure 8-3). The others train first, into a
temporary folder: chapter 4's and 5's ``fw train --plot`` curves and chapter 6's
``fw compare`` figures. Data and the book's weights come as the configs say: $FW_DATA_DIR,
or downloaded into ~/.cache/fw on first use. Existing pictures are replaced. The pages'
numbers are OpenBLAS's own kernel's: for the same bits, leave OPENBLAS_CORETYPE unset,

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE FW_DATA_DIR=../shared/data python docs/pictures.py docs/images
"""

import sys
import tempfile
from pathlib import Path

#: Each quick picture: its file name and the ``fw show`` arguments that draw it.
PICTURES = {
    "ch3_mnist_test.png": ["mnist_infer", "--count", "20"],
    "ch3_misclassified.png": ["mnist_infer", "--misclassified", "--count", "20"],
    # Figures 6-10 and 6-11: five sigmoid layers, weights of std 1 (at 0 and 1) and 0.01 (at 0.5).
    "ch6_activations_sigmoid_std1.png": ["ch6_init_std001", "model.activation=sigmoid", "model.init.std=1"],
    "ch6_activations_sigmoid_std001.png": ["ch6_init_std001", "model.activation=sigmoid"],
    # Figure 6-13: sigmoid with Xavier's initial weights.
    "ch6_activations_sigmoid_xavier.png": ["ch6_init_xavier", "model.activation=sigmoid"],
    # Figure 6-14: ReLU with std 0.01, Xavier's and He's initial weights.
    "ch6_activations_relu_std001.png": ["ch6_init_std001"],
    "ch6_activations_relu_xavier.png": ["ch6_init_xavier"],
    "ch6_activations_relu_he.png": ["ch6_init_he"],
    # Figure 7-24: conv1's 30 filters before and after training.
    "ch7_filters_random.png": ["mnist_cnn", "--filters", "weights=null"],
    "ch7_filters_trained.png": ["mnist_cnn", "--filters"],
    # Figure 8-3: the images the book's trained DeepConvNet gets wrong (the first 20 of 203).
    "ch8_misclassified.png": ["mnist_deep_cnn", "--misclassified", "--count", "20"],
}


def _train(config, *overrides, plot=False):
    """``fw train CONFIG`` into its own folder under the scratch folder {runs}, optionally with --plot {out}."""
    return ["train", config, *overrides, f"weights.path={{runs}}/{config}/weights.npz", "--force"] + (
        ["--plot", "{out}"] if plot else []
    )


def _compare(configs, metric):
    """Train each config, then ``fw compare`` their runs on one metric into {out}."""
    runs = [f"{{runs}}/{c}" for c in configs]
    return [*(_train(c) for c in configs), ["compare", *runs, "--metric", metric, "--out", "{out}", "--force"]]


#: Each picture that needs training: its file name and the fw commands that draw it, in order.
TRAINED = {
    # Chapter 4's train_neuralnet.py: a 784-50-10 sigmoid network, SGD at lr 0.1, batches of 100,
    # 10,000 steps (17 epochs), no schedule; on Fashion-MNIST, as MNIST's training images are not here.
    "ch4_two_layer_net.png": [
        _train(
            "mnist_train",
            "dataset.name=fashion_mnist",
            "model.sizes=[784,50,10]",
            "train.optimizer={name: sgd, lr: 0.1}",
            "train.lr_schedule=constant",
            "train.epochs=17",
            plot=True,
        )  # fmt: skip
    ],
    # Chapter 5's layers trained by backpropagation: 784-100-10 ReLU with Adam.
    "ch5_fashion_train.png": [_train("fashion_train", plot=True)],
    # Chapter 6's comparisons, as the book draws them.
    "ch6_optimizers.png": _compare(
        [f"ch6_optimizer_{o}" for o in ("sgd", "momentum", "adagrad", "adam")], "train_loss"
    ),
    "ch6_inits.png": _compare([f"ch6_init_{i}" for i in ("std001", "xavier", "he")], "train_loss"),
    "ch6_batchnorm.png": _compare(["ch6_batchnorm_off", "ch6_batchnorm_on"], "train_accuracy"),
    "ch6_overfitting.png": _compare(
        ["ch6_overfit", "ch6_overfit_weight_decay", "ch6_overfit_dropout"], "test_accuracy"
    ),
}


def arguments(folder, name):
    """The whole ``fw show`` command line for one quick picture; the chapter-6 ones are of the initial weights."""
    extra = ["--activations", "weights=null"] if name.startswith("ch6_") else []
    return ["show", *PICTURES[name], *extra, "--out", str(Path(folder) / name), "--force"]


def commands(folder, name, runs):
    """The fw command lines that draw one picture that needs training, its runs kept in the folder ``runs``."""
    fill = {"{out}": str(Path(folder) / name), "{runs}": str(runs)}
    out = []
    for argv in TRAINED[name]:
        line = []
        for a in argv:
            for key, value in fill.items():
                a = a.replace(key, value)
            line.append(a)
        out.append(line)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    rest = [a for a in argv if a != "--quick"]
    if len(rest) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    from framework.cli import main as fw

    folder = Path(rest[0])
    failed = [name for name in PICTURES if fw(arguments(folder, name)) != 0]
    names = list(PICTURES)
    if not quick:
        names += list(TRAINED)
        with tempfile.TemporaryDirectory(prefix="fw-pictures-") as runs:
            failed += [name for name in TRAINED if any(fw(c) != 0 for c in commands(folder, name, runs))]
    if failed:
        print(f"pictures.py: {len(failed)} of {len(names)} pictures failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
