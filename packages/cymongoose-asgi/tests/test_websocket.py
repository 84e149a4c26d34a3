"""ASGI WebSocket with the `websockets` client."""

from __future__ import annotations

import socket
import threading

import pytest
from cymongoose.asgi.testing import ServerThread
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(60)


async def echo_app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": "echo: " + message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


def test_echo_text_and_binary():
    with ServerThread(echo_app) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            ws.send("hello")
            assert ws.recv() == "echo: hello"
            ws.send("héllo wörld ✓")
            assert ws.recv() == "echo: héllo wörld ✓"
            ws.send(b"\x00\x01\x02")
            assert ws.recv() == b"\x02\x01\x00"
            big = "x" * 70_000
            ws.send(big)
            assert ws.recv() == "echo: " + big


def test_server_close_code():
    with ServerThread(echo_app) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            ws.send("close")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv()
    assert info.value.rcvd.code == 4000
    assert info.value.rcvd.reason == "bye"


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        assert piece, "connection closed early"
        data += piece
    return data


def read_frame(sock):
    """One server frame (servers do not mask): (opcode, payload)."""
    b0, b1 = recv_exactly(sock, 2)
    size = b1 & 127
    if size == 126:
        size = int.from_bytes(recv_exactly(sock, 2), "big")
    elif size == 127:
        size = int.from_bytes(recv_exactly(sock, 8), "big")
    return b0 & 15, recv_exactly(sock, size)


def client_frame(opcode, payload):
    """A masked client frame with a short payload (RFC 6455 section 5.2); zero mask."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def raw_handshake(port, version=b"13", key=b"dGhlIHNhbXBsZSBub25jZQ==", extra=b""):
    """A socket that sent an upgrade request (plus ``extra`` header lines), and the head
    of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
                 b"Sec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += recv_exactly(sock, 1)
    return sock, head


def disconnect_app(codes, disconnected):
    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                codes.append(message["code"])
                disconnected.set()
                return
    return app


def test_disconnect_reaches_app():
    codes = []
    disconnected = threading.Event()
    with ServerThread(disconnect_app(codes, disconnected)) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            ws.send("hi")
        assert disconnected.wait(5)
    assert codes == [1000]


@pytest.mark.parametrize(("payload", "code"), [
    ((4001).to_bytes(2, "big") + b"done", 4001),
    (b"", 1005),  # RFC 6455 section 7.1.5: a close frame without a code
])
def test_the_clients_close_code_reaches_app(payload, code):
    codes = []
    disconnected = threading.Event()
    with ServerThread(disconnect_app(codes, disconnected)) as server:
        sock, head = raw_handshake(server.port)
        with sock:
            assert head.startswith(b"HTTP/1.1 101 ")
            sock.sendall(client_frame(8, payload))
            assert read_frame(sock)[0] == 8  # the server answers the close
            assert disconnected.wait(10)
    assert codes == [code]


def test_text_that_is_not_utf8_closes_1007():
    codes = []
    disconnected = threading.Event()
    with ServerThread(disconnect_app(codes, disconnected)) as server:
        sock, _ = raw_handshake(server.port)
        with sock:
            sock.sendall(client_frame(1, b"\xff\xfe"))
            opcode, payload = read_frame(sock)
            assert disconnected.wait(10)
    assert (opcode, payload[:2]) == (8, (1007).to_bytes(2, "big"))
    assert codes == [1007]  # the app never saw the frame, only the close


def test_unanswered_pings_close_1011():
    codes = []
    disconnected = threading.Event()
    with ServerThread(disconnect_app(codes, disconnected), ws_ping_interval_s=0.1,
                      ws_ping_timeout_s=0.2) as server:
        sock, _ = raw_handshake(server.port)
        with sock:
            frames = [read_frame(sock)]
            while frames[-1][0] != 8:  # pings (9) until the close; never a pong from us
                frames.append(read_frame(sock))
    assert frames[0][0] == 9
    assert frames[-1][1] == (1011).to_bytes(2, "big") + b"keepalive ping timeout"


