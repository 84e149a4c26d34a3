"""The benchmark routes on a bare cymongoose ``Manager`` handler (no ASGI/WSGI layer).

Usage: python core_app.py PORT
"""

import sys

from cymongoose import MG_EV_HTTP_MSG, MG_EV_WS_MSG, WEBSOCKET_OP_TEXT, Manager

HELLO = b"Hello, World!"
BIG = b"x" * (1024 * 1024)
BINARY = {"Content-Type": "application/octet-stream"}


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        uri = data.uri
        if uri == "/echo":
            conn.reply(200, data.body_bytes, BINARY)
        elif uri == "/big":
            conn.reply(200, BIG, BINARY)
        elif uri == "/ws":
            conn.ws_upgrade(data)
        else:
            conn.reply(200, HELLO)
    elif ev == MG_EV_WS_MSG:
        conn.ws_send(data.data, WEBSOCKET_OP_TEXT)


def main():
    port = int(sys.argv[1])
    with Manager(handler) as mgr:
        listener = mgr.listen(f"http://127.0.0.1:{port}")
        listener.io_events = False  # no Python call per connection per loop iteration
        mgr.run(poll_ms=1000)


if __name__ == "__main__":
    main()
