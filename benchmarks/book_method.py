"""The book's chapter-3 method end to end, as one script: the reference to beat.

It follows dataset/mnist.py (``load_mnist`` with its pickle cache) and
ch03/neuralnet_mnist_batch.py (batches of 100, ``1/(1+exp(-x))``) closely,
with two changes forced by this machine: it reads the .gz files from a folder
instead of downloading them, and it converts only the test split, since the
training images are not available here (the book converts all four files).

    python benchmarks/book_method.py DATA_DIR CACHE_PKL
"""

import gzip
import os
import pickle
import sys

import numpy as np

img_size = 784


def _load_label(path):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)


def _load_img(path):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, img_size)


def init_mnist(data_dir, save_file):
    dataset = {
        "test_img": _load_img(os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")),
        "test_label": _load_label(os.path.join(data_dir, "mnist", "t10k-labels-idx1-ubyte.gz")),
    }
    with open(save_file, "wb") as f:
        pickle.dump(dataset, f, -1)


def load_mnist(data_dir, save_file, normalize=True, flatten=True, one_hot_label=False):
    if not os.path.exists(save_file):
        init_mnist(data_dir, save_file)
    with open(save_file, "rb") as f:
        dataset = pickle.load(f)
    if normalize:
        for key in ("test_img",):
            dataset[key] = dataset[key].astype(np.float32)
            dataset[key] /= 255.0
    if not flatten:
        dataset["test_img"] = dataset["test_img"].reshape(-1, 1, 28, 28)
    return dataset["test_img"], dataset["test_label"]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def predict(network, x):
    W1, W2, W3 = network["W1"], network["W2"], network["W3"]
    b1, b2, b3 = network["b1"], network["b2"], network["b3"]
    z1 = sigmoid(np.dot(x, W1) + b1)
    z2 = sigmoid(np.dot(z1, W2) + b2)
    return softmax(np.dot(z2, W3) + b3)


def main(data_dir, save_file):
    x, t = load_mnist(data_dir, save_file, normalize=True, flatten=True, one_hot_label=False)
    with open(os.path.join(data_dir, "book", "sample_weight.pkl"), "rb") as f:
        network = pickle.load(f)
    batch_size = 100
    accuracy_cnt = 0
    for i in range(0, len(x), batch_size):
        y_batch = predict(network, x[i : i + batch_size])
        p = np.argmax(y_batch, axis=1)
        accuracy_cnt += np.sum(p == t[i : i + batch_size])
    print("Accuracy:" + str(float(accuracy_cnt) / len(x)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
