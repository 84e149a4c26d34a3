"""WebSocket server: upgrade in MG_EV_HTTP_MSG, echo on MG_EV_WS_MSG."""

from __future__ import annotations

import os

import pytest
from cymongoose import (
    MG_EV_HTTP_MSG,
    MG_EV_WS_MSG,
    MG_EV_WS_OPEN,
    WEBSOCKET_OP_BINARY,
    WEBSOCKET_OP_TEXT,
)
from websockets.sync.client import connect


@pytest.fixture
def ws_server(serve):
    state = {"opened": 0, "kept": [], "ops": [], "websocket": []}

    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/ws":
                c.ws_upgrade(data, {"X-Upgraded": "yes"})
            else:
                c.reply(404, b"not here")
        elif ev == MG_EV_WS_OPEN:
            state["opened"] += 1
            state["websocket"].append(c.is_websocket)
        elif ev == MG_EV_WS_MSG:
            op = data.flags & 0x0F
            state["ops"].append(op)
            state["kept"].append(data)
            c.ws_send(data.data, op)

    srv = serve(handler)
    srv.state = state
    return srv


def test_ws_text_echo(ws_server):
    with connect(ws_server.ws_url + "/ws") as ws:
        assert ws.response.headers["X-Upgraded"] == "yes"
        for msg in ("hello", "", "ünïcödé ✓"):
            ws.send(msg)
            assert ws.recv(timeout=5) == msg
    assert ws_server.state["opened"] == 1
    assert ws_server.state["websocket"] == [True]
    assert set(ws_server.state["ops"]) == {WEBSOCKET_OP_TEXT}


def test_ws_binary_echo(ws_server):
    with connect(ws_server.ws_url + "/ws") as ws:
        for msg in (b"\x00\x01\xff", bytes(range(256)) * 10):
            ws.send(msg)
            got = ws.recv(timeout=5)
            assert isinstance(got, bytes)
            assert got == msg
    assert set(ws_server.state["ops"]) == {WEBSOCKET_OP_BINARY}


@pytest.mark.parametrize("kind", ["binary", "text"])
def test_ws_1mb_message(ws_server, kind):
    payload = os.urandom(1 << 20)
    if kind == "text":
        payload = payload.hex()[: 1 << 20]
    with connect(ws_server.ws_url + "/ws", max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload
        ws.send("small after big")
        assert ws.recv(timeout=5) == "small after big"


def test_ws_many_messages_in_order(ws_server):
    with connect(ws_server.ws_url + "/ws") as ws:
        for i in range(200):
            ws.send(f"m{i}")
        assert [ws.recv(timeout=5) for _ in range(200)] == [f"m{i}" for i in range(200)]


def test_ws_message_invalid_after_handler(ws_server):
    with connect(ws_server.ws_url + "/ws") as ws:
        ws.send("x")
        ws.recv(timeout=5)
    [m] = ws_server.state["kept"]
    assert (m.data, m.text, m.flags) == (b"", "", 0)  # as 0.2.5: empty, never freed memory


def test_ws_non_upgrade_path_still_http(ws_server):
    import httpx

    r = httpx.get(ws_server.url + "/other")
    assert r.status_code == 404
    assert r.content == b"not here"
