"""WebSocket permessage-deflate (RFC 7692) in the core: the server side (ws_upgrade,
ws_accept) and the client side (Manager.ws_connect), checked on the wire."""

from __future__ import annotations

import socket
import threading
import time
import zlib

import pytest
from cymongoose import (
    MG_EV_ERROR,
    MG_EV_HTTP_MSG,
    MG_EV_WS_CTL,
    MG_EV_WS_MSG,
    MG_EV_WS_OPEN,
    WEBSOCKET_OP_TEXT,
    Manager,
)
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.sync.client import connect
from websockets.sync.server import serve as ws_serve

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
TEXT = "permessage-deflate " * 500  # compresses well: ~9.5 KB to a few dozen bytes


def echo_app(received, *, accept=False, deflate=True):
    """Echo server: ws_upgrade (mongoose's HTTP) or ws_accept (the core's HTTP server)."""
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if accept:
                offer = data.header("Sec-WebSocket-Extensions")
                conn.ws_accept(data.header("Sec-WebSocket-Key"),
                               deflate_offer=offer if deflate else None)
            else:
                conn.ws_upgrade(data, per_message_deflate=deflate)
        elif ev == MG_EV_WS_MSG:
            received.append((data.flags, data.data))
            conn.ws_send(data.data, data.flags & 15)
    return handler


@pytest.fixture
def serve(serve):
    """conftest's ``serve``, and no handler may have raised (error_handler) by the end."""
    servers = []

    def start(*args, **kwargs):
        srv = serve(*args, **kwargs)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        assert srv.errors == []


@pytest.fixture(params=["ws_upgrade", "ws_accept"])
def server(request, serve):
    """An echo server agreeing permessage-deflate; ``.received``: (flags, data) seen."""
    received: list = []
    if request.param == "ws_accept":
        srv = serve(echo_app(received, accept=True), http_server={"ws_max_size": 1 << 16})
    else:
        srv = serve(echo_app(received))
    srv.received = received
    return srv


