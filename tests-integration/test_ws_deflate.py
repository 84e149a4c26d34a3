"""WebSocket compression (permessage-deflate, RFC 7692) and close reasons with real
clients (websockets, aiohttp) against the ASGI server (a Starlette app) and the core's
WebSocket server, and the core's client against websockets' and aiohttp's servers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

pytest.importorskip("starlette")
aiohttp = pytest.importorskip("aiohttp")
import websockets  # noqa: E402
from aiohttp import web  # noqa: E402
from cymongoose import (  # noqa: E402
    MG_EV_HTTP_MSG,
    MG_EV_WS_MSG,
    MG_EV_WS_OPEN,
    WEBSOCKET_OP_TEXT,
    Manager,
)
from cymongoose.asgi.testing import ServerThread  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory,
)
from websockets.sync.client import connect  # noqa: E402
from websockets.sync.server import serve as ws_serve  # noqa: E402

pytestmark = pytest.mark.timeout(120)

TEXT = "a compressible sentence for permessage-deflate. " * 400  # ~19 KB
LIMIT = 1 << 16  # ws_max_size of both servers here


class Closes:
    """What the apps saw when clients left: (code, reason) per connection."""

    def __init__(self):
        self.seen: list[tuple[int, str]] = []
        self.event = threading.Event()

    def add(self, code, reason):
        self.seen.append((code, reason))
        self.event.set()

    def wait(self, n=1, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < n and time.monotonic() < deadline:
            self.event.wait(0.05)
        return self.seen


def starlette_app(closes: Closes):
    async def echo(websocket: WebSocket):
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    closes.add(message["code"], message["reason"])
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        except WebSocketDisconnect as exc:
            closes.add(exc.code, exc.reason)

    return Starlette(routes=[WebSocketRoute("/ws", echo)])


class CoreServer:
    """The core's WebSocket server: ws_accept on its HTTP server, echo, polled by a
    thread (the upgrade with per_message_deflate, as a core user writes it)."""

    def __init__(self, closes: Closes):
        self.errors: list[BaseException] = []  # what handlers raised (none expected)
        self.mgr = Manager(error_handler=self.errors.append)

        def handler(conn, ev, data):
            if ev == MG_EV_HTTP_MSG:
                conn.ws_accept(data.header("Sec-WebSocket-Key"),
                               deflate_offer=data.header("Sec-WebSocket-Extensions"))
            elif ev == MG_EV_WS_MSG:
                conn.ws_send(data.data, data.flags & 15)

        self.listener = self.mgr.listen("http://127.0.0.1:0", handler)
        self.listener.configure_http_server(ws_max_size=LIMIT)
        self.port = self.listener.local_addr[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.mgr.poll(10)

    def close(self):
        self._stop.set()
        self._thread.join(10)
        self.mgr.close()
        assert self.errors == []


@pytest.fixture(scope="module", params=["asgi", "core"])
def server(request):
    """``(ws_url, closes)`` of a compression-capable echo server; ``closes`` is None
    for the core's (no app-level disconnect)."""
    closes = Closes()
    if request.param == "asgi":
        with ServerThread(starlette_app(closes), ws_max_size=LIMIT) as srv:
            yield f"ws://127.0.0.1:{srv.port}/ws", closes
    else:
        srv = CoreServer(closes)
        try:
            yield f"ws://127.0.0.1:{srv.port}/ws", None
        finally:
            srv.close()


@pytest.mark.parametrize("factory", [
    ClientPerMessageDeflateFactory(client_max_window_bits=True),  # websockets' default
    ClientPerMessageDeflateFactory(server_max_window_bits=10, client_max_window_bits=9),
    ClientPerMessageDeflateFactory(server_no_context_takeover=True,
                                   client_no_context_takeover=True),
    ClientPerMessageDeflateFactory(server_max_window_bits=9,
                                   server_no_context_takeover=True),
], ids=["default", "window-bits", "no-context-takeover", "small-window-no-takeover"])
def test_websockets_client(server, factory):
    url, _ = server
    with connect(url, extensions=[factory], compression=None, max_size=None) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith(
            "permessage-deflate")
        assert len(ws.protocol.extensions) == 1  # the client agreed to the answer
        for message in (TEXT, TEXT[:100], "", "ünïcödé ✓ " * 50, TEXT.encode()):
            ws.send(message)
            assert ws.recv(timeout=10) == message


