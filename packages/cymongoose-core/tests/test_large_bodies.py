"""Large bodies through the core's HTTP server (Connection.configure_http_server), over
plain TCP and TLS: request bodies echoed back and generated responses arrive byte-exact
at sizes around the buffer boundaries (64 KiB pieces, 1 MiB gather) and at 16 MiB, to a
client that reads slowly, and with pipelined requests behind a large body. A large
response body is sent from its bytes object instead of being copied into the send
buffer (issue 21), and a request body is read straight into the bytes objects of its
EV_HTTP_BODY pieces."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from cymongoose import EV_HTTP_BODY, MG_EV_ACCEPT, MG_EV_HTTP_MSG, TlsOpts

trustme = pytest.importorskip("trustme")

MIB = 1 << 20
SIZES = [65535, 65536, 65537, MIB - 1, MIB, MIB + 1, 16 * MIB]


def pattern(n: int) -> bytes:
    """n bytes whose period (251) never lines up with a buffer boundary."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


class EchoApp:
    """POST: the body back; GET /big/N: N bytes of ``pattern``. Records the sizes of
    the EV_HTTP_BODY pieces and ``send_len`` right after each large response."""

    def __init__(self, tls: TlsOpts | None = None):
        self.tls = tls
        self.pieces: list[int] = []
        self.send_len_after: list[int] = []

    def __call__(self, conn, ev, data):
        if ev == MG_EV_ACCEPT and self.tls is not None:
            conn.tls_init(self.tls)
        elif ev == MG_EV_HTTP_MSG:
            if data.more_body:
                conn.userdata = []
                return
            if data.uri.startswith("/big/"):
                self.respond(conn, pattern(int(data.uri[5:])))
            elif data.uri == "/then-more":
                # Bytes written behind a large response go out after all of its body.
                self.respond(conn, pattern(16 * MIB))
                conn.send(b"MORE")
            else:
                self.respond(conn, data.body_bytes)
        elif ev == EV_HTTP_BODY:
            if data:
                self.pieces.append(len(data))
                conn.userdata.append(data)
            else:
                self.respond(conn, b"".join(conn.userdata))

    def respond(self, conn, body: bytes) -> None:
        conn.send_response(200, [("Content-Type", "application/octet-stream")], body)
        self.send_len_after.append(conn.send_len)


@pytest.fixture(scope="module")
def tls_files():
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    opts = TlsOpts(cert=leaf.cert_chain_pems[0].bytes(), key=leaf.private_key_pem.bytes())
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return opts, ctx


@pytest.fixture(params=["tcp", "tls"])
def server(request, serve, tls_files):
    """(LoopServer, EchoApp, connect()) for plain TCP and TLS."""
    opts, ctx = tls_files
    tls = request.param == "tls"
    app = EchoApp(opts if tls else None)
    srv = serve(app, "https://127.0.0.1:0" if tls else "http://127.0.0.1:0",
                http_server={"max_body_size": 64 * MIB})

    def connect():
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        return ctx.wrap_socket(s, server_hostname="localhost") if tls else s

    return srv, app, connect


def send_request(s, method: str, path: str, body: bytes = b"") -> None:
    head = f"{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\n\r\n"
    s.sendall(head.encode() + body)


def read_response(s, buf: bytearray, slow: bool = False) -> bytes:
    """One response's body (Content-Length framed); ``buf`` keeps what follows it.
    ``slow``: read 16 KiB at a time with a pause every 64 KiB."""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    buf[:] = rest
    while len(buf) < length:
        chunk = s.recv(16384 if slow else 1 << 20)
        assert chunk, "connection closed mid-body"
        buf += chunk
        if slow and len(buf) % 65536 < 16384:
            time.sleep(0.002)
    body = bytes(buf[:length])
    del buf[:length]
    return body


@pytest.mark.parametrize("size", SIZES)
def test_echo_and_download_byte_exact(server, size):
    _, _, connect = server
    body = pattern(size)
    with connect() as s:
        buf = bytearray()
        for _ in range(2):  # keep-alive: the buffers of the first serve the second
            send_request(s, "POST", "/echo", body)
            assert read_response(s, buf) == body
            send_request(s, "GET", f"/big/{size}")
            assert read_response(s, buf) == body


