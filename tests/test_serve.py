"""fw serve: fw predict's answers over TF Serving / KServe v1's JSON protocol, its errors, batching and process."""

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from framework.cli.serve import make_app
from framework.plugins.idx import read_idx
from own_data import FEATURES, config, make_csv
from test_cli import BOOK, fw

pytest.importorskip("starlette")
from starlette.testclient import TestClient

CNN = str(Path(__file__).resolve().parents[1] / "configs" / "mnist_cnn.yaml")
ANSWER = ("class", "label", "probability", "top", "note")


@pytest.fixture
def book(mnist_dir, book_weights):
    return [BOOK, f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]


@pytest.fixture
def cnn(mnist_dir, shared_book):
    return [CNN, f"dataset.root={mnist_dir}", f"weights.path={shared_book / 'params.pkl'}"]


def client(config, *overrides, **limits):
    app, name = make_app(config, list(overrides), **limits)
    return TestClient(app), f"/v1/models/{name}"


def predicted(capsys, *args):
    """fw predict --json's records, without the input and row the server has no use for."""
    code, out, err = fw(capsys, "predict", *args, "--json")
    assert code == 0, err
    return [{k: v for k, v in json.loads(line).items() if k in ANSWER} for line in out.splitlines()]


def drawn_seven(size=280):
    """A 7 as a person draws it with a mouse: a thick dark stroke on white, off-centre, a little slanted."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(picture).line([(70, 60), (200, 70), (130, 240)], fill="black", width=22, joint="curve")
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def b64(data: bytes):
    return {"b64": base64.b64encode(data).decode()}


def one_line_error(response, status, *fragments):
    assert response.status_code == status, response.text
    assert "\n" not in response.text and list(response.json()) == ["error"], response.text
    for fragment in fragments:
        assert fragment in response.json()["error"], response.text


@pytest.mark.parametrize("network", ["book", "cnn"])
def test_answers_equal_fw_predicts_for_arrays_and_images(capsys, tmp_path, mnist_dir, network, request):
    args = request.getfixturevalue(network)
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:20]
    np.save(tmp_path / "x.npy", images)
    (tmp_path / "seven.png").write_bytes(drawn_seven())
    (tmp_path / "zero.png").write_bytes(_png(255 - images[3]))  # the test set's 4th digit, a 0, dark on white
    http, model = client(*args)

    assert http.get(model).json() == {
        "name": Path(args[0]).stem,
        "ready": True,
        "classes": list("0123456789"),
        "input": {"shape": [28, 28], "values": "pixels, 0 to 255", "columns": None, "b64": True},
    }
    nested = http.post(f"{model}:predict", json={"instances": images.tolist(), "top": 3})
    assert nested.status_code == 200, nested.text
    assert nested.json()["predictions"] == predicted(capsys, *args, tmp_path / "x.npy", "--top", "3")
    flat = http.post(f"{model}:predict", json={"instances": images.reshape(20, -1).tolist(), "top": 3})
    assert flat.json() == nested.json()
    pictures = http.post(f"{model}:predict", json={"instances": [b64(drawn_seven()), b64(_png(255 - images[3]))]})
    assert pictures.json()["predictions"] == predicted(capsys, *args, tmp_path / "seven.png", tmp_path / "zero.png")
    assert [p["class"] for p in pictures.json()["predictions"]] == ["7", "0"]


def _png(a):
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(a).resize((112, 112)).save(out, "PNG")
    return out.getvalue()


def test_a_csv_model_takes_objects_and_answers_as_fw_predict(capsys, tmp_path):
    x, _ = make_csv(tmp_path / "iris.csv")
    cfg = config(tmp_path, "{name: csv, path: iris.csv, label: species}")
    assert fw(capsys, "train", cfg)[0] == 0
    rows = "\n".join((tmp_path / "iris.csv").read_text().splitlines()[:8]) + "\n"
    (tmp_path / "new.csv").write_text(rows)
    http, model = client(cfg)
    described = http.get(model).json()["input"]
    assert {k: described[k] for k in ("shape", "columns", "b64")} == {
        "shape": [4],
        "columns": list(FEATURES),
        "b64": False,
    }
    assert described["column_types"] == {f: "numeric" for f in FEATURES}
    header, *lines = rows.splitlines()
    objects = [dict(zip(header.split(","), line.split(","))) for line in lines]  # text, label and all, as a form sends
    objects[1] = {k: float(v) for k, v in reversed(objects[1].items()) if k != "species"}  # numbers, any order
    answer = http.post(f"{model}:predict", json={"instances": objects, "top": 2})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == predicted(capsys, cfg, tmp_path / "new.csv", "--top", "2")
    as_arrays = http.post(f"{model}:predict", json={"instances": x[:7].round(5).tolist(), "top": 2})
    assert [p["class"] for p in as_arrays.json()["predictions"]] == [p["class"] for p in answer.json()["predictions"]]

    missing = http.post(
        f"{model}:predict", json={"instances": [{k: v for k, v in objects[0].items() if k != "petal_width"}]}
    )
    one_line_error(missing, 422, "has no column 'petal_width'")
    one_line_error(
        http.post(f"{model}:predict", json={"instances": [{**objects[0], "sepal_width": [1]}]}), 422, "sepal_width"
    )
    huge = http.post(f"{model}:predict", json={"instances": [objects[0], {**objects[0], "sepal_width": "1e400"}]})
    one_line_error(huge, 422, "instances row 2 (line 2), column 'sepal_width'", "not a finite number")
    one_line_error(http.post(f"{model}:predict", json={"instances": [b64(drawn_seven())]}), 422, "does not take images")
    assert http.post(f"{model}:predict", json={"instances": objects[:1]}).status_code == 200


def test_every_bad_request_gets_its_status_and_one_line_and_the_server_goes_on(book, mnist_dir):
    http, model = client(*book, max_body=50_000)
    url = f"{model}:predict"
    one_line_error(
        http.post(url, content=b'{"instances": [[0, 0,', headers={"content-type": "application/json"}),
        400,
        "malformed JSON",
    )
    one_line_error(
        http.post(url, content=b"\xff\xfe{}", headers={"content-type": "application/json"}), 400, "malformed JSON"
    )
    one_line_error(
        http.post(url, content="[" * 100_00 + "]" * 100_00, headers={"content-type": "application/json"}), 400
    )
    one_line_error(
        http.post(url, content=b"instances=1", headers={"content-type": "application/x-www-form-urlencoded"}),
        415,
        "Content-Type: application/json",
    )
    one_line_error(http.post(url, json={"instances": [[0] * 783]}), 422, "shape (1, 783)", "(N, 28, 28) or (N, 784)")
    one_line_error(http.post(url, json={"instances": [[0] * 784, [0] * 783]}), 422, "all of one shape")
    one_line_error(http.post(url, json={"instances": [[300] * 784]}), 422, "from 300.0 to 300.0", "0 to 255")
    one_line_error(http.post(url, json={"instances": [[None] * 784]}), 422, "not a finite number")
    one_line_error(
        http.post(url, json={"instances": [b64(b"GIF89a not really")]}), 422, "instances:0: not a readable image"
    )
    one_line_error(http.post(url, json={"instances": [{"b64": "%%%"}]}), 422, "instances:0", "not base64")
    one_line_error(http.post(url, json={"instances": [b64(_png(np.zeros((28, 28), np.uint8)))]}), 422, "no digit found")
    one_line_error(http.post(url, json={"instances": []}), 422, "non-empty list")
    deep = "[" * 100 + "0" + "]" * 100  # a hundred axes: more than numpy takes
    one_line_error(
        http.post(url, content=f'{{"instances": {deep}}}', headers={"content-type": "application/json"}),
        422,
        "all of one shape",
    )
    one_line_error(http.post(url, json=[[0] * 784]), 422, '{"instances": [...]}')
    one_line_error(http.post(url, json={"instances": [[0] * 784], "top": 11}), 422, '"top"', "1 to 10")
    one_line_error(http.post(url, json={"instances": [[0] * 784] * 40}), 413, "50,000 bytes", "--max-body")
    one_line_error(http.get("/v1/models/other"), 404, f"/v1/models/{model.rsplit('/', 1)[1]}")
    one_line_error(http.get(url), 405)

    ok = http.post(url, json={"instances": [read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[0].tolist()]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["class"] == "7"


def test_requests_that_arrive_together_share_one_batch_with_unbatched_answers(book, mnist_dir, monkeypatch):
    """A batch is one pass of fw's own work around the network; the network still runs over each request alone, so
    every answer is its request's alone to the last bit (tests/test_serve_exact.py tries more orders and networks)."""
    import httpx2

    from framework.cli.serving.app import Model
    from framework.core.network import Network

    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:24]
    batches, calls = [], []
    predict, answer = Network.predict, Model.answer
    monkeypatch.setattr(Network, "predict", lambda self, x: calls.append(len(x)) or predict(self, x))
    monkeypatch.setattr(Model, "answer", lambda self, requests: batches.append(len(requests)) or answer(self, requests))

    async def ask(app, model, rows):
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://fw") as http:
            answers = await asyncio.gather(
                *(http.post(f"{model}:predict", json={"instances": r, "top": 10}) for r in rows)
            )
        return [p for a in answers for p in a.json()["predictions"]]

    requests = [images[k : k + n].tolist() for k, n in ((0, 1), (1, 3), (4, 1), (5, 5), (10, 1), (11, 13))]
    app, name = make_app(book[0], book[1:], max_batch=64, max_wait=0.5)
    together = asyncio.run(ask(app, f"/v1/models/{name}", requests))
    assert batches == [6] and sorted(calls) == [
        1,
        1,
        1,
        3,
        5,
        13,
    ]  # six requests, one batch, each through the network alone
    batches.clear()
    calls.clear()
    app, name = make_app(book[0], book[1:], max_batch=1)
    alone = asyncio.run(ask(app, f"/v1/models/{name}", requests))
    assert batches == [1] * 6 and sorted(calls) == [1, 1, 1, 3, 5, 13]
    assert together == alone

    batches.clear()
    app, name = make_app(book[0], book[1:], max_batch=8, max_wait=0.5)
    asyncio.run(ask(app, f"/v1/models/{name}", [images[k : k + 1].tolist() for k in range(20)]))
    assert batches == [8, 8, 4]  # no more than --max-batch rows at once; the last waits --max-wait-ms, not forever


