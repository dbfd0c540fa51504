"""fw serve against Starlette + uvicorn + ONNX Runtime serving fw's own export of the same network, under load.
Not a test: run it by hand.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/serve.py [--rounds 5] [--requests 20000]

Both servers speak the same protocol (POST /v1/models/NAME:predict with
{"instances": [one 28x28 image as nested lists of pixels]}, answered with
class, label, probability and top) on 127.0.0.1, run by the same uvicorn
(one process, logging off) with the same HTTP parser, h11 (fw serve pins it:
it bounds a request's headers, which uvicorn's httptools protocol does not).
The same client, an asyncio loop on raw sockets here, keeps 32 keep-alive
connections busy, each sending its next request as soon as the last is
answered, cycling through the MNIST test images. Every
answer's class is checked against the first round's; a non-200 or a wrong
class is an error. The servers take turns (fw, anchor, fw, anchor, ...), so
a noisy neighbour slows both alike; the figures are each server's median
round, and the ratio is the median of each round's fw / anchor.
Memory is the server's resident set (VmRSS) after warm-up and after
the measured requests.

The anchor (``--anchor MODEL.onnx``, started by this script) is what one writes
with Starlette and ONNX Runtime: parse the JSON, divide by 255, session.run in
the handler (one intra-op thread: a one-image request gains nothing from more,
and idle spinning threads would take the event loop's core), argsort, answer.
Needs the bench and serve extras: pip install -e '.[bench,serve]'.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = 32


def data_dir() -> Path:
    return Path(os.environ.get("FW_DATA_DIR") or REPO.parent / "shared" / "data")


# --- the anchor: Starlette + ONNX Runtime ------------------------------------------------------------


def anchor_app(model_path, name, classes):
    import onnxruntime as ort
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    info = {"name": name, "ready": True, "classes": classes, "input": {"shape": [28, 28]}}

    async def metadata(request):
        return JSONResponse(info)

    async def predict(request):
        try:
            body = await request.json()
            x = np.asarray(body["instances"], np.float32).reshape(-1, 784) / np.float32(255)
            top = int(body.get("top", 1))
        except Exception as e:  # noqa: BLE001 - any bad request is a 400, as in fw serve
            return JSONResponse({"error": str(e)}, status_code=400)
        p = session.run(None, {"input": x})[0].astype(np.float64)
        order = np.argsort(-p, axis=1, kind="stable")[:, :top]
        predictions = []
        for row, best in zip(p, order):
            tops = [{"class": classes[k], "probability": float(row[k])} for k in best]
            predictions.append(
                {"class": tops[0]["class"], "label": int(best[0]), "probability": tops[0]["probability"], "top": tops}
            )
        return JSONResponse({"predictions": predictions})

    return Starlette(
        routes=[Route(f"/v1/models/{name}", metadata), Route(f"/v1/models/{name}:predict", predict, methods=["POST"])]
    )


def run_anchor(model_path, name, classes):
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"anchor: {name} at http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    config = uvicorn.Config(
        anchor_app(model_path, name, classes),
        http="h11",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run(sockets=[sock])


# --- the client -----------------------------------------------------------------------------------


async def load(port, path, bodies, total, expected=None):
    """``total`` requests over CONNECTIONS keep-alive connections: (latencies in s, errors, classes, seconds)."""
    latencies, classes, errors = [], {}, [0]
    next_request = iter(range(total))

    async def connection():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in next_request:
                body = bodies[i % len(bodies)]
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                start = time.perf_counter()
                writer.write(head + body)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                got = json.loads(answer)["predictions"][0]["class"] if status.startswith(b"HTTP/1.1 200") else None
                classes[i % len(bodies)] = got
                if got is None or (expected is not None and expected.get(i % len(bodies)) != got):
                    errors[0] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
            errors[0] += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return latencies, errors[0], classes, time.perf_counter() - start


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(cmd):
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    line = process.stdout.readline()
    if not line:
        sys.exit(f"server did not start: {' '.join(cmd)}")
    return process, int(line.split("http://127.0.0.1:")[1].split("/")[0])


def one_round(cmd, path, bodies, total, expected):
    process, port = start(cmd)
    try:
        asyncio.run(load(port, path, bodies, 1000, expected))  # warm-up
        before = rss_mib(process.pid)
        latencies, errors, classes, seconds = asyncio.run(load(port, path, bodies, total, expected))
        after = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(10)
    latencies.sort()
    return {
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "errors": errors + total - len(latencies),
        "rss_warm_mib": before,
        "rss_after_mib": after,
    }, classes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--anchor", metavar="MODEL.onnx", help=argparse.SUPPRESS)  # the anchor server itself
    parser.add_argument("--fw-args", default="", help="more fw serve options, e.g. '--max-batch 16'")
    args = parser.parse_args()
    name = "mnist_infer"
    if args.anchor:
        return run_anchor(args.anchor, name, list("0123456789"))

    from framework.plugins.idx import read_idx

    data = data_dir()
    images = read_idx(data / "mnist" / "t10k-images-idx3-ubyte.gz")[:1000]
    bodies = [json.dumps({"instances": [image.tolist()]}).encode() for image in images]
    overrides = [f"dataset.root={data / 'mnist'}", f"weights.path={data / 'book' / 'sample_weight.pkl'}"]
    config = str(REPO / "configs" / f"{name}.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / f"{name}.onnx"
        subprocess.run(
            [sys.executable, "-m", "framework.cli", "export", config, str(model), *overrides],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        servers = {
            "fw serve": [
                sys.executable,
                "-m",
                "framework.cli",
                "serve",
                config,
                *overrides,
                "--port",
                "0",
                *args.fw_args.split(),
            ],
            "starlette+onnxruntime": [sys.executable, __file__, "--anchor", str(model)],
        }
        results = {k: [] for k in servers}
        expected = None
        for _ in range(args.rounds):
            for label, cmd in servers.items():
                figures, classes = one_round(cmd, f"/v1/models/{name}:predict", bodies, args.requests, expected)
                expected = expected or classes
                results[label].append(figures)
                if not args.json:
                    print(f"  {label:<22} " + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    summary = {
        label: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} for label, rounds in results.items()
    }
    ratios = [
        f["requests_per_s"] / a["requests_per_s"] for f, a in zip(results["fw serve"], results["starlette+onnxruntime"])
    ]
    summary["ratio_fw_over_anchor"] = statistics.median(ratios)  # of each round's pair, run side by side
    summary["ratio_range"] = [min(ratios), max(ratios)]
    summary["load_average"] = os.getloadavg()
    summary["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(summary))
        return None
    for label in servers:
        s = summary[label]
        print(
            f"{label:<22} {s['requests_per_s']:7.0f} req/s  p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms  "
            f"errors {s['errors']:.0f}  RSS {s['rss_warm_mib']:.0f} -> {s['rss_after_mib']:.0f} MiB"
        )
    low, high = summary["ratio_range"]
    print(
        f"fw / anchor: {summary['ratio_fw_over_anchor']:.2f}x requests per second (median of the rounds' ratios; "
        f"{low:.2f} to {high:.2f}); load average {', '.join(f'{v:.2f}' for v in summary['load_average'])}"
    )
    return None


if __name__ == "__main__":
    main()
