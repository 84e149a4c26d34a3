"""A small program over the core API; `nox -s typecheck` runs mypy --strict on it."""

from __future__ import annotations

import cymongoose
from cymongoose import MG_EV_HTTP_MSG, MG_EV_WS_MSG, Connection, HttpMessage, Manager, WsMessage


def handler(conn: Connection, ev: int, data: object) -> None:
    if ev == MG_EV_HTTP_MSG and isinstance(data, HttpMessage):
        if data.uri == "/ws":
            conn.ws_upgrade(data)
            return
        name: str | None = data.header("Host")
        conn.reply(200, f"hello {name}".encode(), {"X-Sample": "1"})
    elif ev == MG_EV_WS_MSG and isinstance(data, WsMessage):
        conn.ws_send(data.data, cymongoose.WEBSOCKET_OP_BINARY)


def main() -> int:
    with Manager(handler, enable_wakeup=True) as mgr:
        listener: Connection = mgr.listen("http://127.0.0.1:0")
        port: int = listener.local_addr[1]
        timer = mgr.timer_add(10, lambda: None, repeat=True)
        mgr.poll(0)
        timer.cancel()
        ok: bool = mgr.wakeup(listener.id, b"payload")
        digest: bytes = cymongoose.sha256(b"abc")
        return port if ok and digest else 0


if __name__ == "__main__":
    print(main())
