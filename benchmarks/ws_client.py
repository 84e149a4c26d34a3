"""WebSocket echo load: N connections, each sending one message and awaiting its echo, in turn.

Prints one JSON line: round trips/s, p50/p99 latency, errors (failed or wrong echoes).
Usage: python ws_client.py ws://127.0.0.1:PORT/ws --connections 100 --duration 3
       python ws_client.py URL --check      (one round trip; exit status 1 if it fails)
--deflate offers permessage-deflate (RFC 7692); --check then also fails if it is not agreed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import websockets


async def _one_connection(url, deadline, payload, latencies, errors, compression):
    try:
        async with websockets.connect(url, max_size=None, compression=compression) as ws:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await ws.send(payload)
                reply = await asyncio.wait_for(ws.recv(), 5)
                if reply != payload:
                    errors.append("wrong echo")
                    return
                latencies.append(time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - every failure is counted, the load goes on
        errors.append(f"{type(exc).__name__}: {exc}")


async def _run(url, connections, duration, size, compression):
    payload = "x" * size
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(*(_one_connection(url, deadline, payload, latencies, errors,
                                           compression) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        "errors": len(errors),
        "timeouts": sum("Timeout" in e for e in errors),
        "first_error": errors[0] if errors else None,
    }


async def _check(url, size, compression):
    payload = "x" * size
    async with websockets.connect(url, max_size=None, compression=compression) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        if compression and not agreed.startswith("permessage-deflate"):
            raise RuntimeError(f"permessage-deflate not agreed (got {agreed!r})")
        for _ in range(2):
            await ws.send(payload)
            reply = await asyncio.wait_for(ws.recv(), 5)
            if reply != payload:
                raise RuntimeError(f"echo mismatch: got {reply[:40]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=32, help="message size in bytes")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    args = parser.parse_args()
    compression = "deflate" if args.deflate else None
    try:
        import uvloop  # the client must not be the bottleneck
        uvloop.install()
    except ImportError:
        pass
    if args.check:
        try:
            asyncio.run(_check(args.url, args.size, compression))
        except Exception as exc:  # noqa: BLE001
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        return 0
    print(json.dumps(asyncio.run(_run(args.url, args.connections, args.duration, args.size,
                                      compression))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