def handshake(port, extensions=None):
    """A raw client socket after the upgrade: (socket, response head, bytes after it)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    offer = b"Sec-WebSocket-Extensions: " + extensions.encode() + b"\r\n" if extensions else b""
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade"
                 b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
                 + offer + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        piece = sock.recv(4096)
        assert piece, "closed during the handshake"
        buf += piece
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, head.decode("latin-1"), rest


def extension_header(head):
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-extensions":
            return value.strip()
    return None


def frame(op, payload, *, fin=True, rsv1=False):
    """A masked client frame (zero mask key: the payload goes as it is)."""
    b0 = op | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class Reader:
    """Server frames from a raw socket: ``next()`` -> (first byte, payload)."""

    def __init__(self, sock, rest=b""):
        self.sock, self.buf = sock, rest

    def _need(self, n):
        while len(self.buf) < n:
            piece = self.sock.recv(65536)
            assert piece, "connection closed early"
            self.buf += piece

    def next(self):
        self._need(2)
        b0, size, hlen = self.buf[0], self.buf[1] & 127, 2
        if size == 126:
            self._need(4)
            size, hlen = int.from_bytes(self.buf[2:4], "big"), 4
        elif size == 127:
            self._need(10)
            size, hlen = int.from_bytes(self.buf[2:10], "big"), 10
        self._need(hlen + size)
        payload, self.buf = self.buf[hlen:hlen + size], self.buf[hlen + size:]
        return b0, payload

    def close_code(self):
        while True:
            try:
                b0, payload = self.next()
            except (AssertionError, ConnectionError):
                return None
            if b0 & 15 == 8:
                return int.from_bytes(payload[:2], "big")


def deflate(data, bits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(payload, d=None):
    d = d or zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def test_websockets_client_with_compression(server):
    with connect(server.ws_url + "/ws", compression="deflate") as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
        for message in (TEXT, "", "ünïcödé ✓", TEXT.encode() * 3):
            ws.send(message)
            assert ws.recv(timeout=10) == message
    # The handler saw each message inflated, RSV1 cleared.
    assert [d for _, d in server.received] == [TEXT.encode(), b"", "ünïcödé ✓".encode(),
                                               TEXT.encode() * 3]
    assert all(not flags & 0x40 for flags, _ in server.received)


def test_compressed_on_the_wire_both_ways(server):
    sock, head, rest = handshake(server.port, "permessage-deflate; client_max_window_bits")
    with sock:
        assert extension_header(head) == "permessage-deflate"
        sent = deflate(TEXT.encode())
        assert len(sent) < 200
        sock.sendall(frame(1, sent, rsv1=True))
        b0, payload = Reader(sock, rest).next()
    assert b0 == 0x80 | 0x40 | 1  # FIN, RSV1 (compressed), text
    assert len(payload) < 200 and inflate(payload) == TEXT.encode()


def test_not_agreed_unless_asked(serve):
    # 0.2.x programs: ws_upgrade/ws_accept without the keyword agree nothing and send
    # messages as they are, whatever the client offers.
    for app, opts in ((echo_app([], deflate=False), {}),
                      (echo_app([], accept=True, deflate=False), {"http_server": {}})):
        srv = serve(app, **opts)
        sock, head, rest = handshake(srv.port, "permessage-deflate")
        with sock:
            assert extension_header(head) is None
            sock.sendall(frame(1, b"plain"))
            assert Reader(sock, rest).next() == (0x81, b"plain")


@pytest.mark.parametrize(("offer", "answer"), [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits=10", "permessage-deflate"),
    ("permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10"),
    ('permessage-deflate; server_max_window_bits="11"',
     "permessage-deflate; server_max_window_bits=11"),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    # Offers we cannot take are declined (RFC 7692 section 7.1), the next one is tried.
    ("permessage-deflate; server_max_window_bits=16", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; client_max_window_bits=7", None),
    ("permessage-deflate; server_no_context_takeover=1", None),
    ("permessage-deflate; mystery=1", None),
    ("permessage-deflate; client_max_window_bits; client_max_window_bits", None),
    ("permessage-deflate; mystery, permessage-deflate; server_max_window_bits=9",
     "permessage-deflate; server_max_window_bits=9"),
    ("x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
    ("x-webkit-deflate-frame", None),
])
def test_negotiation(server, offer, answer):
    sock, head, rest = handshake(server.port, offer)
    with sock:
        assert extension_header(head) == answer
        # Whatever was agreed, messages still go through.
        sock.sendall(frame(1, b"after " + offer.encode()))
        b0, payload = Reader(sock, rest).next()
        data = inflate(payload) if b0 & 0x40 else payload
        assert data == b"after " + offer.encode()
        assert bool(b0 & 0x40) == (answer is not None)


@pytest.mark.parametrize("takeover", [True, False])
def test_server_context_takeover(server, takeover):
    offer = "permessage-deflate" + ("" if takeover else "; server_no_context_takeover")
    sock, _, rest = handshake(server.port, offer)
    reader = Reader(sock, rest)
    message = b"the same sentence, sent twice over one connection. " * 4
    with sock:
        payloads = []
        for _ in range(2):
            sock.sendall(frame(2, message))
            b0, payload = reader.next()
            assert b0 & 0x40
            payloads.append(payload)
    if takeover:  # the second refers back to the first: one decoder for the connection
        assert len(payloads[1]) < len(payloads[0])
        d = zlib.decompressobj(-15)
        assert [inflate(p, d) for p in payloads] == [message, message]
    else:  # each stands alone (RFC 7692 section 7.1.1.1)
        assert payloads[0] == payloads[1]
        assert inflate(payloads[1]) == message


def test_server_window_of_8_bits_sends_uncompressed(server):
    # zlib cannot write raw deflate with a 256-byte window: we agree and send messages
    # uncompressed (RSV1 clear), which RFC 7692 allows per message.
    sock, head, rest = handshake(server.port, "permessage-deflate; server_max_window_bits=8")
    with sock:
        assert extension_header(head) == "permessage-deflate; server_max_window_bits=8"
        sock.sendall(frame(1, deflate(TEXT.encode()), rsv1=True))
        b0, payload = Reader(sock, rest).next()
    assert (b0, payload) == (0x81, TEXT.encode())


def test_fragmented_compressed_message(server):
    # RSV1 on the first frame only (RFC 7692 section 6.1); a ping may come in between.
    sock, _, rest = handshake(server.port, "permessage-deflate")
    compressed = deflate(TEXT.encode() * 2)
    parts = [compressed[:5], compressed[5:20], compressed[20:]]
    with sock:
        sock.sendall(frame(1, parts[0], fin=False, rsv1=True) + frame(9, b"p")
                     + frame(0, parts[1], fin=False) + frame(0, parts[2]))
        reader = Reader(sock, rest)
        assert reader.next() == (0x8A, b"p")  # the pong
        b0, payload = reader.next()
    assert b0 & 0x40 and inflate(payload) == TEXT.encode() * 2


@pytest.mark.parametrize("frames", [
    frame(1, b"a", fin=False, rsv1=True) + frame(0, b"b", rsv1=True),  # RSV1 continuation
    frame(9, b"p", rsv1=True),                                          # RSV1 control frame
    frame(1, b"x", rsv1=True).replace(b"\xc1", b"\xe1", 1),             # RSV2 too
], ids=["continuation", "control", "rsv2"])
def test_rsv_bits_out_of_place_fail_1002(serve, frames):
    srv = serve(echo_app([], accept=True), http_server={"ws_max_size": 1 << 16})
    sock, _, rest = handshake(srv.port, "permessage-deflate")
    with sock:
        sock.sendall(frames)
        assert Reader(sock, rest).close_code() == 1002


def test_data_that_is_not_deflate_fails_1002(server):
    sock, _, rest = handshake(server.port, "permessage-deflate")
    with sock:
        sock.sendall(frame(1, b"\xff\xff\xff\xff not deflate", rsv1=True))
        assert Reader(sock, rest).close_code() == 1002


@pytest.mark.parametrize(("opts", "inflated"), [
    ({"http_server": {"ws_max_size": 1 << 16}}, 1 << 20),  # the server's ws_max_size
    ({}, 17 << 20),                                        # ws_upgrade: 16 MiB
])
def test_zip_bomb_closes_1009_and_server_goes_on(serve, opts, inflated):
    received, ctl = [], []
    app = echo_app(received, accept=bool(opts))

    def handler(conn, ev, data):
        if ev == MG_EV_WS_CTL:
            ctl.append(data.data)
        app(conn, ev, data)

    srv = serve(handler, **opts)
    bomb = deflate(bytes(inflated))
    assert len(bomb) < 20_000  # far below the limit on the wire
    sock, _, rest = handshake(srv.port, "permessage-deflate")
    with sock:
        sock.sendall(frame(2, bomb, rsv1=True))
        assert Reader(sock, rest).close_code() == 1009
    assert received == [] and (1009).to_bytes(2, "big") in ctl
    with connect(srv.ws_url + "/ws", compression="deflate") as ws:  # still serving
        ws.send(TEXT)
        assert ws.recv(timeout=10) == TEXT


def test_message_at_the_limit_once_inflated_is_delivered(serve):
    srv = serve(echo_app([], accept=True), http_server={"ws_max_size": 4096})
    sock, _, rest = handshake(srv.port, "permessage-deflate")
    with sock:
        sock.sendall(frame(2, deflate(b"z" * 4096), rsv1=True))
        b0, payload = Reader(sock, rest).next()
        assert inflate(payload) == b"z" * 4096
        sock.sendall(frame(2, deflate(b"z" * 4097), rsv1=True))
        assert Reader(sock, rest).close_code() == 1009


# -- the client: Manager.ws_connect(per_message_deflate=True) ---------------------------

def run_client(url, until, *, per_message_deflate=True, send=(), timeout_s=10.0):
    """ws_connect to ``url``, send ``send`` once open, poll until ``until(events)``."""
    events: list = []
    mgr = Manager()
    try:
        def handler(conn, ev, data):
            if ev == MG_EV_WS_OPEN:
                events.append(("open", conn.ws_extensions))
                for message in send:
                    conn.ws_send(message, WEBSOCKET_OP_TEXT)
            elif ev == MG_EV_WS_MSG:
                events.append(("msg", data.flags, data.data))
            elif ev == MG_EV_ERROR:
                events.append(("error", data))

        mgr.ws_connect(url, handler, per_message_deflate=per_message_deflate)
        deadline = time.monotonic() + timeout_s
        while not until(events) and time.monotonic() < deadline:
            mgr.poll(20)
    finally:
        mgr.close()
    return events


@pytest.fixture
def websockets_server(request):
    """websockets' echo server with compression on (indirect parameter: its
    ServerPerMessageDeflateFactory keywords); ``.offers``: the offers it saw,
    ``.extensions``: what each connection agreed."""
    offers, frames = [], []
    factory = getattr(request, "param", None)

    def echo(ws):
        offers.append(ws.request.headers.get("Sec-WebSocket-Extensions"))
        frames.append(ws.protocol.extensions)
        for message in ws:
            ws.send(message)

    options = {"compression": "deflate"} if factory is None else {
        "compression": None, "extensions": [ServerPerMessageDeflateFactory(**factory)]}
    with ws_serve(echo, "127.0.0.1", 0, **options) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        srv.offers, srv.extensions = offers, frames
        srv.url = f"ws://127.0.0.1:{srv.socket.getsockname()[1]}/"
        yield srv
        srv.shutdown()
    thread.join(10)


@pytest.mark.parametrize("websockets_server", [
    None,  # websockets' default: both windows 12 bits
    {"client_no_context_takeover": True},
    {"server_no_context_takeover": True, "server_max_window_bits": 9},
    {"client_max_window_bits": 8},  # we then send uncompressed
], indirect=True, ids=["default", "client-no-takeover", "server-no-takeover-9",
                       "client-window-8"])
def test_client_against_websockets_server(websockets_server):
    # The same text twice: with context takeover the second refers to the first.
    events = run_client(websockets_server.url, lambda ev: len(ev) >= 4,
                        send=[TEXT, TEXT, "short"])
    assert events[0][0] == "open" and events[0][1].startswith("permessage-deflate")
    assert [(e[1] & 15, e[2]) for e in events[1:]] == [
        (1, TEXT.encode()), (1, TEXT.encode()), (1, b"short")]
    assert websockets_server.offers == ["permessage-deflate; client_max_window_bits"]
    assert len(websockets_server.extensions[0]) == 1  # websockets agreed, too


def test_client_offers_nothing_by_default(websockets_server):
    events = run_client(websockets_server.url, lambda ev: len(ev) >= 2,
                        per_message_deflate=False, send=["hi"])
    assert events == [("open", ""), ("msg", 0x81, b"hi")]
    assert websockets_server.offers == [None]


@pytest.mark.parametrize("answer", [
    "permessage-deflate; mystery=1",
    "permessage-deflate; server_max_window_bits=99",
    "x-webkit-deflate-frame",
    "permessage-deflate, permessage-deflate",
])
def test_client_fails_on_an_answer_it_did_not_offer(answer):
    # RFC 6455 section 4.1: the client fails the connection; the handler is told why.
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def fake_server():
        conn, _ = lsock.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n"
                         b"Sec-WebSocket-Extensions: " + answer.encode() + b"\r\n\r\n"
                         b"\x81\x05early")  # a frame right behind: never delivered
            conn.recv(10)  # until the client goes

    thread = threading.Thread(target=fake_server, daemon=True)
    thread.start()
    with lsock:
        events = run_client(f"ws://127.0.0.1:{port}/", lambda ev: bool(ev))
    thread.join(10)
    assert len(events) == 1 and events[0][0] == "error"
    assert "Sec-WebSocket-Extensions" in events[0][1]


def test_limit_is_on_the_message_not_the_wire(serve):
    # Random bytes do not compress: on the wire they take a few bytes more than the
    # limit, inflated they are at it. An uncompressed message past it is refused.
    srv = serve(echo_app([], accept=True), http_server={"ws_max_size": 4096})
    data = bytes(range(256)) * 16
    c = zlib.compressobj(0, zlib.DEFLATED, -15)  # stored blocks: larger than the data
    stored = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(stored) > 4096
    sock, _, rest = handshake(srv.port, "permessage-deflate")
    reader = Reader(sock, rest)
    with sock:
        sock.sendall(frame(2, stored, rsv1=True))
        b0, payload = reader.next()
        assert inflate(payload) == data
        sock.sendall(frame(2, data + b"!"))
        assert reader.close_code() == 1009
