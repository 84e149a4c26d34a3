from __future__ import annotations

import json
import logging
import socket
import threading
import time
import warnings
from wsgiref.validate import validator

import httpx
import pytest


def hello_app(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def environ_app(environ, start_response):
    keys = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
    keys["input"] = environ["wsgi.input"].read().decode("latin-1")
    body = json.dumps(keys).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def echo_app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


def test_hello(serve_app):
    url = serve_app(hello_app)
    r = httpx.get(url + "/")
    assert r.status_code == 200
    assert r.text == "Hello, world!"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-length"] == "13"


def test_environ(serve_app, threads):
    url = serve_app(environ_app)
    r = httpx.get(url + "/a%20b/%C3%A9?x=1&y=%20", headers={"X-Custom": "v1", "Accept": "a/b"})
    env = r.json()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    # PEP 3333: decoded bytes as latin-1 code points
    assert env["PATH_INFO"] == "/a b/" + "é".encode().decode("latin-1")
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == url.rsplit(":", 1)[1]
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert env["HTTP_ACCEPT"] == "a/b"
    assert env["HTTP_HOST"] == url.removeprefix("http://")
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is (threads > 0)  # inline: one thread
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert "CONTENT_LENGTH" not in env or env["CONTENT_LENGTH"] in ("", "0")


def test_environ_post_and_duplicate_headers(serve_app):
    url = serve_app(environ_app)
    r = httpx.post(
        url + "/p",
        content=b"a=1",
        headers=[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Dup", "one"),
            ("X-Dup", "two"),
            ("X_Spoof", "no"),
        ],
    )
    env = r.json()
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_X_DUP"] == "one, two"
    assert "HTTP_X_SPOOF" not in env
    assert env["input"] == "a=1"


def _read_response(sock: socket.socket, pending: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, what followed) of one response with a Content-Length."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before the response head"
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    parts, got = [data], len(data)
    while got < length:
        chunk = sock.recv(1 << 20)
        assert chunk, f"closed after {got} of {length} body bytes"
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    return head, data[:length], data[length:]


def _raw_get_json(sock: socket.socket, headers: list[tuple[str, str]]) -> dict:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    sock.sendall(f"GET /h HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode("latin-1"))
    return json.loads(_read_response(sock, b"")[1])


def test_environ_header_names_repeated_on_one_connection(serve_app):
    # The header name -> environ key conversion is cached by the name's bytes: names
    # of one length that differ only inside, in case, or by "_" keep their own keys on
    # every request of a keep-alive connection, in any order.
    url = serve_app(environ_app)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    names = [("X-Ab", "1"), ("X-Ba", "2"), ("x-ab", "3"), ("X_Ab", "4"), ("X-AB", "5")]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for order in (names, names[::-1], names, names[1::2]):
            env = _raw_get_json(sock, order)
            expected_ab = ", ".join(v for n, v in order if n.lower() == "x-ab") or None
            assert env.get("HTTP_X_AB") == expected_ab
            assert env.get("HTTP_X_BA") == ("2" if ("X-Ba", "2") in order else None)
            assert not [k for k in env if k.startswith("HTTP_X_") and
                        k not in ("HTTP_X_AB", "HTTP_X_BA")]


def test_post_echo(serve_app):
    url = serve_app(echo_app)
    payload = bytes(range(256)) * 1000
    r = httpx.post(url + "/echo", content=payload)
    assert r.status_code == 200
    assert r.content == payload


def test_exception_gives_500(serve_app, caplog):
    def broken(environ, start_response):
        raise RuntimeError("boom")

    url = serve_app(broken)
    with caplog.at_level(logging.ERROR, logger="cymongoose.wsgi"):
        with httpx.Client() as client:
            r = client.get(url + "/")
            assert r.status_code == 500
            assert r.text == "Internal Server Error"
            # the connection stays usable
            assert client.get(url + "/").status_code == 500
    assert any("boom" in (rec.exc_text or "") for rec in caplog.records)


def test_exception_after_start_response_gives_500(serve_app):
    def broken(environ, start_response):
        start_response("200 OK", [])
        yield b"never sent"[:0]
        raise ValueError("late")

    url = serve_app(broken)
    r = httpx.get(url + "/")
    assert r.status_code == 500


def test_keep_alive_50_requests(serve_app):
    url = serve_app(hello_app)
    ports = set()
    with httpx.Client() as client:
        for i in range(50):
            r = client.get(f"{url}/{i}")
            assert r.status_code == 200
            assert r.text == "Hello, world!"
            ports.add(r.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(ports) == 1


def test_connection_close_honoured(serve_app):
    url = serve_app(hello_app)
    r = httpx.get(url, headers={"Connection": "close"})
    assert r.status_code == 200
    assert r.headers["connection"] == "close"


def test_streaming_generator(serve_app):
    def gen_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(20):
            yield f"chunk {i}\n".encode()

    url = serve_app(gen_app)
    with httpx.Client() as client:
        with client.stream("GET", url) as r:
            assert r.headers["transfer-encoding"] == "chunked"
            body = b"".join(r.iter_bytes())
        assert body == b"".join(f"chunk {i}\n".encode() for i in range(20))
        # keep-alive still works after a chunked response
        assert client.get(url).status_code == 200


def test_streaming_is_incremental(serve_app):
    got_first = threading.Event()

    def slow(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first\n"
        got_first.wait(10)  # the second block only once the client has the first
        yield b"second\n"

    url = serve_app(slow)
    with httpx.stream("GET", url, timeout=30) as r:
        it = r.iter_raw()
        first = next(it)
        got_first.set()
        assert first == b"first\n"  # alone: not held back until the app was done
        assert b"".join([first, *it]) == b"first\nsecond\n"


@pytest.mark.parametrize("connection", ["keep-alive", None], ids=["python-path", "fast-path"])
def test_a_large_list_is_answered_in_one_piece(serve_app, connection):
    """A list is in memory already: one response with a Content-Length, whichever path
    answers it (a Connection header sends the request to the Python cycle)."""
    big = b"x" * (3 * 1024 * 1024 + 7)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [big[i : i + 65536] for i in range(0, len(big), 65536)]

    url = serve_app(app)
    headers = {"Connection": connection} if connection else {}
    with httpx.Client(headers={"Connection": "x"}) as client:
        client.headers.pop("Connection")
        r = client.get(url, headers=headers)
    assert ("connection" in r.request.headers) == (connection is not None)
    assert r.headers.get("content-length") == str(len(big))
    assert "transfer-encoding" not in r.headers
    assert r.content == big


def test_1mib_bodies_pipelined_to_a_slow_reader_arrive_whole_and_in_order(serve_app):
    """The bench's 1 MiB download (one bytes block with its Content-Length, sent from the
    object itself): three pipelined on one keep-alive connection whose client holds back
    (a small receive buffer, nothing read for a while) each arrive whole and in order,
    and a second client is answered meanwhile."""
    mib = 1024 * 1024
    bodies = {f"/{i}": bytes([65 + i]) * (mib - 1) + b"\n" for i in range(3)}

    def app(environ, start_response):
        body = bodies.get(environ["PATH_INFO"], b"hello")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    url = serve_app(app)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in bodies))
        first = slow.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        # The slow client reads nothing more: the server is not held up by it.
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(5):
                assert client.get("/other").content == b"hello"
        pending = first
        for path, body in bodies.items():
            head, got, pending = _read_response(slow, pending)
            assert head.startswith(b"HTTP/1.1 200"), path
            assert len(got) == len(body) and got == body, path
        assert pending == b""
        # The connection is still open for the next request.
        slow.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        _, got, pending = _read_response(slow, b"")
        assert got == bodies["/1"] and pending == b""


def test_head_has_no_body(serve_app):
    url = serve_app(hello_app)
    r = httpx.head(url)
    assert r.status_code == 200
    assert r.headers["content-length"] == "13"
    assert r.content == b""


def test_file_wrapper(serve_app, tmp_path):
    data = bytes(range(256)) * 4096
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 8192)

    url = serve_app(app)
    assert httpx.get(url).content == data


def test_pipelined_requests_in_order(serve_app, threads):
    def app(environ, start_response):
        # later requests finish first, unless the server serialises per connection
        n = int(environ["PATH_INFO"].strip("/"))
        time.sleep((5 - n) * 0.02)
        body = str(n).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    url = serve_app(app, workers=threads and 8)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        received = b""
        while received.count(b"HTTP/1.1 200") < 5 or not received.endswith(b"4"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    bodies = [part.rsplit(b"\r\n\r\n", 1)[1][:1] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"0", b"1", b"2", b"3", b"4"]


def test_concurrent_clients(serve_app, threads):
    from concurrent.futures import ThreadPoolExecutor

    def app(environ, start_response):
        time.sleep(0.01)
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    url = serve_app(app, workers=threads and 8)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: httpx.get(f"{url}/{i}").text, range(100)))
    assert results == [f"/{i}" for i in range(100)]


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_wsgiref_validator(serve_app, method):
    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    url = serve_app(validator(app))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # wsgiref.validate warns on protocol violations
        with httpx.Client() as client:
            for _ in range(3):
                r = client.request(
                    method, url + "/v?q=1", content=b"xyz" if method == "POST" else None
                )
                assert r.status_code == 200, r.text


def test_client_disconnect_stops_streaming_app(serve_app):
    closed = threading.Event()

    class Endless:
        def __iter__(self):
            while True:
                yield b"x" * 65536

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()

    url = serve_app(app, stream_timeout=1.0)
    with httpx.stream("GET", url) as r:
        it = r.iter_raw()
        next(it)
    # the iterable's close() runs once the server notices the client is gone
    assert closed.wait(30)
