"""mongoose inside asyncio with ``cymongoose.aio.AsyncManager``.

``GET /`` answers at once from the mongoose handler; ``GET /later`` is answered by a
coroutine: the handler hands the request to asyncio with ``AsyncManager.schedule``, the
coroutine awaits (here a sleep, in real code a database or an HTTP call) and replies through
``call_in_poll_thread``, which runs the reply where mongoose may be touched. Stops cleanly on
Ctrl-C or SIGTERM.

Run: ``python examples/aio/http_server.py --port 8000``
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from cymongoose import MG_EV_HTTP_MSG
from cymongoose.aio import AsyncManager


async def main(host: str, port: int) -> None:
    am: AsyncManager

    async def answer_later(conn, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        am.call_in_poll_thread(conn.reply, 200, f"answered after {delay_s} s\n".encode())

    def handler(conn, ev, data) -> None:
        if ev != MG_EV_HTTP_MSG:
            return
        if data.uri == "/later":
            am.schedule(answer_later(conn, 0.1))
        else:
            conn.reply(200, f"Hello from asyncio ({am.mode} mode)\n".encode())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncManager(handler) as am:
        am.listen(f"http://{host}:{port}")
        print(f"listening on http://{host}:{port} ({am.mode} mode)", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
