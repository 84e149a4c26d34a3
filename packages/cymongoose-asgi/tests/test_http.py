"""ASGI HTTP over real sockets: raw ASGI apps, httpx and raw-socket clients."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from cymongoose.asgi import ASGIServer
from cymongoose.asgi.testing import ServerThread

pytestmark = pytest.mark.timeout(60)


async def hello_app(scope, receive, send):
    assert scope["type"] == "http"
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def echo_scope_app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("no lifespan here")
    message = await receive()
    body = repr(
        {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope["raw_path"],
            "query_string": scope["query_string"],
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "asgi": scope["asgi"],
            "headers": [h for h in scope["headers"] if h[0] == b"x-test"],
            "client_ip": scope["client"][0],
            "server_port": scope["server"][1],
            "body": message["body"],
            "more_body": message["more_body"],
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_hello():
    with ServerThread(hello_app) as server:
        r = httpx.get(server.url + "/")
    assert r.status_code == 200
    assert r.text == "Hello, world!"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-length"] == "13"


def test_scope_and_body():
    with ServerThread(echo_scope_app) as server:
        r = httpx.post(
            server.url + "/a%20b/c?x=1&y=%20",
            content=b"payload",
            headers={"X-Test": "yes"},
        )
        info = eval(r.text)
    assert info["method"] == "POST"
    assert info["path"] == "/a b/c"
    assert info["raw_path"] == b"/a%20b/c"
    assert info["query_string"] == b"x=1&y=%20"
    assert info["http_version"] == "1.1"
    assert info["scheme"] == "http"
    assert info["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert info["headers"] == [(b"x-test", b"yes")]
    assert info["client_ip"] == "127.0.0.1"
    assert info["server_port"] == server.port
    assert info["body"] == b"payload"
    assert info["more_body"] is False


async def streaming_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    for i in range(10):
        await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
        await asyncio.sleep(0.001)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_streaming_chunked():
    with ServerThread(streaming_app) as server, httpx.Client() as client:
        for _ in range(3):  # the connection stays usable after a chunked response
            r = client.get(server.url + "/")
            assert r.status_code == 200
            assert r.headers["transfer-encoding"] == "chunked"
            assert r.text == "".join(f"chunk {i}\n" for i in range(10))


async def failing_app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/ok":
        await hello_app(scope, receive, send)
        return
    raise ValueError("app failure")


def test_exception_before_response_is_500(caplog):
    with caplog.at_level(logging.ERROR, logger="cymongoose.asgi"):
        with ServerThread(failing_app) as server:
            with httpx.Client() as client:
                r = client.get(server.url + "/boom")
                assert r.status_code == 500
                assert r.text == "Internal Server Error"
                # and the connection keeps serving
                assert client.get(server.url + "/ok").text == "Hello, world!"
    assert any("app failure" in (r.exc_text or "") for r in caplog.records)


async def bad_length_app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/ok":
        await hello_app(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"twelve")]})
    await send({"type": "http.response.body", "body": b"twelve bytes"})


@pytest.mark.parametrize("mode", ["auto", "threaded"])
def test_invalid_content_length_from_the_app_is_500(mode, caplog):
    """The app's start message is refused (ValueError in send): nothing was sent yet, so
    the client gets a 500, not a closed connection."""
    with caplog.at_level(logging.CRITICAL, logger="cymongoose.asgi"):
        with ServerThread(bad_length_app, mode=mode) as server:
            with httpx.Client() as client:
                r = client.get(server.url + "/")
                assert r.status_code == 500
                assert r.text == "Internal Server Error"
            with httpx.Client() as client:
                assert client.get(server.url + "/ok").text == "Hello, world!"


def test_keep_alive_sequential_requests():
    with ServerThread(hello_app) as server, httpx.Client() as client:
        for _ in range(50):
            assert client.get(server.url + "/").text == "Hello, world!"


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` Content-Length-framed responses."""
    buf = b""
    bodies = []
    while len(bodies) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(bodies)} responses"
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += sock.recv(65536)
        bodies.append(rest[:length])
        buf = rest[length:]
    return bodies


