"""A plain HTTP server on cymongoose's Manager: text, JSON echo and a 404.

Routes: ``GET /`` -> ``Hello from cymongoose``; ``POST /echo`` -> the JSON body back with
``{"received": ...}``; anything else -> 404. Stops cleanly on Ctrl-C or SIGTERM.

Run: ``python examples/core/http_server.py --port 8000``
"""

from __future__ import annotations

import argparse
import json

from cymongoose import MG_EV_HTTP_MSG, Manager


def handler(conn, ev, data):
    if ev != MG_EV_HTTP_MSG:
        return
    # `data` is an HttpMessage: a view valid only during this call.
    if data.method == "GET" and data.uri == "/":
        conn.reply(200, b"Hello from cymongoose\n")
    elif data.method == "POST" and data.uri == "/echo":
        try:
            body = json.loads(data.body_bytes or b"null")
        except ValueError:
            conn.reply(400, b"body is not JSON\n")
            return
        conn.reply_json({"received": body})
    else:
        conn.reply(404, b"Not Found\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with Manager(handler) as mgr:
        listener = mgr.listen(f"http://{args.host}:{args.port}")
        print(f"listening on http://{args.host}:{listener.local_addr[1]}", flush=True)
        mgr.run()  # polls until SIGINT/SIGTERM


if __name__ == "__main__":
    main()
