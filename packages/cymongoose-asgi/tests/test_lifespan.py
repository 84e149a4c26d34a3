"""ASGI lifespan: startup/shutdown, failure, apps without lifespan (auto and on modes, as
uvicorn's), scope state."""

from __future__ import annotations

import asyncio
import logging

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


# -- auto mode (uvicorn's): apps that are not lifespan-aware ------------------------------


async def answer(send, body=b"served"):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def failing_lifespan_app(how):
    """An app that is not lifespan-aware and fails its lifespan call in one way."""

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await answer(send)
            return
        if how == "raise_before_receive":
            raise ValueError("no lifespan here")
        if how == "return_before_receive":
            return
        if how == "wrong_type_before_receive":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await receive()
        if how == "raise_after_receive":
            raise KeyError("method")
        if how == "wrong_type":
            await send({"type": "websocket.accept"})
        if how == "wrong_type_caught":
            try:
                await send({"type": "http.response.start", "status": 200, "headers": []})
            except RuntimeError:
                await receive()  # waits forever: stop() must not wait for it
        # "return": returns without answering lifespan.startup

    return app


FAILURES = ["raise_before_receive", "raise_after_receive", "wrong_type_before_receive",
            "wrong_type", "wrong_type_caught", "return_before_receive", "return"]


def lifespan_records(caplog):
    return [r for r in caplog.records if r.name == "cymongoose.asgi" and "lifespan" in
            r.getMessage()]


@pytest.mark.parametrize("how", FAILURES)
def test_auto_serves_an_app_that_fails_lifespan(how, caplog):
    caplog.set_level(logging.INFO, logger="cymongoose.asgi")
    with ServerThread(failing_lifespan_app(how)) as server:  # lifespan="auto": the default
        assert httpx.get(server.url + "/").text == "served"
    records = lifespan_records(caplog)
    assert [r.levelno for r in records] == [logging.INFO], [r.getMessage() for r in records]
    assert "appears unsupported" in records[0].getMessage()


@pytest.mark.parametrize("how", FAILURES)
def test_on_fails_startup_for_an_app_that_fails_lifespan(how):
    async def main():
        server = ASGIServer(failing_lifespan_app(how), lifespan="on")
        with pytest.raises(RuntimeError, match="ASGI lifespan startup failed: the app"):
            await server.start("http://127.0.0.1:0")
        with pytest.raises(RuntimeError, match="not started"):
            server.manager  # noqa: B018

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_explicit_startup_failed_stops_startup_in_both_modes(mode, caplog):
    async def main():
        server = ASGIServer(make_app([], fail_startup=True), lifespan=mode)
        with pytest.raises(RuntimeError, match="no db"):
            await server.start("http://127.0.0.1:0")

    asyncio.run(main())
    assert any(r.levelno == logging.ERROR and "no db" in r.getMessage()
               for r in lifespan_records(caplog))


def test_exception_after_startup_complete_is_an_error_not_a_failed_startup(caplog):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            raise RuntimeError("lifespan task crashed")
        await answer(send)

    with ServerThread(app) as server:
        assert httpx.get(server.url + "/").text == "served"
    assert [r.levelno for r in lifespan_records(caplog)] == [logging.ERROR]

