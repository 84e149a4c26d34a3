"""Issue 21: large bodies through the ASGI server and the WSGI server in both modes, over
plain TCP and TLS. An uploaded body echoed back and a generated download arrive
byte-exact at sizes around the core's buffer boundaries (64 KiB, 1 MiB) and at 16 MiB,
to a client that reads slowly, and pipelined requests behind a large body are answered
in order."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from cymongoose.asgi.testing import ServerThread as AsgiThread
from cymongoose.wsgi.testing import ServerThread as WsgiThread

trustme = pytest.importorskip("trustme")

MIB = 1 << 20
SIZES = [65535, 65537, MIB - 1, MIB, MIB + 1, 16 * MIB]
LIMIT = 64 * MIB


def pattern(n: int) -> bytes:
    """n bytes whose period (251) never lines up with a buffer boundary."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/big/"):
        body = pattern(int(path[5:]))
    else:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith("/big/"):
        body = pattern(int(path[5:]))
    else:
        parts = []
        while True:
            event = await receive()
            parts.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        body = b"".join(parts)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    tmp = tmp_path_factory.mktemp("tls")
    leaf.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp / "key.pem"))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return {"ssl_certfile": str(tmp / "cert.pem"), "ssl_keyfile": str(tmp / "key.pem")}, ctx


@pytest.fixture(scope="module", params=[
    ("asgi", "tcp"), ("asgi", "tls"), ("pooled", "tcp"), ("pooled", "tls"),
    ("inline", "tcp"), ("inline", "tls")], ids=lambda p: "-".join(p))
def served(request, certs):
    """connect() -> a socket (TLS-wrapped for the tls servers) to a running server."""
    server, transport = request.param
    tls, ctx = certs
    kw = dict(tls) if transport == "tls" else {}
    scheme = "https" if transport == "tls" else "http"
    if server == "asgi":
        thread = AsgiThread(asgi_app, f"{scheme}://127.0.0.1:0", lifespan="off",
                            max_body_size=LIMIT, **kw)
    else:
        thread = WsgiThread(wsgi_app, f"{scheme}://127.0.0.1:0",
                            workers=4 if server == "pooled" else 0, access_log=False,
                            max_body_size=LIMIT, **kw)
    with thread as srv:
        def connect():
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
            return ctx.wrap_socket(s, server_hostname="localhost") if kw else s
        yield connect


def send_request(s, method: str, path: str, body: bytes = b"") -> None:
    head = f"{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\n\r\n"
    s.sendall(head.encode() + body)


def read_response(s, buf: bytearray, slow: bool = False) -> bytes:
    """One response's body (Content-Length framed); ``buf`` keeps what follows it.
    ``slow``: 16 KiB reads with a pause every 64 KiB."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed before a response"
        buf += chunk
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
def test_echo_and_download_byte_exact(served, size):
    body = pattern(size)
    with served() as s:
        buf = bytearray()
        for _ in range(2):  # keep-alive: the second request reuses grown buffers
            send_request(s, "POST", "/echo", body)
            assert read_response(s, buf) == body
            send_request(s, "GET", f"/big/{size}")
            assert read_response(s, buf) == body


def test_slow_reader(served):
    with served() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        buf = bytearray()
        send_request(s, "GET", f"/big/{4 * MIB + 3}")
        assert read_response(s, buf, slow=True) == pattern(4 * MIB + 3)
        send_request(s, "POST", "/echo", pattern(MIB + 1))
        assert read_response(s, buf, slow=True) == pattern(MIB + 1)


def test_pipelined_after_a_large_body(served):
    upload = pattern(MIB + 7)
    with served() as s:
        head = f"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {len(upload)}\r\n\r\n"
        s.sendall(head.encode() + upload +
                  b"GET /big/300000 HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        buf = bytearray()
        assert read_response(s, buf) == upload
        assert read_response(s, buf) == pattern(300000)
        assert read_response(s, buf) == b"hello"


def test_close_after_a_large_body_sends_all_of_it(served):
    # HTTP/1.0 without keep-alive: the server closes after the response, which must not
    # cut the body still held by reference (a slow reader keeps it pending).
    size = 8 * MIB + 5
    with served() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.sendall(f"GET /big/{size} HTTP/1.0\r\nHost: a\r\n\r\n".encode())
        buf = bytearray()
        assert read_response(s, buf, slow=True) == pattern(size)
        while chunk := s.recv(65536):  # then the close, and nothing else
            buf += chunk
        assert buf == b""
