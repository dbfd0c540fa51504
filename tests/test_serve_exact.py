"""fw serve's answers to the last bit (issue 29: "answers are identical to unbatched ones").

A request's answer is the same whether it comes alone (--max-batch 1) or
batched with others, in any order, twice in one batch even; and it is
``fw predict --json``'s for the same input, fw predict run as the command it
is (its own process, with the BLAS threads the machine gives it). The numbers
are compared as JSON prints them, in full: ``==``, no tolerance.
"""

import base64
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from framework.cli.serve import make_app
from framework.plugins.idx import read_idx
from own_data import config, make_csv
from test_cli import BOOK, fw

pytest.importorskip("starlette")
from starlette.testclient import TestClient

CNN = str(Path(__file__).resolve().parents[1] / "configs" / "mnist_cnn.yaml")
ANSWER = ("class", "label", "probability", "top", "note")


def _png(a):
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(255 - a).resize((84, 84)).save(out, "PNG")  # dark on white, as drawn
    return out.getvalue()


def image_requests(mnist_dir, tmp_path):
    """Requests of 1 to 17 test images as lists, and of one or two PNGs; each with its fw predict input files."""
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:120]
    requests, start = [], 0
    for n in (1, 1, 2, 3, 5, 8, 13, 17, 1, 4):
        np.save(tmp_path / f"r{len(requests)}.npy", images[start : start + n])
        requests.append(({"instances": images[start : start + n].tolist()}, [tmp_path / f"r{len(requests)}.npy"]))
        start += n
    for group in ((start,), (start + 1, start + 2)):
        files = []
        for k in group:
            (tmp_path / f"i{k}.png").write_bytes(_png(images[k]))
            files.append(tmp_path / f"i{k}.png")
        requests.append(({"instances": [{"b64": base64.b64encode(f.read_bytes()).decode()} for f in files]}, files))
    return requests


def table_requests(csv, tmp_path):
    """Requests of 1 to 16 CSV rows as objects of text, as a form sends them; each with its CSV file."""
    header, *lines = csv.read_text().splitlines()
    requests, start = [], 0
    for n in (1, 16, 2, 1, 7, 3, 11, 1):
        rows = lines[start : start + n]
        path = tmp_path / f"r{len(requests)}.csv"
        path.write_text("\n".join([header, *rows]) + "\n")
        requests.append(({"instances": [dict(zip(header.split(","), row.split(","))) for row in rows]}, [path]))
        start += n
    return requests


def answers(args, bodies, top, *, max_batch, max_wait=0.0):
    """Each body's predictions from one server, the bodies sent at once from as many threads (in list order)."""
    app, name = make_app(args[0], list(args[1:]), max_batch=max_batch, max_wait=max_wait)
    with TestClient(app) as http:

        def ask(body):
            response = http.post(f"/v1/models/{name}:predict", json={**body, "top": top})
            assert response.status_code == 200, response.text
            return response.json()["predictions"]

        if max_batch == 1:
            return [ask(body) for body in bodies]
        with ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(ask, bodies))


def predicted(args, files, top):
    """``fw predict --json``'s answers for each group of files, from one run of the command in its own process."""
    flat = [f for group in files for f in group]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.cli",
            "predict",
            *map(str, args),
            *map(str, flat),
            "--top",
            str(top),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    by_file = {}
    for line in run.stdout.splitlines():
        record = json.loads(line)
        by_file.setdefault(record["input"], []).append({k: v for k, v in record.items() if k in ANSWER})
    return [[p for f in group for p in by_file.get(str(f), [])] for group in files]


def check_exact(args, requests, top, monkeypatch):
    from framework.cli.serving.app import Model

    batch_sizes = []
    answer = Model.answer
    monkeypatch.setattr(Model, "answer", lambda self, items: batch_sizes.append(len(items)) or answer(self, items))
    bodies = [body for body, _ in requests]
    alone = answers(args, bodies, top, max_batch=1)
    assert batch_sizes == [1] * len(bodies)

    rng = np.random.default_rng(0)
    for round_ in range(3):  # shuffled, and each request twice: the same rows at two places in one batch
        order = rng.permutation(np.repeat(np.arange(len(bodies)), 2))
        batch_sizes.clear()
        together = answers(args, [bodies[k] for k in order], top, max_batch=1000, max_wait=1.0)
        assert max(batch_sizes) > 1, batch_sizes  # they did ride together
        for k, got in zip(order, together):
            assert got == alone[k], f"round {round_}: request {k} batched with others differs from it alone"

    assert predicted(args, [files for _, files in requests], top) == alone


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_image_answers_are_bit_identical_alone_batched_and_in_fw_predict(
    mnist_dir, book_weights, shared_book, tmp_path, network, monkeypatch
):
    config_path, weights = (BOOK, book_weights) if network == "mlp" else (CNN, shared_book / "params.pkl")
    args = [config_path, f"dataset.root={mnist_dir}", f"weights.path={weights}"]
    check_exact(args, image_requests(mnist_dir, tmp_path), 10, monkeypatch)


def test_table_answers_are_bit_identical_alone_batched_and_in_fw_predict(capsys, tmp_path, monkeypatch):
    make_csv(tmp_path / "iris.csv", n=120)
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species}", epochs=5, units=64)
    assert fw(capsys, "train", cfg)[0] == 0
    check_exact([cfg], table_requests(tmp_path / "iris.csv", tmp_path), 3, monkeypatch)


def test_fw_predict_answers_an_input_as_it_answers_it_alone(mnist_dir, shared_book, tmp_path):
    """fw predict's inputs do not change each other's answers either: a file's are its answers on its own
    (an empty file, in a call of its own now, has none, and leaves the others be)."""
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:40]
    for k, (a, b) in enumerate(((0, 1), (1, 6), (6, 6), (6, 23), (23, 40))):
        np.save(tmp_path / f"r{k}.npy", images[a:b])
    files = [[tmp_path / f"r{k}.npy"] for k in range(5)]
    args = [CNN, f"dataset.root={mnist_dir}", f"weights.path={shared_book / 'params.pkl'}"]
    together = predicted(args, files, 10)
    assert [len(p) for p in together] == [1, 5, 0, 17, 17]
    assert together == [predicted(args, [group], 10)[0] for group in files]
    assert together[::-1] == predicted(args, files[::-1], 10)
