"""HTTP/1.1 pipelining (RFC 9112 section 9.3.2): many requests in one write, answered in
order, one response each, in both modes; a client that pipelines without reading is not
buffered for without bound."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from cymongoose.wsgi.testing import ServerThread


def path_app(environ, start_response):
    """GET /x -> b"/x"; POST -> b"<path>:" + the body; /slow waits 0.3 s first."""
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(0.3)
    body = path.encode()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if environ["REQUEST_METHOD"] == "POST":
        body += b":" + environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` responses with a Content-Length body: [(status line, body)]."""
    f = sock.makefile("rb")
    answers = []
    for _ in range(count):
        status = f.readline().rstrip(b"\r\n")
        assert status, f"connection closed after {len(answers)} responses"
        length = None
        while (line := f.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        assert length is not None, status
        answers.append((status, f.read(length)))
    return answers


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() \
        + body


@pytest.mark.parametrize("depth", [16, 1000])
def test_pipelined_requests_in_one_write_are_answered_in_order(threads, depth):
    with ServerThread(path_app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"".join(get(f"/{i}") for i in range(depth)))
            answers = read_responses(sock, depth)
            # one response per request: nothing more follows, the connection goes on
            sock.sendall(get("/after"))
            assert read_responses(sock, 1) == [(b"HTTP/1.1 200 OK", b"/after")]
    assert answers == [(b"HTTP/1.1 200 OK", f"/{i}".encode()) for i in range(depth)]


def test_pipelined_gets_and_posts_with_bodies(threads):
    # Bodies of every size: empty, small, and one of 300 KB (streamed to the app) among them.
    bodies = [b"", b"a", b"x" * 1000, bytes(range(256)) * 1200, b"tail"]
    wire, expected = [], []
    for i, body in enumerate(bodies * 3):
        wire.append(get(f"/g{i}"))
        expected.append(f"/g{i}".encode())
        wire.append(post(f"/p{i}", body))
        expected.append(f"/p{i}:".encode() + body)
    with ServerThread(path_app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sender = threading.Thread(target=sock.sendall, args=(b"".join(wire),))
            sender.start()  # a 1 MB write: the server answers while it arrives
            answers = read_responses(sock, len(expected))
            sender.join()
    assert [status for status, _ in answers] == [b"HTTP/1.1 200 OK"] * len(expected)
    assert [body for _, body in answers] == expected


def test_a_slow_request_in_a_pipeline_does_not_reorder_the_answers(threads):
    paths = ["/a", "/b", "/slow", "/c", "/d", "/slow", "/e"]
    with ServerThread(path_app, threads=threads, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"".join(get(p) if p != "/c" else post(p, b"body") for p in paths))
            answers = read_responses(sock, len(paths))
    assert [body for _, body in answers] == [
        b"/a", b"/b", b"/slow", b"/c:body", b"/d", b"/slow", b"/e"]


def test_a_pipelining_client_that_does_not_read_is_paused_not_buffered_for(threads):
    """2,000 pipelined requests for 64 KiB each (128 MiB of answers) from a client that
    reads nothing: the server answers only as many as the socket buffers and its 1 MiB
    pipelining limit hold, stays available to others, and answers the rest, in order,
    once the client reads."""
    block = b"z" * 65536
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Length", str(len(block)))])
        return [block]

    count = 2000
    with ServerThread(app, threads=threads, access_log=False) as srv:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.settimeout(30)
            sock.connect(("127.0.0.1", srv.port))
            sock.sendall(b"".join(get(f"/{i}") for i in range(count)))  # ~60 KB
            # Wait until the server stops answering (the client's window is full).
            seen, deadline = -1, time.monotonic() + 20
            while seen != len(calls) and time.monotonic() < deadline:
                seen = len(calls)
                time.sleep(0.5)
            # The socket buffers hold a few MB at most: far fewer than 2,000 answers.
            assert len(calls) < 400, len(calls)
            assert httpx.get(srv.url + "/other", timeout=10).status_code == 200
            answers = read_responses(sock, count)
    assert len(answers) == count and all(body == block for _, body in answers)
    assert [path for path in calls if path != "/other"] == [f"/{i}" for i in range(count)]
