"""ASGI lifespan: startup/shutdown, failure, apps without lifespan, scope state."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cymongoose.asgi import ASGIServer
from cymongoose.asgi.testing import ServerThread

pytestmark = pytest.mark.timeout(60)


def make_app(events, fail_startup=False):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if fail_startup:
                        await send({"type": "lifespan.startup.failed", "message": "no db"})
                        return
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["state"]["db"].encode()})

    return app


def test_startup_state_and_shutdown():
    events = []
    with ServerThread(make_app(events)) as server:
        assert events == ["lifespan.startup"]
        assert httpx.get(server.url + "/").text == "connected"
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_startup_failure_raises():
    async def main():
        server = ASGIServer(make_app([], fail_startup=True))
        with pytest.raises(RuntimeError, match="no db"):
            await server.start("http://127.0.0.1:0")

    asyncio.run(main())


def test_app_without_lifespan():
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with ServerThread(app) as server:
        assert httpx.get(server.url + "/").status_code == 204


def test_lifespan_off():
    events = []
    app = make_app(events)

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            scope["state"]["db"] = "none"
        await app(scope, receive, send)

    with ServerThread(wrapped, lifespan="off") as server:
        assert httpx.get(server.url + "/").text == "none"
    assert events == []
