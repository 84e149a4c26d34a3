"""HTTP hello through an `AsyncManager` handler: integrated mode vs threaded mode.

The server runs in a child process (one per mode, one after the other); this process runs
an asyncio raw-socket keep-alive client with ``--connections`` connections, each sending
one request at a time, for ``--seconds`` seconds after a short warm-up. Prints requests/s
per mode and their ratio, and the server's CPU time per request (user + system, all its
threads): on a busy or small machine the Python client is often the bottleneck, and CPU
per request is the steadier measure of what each mode costs.

    python benchmarks/aio_modes.py [--seconds 3] [--connections 50] [--uvloop] [--asgi]

``--uvloop`` runs the server's event loop on uvloop; ``--asgi`` serves a raw ASGI hello
app with `cymongoose.asgi.ASGIServer` instead of a plain handler (needs cymongoose-asgi).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
BODY = b"Hello from async!"


async def _asgi_hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": BODY})


def _serve(
    mode: str,
    port_queue: multiprocessing.Queue,
    stop: multiprocessing.Event,
    use_uvloop: bool,
    asgi: bool,
) -> None:
    from cymongoose import MG_EV_HTTP_MSG
    from cymongoose.aio import AsyncManager

    def hello(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.reply(200, BODY)

    async def main_asgi() -> None:
        from cymongoose.asgi import ASGIServer

        server = ASGIServer(_asgi_hello, lifespan="off", mode=mode)
        listener = await server.start("http://127.0.0.1:0")
        port_queue.put((listener.local_addr[1], server.mode))
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await server.stop()

    async def main() -> None:
        if asgi:
            await main_asgi()
            return
        async with AsyncManager(hello, mode=mode) as am:
            listener = am.listen("http://127.0.0.1:0")
            listener.io_events = False  # accepted connections: no Python call per poll
            port_queue.put((listener.local_addr[1], am.mode))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, stop.wait)

    cpu0 = time.process_time()
    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    port_queue.put(time.process_time() - cpu0)


async def _client(port: int, deadline: float, counts: list[int], slot: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tail = b"\r\n\r\n"
    try:
        while time.perf_counter() < deadline:
            writer.write(REQUEST)
            head = await reader.readuntil(tail)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            counts[slot] += 1
    finally:
        writer.close()


async def _load(port: int, connections: int, seconds: float) -> tuple[float, int]:
    """Returns (requests/s after warm-up, all requests including warm-up)."""
    warm = [0] * connections
    await asyncio.gather(
        *(_client(port, time.perf_counter() + 0.3, warm, i) for i in range(connections))
    )
    counts = [0] * connections
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, start + seconds, counts, i) for i in range(connections)))
    return sum(counts) / (time.perf_counter() - start), sum(counts) + sum(warm)


def run_mode(
    mode: str, connections: int, seconds: float, use_uvloop: bool = False, asgi: bool = False
) -> tuple[str, float, float]:
    """Returns (mode that ran, requests/s, server CPU microseconds per request)."""
    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    stop = ctx.Event()
    proc = ctx.Process(target=_serve, args=(mode, port_queue, stop, use_uvloop, asgi), daemon=True)
    proc.start()
    try:
        port, actual = port_queue.get(timeout=10)
        rps, total = asyncio.run(_load(port, connections, seconds))
    finally:
        stop.set()
    try:
        cpu = port_queue.get(timeout=10)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    return actual, rps, cpu / max(total, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--uvloop", action="store_true", help="server loop on uvloop")
    parser.add_argument("--asgi", action="store_true", help="ASGI hello app via ASGIServer")
    args = parser.parse_args(argv)
    results = {}
    cpus = {}
    for mode in ("integrated", "threaded"):
        actual, rps, cpu_us = run_mode(mode, args.connections, args.seconds, args.uvloop, args.asgi)
        if actual != mode:
            print(f"{mode}: not available here (ran {actual})", file=sys.stderr)
        results[mode] = rps
        cpus[mode] = cpu_us
        print(f"{mode:>10}: {rps:10.0f} requests/s   server CPU {cpu_us:6.1f} us/request")
    if results.get("threaded"):
        print(
            f"     ratio: {results['integrated'] / results['threaded']:.2f}x requests/s, "
            f"{cpus['threaded'] / cpus['integrated']:.2f}x less CPU per request "
            "(integrated vs threaded)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
