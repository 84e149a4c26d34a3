"""Static files, query/header variables, Basic auth, WebSocket client, DNS resolve."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from cymongoose import (
    MG_EV_CLOSE,
    MG_EV_CONNECT,
    MG_EV_ERROR,
    MG_EV_HTTP_MSG,
    MG_EV_RESOLVE,
    MG_EV_WS_MSG,
    MG_EV_WS_OPEN,
    WEBSOCKET_OP_BINARY,
    Manager,
)
from test_http import raw_exchange


def run_until(mgr, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        mgr.poll(10)


@pytest.fixture
def web_root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "sub" / "data.json").write_text('{"a": 1}')
    (root / "big.bin").write_bytes(bytes(range(256)) * 4096)
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    return root


def test_serve_dir(serve, web_root):
    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            c.serve_dir(data, str(web_root), extra_headers="X-Static: 1\r\n")

    srv = serve(handler)
    r = httpx.get(srv.url + "/index.html")
    assert r.status_code == 200 and r.text == "<h1>home</h1>"
    assert r.headers["X-Static"] == "1"
    assert r.headers["Content-Type"].startswith("text/html")
    r = httpx.get(srv.url + "/sub/data.json")
    assert r.json() == {"a": 1}
    r = httpx.get(srv.url + "/big.bin")
    assert r.content == bytes(range(256)) * 4096
    assert httpx.get(srv.url + "/missing").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
    ],
)
def test_serve_dir_refuses_traversal(serve, web_root, path):
    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            c.serve_dir(data, str(web_root))

    srv = serve(handler)
    resp = raw_exchange(srv.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert b"TOP SECRET" not in resp
    assert not resp.startswith(b"HTTP/1.1 200")


def test_serve_file_and_args(serve, web_root):
    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            path = str(web_root / "sub" / "data.json")
            c.serve_file(data, path, mime_types="json=application/x-test")

    srv = serve(handler)
    r = httpx.get(srv.url + "/anything")
    assert r.status_code == 200 and r.json() == {"a": 1}
    assert r.headers["Content-Type"] == "application/x-test"


def test_query_and_header_var(serve):
    seen = {}

    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            seen["a"] = data.query_var("a")
            seen["b"] = data.query_var("b")
            seen["none"] = data.query_var("zz")
            seen["boundary"] = data.header_var("Content-Type", "boundary")
            seen["nohdr"] = data.header_var("X-Missing", "x")
            seen["novar"] = data.header_var("Content-Type", "charset")
            seen["msg"] = data
            c.reply(200, b"ok")

    srv = serve(handler)
    httpx.post(
        srv.url + "/p?a=1&b=h%C3%A9llo+w",
        content=b"x",
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert seen["a"] == "1"
    assert seen["b"] == "héllo w"
    assert seen["none"] is None
    assert seen["boundary"] == "XyZ"
    assert seen["nohdr"] is None and seen["novar"] is None
    assert seen["msg"].query_var("a") is None  # after the handler: empty, as 0.2.5


def test_http_basic_auth_client():
    got = {}
    with Manager() as mgr:

        def server(c, ev, data):
            if ev == MG_EV_HTTP_MSG:
                got["auth"] = data.header("Authorization")
                c.reply(200, b"ok")

        lst = mgr.listen("http://127.0.0.1:0", server)
        port = lst.local_addr[1]

        def client(c, ev, data):
            if ev == MG_EV_CONNECT:
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
                c.http_basic_auth("alice", "s3cr:et")
                c.send(b"\r\n")
            elif ev == MG_EV_HTTP_MSG:
                got["status"] = data.status()
                c.close()

        mgr.connect(f"http://127.0.0.1:{port}", client)
        run_until(mgr, lambda: "status" in got)
    assert got["status"] == 200
    assert got["auth"] == "Basic " + base64.b64encode(b"alice:s3cr:et").decode()


def test_ws_connect_client():
    events = []
    with Manager() as mgr:

        def server(c, ev, data):
            if ev == MG_EV_HTTP_MSG:
                c.ws_upgrade(data)
            elif ev == MG_EV_WS_MSG:
                c.ws_send(b"echo:" + data.data, data.flags & 0x0F)

        port = mgr.listen("http://127.0.0.1:0", server).local_addr[1]

        def client(c, ev, data):
            if ev == MG_EV_WS_OPEN:
                events.append(("open", data.status()))
                c.ws_send("hi")
                c.ws_send(b"\x00\xff", WEBSOCKET_OP_BINARY)
            elif ev == MG_EV_WS_MSG:
                events.append(("msg", data.data, data.flags & 0x0F))

        conn = mgr.ws_connect(f"ws://127.0.0.1:{port}/ws", client)
        run_until(mgr, lambda: len(events) >= 3)
        assert conn.is_websocket and conn.is_client
    assert events[0] == ("open", 101)
    assert ("msg", b"echo:hi", 1) in events
    assert ("msg", b"echo:\x00\xff", WEBSOCKET_OP_BINARY) in events


def test_ws_connect_bad_url():
    with Manager() as mgr:
        with pytest.raises(TypeError, match="url"):
            mgr.ws_connect(123)
    with pytest.raises(RuntimeError):
        mgr.ws_connect("ws://127.0.0.1:1/")


def test_resolve_localhost():
    events = []
    with Manager() as mgr:
        port = mgr.listen("tcp://127.0.0.1:0").local_addr[1]

        def client(c, ev, data):
            if ev in (MG_EV_RESOLVE, MG_EV_CONNECT, MG_EV_ERROR):
                events.append((ev, c.remote_addr if ev != MG_EV_ERROR else data))

        mgr.connect(f"tcp://localhost:{port}", client)
        run_until(mgr, lambda: any(e[0] in (MG_EV_CONNECT, MG_EV_ERROR) for e in events))
    kinds = [e[0] for e in events]
    assert MG_EV_RESOLVE in kinds and MG_EV_CONNECT in kinds, events
    ip, rport, _ = events[kinds.index(MG_EV_RESOLVE)][1]
    assert rport == port and ip in ("127.0.0.1", "::1")


def test_resolve_methods_and_closed_connection():
    closed = []
    with Manager() as mgr:

        def on_event(c, ev, d):
            if ev == MG_EV_CLOSE:
                closed.append(1)

        c = mgr.connect("tcp://localhost:9", on_event)
        c.resolve_cancel()
        with pytest.raises(ValueError, match="url"):
            c.resolve("tcp://a\0b:1")
        c.close()
        run_until(mgr, lambda: closed)
        for call in (
            lambda: c.resolve("tcp://localhost:1"),
            c.resolve_cancel,
            lambda: c.http_basic_auth("a", "b"),
        ):
            with pytest.raises(RuntimeError, match="closed"):
                call()
