"""ASGI server behaviour beyond hello: streamed bodies, backpressure, limits, WebSocket
accept/reject, keep-alive timeout, proxy headers, root_path, access log, TLS.

Every test runs in both AsyncManager modes (integrated and threaded).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import ssl
import time

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client as ws_client
from cymongoose.asgi.testing import ServerThread

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024


@pytest.fixture(params=["integrated", "threaded"])
def mode(request):
    return request.param


def serve(app, mode, **options):
    return ServerThread(app, mode=mode, lifespan="off", **options)


def wait_until(done, timeout_s: float = 30.0) -> None:
    """Poll ``done()`` until true; AssertionError after ``timeout_s`` (a safety bound)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def digest_app(scope, receive, send):
    """Reads the body piece by piece; answers its size, sha256 and the number of pieces."""
    h = hashlib.sha256()
    size = pieces = 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        h.update(message["body"])
        size += len(message["body"])
        pieces += 1
        if not message["more_body"]:
            break
    body = json.dumps({"size": size, "sha256": h.hexdigest(), "pieces": pieces}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def test_large_body_streams_in_pieces(mode):
    data = bytes(range(256)) * (20 * MIB // 256)
    with serve(digest_app, mode) as server:
        r = httpx.post(server.url + "/", content=data, timeout=60)
    info = r.json()
    assert info["size"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["pieces"] > 1


def test_chunked_request_body(mode):
    parts = [b"a" * 1000, b"b" * 70000, b"c"]
    with serve(digest_app, mode) as server:
        r = httpx.post(server.url + "/", content=iter(parts))
    assert r.json()["size"] == 71001
    assert r.json()["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


def test_body_over_limit_is_413_and_server_keeps_serving(mode):
    with serve(digest_app, mode, max_body_size=1000) as server:
        r = httpx.post(server.url + "/", content=b"x" * 5000)
        assert r.status_code == 413
        assert httpx.post(server.url + "/", content=b"x" * 10).json()["size"] == 10


def test_expect_100_continue(mode):
    with serve(digest_app, mode) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b"hello")
            reply = s.recv(1000)
    assert reply.startswith(b"HTTP/1.1 200")
    assert b'"size": 5' in reply


def test_streaming_response_waits_for_slow_reader(mode):
    sent = []
    total = 64 * MIB
    piece = b"z" * 65536

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(total).encode())]})
        for _ in range(total // len(piece)):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            sent.append(len(piece))
        await send({"type": "http.response.body", "body": b""})

    with serve(app, mode) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(1.0)  # not reading: send() must have stopped well before the end
            assert sum(sent) < total // 2
            received = 0
            while True:
                chunk = s.recv(1 << 20)
                received += len(chunk)
                if not chunk or received >= total:
                    break
    assert sum(sent) == total


def test_head_keeps_content_length_without_body(mode):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"twelve bytes"})

    with serve(app, mode) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"twelve bytes"):
                chunk = s.recv(10000)
                assert chunk, data
                data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: 12" in head.lower()
    assert rest.startswith(b"HTTP/1.1 200")  # no body between the two responses
    assert rest.endswith(b"twelve bytes")


@pytest.mark.parametrize(
    "start",
    [
        {"type": "http.response.start", "status": 200, "headers": [(b"x-bad", b"a\r\nb: c")]},
        {"type": "http.response.start", "status": "200", "headers": []},
    ],
    ids=["crlf-header", "str-status"],
)
def test_invalid_response_is_500_never_on_the_wire(mode, start, caplog):
    async def app(scope, receive, send):
        if scope["path"] == "/ok":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send(start)
        await send({"type": "http.response.body", "body": b"body"})

    with serve(app, mode) as server:
        with caplog.at_level(logging.ERROR, logger="cymongoose.asgi"):
            r = httpx.get(server.url + "/")
        assert r.status_code == 500
        assert "x-bad" not in r.headers and "b" not in r.headers
        assert httpx.get(server.url + "/ok").text == "ok"
    assert caplog.records


def test_keep_alive_timeout_closes_idle_connection(mode):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with serve(app, mode, keep_alive_timeout_s=0.3) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(1000).startswith(b"HTTP/1.1 200")
            s.settimeout(5)
            assert s.recv(1000) == b""  # closed by the server after ~0.3 s idle


def test_slow_request_is_not_cut_by_keep_alive_timeout(mode):
    async def app(scope, receive, send):
        await asyncio.sleep(0.8)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    with serve(app, mode, keep_alive_timeout_s=0.2) as server:
        assert httpx.get(server.url + "/").text == "late"