@pytest.mark.parametrize("size", [MIB + 1, 16 * MIB])
def test_slow_reader_gets_every_byte(server, size):
    _, _, connect = server
    with connect() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        buf = bytearray()
        send_request(s, "GET", f"/big/{size}")
        assert read_response(s, buf, slow=True) == pattern(size)
        send_request(s, "POST", "/echo", pattern(MIB))
        assert read_response(s, buf, slow=True) == pattern(MIB)


def test_pipelined_requests_after_a_large_body(server):
    _, _, connect = server
    upload = pattern(MIB + 7)
    with connect() as s:
        # All in one write: the server must answer in order, each byte-exact.
        head = f"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {len(upload)}\r\n\r\n"
        s.sendall(head.encode() + upload +
                  b"GET /big/300000 HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /big/70000 HTTP/1.1\r\nHost: a\r\n\r\n")
        buf = bytearray()
        assert read_response(s, buf) == upload
        assert read_response(s, buf) == pattern(300000)
        assert read_response(s, buf) == b"hello"
        assert read_response(s, buf) == pattern(70000)


def test_body_sent_in_small_writes_arrives_byte_exact(server):
    # A body that trickles in goes to the handler in pieces as it arrives (64 KiB or
    # more once the socket has nothing more for now), not held back until 1 MiB is in.
    _, app, connect = server
    body = pattern(MIB + 12345)
    with connect() as s:
        s.sendall(f"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode())
        for i in range(0, len(body), 50_000):
            s.sendall(body[i:i + 50_000])
            time.sleep(0.005)
        assert read_response(s, bytearray()) == body
    assert sum(app.pieces) == len(body) and len(app.pieces) > 2, app.pieces


@pytest.mark.parametrize("sent", [10_000, 200_000, MIB - 1, MIB + 10])
def test_client_gone_mid_body_leaves_the_server_serving(server, sent):
    srv, _, connect = server
    s = connect()
    s.sendall(f"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {2 * MIB}\r\n\r\n"
              .encode() + pattern(sent))
    time.sleep(0.05)
    s.close()  # the server drops the half-received body
    with connect() as s:
        send_request(s, "POST", "/echo", pattern(MIB))
        assert read_response(s, bytearray()) == pattern(MIB)
    assert srv.errors == []


def test_large_response_body_is_not_copied_to_the_send_buffer(serve):
    app = EchoApp()
    srv = serve(app, http_server={})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        buf = bytearray()
        send_request(s, "POST", "/echo", pattern(MIB))
        assert read_response(s, buf) == pattern(MIB)
        send_request(s, "POST", "/echo", pattern(3 * MIB))
        assert read_response(s, buf) == pattern(3 * MIB)
    # Pieces of up to 1 MiB (64 KiB once the socket has nothing more for now).
    assert sum(app.pieces) == 4 * MIB and max(app.pieces) <= MIB + 65536, app.pieces
    # What the socket did not take at once stays in the bytes object, not in send_len.
    assert all(n < MIB // 2 for n in app.send_len_after), app.send_len_after


def test_connection_closed_while_a_large_body_is_pending(serve):
    app = EchoApp()
    srv = serve(app, http_server={})
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        send_request(s, "GET", f"/big/{16 * MIB}")
        s.recv(1000)
        s.close()  # mid-body: the server drops its reference, keeps serving
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        buf = bytearray()
        send_request(s, "GET", "/big/100000")
        assert read_response(s, buf) == pattern(100000)
    assert srv.errors == []


def test_bytes_sent_behind_a_pending_body_follow_it(serve):
    app = EchoApp()
    srv = serve(app, http_server={})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        buf = bytearray()
        send_request(s, "GET", "/then-more")
        assert read_response(s, buf) == pattern(16 * MIB)
        while len(buf) < 4:
            buf += s.recv(100)
        assert bytes(buf) == b"MORE"
