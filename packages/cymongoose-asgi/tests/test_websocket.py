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


def raw_handshake(port, version=b"13", key=b"dGhlIHNhbXBsZSBub25jZQ=="):
    """A socket that sent an upgrade request, and the head of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
                 b"Sec-WebSocket-Version: " + version + b"\r\n\r\n")
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