def test_a_bad_request_in_a_batch_is_refused_alone(book, mnist_dir):
    import httpx2

    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:3].tolist()
    app, name = make_app(book[0], book[1:], max_batch=64, max_wait=0.5)

    async def ask(bodies):
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://fw") as http:
            return await asyncio.gather(
                *(http.post(f"/v1/models/{name}:predict", json={"instances": b}) for b in bodies)
            )

    nan = [[None] * 28] * 28
    answers = asyncio.run(ask([images[:1], [images[1], nan], images[2:]]))
    assert [a.status_code for a in answers] == [200, 422, 200]
    one_line_error(answers[1], 422, "instances:1", "not a finite number")
    assert [a.json()["predictions"][0]["class"] for a in (answers[0], answers[2])] == ["7", "1"]


def test_the_page_is_self_contained(book):
    http, model = client(*book)
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needed in (
        'id="canvas"',
        'id="clear"',
        'id="prediction"',
        'type="file"',
        "pointerdown",
        '"name": "mnist_infer"',
    ):
        assert needed in page.text
    assert "http://" not in page.text and "https://" not in page.text and "src=" not in page.text
    assert len(page.content) < 10_000


def _start(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "serve", *map(str, args), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stdout.readline()
    assert line.startswith("fw serve: "), (line, process.stderr.read() if process.poll() is not None else "")
    return process, line.split(" at ")[1].split("/ ")[0], time.monotonic() - start


@pytest.mark.slow
def test_a_real_server_is_ready_in_seconds_and_stops_on_sigterm_after_answering(book, mnist_dir):
    process, url, ready = _start(
        *book, "--max-wait-ms", "1500", "--max-body", "50000"
    )  # a request waits 1.5 s for others
    try:
        assert ready < 5, ready
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/v1/models/mnist_infer", timeout=5) as r:
            assert json.load(r)["ready"] is True
        assert _413_before_the_end(url).startswith(b"HTTP/1.1 413 ")
        image = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[0]
        answer = {}

        def ask():
            body = json.dumps({"instances": [image.tolist()]}).encode()
            req = urllib.request.Request(
                f"{url}/v1/models/mnist_infer:predict", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                answer.update(status=r.status, body=json.load(r))

        in_flight = threading.Thread(target=ask)
        in_flight.start()
        time.sleep(0.5)  # the request is in, waiting for its batch
        stop = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        stopped = time.monotonic() - stop
        in_flight.join(5)
        assert answer["status"] == 200 and answer["body"]["predictions"][0]["class"] == "7"
        assert stopped < 5, stopped
        assert process.returncode == 128 + signal.SIGTERM
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _413_before_the_end(url):
    """A chunked body that never ends: the limit must stop the reading, not wait for the end (or the client)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /v1/models/mnist_infer:predict HTTP/1.1\r\nHost: fw\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(5):  # 50,000 bytes, then one more, and no last chunk
            s.sendall(b"2710\r\n" + b" " * 10_000 + b"\r\n")
        s.sendall(b"1\r\n \r\n")
        return s.recv(1000)  # a timeout (5 s) if the server waits for the rest


def test_a_busy_port_is_one_line(capsys, book):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out, err = fw(capsys, "serve", *book, "--port", taken.getsockname()[1])
    assert code == 1 and err.count("\n") == 1 and "cannot listen on 127.0.0.1:" in err and "--port" in err, err


@pytest.mark.parametrize("port", [70000, -1])
def test_a_port_out_of_range_is_one_line_not_another_port(capsys, book, port):
    code, out, err = fw(capsys, "serve", *book, "--port", port)
    assert code == 1 and out == "" and err.count("\n") == 1, (out, err)
    assert f"--port must be from 0 to 65535 (0: any free port), got {port}" in err, err


def test_a_table_model_takes_words_and_blanks_as_fw_predict_does(capsys, tmp_path):
    """Issue 28's raw rows over the protocol: words, blanks (null, "" or "NA"), an unseen word, and its note."""
    from test_table_preparation import messy_config

    cfg = messy_config(tmp_path)
    assert fw(capsys, "train", cfg)[0] == 0
    (tmp_path / "new.csv").write_text(
        "city,color,size,year,weight\nOslo,red,58.0,2020,71\nNA,,41.5,2021,69.5\nTokyo,blue,,2019,70\n"
    )
    instances = [
        {"city": "Oslo", "color": "red", "size": 58.0, "year": 2020, "weight": 71},
        {"city": "NA", "color": None, "size": "41.5", "year": 2021, "weight": 69.5},
        {"city": "Tokyo", "color": "blue", "size": "", "year": 2019, "weight": 70},
    ]
    http, model = client(cfg)
    assert http.get(model).json()["input"]["column_types"] == {
        "size": "numeric",
        "color": "categorical",
        "city": "categorical",
        "year": "numeric",
        "weight": "numeric",
    }
    answer = http.post(f"{model}:predict", json={"instances": instances, "top": 2})
    assert answer.status_code == 200, answer.text
    expected = predicted(capsys, cfg, tmp_path / "new.csv", "--top", "2")
    assert answer.json()["predictions"] == expected
    assert expected[2]["note"] == "city: 'Tokyo' was not seen in training (encoded as unseen)"


def _asgi(app, path, messages, headers=((b"content-type", b"application/json"),)):
    """Drive ``app`` with one POST whose body arrives as ``messages``: the ASGI messages it sent back."""
    sent, incoming = [], iter(messages)

    async def receive():
        return next(incoming, {"type": "http.disconnect"})

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_body_in_many_pieces_is_answered_as_one_and_a_client_that_leaves_gets_nothing(book, mnist_dir):
    """The predict route reads its body itself (no Starlette Request): pieces are joined, a client that leaves
    half-way is not answered, a charset is taken, and the answer is byte for byte the TestClient's."""
    app, name = make_app(book[0], book[1:], max_body=50_000)
    path = f"/v1/models/{name}:predict"
    image = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[0].tolist()
    body = json.dumps({"instances": [image], "top": 3}).encode()
    whole = TestClient(app).post(path, content=body, headers={"content-type": "application/json"})
    assert whole.status_code == 200 and whole.json()["predictions"][0]["class"] == "7"

    pieces = [{"type": "http.request", "body": body[k : k + 500], "more_body": True} for k in range(0, len(body), 500)]
    sent = _asgi(app, path, [*pieces, {"type": "http.request", "body": b"", "more_body": False}])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and dict(sent[0]["headers"])[b"content-type"] == b"application/json"
    assert sent[1]["body"] == whole.content
    assert int(dict(sent[0]["headers"])[b"content-length"]) == len(whole.content)

    assert _asgi(app, path, pieces[:2]) == []  # then http.disconnect: nobody to answer, nothing raised

    charset = ((b"content-type", b"Application/JSON; charset=utf-8"),)
    sent = _asgi(app, path, [{"type": "http.request", "body": body}], headers=charset)
    assert sent[0]["status"] == 200 and sent[1]["body"] == whole.content

    too_big = [{"type": "http.request", "body": b" " * 30_000, "more_body": True}] * 3  # no Content-Length
    sent = _asgi(app, path, too_big)
    assert sent[0]["status"] == 413 and b"50,000 bytes" in sent[1]["body"]
    huge = ((b"content-type", b"application/json"), (b"content-length", b"9" * 5000))  # more digits than int() reads
    assert _asgi(app, path, [{"type": "http.request", "body": body}], headers=huge)[0]["status"] == 413


def test_a_failure_inside_the_predict_route_is_a_one_line_500_and_the_server_goes_on(book, mnist_dir, monkeypatch):
    import framework.cli.serving.app as serving

    image = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[0].tolist()
    failures = iter([ZeroDivisionError("division by zero")])

    def classified(*args):
        for failure in failures:  # the first call only
            raise failure
        return serving_classified(*args)

    serving_classified = serving.classified
    monkeypatch.setattr(serving, "classified", classified)
    app, name = make_app(book[0], book[1:])
    http = TestClient(app, raise_server_exceptions=False)
    one_line_error(http.post(f"/v1/models/{name}:predict", json={"instances": [image]}), 500, "ZeroDivisionError")
    again = http.post(f"/v1/models/{name}:predict", json={"instances": [image]})
    assert again.status_code == 200 and again.json()["predictions"][0]["class"] == "7"


@pytest.mark.slow
def test_a_request_with_a_header_block_past_16_kib_is_refused_and_the_server_goes_on(book, mnist_dir):
    """fw serve runs uvicorn's h11 even where httptools is installed: httptools keeps a header of any size."""
    import socket

    process, url, _ = _start(*book)
    try:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: fw\r\nX-Padding: ")
            try:
                for _ in range(64):  # 64 MiB, unless the server refuses first
                    s.sendall(b"a" * (1 << 20))
            except OSError:  # the server answered and closed while we sent
                pass
            answer = s.recv(1 << 16)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert _rss_mib(process.pid) < 200
        with urllib.request.urlopen(f"{url}/v1/models/mnist_infer", timeout=5) as r:
            assert json.load(r)["ready"] is True
    finally:
        process.terminate()
        process.wait(10)


def _rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_blank_beside_a_huge_number_is_one_422_and_no_numpy_warning_in_the_servers_log(book):
    """NaN hides 1e308 from the pixel range check (min and max are NaN); float32 cannot hold it either."""
    http, model = client(*book)
    image = [0] * 784
    image[3], image[5] = None, 1e308
    one_line_error(http.post(f"{model}:predict", json={"instances": [image]}), 422, "not a finite number")
