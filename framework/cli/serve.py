"""``fw serve``: a trained network behind TF Serving / KServe v1's JSON protocol, with a page to draw on."""

import argparse

HELP = """\
Serve the network CONFIG describes (with its weights) over HTTP until Ctrl-C
or SIGTERM, which stop it once the requests in flight are answered. Every
input gets fw predict's preparation; the answers are fw predict --json's.
NAME below is the config file's stem, e.g. mnist_infer.

  GET  /                          a page: draw a digit (or fill in a table row)
  GET  /v1/models/NAME            {"name", "ready", "classes", "input"}
  POST /v1/models/NAME:predict    {"instances": [...], "top": K}
      -> {"predictions": [{"class", "label", "probability", "top"}, ...]}

An instance is a list of numbers shaped like one example (or flat), an object
{column: value} for a table model, or {"b64": "<an image file in base64>"}.
Requests that arrive together reach the network as one batch (at most
--max-batch rows, waiting at most --max-wait-ms for them); --max-batch 1
hands each over alone. The network still runs over each request's rows in a
call of their own, as fw predict does each input's, so an answer is the
same to the last bit whatever else was asked with it.

examples:
  fw serve mnist_infer
  fw serve configs/wine.yaml --port 8080 weights.path=runs/wine.npz
  curl -H 'Content-Type: application/json' -d '{"instances": [[0, 0, ...]]}' \\
      http://127.0.0.1:8000/v1/models/mnist_infer:predict

Needs starlette and uvicorn (pip install starlette uvicorn, or in a clone
of fw: pip install -e '.[serve]')."""


def add_command(sub, debug, config_arg):
    serve = sub.add_parser(
        "serve",
        parents=[debug],
        help="answer predictions over HTTP, with a page to draw digits on",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("config", metavar="CONFIG", help=config_arg)
    serve.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, as for fw run")
    serve.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000; 0: any free port)")
    serve.add_argument(
        "--max-body",
        type=int,
        default=10 << 20,
        metavar="BYTES",
        help="the largest request body taken (default 10 MiB)",
    )
    serve.add_argument(
        "--max-batch", type=int, default=32, metavar="ROWS", help="the most rows in one batch of requests (default 32)"
    )
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=2.0,
        metavar="MS",
        help="how long a request waits for others to batch with (default 2)",
    )
    serve.set_defaults(func=run)


def run(args):
    from ..errors import FwError
    from ..interchange import optional_import

    for package in ("starlette", "uvicorn"):
        optional_import(package, "serve", "fw serve")  # before any work
    for flag, value, low in (
        ("--max-body", args.max_body, 1),
        ("--max-batch", args.max_batch, 1),
        ("--max-wait-ms", args.max_wait_ms, 0),
    ):
        if not value >= low:
            raise FwError(f"{flag} must be at least {low}, got {value}")
    if not 0 <= args.port <= 65535:  # the socket would take 70000 as port 4464 (modulo 65536)
        raise FwError(f"--port must be from 0 to 65535 (0: any free port), got {args.port}")
    app, name = make_app(
        args.config, args.overrides, max_body=args.max_body, max_batch=args.max_batch, max_wait=args.max_wait_ms / 1000
    )
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    where = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    print(f"fw serve: {name} at {where}/ (the page) and {where}/v1/models/{name}:predict; Ctrl-C stops", flush=True)
    _serve(app, sock)
    return 0


def make_app(config, overrides, **limits):
    """``(app, model name)``: the Starlette app serving the network CONFIG describes (``limits``: ``create_app``'s)."""
    from pathlib import Path
    from types import SimpleNamespace

    from ..config import load_config
    from ..plugin_system.manager import get_registry
    from .commands import _report_failures
    from .predict import build
    from .serving.app import Model, create_app

    cfg = load_config(config, overrides)
    registry = get_registry(cfg.plugins)
    _report_failures(registry)
    net, dataset = build(cfg, registry)
    options = SimpleNamespace(
        normalize=bool(cfg.dataset.normalize), flatten=bool(cfg.dataset.flatten)
    )  # read per request
    model = Model(Path(config).stem, net, dataset, options)
    return create_app(model, **limits), model.name


def _listen(host, port):
    """A listening socket, so a busy port is a one-line error and --port 0 gets a free one."""
    import socket

    from ..errors import FwError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        raise FwError(f"cannot listen on {host}:{port} ({e.strerror or e}); give another --port or --host") from None
    return sock


def _serve(app, sock):
    import uvicorn

    # In-flight requests get 3 s to finish after Ctrl-C or SIGTERM, so the server is gone within 5 s.
    # h11, even where httptools is installed: h11 refuses a request line and headers over 16 KiB (400), where
    # uvicorn's httptools protocol keeps whatever it is sent (a 200 MB header took the server to 350 MiB). httptools
    # would serve 1.5 times the requests a second (docs/performance.md); a bounded request comes first.
    config = uvicorn.Config(app, http="h11", log_level="warning", access_log=False, timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
