"""A small program over the core API; `nox -s typecheck` runs mypy --strict on it."""

from __future__ import annotations

import socket

import cymongoose
from cymongoose import (
    EV_HTTP_BODY,
    EV_WRITABLE,
    MG_EV_HTTP_MSG,
    MG_EV_WS_MSG,
    Connection,
    HttpMessage,
    Manager,
    WsMessage,
)

uploads: dict[int, list[bytes]] = {}


def handler(conn: Connection, ev: int, data: object) -> None:
    if ev == MG_EV_HTTP_MSG and isinstance(data, HttpMessage):
        if data.uri == "/ws":
            key: str | None = data.header("Sec-WebSocket-Key")
            if key is not None:
                conn.ws_accept(key, [("Sec-WebSocket-Protocol", "chat")],
                               deflate_offer=data.header("Sec-WebSocket-Extensions"))
                compressed: bool = conn.ws_extensions.startswith("permessage-deflate")
                conn.userdata = compressed
            return
        if data.more_body:  # the body follows as EV_HTTP_BODY events
            uploads[conn.id] = []
            return
        name: str | None = data.header("Host")
        conn.reply(200, f"hello {name}".encode(), {"X-Sample": "1"})
    elif ev == EV_HTTP_BODY and isinstance(data, bytes):
        uploads[conn.id].append(data)
        if not data:
            digest: bytes = cymongoose.sha256(b"".join(uploads.pop(conn.id)))
            conn.send_response(200, [("Content-Type", "text/plain")], digest.hex())
            conn.notify_writable(0)
    elif ev == EV_WRITABLE:
        conn.resume_reading()
    elif ev == MG_EV_WS_MSG and isinstance(data, WsMessage):
        conn.ws_send(data.data, cymongoose.WEBSOCKET_OP_BINARY)


def main() -> int:
    with Manager(handler, enable_wakeup=True) as mgr:
        listener: Connection = mgr.listen("http://127.0.0.1:0")
        listener.configure_http_server(max_body_size=1 << 20, keep_alive_timeout_ms=2000)
        with socket.create_server(("127.0.0.1", 0)) as sock:
            inherited = mgr.listen("http://", fd=sock.fileno())
            inherited.configure_http_server(max_connections=100, ws_max_size=1 << 16)
        addr = listener.local_addr  # None once the connection is closed
        port: int = addr[1] if addr is not None else 0
        timer = mgr.timer_add(10, lambda: None, repeat=True)
        mgr.poll(0)
        timer.cancel()
        ok: bool = mgr.wakeup(listener.id, b"payload")
        digest: bytes = cymongoose.sha256(b"abc")
        tls = cymongoose.TlsOpts(ca=b"", password="pw", min_version="TLSv1.3",
                                 alpn=["http/1.1"]) if cymongoose.TLS_LIBRARY else None
        versions: str = tls.min_version if tls is not None else ""
        return port if ok and digest and versions else 0


if __name__ == "__main__":
    print(main())
