"""Fashion-MNIST (Zalando Research, MIT licence): MNIST's format, clothes instead of digits."""

from framework import hookimpl

from .idx import IdxDataset


class FashionMNIST(IdxDataset):
    """Zalando's Fashion-MNIST: ten kinds of clothes in MNIST's format and sizes."""

    name = "fashion_mnist"
    folder = "fashion-mnist"
    num_classes = 10
    shape = (28, 28)
    class_names = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    md5 = {  # of the decompressed payloads, so re-compressed copies pass too
        "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    mirrors = [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ]
    # Debian/Ubuntu: `apt-get install dataset-fashion-mnist` puts the four files here.
    local_sources = ("/usr/share/datasets/fashion-mnist",)
    pixels = True  # uint8 images: fw predict needs no data to know it

    def example_from_image(self, path):
        """An image file of any size, prepared as MNIST's digits were (fw predict)."""
        from .imaging import mnist_example

        return mnist_example(path)


@hookimpl
def register_datasets(register):
    register(FashionMNIST)
