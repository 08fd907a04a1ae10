#!/usr/bin/env python3
"""Serving throughput and latency of `mlx serve` against a Python stack (FastAPI + uvicorn +
PyTorch, bench/serve_python.py) on the same trained weights, side by side in one run.

Steps:

  1. Run directories: trains examples/penguins.mlx and examples/fashion_mlp.mlx (one epoch)
     with `mlx run ... --out DIR`, or takes them from --penguins and --fashion.
  2. Servers: `mlx serve PENGUINS FASHION --port P` (MLX_THREADS=--threads) and
     `bench/serve_python.py PENGUINS FASHION --port Q --threads T`, each on a free port of
     127.0.0.1, both started before measuring and ready once GET /healthz answers 200.
  3. Agreement: a sample of rows (--sample) is sent, one per request, to both servers; the
     share with the same label is reported, with the largest probability difference.
  4. Load: per workload and server, --clients concurrent keep-alive connections each send
     --requests requests (after --warmup unmeasured ones), one row per request by default
     (--rows-per-request): penguins rows from examples/data/penguins.csv (feature columns,
     `NA` as null) and Fashion-MNIST t10k images as `{"image": {"b64": <PNG>}}`. Both
     servers get the same request bytes; each measurement stops early after --max-seconds.
  5. Report: requests/s, rows/s, p50 and p99 latency per workload and server, and the ratios
     mlx/python (above 1 for throughput, below 1 for latency: mlx is faster). --json FILE
     also writes every figure. Both servers are stopped (SIGTERM, then SIGKILL after 10 s)
     at the end, also on an error or Ctrl-C.

The load generator: pre-built request bytes, each client a keep-alive connection (TCP_NODELAY)
sending its next request once the previous answer is in, all clients of a process on one
event loop (uvloop when installed), spread over --load-procs processes (default: a quarter
of the CPUs, at least 1). Latency runs from writing a request to reading the last byte of its
answer (read by Content-Length); the garbage collector is off while measuring. Its ceiling
is measured first (4x --requests, at least 2000 per client) against a trivial HTTP server
(asyncio, one process per generator process) answering every POST with a fixed body: a
lower bound of what the generator can drive. A server that comes within 30% of it may be
limited by the generator; the report says so. On a 2-core machine (8 clients, 1 generator
process) the ceiling was 20,000-30,000 requests/s, against about 1,000-1,600 for the Python
server; an event loop per process drives about twice the rate of a thread per client.
Servers and generator share the machine's CPUs: compare runs made on one machine only.

Install (the driver itself needs only the standard library):

    python3 -m pip install torch numpy fastapi "uvicorn[standard]" pillow
    apt-get install -y dataset-fashion-mnist      # /usr/share/datasets/fashion-mnist
    cargo build --release

Usage (from anywhere; paths are resolved from this file's location):

    python3 bench/serve_vs_python.py [--penguins RUN_DIR --fashion RUN_DIR]
        [--mlx PATH] [--clients 8] [--requests 500] [--threads 2] [--json FILE]
        [--workloads penguins,fashion] [--only mlx|python] [--python-workers 1]
"""

import argparse
import asyncio
import base64
import csv
import gc
import gzip
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PENGUINS_CSV = ROOT / "examples" / "data" / "penguins.csv"
T10K_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
WORKLOADS = {  # workload: (example, extra `mlx run` arguments)
    "penguins": ("penguins.mlx", []),
    "fashion": ("fashion_mlp.mlx", ["--set", "epochs=1"]),
}
SERVERS = ["mlx", "python"]
PY_DEPS_HINT = ('Install the Python server\'s dependencies with:\n  {py} -m pip install torch '
                'numpy fastapi "uvicorn[standard]" pillow')

# --------------------------------------------------------------------------- requests


def post_bytes(port, path, body):
    """The bytes of a keep-alive POST of a JSON body."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def one_request(port, method, path, body=None, timeout=30.0):
    """(status, body bytes) of one request on its own connection (not measured)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post_json(port, path, doc):
    status, body = one_request(port, "POST", path, json.dumps(doc).encode())
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"error": body[:200].decode(errors="replace")}


# --------------------------------------------------------------------------- load generator


