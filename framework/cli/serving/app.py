"""The HTTP side of ``fw serve``: TF Serving / KServe v1's JSON protocol on Starlette, and the page at /.

    GET  /                          the page: draw a digit, or fill in a table row
    GET  /v1/models/NAME            {"name", "ready", "classes", "input"}
    POST /v1/models/NAME:predict    {"instances": [...], "top": K} -> {"predictions": [...]}

Each prediction has ``fw predict --json``'s class, label, probability and top
(K, default 1). A bad request gets a one-line {"error": ...}: 400 malformed
JSON, 413 a body over ``max_body`` (counted while it is read), 415 a content
type other than JSON, 422 instances the network cannot take.
"""

import contextlib
import gc
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ...data.dataset import Dataset
from ...errors import FwError
from ..predict import classified, records
from .batching import Batcher
from .instances import batches_of

#: The collector's first threshold while serving (Python's default: 700).
YOUNG_OBJECTS = 10_000

#: What each prediction holds: ``fw predict --json``'s record, less its input and row.
ANSWER = ("class", "label", "probability", "top", "note")


@dataclass
class Model:
    """What serving one network needs: its name (the config's stem), network, dataset and ``cfg.dataset``."""

    name: str
    net: object
    dataset: object
    options: object

    def describe(self) -> dict:
        d = self.dataset
        takes_images = type(d).example_from_image is not Dataset.example_from_image
        described = {
            "shape": list(d.example_shape()),
            "values": "pixels, 0 to 255" if d.pixels else "numbers",
            "columns": list(d.feature_names) if d.feature_names is not None else None,
            "b64": takes_images,
        }
        if hasattr(d, "preparation_layer"):  # a table: which columns take words, and that blanks are welcome
            columns = d.preparation_layer().columns
            described["column_types"] = {c["name"]: c["type"] for c in columns}
            described["values"] = 'a row\'s raw cells: numbers or words; null or "" for a blank'
        return {
            "name": self.name,
            "ready": True,
            "classes": [d.class_name(k) for k in range(d.num_classes)],
            "input": described,
        }

    def answer(self, requests):
        """fw predict's records for each request ``(batches, top)`` of a batch, or the FwError refusing it.

        Each request's inputs go through the network alone (``classified``, as
        in fw predict), so its answer is the same to the last bit whichever
        requests it came with; what the batch shares is fw's own work around
        the network (checks, softmax decisions, sorting: per row, so the same
        numbers in any company) and one hold of the BLAS to a single thread.
        A batch with a request that is refused goes again request by request,
        so each refusal names its own request's instance.
        """
        batches = [b for request_batches, _ in requests for b in request_batches]
        try:
            probabilities = classified(self.net, batches, self.dataset, self.options)
        except FwError:
            return [self._alone(request) for request in requests]
        together = np.concatenate(probabilities)
        order = np.argsort(-together, axis=1, kind="stable")
        answers, start = [], 0
        for request_batches, top in requests:
            end = start + sum(len(b.rows) for b in request_batches)
            answers.append(records(request_batches, together[start:end], self.dataset, top, order[start:end]))
            start = end
        return answers

    def _alone(self, request):
        batches, top = request
        try:
            probabilities = np.concatenate(classified(self.net, batches, self.dataset, self.options))
        except FwError as e:
            return e
        return records(batches, probabilities, self.dataset, top)


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def error(status, message) -> JSONResponse:
    return JSONResponse(_error(message), status_code=status)


def _error(message) -> dict:
    return {"error": " ".join(str(message).split())}


