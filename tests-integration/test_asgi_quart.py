"""Quart on cymongoose-asgi: JSON routes, lifespan startup hooks and a WebSocket echo."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("quart")
from apps.asgi_quart_app import make_app  # noqa: E402
from cymongoose.asgi.testing import ServerThread  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    with ServerThread(make_app()) as srv:
        yield srv


def test_json_route_after_startup_hook(server):
    r = httpx.get(server.url + "/hello/quart", params={"times": "3"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    # "started" proves the server ran lifespan startup before serving.
    assert r.json() == {"hello": "quart", "times": 3, "lifecycle": ["started"]}


def test_json_body(server):
    payload = {"name": "Zoë", "values": [1.5, None, True], "nested": {"a": "b"}}
    r = httpx.post(server.url + "/echo", json=payload)
    assert r.status_code == 200
    assert r.json() == {"received": payload, "mimetype": "application/json"}


def test_404(server):
    assert httpx.get(server.url + "/nowhere").status_code == 404


def test_websocket_echo(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("bonjour")
        assert ws.recv(10) == "Echo: bonjour"
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv(10) == b"\x00\x01binary\xff"
        for i in range(10):
            ws.send(f"n{i}")
        assert [ws.recv(10) for _ in range(10)] == [f"Echo: n{i}" for i in range(10)]


def test_lifespan_shutdown_runs_when_the_server_stops():
    app = make_app()
    with ServerThread(app) as srv:
        assert httpx.get(srv.url + "/hello/x").json()["lifecycle"] == ["started"]
    assert app.config["LIFECYCLE"] == ["started", "stopped"]
