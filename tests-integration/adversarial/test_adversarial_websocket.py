"""Hostile WebSocket clients against the ASGI server (issue 8); WSGI has no WebSocket.

The server runs with ``ws_max_size`` 64 KiB. Every case ends with
``server.assert_serves()``: the server still answers a normal request.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import websockets
from rawhttp import RawConnection

WS_MAX = 64 * 1024  # conftest.asgi_server's ws_max_size


def ws_frame(opcode: int, payload: bytes, fin: bool = True, declared: int | None = None) -> bytes:
    """A masked client frame (RFC 6455 section 5.2) with an all-zero mask; ``declared``
    overrides the payload length written in the header."""
    n = len(payload) if declared is None else declared
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def upgrade(c: RawConnection) -> None:
    c.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    resp = c.response(head=True, interim=True)
    assert resp is not None and resp.status == 101


def close_code(c: RawConnection) -> int | None:
    """Read frames until a close frame; its status code (None if the server just closed)."""
    while True:
        while len(c.buf) < 2:
            if not c._fill():
                return None
        n, hlen = c.buf[1] & 127, 2
        if n == 126:
            n, hlen = int.from_bytes(c.buf[2:4], "big"), 4
        elif n == 127:
            n, hlen = int.from_bytes(c.buf[2:10], "big"), 10
        frame = c._take(hlen + n)
        if frame is None:
            return None
        if frame[0] & 15 == 8:
            return int.from_bytes(frame[hlen:hlen + 2], "big") if n >= 2 else 1005


HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"


@pytest.mark.parametrize(
    "data",
    [
        HANDSHAKE + b"Sec-WebSocket-Version: 13\r\n\r\n",
        HANDSHAKE + b"Sec-WebSocket-Version: 8\r\n" + KEY + b"\r\n",
        HANDSHAKE + KEY + b"\r\n",
        HANDSHAKE + b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: !!!\r\n\r\n",
        HANDSHAKE + b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n",
        HANDSHAKE.replace(b"HTTP/1.1", b"HTTP/1.0") + b"Sec-WebSocket-Version: 13\r\n"
        + KEY + b"\r\n",
    ],
    ids=["no-key", "version-8", "no-version", "key-not-base64", "key-not-16-bytes",
         "http10"],
)
def test_invalid_handshake_not_upgraded(asgi_server, data):
    # RFC 6455 section 4.2.1: HTTP/1.1, a 16-byte base64 key and version 13, else 400
    # (426 with Sec-WebSocket-Version: 13 for an unsupported version, section 4.4).
    with RawConnection(asgi_server.port) as c:
        c.send(data)
        resp = c.response(head=True, interim=True)
    assert resp is not None and resp.status != 101
    if b"Version: 8" in data:
        assert resp.status == 426 and resp.header("sec-websocket-version") == "13"
    asgi_server.assert_serves()


def test_message_above_limit_closed_1009(asgi_server):
    async def client():
        async with websockets.connect(asgi_server.url.replace("http", "ws") + "/ws") as ws:
            await ws.send(b"a" * WS_MAX)  # at the limit: echoed
            echoed = await ws.recv()
            await ws.send(b"b" * (WS_MAX + 1))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            return echoed, info.value.rcvd.code if info.value.rcvd else None

    echoed, code = asyncio.run(client())
    assert echoed == b"a" * WS_MAX
    assert code == 1009
    assert asgi_server.tracker.wait("ws-close-1009", "/ws")
    asgi_server.assert_serves()


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "write-per-frame"])
def test_fragmented_message_above_limit_closed_1009(asgi_server, split):
    frames = [ws_frame(2, b"a" * 40_000, fin=False), ws_frame(0, b"b" * 40_000)]
    with RawConnection(asgi_server.port) as c:
        upgrade(c)
        if split:
            c.send(frames[0])
            c.send(frames[1])
        else:
            c.send(b"".join(frames))
        assert close_code(c) == 1009
    asgi_server.assert_serves()


@pytest.mark.parametrize("declared", [2**63 - 1, 2**62, WS_MAX + 1])
def test_frame_header_declaring_huge_length(asgi_server, declared):
    # Only the header and a few bytes are sent: the server must refuse on the header alone,
    # not wait for (or allocate) the declared payload.
    with RawConnection(asgi_server.port) as c:
        upgrade(c)
        c.send(ws_frame(2, b"abc", declared=declared))
        assert close_code(c) == 1009
    asgi_server.assert_serves()


@pytest.mark.parametrize(
    "frames, code",
    [
        (bytes([0x81, 5]) + b"hello", 1002),                      # unmasked client frame
        (bytes([0xc1, 0x83]) + b"\0\0\0\0abc", 1002),             # RSV1 without extension
        (ws_frame(3, b"x"), 1002),                                # reserved opcode
        (ws_frame(9, b"p" * 126), 1002),                          # control frame > 125
        (ws_frame(9, b"p", fin=False), 1002),                     # fragmented control
        (ws_frame(0, b"abc"), 1002),                              # continuation, no start
        (ws_frame(1, b"a", fin=False) + ws_frame(1, b"b"), 1002),  # new message mid-way
        (ws_frame(8, (999).to_bytes(2, "big")), 1002),            # invalid close code
        (ws_frame(8, b"\x03"), 1002),                             # 1-byte close payload
        (ws_frame(1, b"\xff\xfe"), 1007),                         # text not UTF-8
    ],
    ids=["unmasked", "rsv1", "reserved-opcode", "big-control", "fragmented-control",
         "orphan-continuation", "interleaved-message", "close-code-999", "close-1-byte",
         "text-not-utf8"],
)
def test_protocol_violation_fails_connection(asgi_server, frames, code):
    # RFC 6455 sections 5.1-5.5, 7.4.1, 8.1: the server fails the connection with 1002
    # (protocol error) or 1007 (invalid payload data); the app never sees the frame.
    with RawConnection(asgi_server.port) as c:
        upgrade(c)
        c.send(frames)
        assert close_code(c) == code
        assert c.closed_by_server()
    asgi_server.assert_serves()


def test_garbage_after_upgrade(asgi_server):
    with RawConnection(asgi_server.port) as c:
        upgrade(c)
        c.send(b"\x8f\x80\0\0\0\0" * 4 + b"GET / HTTP/1.1\r\n\r\n")  # reserved opcode 15
        code = close_code(c)
        assert code in (None, 1002)
        assert c.closed_by_server()
    asgi_server.assert_serves()


def test_client_vanishes_mid_frame(asgi_server):
    with RawConnection(asgi_server.port) as c:
        upgrade(c)
        c.send(ws_frame(2, b"x" * 1000)[:500])
    asgi_server.assert_serves()


def test_graceful_shutdown_closes_websockets_going_away(asgi_server):
    # RFC 6455 section 7.4.1: 1001 (going away) or, as uvicorn sends, 1012 (service
    # restart); the app is told (websocket.disconnect) instead of being cancelled.
    async def client():
        async with websockets.connect(asgi_server.url.replace("http", "ws") + "/ws") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            stopper = threading.Thread(target=asgi_server.stop)
            stopper.start()
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            await asyncio.to_thread(stopper.join)
            return info.value.rcvd.code if info.value.rcvd else None

    code = asyncio.run(client())
    assert code in (1001, 1012)
    assert asgi_server.tracker.count(f"ws-close-{code}", "/ws") == 1