def run_async(coro):
    """Run coro on uvloop when installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


class Client(asyncio.Protocol):
    """One keep-alive connection sending `count` requests, reqs[offset], reqs[offset + 1], ...,
    each once the previous answer is in; answers are read by their Content-Length."""

    def __init__(self, reqs, offset, count, deadline, done):
        self.reqs, self.next, self.left, self.deadline, self.done = reqs, offset, count, deadline, done
        self.buf, self.latencies, self.errors, self.first_error = bytearray(), [], 0, None

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send()

    def send(self):
        if self.left == 0 or time.perf_counter_ns() > self.deadline:
            self.transport.close()
            return
        self.left -= 1
        data = self.reqs[self.next % len(self.reqs)]
        self.next += 1
        self.t0 = time.perf_counter_ns()
        self.transport.write(data)

    def fail(self, why):
        self.errors += 1
        self.first_error = self.first_error or why
        self.transport.close()

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            return self.fail(f"an answer without Content-Length: {head[:200]!r}")
        n = int(head[i + 17 :].split(b"\r\n", 1)[0])
        if len(self.buf) < end + 4 + n:
            return
        t1 = time.perf_counter_ns()
        status = int(self.buf[9:12])
        body = bytes(self.buf[end + 4 : end + 4 + n])
        del self.buf[: end + 4 + n]
        if status == 200:
            self.latencies.append(t1 - self.t0)
        else:
            self.errors += 1
            self.first_error = self.first_error or f"{status}: {body[:200].decode(errors='replace')}"
        if b"\r\nconnection: close" in head:
            return self.fail("the server closed the connection") if self.left else None
        self.send()

    def connection_lost(self, exc):
        if self.left and not self.errors:
            self.errors += 1
            self.first_error = f"connection lost: {exc or 'closed by the server'}"
        if not self.done.done():
            self.done.set_result(None)


def load_process(port, reqs, client_ids, count, max_seconds, barrier, results):
    """One generator process: its clients' connections on one event loop, started together
    with the other processes'."""
    gc.disable()  # no collector pauses inside measured requests
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in client_ids]
    barrier.wait()

    async def run():
        loop = asyncio.get_running_loop()
        start = time.perf_counter_ns()
        deadline = start + int(max_seconds * 1e9)
        clients = []
        for sock, i in zip(socks, client_ids):
            c = Client(reqs, i * 7919, count, deadline, loop.create_future())
            await loop.create_connection(lambda c=c: c, sock=sock)
            clients.append(c)
        await asyncio.gather(*(c.done for c in clients))
        return start, time.perf_counter_ns(), clients

    start, end, clients = run_async(run())
    results.put({"start": start, "end": end,
                 "latencies": [x for c in clients for x in c.latencies],
                 "errors": sum(c.errors for c in clients),
                 "first_error": next((c.first_error for c in clients if c.first_error), None)})


def drive(port, reqs, clients, count, procs, max_seconds):
    """Run the load; the figures of one measurement (latencies in ms)."""
    ctx = mp.get_context("fork")
    procs = max(1, min(procs, clients))
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    groups = [list(range(clients))[p::procs] for p in range(procs)]
    workers = [ctx.Process(target=load_process,
                           args=(port, reqs, g, count, max_seconds, barrier, results))
               for g in groups]
    for w in workers:
        w.start()
    parts, deadline = [], time.monotonic() + max_seconds + 60
    try:
        while len(parts) < len(workers):
            try:
                parts.append(results.get(timeout=1))
            except queue.Empty:
                if time.monotonic() > deadline or not any(w.is_alive() for w in workers):
                    raise SystemExit("a load generator process failed or hung") from None
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()
    lat = sorted(x / 1e6 for p in parts for x in p["latencies"])
    seconds = (max(p["end"] for p in parts) - min(p["start"] for p in parts)) / 1e9
    return {
        "requests": len(lat),
        "errors": sum(p["errors"] for p in parts),
        "first_error": next((p["first_error"] for p in parts if p["first_error"]), None),
        "seconds": seconds,
        "requests_per_second": len(lat) / seconds if seconds > 0 else None,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "mean_ms": sum(lat) / len(lat) if lat else None,
    }


