"""Benchmark cymongoose against uvicorn, granian, gunicorn, bjoern, fastwsgi and raw C mongoose
in one run.

Every server runs one process pinned to CPU 0; wrk (or ws_client.py) runs on CPU 1.
Each round starts every server in turn, checks each workload's response, warms it up and
measures it; rounds are interleaved and the median over rounds is reported.

    python benchmarks/run.py            # 3 rounds
    python benchmarks/run.py --quick    # 1 round, short durations
    python benchmarks/run.py --workloads idle0,idle10k,idle0x64,idle10kx64,wsidle10k

The pipeline workload (issue 21) sends 16 hello requests in every write (wrk/pipeline.lua,
TechEmpower plaintext style); pipelining.py checks the answers and their order first.
While it runs, a progress line per cell goes to stderr (progress.py); a saved run gets one
chart per workload (charts.py); compare.py compares two saved runs.

The https workload (issue 18) serves the hello route over TLS, every server with the
same EC P-256 certificate made at start (trustme): cymongoose-asgi and -wsgi against
uvicorn and granian.

    python benchmarks/run.py --workloads https

The mqtt workload (issue 19, mqtt_bench.py) runs a consumer on cymongoose-asgi's MQTT
server and on mqttasgi through mosquitto: messages/s and round-trip latency.

    python benchmarks/run.py --workloads mqtt

The idle workloads (issue 11) measure the hello route while a separate process
(idle_clients.py, on the load CPU) holds 1,000 or 10,000 idle keep-alive connections or
10,000 idle WebSockets open; each is reported against its no-idle twin, with the server's
RSS growth per idle connection.

    python benchmarks/run.py --baseline HEAD~1   # also the cymongoose servers of HEAD~1

With ``--baseline REF`` the cymongoose servers of commit REF (built into a virtualenv of
their own, see baseline.py) run in every round next to the current ones, as rows named
``<server>@<short hash>``; each current cymongoose row gets a ``vs base`` ratio.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import charts
import mqtt_bench
import psutil
from acceptance import ACCEPTANCE_VS_BASE, acceptance_markdown
from baseline import Baseline, describe_tree
from baseline import build as build_baseline
from pipelining import DEPTH, check_pipeline
from placement import SETTLE_S, TOLERANCE, TRIES, Placement
from progress import Progress

try:
    import resource
except ImportError:  # not POSIX
    resource = None

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APPS = HERE / "apps"
RESULTS = HERE / "results"
SERVER_CPU, LOAD_CPU = "0", "1"
HELLO = b"Hello, World!"
MIB = 1024 * 1024
PY = sys.executable


# --------------------------------------------------------------------------- servers

@dataclass(frozen=True)
class Server:
    name: str
    kind: str  # "c", "core", "asgi" or "wsgi": the class its rows are compared within
    websocket: bool
    python: str = PY  # the interpreter that runs it (a baseline's own virtualenv)
    twin: str | None = None  # a baseline server: the current server it is measured against

    @property
    def program(self) -> str:
        """The server program it runs: its name, or for a baseline server its twin's."""
        return self.twin or self.name

    def argv(self, module: str, port: int, c_binary: Path | None,
             long_keep_alive: bool = False, tls: TlsFiles | None = None) -> list[str]:
        spec, p = f"{module}:app", str(port)
        host = ["--host", "127.0.0.1", "--port", p]
        if long_keep_alive:  # idle workloads: idle connections must outlive the run
            host += IDLE_KEEP_ALIVE.get(self.program, [])
        if tls is not None:  # the https workload: every server the same certificate
            cert_flag = "--ssl-certificate" if self.program.startswith("granian") \
                else "--ssl-certfile"
            host += [cert_flag, str(tls.cert), "--ssl-keyfile", str(tls.key)]
        py = self.python
        return {
            "mongoose-c": [str(c_binary), p],
            "cymongoose-core": [py, str(APPS / "core_app.py"), p],
            "cymongoose-asgi": [py, "-m", "cymongoose.asgi", spec, *host, "--log-level", "warning"],
            "uvicorn": [py, "-m", "uvicorn", spec, *host, "--workers", "1", "--loop", "uvloop",
                        "--http", "httptools", "--ws", "websockets", "--no-access-log",
                        "--log-level", "warning"],
            "granian-asgi": [py, "-m", "granian", "--interface", "asgi", "--workers", "1",
                             "--loop", "uvloop", "--log-level", "warning", *host, spec],
            "cymongoose-wsgi": [py, "-m", "cymongoose.wsgi", spec, *host, "--threads", "4",
                                "--no-access-log", "--log-level", "warning"],
            "cymongoose-wsgi-inline": [py, "-m", "cymongoose.wsgi", spec, *host, "--threads", "0",
                                       "--no-access-log", "--log-level", "warning"],
            # No CLI of their own: each runs the module's app from a one-line program.
            "bjoern": [py, "-c", f"import bjoern, {module}; "
                       f"bjoern.run({module}.app, '127.0.0.1', {port})"],
            "fastwsgi": [py, "-c", f"import fastwsgi, {module}; "
                         f"fastwsgi.run({module}.app, host='127.0.0.1', port={port})"],
            "gunicorn": [py, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-w", "1",
                         "-b", f"127.0.0.1:{p}", "--log-level", "warning", spec],
            "granian-wsgi": [py, "-m", "granian", "--interface", "wsgi", "--workers", "1",
                             "--log-level", "warning", *host, spec],
        }[self.program]


