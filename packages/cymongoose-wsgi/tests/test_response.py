"""Responses as PEP 3333 defines them: start_response/exc_info, write(), close(), HEAD,
Content-Length, status codes without a body, errors before and after the head."""

from __future__ import annotations

import socket
import sys
import threading

import httpx
import pytest

from cymongoose.wsgi.testing import ServerThread


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request``, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_exc_info_before_the_head_replaces_the_response(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise KeyError("missing")
        except KeyError:
            start_response(
                "404 Not Found", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"replaced"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        r = httpx.get(srv.url)
    assert r.status_code == 404
    assert r.text == "replaced"
    assert "x-first" not in r.headers


def test_exc_info_after_the_head_closes_the_connection(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial "
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"never"

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        reply = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"partial " in reply
    assert b"never" not in reply
    assert not reply.endswith(b"0\r\n\r\n")  # no terminating chunk: the client sees the error


def test_second_start_response_without_exc_info_is_an_error(threads):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("201 Created", [])
        return [b""]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        assert httpx.get(srv.url).status_code == 500


@pytest.mark.pooled_only("the app blocks")
def test_write_callable_sends_before_the_app_returns():
    release = threading.Event()

    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        release.wait(30)
        return [b"returned"]

    with ServerThread(app, workers=1, access_log=False) as srv:
        with httpx.stream("GET", srv.url) as r:
            chunks = r.iter_raw()
            first = next(chunks)
            assert first == b"written "  # arrived while the app is still blocked
            release.set()
            rest = b"".join(chunks)
    assert first + rest == b"written returned"


class Tracked:
    """A response iterable that records close()."""

    def __init__(self, blocks, closed: threading.Event, block_first=None):
        self.blocks = blocks
        self.closed = closed
        self.block_first = block_first

    def __iter__(self):
        for block in self.blocks:
            yield block
            if self.block_first is not None:
                self.block_first.wait(30)

    def close(self):
        self.closed.set()


@pytest.mark.parametrize("length", [None, "3"])
def test_close_called_after_normal_response(length, threads):
    closed = threading.Event()

    def app(environ, start_response):
        headers = [("Content-Type", "text/plain")]
        if length:
            headers.append(("Content-Length", length))
        start_response("200 OK", headers)
        return Tracked([b"a", b"b", b"c"], closed)

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        assert httpx.get(srv.url).text == "abc"
        assert closed.wait(10)


@pytest.mark.pooled_only("the app blocks")
def test_close_called_when_client_disconnects_mid_stream():
    closed = threading.Event()
    unblock = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/small":
            return [b"small"]
        return Tracked((b"x" * 65536 for _ in range(10_000)), closed, block_first=unblock)

    with ServerThread(app, workers=1, access_log=False, stream_timeout=30) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        unblock.set()
        assert closed.wait(30)
        # the worker is free again
        assert httpx.get(srv.url + "/small", timeout=10).text == "small"


def test_close_called_when_app_raises_while_iterating(threads):
    closed = threading.Event()

    class Failing(Tracked):
        def __iter__(self):
            if self.blocks:
                yield b"a"
            raise RuntimeError("boom")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return Failing(["a"] if environ["PATH_INFO"] == "/after" else [], closed)

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        # Before the first block: nothing is out, a 500.
        assert httpx.get(srv.url + "/before").status_code == 500
        assert closed.wait(10)
        closed.clear()
        # After it: the block went out with the head; the body is cut short (no 500 can
        # follow a 200), and the connection closes.
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(srv.url + "/after")
        assert closed.wait(10)


def test_head_runs_the_app_and_sends_no_body(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"12345"
        yield b"678"

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with httpx.Client() as client:
            r = client.head(srv.url)
            assert r.status_code == 200
            # GET streams it chunked: HEAD gets no made-up length (RFC 9110 section 8.6)
            assert "content-length" not in r.headers
            assert "transfer-encoding" not in r.headers
            assert r.content == b""
            assert client.get(srv.url).text == "12345678"  # same connection still in sync


def test_content_length_passed_through_when_streaming(threads):
    size = 3 * 1024 * 1024

    def app(environ, start_response):
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
        )
        for _ in range(size // 65536):
            yield b"z" * 65536

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with httpx.Client() as client:
            r = client.get(srv.url)
            assert r.headers["content-length"] == str(size)
            assert "transfer-encoding" not in r.headers
            assert r.content == b"z" * size
            assert client.get(srv.url).status_code == 200  # keep-alive after it


def test_short_body_for_content_length_closes_the_connection(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"short"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        reply = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: 10" in head
    assert body == b"short"  # then the server closed: the client can tell it is truncated


def test_long_body_for_content_length_is_truncated(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"too long"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with httpx.Client() as client:
            assert client.get(srv.url).content == b"too "
            assert client.get(srv.url).content == b"too "


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_no_body_statuses(status, threads):
    def app(environ, start_response):
        start_response(status, [("X-A", "1")])
        return [b"ignored"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        port = srv.port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"\r\n\r\n") < 2:
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
    first, second = data.split(b"\r\n\r\n")[:2]
    assert first.startswith(b"HTTP/1.1 " + status[:3].encode())
    assert b"ignored" not in data
    assert b"Transfer-Encoding" not in first
    if status.startswith("204"):
        assert b"Content-Length" not in first  # RFC 9110 section 8.6
    assert second.startswith(b"HTTP/1.1 " + status[:3].encode())


def test_error_before_head_is_500_and_connection_stays_usable(threads):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/bad":
            raise RuntimeError("before")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fine"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with httpx.Client() as client:
            r = client.get(srv.url + "/bad")
            assert r.status_code == 500
            assert r.text == "Internal Server Error"
            assert client.get(srv.url + "/").text == "fine"


def test_app_returning_without_start_response_is_500(threads):
    def app(environ, start_response):
        return [b"no head"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        assert httpx.get(srv.url).status_code == 500


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Bad", "a\r\nInjected: 1")],
        [("Bad Name:", "v")],
        (("Content-Type", "text/plain"),),  # a tuple, not a list
        [("Content-Type", b"text/plain")],  # bytes, not str
    ],
)
def test_invalid_headers_give_500(headers, threads):
    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b"x"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        r = httpx.get(srv.url)
    assert r.status_code == 500
    assert "injected" not in r.headers


def test_http10_streaming_ends_with_close(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one "
        yield b"two"

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        reply = raw_exchange(srv.port, b"GET / HTTP/1.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert b"Connection: close" in head
    assert body == b"one two"


def test_http10_keep_alive_with_known_length(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            for _ in range(2):
                sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                data = b""
                while not data.endswith(b"ok"):
                    chunk = sock.recv(65536)
                    assert chunk
                    data += chunk
                assert b"Connection: keep-alive" in data


def test_file_wrapper_closes_the_file(tmp_path, threads):
    path = tmp_path / "f.bin"
    data = bytes(range(256)) * 40_000
    path.write_bytes(data)
    opened = []

    def app(environ, start_response):
        f = open(path, "rb")
        opened.append(f)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 32768)

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        assert httpx.get(srv.url).content == data
    assert opened[0].closed


def test_client_that_stops_reading_is_dropped_after_stream_timeout(threads):
    closed = threading.Event()
    total = 200 * 1024 * 1024

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/small":
            return [b"small"]
        return Tracked((b"s" * 65536 for _ in range(total // 65536)), closed)

    with ServerThread(app, workers=threads and 1, access_log=False, stream_timeout=0.5) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert closed.wait(60)  # the worker gave up and closed the iterable
            received = 0
            try:
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            # the server let go of the connection long before the body was out
            assert received < total // 4
        assert httpx.get(srv.url + "/small", timeout=10).text == "small"  # worker free again


@pytest.mark.parametrize("status", ["100 Continue", "101 Switching Protocols"])
def test_interim_status_from_app_is_an_error(status, threads):
    errors = []

    def app(environ, start_response):
        try:
            start_response(status, [])
        except ValueError as exc:
            errors.append(exc)
            raise
        return [b"x"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        assert httpx.get(srv.url).status_code == 500
    assert "1xx" in str(errors[0])


@pytest.mark.parametrize("stream", [False, True])
def test_status_reason_phrase_is_the_apps(stream, threads):
    def app(environ, start_response):
        start_response("404 Gone Fishing", [("Content-Type", "text/plain")])
        if stream:
            return (b for b in [b"not ", b"here"])
        return [b"not here"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        reply = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404 Gone Fishing\r\n")


@pytest.mark.parametrize(
    ("offset", "length"), [(0, None), (1000, None), (500, 70_000), (0, 0)]
)
def test_file_wrapper_from_the_file_position_and_length(tmp_path, offset, length, threads):
    data = bytes(range(256)) * 2000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    files = []

    def app(environ, start_response):
        f = open(path, "rb")
        f.seek(offset)
        files.append(f)
        headers = [("Content-Type", "application/octet-stream")]
        if length is not None:
            headers.append(("Content-Length", str(length)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f, 8192)

    expected = data[offset:] if length is None else data[offset : offset + length]
    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with httpx.Client() as client:
            for _ in range(3):  # keep-alive across file responses
                r = client.get(srv.url)
                assert r.headers["content-length"] == str(len(expected))
                assert r.content == expected
            assert client.head(srv.url).content == b""
    assert len(files) == 4 and all(f.closed for f in files)


def test_file_wrapper_shorter_than_content_length_closes_the_connection(tmp_path, threads):
    path = tmp_path / "short.bin"
    path.write_bytes(b"0123456789")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "20")])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        reply = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.endswith(b"\r\n\r\n0123456789")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_refused_head_500_has_no_body_for_head(method, threads):
    # A header the core refuses when it writes it (NUL): a 500 instead; for HEAD without
    # its content (RFC 9110 section 9.3.2), which the client would read as the next response.
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Value", "a\0b")])
        return [b"body"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        data = raw_exchange(srv.port, f"{method} / HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n".encode())
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"x-value" not in head.lower()
    assert body == (b"" if method == "HEAD" else b"Internal Server Error")