def test_pipelined_requests_answered_in_order():
    async def path_app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        # Later requests finish faster: ordering must come from the server.
        await asyncio.sleep(0.02 if scope["path"] == "/0" else 0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with ServerThread(path_app) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10)))
            bodies = _read_responses(sock, 10)
    assert bodies == [b"/%d" % i for i in range(10)]


def test_connection_close_honoured():
    with ServerThread(hello_app) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"Hello, world!")


def test_head_has_no_body():
    with ServerThread(hello_app) as server, httpx.Client() as client:
        r = client.head(server.url + "/")
        assert r.status_code == 200 and r.content == b""
        assert client.get(server.url + "/").text == "Hello, world!"


def test_concurrent_requests():
    async def slow_app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async def fire(url):
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as c:
            return await asyncio.gather(*(c.get(url) for _ in range(100)))

    with ServerThread(slow_app) as server:
        responses = asyncio.run(fire(server.url + "/"))
    assert [r.text for r in responses] == ["done"] * 100


def test_start_stop_and_manager_property():
    async def main():
        server = ASGIServer(hello_app)
        with pytest.raises(RuntimeError):
            server.manager  # noqa: B018
        conn = await server.start("http://127.0.0.1:0")
        assert server.manager is not None
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{conn.local_addr[1]}/")
        await server.stop()
        return r

    assert asyncio.run(main()).text == "Hello, world!"


@pytest.mark.parametrize("mode", ["auto", "threaded"])
def test_keep_alive_latency(mode):
    """50 keep-alive requests, one after another: responses go out at once, not at the
    next housekeeping poll."""
    import time

    with ServerThread(hello_app, mode=mode) as server:
        expected = "integrated" if server.server.manager.epoll_fd >= 0 else "threaded"
        assert server.server.mode == (expected if mode == "auto" else mode)
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.settimeout(30)
            start = time.perf_counter()
            for _ in range(50):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while not got.endswith(b"Hello, world!"):
                    chunk = sock.recv(4096)
                    assert chunk
                    got += chunk
            elapsed = time.perf_counter() - start
    # Waiting for the housekeeping poll would cost up to 0.2 s per request.
    assert elapsed < 3.0, f"50 keep-alive requests took {elapsed:.3f}s"


async def bad_header_streaming_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"x-bad", b"a\r\nInjected: yes")]})
    for piece in (b"HTTP/1.1 200 OK\r\n", b"X-Fake: 1\r\n\r\n"):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("mode", ["auto", "threaded"])
def test_refused_head_of_streamed_response_sends_only_500(mode, caplog):
    """The core refuses the head (CR/LF in a header) when the first body piece streams it:
    a 500, then the close; none of the body pieces the app goes on sending."""
    with caplog.at_level(logging.CRITICAL, logger="cymongoose.asgi"):
        with ServerThread(bad_header_streaming_app, mode=mode) as server:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert body == b"Internal Server Error"
    assert b"Injected" not in data and b"X-Fake" not in data


async def head_failing_app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/raise":
        raise ValueError("app failure")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"x-bad", b"a\r\nInjected: yes")]})
    await send({"type": "http.response.body", "body": b"body",
                "more_body": scope["path"] == "/refused-streamed"})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("mode", ["auto", "threaded"])
@pytest.mark.parametrize("path", ["/raise", "/refused", "/refused-streamed"])
def test_500_to_head_has_no_body(mode, path, caplog):
    """RFC 9110 section 9.3.2: the 500 for an app that raised or set a header the core
    refuses has no content for HEAD (the client would read it as the next response)."""
    with caplog.at_level(logging.CRITICAL, logger="cymongoose.asgi"):
        with ServerThread(head_failing_app, mode=mode) as server:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"Injected" not in data
    assert body == b""
