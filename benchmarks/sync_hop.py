"""What a thread-sensitive ``sync_to_async`` hop costs, with no server and no network
(issue 19's Channels row): per call, and per message of the mqtt bench's Channels
consumer (apps/mqtt_echo.py) fed from a queue, on asyncio's loop and on uvloop, with
asgiref's executor and with cymongoose-asgi's `SyncThread`. Each case runs in its own
process pinned to one CPU (as the bench pins the server); prints one JSON line per case:
wall and CPU microseconds and context switches per call or message.

    python benchmarks/sync_hop.py            # needs asgiref, channels, mqttasgi, uvloop
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N = 20000


def switches() -> int:
    total = 0
    for tid in os.listdir("/proc/self/task"):
        for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
            if "ctxt_switches" in line:  # voluntary and nonvoluntary
                total += int(line.split()[1])
    return total


async def timed(step, n: int) -> dict:
    for _ in range(500):
        await step()
    s0, t0, c0 = switches(), time.perf_counter(), time.process_time()
    for _ in range(n):
        await step()
    s1, t1, c1 = switches(), time.perf_counter(), time.process_time()
    return {"us": round((t1 - t0) / n * 1e6, 1), "cpu_us": round((c1 - c0) / n * 1e6, 1),
            "switches": round((s1 - s0) / n, 2)}


async def hop() -> dict:
    from asgiref.sync import sync_to_async

    call = sync_to_async(int)
    return await timed(call, N)


async def consumer() -> dict:
    sys.path.insert(0, str(HERE / "apps"))
    from mqtt_echo import application

    queue: asyncio.Queue = asyncio.Queue()
    sent = asyncio.Queue()
    message = {"type": "mqtt.msg", "mqtt": {"topic": "bench/req", "payload": b"." * 32,
                                            "qos": 1, "retain": False}}
    queue.put_nowait({"type": "mqtt.connect", "mqtt": {}})
    scope = {"type": "mqtt", "app_id": 0, "instance_type": "master", "asgi": {"version": "3.0"}}
    task = asyncio.ensure_future(application(scope, queue.get, sent.put))
    await sent.get()  # its subscription

    async def one() -> None:  # one message in, its republish out
        queue.put_nowait(dict(message))
        await sent.get()

    try:
        return await timed(one, N // 2)
    finally:
        task.cancel()


def case(loop: str, executor: str, what: str) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if executor == "SyncThread":
        from asgiref.sync import SyncToAsync
        from cymongoose.asgi.syncthread import SyncThread

        SyncToAsync.single_thread_executor = SyncThread()
    main = hop if what == "hop" else consumer
    if loop == "uvloop":
        import uvloop

        result = uvloop.run(main())
    else:
        result = asyncio.run(main())
    print(json.dumps({"what": what, "loop": loop, "executor": executor, **result}))


def run_all() -> None:
    for what in ("hop", "consumer"):
        for loop in ("asyncio", "uvloop"):
            for executor in ("asgiref", "SyncThread"):
                subprocess.run([sys.executable, __file__, loop, executor, what], check=True)


if __name__ == "__main__":
    if len(sys.argv) == 4:
        case(*sys.argv[1:])
    else:
        run_all()
