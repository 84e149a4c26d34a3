"""Timers and wakeup: slow work in a thread, the reply sent from the event loop.

- A repeating timer counts seconds since start (``GET /`` shows the count).
- ``GET /slow?n=30`` computes ``fib(n)`` in a worker thread, so the event loop keeps
  serving; the thread hands the result back with ``Manager.wakeup(conn.id, payload)``,
  which is the one thread-safe call, and the handler replies on ``MG_EV_WAKEUP``.

Run: ``python examples/core/timers_wakeup.py --port 8000``
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor

from cymongoose import MG_EV_HTTP_MSG, MG_EV_WAKEUP, Manager


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class App:
    def __init__(self, mgr: Manager, pool: ThreadPoolExecutor) -> None:
        self.mgr = mgr
        self.pool = pool
        self.seconds = 0
        mgr.timer_add(1000, self.tick, repeat=True)

    def tick(self) -> None:
        self.seconds += 1

    def work(self, conn_id: int, n: int) -> None:
        # Runs in a worker thread: never touch the Connection here, only wake it up.
        payload = json.dumps({"n": n, "fib": fib(n)}).encode()
        self.mgr.wakeup(conn_id, payload)

    def handler(self, conn, ev, data) -> None:
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/slow":
                n = int(data.query_var("n") or 25)
                if not 0 <= n <= 32:
                    conn.reply(400, b"n must be in 0..32\n")
                    return
                self.pool.submit(self.work, conn.id, n)
            else:
                conn.reply(200, f"up for {self.seconds} s\n".encode())
        elif ev == MG_EV_WAKEUP:
            conn.reply(200, data, {"Content-Type": "application/json"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with ThreadPoolExecutor(4) as pool, Manager(enable_wakeup=True) as mgr:
        app = App(mgr, pool)
        mgr.listen(f"http://{args.host}:{args.port}", app.handler)
        print(f"listening on http://{args.host}:{args.port}", flush=True)
        mgr.run()


if __name__ == "__main__":
    main()
