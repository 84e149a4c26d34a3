"""A WebSocket echo server on cymongoose's Manager, with a browser page at ``/``.

``GET /`` serves a page that opens ``ws://<host>/ws``; every text or binary message sent
there comes back unchanged. Stops cleanly on Ctrl-C or SIGTERM.

Run: ``python examples/core/websocket_echo.py --port 8000`` and open http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse

from cymongoose import (
    MG_EV_HTTP_MSG,
    MG_EV_WS_MSG,
    MG_EV_WS_OPEN,
    WEBSOCKET_OP_BINARY,
    WEBSOCKET_OP_TEXT,
    Manager,
)

PAGE = b"""<!DOCTYPE html>
<title>cymongoose echo</title>
<input id="text" placeholder="type and press Enter"><pre id="log"></pre>
<script>
const ws = new WebSocket("ws://" + location.host + "/ws");
const log = document.getElementById("log");
ws.onmessage = (e) => { log.textContent += "echo: " + e.data + "\\n"; };
document.getElementById("text").onkeydown = (e) => {
  if (e.key === "Enter") { ws.send(e.target.value); e.target.value = ""; }
};
</script>
"""


def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        if data.uri == "/ws":
            conn.ws_upgrade(data)  # MG_EV_WS_OPEN follows once the handshake is sent
        else:
            conn.reply(200, PAGE, {"Content-Type": "text/html; charset=utf-8"})
    elif ev == MG_EV_WS_OPEN:
        conn.userdata = {"messages": 0}
    elif ev == MG_EV_WS_MSG:
        conn.userdata["messages"] += 1
        # The low four bits of flags are the frame's opcode (RFC 6455 section 5.2).
        op = WEBSOCKET_OP_BINARY if data.flags & 0x0F == WEBSOCKET_OP_BINARY \
            else WEBSOCKET_OP_TEXT
        conn.ws_send(data.data, op)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with Manager(handler) as mgr:
        mgr.listen(f"http://{args.host}:{args.port}")
        print(f"open http://{args.host}:{args.port}/", flush=True)
        mgr.run()


if __name__ == "__main__":
    main()
