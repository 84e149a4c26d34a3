"""The core's HTTP/1.1 server protocol (Connection.configure_http_server) over real sockets.

Limits answered in C (400/408/413/431/501/503), streamed and chunked request bodies
(EV_HTTP_BODY), 100 Continue, keep-alive sweep, pause/resume reading, EV_WRITABLE,
ws_accept / ws_max_size, and Manager.listen(fd=...). After every rejected request the
server must still answer a normal one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time

import httpx
import pytest
import websockets
from cymongoose import (
    EV_HTTP_BODY,
    EV_WRITABLE,
    MG_EV_HTTP_MSG,
    MG_EV_WAKEUP,
    MG_EV_WS_CTL,
    MG_EV_WS_MSG,
    WEBSOCKET_OP_CLOSE,
    Manager,
)

WAIT_S = 10  # upper bound for waiting on an event; never asserted as a duration


class Upload:
    """A streamed request body as the handler sees it."""

    def __init__(self, msg):
        self.method = msg.method
        self.uri = msg.uri
        self.pieces: list[int] = []
        self.digest = hashlib.sha256()
        self.paused = False
        self.done = False


class App:
    """Handler for the tests: every request is answered with a JSON summary of what the
    handler saw (method, uri, body length and sha256, whether it was streamed, the sizes
    of the EV_HTTP_BODY pieces).

    ``/slow`` is not answered until ``release(conn_id)``; ``/pause`` uploads are paused at
    their head and resumed by ``resume(conn_id)``; ``/big`` sends ``big`` bytes and asks for
    EV_WRITABLE.
    """

    def __init__(self):
        self.srv = None
        self.messages: list[tuple[str, bool]] = []  # (uri, more_body) per MG_EV_HTTP_MSG
        self.held: dict[int, object] = {}
        self.held_event = threading.Event()
        self.paused_event = threading.Event()
        self.body_while_paused = 0
        self.big = 0
        self.writable: list[tuple[int, int]] = []  # (send_len, id) at EV_WRITABLE
        self.writable_event = threading.Event()
        self.big_queued = threading.Event()
        self.body_seen = 0  # body bytes of every streamed upload so far
        self.body_event = threading.Event()  # set at each EV_HTTP_BODY piece

    def __call__(self, conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            self.messages.append((data.uri, data.more_body))
            if data.more_body:
                up = conn.userdata = Upload(data)
                if data.uri == "/pause":
                    conn.pause_reading()
                    up.paused = True
                    self.paused_event.set()
                return
            if data.uri == "/raise":
                raise RuntimeError("a bug in the handler")
            if data.uri == "/slow":
                self.held[conn.id] = conn
                self.held_event.set()
                return
            if data.uri == "/big":
                conn.send_response(200, [("Content-Type", "application/octet-stream")],
                                   b"x" * self.big)
                conn.notify_writable(0)
                self.big_queued.set()
                return
            body = data.body_bytes
            self.respond(conn, data.method, data.uri, len(body),
                         hashlib.sha256(body).hexdigest(), False, [])
        elif ev == EV_HTTP_BODY:
            up = conn.userdata
            if up.paused:
                self.body_while_paused += 1
            up.pieces.append(len(data))
            up.digest.update(data)
            self.body_seen += len(data)
            self.body_event.set()
            if not data:
                up.done = True
                self.respond(conn, up.method, up.uri, sum(up.pieces), up.digest.hexdigest(),
                             True, up.pieces)
        elif ev == EV_WRITABLE:
            self.writable.append((conn.send_len, conn.id))
            self.writable_event.set()
        elif ev == MG_EV_WAKEUP:
            if data == b"release":
                held = self.held.pop(conn.id)
                self.respond(held, "GET", "/slow", 0, "", False, [])
            elif data == b"resume":
                conn.userdata.paused = False
                conn.resume_reading()

    @staticmethod
    def respond(conn, method, uri, length, digest, streamed, pieces):
        body = json.dumps({"method": method, "uri": uri, "length": length, "sha256": digest,
                           "streamed": streamed, "pieces": pieces}).encode()
        conn.send_response(200, [("Content-Type", "application/json")], body)


@pytest.fixture
def server(serve):
    """Factory: ``server(**configure_http_server_kwargs) -> (LoopServer, App)``."""

    def start(**limits):
        app = App()
        srv = serve(app, enable_wakeup=True, http_server=limits)
        app.srv = srv
        return srv, app

    return start


# ---------------------------------------------------------------- raw-socket helpers

def connect(port) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(sock, buf=b""):
    """Read one HTTP/1.1 response with a Content-Length body from ``sock``.

    Returns ``(status, headers, body, rest)``; ``rest`` holds bytes past the response.
    Raises EOFError if the peer closes first.
    """
    buf = bytearray(buf)  # bytes += would copy the whole buffer on every recv
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed, got {bytes(buf)!r}")
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).split(b"\r\n")
    del buf[:end + 4]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed inside the body")
        buf += chunk
    return status, headers, bytes(buf[:length]), bytes(buf[length:])


def read_until_eof(sock) -> bytes:
    """Everything the peer sends until it closes (a reset counts as a close)."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk


