"""A checkpoint edited by hand, or forged, is refused in one line naming what is wrong, before it costs memory.

Before: KeyError 'iter', TypeError from Epoch.__init__, a silently accepted
history of 1,000 epochs, a parameter whose optimizer state went missing and
that silently stopped training, and 1.9 GB spent on a 2 MB zip bomb.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from test_cli import BOOK, fw
from test_hostile_weights import MiB, deflated_zeros, fw as fw_measured, npy_header, write_zip

pytestmark = pytest.mark.hostile

MODULES = Path(__file__).parent / "plugin_modules"


@pytest.fixture
def args(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(MODULES))
    monkeypatch.setenv("PYTHONPATH", str(MODULES))  # for fw in a child process
    return [
        BOOK,
        "plugins=[late_bugs]",
        "dataset.name=tiny_random",
        "train.epochs=3",
        "train.batch_size=20",
        "model.sizes=[784,16,10]",
        "model.activation=relu",
        "weights.importer=npz",
        "weights.url=null",
        "weights.sha256=null",
        f"weights.path={tmp_path / 'w.npz'}",
    ]


@pytest.fixture
def ckpt(args, tmp_path):
    """The checkpoint after epoch 1 of 3, as an interrupted fw train leaves it (trained on the splits fw train uses)."""
    import framework as fw_api
    from framework.training.trainer import Trainer
    from framework.training.validation import load_training_data

    cfg = fw_api.load_config(args[0], args[1:])
    trainer = Trainer(cfg)
    (x, t), (xt, tt) = load_training_data(cfg, fw_api.get_registry(cfg.plugins), trainer.dataset)
    trainer.fit(x, t, xt, tt, until=1)
    return trainer.output.checkpoint_path


def edit(path, change):
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(str(arrays["meta"]))
    change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_an_untouched_checkpoint_resumes(capsys, args, ckpt):
    code, out, err = fw(capsys, "train", *args, "--resume", "--json")
    assert code == 0 and [json.loads(line)["epoch"] for line in out.splitlines()] == [2, 3], err


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, m: a.pop("slot.m.2.b"), "the optimizer state has no 'm' for parameter 2.b"),
        (lambda a, m: a.update({"slot.v.0.W": np.float32(1)}), "optimizer state 'v' of parameter 0.W has shape ()"),
        (
            lambda a, m: m.update(history=m["history"] * 1000),
            "meta 'history' holds 1000 entries, for a run of 3 epochs",
        ),
        (lambda a, m: m["history"][0].pop("lr"), "the checkpoint's history does not hold fw train's metrics"),
        (
            lambda a, m: m.update(rng={"bit_generator": "MT19937", "state": 5}),
            "meta 'rng' is not a state of numpy's PCG64",
        ),
        (lambda a, m: m.update(fingerprint="{not json"), "meta 'fingerprint' is damaged"),
        (lambda a, m: m.update(optimizer={}), "optimizer state does not load into 'adam' (KeyError"),
        (lambda a, m: m.update(lr="fast"), "meta 'lr' is 'fast', not a finite number"),
        (lambda a, m: m.update(data=5), "meta 'data' is not the digest of the examples"),
        (lambda a, m: m.update(data="0" * 64), "was written while training on other examples"),
    ],
    ids=[
        "missing-slot",
        "0-d-slot",
        "1000-epochs",
        "history-keys",
        "rng",
        "fingerprint",
        "no-step-count",
        "lr",
        "data-type",
        "data-digest",
    ],
)
def test_a_hand_edited_checkpoint_is_one_line_naming_the_key(capsys, args, ckpt, change, message):
    edit(ckpt, change)
    code, out, err = fw(capsys, "train", *args, "--resume")
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"fw: error: {ckpt}") and message in err and "delete the checkpoint" in err, err


def test_a_checkpoint_from_before_fw_kept_the_data_digest_still_resumes(capsys, args, ckpt):
    edit(ckpt, lambda a, m: m.pop("data"))
    code, out, err = fw(capsys, "train", *args, "--resume", "--json")
    assert code == 0 and [json.loads(line)["epoch"] for line in out.splitlines()] == [2, 3], err


def test_a_zip_bomb_checkpoint_is_refused_before_it_is_unpacked(args, ckpt, tmp_path):
    gib = 2048  # MiB of zeros the forged member unpacks to, in about 2 MB of file
    head = npy_header((gib * MiB // 4,))
    import io

    buf = io.BytesIO()
    with np.load(ckpt) as z:
        np.lib.format.write_array(buf, z["meta"])  # the real meta, as numpy writes it
    write_zip(
        ckpt,
        [
            ("meta.npy", [buf.getvalue()], 0, len(buf.getvalue()), 0),
            ("net.0.W.npy", deflated_zeros(head, gib), 8, len(head) + gib * MiB, 0),
        ],
    )
    assert ckpt.stat().st_size < 4 * MiB
    run = fw_measured("train", *args, "--resume")
    assert run["code"] == 1 and "refused as a zip bomb" in run["err"] and run["err"].count("\n") == 1, run
    assert run["peak"] / 1024 < 300, f"peak RSS {run['peak'] / 1024:.0f} MiB"  # ru_maxrss is in KiB