def percentile(sorted_values, p):
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def warm_up(port, reqs, clients, count):
    drive(port, reqs, clients, count, 1, 60.0)


# --------------------------------------------------------------------------- trivial server


def trivial_server(port, ready):
    """Answer every request with a fixed 200 JSON body (the generator's ceiling)."""
    body = json.dumps({"predictions": [{"label": "Adelie", "probabilities": {
        "Adelie": 0.97, "Chinstrap": 0.02, "Gentoo": 0.01}}]}).encode()
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)

    class Fixed(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buf = transport, b""
            transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data):
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                head = self.buf[:end].lower()
                i = head.find(b"content-length:")
                n = int(head[i + 15 :].split(b"\r\n", 1)[0]) if i >= 0 else 0
                if len(self.buf) < end + 4 + n:
                    return
                self.buf = self.buf[end + 4 + n :]
                self.transport.write(answer)

    async def serve():
        server = await asyncio.get_running_loop().create_server(
            Fixed, "127.0.0.1", port, reuse_port=True)
        ready.set()
        await server.serve_forever()

    run_async(serve())


def measure_ceiling(reqs_for_port, args, procs):
    port = free_port()
    ctx = mp.get_context("fork")
    servers = []
    try:
        for _ in range(procs):
            ready = ctx.Event()
            p = ctx.Process(target=trivial_server, args=(port, ready), daemon=True)
            p.start()
            servers.append(p)
            if not ready.wait(10):
                raise SystemExit("the trivial server did not start")
        reqs = reqs_for_port(port)
        warm_up(port, reqs, args.clients, args.warmup)
        return drive(port, reqs, args.clients, max(4 * args.requests, 2000), procs,
                     args.max_seconds)
    finally:
        for p in servers:
            p.terminate()
            p.join(5)


# --------------------------------------------------------------------------- request bodies


def feature_columns(run_dir):
    pre = json.loads((run_dir / "preprocess.json").read_text())
    return [(f["column"], f["kind"]["type"]) for f in pre["features"]]


def penguin_rows(run_dir):
    """Feature values of every row of penguins.csv (`NA` as None, numbers as numbers)."""
    cols = feature_columns(run_dir)
    rows = []
    with open(PENGUINS_CSV, newline="") as f:
        for r in csv.DictReader(f):
            row = {}
            for c, kind in cols:
                v = r[c]
                row[c] = None if v in ("", "NA") else float(v) if kind == "numeric" else v
            rows.append(row)
    return rows


def png_gray(pixels, w, h):
    """A grey 8-bit PNG of w*h bytes."""
    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + pixels[y * w : (y + 1) * w] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def fashion_rows(count):
    """The first `count` t10k images as `{"image": {"b64": PNG}}` rows."""
    with gzip.open(T10K_IMAGES, "rb") as f:
        raw = f.read()
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    if magic != 0x803:
        raise SystemExit(f"{T10K_IMAGES}: IDX magic {magic:#x}, expected 0x803")
    size = h * w
    return [{"image": {"b64": base64.b64encode(
        png_gray(raw[16 + i * size : 16 + (i + 1) * size], w, h)).decode()}}
        for i in range(min(count, n))]


def request_bodies(rows, per_request):
    """JSON bodies of `per_request` consecutive rows each (wrapping around)."""
    n = len(rows)
    return [json.dumps({"instances": [rows[(i + k) % n] for k in range(per_request)]}).encode()
            for i in range(0, n, per_request)]


# --------------------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(mlx, workload, out, threads):
    example, extra = WORKLOADS[workload]
    cmd = [str(mlx), "run", str(ROOT / "examples" / example), *extra, "--out", str(out)]
    print(f"training {workload}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, MLX_THREADS=str(threads)))
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-20:])
        raise SystemExit(f"training {workload} failed (exit {p.returncode}):\n{tail}")
    run_dir = Path(lines[-1].strip())
    return run_dir if run_dir.is_absolute() else ROOT / run_dir