def exchange(port, request: bytes):
    """Send ``request`` on a new connection; return ``(status, headers, body)``."""
    with connect(port) as s:
        s.sendall(request)
        status, headers, body, _ = read_response(s)
        return status, headers, body


def rejected(port, request: bytes):
    """Send ``request``; return the status of the response and whether the server then
    closed the connection (it must, for every rejection)."""
    with connect(port) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before it has read everything we send
        status, headers, _, rest = read_response(s)
        assert headers.get("connection") == "close"
        return status, read_until_eof(s) == rest == b""


def assert_serves(srv):
    """The server still answers a normal request."""
    r = httpx.get(srv.url + "/ok", timeout=WAIT_S)
    assert r.status_code == 200
    assert r.json()["uri"] == "/ok"
    assert srv.errors == []


def wait_for(event: threading.Event):
    assert event.wait(WAIT_S), "the server's handler never got there"


# ---------------------------------------------------------------- limits

@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTX/1.1\r\nHost: a\r\n\r\n",                 # not HTTP/x.y
        b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n",               # bad version
        b"GET\r\nHost: a\r\n\r\n",                            # no target
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",           # header without ':'
        b"GET / HTTP/1.1\r\n: no-name\r\n\r\n",               # empty header name
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",              # stray CR
        b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",             # control byte
        b"GET /\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n",         # not UTF-8
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",                # space before ':'
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",     # obs-fold
        b"HTTP/1.1 200 OK\r\nHost: a\r\n\r\n",                # a response, not a request
    ],
    ids=["version-prefix", "version", "no-target", "no-colon", "empty-name", "stray-cr",
         "control-byte", "not-utf8", "space-before-colon", "obs-fold", "status-line"],
)
def test_malformed_request_400(server, request_bytes):
    srv, app = server()
    assert rejected(srv.port, request_bytes) == (400, True)
    assert app.messages == []
    assert_serves(srv)


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),          # HTTP/2 connection preface
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),              # HTTP/1.1 without Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),  # two Hosts
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"G<T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),           # method is not a token
        (b"G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ],
    ids=["http2-preface", "http3", "http1.9", "http0.9", "no-host", "two-hosts",
         "two-hosts-1.0", "method-not-token", "method-utf8"],
)
def test_request_line_and_host_checked(server, request_bytes, status):
    # RFC 9110 section 15.6.6 (505), RFC 9112 section 3.2 (Host), RFC 9110 section 9.1.
    srv, app = server()
    assert rejected(srv.port, request_bytes) == (status, True)
    assert app.messages == []
    assert_serves(srv)