@pytest.mark.parametrize(("version", "key", "status"), [
    (b"8", b"dGhlIHNhbXBsZSBub25jZQ==", b"426"),  # section 4.4: name the version we speak
    (b"13", b"dG9vIHNob3J0", b"400"),  # a key of 9 bytes, not 16
])
def test_bad_handshake_is_refused(version, key, status):
    with ServerThread(echo_app) as server:
        sock, head = raw_handshake(server.port, version, key)
        with sock:
            assert head.split(b" ")[1] == status
            assert b"connection: close" in head.lower()
            if status == b"426":
                assert b"sec-websocket-version: 13" in head.lower()


def test_http_and_websocket_scope():
    scopes = []

    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["path"]})
        await send({"type": "websocket.close"})

    with ServerThread(app) as server:
        with connect(f"ws://127.0.0.1:{server.port}/chat/room?x=1") as ws:
            assert ws.recv() == "/chat/room"
    scope = scopes[0]
    assert scope["scheme"] == "ws"
    assert scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == []


def closing_app(messages, disconnected):
    """Accepts, then records the ``websocket.disconnect`` message."""
    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                messages.append(message)
                disconnected.set()
                return
    return app


@pytest.mark.parametrize(("payload", "code", "reason"), [
    ((4001).to_bytes(2, "big") + "fini, ciao ✓ 🚀".encode(), 4001, "fini, ciao ✓ 🚀"),
    ((1000).to_bytes(2, "big"), 1000, ""),
    (b"", 1005, ""),
])
def test_the_clients_close_reason_reaches_app(payload, code, reason):
    # HTTP & WebSocket spec 2.4: websocket.disconnect carries "reason" ("" when none).
    messages = []
    disconnected = threading.Event()
    with ServerThread(closing_app(messages, disconnected)) as server:
        sock, head = raw_handshake(server.port)
        with sock:
            sock.sendall(client_frame(8, payload))
            assert read_frame(sock) == (8, payload)  # the close, echoed
            assert disconnected.wait(10)
    assert messages == [{"type": "websocket.disconnect", "code": code, "reason": reason}]


@pytest.mark.parametrize("reason", [b"\xff", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf"],
                         ids=["invalid-byte", "truncated", "surrogate", "overlong"])
def test_close_reason_that_is_not_utf8_closes_1007(reason):
    # RFC 6455 section 8.1: a close reason is UTF-8; section 7.4.1: 1007 otherwise.
    messages = []
    disconnected = threading.Event()
    with ServerThread(closing_app(messages, disconnected)) as server:
        sock, _ = raw_handshake(server.port)
        with sock:
            sock.sendall(client_frame(8, (1000).to_bytes(2, "big") + reason))
            assert read_frame(sock) == (8, (1007).to_bytes(2, "big"))
            assert disconnected.wait(10)
    assert [(m["code"], m["reason"]) for m in messages] == [(1007, "")]


def test_permessage_deflate_is_agreed_by_default():
    with ServerThread(echo_app) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws", compression="deflate") as ws:
            assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
            text = "compressible " * 1000
            ws.send(text)
            assert ws.recv() == "echo: " + text


def test_permessage_deflate_can_be_turned_off():
    with ServerThread(echo_app, ws_per_message_deflate=False) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws", compression="deflate") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            ws.send("plain")
            assert ws.recv() == "echo: plain"


def test_app_answering_the_offer_itself_is_left_alone():
    # An app that puts its own Sec-WebSocket-Extensions in websocket.accept decides.
    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept",
                    "headers": [(b"sec-websocket-extensions", b"x-none")]})
        await send({"type": "websocket.close"})

    with ServerThread(app) as server:
        sock, head = raw_handshake(server.port,
                                   extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
        with sock:
            assert head.lower().count(b"sec-websocket-extensions") == 1
            assert b"x-none" in head
