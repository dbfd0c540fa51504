"""The image_folder dataset: both layouts, PNG/JPEG/BMP/GIF,
the decoded cache, fw predict on image files, bad folders."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import framework as fw_api
import framework.api
import framework.plugins.image_folder as image_folder
from framework.config.datasets import make_dataset
from framework.plugins.image_folder import ImageFolder
from framework.testing import check_dataset
from own_data import config, make_image_folder
from test_cli import fw, one_line_error

FOLDER = "{name: image_folder, path: photos, size: [8, 8], color: rgb}"


def test_the_kit_passes_both_layouts(tmp_path):
    check_dataset(ImageFolder, path=str(make_image_folder(tmp_path / "a")), size=[8, 8])
    check_dataset(ImageFolder, path=str(make_image_folder(tmp_path / "b", split=True)), size=[6, 5], color="grayscale")


def test_train_run_and_predict_agree_on_the_test_images(capsys, tmp_path):
    make_image_folder(tmp_path / "photos", split=True)
    cfg = config(tmp_path, FOLDER)
    assert fw(capsys, "train", cfg)[0] == 0
    code, out, err = fw(capsys, "run", cfg, "--json", "--report")
    assert code == 0, err
    run = json.loads(out)
    assert run["total"] == 9 and run["accuracy"] == 1.0 and run["class_names"] == ["blue", "green", "red"]
    files = sorted((tmp_path / "photos" / "test").glob("*/*"))  # the test split, in its own order
    loaded = fw_api.load_config(cfg)
    net, dataset = fw_api.api.build(loaded)
    x, t = fw_api.load_dataset(loaded, dataset=dataset)
    code, out, err = fw(capsys, "predict", cfg, *files, "--json", "--top", "3")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in records] == net.classify(x).tolist()
    assert [r["class"] for r in records] == [f.parent.name for f in files]
    assert all(
        r["row"] is None and len(r["top"]) == 3 and set(r["top"][0]) == {"class", "probability"} for r in records
    )
    assert set(records[0]) == {"input", "row", "label", "class", "probability", "top"}
    state = json.loads((tmp_path / "runs" / "w.dataset.json").read_text())["state"]  # what fw predict needs
    assert (state["class_names"], state["size"], state["color"], state["shape"]) == (
        ["blue", "green", "red"],
        [8, 8],
        "rgb",
        [3, 8, 8],
    )


def test_images_are_c_h_w_and_the_hold_out_is_stratified(tmp_path):
    make_image_folder(tmp_path / "photos", per_class=10)
    registry = fw_api.get_registry()
    for color, channels in (("rgb", 3), ("grayscale", 1)):
        cfg = fw_api.load_config(
            config(tmp_path, FOLDER), [f"dataset.color={color}", "dataset.flatten=false", "weights=null"]
        )
        x, t = fw_api.api.load_split(cfg, "train")
        assert x.shape == (24, channels, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
        assert np.bincount(t).tolist() == [8, 8, 8]
        assert make_dataset(cfg, registry).class_names == ("blue", "green", "red")


def test_decoded_once_then_cached_until_the_folder_changes(tmp_path, monkeypatch):
    from PIL import Image

    make_image_folder(tmp_path / "photos")
    first = ImageFolder(path=str(tmp_path / "photos"), size=[8, 8]).load_raw("train")[0]

    def no_decoding(*args):
        raise AssertionError("decoded again")

    with monkeypatch.context() as m:
        m.setattr(image_folder, "image_array", no_decoding)
        again = ImageFolder(path=str(tmp_path / "photos"), size=[8, 8]).load_raw("train")[0]
        assert np.array_equal(first, again)
        with pytest.raises(AssertionError, match="decoded again"):  # another size is another cache
            ImageFolder(path=str(tmp_path / "photos"), size=[9, 8]).load_raw("train")
    Image.new("RGB", (5, 5), (250, 0, 0)).save(tmp_path / "photos" / "red" / "new.png")
    x, _ = ImageFolder(path=str(tmp_path / "photos"), size=[8, 8], test_fraction=0).load_raw("train")
    assert len(x) == 37
    caches = list(Path(os.environ["XDG_CACHE_HOME"]).glob("fw/images/*/*.npy"))
    assert len(caches) == 1  # the folder's older cache was removed (9x8 was never decoded, so never cached)


def test_a_damaged_cache_is_rebuilt(tmp_path):
    make_image_folder(tmp_path / "photos")
    good = ImageFolder(path=str(tmp_path / "photos"), size=[8, 8]).load_raw("train")[0].copy()
    [cache] = Path(os.environ["XDG_CACHE_HOME"]).glob("fw/images/*/*.npy")
    data = bytearray(cache.read_bytes())
    data[-5] ^= 0xFF
    cache.write_bytes(bytes(data))
    assert np.array_equal(ImageFolder(path=str(tmp_path / "photos"), size=[8, 8]).load_raw("train")[0], good)


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (lambda root: (root / "purple").mkdir(), ["purple: class 'purple' has no images (.png, .jpg"]),
        (
            lambda root: (root / "red" / "000.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
            ["red/000.png: not a readable image (not a format fw reads: PNG, JPEG, BMP, GIF)"],
        ),
        (
            lambda root: (root / "red" / "000.png").write_bytes((root / "red" / "000.png").read_bytes()[:120]),
            ["red/000.png: not a readable image"],
        ),
    ],
)
def test_a_bad_folder_is_one_line_naming_it(capsys, tmp_path, damage, fragments):
    damage(make_image_folder(tmp_path / "photos"))
    one_line_error(*fw(capsys, "train", config(tmp_path, FOLDER)), *fragments)
    assert not (tmp_path / "runs" / "w.npz").exists()


def test_no_class_folders_and_other_files(capsys, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    one_line_error(*fw(capsys, "train", config(tmp_path, FOLDER)), "has no class subfolders")
    make_image_folder(tmp_path / "photos")
    (tmp_path / "photos" / "red" / "notes.txt").write_text("ignored: not an image suffix")
    assert fw(capsys, "run", config(tmp_path, FOLDER), "weights=null")[0] == 0
    one_line_error(
        *fw(capsys, "run", config(tmp_path, FOLDER), "weights=null", "dataset.size=[8]"),
        "dataset.size must be [height, width]",
    )
    one_line_error(
        *fw(capsys, "run", config(tmp_path, FOLDER), "weights=null", "dataset.color=cmyk"),
        "dataset.color must be rgb or grayscale",
    )


def test_predict_refuses_a_corrupt_image_and_other_image_settings(capsys, tmp_path):
    make_image_folder(tmp_path / "photos")
    cfg = config(tmp_path, FOLDER, epochs=2)
    assert fw(capsys, "train", cfg)[0] == 0
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    one_line_error(*fw(capsys, "predict", cfg, bad), f"{bad}: not a readable image")
    one_line_error(*fw(capsys, "predict", cfg, tmp_path / "missing.png"), "image not found")
    good = next((tmp_path / "photos" / "red").glob("*.png"))
    one_line_error(
        *fw(capsys, "predict", cfg, good, "dataset.size=[16,16]"), "trained on 8x8 rgb images", "dataset.size"
    )
    one_line_error(*fw(capsys, "predict", cfg, good, "--top", "4"), "--top 4 is more than the 3 classes", "use 1 to 3")
