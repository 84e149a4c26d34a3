"""CPU per request of servers under wrk, the server's and wrk's own, interleaved per round.

    python benchmarks/cpu_per_request.py --workloads big echo --servers cymongoose-asgi uvicorn

On a shared machine req/s follows the load of the moment; the CPU each request costs does
not (much). On a loaded machine the server and wrk each get a share of a CPU, so the
ratio of two servers' req/s tends to the ratio of their whole chain (server + wrk CPU
per request): a server that costs less CPU but makes wrk work harder (a response in
more pieces) gains less than its own cost says. Each row: req/s (indicative), the server
process tree's user/system CPU per request (psutil), its voluntary/involuntary context
switches per request (all threads), and wrk's user/system CPU per request (getrusage
of the child).
Servers, workloads, pinning (server CPU 0, wrk CPU 1) and wrk scripts are run.py's.
``--python SERVER=PATH`` runs one server with another interpreter (e.g. a fresh venv).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import tempfile
from pathlib import Path

import psutil
from run import HERE, LOAD_CPU, SERVERS, WORKLOADS, Running


def _thread_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of every thread of ``pid``: psutil's
    num_ctx_switches() reads /proc/PID/status, the main thread's alone, which is not the
    one that polls in a pooled WSGI server (it showed 0.00 per request)."""
    vol = invol = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue  # the thread ended meanwhile
        for line in lines:
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol += int(line.split()[1])
    return vol, invol


def _tree_counters(pid: int) -> tuple[float, float, int, int]:
    """user s, system s, voluntary and involuntary context switches of ``pid``'s tree
    (all threads)."""
    user = system = 0.0
    vol = invol = 0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        v, i = _thread_switches(p.pid)
        user, system, vol, invol = user + t.user, system + t.system, vol + v, invol + i
    return user, system, vol, invol


def _wrk(port: int, path: str, connections: int, seconds: int, script: Path | None
         ) -> tuple[int, float, float, float]:
    """requests, req/s, wrk's user and system CPU seconds."""
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    if script is not None:
        argv += ["-s", str(script)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([*argv, f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    rps = float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[1])
    return requests, rps, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def measure(server, workload, seconds: int, script: Path | None) -> str:
    running = Running(server, workload.module[server.kind], None)
    try:
        running.wait_ready()
        _wrk(running.port, workload.path, 1, 1, script)  # warm-up
        a = _tree_counters(running.proc.pid)
        n, rps, wu, ws = _wrk(running.port, workload.path, workload.connections, seconds,
                              script)
        b = _tree_counters(running.proc.pid)
    finally:
        running.stop()
    su, ss, vol, invol = (y - x for x, y in zip(a, b, strict=True))
    ms = 1000 / max(n, 1)
    return (f"{workload.name:6} {server.name:24} {rps:9.0f} req/s  server {(su + ss) * ms:.3f} "
            f"ms/req (usr {su * ms:.3f} sys {ss * ms:.3f})  csw {vol / n:.2f}+{invol / n:.2f}"
            f"/req  wrk {(wu + ws) * ms:.3f} ms/req  chain {(su + ss + wu + ws) * ms:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", nargs="+", default=["big", "echo"])
    ap.add_argument("--servers", nargs="+", default=["cymongoose-asgi", "uvicorn"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4, help="seconds of wrk per cell")
    ap.add_argument("--python", action="append", default=[], metavar="SERVER=PATH")
    args = ap.parse_args()
    pythons = dict(item.split("=", 1) for item in args.python)
    servers = [dataclasses.replace(s, python=pythons.get(s.name, s.python))
               for s in SERVERS if s.name in args.servers]
    with tempfile.TemporaryDirectory() as tmp:
        for w in (w for w in WORKLOADS if w.name in args.workloads):
            script = None
            if w.method == "POST":
                script = Path(tmp) / "post.lua"
                script.write_text((HERE / "wrk" / "echo.lua").read_text())
            for _ in range(args.rounds):
                for server in servers:
                    if server.kind in w.kinds:
                        print(measure(server, w, args.duration, script), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