@pytest.mark.parametrize("bits", [15, 10, 9])
def test_aiohttp_client(server, bits):
    url, _ = server

    async def client():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, compress=bits) as ws:
                agreed = ws._response.headers.get("Sec-WebSocket-Extensions")
                echoes = []
                for message in (TEXT, "short", TEXT * 2):
                    await ws.send_str(message)
                    echoes.append((await ws.receive(timeout=10)).data)
                await ws.send_bytes(TEXT.encode())
                echoes.append((await ws.receive(timeout=10)).data)
                return agreed, ws.compress, echoes

    agreed, compress, echoes = asyncio.run(client())
    assert agreed.startswith("permessage-deflate") and compress
    assert echoes == [TEXT, "short", TEXT * 2, TEXT.encode()]


def test_zip_bomb_closes_1009_and_server_goes_on(server):
    # 4 MiB of zeros that the client compresses to a few KiB: the limit applies to the
    # message once inflated (close 1009, RFC 6455 section 7.4.1).
    url, closes = server
    before = len(closes.seen) if closes is not None else 0
    with connect(url, compression="deflate", max_size=None) as ws:
        ws.send(bytes(4 << 20))
        with pytest.raises(websockets.ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    if closes is not None:
        assert closes.wait(before + 1)[before:] == [(1009, "")]
    with connect(url, compression="deflate") as ws:  # still serving
        ws.send(b"\0" * (LIMIT // 2))
        assert ws.recv(timeout=10) == b"\0" * (LIMIT // 2)


def test_close_reason_reaches_the_app(server):
    url, closes = server
    if closes is None:
        pytest.skip("the core's server has no app-level disconnect message")
    before = len(closes.seen)
    with connect(url, compression="deflate") as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        ws.close(4004, "bis später ✓")
    assert closes.wait(before + 1)[before:] == [(4004, "bis später ✓")]


def test_close_reason_not_utf8_is_answered_1007(server):
    url, closes = server
    before = len(closes.seen) if closes is not None else 0

    async def client():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, compress=15) as ws:
                # aiohttp sends the reason bytes as they are: not UTF-8 here.
                await ws.close(code=4000, message=b"\xff\xfe")
                return ws.close_code

    assert asyncio.run(client()) == 1007
    if closes is not None:
        assert closes.wait(before + 1)[before:] == [(1007, "")]


# -- the core's client against other servers ----------------------------------------

def core_client(url, messages):
    """Manager.ws_connect(per_message_deflate=True): send ``messages`` once open and
    collect what comes back: (ws_extensions, [(rsv1, op, data)])."""
    events: list = []
    agreed = []
    mgr = Manager()
    try:
        def handler(conn, ev, data):
            if ev == MG_EV_WS_OPEN:
                agreed.append(conn.ws_extensions)
                for message in messages:
                    conn.ws_send(message, WEBSOCKET_OP_TEXT)
            elif ev == MG_EV_WS_MSG:
                events.append((bool(data.flags & 0x40), data.flags & 15, data.data))

        mgr.ws_connect(url, handler, per_message_deflate=True)
        deadline = time.monotonic() + 10
        while len(events) < len(messages) and time.monotonic() < deadline:
            mgr.poll(20)
    finally:
        mgr.close()
    return agreed, events


def test_core_client_against_websockets_server():
    seen = []

    def echo(ws):
        seen.append(ws.protocol.extensions)
        for message in ws:
            ws.send(message)

    with ws_serve(echo, "127.0.0.1", 0, compression="deflate", max_size=None) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            agreed, events = core_client(
                f"ws://127.0.0.1:{srv.socket.getsockname()[1]}/", [TEXT, "x", TEXT * 3])
        finally:
            srv.shutdown()
            thread.join(10)
    assert agreed[0].startswith("permessage-deflate")
    assert len(seen[0]) == 1
    # Inflated for the handler, RSV1 cleared.
    assert events == [(False, 1, TEXT.encode()), (False, 1, b"x"), (False, 1, TEXT.encode() * 3)]


def test_core_client_against_aiohttp_server():
    compressed = []

    async def echo(request):
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        compressed.append(ws.compress)
        async for msg in ws:
            await ws.send_str(msg.data)
        return ws

    ready = threading.Event()
    box: dict = {}

    def run_server():
        async def main():
            app = web.Application()
            app.router.add_get("/", echo)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            box["port"] = runner.addresses[0][1]
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()
            await runner.cleanup()

        box["loop"] = asyncio.new_event_loop()
        box["loop"].run_until_complete(main())

    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        agreed, events = core_client(f"ws://127.0.0.1:{box['port']}/", [TEXT, "y"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
    assert agreed[0].startswith("permessage-deflate") and compressed[0]
    assert [e[2] for e in events] == [TEXT.encode(), b"y"]
