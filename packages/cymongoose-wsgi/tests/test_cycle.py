"""The request cycle's streaming rules (PEP 3333 "Buffering and Streaming"), in both
modes: a block leaves before the app is asked for the next; the head waits for the first
non-empty block; an error after it cuts the body short and closes the connection."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from cymongoose.wsgi.testing import ServerThread


def _read_until(sock: socket.socket, data: bytearray, marker: bytes, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while marker not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False
        if not chunk:
            return False
        data += chunk
    return True


def _start(start_response, length: str | None) -> None:
    """start_response 200 text/plain, with ``Content-Length: length`` unless None."""
    headers = [("Content-Type", "text/plain")]
    if length is not None:
        headers.append(("Content-Length", length))
    start_response("200 OK", headers)


def _read_to_eof(sock: socket.socket, data: bytearray) -> bytes:
    sock.settimeout(30)
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("length", [None, "12"], ids=["chunked", "content-length"])
def test_each_block_reaches_the_client_before_the_next_is_asked_for(threads, length):
    """The app checks, when asked for its second block, that the client has the first
    one already (in inline mode too: it is written to the socket, not held back)."""
    seen_by_client: list[bool] = []
    client: socket.socket | None = None

    def app(environ, start_response):
        _start(start_response, length)

        def body():
            yield b"first "
            assert client is not None
            seen_by_client.append(_read_until(client, received, b"first ", 10))
            yield b"second"

        return body()

    received = bytearray()
    with ServerThread(app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            client = sock
            # No Connection header: the core's fast path takes the request.
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + 30
            while not seen_by_client and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _read_until(sock, received, b"second", 30)
            data = bytes(received)
    assert seen_by_client == [True]
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"second" in data


@pytest.mark.parametrize("length", [None, "4"], ids=["chunked", "content-length"])
def test_an_error_before_the_first_block_gives_500(threads, length):
    def app(environ, start_response):
        _start(start_response, length)

        def body():
            yield b""  # empty blocks do not send the head
            raise RuntimeError("before any body")

        return body()

    with ServerThread(app, threads=threads, access_log=False) as srv:
        r = httpx.get(srv.url, timeout=10)
    assert r.status_code == 500
    assert r.text == "Internal Server Error"


@pytest.mark.parametrize("length", [None, "20"], ids=["chunked", "content-length"])
def test_an_error_after_the_first_block_cuts_the_body_and_closes(threads, length):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/ok":
            _start(start_response, None)
            return [b"ok"]
        _start(start_response, length)

        def body():
            yield b"partial"
            raise RuntimeError("mid-body")

        return body()

    with ServerThread(app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = _read_to_eof(sock, bytearray())  # the server closes the connection
        assert httpx.get(srv.url + "/ok", timeout=10).text == "ok"  # and serves on
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    if length is None:
        assert body == b"7\r\npartial\r\n"  # no final chunk: the client sees it is cut short
    else:
        assert body == b"partial"  # 7 of the 20 bytes announced


@pytest.mark.pooled_only("the pieces are ready together only when another thread posts them")
def test_pieces_ready_together_leave_as_few_chunks(threads):
    pieces = [b"%03d," % i for i in range(200)]

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (piece for piece in pieces)

    with ServerThread(app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            received = bytearray()
            assert _read_until(sock, received, b"\r\n0\r\n\r\n", 30)
    _, _, chunked = bytes(received).partition(b"\r\n\r\n")
    chunks = []
    while True:
        size_line, _, chunked = chunked.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(chunked[:size])
        chunked = chunked[size + 2:]
    assert b"".join(chunks) == b"".join(pieces)
    assert len(chunks) < len(pieces) // 2  # a chunk header per piece was the old cost


def test_head_to_an_app_that_skips_its_body_gets_no_invented_length(threads):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"hello"]

    with ServerThread(app, threads=threads, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            head = client.head("/")
            get = client.get("/")
    assert head.status_code == 200 and head.content == b""
    assert "content-length" not in head.headers  # not "0": the GET body is 5 bytes
    assert get.headers["content-length"] == "5"


def test_a_chunked_upload_gets_no_made_up_content_length(threads):
    seen = []

    def app(environ, start_response):
        data = environ["wsgi.input"].read()
        seen.append((environ.get("CONTENT_LENGTH"), environ.get("wsgi.input_terminated"), data))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def pieces():
        yield b"abc"
        yield b"def"

    with ServerThread(app, threads=threads, access_log=False) as srv:
        r = httpx.post(srv.url, content=pieces(), timeout=10)  # Transfer-Encoding: chunked
    assert r.text == "ok"
    assert seen == [(None, True, b"abcdef")]


@pytest.mark.parametrize("body", ["list", "generator"])
def test_a_refused_head_gives_one_500_and_nothing_after(threads, body):
    """The core refuses a header value with NUL when the head is written: the client gets
    one clean 500 (one Connection: close), then the close; no body or final chunk of the
    refused response follows (found by nox -s fuzz, inline mode)."""
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Bad", "a\0b")])
        return [b"body"] if body == "list" else (block for block in [b"body"])

    with ServerThread(app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = _read_to_eof(sock, bytearray())
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert head.count(b"Connection: close") == 1
    assert rest == b"Internal Server Error"