@dataclass(frozen=True)
class TlsFiles:
    """The https workload's certificate, made at start (trustme, EC P-256): ``cert`` and
    ``key`` (PKCS#8, which granian requires) for the servers, ``ca`` for the checks."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def make(cls, directory: Path) -> TlsFiles:
        import trustme
        from cryptography.hazmat.primitives import serialization

        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
        files = cls(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
        files.cert.write_bytes(leaf.cert_chain_pems[0].bytes())
        files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        files.ca.write_bytes(ca.cert_pem.bytes())
        return files


# Flags that keep idle keep-alive connections open for the idle workloads; servers
# absent here (mongoose-c, cymongoose-core, granian) do not time idle connections out
# within a run (idle_clients.py reports how many stayed open).
IDLE_KEEP_ALIVE = {
    "cymongoose-asgi": ["--timeout-keep-alive", "3600"],
    "uvicorn": ["--timeout-keep-alive", "3600"],
    "cymongoose-wsgi": ["--timeout-keep-alive", "3600"],
}
# A load generator busy this share of its CPU or more is what limits the row's req/s.
CLIENT_BOUND = 0.9
IDLE_SETTLE_S = 2.0  # idle connections sit this long before the server's RSS is taken
IDLE_SERVERS = ("mongoose-c", "cymongoose-core", "cymongoose-asgi", "uvicorn", "granian-asgi",
                "cymongoose-wsgi", "granian-wsgi")

SERVERS = [
    Server("mongoose-c", "c", True),
    Server("cymongoose-core", "core", True),
    Server("cymongoose-asgi", "asgi", True),
    Server("uvicorn", "asgi", True),
    Server("granian-asgi", "asgi", True),
    Server("cymongoose-wsgi", "wsgi", False),
    Server("gunicorn", "wsgi", False),
    Server("granian-wsgi", "wsgi", False),
    # The app on the event-loop thread (issue 10): cymongoose-wsgi --threads 0 and the two
    # C WSGI servers that work that way.
    Server("cymongoose-wsgi-inline", "wsgi", False),
    Server("bjoern", "wsgi", False),
    Server("fastwsgi", "wsgi", False),
]


# --------------------------------------------------------------------------- workloads

@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    path: str
    connections: int
    kinds: tuple[str, ...]  # server kinds that serve it
    module: dict[str, str]  # app module per server kind
    expect: bytes | None = None  # exact body, or None to check JSON
    expect_json: dict | None = None
    method: str = "GET"
    body: bytes = b""
    websocket: bool = False
    # Idle workloads: idle connections held open by idle_clients.py during the run
    idle: int | None = None  # None: not an idle workload; 0: the no-idle twin
    idle_websocket: bool = False  # the idle connections are WebSockets (path /ws)
    base: str | None = None  # the no-idle workload this one is compared with
    servers: tuple[str, ...] | None = None  # only these servers (None: every one)
    tls: bool = False  # served over TLS (https://) with the run's certificate
    ws_deflate: bool = False  # the client offers permessage-deflate (checked agreed)
    pipeline: int = 0  # requests per write (wrk/pipeline.lua); 0: one request at a time

    @property
    def script(self) -> str:
        """The key of its wrk script in run.py's ``scripts``."""
        return "pipeline" if self.pipeline else self.method


RAW = {"c": "", "core": "", "asgi": "raw_asgi", "wsgi": "raw_wsgi"}
ALL = ("c", "core", "asgi", "wsgi")
WORKLOADS = [
    Workload("hello", "13-byte plain text, 50 connections", "/", 50, ALL, RAW, HELLO),
    # TechEmpower plaintext style: wrk counts every response, latency is per batch.
    Workload("pipeline", f"13-byte plain text, {DEPTH} requests pipelined per write, 50 "
             "connections", "/", 50, ALL, RAW, HELLO, pipeline=DEPTH),
    Workload("fastapi", "FastAPI GET /items/{id}?q= JSON, 50 connections",
             "/items/42?q=abc", 50, ("asgi",), {"asgi": "fastapi_app"},
             expect_json={"item_id": 42, "q": "abc"}),
    Workload("flask", "Flask GET /api/greet/<name> JSON, 50 connections",
             "/api/greet/bob", 50, ("wsgi",), {"wsgi": "flask_app"},
             expect_json={"message": "Hello, bob!"}),
    Workload("big", "1 MiB response, 10 connections", "/big", 10, ALL, RAW, b"x" * MIB),
    Workload("echo", "1 MiB POST echoed back, 10 connections", "/echo", 10, ALL, RAW,
             b"x" * MIB, method="POST", body=b"x" * MIB),
    Workload("c1000", "13-byte hello over 1000 keep-alive connections", "/", 1000, ALL, RAW,
             HELLO),
    Workload("ws1", "WebSocket 32-byte echo, 1 connection, sequential", "/ws", 1,
             ("c", "core", "asgi"), RAW, websocket=True),
    Workload("ws100", "WebSocket 32-byte echo, 100 connections", "/ws", 100,
             ("c", "core", "asgi"), RAW, websocket=True),
    # Issue 20: what permessage-deflate (on by default in both) costs the servers.
    Workload("ws100z", "WebSocket 32-byte echo, 100 connections, permessage-deflate", "/ws",
             100, ("asgi",), RAW, websocket=True, ws_deflate=True,
             servers=("cymongoose-asgi", "uvicorn")),
    Workload("https", "13-byte hello over TLS (EC P-256 certificate, the same for every "
             "server), keep-alive, 50 connections", "/", 50, ("asgi", "wsgi"), RAW, HELLO,
             tls=True, servers=("cymongoose-asgi", "uvicorn", "granian-asgi",
                                "cymongoose-wsgi", "cymongoose-wsgi-inline", "granian-wsgi")),
]


