"""What only the inline mode (threads=0, the app on the poll thread) has to get right: the
loop keeps serving while a client is slow, request bodies are received before the app
runs, and streams in flight survive graceful shutdown. The rest of the suite runs in both
modes (see conftest.py)."""

from __future__ import annotations

import hashlib
import io
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import httpx
import pytest

from cymongoose.wsgi import WSGIServer, inline
from cymongoose.wsgi.testing import ServerThread


@pytest.fixture(scope="module")
def threads() -> int:
    """This module always serves inline (threads=0): run it once, not per mode."""
    return 0


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed before the response head"
        data += chunk
    return data


def test_threads_zero_runs_the_app_on_the_poll_thread():
    seen = []

    def app(environ, start_response):
        seen.append((threading.current_thread().name, environ["wsgi.multithread"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inline"]

    with ServerThread(app, threads=0, access_log=False) as srv:
        assert srv.server.workers == 0
        assert httpx.get(srv.url).text == "inline"
    assert seen == [("wsgi-test-server", False)]


def test_slow_reader_does_not_block_other_clients():
    produced = []
    block = b"z" * 65536
    blocks = 400  # 25 MiB: far more than socket buffers and the send high-water mark

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/hello":
            return [b"hello"]

        def gen():
            for i in range(blocks):
                produced.append(i)
                yield block

        return gen()

    with ServerThread(app, threads=0, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            slow.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_head(slow).startswith(b"HTTP/1.1 200")
            # The slow client reads nothing more; the loop still answers everybody else.
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                for _ in range(20):
                    assert client.get("/hello").text == "hello"
            # The generator waits for the socket instead of filling memory.
            assert len(produced) < blocks // 4
            data = b""
            while not data.endswith(b"\r\n0\r\n\r\n"):  # the end of the chunked body
                chunk = slow.recv(1 << 20)
                assert chunk, "closed before the end of the body"
                data = data[-16:] + chunk
    assert len(produced) == blocks


def test_large_upload_is_received_before_the_app_runs():
    body = hashlib.sha256(b"seed").digest() * (3 * 65536 // 32 * 8)  # 6 MiB
    calls = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        data = stream.read()
        calls.append((environ.get("CONTENT_LENGTH"), environ.get("wsgi.input_terminated"),
                      len(data)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [hashlib.sha256(data).hexdigest().encode()]

    def chunked():
        for i in range(0, len(body), 300_000):
            yield body[i : i + 300_000]

    expected = hashlib.sha256(body).hexdigest()
    with ServerThread(app, threads=0, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            assert client.post("/", content=body).text == expected
            assert client.post("/", content=chunked()).text == expected  # no Content-Length
    size = str(len(body))
    # A chunked body gets no made-up CONTENT_LENGTH: wsgi.input ends where the body does.
    assert calls == [(size, None, len(body)), (None, True, len(body))]


def test_body_memory_is_bounded_by_spilling_to_a_file(monkeypatch):
    monkeypatch.setattr(inline, "BODY_MEMORY_BYTES", 100_000)
    seen = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        seen.append(bool(getattr(stream, "_rolled", False)))  # the spool went to disk
        data = stream.read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(data)).encode()]

    with ServerThread(app, threads=0, access_log=False) as srv:
        assert httpx.post(srv.url, content=b"d" * 1_000_000, timeout=30).text == "1000000"
    assert seen == [True]


def test_client_gone_mid_upload_never_reaches_the_app():
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with ServerThread(app, threads=0, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            sock.sendall(b"x" * 400_000)
        assert httpx.post(srv.url + "/next", content=b"y", timeout=10).text == "ok"
    assert calls == ["/next"]


def test_graceful_shutdown_lets_a_suspended_stream_finish():
    block = b"g" * 65536
    blocks = 200
    closed = threading.Event()

    class Body:
        def __iter__(self):
            for _ in range(blocks):
                yield block

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Body()

    srv = ServerThread(app, threads=0, access_log=False, graceful_timeout_s=30)
    srv.__enter__()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = read_head(sock)
            srv.server.shutdown()  # while the stream waits for this client
            while chunk := sock.recv(1 << 20):
                data += chunk
    finally:
        srv.stop()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\n\r\n")  # the whole stream, then the close
    assert body.count(block) == blocks
    assert closed.is_set()


def test_pipelined_requests_after_a_suspended_stream():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/stream":
            return (b"s" * 65536 for _ in range(50))
        return [environ["PATH_INFO"].encode()]

    with ServerThread(app, threads=0, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(
                b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(1 << 20):
                data += chunk
    assert data.count(b"HTTP/1.1 200") == 3
    assert data.endswith(b"\r\n\r\n/b")
    assert data.index(b"\r\n\r\n/a") < data.index(b"\r\n\r\n/b")
    assert data.count(b"s" * 65536) == 50


def test_cli_threads_zero(tmp_path):
    (tmp_path / "inlineapp.py").write_text(
        textwrap.dedent(
            """
            import threading

            def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [str(environ["wsgi.multithread"]).encode()]
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cymongoose.wsgi", "inlineapp:app", "--port", "0", "--threads", "0"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []  # the start-up lines, up to the one with the address
        while not (match := re.search(r"running on http://127\.0\.0\.1:(\d+)",
                                      lines[-1] if lines else "")):
            lines.append(proc.stderr.readline())
            assert lines[-1] and len(lines) < 20, lines
        assert httpx.get(f"http://127.0.0.1:{match.group(1)}/").text == "False"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_negative_threads_is_an_error():
    with pytest.raises(ValueError, match="threads"):
        WSGIServer(lambda environ, start_response: [], threads=-1)


@pytest.mark.parametrize("body", ["list", "generator"])
def test_a_head_the_core_refuses_gives_500(body):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/ok":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        # NUL: passes start_response, refused when the head is written.
        headers = [("Content-Type", "text/plain"), ("Content-Length", "4"), ("X-Value", "a\0b")]
        start_response("200 OK", headers)
        return [b"body"] if body == "list" else iter([b"body"])

    with ServerThread(app, threads=0, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            r = client.get("/")
            assert r.status_code == 500
            assert "x-value" not in r.headers
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            assert client.get("/ok").text == "ok"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Forwarded", "for=198.51.100.1;proto=https"),
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.com"),
    ],
)
def test_each_proxy_header_alone_is_honoured(header, value):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        keys = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST")
        return [" ".join(environ[key] for key in keys).encode()]

    with ServerThread(app, threads=0, access_log=False) as srv:
        plain = httpx.get(srv.url).text
        proxied = httpx.get(srv.url, headers={header: value}).text
    assert plain.startswith("127.0.0.1 http 127.0.0.1:")
    assert proxied != plain


def test_file_wrapper_is_sent_by_the_core_without_reads_in_python(tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    opened = []

    class NoPythonReads(io.FileIO):
        def read(self, size=-1):
            raise AssertionError("file bytes went through Python")

    def app(environ, start_response):
        f = NoPythonReads(str(path))
        opened.append(f)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f)

    with ServerThread(app, threads=0, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for _ in range(3):  # keep-alive goes on after each file
                r = client.get("/")
                assert r.content == data
                assert r.headers["content-length"] == str(len(data))
    assert len(opened) == 3
    assert all(f.closed for f in opened)


@pytest.mark.parametrize("length", [None, "15"])
def test_write_callable_then_returned_blocks(length):
    def app(environ, start_response):
        headers = [("Content-Type", "text/plain")]
        if length:
            headers.append(("Content-Length", length))
        write = start_response("200 OK", headers)
        write(b"written ")
        write(b"and ")
        return [b"ret"]

    with ServerThread(app, threads=0, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            r = client.get("/")
            assert r.text == "written and ret"
            if length:
                assert r.headers["content-length"] == length
            else:
                assert r.headers["transfer-encoding"] == "chunked"
            assert client.get("/").text == "written and ret"  # keep-alive goes on


# -- the core's C fast path (WsgiFastPath) and the Python path on one connection -----------


def test_keep_alive_connection_mixes_plain_and_special_requests(caplog):
    """Plain requests are answered in C, the others by Python: HEAD, a Connection header,
    a generator, write(), 204, a status not seen before; all on one connection, in order,
    each in the access log."""

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/gen":
            def body():
                start_response("200 OK", [("Content-Type", "text/plain")])
                yield b"gen"
            return body()
        if path == "/write":
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"written ")
            return [b"returned"]
        if path == "/empty":
            start_response("204 No Content", [])
            return [b""]
        if path == "/teapot":
            start_response("418 I'm a teapot", [("Content-Length", "3")])
            return [b"tea"]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"plain"]

    requests = [
        ("GET", "/", {}, 200, b"plain"),
        ("HEAD", "/", {}, 200, b""),
        ("GET", "/", {"Connection": "keep-alive"}, 200, b"plain"),
        ("GET", "/gen", {}, 200, b"gen"),
        ("GET", "/write", {}, 200, b"written returned"),
        ("GET", "/empty", {}, 204, b""),
        ("GET", "/teapot?x=1", {}, 418, b"tea"),
        ("GET", "/again", {}, 200, b"plain"),
    ]
    with caplog.at_level("INFO", logger="cymongoose.access"):
        with ServerThread(app, threads=0, access_log=True) as srv:
            with httpx.Client() as client:
                for method, path, headers, status, body in requests:
                    r = client.request(method, srv.url + path, headers=headers)
                    assert (r.status_code, r.content) == (status, body), path
                    assert r.headers.get("connection") != "close"
                    if method == "HEAD":
                        assert r.headers["content-length"] == "5"
    lines = [r.getMessage() for r in caplog.records if r.name == "cymongoose.access"]
    assert len(lines) == len(requests)
    assert '"GET /teapot?x=1 HTTP/1.1" 418' in lines[6]
    assert '"GET /again HTTP/1.1" 200' in lines[7]


@pytest.mark.parametrize(
    "case",
    ["second start_response", "non-latin-1 header", "NUL in header", "no start_response"],
)
def test_broken_responses_get_500_and_the_server_goes_on(case, caplog):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/ok":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if case == "second start_response":
            start_response("200 OK", [])
            start_response("200 OK", [])
        elif case == "non-latin-1 header":
            start_response("200 OK", [("X-Name", "\u20ac")])
        elif case == "NUL in header":
            start_response("200 OK", [("X-Name", "a\0b")])
        return [b"body"]

    with ServerThread(app, threads=0, access_log=False) as srv:
        with httpx.Client() as client:
            r = client.get(srv.url + "/broken")
            assert r.status_code == 500
            assert b"body" not in r.content
            assert client.get(srv.url + "/ok").text == "ok"


class _Body:
    """A lazy response iterable (not a list) that records its close()."""

    def __init__(self, blocks, closed, fail_close=False):
        self.blocks = blocks
        self.closed = closed
        self.fail_close = fail_close

    def __iter__(self):
        for block in self.blocks:
            if isinstance(block, Exception):
                raise block
            yield block

    def close(self):
        self.closed.append(True)
        if self.fail_close:
            raise RuntimeError("close failed")


@pytest.mark.parametrize(
    ("blocks", "length", "fail_close", "status", "body"),
    [
        ([b"ab", b"cd"], "4", False, 200, b"abcd"),  # announced length: each block written
        ([b"ab", b"cdef"], "4", False, 200, b"abcd"),  # more than announced: truncated
        # An error after the first block: the body is cut short and the connection closed
        # (PEP 3333: that block is out already); the client sees an incomplete response.
        ([b"ab", ValueError("mid-body")], "4", False, None, None),
        ([b"ab", "str block"], "4", False, None, None),
        ([ValueError("before any block")], "4", False, 500, None),
        ([b"ab", b"cd"], "4", True, 200, b"abcd"),  # close() fails once all is out: logged
        ([b"ab", b"cd"], None, False, 200, b"abcd"),  # no length: streamed (chunked)
    ],
)
def test_lazy_iterables_answered_and_closed(blocks, length, fail_close, status, body):
    closed: list[bool] = []

    def app(environ, start_response):
        headers = [("Content-Type", "text/plain")]
        if length is not None:
            headers.append(("Content-Length", length))
        start_response("200 OK", headers)
        return _Body(blocks, closed, fail_close)

    with ServerThread(app, threads=0, access_log=False) as srv:
        for _ in range(2):  # the server goes on
            with httpx.Client() as client:
                if status is None:
                    with pytest.raises(httpx.RemoteProtocolError):
                        client.get(srv.url)
                    continue
                r = client.get(srv.url)
                assert r.status_code == status
                if body is not None:
                    assert r.content == body
    assert closed == [True, True]


def test_lazy_iterable_shorter_than_its_length_closes_the_connection():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "10")])
        return _Body([b"abc"], [])

    with ServerThread(app, threads=0, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"\r\n\r\nabc")  # what there was, then the close


def test_keep_alive_after_streamed_upload_and_streamed_response():
    """A streamed response finished from the loop's writable event, after a streamed
    request body: the connection stays open for the next request (mongoose once read the
    empty send buffer's write as an error and closed it)."""
    upload = bytes(range(256)) * 4096

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/upload":
            size = str(len(environ["wsgi.input"].read())).encode()
            start_response("200 OK", [("Content-Length", str(len(size)))])
            return [size]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"part {i}\n".encode() for i in range(5))

    def response(sock: socket.socket) -> bytes:
        data = read_head(sock)
        while not data.endswith(b"\r\n0\r\n\r\n") and not data.endswith(b"1048576"):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
        return data

    with ServerThread(app, threads=0, access_log=False) as srv:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                             % len(upload) + upload)
                assert response(sock).endswith(b"1048576")
                for _ in range(3):
                    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert b"part 4" in response(sock)
