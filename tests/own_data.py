"""Small datasets the tests build in tmp_path: a CSV table, a folder of images, an .npz of arrays."""

import numpy as np

CLASSES = ("setosa", "versicolor", "virginica")
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def make_csv(path, n=120, seed=0, labels=CLASSES, features=FEATURES):
    """Three well separated classes (feature means 0, 3, 6 apart), values around 10 to 100, as text."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(labels)
    x = rng.normal(size=(n, len(features))) + 3.0 * y[:, None] + np.linspace(10, 100, len(features))
    lines = [",".join([*features, "species"])]
    lines += [",".join([*(f"{v:.5f}" for v in row), str(labels[k])]) for row, k in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return x, y


def make_image_folder(root, per_class=12, split=False, seed=0):
    """Three classes told apart by colour (red, green, blue images with noise), of different sizes and formats."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    formats = [".png", ".jpg", ".bmp", ".gif"]
    for c, name in enumerate(("red", "green", "blue")):
        for i in range(per_class):
            part = ("test" if i % 4 == 0 else "train") if split else None
            folder = root / part / name if part else root / name
            folder.mkdir(parents=True, exist_ok=True)
            h, w = int(rng.integers(10, 30)), int(rng.integers(10, 30))
            a = rng.integers(0, 90, (h, w, 3))
            a[..., c] += 150
            Image.fromarray(a.astype(np.uint8)).save(folder / f"{i:03d}{formats[i % 4]}")
    return root


def make_npz(path, n=90, seed=0, uint8=False, **extra):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    if uint8:
        x = np.clip(rng.normal(60, 20, size=(n, 6, 6)) + 60 * y[:, None, None], 0, 255).astype(np.uint8)
    else:
        x = (rng.normal(size=(n, 5)) + 3.0 * y[:, None]).astype(np.float32) * 7 + 40
    np.savez(path, x=x, y=y, **extra)
    return x, y


def config(tmp_path, dataset, name="c.yaml", epochs=30, units=16):
    """A config training a small MLP on ``dataset`` (YAML text of the dataset: mapping), weights in tmp_path."""
    text = f"""dataset: {dataset}
model:
  layers: [{{name: dense, units: {units}}}, relu, {{name: dense, units: 3}}, softmax]
train: {{epochs: {epochs}, batch_size: 16, optimizer: {{name: adam, lr: 0.01}}}}
weights: {{importer: npz, format: npz, path: runs/w.npz}}
"""
    path = tmp_path / name
    path.write_text(text)
    return path
