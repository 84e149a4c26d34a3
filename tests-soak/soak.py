"""Soak test: many requests through the servers; every response checked, RSS watched.

    python tests-soak/soak.py                       # 1,000,000 requests per server
    python tests-soak/soak.py --requests 50000 --servers asgi

For each server (``asgi``: ``cymongoose-asgi``; ``wsgi``: ``cymongoose-wsgi`` in its pooled
mode, the default threads; ``wsgi-inline``: the same with ``--threads 0``; each serving
``soak_app.py`` in its own process with ``--workers 1`` and no access log, on a socket
passed with ``--fd``) it:

1. measures the server's RSS at start (before any request);
2. warms up: ``--warmup-requests`` requests (default a tenth of ``--requests``) from wrk
   with ``soak.lua``, plus, for ASGI, one round of WebSocket echo sessions; RSS again,
   ``SETTLE_S`` after the load stopped;
3. sends the remaining requests, WebSocket sessions running alongside (ASGI), sampling
   RSS every second; RSS at the end, ``SETTLE_S`` after the load stopped;
4. stops the server with SIGTERM (graceful shutdown; it must exit with status 0).

The request mix (see ``soak.lua``) has keep-alive and new connections (``Connection:
close`` on 5% of requests, HTTP/1.0 on 1%), GETs with small, 16 KiB and streamed 256 KiB
responses and POSTs of 100 B to 4 MiB (streamed above the core's 64 KiB threshold,
Content-Length and chunked). wrk checks every response: status 200, the body expected for
that very request (matched by its ``x-id``).

Errors: a failed check, any wrk socket error, timeout or status >= 400, a request never
answered (more outstanding at the end than there are connections), a WebSocket message
not echoed exactly, a traceback in the server's log, a server that died or did not exit
cleanly. Exit status 1 on any error or when RSS grew more than ``--max-rss-growth``
(default 10%) from after the warm-up to the end; 2 for a usage or setup problem (wrk
missing). Needs ``wrk`` (``apt-get install wrk``), psutil and websockets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from websockets.sync.client import connect as ws_connect

HERE = Path(__file__).resolve().parent
# name -> module, app, extra flags
SERVERS = {"asgi": ("cymongoose.asgi", "soak_app:asgi", []),
           "wsgi": ("cymongoose.wsgi", "soak_app:wsgi", []),
           "wsgi-inline": ("cymongoose.wsgi", "soak_app:wsgi", ["--threads", "0"])}
WS_MESSAGE_SIZES = (10, 1000, 20000, 60000)
WS_MESSAGES_PER_SESSION = 40
MIB = 1 << 20
SETTLE_S = 2.0  # more than the core's sweep period (at most 1 s)


@dataclass
class Result:
    """What one server's run measured. RSS in bytes; durations in seconds."""

    server: str
    requests: int = 0
    checked: int = 0
    duration_s: float = 0.0
    failures: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    outstanding: int = 0
    ws_sessions: int = 0
    ws_messages: int = 0
    ws_errors: int = 0
    server_tracebacks: int = 0
    exit_status: int | None = None
    rss_start: int = 0
    rss_warm: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    #: RSS once a second during the main phase (after the warm-up).
    rss_samples: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rss_growth(self) -> float:
        """Growth from after the warm-up to the end, as a fraction of the warm RSS."""
        return (self.rss_end - self.rss_warm) / self.rss_warm if self.rss_warm else 0.0


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and its children, in bytes (0 once it is gone)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def settled_rss(pid: int) -> int:
    """RSS once the load has stopped for SETTLE_S: after warm-up and at the end alike, so
    that both have had the core's sweep (which gives free heap pages back once a second
    while busy and after idle buffers are freed) and compare like with like."""
    time.sleep(SETTLE_S)
    return rss_bytes(pid)