def _idle_workloads() -> list[Workload]:
    """hello with 0 / 1,000 / 10,000 idle keep-alive connections, at -c1 and -c64."""
    out = []
    for clients, suffix in ((1, ""), (64, "x64")):
        base = f"idle0{suffix}"
        for idle, label in ((0, "0"), (1000, "1k"), (10000, "10k")):
            out.append(Workload(
                f"idle{label}{suffix}", f"13-byte hello, {clients} client(s), {idle:,} idle "
                "keep-alive connections", "/", clients, ALL, RAW, HELLO, idle=idle,
                base=None if idle == 0 else base, servers=IDLE_SERVERS))
    out.append(Workload("wsidle10k", "13-byte hello, 1 client, 10,000 idle WebSockets", "/",
                        1, ("c", "core", "asgi"), RAW, HELLO, idle=10000, idle_websocket=True,
                        base="idle0", servers=IDLE_SERVERS))
    return out


WORKLOADS += _idle_workloads()


# --------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssSampler(threading.Thread):
    """Samples the RSS of a process tree every 50 ms; ``take()`` returns and resets the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stopped = threading.Event()

    def sample(self) -> None:
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
        except psutil.Error:
            pass

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            self.sample()

    def take(self) -> int:
        self.sample()
        peak, self.peak = self.peak, 0
        return peak


class Running:
    """One server process (own process group, pinned to SERVER_CPU)."""

    def __init__(self, server: Server, module: str, c_binary: Path | None,
                 long_keep_alive: bool = False, tls: TlsFiles | None = None):
        self.port = free_port()
        self.tls = tls
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(APPS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        argv = ["taskset", "-c", SERVER_CPU,
                *server.argv(module, self.port, c_binary, long_keep_alive, tls)]
        self.proc = subprocess.Popen(argv, cwd=APPS, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.rss: RssSampler | None = None

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            self.rss = RssSampler(self.proc.pid)
            self.rss.start()
            return
        raise RuntimeError(f"port {self.port} not open after {timeout}s: {self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-600:].strip()

    def stop(self) -> None:
        if self.rss:
            self.rss.stopped.set()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.log.close()


def raise_nofile() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (servers and idle
    clients inherit it); return the soft limit now in force."""
    if resource is None:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def tree_rss(pid: int) -> int:
    """Current RSS in bytes of a process and its children."""
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0


class IdleClients:
    """idle_clients.py holding ``count`` idle connections (or WebSockets) to a server."""

    def __init__(self, port: int, count: int, websocket: bool):
        url = f"http://127.0.0.1:{port}{'/ws' if websocket else '/'}"
        argv = ["taskset", "-c", LOAD_CPU, PY, str(HERE / "idle_clients.py"), url,
                "--count", str(count), *(["--websocket"] if websocket else [])]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            # The exception's own line: a traceback's tail cut at a fixed length began
            # mid-line, and the table shows an error's first line.
            err = self.proc.stderr.read().strip().splitlines()
            raise RuntimeError(f"idle clients: {err[-1] if err else line.strip() or 'exited'}")
        self.ready = json.loads(line[len("READY "):])

    def still_open(self) -> int:
        self.proc.stdin.write("check\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line[len("OPEN "):])["open"] if line.startswith("OPEN ") else -1

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def build_c_hello(tmp: Path) -> Path:
    """Compile apps/hello.c with the verified mongoose sources into ``tmp``."""
    sys.path.insert(0, str(ROOT / "packages" / "cymongoose-core" / "build_support"))
    from fetch_mongoose import locate

    src = locate(ROOT / "packages" / "cymongoose-core")
    out = tmp / "mongoose-hello"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-DMG_MAX_RECV_SIZE=67108864", "-DMG_IO_SIZE=16384",
                    "-DMG_ENABLE_LINES=0", f"-I{src}", "-o", str(out), str(APPS / "hello.c"),
                    str(src / "mongoose.c")], check=True)
    return out


# --------------------------------------------------------------------------- measuring

def check_http(port: int, w: Workload, seconds: float = 0.0,
               tls: TlsFiles | None = None) -> None:
    """Requests on one keep-alive connection (two, or for ``seconds``); raise on a wrong one.
    With ``tls``, over HTTPS, verifying the server's certificate."""
    if tls is not None:
        context = ssl.create_default_context(cafile=str(tls.ca))
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    deadline = time.monotonic() + seconds
    try:
        for n in range(1_000_000):
            if n >= 2 and time.monotonic() >= deadline:
                break
            headers = {"Content-Type": "application/octet-stream"} if w.body else {}
            conn.request(w.method, w.path, body=w.body or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"status {resp.status}")
            if w.expect_json is not None:
                if json.loads(body) != w.expect_json:
                    raise RuntimeError(f"body {body[:80]!r}")
            elif body != w.expect:
                raise RuntimeError(f"body {body[:40]!r} ({len(body)} bytes)")
            if resp.getheader("connection", "").lower() == "close":
                raise RuntimeError("server closed the keep-alive connection")
    finally:
        conn.close()


