"""When the client leaves: ``send()`` raises an OSError subclass (ASGI "HTTP & WebSocket"
spec 2.4), and ``stop()`` cancels app tasks that outlived their connection.

Each test runs server and client on one asyncio loop, so that what the app does after
``stop()`` returns can be seen. Both AsyncManager modes.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from cymongoose.asgi import ASGIServer, ClientDisconnected
from websockets.asyncio.client import connect

pytestmark = pytest.mark.timeout(60)

GET = b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n"
LIVENESS_S = 20.0  # a guard against hanging, far beyond what the work needs


@pytest.fixture(params=["integrated", "threaded"])
def mode(request):
    return request.param


async def start(app, mode, **options):
    server = ASGIServer(app, mode=mode, lifespan="off", **options)
    conn = await server.start("http://127.0.0.1:0")
    return server, conn.local_addr[1]


async def get_first_chunk_and_leave(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(GET)
    await asyncio.wait_for(reader.readuntil(b"first"), LIVENESS_S)
    writer.close()
    await writer.wait_closed()


def test_http_send_after_client_left_raises_oserror(mode, caplog):
    seen: list[object] = []
    ended = asyncio.Event()

    async def app(scope, receive, send):
        await receive()  # the request (no body)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            while True:
                await asyncio.sleep(0.01)
                try:
                    await send({"type": "http.response.body", "body": b"x", "more_body": True})
                except BaseException as exc:
                    seen.append(exc)
                    seen.append(await receive())
                    raise
        finally:
            ended.set()

    async def main():
        server, port = await start(app, mode)
        try:
            await get_first_chunk_and_leave(port)
            await asyncio.wait_for(ended.wait(), LIVENESS_S)
        finally:
            await server.stop()

    asyncio.run(main())
    exc, message = seen
    assert isinstance(exc, OSError) and type(exc) is ClientDisconnected
    assert message == {"type": "http.disconnect"}
    # The client leaving is not an application error: nothing logged above DEBUG.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_websocket_send_after_client_left_raises_oserror(mode):
    seen: dict[str, object] = {}
    ended = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        seen["disconnect"] = await receive()
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except BaseException as exc:
            seen["send"] = exc
        await send({"type": "websocket.close", "code": 1000})  # a no-op, as uvicorn
        ended.set()

    async def main():
        server, port = await start(app, mode)
        try:
            async with connect(f"ws://127.0.0.1:{port}/"):
                pass
            await asyncio.wait_for(ended.wait(), LIVENESS_S)
        finally:
            await server.stop()

    asyncio.run(main())
    assert seen["disconnect"]["type"] == "websocket.disconnect"  # type: ignore[index]
    assert isinstance(seen["send"], OSError) and type(seen["send"]) is ClientDisconnected


def test_stop_cancels_the_tasks_of_connections_already_closed(mode):
    """An app that ignores its client leaving keeps running: stop() cancels it after the
    graceful timeout, and it sends nothing after stop() returned."""
    sends = 0
    errors = 0
    cancelled = asyncio.Event()

    async def app(scope, receive, send):
        nonlocal sends, errors
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        try:
            while True:
                await asyncio.sleep(0.01)
                try:
                    await send({"type": "http.response.body", "body": b"x", "more_body": True})
                except OSError:
                    errors += 1  # the client left; this app carries on regardless
                sends += 1
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main():
        server, port = await start(app, mode, graceful_timeout_s=0.2)
        await get_first_chunk_and_leave(port)
        while not errors:  # the server saw the client leave
            await asyncio.sleep(0.01)
        await asyncio.wait_for(server.stop(), LIVENESS_S)
        assert cancelled.is_set()
        after_stop = sends
        await asyncio.sleep(0.3)
        return after_stop

    after_stop = asyncio.run(asyncio.wait_for(main(), LIVENESS_S * 2))
    assert sends == after_stop