def create_app(model: Model, *, max_body=10 << 20, max_batch=32, max_wait=0.002) -> Starlette:
    batcher = Batcher(model.answer, lambda request: sum(len(b.rows) for b in request[0]), max_batch, max_wait)
    info = model.describe()
    page = resources.files(__package__).joinpath("page.html").read_text("utf-8")
    page = page.replace("__MODEL__", json.dumps(info).replace("<", "\\u003c"))

    async def index(request):
        return HTMLResponse(page)

    async def metadata(request):
        return JSONResponse(info)

    async def predict(scope, receive, send):
        """The predict route, a plain ASGI app: it reads the body and sends the answer itself (``_PredictFirst``)."""
        try:
            request_json = _parsed(await _body(scope, receive, max_body))
            instances, top = _fields(request_json, model.dataset.num_classes)
            if _images(instances):  # decoding an image takes a while: not on the event loop
                batches = await run_in_threadpool(batches_of, instances, model.dataset)
            else:
                batches = batches_of(instances, model.dataset)
            answers = await batcher((batches, top))
        except Refused as e:
            return await _send_json(send, e.status, _error(e))
        except _Disconnected:
            return None
        except FwError as e:
            return await _send_json(send, 422, _error(e))
        return await _send_json(send, 200, {"predictions": [{k: r[k] for k in ANSWER if k in r} for r in answers]})

    async def not_found(request, exc):
        return error(404, f"no such path {request.url.path}; the model is at /v1/models/{model.name}")

    async def http_error(request, exc):
        return error(exc.status_code, exc.detail)

    async def server_error(request, exc):
        return error(500, f"{type(exc).__name__}: {exc}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # What is alive now lives as long as the server: frozen, the collector no longer walks it all at each full
        # collection, which every few thousand requests' JSON set off (p99 latency under load 27-34 -> 8-14 ms).
        # A young generation of 10,000 objects, not 700: the requests waiting in a batch (their JSON's lists)
        # are walked a few times instead of dozens (server CPU a request 204-209 -> 196-199 us; 50,000 gains no more).
        thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_OBJECTS, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            batcher.close()

    predict_path = f"/v1/models/{model.name}:predict"
    return Starlette(
        routes=[
            Route(predict_path, _Endpoint(predict), methods=["POST"]),  # what _PredictFirst leaves: a GET's 405
            Route("/", index),
            Route(f"/v1/models/{model.name}", metadata),
        ],
        middleware=[Middleware(_PredictFirst, path=predict_path, endpoint=predict)],
        exception_handlers={404: not_found, HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )


class _PredictFirst:
    """Starlette middleware that hands the predict route's POSTs straight to its ASGI endpoint.

    Nearly every request is one. Starlette's exception middleware, router and
    Request and Response objects around a route cost some 14 us of each
    (server CPU a one-image request under load, 210 -> 195 us; fw's app
    alone 107 -> 93 us): the endpoint does their part itself, and its errors
    still reach Starlette's 500 handler, outside this. Every other request
    goes through the routes.
    """

    def __init__(self, app, path, endpoint):
        self.app, self.path, self.endpoint = app, path, endpoint

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST":
            return await self.endpoint(scope, receive, send)
        return await self.app(scope, receive, send)


async def _body(scope, receive, limit) -> bytes | bytearray:
    """The request's body, refused (413) as soon as it passes ``limit`` bytes, before the rest is read."""
    kind = _header(scope, b"content-type", b"application/json").decode("latin-1").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(415, f"content type {kind!r} is not taken; send JSON with Content-Type: application/json")
    length = _header(scope, b"content-length", b"")
    if length.isdigit() and (len(length) > 18 or int(length) > limit):  # int() refuses 4,300 digits
        raise Refused(413, _too_big(limit))
    body = bytearray()  # one buffer, however many pieces the client sends the body in
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk, more = message.get("body", b""), message.get("more_body", False)
        if len(body) + len(chunk) > limit:
            raise Refused(413, _too_big(limit))
        if not (more or body):
            return chunk  # the whole body in one message, as uvicorn gives most: no copy
        body += chunk
        if not more:
            return body


def _header(scope, name, default):
    """A request header's first value (as Starlette's ``Headers.get``); ASGI gives names in lower case."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return default


class _Disconnected(Exception):
    """The client left before its request's body was read: nobody to answer."""


class _Endpoint:
    """A plain ASGI app as a Starlette route's endpoint (Starlette wraps functions in a Request and a Response)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


async def _send_json(send, status, content):
    """``content`` as JSONResponse renders it, sent as the two ASGI messages it sends."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_big(limit):
    return f"the body is over {limit:,} bytes (fw serve --max-body); send fewer instances per request"


def _parsed(body):
    try:
        return json.loads(body)
    except RecursionError:
        raise Refused(400, "the JSON is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and bytes that are not UTF-8
        raise Refused(400, f"malformed JSON: {e}") from None


def _fields(body, classes):
    if not isinstance(body, dict) or "instances" not in body:
        raise Refused(422, 'the body must be a JSON object {"instances": [...]}')
    top = body.get("top", 1)
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= classes:
        raise Refused(422, f'"top" must be a whole number from 1 to {classes}, got {top!r}')
    return body["instances"], top


def _images(instances):
    return isinstance(instances, list) and any(isinstance(i, dict) and "b64" in i for i in instances)
