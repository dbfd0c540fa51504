"""Draw the book's pictures with fw show, for the documentation's chapter pages.

    python docs/pictures.py FOLDER

writes into FOLDER (which must exist) the pictures that need no training: chapter 3's
test images and the book network's mistakes, chapter 6's activation histograms under
each initialisation (figures 6-10 to 6-14) and chapter 7's convolution filters before
and after training (figure 7-24). Data and the book's weights come as the configs say:
$FW_DATA_DIR, or downloaded into ~/.cache/fw on first use. Existing pictures are replaced.
"""

import sys
from pathlib import Path

#: Each picture: its file name and the ``fw show`` arguments that draw it.
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
}


def arguments(folder, name):
    """The whole ``fw show`` command line for one picture; the chapter-6 ones are of the initial weights."""
    extra = ["--activations", "weights=null"] if name.startswith("ch6_") else []
    return ["show", *PICTURES[name], *extra, "--out", str(Path(folder) / name), "--force"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    from framework.cli import main as fw

    folder = Path(argv[0])
    failed = [name for name in PICTURES if fw(arguments(folder, name)) != 0]
    if failed:
        print(f"pictures.py: {len(failed)} of {len(PICTURES)} pictures failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
