"""Seed document 002's handlers, each served as the whole application with the server's
default settings (``lifespan="auto"`` included), checked with httpx and websockets.

None of them knows the ``lifespan`` scope: the server must log one line and serve them
without lifespan (as uvicorn's auto mode does). The SSE handler loops ``send`` with
``asyncio.sleep(1)`` and stops on the exception ``send`` raises once the client has gone
(ASGI spec 2.4): its loop must end within 1 s of the client leaving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from apps import seed002
from apps.asgi_support import wait_for
from cymongoose.asgi import ClientDisconnected
from cymongoose.asgi.testing import ServerThread
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def served(app, caplog) -> Iterator[ServerThread]:
    """``app`` on a ServerThread with default settings; checks the one lifespan log line."""
    caplog.set_level(logging.INFO, logger="cymongoose.asgi")
    with ServerThread(app) as server:
        lines = [r for r in caplog.records if r.name == "cymongoose.asgi"]
        assert len(lines) == 1 and lines[0].levelno == logging.INFO, lines
        assert "'lifespan' protocol appears unsupported" in lines[0].getMessage()
        yield server
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_handle_http(caplog):
    with served(seed002.handle_http, caplog) as server:
        r = httpx.get(server.url + "/anything")
    assert (r.status_code, r.text) == (200, "Hello World")
    assert r.headers["content-type"] == "text/plain"


def test_parse_json_request(caplog):
    data = {"message": "test", "n": [1, 2, {"deep": "café"}]}
    with served(seed002.parse_json_request, caplog) as server:
        r = httpx.post(server.url + "/echo", json=data)
        empty = httpx.post(server.url + "/empty")
        bad = httpx.post(server.url + "/echo", content=b"{oops")
    assert r.status_code == 200
    assert r.json() == {"received": data, "method": "POST", "path": "/echo"}
    assert empty.json() == {"received": {}, "method": "POST", "path": "/empty"}
    assert (bad.status_code, bad.text) == (400, "Invalid JSON")


def test_user_signup_handler(caplog):
    with served(seed002.user_signup_handler, caplog) as server:
        r = httpx.post(server.url + "/signup", json={"email": "zoe@example.com"})
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"message": "User created successfully"}


def test_websocket_handler(caplog):
    with served(seed002.websocket_handler, caplog) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            ws.send("hello")
            assert ws.recv(10) == "Echo: hello"
            ws.send(b"\x00\xffbytes")
            assert ws.recv(10) == b"\x00\xffbytes"
        assert ws.close_code == 1000


def read_events(lines: Iterator[str], n: int) -> list[dict]:
    events = []
    for line in lines:
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
            if len(events) == n:
                return events
    raise AssertionError(f"the stream ended after {len(events)} of {n} events")


def test_sse_handler_streams(caplog):
    with served(seed002.sse_handler, caplog) as server:
        with httpx.stream("GET", server.url + "/sse", timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream"
            assert r.headers["cache-control"] == "no-cache"
            events = read_events(r.iter_lines(), 3)
    assert [e["type"] for e in events] == ["connected", "update", "update"]
    assert [e["message"] for e in events[1:]] == ["Update #1", "Update #2"]


def test_sse_handler_loop_ends_within_1s_of_the_client_leaving(caplog):
    ended: list[tuple[float, type[BaseException] | None]] = []

    async def recording_app(scope, receive, send):
        # Passes everything through; notes when the seed's handler returns or raises.
        exc_type = None
        try:
            await seed002.sse_handler(scope, receive, send)
        except BaseException as exc:
            exc_type = type(exc)
            raise
        finally:
            if scope["type"] == "http":
                ended.append((time.monotonic(), exc_type))

    with served(recording_app, caplog) as server:
        with httpx.Client(timeout=30) as client:
            with client.stream("GET", server.url + "/sse") as r:
                read_events(r.iter_lines(), 2)  # "connected", then update #1
                # The handler now sleeps 1 s before its next send. Leave halfway through,
                # so that "within 1 s" has room on a loaded machine.
                time.sleep(0.5)
                left_at = time.monotonic()
        wait_for(lambda: ended, "the SSE handler to end")
    ended_at, exc_type = ended[0]
    # The seed's loop breaks on the exception of its first send after the client left;
    # its last send (more_body=False) raises the same, out of the handler.
    assert exc_type is ClientDisconnected
    assert ended_at - left_at < 1.0, f"the loop ended {ended_at - left_at:.2f} s after"