def test_handler_that_raises_before_answering_gives_500_and_close(server):
    srv, _ = server()
    assert rejected(srv.port, b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n") == (500, True)
    assert [str(e) for e in srv.errors] == ["a bug in the handler"]
    srv.errors.clear()
    assert_serves(srv)


@pytest.mark.parametrize("request_line", [b"GET / HTTP/1.0", b"M-SEARCH * HTTP/1.1",
                                          b"get /lower HTTP/1.1"])
def test_request_line_accepted(server, request_line):
    srv, app = server()
    host = b"" if request_line.endswith(b"1.0") else b"Host: a\r\n"
    status, _, _ = exchange(srv.port, request_line + b"\r\n" + host + b"\r\n")
    assert status == 200
    assert len(app.messages) == 1


def _headers(n):
    return b"".join(b"X-H%d: v\r\n" % i for i in range(n))


@pytest.mark.parametrize(
    "head",
    [
        b"POST /shape?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nabcdefg",
        b"POST  /shape?q=1  HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nabcdefg",
        b"POST /shape?q=1 http/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nabcdefg",
        b"POST /shape?q=1 HTTP/1.1\nHost: a\nContent-Length: 7\n\nabcdefg",
        b"POST /shape?q=1 HTTP/1.1\r\nHost:\ta \t\r\nX: \xe9t\xe9\r\n"
        b"Content-Length:  007 \r\n\r\nabcdefg",
        b"POST /shape?q=1 HTTP/1.1\r\nHost: a\r\n" + _headers(98)
        + b"Content-Length: 7\r\n\r\nabcdefg",
    ],
    ids=["common", "several-spaces", "lower-case-protocol", "bare-lf", "tabs-obs-text-zeros",
         "100-headers"],
)
def test_request_heads_of_every_shape_read_alike(server, head):
    # The core parses the common head itself and leaves every other one to mongoose's
    # mg_http_parse: the handler sees the same request either way.
    srv, app = server()
    status, _, body = exchange(srv.port, head)
    assert status == 200
    seen = json.loads(body)
    assert (seen["method"], seen["uri"], seen["length"]) == ("POST", "/shape", 7)
    assert seen["sha256"] == hashlib.sha256(b"abcdefg").hexdigest()


def test_header_count_at_limit_served(server):
    srv, app = server(max_header_count=10)
    status, _, body = exchange(srv.port, b"GET /ten HTTP/1.1\r\nHost: a\r\n" + _headers(9)
                               + b"\r\n")
    assert status == 200 and json.loads(body)["uri"] == "/ten"


@pytest.mark.parametrize("limit, sent", [(10, 11), (100, 150)])
def test_too_many_headers_431(server, limit, sent):
    srv, app = server(max_header_count=limit)
    req = b"GET /many HTTP/1.1\r\nHost: a\r\n" + _headers(sent - 1) + b"\r\n"
    assert rejected(srv.port, req) == (431, True)
    assert app.messages == []
    assert_serves(srv)


def test_header_bytes_431_complete_head(server):
    srv, app = server(max_header_bytes=2048)
    req = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n"
    assert rejected(srv.port, req) == (431, True)
    assert app.messages == []
    assert_serves(srv)


def test_header_bytes_431_unterminated_head(server):
    # The head never ends: the server must not keep buffering it.
    srv, app = server(max_header_bytes=2048)
    req = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 8000
    assert rejected(srv.port, req) == (431, True)
    assert app.messages == []
    assert_serves(srv)


def test_head_within_header_bytes_served(server):
    srv, _ = server(max_header_bytes=2048)
    r = httpx.get(srv.url + "/h", headers={"X-Big": "b" * 1500}, timeout=WAIT_S)
    assert r.status_code == 200


def test_body_over_max_body_size_413(server):
    srv, app = server(max_body_size=1000)
    req = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    assert rejected(srv.port, req) == (413, True)
    assert app.messages == []
    assert_serves(srv)


def test_body_at_max_body_size_served(server):
    srv, _ = server(max_body_size=1000)
    r = httpx.post(srv.url + "/up", content=b"y" * 1000, timeout=WAIT_S)
    assert r.status_code == 200 and r.json()["length"] == 1000


def test_413_without_100_continue(server):
    # A body the server will refuse must not be invited (RFC 9110 section 10.1.1).
    srv, _ = server(max_body_size=1000)
    with connect(srv.port) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        status, _, _, _ = read_response(s)
    assert status == 413
    assert_serves(srv)


def test_chunked_body_over_max_body_size_is_413(server):
    # A chunked body has no length up front: at the limit the server stops reading and,
    # as the handler has not started its response, answers 413 and closes.
    srv, app = server(max_body_size=1000)
    with connect(srv.port) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"800\r\n" + b"z" * 0x800 + b"\r\n0\r\n\r\n")
        assert read_until_eof(s).startswith(b"HTTP/1.1 413 ")
    assert app.messages == [("/up", True)]
    assert_serves(srv)


@pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked", b"identity", b"chunked, gzip"])
def test_unknown_transfer_encoding_501(server, coding):
    srv, app = server()
    req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
    assert rejected(srv.port, req) == (501, True)
    assert app.messages == []
    assert_serves(srv)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",   # CL + TE (smuggling)
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 5\r\n",             # duplicate
        b"Content-Length: 5\r\nContent-Length: 6\r\n",             # conflicting
        b"Content-Length: 5, 5\r\n",                               # list form
        b"Content-Length: -5\r\n",
        b"Content-Length: +5\r\n",
        b"Content-Length: 0x5\r\n",
        b"Content-Length: five\r\n",
        b"Content-Length: 99999999999999999999999999\r\n",          # overflow
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["cl-te", "te-cl", "dup-cl", "conflicting-cl", "cl-list", "negative", "plus", "hex",
         "word", "overflow", "dup-te"],
)
def test_ambiguous_body_framing_400(server, framing):
    srv, app = server()
    req = b"POST /smuggle HTTP/1.1\r\nHost: a\r\n" + framing + b"\r\n0\r\n\r\nhello"
    assert rejected(srv.port, req) == (400, True)
    assert app.messages == []
    assert_serves(srv)


def test_transfer_encoding_in_http10_400(server):
    srv, app = server()
    req = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert rejected(srv.port, req) == (400, True)
    assert app.messages == []
    assert_serves(srv)


