"""ASGI WebSocket with the `websockets` client."""

from __future__ import annotations

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


def test_disconnect_reaches_app():
    import threading

    disconnected = threading.Event()
    codes = []

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

    with ServerThread(app) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            ws.send("hi")
        assert disconnected.wait(5)
    assert codes == [1000]


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
