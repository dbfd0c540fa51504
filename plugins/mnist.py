"""MNIST handwritten digits (LeCun, Cortes, Burges): the book's dataset."""

from framework import hookimpl
from framework.data.bundled import data_dir

from .idx import IdxDataset


class MNIST(IdxDataset):
    """MNIST's handwritten digits, 28x28 grey, 60,000 to train and 10,000 to test: the book's dataset."""

    name = "mnist"
    folder = "mnist"
    num_classes = 10
    shape = (28, 28)
    class_names = tuple("0123456789")
    md5 = {  # of the decompressed payloads, so re-compressed copies pass too
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",  # often answers 403
    ]
    # The test split ships with fw (CC BY-SA 3.0, see plugins/data/README.md): read
    # when root has no copy, so the book's job needs no network. Train is downloaded.
    local_sources = (str(data_dir("mnist")),)
    pixels = True  # uint8 images: fw predict needs no data to know it

    def example_from_image(self, path):
        """An image file of any size, prepared as MNIST's digits were (fw predict)."""
        from .imaging import mnist_example

        return mnist_example(path)


@hookimpl
def register_datasets(register):
    register(MNIST)
