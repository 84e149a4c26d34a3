"""Starlette WebSocket echo on cymongoose-asgi (the example from the ASGI docs)."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("starlette")
from cymongoose.asgi.testing import ServerThread  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.timeout(120)


async def homepage(request):
    return PlainTextResponse("Hello!")


async def ws_endpoint(websocket: WebSocket):
    await websocket.accept()
    while True:
        data = await websocket.receive_text()
        await websocket.send_text(f"Echo: {data}")


app = Starlette(routes=[Route("/", homepage), WebSocketRoute("/ws", ws_endpoint)])


@pytest.fixture(scope="module")
def server():
    with ServerThread(app) as srv:
        yield srv


def test_homepage(server):
    r = httpx.get(server.url + "/")
    assert (r.status_code, r.text) == (200, "Hello!")


def test_echo_text(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        for i in range(20):
            ws.send(f"message {i}")
            assert ws.recv() == f"Echo: message {i}"


def test_echo_non_ascii(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        text = "héllo wörld — 你好 🚀"
        ws.send(text)
        assert ws.recv() == "Echo: " + text


def test_echo_70kb(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None) as ws:
        text = "abcdefghij" * 7000
        ws.send(text)
        assert ws.recv() == "Echo: " + text


def test_http_still_served_after_websockets(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("x")
        assert ws.recv() == "Echo: x"
    assert httpx.get(server.url + "/").text == "Hello!"