def start_server(kind: str, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start one server on a fresh loopback socket; return the process and the port."""
    module, app, flags = SERVERS[kind]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    command = [sys.executable, "-m", module, app, "--app-dir", str(HERE),
               "--fd", str(sock.fileno()), "--workers", "1", "--no-access-log",
               "--log-level", "warning", *flags]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, pass_fds=[sock.fileno()], stdout=log,
                                stderr=subprocess.STDOUT)
    sock.close()
    # Ready when it answers; give up if it exits or stays silent for 60 s.
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}: "
                               f"{log_path.read_text(errors='replace')[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/small")
            if conn.getresponse().read() == b"hello":
                conn.close()
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not answer on port {port} within 60 s")


def run_wrk(port: int, requests: int, id_base: int, connections: int,
            result: Result) -> None:
    """Send ``requests`` requests with wrk + soak.lua; add its counts to ``result``."""
    duration_s = max(120, requests // 200)  # a cap: the script stops wrk when it is done
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--timeout", "30s",
               "-s", str(HERE / "soak.lua"), f"http://127.0.0.1:{port}", "--",
               str(requests), str(id_base)]
    started = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    result.duration_s += time.monotonic() - started
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SOAK ")), None)
    if line is None:
        result.errors.append(f"wrk gave no result (exit {out.returncode}): "
                             f"{out.stdout[-500:]} {out.stderr[-500:]}")
        return
    fields_ = dict(re.findall(r"(\w+)=(\S*)", line.split(" first_failure=")[0]))
    first_failure = line.split(" first_failure=", 1)[1]
    checked = int(fields_["checked"])
    result.requests += requests
    result.checked += checked
    result.failures += int(fields_["failures"])
    for name in ("connect", "read", "write", "status", "timeout"):
        result.socket_errors[name] = result.socket_errors.get(name, 0) + int(fields_[name])
    result.outstanding += int(fields_["outstanding"])
    if checked < requests:
        result.errors.append(f"wrk checked only {checked} of {requests} responses")
    if int(fields_["failures"]):
        result.errors.append(f"{fields_['failures']} wrong responses, first: {first_failure}")
    if int(fields_["outstanding"]) > connections:
        result.errors.append(f"{fields_['outstanding']} requests never answered "
                             f"(more than the {connections} in flight at the end)")
    bad = {k: int(fields_[k]) for k in ("connect", "read", "write", "status", "timeout")
           if int(fields_[k])}
    if bad:
        result.errors.append(f"wrk errors: {bad}")


def ws_sessions(port: int, sessions: int, result: Result, lock: threading.Lock) -> None:
    """Run ``sessions`` WebSocket echo sessions one after another; count errors."""
    payload = bytes(range(256)) * (max(WS_MESSAGE_SIZES) // 256 + 1)
    for session in range(sessions):
        sent = 0
        try:
            with ws_connect(f"ws://127.0.0.1:{port}/ws", max_size=None,
                            open_timeout=30, close_timeout=30) as ws:
                for i in range(WS_MESSAGES_PER_SESSION):
                    size = WS_MESSAGE_SIZES[(session + i) % len(WS_MESSAGE_SIZES)]
                    message: str | bytes = (
                        payload[:size] if i % 2 else f"{session}:{i}:".ljust(size, "x"))
                    ws.send(message)
                    echo = ws.recv(timeout=30)
                    sent += 1
                    if echo != message:
                        raise ValueError(f"message {i} of session {session} came back "
                                         f"different ({len(echo)} of {size} bytes)")
            if ws.close_code != 1000:
                raise ValueError(f"session {session} closed with {ws.close_code}")
        except Exception as exc:  # every failure is counted and reported, none is fatal
            with lock:
                result.ws_errors += 1
                result.errors.append(f"websocket: {type(exc).__name__}: {exc}")
        with lock:
            result.ws_sessions += 1
            result.ws_messages += sent


def soak_one(kind: str, args: argparse.Namespace, workdir: Path) -> Result:
    """Soak one server; return what was measured."""
    result = Result(kind)
    log_path = workdir / f"{kind}-server.log"
    proc, port = start_server(kind, log_path)
    lock = threading.Lock()
    try:
        time.sleep(1)  # let the interpreter settle after the readiness probe
        result.rss_start = rss_bytes(proc.pid)
        warmup = min(args.warmup_requests, args.requests)
        print(f"[{kind}] pid {proc.pid} port {port}: warm-up, {warmup} requests", flush=True)
        run_wrk(port, warmup, 0, args.connections, result)
        if kind == "asgi":
            ws_sessions(port, max(1, args.ws_sessions // 10), result, lock)
        result.rss_warm = settled_rss(proc.pid)
        result.rss_peak = max(result.rss_start, result.rss_warm)
        main = args.requests - warmup
        print(f"[{kind}] warm RSS {result.rss_warm / MIB:.1f} MiB; {main} requests", flush=True)
        threads = []
        if kind == "asgi":
            per_thread = args.ws_sessions // 2
            threads = [threading.Thread(target=ws_sessions, args=(port, n, result, lock))
                       for n in (per_thread, args.ws_sessions - per_thread)]
        load = threading.Thread(target=run_wrk,
                                args=(port, main, 1_000_000_000, args.connections, result))
        for t in (load, *threads):
            t.start()
        while any(t.is_alive() for t in (load, *threads)):
            result.rss_samples.append(rss_bytes(proc.pid))
            result.rss_peak = max(result.rss_peak, result.rss_samples[-1])
            load.join(1.0)
        for t in threads:
            t.join()
        result.rss_end = settled_rss(proc.pid)
        result.rss_peak = max(result.rss_peak, result.rss_end)
        if proc.poll() is not None:
            result.errors.append(f"the server died (exit status {proc.returncode})")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                result.errors.append("the server did not exit within 60 s of SIGTERM")
        result.exit_status = proc.returncode
    if result.exit_status != 0:
        result.errors.append(f"the server exited with status {result.exit_status}")
    log = log_path.read_text(errors="replace")
    result.server_tracebacks = log.count("Traceback")
    if result.server_tracebacks:
        result.errors.append(f"{result.server_tracebacks} tracebacks in the server log, "
                             f"last lines:\n{log[-1500:]}")
    return result


def report(results: list[Result], args: argparse.Namespace, load: tuple[float, float]) -> str:
    """The results as a Markdown table and notes."""
    lines = [
        f"requests per server: {args.requests:,} (warm-up {args.warmup_requests:,}), "
        f"wrk -t1 -c{args.connections}; load average (1 min) {load[0]:.2f} at start, "
        f"{load[1]:.2f} at end, {os.cpu_count()} CPUs",
        "",
        "| server | requests checked | req/s | errors | WebSocket sessions (messages) "
        "| RSS start | RSS after warm-up | RSS end | RSS peak | growth after warm-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rate = r.checked / r.duration_s if r.duration_s else 0.0
        ws = f"{r.ws_sessions} ({r.ws_messages:,})" if r.server == "asgi" else "-"
        lines.append(
            f"| {r.server} | {r.checked:,} | {rate:,.0f} | {len(r.errors)} | {ws} "
            f"| {r.rss_start / MIB:.1f} MiB | {r.rss_warm / MIB:.1f} MiB "
            f"| {r.rss_end / MIB:.1f} MiB | {r.rss_peak / MIB:.1f} MiB "
            f"| {r.rss_growth * 100:+.1f}% |")
    for r in results:
        samples = r.rss_samples
        if samples:
            quarters = [samples[min(len(samples) - 1, len(samples) * q // 4)] for q in (1, 2, 3)]
            lines.append(f"- {r.server}: RSS at 1/4, 1/2, 3/4 of the main phase: "
                         + ", ".join(f"{q / MIB:.1f} MiB" for q in quarters))
    for r in results:
        for error in r.errors:
            lines.append(f"- {r.server}: {error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000,
                        help="HTTP requests per server (default 1,000,000)")
    parser.add_argument("--warmup-requests", type=int, default=None,
                        help="of which the warm-up (default a tenth, at least 20,000)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated, from: {', '.join(SERVERS)} (default all)")
    parser.add_argument("--connections", type=int, default=16,
                        help="wrk connections (default 16)")
    parser.add_argument("--ws-sessions", type=int, default=100,
                        help=f"WebSocket echo sessions of {WS_MESSAGES_PER_SESSION} messages "
                             "during the ASGI run (default 100)")
    parser.add_argument("--max-rss-growth", type=float, default=0.10,
                        help="largest allowed RSS growth after warm-up, as a fraction "
                             "(default 0.10)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVERS)
    if unknown or not servers:
        parser.error(f"--servers: unknown {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    if args.requests < 1:
        parser.error(f"--requests must be >= 1, got {args.requests}")
    if args.warmup_requests is None:
        args.warmup_requests = min(args.requests, max(20_000, args.requests // 10))
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    load_start = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="cymongoose-soak-") as tmp:
        for kind in servers:
            results.append(soak_one(kind, args, Path(tmp)))
    text = report(results, args, (load_start, os.getloadavg()[0]))
    print(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    failed = [r for r in results if r.errors or r.rss_growth > args.max_rss_growth]
    for r in failed:
        if r.rss_growth > args.max_rss_growth:
            print(f"FAIL {r.server}: RSS grew {r.rss_growth * 100:.1f}% after warm-up "
                  f"(limit {args.max_rss_growth * 100:.0f}%)")
        if r.errors:
            print(f"FAIL {r.server}: {len(r.errors)} errors")
    if not failed:
        print("PASS: no errors, RSS growth within the limit on every server")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