def run_client(argv: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """Run a load generator to its end: its output and the CPU seconds (user + system) it
    used. RUSAGE_CHILDREN grows by exactly this child's: the bench reaps no other child
    meanwhile (servers are reaped when stopped, between cells)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return out, cpu


def run_wrk(port: int, w: Workload, seconds: int, script: Path) -> dict:
    scheme = "https" if w.tls else "http"
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{w.connections}", f"-d{seconds}s",
            "--timeout", "5s", "-s", str(script), f"{scheme}://127.0.0.1:{port}{w.path}"]
    out, cpu = run_client(argv, seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            r = json.loads(line[len("BENCHJSON "):])
            errors = r["connect"] + r["read"] + r["write"] + r["status"]
            elapsed = r["duration_us"] / 1e6
            return {"rps": r["requests"] / elapsed, "p50_us": r["p50_us"],
                    "p99_us": r["p99_us"], "errors": errors, "timeouts": r["timeout"],
                    "requests": r["requests"], "client_cpu": cpu / elapsed}
    raise RuntimeError(f"wrk failed: {out.stdout[-300:]} {out.stderr[-300:]}")


def run_ws(port: int, w: Workload, seconds: float, check: bool = False) -> dict:
    argv = ["taskset", "-c", LOAD_CPU, PY, str(HERE / "ws_client.py"),
            f"ws://127.0.0.1:{port}{w.path}", *(["--deflate"] if w.ws_deflate else [])]
    if check:
        out = subprocess.run([*argv, "--check"], capture_output=True, text=True, timeout=30)
        if out.returncode:
            raise RuntimeError(f"websocket check: {out.stderr.strip()[-300:]}")
        return {}
    out, cpu = run_client([*argv, "--connections", str(w.connections), "--duration",
                           str(seconds)], seconds + 60)
    if out.returncode:
        raise RuntimeError(f"ws_client failed: {out.stderr[-300:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["client_cpu"] = cpu / seconds  # includes the client's start (~0.1 s of CPU)
    return result


@dataclass
class Cell:
    """One (workload, server) configuration across rounds."""

    workload: str
    server: str
    kind: str
    rounds: list[dict] = field(default_factory=list)
    error: str | None = None


def _once(run):
    return run()


def measure(running: Running, server: Server, w: Workload, args, scripts, cell: Cell,
            placement: Placement | None = None) -> None:
    # ``placement``: each measurement repeated until taken with the CPUs in their usual
    # placement (placement.py)
    timed = placement.measure if placement is not None else _once
    try:
        if w.websocket:
            run_ws(running.port, w, 0, check=True)
            run_ws(running.port, w, args.warmup)
            running.rss.take()
            result = timed(lambda: run_ws(running.port, w, args.duration))
        elif w.idle is not None:
            result = measure_idle(running, w, args, scripts[w.script], timed)
        else:
            check_http(running.port, w, tls=running.tls)
            if w.pipeline:  # every pipelined answer right and in order, not just counted
                check_pipeline(running.port, w.pipeline)
            script = scripts[w.script]
            if args.warmup >= 1:
                run_wrk(running.port, w, round(args.warmup), script)
            else:  # wrk takes whole seconds only: a short warm-up on one connection
                check_http(running.port, w, args.warmup, tls=running.tls)
            running.rss.take()
            result = timed(lambda: run_wrk(running.port, w, args.duration, script))
            # still answering correctly after the load
            check_http(running.port, w, tls=running.tls)
            if w.pipeline:
                check_pipeline(running.port, w.pipeline)
        result["rss"] = running.rss.take()
        cell.rounds.append(result)
        flag = " !" if result["errors"] or result["timeouts"] else ""
        where = ""
        if "placement_ns" in result:
            before, after = result["placement_ns"]
            where = f"  cpus {before:.0f}/{after:.0f} ns" + (
                f" try {result['tries']}" if result["tries"] > 1 else "") + (
                " OFF" if result.get("placement_off") else "")
        client = f"  client {result['client_cpu']:.0%}" if "client_cpu" in result else ""
        print(f"  {w.name:8} {server.name:30} {result['rps']:>10.0f} req/s  "
              f"p99 {result['p99_us'] / 1000:7.2f} ms  err {result['errors']}"
              f"/{result['timeouts']}{flag}{client}{where}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a failing server is a row, not a crash
        cell.error = f"{type(exc).__name__}: {exc}"[:300]
        print(f"  {w.name:8} {server.name:30} ERROR {cell.error}", flush=True)


def measure_idle(running: Running, w: Workload, args, script: Path, timed=_once) -> dict:
    """wrk on the hello route while ``w.idle`` idle connections are held open; the
    measurement through ``timed`` (see measure())."""
    check_http(running.port, w)
    if args.warmup >= 1:
        run_wrk(running.port, w, round(args.warmup), script)
    else:
        check_http(running.port, w, args.warmup)
    before = tree_rss(running.proc.pid)
    idle = IdleClients(running.port, w.idle, w.idle_websocket) if w.idle else None
    try:
        if idle is not None:
            time.sleep(IDLE_SETTLE_S)  # idle means idle: servers may trim idle connections
        held = tree_rss(running.proc.pid)
        check_http(running.port, w)
        running.rss.take()
        result = timed(lambda: run_wrk(running.port, w, args.duration, script))
        check_http(running.port, w)
        result["idle"] = w.idle
        if idle is not None:
            result["idle_setup_s"] = idle.ready["seconds"]
            result["idle_open_end"] = idle.still_open()
            result["rss_per_idle"] = (held - before) / w.idle
    finally:
        if idle is not None:
            idle.stop()
    return result


def run_round(servers, workloads, args, scripts, cells, c_binary,
              tls: TlsFiles | None = None, progress: Progress | None = None,
              round_no: int = 1, placement: Placement | None = None) -> None:
    for server in servers:
        todo = [w for w in workloads if server.kind in w.kinds
                and (server.websocket or not w.websocket)
                and (w.servers is None or server.program in w.servers)
                and (server.websocket or not w.idle_websocket)]
        # idle workloads get a server of their own, started with long keep-alive timeouts;
        # TLS ones one serving https
        for module, idle, https in dict.fromkeys(
                (w.module[server.kind], w.idle is not None, w.tls) for w in todo):
            group = [w for w in todo if w.module[server.kind] == module
                     and (w.idle is not None) == idle and w.tls == https]
            running = Running(server, module, c_binary, long_keep_alive=idle,
                              tls=tls if https else None)
            measured = 0
            try:
                running.wait_ready()
                for i, w in enumerate(group):
                    if progress:
                        progress.cell(server.name, w.name, round_no)
                    measured = i + 1
                    measure(running, server, w, args, scripts, cells[w.name, server.name],
                            placement)
            except Exception as exc:  # noqa: BLE001
                for w in group:
                    cells[w.name, server.name].error = f"server: {exc}"[:300]
                if progress:
                    progress.skip(len(group) - measured)
                print(f"  {server.name}: failed to start: {exc}", flush=True)
            finally:
                running.stop()


# --------------------------------------------------------------------------- reporting

def in_usual_placement(rounds: list[dict]) -> list[dict]:
    """The rounds a median is taken over: those measured in the run's usual CPU placement,
    or every round if none was. A round in the other placement runs every server ~20%
    faster or slower (placement.py), so it is not compared with the others."""
    return [r for r in rounds if not r.get("placement_off")] or rounds


def summarise(cells: dict, workloads: list[Workload], twins: dict[str, str]) -> list[dict]:
    """One row per (workload, server) with medians and ratios; ``twins`` maps a current
    server's name to its baseline server's (``--baseline``)."""
    rows = []
    for w in workloads:
        for (wname, sname), cell in cells.items():
            if wname != w.name:
                continue
            row = {"workload": wname, "server": sname, "kind": cell.kind, "error": cell.error,
                   "rounds": cell.rounds}
            if cell.rounds:
                counted = in_usual_placement(cell.rounds)
                for key in ("rps", "p50_us", "p99_us", "rss_per_idle", "idle_setup_s",
                            "client_cpu"):
                    if key in cell.rounds[0]:
                        row[key] = statistics.median(r[key] for r in counted)
                row["rounds_counted"] = len(counted)
                if "client_cpu" in row:
                    row["client_bound"] = row["client_cpu"] >= CLIENT_BOUND
                if "idle_open_end" in cell.rounds[0]:
                    row["idle_open_end"] = min(r["idle_open_end"] for r in cell.rounds)
                row["errors"] = sum(r["errors"] for r in cell.rounds)
                row["timeouts"] = sum(r["timeouts"] for r in cell.rounds)
                row["rss"] = max(r["rss"] for r in cell.rounds)
                row["placement_off"] = sum(bool(r.get("placement_off")) for r in cell.rounds)
            rows.append(row)
    ok = [r for r in rows if r.get("rps") and not r["error"]]
    for row in rows:
        if not row["server"].startswith("cymongoose") or not row.get("rps"):
            continue
        same = [r for r in ok if r["workload"] == row["workload"]]
        peers = [r for r in same if not r["server"].startswith(("cymongoose", "mongoose-c"))
                 and (row["kind"] == "core" or r["kind"] == row["kind"])]
        if peers:
            best = max(peers, key=lambda r: r["rps"])
            row["vs_peer"] = row["rps"] / best["rps"]
            row["best_peer"] = best["server"]
        c_rows = [r for r in same if r["server"] == "mongoose-c"]
        if c_rows:
            row["vs_c"] = row["rps"] / c_rows[0]["rps"]
        base = [r for r in same if r["server"] == twins.get(row["server"])]
        if base:
            row["vs_base"] = row["rps"] / base[0]["rps"]
    bases = {w.name: w.base for w in workloads if w.base}
    for row in rows:  # idle workloads: relative to the same server without idle connections
        base = [r for r in ok if r["workload"] == bases.get(row["workload"])
                and r["server"] == row["server"]]
        if base and row.get("rps"):
            row["p50_vs_no_idle"] = row["p50_us"] / base[0]["p50_us"]
            row["p99_vs_no_idle"] = row["p99_us"] / base[0]["p99_us"]
            row["rps_vs_no_idle"] = row["rps"] / base[0]["rps"]
    return rows


def idle_markdown(rows: list[dict], workloads: list[Workload]) -> list[str]:
    """The idle workloads side by side: each against the same server with no idle ones."""
    idle = [w for w in workloads if w.base]
    if not idle:
        return []
    lines = ["## idle connections: cost of a request with idle connections open (issue 11)",
             "", "Ratios compare each row with the same server and client count without idle "
             "connections (`idle0` / `idle0x64`). `RSS/idle` is the server's RSS growth while "
             "the idle connections were opened, divided by their number; `open at end`: idle "
             "connections the server had not closed when the measurement ended.", "",
             "| workload | server | p50 ms | p99 ms | p50 × no-idle | p99 × no-idle "
             "| req/s × no-idle | RSS/idle KiB | open at end |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for w in idle:
        for r in rows:
            if r["workload"] != w.name or r.get("rps") is None:
                continue
            ratio = {k: f"{r[k]:.2f}×" if k in r else "" for k in
                     ("p50_vs_no_idle", "p99_vs_no_idle", "rps_vs_no_idle")}
            per = f"{r['rss_per_idle'] / 1024:.1f}" if "rss_per_idle" in r else ""
            lines.append(f"| {w.name} | {r['server']} | {r['p50_us'] / 1000:.3f} | "
                         f"{r['p99_us'] / 1000:.2f} | {ratio['p50_vs_no_idle']} | "
                         f"{ratio['p99_vs_no_idle']} | {ratio['rps_vs_no_idle']} | {per} | "
                         f"{r.get('idle_open_end', '')} |")
    lines.append("")
    return lines


def markdown(rows: list[dict], meta: dict, workloads: list[Workload]) -> str:
    base = meta.get("baseline")
    lines = [f"# cymongoose benchmark {meta['date']} on {meta['host']}", ""]
    if meta.get("rereported"):
        lines += [f"This report was rendered again on {meta['rereported']} from the run's "
                  "saved rounds by the rules of that day (benchmarks/rereport.py); nothing "
                  "was measured again.", ""]
    lines += [f"{meta['cpus']} CPUs ({meta['cpu_model']}), Python {meta['python']}, "
              f"{meta['wrk']}; {meta['rounds']} round(s) of {meta['duration']} s after "
              f"{meta['warmup']} s warm-up, median shown; server on CPU {SERVER_CPU}, load on "
              f"CPU {LOAD_CPU}; load average at start {meta['loadavg']}.", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()), "",
              "Errors/timeouts are summed over rounds; **!** marks non-zero. `vs peer` compares "
              "each cymongoose row with the fastest non-cymongoose server of its class (ASGI, "
              "WSGI; any Python server for the core Manager); `vs C` with the pure C mongoose "
              "server. Compare ratios within one run only.", "",
              client_bound_markdown(), "",
              placement_markdown(meta), "",
              f"Tree measured: `{meta['tree']}`."]
    if base:
        lines[-1] += (f" Baseline: `{base['short']}` ({base['subject']}; `--baseline "
                      f"{base['ref']}`, commit {base['commit']}): rows named "
                      f"`<server>@{base['short']}` run that commit's packages ("
                      + ", ".join(f"{k} {v}" for k, v in base["versions"].items())
                      + ") from a virtualenv of their own, with the same apps; `vs base` "
                      "divides a row's req/s by its baseline twin's; the twins run one after "
                      "the other in every round (which one first alternates).")
    lines.append("")
    for w in workloads:
        wrows = [r for r in rows if r["workload"] == w.name]
        if not wrows:
            continue
        lines += [f"## {w.name}: {w.description}", "",
                  "| server | req/s | p50 ms | p99 ms | errors/timeouts | peak RSS MiB "
                  "| vs peer | vs C |" + (" vs base |" if base else ""),
                  "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if base else "")]
        for r in wrows:
            if r.get("rps") is None:
                lines.append(f"| {r['server']} | **ERROR** {r['error']} | | | | | | |"
                             + (" |" if base else ""))
                continue
            et = f"{r['errors']}/{r['timeouts']}"
            if r["errors"] or r["timeouts"] or r["error"]:
                et = f"**{et} !**"
            peer = f"{r['vs_peer']:.2f}× {r['best_peer']}" if "vs_peer" in r else ""
            vs_c = f"{r['vs_c']:.2f}×" if "vs_c" in r else ""
            name = r["server"] + (f" (**error in a round**: {r['error']})" if r["error"] else "")
            vs_base = ""
            if "vs_base" in r:
                low = r["vs_base"] < ACCEPTANCE_VS_BASE
                vs_base = f"**{r['vs_base']:.2f}×**" if low else f"{r['vs_base']:.2f}×"
            outside = r.get("placement_off", 0)
            marks = " ‡" if outside and outside == len(r["rounds"]) else " †" if outside else ""
            marks += " §" if r.get("client_bound") else ""
            lines.append(f"| {name} | {r['rps']:.0f}{marks} | {r['p50_us'] / 1000:.2f} | "
                         f"{r['p99_us'] / 1000:.2f} | {et} | {r['rss'] / MIB:.1f} | {peer} | "
                         f"{vs_c} |" + (f" {vs_base} |" if base else ""))
        lines.append("")
    lines += acceptance_markdown(rows, meta)
    lines += idle_markdown(rows, workloads)
    return "\n".join(lines)


def report_text(rows: list[dict], meta: dict, workloads: list[Workload],
                mqtt_rows: list[dict]) -> str:
    """A run's whole .md report: the HTTP workloads, then MQTT's."""
    return "\n".join([markdown(rows, meta, workloads), *mqtt_bench.markdown(mqtt_rows)])


def save(json_path: Path, meta: dict, rows: list[dict], mqtt_rows: list[dict],
         text: str) -> None:
    """Write a run's results to ``json_path`` and its report ``text`` next to it (.md)."""
    json_path.with_suffix(".md").write_text(text + "\n")
    json_path.write_text(json.dumps({"meta": meta, "rows": rows, "mqtt": mqtt_rows},
                                    indent=1) + "\n")


def client_bound_markdown() -> str:
    """The run's note on rows whose load generator ran out of CPU."""
    return (f"**§** marks a row whose load generator (wrk, or ws_client.py) used at least "
            f"{CLIENT_BOUND:.0%} of its CPU (the median over the rounds): such a row measures "
            "the client as much as the server, and the ratio of two such rows tends to 1 "
            "whatever the servers cost (wrk reads 8 KiB per read(2) and asks FIONREAD after "
            "each: a 1 MiB response costs it about as much CPU as it costs the server to "
            "send).")


def placement_markdown(meta: dict) -> str:
    """The run's note on CPU placement (placement.py)."""
    if "placement_usual_ns" not in meta:
        return ("CPU placement: not probed (" + meta.get("placement", "no measurement")
                + "); rounds may mix the VM's two placements of the CPUs.")
    return (f"CPU placement: every measurement was taken with CPUs {SERVER_CPU} and "
            f"{LOAD_CPU} in their usual placement (a cache line's round trip between them "
            f"{meta['placement_usual_ns']:.0f} ns, within {TOLERANCE}x, probed before and "
            f"after; each try waits up to {SETTLE_S:.0f} s for it), repeated up to {TRIES} "
            f"times until it was. A round still outside after {TRIES} tries is left out of "
            "the median (**†** marks such a row); **‡** marks a row with no round inside, "
            "whose median is taken over all its rounds (a busy machine looks the same to the "
            "probe). On a VM the "
            "hypervisor moves the two CPUs between cores that share a cache and cores that "
            "do not every few seconds, which moves every server's req/s by ~20% "
            "(benchmarks/placement.py).")


def versions() -> dict:
    out = {}
    for dist in ("cymongoose-core", "cymongoose-asgi", "cymongoose-wsgi", "uvicorn", "uvloop",
                 "httptools", "granian", "gunicorn", "bjoern-binary", "fastwsgi", "fastapi",
                 "flask", "websockets", "mqttasgi", "paho-mqtt", "channels", "asgiref"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 0.3 s warm-up, 1 s per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="warm-up seconds per configuration (below 1: one connection)")
    parser.add_argument("--servers", help="comma-separated subset of: "
                        + ", ".join([s.name for s in SERVERS] + ["mqttasgi"]))
    parser.add_argument("--workloads", help="comma-separated subset of: "
                        + ", ".join([w.name for w in WORKLOADS] + ["mqtt"]))
    parser.add_argument("--baseline", metavar="REF",
                        help="also measure the cymongoose servers of this git commit (e.g. "
                        "HEAD~1), built into a virtualenv of their own; rows <server>@<hash>")
    parser.add_argument("--baseline-servers", help="comma-separated cymongoose servers to "
                        "measure at --baseline (default: every cymongoose server in the run)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.baseline_servers is not None:
        if not args.baseline:
            parser.error("--baseline-servers needs --baseline REF")
        ours = [s.name for s in SERVERS if s.name.startswith("cymongoose")]
        bad = [n for n in args.baseline_servers.split(",") if n not in ours]
        if bad:
            parser.error(f"--baseline-servers: {', '.join(bad)} not among: {', '.join(ours)}")
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1, 0.3
    return args


def with_baseline(servers: list[Server], base: Baseline, names: str | None) -> list[Server]:
    """``servers`` with a baseline twin after each chosen cymongoose server (``names``,
    comma-separated; default: every cymongoose server in ``servers``), so that each round
    measures a current server and its baseline one after the other."""
    chosen = (names.split(",") if names else
              [s.name for s in servers if s.name.startswith("cymongoose")])
    out = []
    for server in SERVERS:
        if server in servers:
            out.append(server)
        if server.name in chosen:
            out.append(Server(f"{server.name}@{base.short}", server.kind, server.websocket,
                              python=str(base.python), twin=server.name))
    return out


def round_order(servers: list[Server], n: int) -> list[Server]:
    """The servers in round ``n``'s order: a baseline twin goes after its current server in
    even rounds and before it in odd ones, so that neither tree always runs first."""
    out = list(servers)
    if n % 2:
        for i in range(1, len(out)):
            if out[i].twin and out[i].twin == out[i - 1].name:
                out[i - 1], out[i] = out[i], out[i - 1]
    return out


def start_placement(tmpdir: Path, meta: dict) -> Placement | None:
    """The CPU placement probe, built and settled on the usual placement, or None
    (reported in ``meta``) where it cannot be built or run."""
    try:
        placement = Placement.build(tmpdir, (SERVER_CPU, LOAD_CPU))
        usual = placement.start(time.sleep)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"placement probe unavailable, measurements not placed: {exc}", file=sys.stderr)
        meta["placement"] = f"unavailable: {exc}"[:200]
        return None
    print(f"CPUs {SERVER_CPU} and {LOAD_CPU}: a cache line's round trip is usually "
          f"{usual:.0f} ns", flush=True)
    return placement


def main(argv=None) -> int:
    args = parse_args(argv)
    chosen = args.workloads.split(",") if args.workloads else None
    mqtt_servers = [s for s in mqtt_bench.SERVERS
                    if not args.servers or s in args.servers.split(",")]
    if chosen is not None and "mqtt" not in chosen:
        mqtt_servers = []
    if chosen != ["mqtt"] and not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    if not shutil.which("taskset"):
        print("taskset is not installed: apt-get install util-linux", file=sys.stderr)
        return 2
    raise_nofile()  # idle workloads: 10,000+ sockets in the server and in idle_clients.py
    servers = [s for s in SERVERS if not args.servers or s.name in args.servers.split(",")]
    workloads = [w for w in WORKLOADS
                 if not args.workloads or w.name in args.workloads.split(",")]
    started = time.monotonic()
    now = datetime.datetime.now()
    meta = {"date": now.strftime("%Y-%m-%d %H:%M"), "host": socket.gethostname(),
            "cpus": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version(),
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True)
            .stdout.split(" [")[0].strip() if shutil.which("wrk") else "no wrk",
            "rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()), "versions": versions(),
            "tree": describe_tree(),
            # the charts' titles (charts.py reads saved results without run.py)
            "workloads": {w.name: w.description for w in workloads}}
    with tempfile.TemporaryDirectory(prefix="cymongoose-bench-") as tmp:
        tmpdir = Path(tmp)
        twins: dict[str, str] = {}
        if args.baseline:
            try:
                base = build_baseline(args.baseline, tmpdir)
            except (ValueError, RuntimeError, subprocess.CalledProcessError) as exc:
                print(exc, file=sys.stderr)
                return 2
            servers = with_baseline(servers, base, args.baseline_servers)
            twins = {s.twin: s.name for s in servers if s.twin}
            meta["baseline"] = {"ref": base.ref, "commit": base.commit, "short": base.short,
                                "subject": base.subject, "versions": base.versions}
        c_binary = None
        if workloads and any(s.kind == "c" for s in servers):
            try:
                c_binary = build_c_hello(tmpdir)
            except Exception as exc:  # noqa: BLE001
                print(f"mongoose-c: build failed, skipped: {exc}", file=sys.stderr)
                servers = [s for s in servers if s.kind != "c"]
        report = (HERE / "wrk" / "report.lua").read_text()
        scripts = {"GET": tmpdir / "get.lua", "POST": tmpdir / "post.lua",
                   "pipeline": tmpdir / "pipeline.lua"}
        scripts["GET"].write_text(report)
        scripts["POST"].write_text((HERE / "wrk" / "echo.lua").read_text() + "\n" + report)
        scripts["pipeline"].write_text((HERE / "wrk" / "pipeline.lua").read_text() + "\n"
                                       + report)
        cells = {(w.name, s.name): Cell(w.name, s.name, s.kind)
                 for w in workloads for s in servers
                 if s.kind in w.kinds and (s.websocket or not w.websocket)
                 and (w.servers is None or s.program in w.servers)
                 and (s.websocket or not w.idle_websocket)}
        tls = TlsFiles.make(tmpdir) if any(w.tls for w in workloads) else None
        placement = start_placement(tmpdir, meta) if workloads else None
        mqtt_results: dict = {}
        per_round = len(cells) + mqtt_bench.cells_per_round(mqtt_servers)
        progress = Progress(per_round * args.rounds, args.rounds)
        try:
            for n in range(args.rounds):
                print(f"round {n + 1}/{args.rounds}", flush=True)
                run_round(round_order(servers, n), workloads, args, scripts, cells, c_binary,
                          tls, progress, n + 1, placement)
                if mqtt_servers:
                    mqtt_bench.run_round(mqtt_servers[::-1] if n % 2 else mqtt_servers,
                                         args.duration, args.warmup, mqtt_results,
                                         progress, n + 1)
        except KeyboardInterrupt:
            # Ctrl-C (SIGINT) keeps what was measured: the report covers the rounds so far.
            print("interrupted: reporting the measurements made so far", flush=True)
            meta["interrupted"] = True
    rows = summarise(cells, workloads, twins)
    if placement is not None and placement.seen:
        meta["placement_usual_ns"] = round(placement.usual, 1)
    mqtt_rows = mqtt_bench.summarise(mqtt_results)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    text = report_text(rows, meta, workloads, mqtt_rows)
    print("\n" + text)
    if not args.no_save:
        args.output.mkdir(parents=True, exist_ok=True)
        # Time in the name: a second run on the same day must not overwrite the first.
        stem = f"{now:%Y-%m-%d-%H%M}-{meta['host']}"
        if (args.output / f"{stem}.json").exists():
            stem += f"-{now:%S}"
        save(args.output / f"{stem}.json", meta, rows, mqtt_rows, text)
        print(f"saved {args.output / stem}.md and .json")
        try:  # one chart per workload, referenced from the .md (charts.py redoes them)
            written = charts.write_run(args.output / f"{stem}.json")
            charts_n = sum(p.suffix == ".svg" for p in written)
            print(f"saved {charts_n} charts ({stem}-<workload>.svg and .png)")
        except ImportError as exc:
            print(f"no charts: {exc} (pip install matplotlib; then python "
                  f"benchmarks/charts.py {args.output / stem}.json)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