def test_max_connections_answers_503(mode):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with serve(app, mode, max_connections=2) as server:
        mgr = server.server.manager
        known = len(mgr.connections)
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        try:
            wait_until(lambda: len(mgr.connections) == known + 2)  # both accepted
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
                assert s.recv(1000).startswith(b"HTTP/1.1 503")
        finally:
            for s in held:
                s.close()
        wait_until(lambda: len(mgr.connections) == known)  # the server saw them close
        assert httpx.get(server.url + "/").text == "ok"


async def scope_app(scope, receive, send):
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"],
                       "path": scope["path"], "root_path": scope["root_path"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(("allowed", "client", "scheme"), [
    ("127.0.0.1", "203.0.113.7", "https"),  # we are the trusted proxy: its headers apply
    ("10.9.9.9", "127.0.0.1", "http"),  # not trusted: the peer and the socket's scheme
])
def test_proxy_headers_apply_from_trusted_peers_only(mode, allowed, client, scheme):
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with serve(scope_app, mode, forwarded_allow_ips=allowed) as server:
        info = httpx.get(server.url + "/", headers=headers).json()
    assert (info["client"][0], info["scheme"]) == (client, scheme)


def test_root_path(mode):
    with serve(scope_app, mode, root_path="/api") as server:
        info = httpx.get(server.url + "/items").json()
    assert info["root_path"] == "/api"
    assert info["path"] == "/api/items"


def test_access_log(mode, caplog):
    with serve(scope_app, mode) as server:
        with caplog.at_level(logging.INFO, logger="cymongoose.access"):
            httpx.get(server.url + "/logged?x=1")

            def logged() -> bool:
                return any('"GET /logged?x=1 HTTP/1.1" 200' in r.getMessage()
                           for r in caplog.records if r.name == "cymongoose.access")

            wait_until(logged)


def test_tls(mode, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(keyfile)
    cert.cert_chain_pems[0].write_to_path(certfile)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(cafile)
    with serve(scope_app, mode, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as server:
        context = ssl.create_default_context(cafile=str(cafile))
        r = httpx.get(f"https://127.0.0.1:{server.port}/", verify=context)
    assert r.json()["scheme"] == "https"


# -- WebSocket ------------------------------------------------------------------------


async def ws_app(scope, receive, send):
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    path = scope["path"]
    if path == "/reject":
        await send({"type": "websocket.close"})
        return
    if path == "/boom":
        raise RuntimeError("app fails before accept")
    subprotocol = scope["subprotocols"][-1] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol,
                "headers": [(b"x-accepted", b"yes")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            ws_app.codes.append(message["code"])
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})


ws_app.codes = []


def test_websocket_subprotocol_and_headers(mode):
    with serve(ws_app, mode) as server:
        with ws_client.connect(f"ws://127.0.0.1:{server.port}/",
                               subprotocols=["chat", "superchat"]) as ws:
            assert ws.subprotocol == "superchat"
            assert ws.response.headers["x-accepted"] == "yes"
            ws.send("hi")
            assert ws.recv() == "hi"


@pytest.mark.parametrize("path,status", [("/reject", 403), ("/boom", 500)])
def test_websocket_refused_before_accept(mode, path, status):
    with serve(ws_app, mode) as server:
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            ws_client.connect(f"ws://127.0.0.1:{server.port}{path}")
        assert info.value.response.status_code == status
        assert httpx.get(server.url + "/").status_code in (400, 403, 404, 500)


def test_websocket_large_messages_both_ways(mode):
    data = bytes(range(256)) * (4 * MIB // 256)
    with serve(ws_app, mode) as server:
        with ws_client.connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
            ws.send(data)
            assert ws.recv() == data


def test_websocket_max_size_closes_1009(mode):
    ws_app.codes.clear()
    with serve(ws_app, mode, ws_max_size=1000) as server:
        with ws_client.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ws.send("x" * 100)
            assert ws.recv() == "x" * 100
            ws.send("y" * 5000)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        wait_until(lambda: ws_app.codes)
    assert ws_app.codes == [1009]


def test_websocket_ping_keeps_connection_alive(mode):
    with serve(ws_app, mode, ws_ping_interval_s=0.1, ws_ping_timeout_s=2.0) as server:
        with ws_client.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            time.sleep(0.6)  # the client answers the server's pings by itself
            ws.send("still here")
            assert ws.recv() == "still here"
