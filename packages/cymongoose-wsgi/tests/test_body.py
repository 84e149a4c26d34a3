"""``wsgi.input``: request bodies of every size and framing, read every way PEP 3333 allows."""

from __future__ import annotations

import hashlib
import json
import socket
import threading

import httpx
import pytest
from wsgi_wire import read_response

from cymongoose.wsgi.testing import ServerThread


def reader_app(environ, start_response):
    """Reads the body the way the query string says and reports what it saw."""
    stream = environ["wsgi.input"]
    how = environ["QUERY_STRING"]
    limit = -1
    if how == "read":
        pieces = [stream.read()]
    elif how.startswith("read-"):
        size = int(how[5:])
        pieces = []
        while True:
            block = stream.read(size)
            assert len(block) <= size
            if not block:
                break
            pieces.append(block)
    elif how == "readline":
        pieces = []
        while True:
            line = stream.readline()
            if not line:
                break
            pieces.append(line)
    elif how.startswith("readline-"):
        limit = int(how[9:])
        pieces = []
        while True:
            line = stream.readline(limit)
            assert len(line) <= limit
            if not line:
                break
            pieces.append(line)
    elif how == "readlines":
        pieces = stream.readlines()
    elif how == "iter":
        pieces = list(stream)
    else:
        raise AssertionError(how)
    body = b"".join(pieces)
    out = json.dumps(
        {
            "size": len(body),
            "pieces": len(pieces),
            "sha256": hashlib.sha256(body).hexdigest(),
            # each line ends with a newline, unless it was cut at the size limit
            "lines_ok": "line" not in how
            or all(p.endswith(b"\n") or len(p) == limit for p in pieces[:-1]),
            "content_length": environ.get("CONTENT_LENGTH"),
            "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
            "after_end": stream.read(10).decode(),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


LINES = b"".join(b"line %d %s\n" % (i, b"x" * (i % 300)) for i in range(5000)) + b"no newline"
SMALL = b"one\ntwo\nthree"


@pytest.fixture(scope="module")
def reader_url(threads):
    with ServerThread(reader_app, workers=threads and 4, access_log=False) as srv:
        yield srv.url


@pytest.mark.parametrize("body", [SMALL, LINES], ids=["small", "large"])
@pytest.mark.parametrize(
    "how", ["read", "read-1", "read-1000", "read-100000", "readline", "readline-7", "readlines",
            "iter"]
)
def test_every_read_method_sees_the_whole_body(reader_url, body, how):
    if how == "read-1" and body is LINES:
        body = LINES[:20000]  # one byte per call: keep it short
    r = httpx.post(f"{reader_url}/?{how}", content=body, timeout=60)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["size"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["lines_ok"]
    assert seen["content_length"] == str(len(body))
    assert seen["after_end"] == ""
    if how == "readline":
        assert seen["pieces"] == body.count(b"\n") + 1


@pytest.mark.parametrize("size", [10, 200_000, 5_000_000])
def test_chunked_request_body(reader_url, size):
    body = (bytes(range(256)) * (size // 256 + 1))[:size]

    def gen():
        for i in range(0, len(body), 70_001):
            yield body[i : i + 70_001]

    r = httpx.post(f"{reader_url}/?read-65536", content=gen(), timeout=60)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["size"] == size
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    # The body ends where the chunked framing says: no length is invented for the app.
    assert seen["transfer_encoding"] == "chunked"
    assert seen["content_length"] in (None, str(size))


def test_chunked_body_over_raw_socket_then_keep_alive(reader_url):
    port = int(reader_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /?readline HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nab\nc\r\n3;ext=1\r\nd\ne\r\n0\r\nTrailer: x\r\n\r\n"
        )
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        seen = json.loads(body)
        assert seen["size"] == 7 and seen["pieces"] == 3
        sock.sendall(b"POST /?read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz")
        head, body = read_response(sock)
        assert json.loads(body)["size"] == 3


def test_expect_100_continue(reader_url):
    port = int(reader_url.rsplit(":", 1)[1])
    body = b"z" * 100_000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /?read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(1)
            assert chunk
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        head, out = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(out)["size"] == len(body)


@pytest.mark.pooled_only("inline mode receives the whole body before the app runs")
def test_upload_larger_than_memory_budget_is_streamed_with_backpressure():
    """A slow app: the server stops reading, so the client cannot push the whole body."""
    release = threading.Event()
    result = {}

    def app(environ, start_response):
        release.wait(30)
        digest = hashlib.sha256()
        stream = environ["wsgi.input"]
        while block := stream.read(1 << 16):
            digest.update(block)
        result["sha256"] = digest.hexdigest()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [digest.hexdigest().encode()]

    size = 64 << 20
    body = bytes(range(256)) * (size // 256)
    with ServerThread(app, workers=2, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            view = memoryview(body)
            sock.settimeout(2)
            sent = 0
            with pytest.raises(TimeoutError):
                while sent < size:
                    sent += sock.send(view[sent : sent + (1 << 20)])
            # Far less than the body got through: the server holds a bounded amount only.
            assert sent < size // 2
            release.set()
            sock.settimeout(30)
            sock.sendall(view[sent:])
            head, out = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200")
    assert out.decode() == hashlib.sha256(body).hexdigest()


def test_body_not_read_by_the_app_is_skipped_and_keep_alive_continues(threads):
    seen = []

    def app(environ, start_response):
        seen.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    clients = set()
    with ServerThread(app, workers=threads and 2, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for size in (10, 100_000, 3_000_000):
                r = client.post("/upload", content=b"u" * size)
                assert r.text == "ok"
                r = client.get("/next")
                assert r.text == "ok"
                clients.add(r.extensions["network_stream"].get_extra_info("client_addr"))
    assert seen == ["/upload", "/next"] * 3
    assert len(clients) == 1  # one connection throughout


@pytest.mark.pooled_only("inline mode receives the whole body before the app runs")
def test_client_disconnect_mid_body_reaches_the_reading_app():
    errors = []
    started = threading.Event()
    done = threading.Event()

    def app(environ, start_response):
        started.set()
        try:
            while environ["wsgi.input"].read(65536):
                pass
        except OSError as exc:  # ClientDisconnected is a ConnectionError
            errors.append(exc)
            raise
        finally:
            done.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"unexpected"]

    with ServerThread(app, workers=2, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            sock.sendall(b"x" * 400_000)  # enough for the request to reach the app
            assert started.wait(30)  # the app is reading when the client goes
        assert done.wait(30)
        # the server goes on serving
        assert httpx.post(srv.url, content=b"y" * 10).status_code == 200
    assert errors and isinstance(errors[0], ConnectionError)


def test_many_large_uploads_on_one_keep_alive_connection(threads):
    """Each body overflows the read-ahead buffer (reading pauses) and may end while paused;
    the connection must keep reading for the next request every time."""

    def app(environ, start_response):
        digest = hashlib.sha256()
        while block := environ["wsgi.input"].read(1 << 16):
            digest.update(block)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [digest.hexdigest().encode()]

    body = bytes(range(256)) * 7000  # 1.7 MiB
    expected = hashlib.sha256(body).hexdigest()

    def chunked():
        for i in range(0, len(body), 100_000):
            yield body[i : i + 100_000]

    with ServerThread(app, workers=threads and 2, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for i in range(150):
                r = client.post("/", content=chunked() if i % 2 else body)
                assert r.text == expected, i


def test_stalled_small_body_holds_no_app_thread_and_times_out(monkeypatch, threads):
    from cymongoose.wsgi import protocol as server_module

    monkeypatch.setattr(server_module, "BODY_READ_TIMEOUT_S", 1.0)
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as stalled:
            stalled.sendall(b"POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n")
            stalled.sendall(b"x" * 100_000)
            # the only app thread is still free for others
            assert httpx.post(srv.url + "/normal", content=b"y" * 10, timeout=10).text == "ok"
            head, body = read_response(stalled)
            assert head.startswith(b"HTTP/1.1 408")
            assert stalled.recv(1) == b""  # and the connection is closed
    assert calls == ["/normal"]
