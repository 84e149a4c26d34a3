"""Starlette on cymongoose-asgi: WebSocket echo (text, bytes, close codes both ways, MB-sized
messages) and Server-Sent Events read incrementally with httpx."""

from __future__ import annotations

import json
import os

import httpx
import pytest

pytest.importorskip("starlette")
from apps.asgi_starlette_app import make_app  # noqa: E402
from apps.asgi_support import wait_for  # noqa: E402
from cymongoose.asgi.testing import ServerThread  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    app, _ = make_app()
    with ServerThread(app) as srv:
        yield srv


def ws_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def record(server) -> dict:
    return httpx.get(server.url + "/record").json()


# -- WebSocket ------------------------------------------------------------------------


def test_ws_echo_text(server):
    with connect(ws_url(server)) as ws:
        for text in ["hello", "", "héllo wörld — 你好 🚀"]:
            ws.send(text)
            assert ws.recv(10) == f"Echo: {text}"


def test_ws_echo_bytes(server):
    with connect(ws_url(server)) as ws:
        payload = bytes(range(256))
        ws.send(payload)
        assert ws.recv(10) == payload[::-1]


def test_ws_large_messages_both_ways(server):
    payload = os.urandom(4 * 1024 * 1024)
    with connect(ws_url(server), max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(60) == payload[::-1]
        text = "x" * (3 * 1024 * 1024)
        ws.send(text)
        assert ws.recv(60) == "Echo: " + text


def test_ws_server_close_code_and_reason(server):
    with connect(ws_url(server)) as ws:
        ws.send("close 4001 going away")
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
    assert ws.close_code == 4001
    assert ws.close_reason == "going away"


def test_ws_client_close_code_reaches_app(server):
    with connect(ws_url(server)) as ws:
        ws.send("ping")
        assert ws.recv(10) == "Echo: ping"
        ws.close(4002, "client leaving")
    wait_for(lambda: 4002 in record(server)["disconnect_codes"],
             "websocket.disconnect with code 4002")


def test_ws_accept_with_subprotocol_and_headers(server):
    url = f"ws://127.0.0.1:{server.port}/ws-negotiated"
    with connect(url, subprotocols=["v1.chat", "v2.chat"]) as ws:
        assert json.loads(ws.recv(10)) == {"offered": ["v1.chat", "v2.chat"],
                                           "chosen": "v2.chat"}
        assert ws.subprotocol == "v2.chat"
        assert ws.response.headers["x-room"] == "blue"
    with connect(url) as ws:  # nothing offered: no Sec-WebSocket-Protocol in the 101
        assert json.loads(ws.recv(10)) == {"offered": [], "chosen": None}
        assert ws.subprotocol is None
        assert "sec-websocket-protocol" not in ws.response.headers


def test_ws_and_http_interleaved(server):
    with connect(ws_url(server)) as a, connect(ws_url(server)) as b:
        a.send("from a")
        b.send(b"from b")
        assert httpx.get(server.url + "/record").status_code == 200
        assert b.recv(10) == b"b morf"
        assert a.recv(10) == "Echo: from a"


# -- Server-Sent Events -----------------------------------------------------------------


def next_event(lines) -> dict[str, str]:
    """Read one SSE event (fields up to the blank line) from an iterator of lines."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            return fields
        name, _, value = line.partition(": ")
        fields[name] = value
    raise AssertionError(f"stream ended inside an event: {fields}")


def publish(server, data: dict) -> int:
    return httpx.post(server.url + "/publish", json=data).json()["delivered_to"]


def test_sse_events_arrive_one_by_one(server):
    # Each event is published only after the previous one was read: the stream must be
    # flushed event by event, not held back until the response ends.
    with httpx.Client(timeout=15) as client:
        with client.stream("GET", server.url + "/events") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-cache"
            lines = r.iter_lines()
            assert next_event(lines) == {"event": "hello", "data": "connected"}
            for i in range(1, 4):
                assert publish(server, {"id": i, "msg": f"message {i}"}) >= 1
                event = next_event(lines)
                assert event["id"] == str(i)
                assert json.loads(event["data"]) == {"id": i, "msg": f"message {i}"}
            publish(server, {"end": True})
            assert list(lines) == []  # the response ended
    wait_for(lambda: "complete" in record(server)["sse_streams_ended"], "the stream to end")


def test_sse_client_disconnect_stops_the_stream(server):
    ended_before = record(server)["sse_streams_ended"].count("cancelled")
    with httpx.Client(timeout=15) as client:
        with client.stream("GET", server.url + "/events") as r:
            assert next_event(r.iter_lines()) == {"event": "hello", "data": "connected"}
    # The client is gone. Whether the app learns it from http.disconnect or from send()
    # raising OSError (ASGI spec 2.4), its generator must be stopped; events keep coming.

    def stopped() -> bool:
        publish(server, {"id": 0, "msg": "anyone there?"})
        return record(server)["sse_streams_ended"].count("cancelled") > ended_before

    wait_for(stopped, "the SSE generator to be stopped after the client left")
    wait_for(lambda: record(server)["subscribers"] == 0, "the subscriber to be removed")


# -- settings seen through Starlette ----------------------------------------------------


def test_ws_message_over_ws_max_size_closes_1009():
    app, _ = make_app()
    with ServerThread(app, ws_max_size=64 * 1024) as srv:
        with connect(f"ws://127.0.0.1:{srv.port}/ws", max_size=None) as ws:
            ws.send("a" * 1000)
            assert ws.recv(10) == "Echo: " + "a" * 1000
            ws.send(b"\0" * (64 * 1024 + 1))
            with pytest.raises(ConnectionClosed):
                ws.recv(10)
        assert ws.close_code == 1009  # RFC 6455 7.4.1: message too big


def test_lifespan_startup_failure_is_raised_from_start():
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette

    @asynccontextmanager
    async def lifespan(app):
        raise RuntimeError("database unreachable")
        yield

    with pytest.raises(RuntimeError):
        with ServerThread(Starlette(lifespan=lifespan)):
            pass