class Server:
    """A server process with its log in a temporary file; stopped with SIGTERM."""

    def __init__(self, name, cmd, port, env):
        self.name, self.cmd, self.port = name, cmd, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"serve-{name}-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def log_tail(self, lines=25):
        try:
            text = Path(self.log.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} server exited ({self.proc.returncode}):\n"
                                 f"  {' '.join(self.cmd)}\n{self.log_tail()}")
            try:
                if one_request(self.port, "GET", "/healthz", timeout=2.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} server not ready after {timeout} s:\n"
                         f"  {' '.join(self.cmd)}\n{self.log_tail()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def start_servers(args, mlx, runs):
    """{server: Server}, all ready; stops those already started if one fails."""
    dirs = [str(runs[w]) for w in args.workloads]
    servers = {}
    try:
        for side in args.sides:
            port = free_port()
            if side == "mlx":
                cmd = [str(mlx), "serve", *dirs, "--port", str(port), *args.mlx_arg]
                env = dict(os.environ, MLX_THREADS=str(args.threads))
            else:
                cmd = [sys.executable, str(ROOT / "bench" / "serve_python.py"), *dirs,
                       "--host", "127.0.0.1", "--port", str(port), "--threads",
                       str(args.threads), "--workers", str(args.python_workers)]
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            print(f"starting {side}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            servers[side] = Server(side, cmd, port, env)
        for s in servers.values():
            s.wait_ready(args.startup_timeout)
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return servers


# --------------------------------------------------------------------------- agreement


def agreement(servers, path, rows, sample):
    """Labels of `sample` rows (evenly spread), one per request, from every server."""
    picked = [rows[i * len(rows) // sample] for i in range(min(sample, len(rows)))]
    answers = {}
    for side, s in servers.items():
        answers[side] = []
        for row in picked:
            status, doc = post_json(s.port, path, {"instances": [row]})
            answers[side].append(doc["predictions"][0] if status == 200 else
                                 {"error": f"{status}: {doc.get('error')}"})
    if len(servers) < 2:
        return {"rows": len(picked), "errors": {k: sum("error" in a for a in v)
                                                for k, v in answers.items()}}
    same, compared, max_dp, errors = 0, 0, 0.0, []
    for i, (a, b) in enumerate(zip(answers["mlx"], answers["python"])):
        if "error" in a or "error" in b:
            errors.append({"row": i, "mlx": a.get("error"), "python": b.get("error")})
            continue
        compared += 1
        same += a.get("label") == b.get("label")
        pa, pb = a.get("probabilities") or {}, b.get("probabilities") or {}
        for k in pa.keys() | pb.keys():
            max_dp = max(max_dp, abs(pa.get(k, math.nan) - pb.get(k, math.nan)))
        if "value" in a or "value" in b:
            max_dp = max(max_dp, abs(a.get("value", math.nan) - b.get("value", math.nan)))
    return {"rows": len(picked), "compared": compared, "same_label": same,
            "agreement": same / compared if compared else None,
            "max_abs_diff": max_dp if compared else None, "errors": errors[:5],
            "error_count": len(errors)}


# --------------------------------------------------------------------------- report


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def table(head, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: " | ".join(c.rjust(w) if i > 1 else c.ljust(w)
                                    for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), "-+-".join("-" * w for w in widths), *map(line, rows)])


def report(args, results, ceiling, agree):
    cfg = (f"{args.clients} clients x {args.requests} requests, {args.rows_per_request} "
           f"row(s) per request, threads {args.threads}, python workers "
           f"{args.python_workers}, {args.load_procs} generator process(es), {os.cpu_count()} CPUs")
    print(cfg)
    if ceiling is not None:
        print(f"load generator ceiling (trivial server): "
              f"{ceiling['requests_per_second']:.0f} requests/s, "
              f"p50 {ceiling['p50_ms']:.3f} ms, p99 {ceiling['p99_ms']:.3f} ms")
    rows = []
    for r in results:
        rows.append([r["workload"], r["server"], str(r["requests"]), str(r["errors"]),
                     fmt(r["requests_per_second"], ".0f"), fmt(r["rows_per_second"], ".0f"),
                     fmt(r["p50_ms"], ".3f"), fmt(r["p99_ms"], ".3f")])
    print(table(["workload", "server", "requests", "errors", "requests/s", "rows/s",
                 "p50 ms", "p99 ms"], rows))
    ratios = []
    for w in args.workloads:
        by = {r["server"]: r for r in results if r["workload"] == w}
        m, p = by.get("mlx", {}), by.get("python", {})
        ratios.append({
            "workload": w,
            "throughput_ratio": ratio(m.get("requests_per_second"), p.get("requests_per_second")),
            "p50_ratio": ratio(m.get("p50_ms"), p.get("p50_ms")),
            "p99_ratio": ratio(m.get("p99_ms"), p.get("p99_ms")),
        })
    if len(args.sides) == 2:
        print()
        print(table(["workload", "ratio", "requests/s", "p50", "p99"],
                    [[r["workload"], "mlx/python", fmt(r["throughput_ratio"], ".2f"),
                      fmt(r["p50_ratio"], ".2f"), fmt(r["p99_ratio"], ".2f")]
                     for r in ratios]))
    for w, a in agree.items():
        if "agreement" in a:
            print(f"{w}: same label for {a['same_label']}/{a['compared']} sampled rows "
                  f"({fmt(a['agreement'] and 100 * a['agreement'], '.1f')}%), largest "
                  f"probability difference {fmt(a['max_abs_diff'], '.2e')}"
                  + (f", {a['error_count']} rows failed" if a["error_count"] else ""))
    for r in results:
        if r["errors"]:
            print(f"{r['workload']} {r['server']}: {r['errors']} failed requests, "
                  f"first: {r['first_error']}")
        if ceiling and r["requests_per_second"] and \
                r["requests_per_second"] > 0.7 * ceiling["requests_per_second"]:
            print(f"{r['workload']} {r['server']}: within 30% of the generator's ceiling: "
                  "the figure is a lower bound (raise --load-procs on a bigger machine)")
    return ratios


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(
        description="Compare `mlx serve` with FastAPI + uvicorn + PyTorch serving the same "
                    "run directories: throughput, latency and label agreement.")
    ap.add_argument("--penguins", metavar="RUN_DIR", type=Path,
                    help="run directory of examples/penguins.mlx (default: train one)")
    ap.add_argument("--fashion", metavar="RUN_DIR", type=Path,
                    help="run directory of examples/fashion_mlp.mlx (default: train one epoch)")
    ap.add_argument("--mlx", default=str(ROOT / "target" / "release" / "mlx"),
                    help="mlx binary (default: target/release/mlx)")
    ap.add_argument("--mlx-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `mlx serve` (repeatable)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of penguins,fashion (default: both)")
    ap.add_argument("--only", choices=SERVERS, help="run one server only")
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    ap.add_argument("--requests", type=int, default=500,
                    help="measured requests per client (default 500)")
    ap.add_argument("--warmup", type=int, default=50,
                    help="unmeasured requests per client first (default 50)")
    ap.add_argument("--rows-per-request", type=int, default=1,
                    help="rows (instances) per request (default 1)")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="stop a measurement after this long (default 60)")
    ap.add_argument("--threads", type=int, default=2,
                    help="compute threads per server: MLX_THREADS, torch.set_num_threads "
                         "(default 2)")
    ap.add_argument("--python-workers", type=int, default=1,
                    help="uvicorn worker processes of the Python server (default 1)")
    ap.add_argument("--load-procs", type=int, default=max(1, (os.cpu_count() or 1) // 4),
                    help="load generator processes (default: a quarter of the CPUs, at least 1)")
    ap.add_argument("--sample", type=int, default=200,
                    help="rows per workload checked for label agreement (default 200)")
    ap.add_argument("--images", type=int, default=1000,
                    help="distinct t10k images sent (default 1000)")
    ap.add_argument("--no-ceiling", action="store_true",
                    help="skip measuring the load generator against a trivial server")
    ap.add_argument("--startup-timeout", type=float, default=120.0,
                    help="seconds for a server to answer /healthz (default 120)")
    ap.add_argument("--train-out", type=Path, metavar="DIR",
                    help="keep trained run directories under DIR (default: a temporary "
                         "directory, removed at the end)")
    ap.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    args = ap.parse_args()

    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad or not args.workloads:
        ap.error(f"unknown workload(s) {bad}; choose from {','.join(WORKLOADS)}")
    for name in ("clients", "requests", "rows_per_request", "threads", "python_workers",
                 "load_procs", "sample", "images"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    args.sides = SERVERS if args.only is None else [args.only]
    mlx = Path(args.mlx)
    mlx = mlx if mlx.is_absolute() else Path.cwd() / mlx
    given = {"penguins": args.penguins, "fashion": args.fashion}
    needs_mlx = "mlx" in args.sides or any(given[w] is None for w in args.workloads)
    if needs_mlx and not (mlx.is_file() and os.access(mlx, os.X_OK)):
        raise SystemExit(f"no mlx binary at {mlx}: run `cargo build --release` in {ROOT} "
                         "first, or pass --mlx PATH")
    if "fashion" in args.workloads and not T10K_IMAGES.is_file():
        raise SystemExit(f"{T10K_IMAGES} is missing: apt-get install -y dataset-fashion-mnist")
    if "python" in args.sides:
        probe = subprocess.run(
            [sys.executable, "-c", "import torch, numpy, fastapi, uvicorn, PIL"],
            capture_output=True, text=True)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or [""])[-1]
            raise SystemExit(f"{last}\n" + PY_DEPS_HINT.format(py=sys.executable))

    # SIGTERM as an exception, so that the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    scratch = None
    servers = {}
    try:
        runs = {}
        for w in args.workloads:
            if given[w] is not None:
                runs[w] = given[w].resolve()
                continue
            if args.train_out is None and scratch is None:
                scratch = Path(tempfile.mkdtemp(prefix="mlx-serve-bench-"))
            runs[w] = train(mlx, w, args.train_out or scratch, args.threads)
            print(f"  {runs[w]}", file=sys.stderr)
        for w, d in runs.items():
            if not (d / "model.safetensors").is_file():
                raise SystemExit(f"{d} is not a finished run directory (no model.safetensors)")
        names = {w: json.loads((runs[w] / "summary.json").read_text())["train"]
                 for w in args.workloads}
        rows = {w: penguin_rows(runs[w]) if w == "penguins" else fashion_rows(args.images)
                for w in args.workloads}
        bodies = {w: request_bodies(rows[w], args.rows_per_request) for w in args.workloads}
        path = {w: f"/v1/models/{names[w]}:predict" for w in args.workloads}

        def requests_for(w, port):
            return [post_bytes(port, path[w], b) for b in bodies[w]]

        ceiling = None
        if not args.no_ceiling:
            print("measuring the load generator's ceiling ...", file=sys.stderr, flush=True)
            ceiling = measure_ceiling(lambda port: requests_for(args.workloads[0], port),
                                      args, args.load_procs)

        servers = start_servers(args, mlx, runs)
        agree = {}
        for w in args.workloads:
            print(f"checking labels on {w} ...", file=sys.stderr, flush=True)
            agree[w] = agreement(servers, path[w], rows[w], args.sample)

        results = []
        for w in args.workloads:
            for side, s in servers.items():
                print(f"{w} {side} ...", end=" ", file=sys.stderr, flush=True)
                reqs = requests_for(w, s.port)
                warm_up(s.port, reqs, args.clients, args.warmup)
                r = drive(s.port, reqs, args.clients, args.requests, args.load_procs,
                          args.max_seconds)
                rps = r["requests_per_second"]
                r.update(workload=w, server=side,
                         rows_per_second=rps * args.rows_per_request if rps else None)
                results.append(r)
                print(f"{fmt(rps, '.0f')} requests/s", file=sys.stderr)
    finally:
        for s in servers.values():
            s.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    ratios = report(args, results, ceiling, agree)
    if args.json:
        doc = {
            "config": {k: getattr(args, k) for k in (
                "clients", "requests", "warmup", "rows_per_request", "max_seconds", "threads",
                "python_workers", "load_procs", "sample", "images", "workloads")},
            "mlx_binary": str(mlx),
            "runs": {w: str(d) for w, d in runs.items()},
            "python": platform.python_version(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "ceiling": ceiling,
            "results": results,
            "ratios": ratios,
            "agreement": agree,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