def test_max_connections_503(server):
    srv, app = server(max_connections=2)
    first, second = connect(srv.port), connect(srv.port)
    try:
        for s in (first, second):
            s.sendall(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
            assert read_response(s)[0] == 200
        assert rejected(srv.port, b"GET /third HTTP/1.1\r\nHost: a\r\n\r\n") == (503, True)
        # The connections within the limit are still served.
        first.sendall(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(first)[0] == 200
    finally:
        first.close()
        second.close()
    assert ("/third", False) not in app.messages
    # Once the server has seen the two closes, new connections are served again.
    for _ in range(WAIT_S * 20):
        try:
            status = exchange(srv.port, b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")[0]
        except (EOFError, ConnectionResetError):
            status = None
        if status == 200:
            break
        time.sleep(0.05)
    assert status == 200
    assert_serves(srv)


def test_header_timeout_408(server):
    srv, app = server(header_timeout_ms=100)
    with connect(srv.port) as s:
        s.sendall(b"GET /trickle HTTP/1.1\r\nHost: a\r\n")  # the head never ends
        status, headers, _, rest = read_response(s)
        assert (status, headers["connection"]) == (408, "close")
        assert read_until_eof(s) == rest == b""
    assert app.messages == []
    assert_serves(srv)


# ---------------------------------------------------------------- bodies

def test_expect_100_continue(server):
    srv, _ = server()
    with connect(srv.port) as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += s.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"0123456789")
        status, _, body, _ = read_response(s)
    assert status == 200
    assert json.loads(body)["sha256"] == hashlib.sha256(b"0123456789").hexdigest()


def test_expect_100_continue_ignored_in_http10(server):
    # RFC 9110 section 10.1.1: an HTTP/1.0 client would take the 100 for the response.
    srv, _ = server()
    with connect(srv.port) as s:
        s.sendall(b"POST /e HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
        s.sendall(b"01234")
        time.sleep(0.2)  # give a wrong 100 Continue time to arrive before the rest
        s.sendall(b"56789")
        status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["length"] == 10


def test_expect_100_continue_not_sent_when_body_already_here(server):
    srv, _ = server()
    with connect(srv.port) as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\nabc")
        status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["length"] == 3


def test_small_body_arrives_whole(server):
    srv, app = server(stream_threshold=65536)
    body = os.urandom(60000)
    r = httpx.post(srv.url + "/small", content=body, timeout=WAIT_S)
    got = r.json()
    assert got["streamed"] is False
    assert got["length"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    assert app.messages == [("/small", False)]


def test_large_body_streamed(server):
    srv, app = server(stream_threshold=65536)
    body = os.urandom(3 * 1024 * 1024 + 17)
    r = httpx.post(srv.url + "/large", content=body, timeout=WAIT_S)
    got = r.json()
    assert got["streamed"] is True
    assert got["length"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    assert len(got["pieces"]) > 2
    assert got["pieces"][-1] == 0 and all(got["pieces"][:-1])
    assert app.messages == [("/large", True)]


def test_streamed_body_within_max_body_size(server):
    srv, _ = server(max_body_size=1 << 20, stream_threshold=1024)
    body = os.urandom(1 << 20)
    got = httpx.post(srv.url + "/up", content=body, timeout=WAIT_S).json()
    assert got["streamed"] is True
    assert got["sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_body_with_extensions_and_trailers(server):
    srv, app = server()
    req = (b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value\r\nhello\r\n"
           b"6;a;b=\"q\"\r\n world\r\n"
           b"A\r\n0123456789\r\n"
           b"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n")
    status, _, body = exchange(srv.port, req)
    got = json.loads(body)
    assert status == 200
    assert got["length"] == 21 and got["streamed"] is True
    assert got["sha256"] == hashlib.sha256(b"hello world0123456789").hexdigest()
    assert app.messages == [("/chunked", True)]
    assert_serves(srv)


def test_chunked_body_large_from_httpx(server):
    srv, _ = server()
    parts = [os.urandom(100_000) for _ in range(20)]
    got = httpx.post(srv.url + "/gen", content=iter(parts), timeout=WAIT_S).json()
    assert got["length"] == 2_000_000
    assert got["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


def test_chunked_body_byte_by_byte(server):
    srv, _ = server()
    req = (b"POST /slowchunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n")
    with connect(srv.port) as s:
        s.sendall(req[:60])
        for i in range(60, len(req)):
            s.sendall(req[i:i + 1])
        status, _, body, _ = read_response(s)
    assert status == 200
    assert json.loads(body)["sha256"] == hashlib.sha256(b"abcde").hexdigest()


def _heard(app, count: int) -> bool:
    """Whether the handler has had ``count`` body bytes, waiting up to WAIT_S for them."""
    deadline = time.monotonic() + WAIT_S
    while app.body_seen < count and time.monotonic() < deadline:
        app.body_event.clear()
        if app.body_seen < count:
            app.body_event.wait(0.05)
    return app.body_seen >= count


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_streamed_upload_is_heard_as_it_arrives(server, framing):
    # A client that sends part of its body and waits (a streaming upload, an interactive
    # protocol over one request) must not wait for the server to hear that part: the
    # bytes go to the handler once the socket has nothing more, as with uvicorn.
    srv, app = server(stream_threshold=1024)
    first, rest = os.urandom(10_000), os.urandom(90_000)
    if framing == "chunked":
        head = b"Transfer-Encoding: chunked"
        parts = [b"%x\r\n%s\r\n" % (len(first), first),
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest)]
    else:
        head = b"Content-Length: %d" % (len(first) + len(rest))
        parts = [first, rest]
    with connect(srv.port) as s:
        s.sendall(b"POST /stream HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n\r\n" + parts[0])
        assert _heard(app, len(first)), "the first part was held back"
        s.sendall(parts[1])
        status, _, body, _ = read_response(s)
    got = json.loads(body)
    assert status == 200 and got["length"] == len(first) + len(rest)
    assert got["sha256"] == hashlib.sha256(first + rest).hexdigest()
    assert got["pieces"][0] == len(first)


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",          # size not hex
        b"5\r\nhelloXX0\r\n\r\n",             # data not followed by CRLF
        b"5\nhello\r\n0\r\n\r\n",             # bare LF after the size
        b"\r\nhello\r\n0\r\n\r\n",            # empty size line
        b"fffffffffffffffff\r\n",             # size overflow
    ],
    ids=["not-hex", "no-crlf-after-data", "bare-lf", "empty-size", "overflow"],
)
def test_malformed_chunked_closes(server, chunks):
    srv, app = server()
    with connect(srv.port) as s:
        s.sendall(b"POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + chunks)
        assert read_until_eof(s) == b""
    assert app.messages == [("/bad", True)]
    assert_serves(srv)


def test_pipelined_after_streamed_body(server):
    srv, app = server(stream_threshold=1024)
    body = os.urandom(200_000)
    req = (b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
           + b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n"
           + b"POST /third HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"3\r\nabc\r\n0\r\n\r\n"
           + b"GET /fourth HTTP/1.1\r\nHost: a\r\n\r\n")
    with connect(srv.port) as s:
        s.sendall(req)
        rest = b""
        uris = []
        for _ in range(4):
            status, _, got, rest = read_response(s, rest)
            assert status == 200
            uris.append(json.loads(got))
    assert [u["uri"] for u in uris] == ["/first", "/second", "/third", "/fourth"]
    assert uris[0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert uris[2]["sha256"] == hashlib.sha256(b"abc").hexdigest()


# ---------------------------------------------------------------- keep-alive

def test_idle_keep_alive_closed(server):
    srv, _ = server(keep_alive_timeout_ms=100)
    with connect(srv.port) as s:
        s.sendall(b"GET /once HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, _, rest = read_response(s)
        assert status == 200 and rest == b""
        assert read_until_eof(s) == b""  # the server closes the idle connection
    assert_serves(srv)


def test_request_in_progress_not_closed_by_keep_alive_sweep(server):
    srv, app = server(keep_alive_timeout_ms=50)
    with connect(srv.port) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_for(app.held_event)
        time.sleep(0.5)  # ten timeouts pass while the app has not answered yet
        (conn_id,) = app.held
        assert srv.mgr.wakeup(conn_id, b"release")
        status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["uri"] == "/slow"


def test_keep_alive_connection_reused_within_timeout(server):
    srv, _ = server(keep_alive_timeout_ms=5000)
    with connect(srv.port) as s:
        for i in range(20):
            s.sendall(b"GET /n%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            status, _, body, rest = read_response(s)
            assert status == 200 and rest == b""
            assert json.loads(body)["uri"] == f"/n{i}"


# ---------------------------------------------------------------- flow control

def test_pause_and_resume_reading(server):
    srv, app = server(stream_threshold=1024)
    body = os.urandom(32 * 1024 * 1024)  # far more than the socket buffers hold
    with connect(srv.port) as s:
        s.sendall(b"POST /pause HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
                  b"Expect: 100-continue\r\n\r\n" % len(body))
        assert s.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        wait_for(app.paused_event)
        sender = threading.Thread(target=s.sendall, args=(body,), daemon=True)
        sender.start()
        sender.join(0.5)
        assert sender.is_alive()  # blocked: the server does not read
        assert app.body_while_paused == 0
        conn_id = next(c.id for c in srv.mgr.connections if not c.is_listening)
        assert srv.mgr.wakeup(conn_id, b"resume")
        status, _, got, _ = read_response(s)
        sender.join(WAIT_S)
    got = json.loads(got)
    assert status == 200
    assert app.body_while_paused == 0
    assert got["length"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()


def test_notify_writable_after_slow_reader_drains(server):
    srv, app = server()
    app.big = 16 * 1024 * 1024
    with connect(srv.port) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_for(app.big_queued)
        time.sleep(0.3)  # the client reads nothing yet: the response cannot drain
        assert app.writable == []
        status, _, body, _ = read_response(s)
        assert status == 200 and len(body) == app.big
        wait_for(app.writable_event)
    assert len(app.writable) == 1
    assert app.writable[0][0] == 0  # send buffer empty when EV_WRITABLE arrived


def test_half_closed_client_gets_the_whole_response(server):
    """A client that shuts down its sending side after its request (shutdown(SHUT_WR), as
    ``nc -N`` does) gets all of a response larger than the socket buffers, then the close.
    mongoose closed at the FIN: the body stopped at the ~4 MiB the kernel had taken."""
    srv, app = server()
    app.big = 16 * 1024 * 1024
    with connect(srv.port) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        status, _, body, rest = read_response(s)
        assert status == 200 and len(body) == app.big and body.count(b"x") == app.big
        assert rest + read_until_eof(s) == b""  # then the server closes
    assert_serves(srv)


def test_half_closed_pipelining_client_gets_only_whole_responses(server):
    """Pipelined requests, then the FIN: the answers that go out are whole ones (the
    first at least); none is cut inside its body."""
    srv, app = server()
    app.big = 8 * 1024 * 1024
    with connect(srv.port) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
        s.shutdown(socket.SHUT_WR)
        status, _, body, rest = read_response(s)
        assert status == 200 and len(body) == app.big
        while True:
            try:
                status, _, body, rest = read_response(s, rest)
            except EOFError as eof:
                assert str(eof).endswith("got b''")  # at a response's end
                break
            assert status == 200 and len(body) == app.big
    assert_serves(srv)


def test_notify_writable_at_once_when_already_below(serve):
    seen = []
    done = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.send_response(200, [], b"ok")
            conn.notify_writable(1 << 20)
        elif ev == EV_WRITABLE:
            seen.append(data)
            done.set()

    srv = serve(handler, http_server={})
    assert httpx.get(srv.url, timeout=WAIT_S).text == "ok"
    wait_for(done)
    assert seen == [None]


def test_notify_writable_rejects_negative(serve):
    out = []
    done = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            try:
                conn.notify_writable(-1)
            except ValueError as exc:
                out.append(str(exc))
            conn.send_response(200, [], b"ok")
            done.set()

    srv = serve(handler, http_server={})
    httpx.get(srv.url, timeout=WAIT_S)
    wait_for(done)
    assert out and "low_water_bytes" in out[0] and "-1" in out[0]


# ---------------------------------------------------------------- WebSocket

def ws_app(received):
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/ws":
                offered = [p.strip() for p in
                           (data.header("Sec-WebSocket-Protocol") or "").split(",")]
                extra = [("Sec-WebSocket-Protocol", "chat")] if "chat" in offered else []
                conn.ws_accept(data.header("Sec-WebSocket-Key"), extra)
            else:
                conn.send_response(200, [], b"plain")
        elif ev == MG_EV_WS_MSG:
            conn.ws_send(data.data)
        elif ev == MG_EV_WS_CTL:
            received.append((data.flags & 15, data.data))
    return handler


def test_ws_accept_with_subprotocol(serve):
    srv = serve(ws_app([]), http_server={})

    async def client():
        async with websockets.connect(srv.ws_url + "/ws",
                                      subprotocols=["superchat", "chat"]) as ws:
            await ws.send("hello")
            return ws.subprotocol, await ws.recv()

    assert asyncio.run(client()) == ("chat", "hello")


def test_ws_accept_rejects_crlf(serve):
    out = []
    done = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            for args in (("k\r\nX: y",), ("k", [("X-A", "b\r\nInjected: 1")])):
                try:
                    conn.ws_accept(*args)
                except ValueError as exc:
                    out.append(exc)
            conn.send_response(200, [], b"ok")
            done.set()

    srv = serve(handler, http_server={})
    r = httpx.get(srv.url, timeout=WAIT_S)
    wait_for(done)
    assert r.text == "ok" and "injected" not in r.headers
    assert len(out) == 2


def test_ws_max_size_closes_1009(serve):
    ctl = []
    srv = serve(ws_app(ctl), http_server={"ws_max_size": 1024})

    async def client():
        async with websockets.connect(srv.ws_url + "/ws") as ws:
            await ws.send("a" * 1024)  # at the limit: echoed
            echo = await ws.recv()
            await ws.send("b" * 1025)
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            return echo, info.value.rcvd.code

    echo, code = asyncio.run(client())
    assert echo == "a" * 1024
    assert code == 1009
    assert (WEBSOCKET_OP_CLOSE, b"\x03\xf1") in ctl
    assert httpx.get(srv.url + "/", timeout=WAIT_S).text == "plain"


def test_ws_frame_header_declaring_huge_length(serve):
    ctl = []
    srv = serve(ws_app(ctl), http_server={"ws_max_size": 1 << 20})
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with connect(srv.port) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: " + key.encode() + b"\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101")
        # FIN + binary, masked, 64-bit length 2**62, mask, a few payload bytes.
        s.sendall(b"\x82\xff" + (1 << 62).to_bytes(8, "big") + b"\x00\x00\x00\x00" + b"abc")
        frames = rest + read_until_eof(s)
    assert frames[:4] == b"\x88\x02\x03\xf1"  # close frame, code 1009
    assert (WEBSOCKET_OP_CLOSE, b"\x03\xf1") in ctl
    assert httpx.get(srv.url + "/", timeout=WAIT_S).text == "plain"


UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 section 5.2), mask 0 so the payload stays readable."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def ws_handshake(sock, extra: bytes = b"") -> bytes:
    """Upgrade ``sock`` (sending ``extra`` right behind the request); returns bytes after
    the 101 response."""
    sock.sendall(UPGRADE + extra)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101")
    return rest


def read_ws_frame(sock, buf: bytes) -> tuple[int, bytes, bytes]:
    """One unmasked server frame: ``(opcode, payload, rest)``."""
    while len(buf) < 2:
        buf += sock.recv(4096)
    n, hlen = buf[1] & 127, 2
    if n == 126:
        n, hlen = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        n, hlen = int.from_bytes(buf[2:10], "big"), 10
    while len(buf) < hlen + n:
        chunk = sock.recv(65536)
        assert chunk, "closed inside a frame"
        buf += chunk
    return buf[0] & 15, buf[hlen:hlen + n], buf[hlen + n:]


def test_ws_frame_right_behind_upgrade_request(serve):
    # An optimistic client may send its first frame in the same packet as the upgrade:
    # those bytes are WebSocket, never parsed as a pipelined HTTP request.
    srv = serve(ws_app([]), http_server={"ws_max_size": 1024})
    with connect(srv.port) as s:
        rest = ws_handshake(s, ws_frame(1, b"early"))
        op, payload, _ = read_ws_frame(s, rest)
    assert (op, payload) == (1, b"early")


def test_ws_fragmented_message_at_limit_accepted(serve):
    srv = serve(ws_app([]), http_server={"ws_max_size": 1024})
    with connect(srv.port) as s:
        rest = ws_handshake(s)
        s.sendall(ws_frame(2, b"a" * 500, fin=False) + ws_frame(9, b"ping")
                  + ws_frame(0, b"b" * 500, fin=False) + ws_frame(0, b"c" * 24))
        frames = []
        while len(frames) < 2:
            op, payload, rest = read_ws_frame(s, rest)
            frames.append((op, payload))
    assert (10, b"ping") in frames  # the pong
    assert (1, b"a" * 500 + b"b" * 500 + b"c" * 24) in frames  # echoed whole, as text


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "frame-per-write"])
def test_ws_fragmented_message_over_limit_1009(serve, split):
    ctl = []
    srv = serve(ws_app(ctl), http_server={"ws_max_size": 1024})
    frames = [ws_frame(2, b"a" * 600, fin=False), ws_frame(0, b"b" * 600)]
    with connect(srv.port) as s:
        rest = ws_handshake(s)
        if split:
            s.sendall(frames[0])
            s.sendall(b"")
            time.sleep(0.1)  # let the first fragment be read on its own
            s.sendall(frames[1])
        else:
            s.sendall(b"".join(frames))
        op, payload, _ = read_ws_frame(s, rest)
        assert read_until_eof(s) in (b"", b"\x88\x00")
    assert (op, payload) == (8, b"\x03\xf1")
    assert (WEBSOCKET_OP_CLOSE, b"\x03\xf1") in ctl


def ws_events_app(events):
    """Accept /ws upgrades; record (event, opcode, data) of every WS_MSG and WS_CTL."""
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.ws_accept(data.header("Sec-WebSocket-Key"))
        elif ev in (MG_EV_WS_MSG, MG_EV_WS_CTL):
            events.append((ev, data.flags & 15, data.data))
    return handler


def test_ws_refused_frame_payload_never_parsed(serve):
    # After 1009 the rest of the refused frame still arrives; it must not be read as
    # frames (here it holds a complete text frame the handler must never see).
    events = []
    srv = serve(ws_events_app(events), http_server={"ws_max_size": 1024})
    smuggled = ws_frame(1, b"smuggled") * 200
    with connect(srv.port) as s:
        ws_handshake(s)
        s.sendall(ws_frame(2, b"")[:1] + bytes([0xfe]) + len(smuggled).to_bytes(2, "big")
                  + b"\0\0\0\0")
        op, payload, rest = read_ws_frame(s, b"")
        s.sendall(smuggled)
        assert read_until_eof(s) in (b"", b"\x88\x00")
    assert (op, payload) == (8, b"\x03\xf1")
    assert [e for e in events if e[0] == MG_EV_WS_MSG] == []
    assert events == [(MG_EV_WS_CTL, WEBSOCKET_OP_CLOSE, b"\x03\xf1")]


@pytest.mark.parametrize(
    "frame",
    [
        bytes([0x81, 5]) + b"hello",                       # unmasked (section 5.1)
        bytes([0xc1, 0x83]) + b"\0\0\0\0abc",              # RSV1, no extension (5.2)
        ws_frame(3, b"x"),                                 # reserved opcode
        ws_frame(9, b"p" * 126),                           # control frame > 125 (5.5)
        ws_frame(9, b"p", fin=False),                      # fragmented control frame
        ws_frame(0, b"abc"),                               # continuation, nothing open
        ws_frame(1, b"a", fin=False) + ws_frame(2, b"b"),  # new message inside one (5.4)
        ws_frame(8, (1005).to_bytes(2, "big")),            # reserved close code (7.4.1)
        ws_frame(8, (2999).to_bytes(2, "big")),
        ws_frame(8, b"\x03"),                              # 1-byte close payload (5.5.1)
    ],
    ids=["unmasked", "rsv1", "reserved-opcode", "big-control", "fragmented-control",
         "orphan-continuation", "interleaved", "close-1005", "close-2999", "close-1-byte"],
)
def test_ws_protocol_violation_closes_1002(serve, frame):
    events = []
    srv = serve(ws_events_app(events), http_server={"ws_max_size": 1 << 20})
    with connect(srv.port) as s:
        ws_handshake(s)
        s.sendall(frame)
        op, payload, _ = read_ws_frame(s, b"")
        assert read_until_eof(s) in (b"", b"\x88\x00")
    assert (op, payload) == (8, b"\x03\xea")  # 1002
    assert (MG_EV_WS_CTL, WEBSOCKET_OP_CLOSE, b"\x03\xea") in events
    assert [e for e in events if e[0] == MG_EV_WS_MSG] == []


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 1014, 3000, 4999])
def test_ws_valid_close_codes_echoed(serve, code):
    events = []
    srv = serve(ws_events_app(events), http_server={"ws_max_size": 1 << 20})
    with connect(srv.port) as s:
        ws_handshake(s)
        s.sendall(ws_frame(1, b"hi") + ws_frame(8, code.to_bytes(2, "big") + b"bye"))
        op, payload, _ = read_ws_frame(s, b"")
    assert op == 8 and payload[:2] == code.to_bytes(2, "big")
    assert events[0] == (MG_EV_WS_MSG, 1, b"hi")


# ---------------------------------------------------------------- listen(fd=)

def test_listen_on_prebound_socket(serve):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        app = App()
        srv = serve(app, fd=sock.fileno(), http_server={})
        assert srv.port == sock.getsockname()[1]
        assert srv.listener.local_addr[:2] == sock.getsockname()
        assert httpx.get(srv.url + "/fd", timeout=WAIT_S).json()["uri"] == "/fd"
    finally:
        sock.close()  # the manager serves on its own duplicate
    assert httpx.get(srv.url + "/after", timeout=WAIT_S).json()["uri"] == "/after"


def test_listen_fd_rejects_non_listening_socket():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    with sock, Manager() as mgr:
        with pytest.raises(ValueError, match=str(sock.fileno())):
            mgr.listen("http://127.0.0.1:0", fd=sock.fileno())


def test_listen_fd_rejects_udp_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    with sock, Manager() as mgr:
        with pytest.raises(ValueError):
            mgr.listen("http://127.0.0.1:0", fd=sock.fileno())


@pytest.mark.parametrize("fd", ["3", 3.0, True])
def test_listen_fd_type_error(fd):
    with Manager() as mgr, pytest.raises(TypeError, match="fd must be an int"):
        mgr.listen("http://127.0.0.1:0", fd=fd)


# ---------------------------------------------------------------- configure_http_server

@pytest.mark.parametrize(
    "name, value",
    [
        ("max_header_count", 0),
        ("max_header_count", 101),
        ("max_header_bytes", 0),
        ("keep_alive_timeout_ms", 0),
        ("header_timeout_ms", -1),
        ("max_body_size", -1),
        ("stream_threshold", -1),
        ("max_connections", -5),
        ("ws_max_size", -1),
    ],
)
def test_configure_http_server_value_errors(name, value):
    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0")
        with pytest.raises(ValueError, match=name) as info:
            listener.configure_http_server(**{name: value})
        assert str(value) in str(info.value)


def test_configure_http_server_needs_http_listener():
    with Manager() as mgr:
        tcp = mgr.listen("tcp://127.0.0.1:0")
        with pytest.raises(RuntimeError, match="HTTP listener"):
            tcp.configure_http_server()
        http = mgr.listen("http://127.0.0.1:0")
        client = mgr.connect(f"http://127.0.0.1:{http.local_addr[1]}")
        with pytest.raises(RuntimeError, match="HTTP listener"):
            client.configure_http_server()



def test_stalled_streamed_body_is_closed_after_header_timeout(serve):
    # A body that stops arriving must not hold the connection forever (slow POST).
    got = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            got.append(data.more_body)

    srv = serve(handler, http_server={"header_timeout_ms": 300, "stream_threshold": 10})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50)
        assert s.recv(100) == b""  # closed by the server, no response
    assert got == [True]


def test_bare_cr_in_request_line_is_400(serve):
    srv = serve(lambda conn, ev, data: None, http_server={})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")
